"""One Markdown section per task, in the original reports' order of questions, from the run folders.

Every figure of ours names its data beside the number; a part with no complete run says "not run yet"
and the command that makes it.

Every string from a run folder (config.json and metrics.json values, folder and file names, the command) is
data: it enters the Markdown through common.markdown's escape(), code() or table(), and text composed of our
Markdown and escaped data is marked `Markdown`. A number is checked to be one (runs.number), so a run folder
of another shape is a ShapeError, KeyError, TypeError, ... that the report turns into a `skipped` line.
"""
from __future__ import annotations

import re
from pathlib import Path

from common.markdown import Markdown, attribute, code, escape, table  # table: the report's one writer too
from report import originals
from report.runs import Run, command, dataset_name, device_name, finished_at, is_stand_in, number

TITLES = {"task_resnet_ln": "ResNet-18 with LayerNorm in every norm slot",
          "task_cifar_transfer": "ResNet-18 from scratch, transfer learning, augmentation, activation maps",
          "task_catsdogs": "Cats vs dogs: twin ResNet-50s, with and without 3-of-10 augmentation",
          "task_inaturalist": "iNaturalist-12K: a configurable CNN, its sweep, ResNet-50 fine-tuning"}
ORIGINAL_DATA = {"task_resnet_ln": "CIFAR-10", "task_cifar_transfer": "CIFAR-10",
                 "task_catsdogs": "cats and dogs", "task_inaturalist": "iNaturalist-12K"}
MAKE = {"task_resnet_ln": "make cifar-ln EPOCHS=40", "task_cifar_transfer": "make cifar-transfer",
        "task_catsdogs": "make catsdogs", "task_inaturalist": "make inaturalist",
        "sweep": "make inaturalist-sweep TRIALS=20"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def pct(x: object, digits: int = 2) -> str:
    """A fraction as a percentage; "–" for None; ShapeError for anything that is not a number."""
    return "–" if x is None else f"{100 * number(x):.{digits}f}%"


def fixed(x: object, digits: int = 3) -> str:
    return f"{number(x):.{digits}f}"


def count(n: object) -> str:
    """An integer with thousands separators; "?" for None; ShapeError for anything that is not a number."""
    return "?" if n is None else f"{number(n):,}"


def image_name(text: str) -> str:
    """A file name for img/ made of A-Z a-z 0-9 . _ - only (a folder name is data): safe as a Markdown link
    target and in the src of an <img>, never hidden, never an option, never too long for the file system."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", text)[-120:].lstrip("._-")
    return name if name.endswith(".png") and len(name) > 4 else f"{name or 'image'}.png"


class Page:
    """The Markdown being written and the images it links: source path -> name beside the page.

    `taken(name)` says whether a name is used already beside the page by a file the report will not replace
    (another program's file in img/): such a name is never chosen, so that file is never overwritten."""

    def __init__(self, taken=lambda name: False) -> None:
        self.parts: list[str] = []
        self.images: dict[Path, str] = {}
        self.taken = taken

    def add(self, *blocks: str) -> None:
        """Blocks of Markdown: our text, with any data in it already escaped."""
        self.parts.extend(blocks)

    def image(self, run: Run, relative: str, alt: str, width: int | None = None) -> Markdown:
        """A Markdown image of run/relative, copied to img/<task>/..., that opens at full size when clicked; a
        plain note if it is not a PNG file inside the run folder (Run.file). `width` (pixels) shows a plot drawn
        with large fonts smaller: an <img> tag, which GitHub and the `markdown` package both pass through.
        `relative` and `alt` may hold data (a seed, a file name): both are escaped here."""
        src = run.file(*relative.split("/"))
        if src is None:
            return Markdown(f"*({escape(alt)}: {code(relative)} is not in the run folder)*")
        if not is_png(src):
            return Markdown(f"*({escape(alt)}: {code(relative)} is not a PNG image)*")
        name = self.images.get(src) or self.new_name(run, relative)
        self.images[src] = name
        if width is not None:
            return Markdown(f'<a href="{name}"><img src="{name}" alt="{attribute(alt)}" width="{int(width)}"></a>')
        return Markdown(f"[![{escape(alt)}]({name})]({name})")

    def new_name(self, run: Run, relative: str) -> str:
        """img/<task>/<folder name>_<relative>, made safe (image_name), with -2, -3, ... where that is used."""
        stem = image_name(f"{run.folder.name}_{relative.replace('/', '_')}")[:-len(".png")]
        used = set(self.images.values())
        for n in range(1, 10_000):
            name = f"img/{run.task}/{stem}{'' if n == 1 else f'-{n}'}.png"
            if name not in used and not self.taken(name):
                return name
        raise RuntimeError("no free image name")  # 10,000 files of one name: not a foreseeable layout

    def images_of(self, run: Run, relatives: list[str], alt: str) -> Markdown:
        """Images two to a paragraph: the page shows each pair side by side."""
        images = [self.image(run, r, f"{alt}: {Path(r).stem}") for r in relatives]
        return Markdown("\n\n".join("\n".join(images[i:i + 2]) for i in range(0, len(images), 2)))

    def pair(self, left: str, right: str) -> Markdown:
        """Two images in one paragraph: side by side on the page."""
        return Markdown(f"{left}\n{right}")

    def markdown(self) -> str:
        return "\n\n".join(p.strip("\n") for p in self.parts) + "\n"


def is_png(path: Path) -> bool:
    """Whether a file starts as a PNG does: only PNGs are copied beside the page (the plots are PNGs)."""
    try:
        with path.open("rb") as f:
            return f.read(len(PNG_SIGNATURE)) == PNG_SIGNATURE
    except OSError:
        return False


def on_data(run: Run, value: str) -> Markdown:
    """A figure of ours (Markdown) with its data next to it, and "stand-in" where that is not the assignment's."""
    data = dataset_name(run.config)
    if is_stand_in(run.task, run.config):
        return Markdown(f"{value} on {data} *(stand-in data, not {ORIGINAL_DATA[run.task]})*")
    return Markdown(f"{value} on {data}")


def provenance(page: Page, runs: list[tuple[str, Run]]) -> None:
    """Where the section's figures came from: per run folder, the data, device, date, commit and command."""
    parts: dict[Path, list[str]] = {}
    folders: dict[Path, Run] = {}
    for what, run in runs:
        parts.setdefault(run.folder, []).append(what)
        folders[run.folder] = run
    lines = []
    for folder, run in folders.items():
        c = run.config
        commit = str(c.get("git_commit") or "not recorded")[:7]
        stand_in = " (stand-in data)" if is_stand_in(run.task, c) else ""
        lines.append(f"- **{', '.join(parts[folder])}**: {code(folder)}  \n"
                     f"  data: {dataset_name(c)}{stand_in} · device: {device_name(c)} · "
                     f"finished: {finished_at(c, run.finished)} · commit: {code(commit)} · "
                     f"torch {escape(c.get('torch', '?'))}  \n"
                     f"  command: {code(command(run.task, c))}")
    page.add("**Where these figures come from**\n\n" + "\n".join(lines))


def not_run(what: str, make: str | tuple[str, ...], incomplete: list[Path]) -> Markdown:
    """The line for a task or part with no complete run: the command(s) that make it, and any unfinished run."""
    commands = ", then ".join(f"`{m}`" for m in ((make,) if isinstance(make, str) else make))
    unfinished = "".join(f" An incomplete run (no metrics.json yet) is in {code(p)}." for p in incomplete)
    return Markdown(f"**{what}: not run yet.** Make it with {commands}.{unfinished}")


def heading(page: Page, task: str) -> None:
    page.add(f"## {task}: {TITLES[task]}")


def anchor(task: str) -> str:
    """The id of a task's heading, as GitHub and Python-Markdown's toc both make it: lower case, punctuation
    other than - and _ dropped, spaces as hyphens."""
    return re.sub(r"[^\w\s-]", "", f"{task}: {TITLES[task]}").strip().lower().replace(" ", "-")


# ----------------------------------------------------------------------------- task_resnet_ln
def norm_slots(summary: str) -> tuple[int, int]:
    """(LayerNorm rows, all norm rows) in a torchsummary table."""
    norms = re.findall(r"^\s*(\w*Norm\w*)-\d+\s", summary, re.M)
    return sum(n.startswith("LayerNorm") for n in norms), len(norms)


def resnet_ln(page: Page, run: Run | None, incomplete: list[Path]) -> None:
    task = "task_resnet_ln"
    heading(page, task)
    o = originals.RESNET_LN
    if run is None:
        page.add(f"The original (seed 004): **{pct(o['test_acc'])}** test accuracy on CIFAR-10 after 40 epochs, "
                 "with LayerNorm in 1 of 20 norm slots.", not_run("This task", MAKE[task], incomplete))
        return
    provenance(page, [("the run", run)])
    c, m = run.config, run.metrics
    e = escape  # config.json's values are data
    ln, slots = norm_slots(run.read_text("summary.txt"))
    page.add("### LayerNorm slots and the recipe")
    page.add(table(["", "the original (seed 004)", "this run"], [
        ["LayerNorm slots", f"{o['ln_slots']} of {o['norm_slots']} (after the stem; BatchNorm in the other 19)",
         Markdown(f"**{ln} of {slots}**" + (" (counted in summary.txt)" if slots else " (summary.txt missing)"))],
        ["model", "ResNet-18", Markdown(f"ResNet-18, width {e(c.get('width'))}, norm {code(c.get('norm'))}"
                                        f"{', Weight Standardization' if c.get('weight_std') else ''}; "
                                        f"{count(m.get('params', 0))} parameters")],
        ["epochs, batch", "40, 128", f"{c.get('epochs')}, {c.get('batch_size')}"],
        ["optimiser", "SGD", Markdown(f"SGD, lr {e(c.get('lr'))}, momentum {e(c.get('momentum'))}"
                                      f"{', nesterov' if c.get('nesterov') else ''}, weight decay "
                                      f"{e(c.get('weight_decay'))}, gradient clipping "
                                      f"{e(c.get('grad_clip') or 'off')}")],
        ["schedule", "ReduceLROnPlateau, patience 0, on test accuracy",
         Markdown(f"warm-up {e(c.get('warmup_epochs'))} epoch, ReduceLROnPlateau on validation accuracy (factor "
                  f"{e(c.get('plateau_factor'))}, patience {e(c.get('plateau_patience'))}, min lr "
                  f"{e(c.get('min_lr'))}), anneal over the last {e(c.get('anneal_epochs'))} epoch")],
        ["augmentation", "RandomCrop(32, 4), CutOut 16, Rotate ±5°",
         Markdown(f"RandomCrop(32, {e(c.get('crop_padding'))}), {'flip, ' if c.get('flip') else ''}Rotate "
                  f"±{e(c.get('rotate'))}°, CutOut {e(c.get('cutout'))}")],
        ["best checkpoint chosen on", "the test set", f"a validation split of {split(c, 'val')} images"],
    ]))
    page.add("### Test accuracy")
    page.add(table(["", "epochs", "test accuracy"], [
        ["the original (seed 004), CIFAR-10", o["epochs"], Markdown(f"**{pct(o['test_acc'])}**")],
        ["this run", m.get("epochs"), Markdown(on_data(run, f"**{pct(m.get('test_acc'))}**") +
                                               f" (best validation {pct(m.get('best_val_acc'))}, epoch "
                                               f"{e(m.get('best_epoch'))})")],
    ], right=(1,)))
    page.add("### Curves and the per-step loss", page.image(run, "curves.png", "loss, accuracy and LR per epoch"),
             page.image(run, "steps.png", "training loss and LR of every step", width=720))
    page.add(f"### {e(c.get('misclassified', 20))} misclassified test images and their Grad-CAM",
             f"Drawn at random (seeded) from the {count(m.get('misclassified_total'))} misclassified test images; "
             f"Grad-CAM at {code(c.get('gradcam_layer'))} on the same images.",
             page.pair(page.image(run, "misclassified.png", "misclassified test images"),
                       page.image(run, "gradcam.png", "Grad-CAM of the same images")))


def split(config: dict, name: str) -> str:
    return count((config.get("split_sizes") or {}).get(name))


# ----------------------------------------------------------------------------- task_cifar_transfer
def activation_source(run: Run) -> tuple[str, list[str]] | None:
    """Part (d)'s maps in a run: its d/ folder, or those eval.py --activations saved beside a checkpoint."""
    b = run.dir("b")
    for folder in ["d", "a", *(f"b/{p.name}" for p in (sorted(b.glob("config*")) if b is not None else []))]:
        inside = run.dir(*folder.split("/"))  # a b/ or d/ that is a symlink out of the run is not looked into
        maps = sorted(p.name for p in inside.glob("activations_*.png")) if inside is not None else []
        if maps:
            return folder, maps
    return None


def cifar_parts(run: Run) -> set[str]:
    parts = {p for p in ("a", "b", "c") if p in run.metrics}
    return parts | ({"d"} if activation_source(run) else set())


def cifar_transfer(page: Page, parts: dict[str, Run], incomplete: list[Path]) -> None:
    task = "task_cifar_transfer"
    heading(page, task)
    o = originals.CIFAR_TRANSFER
    if parts:
        provenance(page, [(f"({p})", parts[p]) for p in "abcd" if p in parts])
    else:
        page.add(not_run("This task", MAKE[task], incomplete))

    page.add("### (a) Our ResNet-18 from scratch")
    run = parts.get("a")
    ours = ("not run yet", "") if run is None else (
        on_data(run, f"**{pct(run.metrics['a']['test_acc'])}**"), run.metrics["a"].get("epochs"))
    page.add(table(["", "epochs", "test accuracy"], [
        ["the original (seed 002), CIFAR-10", o["a"]["epochs"], Markdown(f"**{pct(o['a']['test_acc'])}**")],
        ["this run", ours[1], ours[0]]], right=(1,)))
    if run is None:
        page.add(not_run("(a)", "make cifar-transfer PART=a", []))
    else:
        page.add(page.image(run, "a/curves.png", "(a) curves"),
                 page.pair(page.image(run, "a/misclassified.png", "(a) misclassified test images"),
                           page.image(run, "a/gradcam.png", "(a) Grad-CAM of the same images")))

    page.add("### (b) Transfer learning: the four configurations")
    run = parts.get("b")
    ours = {} if run is None else {(r["config"], r["size_px"]): r for r in run.metrics["b"]["results"]}
    sizes = sorted({s for _, s in ours}) or [32]
    rows = []
    for k, original in o["b"].items():
        for size in sizes:
            r = ours.get((k, size))
            if r is None:
                rows.append([k, size, o["b_setup"][k], pct(original, 1), "not run yet"])
                continue
            cfg = run.read_json("b", f"config{k}-{size}px", "config.json") or run.config
            note = weights_note(cfg, pretrained=k != 1)
            rows.append([k, size, Markdown(escape(r["setup"]) + note), pct(original, 1),
                         Markdown(on_data(run, f"**{pct(r['test_acc'])}**") +
                                  f" ({count(r['trainable_params'])} trainable)")])
    page.add(table(["config", "px", "setup", "the original (CIFAR-10, 30 epochs)", "this run: test accuracy"],
                   rows, right=(0, 1, 3)))
    if run is None:
        page.add(not_run("(b)", "make cifar-transfer PART=b", []))

    page.add("### (c) Augmentation and dropout on a tiny set")
    run = parts.get("c")
    if run is None:
        page.add("The original showed this study as plots only.", not_run("(c)", "make cifar-transfer PART=c", []))
    else:
        c = run.metrics["c"]
        sizes = c.get("split_sizes") or {}
        page.add(f"{on_data(run, 'Measured')}: a class-balanced {count(sizes.get('train'))} train / "
                 f"{count(sizes.get('test'))} test images, the last epoch's model (the original: plots only, "
                 "no figures to compare).")
        for study, label in (("augmentation", "augmentation (dropout 0)"), ("dropout", "dropout (no augmentation)")):
            rows = [r for r in c["results"] if r["study"] == study]
            if rows:
                page.add(table([label, *(r["setting"] for r in rows)],
                               [["train accuracy", *(pct(r["train_acc"]) for r in rows)],
                                ["test accuracy", *(pct(r["test_acc"]) for r in rows)]],
                               right=tuple(range(1, len(rows) + 1))))
        page.add(page.pair(page.image(run, "c/test_accuracy.png", "(c) test accuracy per setting"),
                           page.image(run, "c/augmentations.png", "(c) each augmentation on the same images")))

    page.add("### (d) Activation maps")
    run = parts.get("d")
    source = activation_source(run) if run else None
    if source is None:
        page.add(not_run("(d)", "make cifar-transfer PART=d", []))
    else:
        folder, maps = source
        d = run.read_json(*folder.split("/"), "metrics.json") or {}
        if "layers" not in d:  # eval.py --activations beside a checkpoint: eval.json
            evaluated = run.read_json(*folder.split("/"), "eval.json") or {}
            activations = evaluated.get("activations")
            d = {**(activations if isinstance(activations, dict) else {}), "checkpoint": evaluated.get("checkpoint")}
        which = f"test image {escape(d.get('test_position', '?'))} (a {escape(d.get('label', '?'))})"
        model = code(d["checkpoint"]) if d.get("checkpoint") else f"the {code(folder)} model"
        page.add(f"The stem conv, the stem ReLU and the four residual stages of {model}, for {which}; "
                 "each channel scaled to its own range (a dead channel is black).",
                 page.images_of(run, [f"{folder}/{name}" for name in maps], "(d) activations"))


def weights_note(config: dict, pretrained: bool = True) -> Markdown:
    """Whether a pretrained model's weights file was ImageNet's. config.json's "pretrained_weights"
    ({"file", "sha256"}) answers it: torchvision names its files after their hash's first digits."""
    if not pretrained:
        return Markdown("")
    w = config.get("pretrained_weights")
    if not isinstance(w, dict):
        return Markdown(" — weights file not recorded (ImageNet or a stand-in: unknown)")
    stem = Path(str(w.get("file", ""))).stem
    if stem.rsplit("-", 1)[-1] and str(w.get("sha256", "")).startswith(stem.rsplit("-", 1)[-1]):
        return Markdown(" — ImageNet weights (hash checked)")
    return Markdown(" — **stand-in weights, not ImageNet** (the file's hash does not match its name)")


# ----------------------------------------------------------------------------- task_catsdogs
def catsdogs(page: Page, run: Run | None, incomplete: list[Path]) -> None:
    task = "task_catsdogs"
    heading(page, task)
    o = originals.CATSDOGS
    original_row = ["the original (seeds 000/001): 1 run, random init", f"{o['train_images']} / {o['test_images']}",
                    Markdown(f"**{pct(o['plain']['acc'])}**, F1 {o['plain']['f1_weighted']:.4f}"),
                    Markdown(f"**{pct(o['aug']['acc'])}**, F1 {o['aug']['f1_weighted']:.4f}")]
    header = ["", "train / test images", "plain: accuracy, F1 (weighted)", "augmented: accuracy, F1 (weighted)"]
    if run is None:
        page.add(table(header, [original_row]), not_run("This task", MAKE[task], incomplete))
        return
    provenance(page, [("the run", run)])
    m, c = run.metrics, run.config
    seeds, sizes, summary = m["per_seed"], m.get("sizes") or {}, {r["metric"]: r for r in m["summary"]}
    weights = weights_note(c, pretrained=c.get("init") == "imagenet")
    page.add("### Per seed",
             f"Test figures at the last epoch; ResNet-50 ({escape(c.get('init'))} init{weights}) at "
             f"{escape(c.get('image_size'))} px, {escape(c.get('epochs'))} epochs, {on_data(run, 'measured')}.")
    page.add(table(["seed", "plain accuracy", "augmented accuracy", "aug − plain", "plain F1 (weighted)",
                    "augmented F1 (weighted)", "aug − plain"],
                   [[r["seed"], pct(r["plain"]["acc"]), pct(r["aug"]["acc"]),
                     signed(number(r["aug"]["acc"]) - number(r["plain"]["acc"])),
                     fixed(r["plain"]["f1_weighted"]), fixed(r["aug"]["f1_weighted"]),
                     signed(number(r["aug"]["f1_weighted"]) - number(r["plain"]["f1_weighted"]), 3)] for r in seeds],
                   right=tuple(range(7))))
    n = len(seeds)
    page.add("### The paired difference, augmented − plain",
             f"Mean ± std over {n} seed{'s' if n > 1 else ''}; the difference is paired per seed, with its 95% "
             "interval (Student's t on the per-seed differences; one seed gives no interval). "
             "An interval that excludes 0 is evidence of a real difference on this data.")
    rows = []
    for key, r in summary.items():
        d = r["diff"]
        ci = f" [{signed(d['ci95'][0], 3)}, {signed(d['ci95'][1], 3)}]" if d.get("ci95") else " (no interval)"
        rows.append([r["label"], pm(r["plain_mean"], r["plain_std"]), pm(r["aug_mean"], r["aug_std"]),
                     Markdown(f"**{signed(d['mean'], 3)}**{ci}")])
    page.add(table(["metric", "plain", "augmented", "aug − plain: mean [95% interval]"], rows, right=(1, 2, 3)))
    page.add("### The original's single run beside ours")
    acc = summary.get("acc", {})
    f1 = summary.get("f1_weighted", {})
    ours = [f"this run: mean ± std over {n} seed{'s' if n > 1 else ''}",
            f"{sizes.get('train', '?')} / {sizes.get('test', '?')}",
            Markdown(on_data(run, f"**{pm(acc.get('plain_mean'), acc.get('plain_std'), pct)}**") +
                     f", F1 {pm(f1.get('plain_mean'), f1.get('plain_std'))}"),
            Markdown(f"**{pm(acc.get('aug_mean'), acc.get('aug_std'), pct)}**, "
                     f"F1 {pm(f1.get('aug_mean'), f1.get('aug_std'))}")]
    page.add(table(header, [original_row, ours]),
             f"On {o['test_images']} test images one image is {pct(1 / o['test_images'], 1)} of accuracy; the "
             "original's confusion matrices show that neither of its models had learnt to tell cats from dogs.")
    first = f"seed{seeds[0]['seed']}" if seeds else "seed0"  # data: Page.image reads it only inside the run
    page.add("### Metric curves and augmented examples",
             page.image(run, "eval_metrics.png", "test metrics per epoch, both models"),
             page.image(run, f"{first}/augmented_examples.png", f"{first}: originals beside their augmented versions"))


def signed(x: object, digits: int | None = None) -> str:
    x = number(x)
    text = f"{x:+.{digits}f}" if digits is not None else f"{100 * x:+.2f} pt"
    return text.replace("-", "−")


def pm(mean: object, std: object, fmt=fixed) -> str:
    if mean is None:
        return "–"
    return fmt(mean) + (f" ± {fmt(std)}" if std is not None else "")


# ----------------------------------------------------------------------------- task_inaturalist
def inaturalist(page: Page, parts: dict[str, Run], incomplete: list[Path]) -> None:
    task = "task_inaturalist"
    heading(page, task)
    o = originals.INATURALIST
    if parts:
        names = {"sweep": "the sweep", "a": "part A", "b": "part B"}
        provenance(page, [(names[p], parts[p]) for p in ("sweep", "a", "b") if p in parts])
    else:
        page.add(not_run("This task", (MAKE["sweep"], f'{MAKE[task]} ARGS="--config '
                                                      'runs/task_inaturalist/sweep/best_config.json"'), incomplete))

    page.add("### The sweep: its three plots and the best configuration")
    sweep = parts.get("sweep")
    if sweep is None:
        page.add(not_run("The sweep", MAKE["sweep"], []))
    else:
        m, c = sweep.metrics, sweep.config
        counts = escape(", ".join(f"{v} {k}" for k, v in (m.get("trials") or {}).items() if v) or "none")
        page.add(f"{on_data(sweep, 'Searched')} at {escape(c.get('image_size'))} px, {escape(c.get('epochs'))} "
                 f"epochs per trial (trials: {counts}); the best trial, number {escape(m.get('best_trial'))}, reached "
                 f"**{pct(m.get('best_val_acc'))}** validation accuracy (the original's best: {pct(o['best_val_acc'])} "
                 "on iNaturalist-12K).")
        best = [(k, fmt_param(v)) for k, v in (m.get("best_params") or {}).items()]
        if best:  # two key-value pairs a row: 14 keys side by side would not fit the page
            half = (len(best) + 1) // 2
            rows = [[*best[i], *(best[i + half] if i + half < len(best) else ("", ""))] for i in range(half)]
            page.add(table(["key", "best trial", "key", "best trial"], rows))
        page.add(page.pair(page.image(sweep, "optimization_history.png", "the sweep's optimisation history"),
                           page.image(sweep, "param_importances.png", "the sweep's parameter importances")),
                 page.image(sweep, "parallel_coordinate.png", "the sweep's parallel coordinates"))

    page.add("### Part A: the best configuration, tested once")
    run = parts.get("a")
    a = run.metrics["a"] if run else {}
    page.add(table(["", "epochs", "best validation", "test accuracy"], [
        ["the original (seed 003), iNaturalist-12K", o["epochs"], pct(o["best_val_acc"]),
         Markdown(f"**{pct(o['test_acc'])}**")],
        ["this run", a.get("epochs", ""), pct(a.get("best_val_acc")) if run else "",
         on_data(run, f"**{pct(a['test_acc'])}**") if run else "not run yet"]], right=(1, 2)))
    if run is None:
        page.add(not_run("Part A", f"{MAKE[task]} ARGS=\"--part a\"", []))
    else:
        config = (run.read_json("a", "config.json") or {}).get("config") or run.config.get("config")
        page.add(f"{count(a.get('params', 0))} parameters, {count(a.get('macs', 0))} multiply-accumulates per image"
                 + (f"; configuration from {code(config)}" if config else "; the original's best configuration") + ".")
        page.add("### The 10 × 3 grid and the confusion matrix",
                 page.pair(page.image(run, "a/grid.png", "three test images per class, with the predictions"),
                           page.image(run, "a/confusion_matrix.png", "confusion matrix on the test set")))

    page.add("### Part B: ResNet-50 fine-tuning strategies")
    run = parts.get("b")
    if run is None:
        page.add("The original reported no figure for part B.",
                 not_run("Part B", f'{MAKE[task]} ARGS="--part b"', []))
    else:
        rows = run.metrics["b"]
        # the strategy's name is data: a sub-folder of the run, or nothing (Run.read_json stays inside the run)
        strategy = run.read_json("b", str(rows[0]["strategy"]), "config.json") if rows else None
        pretrained = weights_note(strategy or run.config) if rows else ""
        page.add(f"From ImageNet weights{pretrained}; {on_data(run, 'measured')}. The original reported no figure.")
        page.add(table(["strategy", "trainable parameters", "best validation", "test accuracy", "s / epoch"],
                       [[r["description"], count(r["trainable_params"]), pct(r["best_val_acc"]), pct(r["test_acc"]),
                         r["seconds_per_epoch"]] for r in rows], right=(1, 2, 3, 4)))


def fmt_param(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    if isinstance(v, bool):
        return "yes" if v else "no"
    return str(v)
