"""The report (`python -m report`, `make report`), built from tiny real runs of all four tasks: every image it
links exists, every figure of the original reports appears, a task with no complete run says "not run yet"
with the command that makes it, and data that is not the assignment's own is marked next to the number.

Then run folders from the wild, written by hand in the tasks' shapes (no training: fast): hostile names shown as
text, damaged run folders skipped in one line, no file read from outside a run, and --out that deletes only
what the report wrote."""
import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest

from common.export_folder import export_synthetic
from common.markdown import code
from report.__main__ import main as report_main
from report.runs import load_runs, task_of

ORIGINAL_FIGURES = ["83.06%", "87.35%", "73.8%", "80.4%", "79.0%", "79.2%", "46.43%", "50.00%", "44.82%", "43.38%"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """One complete run folder per task (the sweep and part A for task_inaturalist), tiny, on synthetic data."""
    from task_catsdogs import train as cd_train
    from task_cifar_transfer import train as tr_train
    from task_inaturalist import train as inat_train
    from task_resnet_ln import train as ln_train

    root = tmp_path_factory.mktemp("runs")
    photos, layout = tmp_path_factory.mktemp("photos"), tmp_path_factory.mktemp("layout")
    export_synthetic(photos, per_class=8, seed=0)
    export_synthetic(layout / "train", per_class=6, seed=0, num_classes=10)
    export_synthetic(layout / "val", per_class=3, seed=1, num_classes=10)
    cpu = ["--device", "cpu", "--misclassified", "4"]
    assert ln_train.main(["--dataset", "synthetic", "--subset", "200", "--width", "4", "--epochs", "1",
                          "--batch-size", "32", *cpu, "--out", str(root / "ln")]) == 0
    assert tr_train.main(["--dataset", "synthetic", "--subset", "200", "--width", "4", "--epochs", "1",
                          "--warmup-epochs", "0", "--batch-size", "32", "--configs", "1", "--tiny-train", "60",
                          "--tiny-test", "30", "--augmentations", "none", "cutout", "--dropouts", "0.0", "0.5", *cpu,
                          "--out", str(root / "transfer")]) == 0
    assert cd_train.main(["--dataset", "folder", "--data-dir", str(photos), "--image-size", "32", "--train-size", "4",
                          "--val-size", "2", "--test-size", "4", "--epochs", "1", "--batch-size", "4", "--seeds", "0",
                          "1", "--no-checkpoints", "--examples", "2", *cpu, "--out", str(root / "twins")]) == 0
    fast = ["--dataset", "folder", "--data-dir", str(layout), "--image-size", "32", "--epochs", "1",
            "--eval-batch-size", "64", *cpu]
    assert inat_train.main(["--sweep", "--trials", "1", "--max-macs", "2e7", *fast, "--out", str(root / "sweep")]) == 0
    assert inat_train.main(["--config", str(root / "sweep" / "best_config.json"), "--part", "a", *fast,
                            "--out", str(root / "cnn")]) == 0
    return root


def linked_images(text: str) -> list[str]:
    """Every image target in Markdown (](...)) and HTML (src="...")."""
    return re.findall(r"\]\(([^)\s]+\.png)\)", text) + re.findall(r'src="([^"]+)"', text)


def test_the_page_links_only_images_that_exist_and_shows_every_original_figure(runs, tmp_path):
    out = tmp_path / "report"
    assert report_main(["--runs", str(runs), "--out", str(out)]) == 0
    md, page = (out / "REPORT.md").read_text(), (out / "index.html").read_text()
    for text in (md, page):
        images = linked_images(text)
        assert len(images) >= 20  # curves, grids, Grad-CAM, the (c) plots, (d) maps, the sweep's plots, ...
        missing = [i for i in images if not (out / i).is_file()]
        assert not missing
        for figure in ORIGINAL_FIGURES:
            assert figure in text, figure
    # every task and part ran but (b)'s pretrained configs and part B (no ImageNet weights here): those say so
    assert not re.search(r"\*\*(This task|\(a\)|\(b\)|\(c\)|\(d\)|The sweep|Part A): not run yet", md)
    assert md.count("| not run yet |") == 3 and "**Part B: not run yet.** Make it with `make inaturalist" in md
    # offline from file://: nothing fetched from the network, no scripts
    assert "<script" not in page and "<link" not in page and not re.search(r'src="https?:', page)
    # provenance: the data named next to every figure of ours, with the command behind it
    assert "(stand-in data, not CIFAR-10)" in md and "(stand-in data, not cats and dogs)" in md
    config = json.loads((runs / "ln" / "config.json").read_text())
    assert config["command"].startswith("python task_resnet_ln/train.py --dataset synthetic")  # main(argv)'s argv
    assert f"command: {code(config['command'])}" in md
    assert f"CPU: {config['device_name']}" in md and config["device_name"] not in ("cpu", "")  # the CPU's model
    assert "**4 of 20**" not in md and "**20 of 20**" in md  # every norm slot of the LN ResNet is a LayerNorm


def test_a_missing_or_unfinished_task_says_not_run_yet_with_its_command(runs, tmp_path):
    named = [str(runs / name) for name in ("ln", "transfer", "sweep", "cnn")]  # no task_catsdogs
    out = tmp_path / "report"
    assert report_main(["--runs", *named, "--out", str(out)]) == 0
    md = (out / "REPORT.md").read_text()
    section = md.split("## task_catsdogs")[1].split("## task_inaturalist")[0]
    assert "not run yet" in section and "`make catsdogs`" in section
    assert "46.43%" in section and "50.00%" in section  # the original's figures, still beside the gap

    unfinished = tmp_path / "root" / "twins"
    shutil.copytree(runs / "twins", unfinished)
    (unfinished / "metrics.json").unlink()  # a run that stopped: not complete
    assert report_main(["--runs", str(tmp_path / "root"), "--out", str(tmp_path / "report2")]) == 0
    md = (tmp_path / "report2" / "REPORT.md").read_text()
    assert md.count("not run yet") >= 4  # one line per task, and per part
    assert f"incomplete run (no metrics.json yet) is in {code(unfinished)}" in md


def test_discovery_reads_experiment_roots_skips_smoke_and_names_the_task_from_config(runs, tmp_path):
    root = tmp_path / "runs"
    shutil.copytree(runs / "ln", root / "task_resnet_ln" / "one")
    shutil.copytree(runs / "ln", root / "smoke" / "task_resnet_ln")
    shutil.copytree(runs / "transfer", root / "elsewhere")
    complete, _, _ = load_runs([root])
    assert sorted((r.task, r.folder.relative_to(root).as_posix()) for r in complete) == [
        ("task_cifar_transfer", "elsewhere"), ("task_resnet_ln", "task_resnet_ln/one")]  # no sub-runs, no smoke
    complete, _, _ = load_runs([root / "smoke"])  # named, the smoke root is searched
    assert [r.task for r in complete] == ["task_resnet_ln"]
    complete, _, _ = load_runs([root / "elsewhere" / "a"])  # a sub-run named alone stands for its experiment
    assert [r.folder for r in complete] == [root / "elsewhere"]
    assert task_of(Path("x"), {"task": "task_catsdogs", "tiny_train": 1}) == "task_catsdogs"
    assert task_of(Path("runs/task_inaturalist/x"), {}) == "task_inaturalist"
    assert task_of(Path("x"), {}) is None


class Recorded(dict):
    """A metrics.json dict that notes every value a section reads, by path ("a.test_acc", "b.results.*.config"):
    a leaf read, a dict or list read whole (iterated), or a key asked for with .get() that is not there."""

    def __init__(self, data: dict, path: str, reads: set) -> None:
        super().__init__(data)
        self.path, self.reads = path, reads

    def _at(self, key) -> str:
        return f"{self.path}.{key}" if self.path else str(key)

    def __getitem__(self, key):
        return recorded(super().__getitem__(key), self._at(key), self.reads)

    def get(self, key, default=None):
        if key not in self:
            self.reads.add(f"MISSING {self._at(key)}")
            return default
        return self[key]

    def items(self):
        self.reads.add(self.path)
        return super().items()

    def __iter__(self):
        self.reads.add(self.path)
        return super().__iter__()


class RecordedList(list):
    def __init__(self, data: list, path: str, reads: set) -> None:
        super().__init__(data)
        self.path, self.reads = path, reads

    def __getitem__(self, i):
        return recorded(super().__getitem__(i), f"{self.path}.*", self.reads)

    def __iter__(self):
        return (recorded(v, f"{self.path}.*", self.reads) for v in list.__iter__(self))


def recorded(value, path: str, reads: set):
    if isinstance(value, dict):
        return Recorded(value, path, reads)
    if isinstance(value, list):
        return RecordedList(value, path, reads)
    reads.add(path)
    return value


def test_each_section_reads_only_keys_its_task_writes_and_declares(runs):
    """Real metrics.json files of tiny runs of every task: each task's section (and its headline) reads only keys
    that are there (a renamed key fails here, instead of showing "–" on the page), every key it reads is in its
    results module's METRICS, and every key METRICS names is in what train.py wrote."""
    from dataclasses import replace

    from report.build import latest
    from report.page import Page
    from report.runs import missing
    from report.tasks import TASKS, results

    complete, _, _ = load_runs([runs])
    for task in TASKS:
        module, reads = results(task), set()
        chosen = latest(complete, task)
        assert chosen, task
        declared = {key for part in chosen for key in module.METRICS.get(part, ())}
        for part, run in chosen.items():
            assert [k for k in module.METRICS.get(part, ()) if missing(run.metrics, k)] == [], (task, part)
        parts = {part: replace(run, metrics=Recorded(run.metrics, "", reads)) for part, run in chosen.items()}
        module.headline(parts)
        module.section(Page(), parts, [])
        assert not [r for r in reads if r.startswith("MISSING")], (task, reads)
        undeclared = {r for r in reads if r and not any(r == d or r.startswith(f"{d}.") for d in declared)}
        assert not undeclared, (task, sorted(undeclared))  # a key declared covers what is inside it
        unread = {d for d in declared if not any(r == d or r.startswith(f"{d}.") for r in reads)}
        assert not unread, (task, sorted(unread))  # METRICS is what the report reads, no more


def test_stand_in_weights_are_named_next_to_the_figure():
    from report.page import weights_note

    assert "stand-in" in weights_note({"pretrained_weights": {"file": "resnet18-f37072fd.pth", "sha256": "00ab"}})
    assert "ImageNet weights" in weights_note({"pretrained_weights": {"file": "resnet18-f37072fd.pth",
                                                                      "sha256": "f37072fd" + "0" * 56}})
    assert "not recorded" in weights_note({})
    assert weights_note({}, pretrained=False) == ""


def test_a_missing_folder_is_one_error_line(tmp_path, capsys):
    assert report_main(["--runs", str(tmp_path / "nope"), "--out", str(tmp_path / "r")]) == 2
    assert capsys.readouterr().err.startswith("error: no such folder")
    assert not (tmp_path / "r").exists()


def test_the_browser_check_calls_a_blank_screenshot_blank(tmp_path):
    """The decision of `python -m report.check_browser` (the browser itself runs outside CI)."""
    from PIL import Image, ImageDraw

    from report.check_browser import blank_reason

    blank, page = tmp_path / "blank.png", tmp_path / "page.png"
    Image.new("RGB", (320, 400), "white").save(blank)
    image = Image.new("RGB", (320, 400), "white")
    ImageDraw.Draw(image).rectangle((20, 20, 300, 120), fill="navy")  # a table, a figure: ink on the page
    image.save(page)
    assert blank_reason(blank) == "the page is a single colour"
    assert blank_reason(page) is None


# ----------------------------------------------------------------------------- inputs from the wild
# Run folders written by hand in the shapes the tasks write (no training: fast), with every string the page shows
# replaced by `text`: a folder name, class names, config.json values, metrics strings and the command.
NAME = "<img src=x onerror=alert(1)> `code` [x](javascript:alert(1)) a\\|b|c *em* __init__"  # a folder name: no /
TEXT = NAME + " <script>alert(1)</script>\n# forged heading\n> forged quote\n1. forged list\n---\n- forged item"


def png(path: Path) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 4), "navy").save(path)


def write_run(folder: Path, config: dict, metrics: object, pngs: tuple[str, ...] = (), when: float = 1e9) -> Path:
    """A run folder as the tasks leave it: config.json, the plots, metrics.json last (its mtime is `when`)."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config))
    for name in pngs:
        png(folder / name)
    (folder / "metrics.json").write_text(json.dumps(metrics))
    os.utime(folder / "metrics.json", (when, when))
    return folder


def hand_runs(root: Path, text: str = "plain", name: str = "plain", when: float = 1e9) -> dict[str, Path]:
    """One complete run of each task (the sweep and parts A and B for task_inaturalist) under root."""
    def config(task: str, **more: object) -> dict:
        return {"task": task, "dataset": "folder", "data_dir": f"/data/{name}", "classes": [text, text],
                "command": text, "device_name": text, "resolved_device": "cpu", "date": text, "git_commit": text,
                "torch": text, "epochs": 1, "image_size": 32, **more}

    acc = {"acc": 0.5, "f1_weighted": 0.5}
    runs = {
        "ln": write_run(root / f"ln {name}", config("task_resnet_ln", norm=text, gradcam_layer=text,
                                                    misclassified=text, classes=[text] * 3),
                        {"test_acc": 0.5, "best_val_acc": 0.5, "best_epoch": 1, "epochs": 1, "params": 10,
                         "misclassified_total": 3},
                        ("curves.png", "steps.png", "misclassified.png", "gradcam.png"), when),
        "transfer": write_run(root / f"transfer {name}", config("task_cifar_transfer"), {
            "a": {"test_acc": 0.5, "epochs": 1},
            "b": {"results": [{"config": 1, "size_px": 32, "setup": text, "test_acc": 0.5, "trainable_params": 10}]},
            "c": {"results": [{"study": s, "setting": text, "train_acc": 0.5, "test_acc": 0.5}
                              for s in ("augmentation", "dropout")], "split_sizes": {"train": 6, "test": 3}}},
            ("a/curves.png", "a/misclassified.png", "a/gradcam.png", "c/test_accuracy.png", "c/augmentations.png",
             "d/activations_1_conv1.png"), when),
        "twins": write_run(root / f"twins {name}", config("task_catsdogs", init=text), {
            "per_seed": [{"seed": 0, "plain": acc, "aug": acc}], "sizes": {"train": 4, "test": 4},
            "summary": [{"metric": metric, "label": text, "plain_mean": 0.5, "plain_std": 0.0, "aug_mean": 0.5,
                         "aug_std": 0.0, "diff": {"mean": 0.0, "ci95": [-0.1, 0.1]}}
                        for metric in ("acc", "f1_weighted")]},  # every metric the real run writes has a row
            ("eval_metrics.png", "seed0/augmented_examples.png"), when),
        "sweep": write_run(root / f"sweep {name}", config("task_inaturalist", sweep=True), {
            "trials": {"complete": 1}, "best_trial": 0, "best_val_acc": 0.5, "best_params": {text: text, "lr": 0.01}},
            ("optimization_history.png", "param_importances.png", "parallel_coordinate.png"), when),
        "cnn": write_run(root / f"cnn {name}", config("task_inaturalist", config=text), {
            "a": {"test_acc": 0.5, "best_val_acc": 0.5, "epochs": 1, "params": 10, "macs": 10},
            "b": [{"strategy": text, "description": text, "trainable_params": 10, "best_val_acc": 0.5,
                   "test_acc": 0.5, "seconds_per_epoch": 1.0}]}, ("a/grid.png", "a/confusion_matrix.png"), when),
    }
    (runs["transfer"] / "d" / "metrics.json").write_text(json.dumps({"layers": {}, "test_position": 0, "label": text,
                                                                      "checkpoint": text}))
    return runs


class Elements(HTMLParser):
    """Every element of a page as (tag, attributes), and the text of each heading."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict]] = []
        self.headings: list[tuple[str, str]] = []
        self._heading: list[str] | None = None
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.elements.append((tag, dict(attrs)))
        if re.fullmatch(r"h[1-6]", tag):
            self._heading = [tag]

    def handle_data(self, data: str) -> None:
        if self._heading is not None:
            self._heading.append(data)

    def handle_endtag(self, tag: str) -> None:
        if self._heading is not None and tag == self._heading[0]:
            self.headings.append((tag, "".join(self._heading[1:])))
            self._heading = None

    def structure(self) -> Counter:
        return Counter(tag for tag, _ in self.elements)


def injected(elements: list[tuple[str, dict]]) -> list:
    """What a name must never become: a script, an event handler, a javascript: URL, a style."""
    return [(tag, attrs) for tag, attrs in elements
            if tag in ("script", "iframe", "object", "embed", "svg", "form") or
            any(k.startswith("on") or k == "style" or "javascript:" in (v or "").lower() for k, v in attrs.items())]


def table_rows(md: str) -> list[list[int]]:
    """The number of cells of every row of every table in Markdown, split as GitHub splits them (a backslash
    escapes the next character, an unescaped | ends a cell); one list per table."""
    tables, current = [], []
    for line in md.splitlines() + [""]:
        if line.startswith("|"):
            cells, escaped = 1, False
            for ch in line.strip()[1:-1]:
                cells += ch == "|" and not escaped
                escaped = ch == "\\" and not escaped
            current.append(cells)
        elif current:
            tables.append(current)
            current = []
    return tables


def test_names_from_the_data_are_text_on_the_page(tmp_path):
    """Class and folder names, config.json values, metrics strings, the command and --note: shown as they are,
    never as HTML or Markdown. The page has the structure of the same page with plain names."""
    hand_runs(tmp_path / "plain")
    hand_runs(tmp_path / "hostile", TEXT, NAME)
    assert report_main(["--runs", str(tmp_path / "plain"), "--out", str(tmp_path / "plain-report"),
                        "--note", "plain"]) == 0
    assert report_main(["--runs", str(tmp_path / "hostile"), "--out", str(tmp_path / "report"),
                        "--note", TEXT]) == 0
    page, md = (tmp_path / "report" / "index.html").read_text(), (tmp_path / "report" / "REPORT.md").read_text()
    plain = Elements((tmp_path / "plain-report" / "index.html").read_text())
    hostile = Elements(page)
    assert "<script" not in page and "<img src=x" not in page
    assert injected(hostile.elements) == []
    assert hostile.structure() == plain.structure()  # no element added or lost: no heading, list, link, image
    assert [h for h in hostile.headings if "forged" in h[1] and not h[1].endswith("and their Grad-CAM")] == []
    assert [len(set(rows)) for rows in table_rows(md)] == [1] * len(table_rows(md))  # each table keeps its columns
    assert table_rows(md) == table_rows((tmp_path / "plain-report" / "REPORT.md").read_text())
    text = html.unescape(re.sub(r"<[^>]+>", "", page))
    folded = " ".join(TEXT.split("\n"))
    assert text.count(folded) >= 10  # the note, the command, the setup, ... whole, in their cells
    assert f"folder {NAME}" in text


def test_a_browser_finds_no_injected_element(tmp_path):
    """The same page as Chromium parses it (its DOM after loading from file://)."""
    browser = next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
    if browser is None:
        pytest.skip("no browser installed (apt-get install -y chromium): the DOM check needs one")
    hand_runs(tmp_path / "hostile", TEXT, NAME)
    assert report_main(["--runs", str(tmp_path / "hostile"), "--out", str(tmp_path / "report"), "--note", TEXT]) == 0
    with tempfile.TemporaryDirectory() as profile:
        try:
            dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                                  "--disable-background-networking", "--no-first-run", f"--user-data-dir={profile}",
                                  "--dump-dom", (tmp_path / "report" / "index.html").as_uri()],
                                 capture_output=True, text=True, timeout=60, check=True).stdout
        except subprocess.TimeoutExpired:  # seen before the fix: the name's onerror=alert(1) ran, and blocks
            pytest.fail("the browser did not finish loading the page: a script on it (an alert()) is waiting")
    elements = Elements(dom).elements
    assert len([tag for tag, _ in elements if tag == "h2"]) == 4 and len(elements) > 100
    assert injected(elements) == []
    assert not [attrs for tag, attrs in elements if tag == "img" and not attrs.get("src", "").startswith("img/")]


# ----------------------------------------------------------------------------- run folders the report did not write
def damage_older_shape(folder: Path) -> None:  # task_cifar_transfer's (b) as a bare list of results
    metrics = json.loads((folder / "metrics.json").read_text())
    metrics["b"] = metrics["b"]["results"]
    (folder / "metrics.json").write_text(json.dumps(metrics))


def damage_string_for_number(folder: Path) -> None:
    metrics = json.loads((folder / "metrics.json").read_text())
    metrics["test_acc"] = "0.97"
    (folder / "metrics.json").write_text(json.dumps(metrics))


def damage_missing_key(folder: Path) -> None:
    metrics = json.loads((folder / "metrics.json").read_text())
    del metrics["per_seed"]
    (folder / "metrics.json").write_text(json.dumps(metrics))


def damage_list(folder: Path) -> None:
    (folder / "metrics.json").write_text(json.dumps([{"test_acc": 0.97}]))


def damage_invalid_json(folder: Path) -> None:
    (folder / "metrics.json").write_text('{"test_acc": 0.')  # cut short


@pytest.mark.parametrize("damage, run, heading, why", [
    (damage_older_shape, "transfer", "## task_cifar_transfer", "metrics.json has no b.results"),
    (damage_string_for_number, "ln", "## task_resnet_ln", "'0.97' where a number belongs"),
    (damage_missing_key, "twins", "## task_catsdogs", "metrics.json has no per_seed"),
    (damage_list, "cnn", "## task_inaturalist", "metrics.json holds a JSON list, not an object"),
    (damage_invalid_json, "ln", "## task_resnet_ln", "metrics.json is not JSON"),
])
def test_a_run_folder_it_cannot_read_is_one_skipped_line_and_the_older_run_is_shown(
        tmp_path, capsys, damage, run, heading, why):
    hand_runs(tmp_path / "runs" / "old", name="old", when=1e9)
    newer = hand_runs(tmp_path / "runs" / "new", name="new", when=2e9)
    damage(newer[run])
    os.utime(newer[run] / "metrics.json", (2e9, 2e9))
    assert report_main(["--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "report")]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err == [f"skipped {newer[run]}: {err[0].split(': ', 1)[1]}"] and why in err[0]
    md = (tmp_path / "report" / "REPORT.md").read_text()
    section = md.split(heading)[1].split("\n## ")[0]
    assert f"{run} old" in section and f"{run} new" not in section  # the older run, in the newer one's place
    assert "97" not in md


def test_with_no_older_run_the_task_is_not_run_yet(tmp_path, capsys):
    newer = hand_runs(tmp_path / "runs", name="new")
    damage_invalid_json(newer["ln"])
    assert report_main(["--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "report")]) == 0
    assert capsys.readouterr().err.splitlines() == [
        f"skipped {newer['ln']}: metrics.json is not JSON (Expecting ',' delimiter, line 1; "
        "truncated or damaged?)"]
    md = (tmp_path / "report" / "REPORT.md").read_text()
    assert "**This task: not run yet.** Make it with `make cifar-ln EPOCHS=40`." in md.split("## task_resnet_ln")[1]


def test_a_skipped_line_is_one_printable_line(tmp_path, capsys):
    runs = hand_runs(tmp_path / "runs", name="new\nskipped forged\x1b[31m")
    damage_list(runs["ln"])
    assert report_main(["--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "report")]) == 0
    assert capsys.readouterr().err.splitlines() == [
        f"skipped {tmp_path}/runs/ln new\\nskipped forged\\x1b[31m: metrics.json holds a JSON list, not an object"]


# ----------------------------------------------------------------------------- only files inside the run
PRIVATE = b"\x89PNG\r\n\x1a\n private bytes from outside the run folder"


def test_only_regular_files_inside_the_run_folder_are_read_or_copied(tmp_path):
    runs = hand_runs(tmp_path / "runs")
    (tmp_path / "outside").mkdir()
    private = tmp_path / "outside" / "eval_metrics.png"
    private.write_bytes(PRIVATE)
    (runs["twins"] / "eval_metrics.png").unlink()
    (runs["twins"] / "eval_metrics.png").symlink_to(private)  # a symlink out of the run
    (tmp_path / "augmented_examples.png").write_bytes(PRIVATE)  # where seed "0/../../.." leads
    metrics = json.loads((runs["twins"] / "metrics.json").read_text())
    metrics["per_seed"][0]["seed"] = "0/../../.."
    (runs["twins"] / "metrics.json").write_text(json.dumps(metrics))
    # a strategy name used as a path: its config.json outside would claim ImageNet weights
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "config.json").write_text(json.dumps(
        {"pretrained_weights": {"file": "resnet50-0676ba61.pth", "sha256": "0676ba61" + "0" * 56}}))
    metrics = json.loads((runs["cnn"] / "metrics.json").read_text())
    metrics["b"][0]["strategy"] = "../../weights"
    (runs["cnn"] / "metrics.json").write_text(json.dumps(metrics))

    out = tmp_path / "report"
    assert report_main(["--runs", str(tmp_path / "runs"), "--out", str(out)]) == 0
    md = (out / "REPORT.md").read_text()
    assert not [p for p in out.rglob("*") if p.is_file() and PRIVATE in p.read_bytes()]
    assert "*(test metrics per epoch, both models: <code>eval_metrics.png</code> is not in the run folder)*" in md
    assert "<code>seed0/../../../augmented_examples.png</code> is not in the run folder" in md
    assert "ImageNet weights (hash checked)" not in md and "weights file not recorded" in md


def test_a_strategy_name_inside_the_run_is_read(tmp_path):
    """The containment check does not stop the ordinary case: b/<strategy>/config.json of the run itself."""
    runs = hand_runs(tmp_path / "runs")
    metrics = json.loads((runs["cnn"] / "metrics.json").read_text())
    (runs["cnn"] / "b" / "head").mkdir(parents=True)
    (runs["cnn"] / "b" / "head" / "config.json").write_text(json.dumps(
        {"pretrained_weights": {"file": "resnet50-0676ba61.pth", "sha256": "0676ba61" + "0" * 56}}))
    metrics["b"][0]["strategy"] = "head"
    (runs["cnn"] / "metrics.json").write_text(json.dumps(metrics))
    assert report_main(["--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "report")]) == 0
    md = (tmp_path / "report" / "REPORT.md").read_text()
    assert "From ImageNet weights — ImageNet weights (hash checked)" in md


# ----------------------------------------------------------------------------- --out
def fingerprint(folder: Path) -> dict[str, str]:
    """Every file and symlink under `folder`: its path -> sha256 of its bytes (or where the symlink points)."""
    import hashlib

    return {p.relative_to(folder).as_posix(): (f"-> {os.readlink(p)}" if p.is_symlink() else
                                               hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(folder.rglob("*")) if p.is_file() or p.is_symlink()}


def test_out_with_files_the_report_did_not_write_is_refused_and_left_as_it_was(tmp_path, capsys):
    hand_runs(tmp_path / "runs")
    out = tmp_path / "photos"
    (out / "img").mkdir(parents=True)
    (out / "img" / "photo.jpg").write_bytes(b"\xff\xd8 a photo of mine")
    (out / "REPORT.md").write_text("my own notes")
    before = fingerprint(out)
    assert report_main(["--runs", str(tmp_path / "runs"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: --out {out} holds files this report did not write")
    assert fingerprint(out) == before
    assert report_main(["--runs", str(tmp_path / "runs"), "--out", str(out / "REPORT.md")]) == 2  # a file
    assert capsys.readouterr().err == f"error: --out {out / 'REPORT.md'} is a file, not a folder\n"
    assert fingerprint(out) == before


def test_replacing_a_report_deletes_only_what_it_wrote(tmp_path):
    hand_runs(tmp_path / "old", name="old")
    hand_runs(tmp_path / "new", name="new")
    out, scratch = tmp_path / "report", tmp_path / "scratch"
    assert report_main(["--runs", str(tmp_path / "new"), "--out", str(scratch)]) == 0
    wanted = sorted(p for p in fingerprint(scratch) if p.startswith("img/"))[0]  # a name the new report writes
    assert report_main(["--runs", str(tmp_path / "old"), "--out", str(out)]) == 0
    old_images = {p for p in fingerprint(out) if p.startswith("img/")}
    assert len(old_images) == len(set(linked_images((out / "index.html").read_text()))) == 17  # hand_runs: 17 PNGs
    (out / "img" / "photo.jpg").write_bytes(b"\xff\xd8 a photo of mine")
    (out / "notes.txt").write_text("mine")
    (out / wanted).write_bytes(b"mine, at the name the new report wants")
    mine = {k: v for k, v in fingerprint(out).items() if k in ("img/photo.jpg", "notes.txt", wanted)}
    assert report_main(["--runs", str(tmp_path / "new"), "--out", str(out)]) == 0
    after = fingerprint(out)
    assert {k: after.get(k) for k in mine} == mine  # kept, byte for byte
    assert not old_images & set(after)  # the old report's images are gone
    linked = set(linked_images((out / "index.html").read_text()))
    assert wanted not in linked and wanted.replace(".png", "-2.png") in linked  # not the file of mine
    assert all((out / name).is_file() for name in linked)
    assert set(after) == linked | set(mine) | {"REPORT.md", "index.html"}


def test_foreseeable_mistakes_are_one_error_line(tmp_path, capsys):
    hand_runs(tmp_path / "runs")
    assert report_main(["--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "r"), "--image-width", "0"]) == 2
    assert capsys.readouterr().err == "error: --image-width must be at least 1 pixel, not 0\n"
    (tmp_path / "a file").write_text("not a folder")
    assert report_main(["--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "a file" / "r")]) == 2
    assert capsys.readouterr().err == f"error: Not a directory: {tmp_path / 'a file' / 'r'}\n"
    assert report_main(["--runs", str(tmp_path / "runs" / "ln plain" / "config.json")]) == 2
    assert capsys.readouterr().err == f"error: no such folder: {tmp_path / 'runs' / 'ln plain' / 'config.json'}\n"


def test_the_report_imports_no_torch():
    """It builds in a second, with no training: report and common.markdown/tables/files/text stay torch-free."""
    code = ("import sys, report.__main__, common.markdown, common.tables; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'numpy')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[1], check=True)
    assert done.stdout.strip() == "[]"


def test_the_sanitiser_keeps_the_page_and_drops_anything_else():
    """Behind the escaping, a second line: Markdown that was not escaped still cannot put a script, an event
    handler, a style, a javascript: or http: URL or a form on the page; what the page itself uses stays."""
    from report.build import render_html

    ours = ('## A heading\n\n[task](#a-heading) [![alt](img/task_x/a.png)](img/task_x/a.png)\n'
            '<a href="img/task_x/b.png"><img src="img/task_x/b.png" alt="b" width="720"></a>\n\n'
            '| a | b |\n|---|---:|\n| <code>x</code> | **1** |\n')
    hostile = ('<script>alert(1)</script><img src=x onerror=alert(1)><a href="javascript:alert(1)">j</a>'
               '<img src="https://example.com/t.png"><p style="position:fixed">s</p><form><input></form>'
               '<iframe src="x"></iframe><svg onload=alert(1)></svg>[x](javascript:alert(1)) '
               '<a href="img/../../etc/passwd">up</a> <a href="file:///etc/passwd">f</a>\n')
    page = render_html(ours + "\n" + hostile, "t")
    body = page.split("<body>", 1)[1]
    elements = Elements(body).elements
    assert injected(elements) == []
    assert not {"form", "input", "iframe", "svg", "script"} & {tag for tag, _ in elements}
    assert not [a for tag, a in elements if tag in ("a", "img") and
                not re.fullmatch(r"img/task_x/[ab]\.png|#a-heading", a.get("href", a.get("src", "")))
                and (a.get("href") or a.get("src"))]
    assert ('<h2 id="a-heading">' in body and '<a href="#a-heading">' in body and 'width="720"' in body
            and '<th align="right">b</th>' in body and '<td align="right"><strong>1</strong></td>' in body
            and "<code>x</code>" in body and '<img alt="alt" src="img/task_x/a.png">' in body)
    assert "<style>" in page.split("<body>", 1)[0]  # the template's own style sheet stays


@pytest.mark.parametrize("asked, heading", [(20, "### 3 misclassified test images"),
                                            (2, "### 2 misclassified test images")])
def test_the_grids_heading_counts_the_images_they_hold(tmp_path, asked, heading):
    """--misclassified 20 asks for up to 20; a run with 3 misclassified test images shows 3, and says so."""
    ln = hand_runs(tmp_path / "runs")["ln"]
    config = json.loads((ln / "config.json").read_text())
    (ln / "config.json").write_text(json.dumps({**config, "misclassified": asked}))
    assert report_main(["--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "report")]) == 0
    md = (tmp_path / "report" / "REPORT.md").read_text()
    assert f"{heading} and their Grad-CAM" in md and "from the 3 misclassified test images" in md
