"""The report (`python -m report`, `make report`), built from tiny real runs of all four tasks: every image it
links exists, every figure of the original reports appears, a task with no complete run says "not run yet"
with the command that makes it, and data that is not the assignment's own is marked next to the number."""
import json
import re
import shutil
from pathlib import Path

import pytest

from common.export_folder import export_synthetic
from report import originals
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
    assert f"command: `{config['command']}`" in md
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
    assert f"incomplete run (no metrics.json yet) is in `{unfinished}`" in md


def test_discovery_reads_experiment_roots_skips_smoke_and_names_the_task_from_config(runs, tmp_path):
    root = tmp_path / "runs"
    shutil.copytree(runs / "ln", root / "task_resnet_ln" / "one")
    shutil.copytree(runs / "ln", root / "smoke" / "task_resnet_ln")
    shutil.copytree(runs / "transfer", root / "elsewhere")
    complete, _ = load_runs([root])
    assert sorted((r.task, r.folder.relative_to(root).as_posix()) for r in complete) == [
        ("task_cifar_transfer", "elsewhere"), ("task_resnet_ln", "task_resnet_ln/one")]  # no sub-runs, no smoke
    complete, _ = load_runs([root / "smoke"])  # named, the smoke root is searched
    assert [r.task for r in complete] == ["task_resnet_ln"]
    complete, _ = load_runs([root / "elsewhere" / "a"])  # a sub-run named alone stands for its experiment
    assert [r.folder for r in complete] == [root / "elsewhere"]
    assert task_of(Path("x"), {"task": "task_catsdogs", "tiny_train": 1}) == "task_catsdogs"
    assert task_of(Path("runs/task_inaturalist/x"), {}) == "task_inaturalist"
    assert task_of(Path("x"), {}) is None


def test_the_original_figures_are_those_the_tasks_hold():
    from task_catsdogs.train import ORIGINAL
    from task_cifar_transfer.train import ORIGINAL_SCRATCH_ACC
    from task_cifar_transfer.transfer import CONFIGS
    from task_inaturalist.recipe import ORIGINAL_FIGURES as INAT

    assert originals.CIFAR_TRANSFER["a"]["test_acc"] == ORIGINAL_SCRATCH_ACC
    assert originals.CIFAR_TRANSFER["b"] == {k: c.original_test_acc for k, c in CONFIGS.items()}
    assert {m: originals.CATSDOGS[m] for m in ("plain", "aug")} == ORIGINAL
    assert {k: originals.INATURALIST[k] for k in INAT} == INAT


def test_stand_in_weights_are_named_next_to_the_figure():
    from report.sections import weights_note

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
