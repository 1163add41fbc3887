"""One Markdown section per task, in the original reports' order of questions, from the run folders.

Every figure of ours names its data beside the number; a part with no complete run says "not run yet"
and the command that makes it.
"""
from __future__ import annotations

import re
from pathlib import Path

from report import originals
from report.runs import Run, command, dataset_name, device_name, finished_at, is_stand_in

TITLES = {"task_resnet_ln": "ResNet-18 with LayerNorm in every norm slot",
          "task_cifar_transfer": "ResNet-18 from scratch, transfer learning, augmentation, activation maps",
          "task_catsdogs": "Cats vs dogs: twin ResNet-50s, with and without 3-of-10 augmentation",
          "task_inaturalist": "iNaturalist-12K: a configurable CNN, its sweep, ResNet-50 fine-tuning"}
ORIGINAL_DATA = {"task_resnet_ln": "CIFAR-10", "task_cifar_transfer": "CIFAR-10",
                 "task_catsdogs": "cats and dogs", "task_inaturalist": "iNaturalist-12K"}
MAKE = {"task_resnet_ln": "make cifar-ln EPOCHS=40", "task_cifar_transfer": "make cifar-transfer",
        "task_catsdogs": "make catsdogs", "task_inaturalist": "make inaturalist",
        "sweep": "make inaturalist-sweep TRIALS=20"}


def pct(x: float | None, digits: int = 2) -> str:
    return "–" if x is None else f"{100 * x:.{digits}f}%"


def table(header: list[str], rows: list[list], right: tuple[int, ...] = ()) -> str:
    """A Markdown table; columns in `right` are right-aligned (numbers)."""
    def cell(value: object) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")
    align = ["---:" if i in right else "---" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


class Page:
    """The Markdown being written and the images it links: source path -> name beside the page."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.images: dict[Path, str] = {}

    def add(self, *blocks: str) -> None:
        self.parts.extend(blocks)

    def image(self, run: Run, relative: str, alt: str, width: int | None = None) -> str:
        """A Markdown image of run/relative, copied to img/<task>/..., that opens at full size when clicked; a
        plain note if the file is missing. `width` (pixels) shows a plot drawn with large fonts smaller: an
        <img> tag, which GitHub and the `markdown` package both pass through."""
        src = run.path(relative)
        if not src.is_file():
            return f"*({alt}: `{relative}` is not in the run folder)*"
        name = self.images.get(src) or f"img/{run.task}/{run.folder.name}_{relative.replace('/', '_')}"
        self.images[src] = name
        if width is not None:
            return f'<a href="{name}"><img src="{name}" alt="{alt}" width="{width}"></a>'
        return f"[![{alt}]({name})]({name})"

    def images_of(self, run: Run, relatives: list[str], alt: str) -> str:
        """Images two to a paragraph: the page shows each pair side by side."""
        images = [self.image(run, r, f"{alt}: {Path(r).stem}") for r in relatives]
        return "\n\n".join("\n".join(images[i:i + 2]) for i in range(0, len(images), 2))

    def pair(self, left: str, right: str) -> str:
        """Two images in one paragraph: side by side on the page."""
        return f"{left}\n{right}"

    def markdown(self) -> str:
        return "\n\n".join(p.strip("\n") for p in self.parts) + "\n"


def on_data(run: Run, value: str) -> str:
    """A figure of ours with its data next to it, and "stand-in" where that is not the assignment's data."""
    data = dataset_name(run.config)
    if is_stand_in(run.task, run.config):
        return f"{value} on {data} *(stand-in data, not {ORIGINAL_DATA[run.task]})*"
    return f"{value} on {data}"


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
        commit = (c.get("git_commit") or "not recorded")[:7]
        stand_in = " (stand-in data)" if is_stand_in(run.task, c) else ""
        lines.append(f"- **{', '.join(parts[folder])}**: `{folder}`  \n"
                     f"  data: {dataset_name(c)}{stand_in} · device: {device_name(c)} · "
                     f"finished: {finished_at(c, run.finished)} · commit: `{commit}` · "
                     f"torch {c.get('torch', '?')}  \n"
                     f"  command: `{command(run.task, c)}`")
    page.add("**Where these figures come from**\n\n" + "\n".join(lines))


def not_run(what: str, make: str | tuple[str, ...], incomplete: list[Path]) -> str:
    """The line for a task or part with no complete run: the command(s) that make it, and any unfinished run."""
    commands = ", then ".join(f"`{m}`" for m in ((make,) if isinstance(make, str) else make))
    unfinished = "".join(f" An incomplete run (no metrics.json yet) is in `{p}`." for p in incomplete)
    return f"**{what}: not run yet.** Make it with {commands}.{unfinished}"


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
    summary = run.path("summary.txt").read_text() if run.path("summary.txt").is_file() else ""
    ln, slots = norm_slots(summary)
    page.add("### LayerNorm slots and the recipe")
    page.add(table(["", "the original (seed 004)", "this run"], [
        ["LayerNorm slots", f"{o['ln_slots']} of {o['norm_slots']} (after the stem; BatchNorm in the other 19)",
         f"**{ln} of {slots}**" + (" (counted in summary.txt)" if slots else " (summary.txt missing)")],
        ["model", "ResNet-18", f"ResNet-18, width {c.get('width')}, norm `{c.get('norm')}`"
         f"{', Weight Standardization' if c.get('weight_std') else ''}; {m.get('params', 0):,} parameters"],
        ["epochs, batch", "40, 128", f"{c.get('epochs')}, {c.get('batch_size')}"],
        ["optimiser", "SGD", f"SGD, lr {c.get('lr')}, momentum {c.get('momentum')}"
         f"{', nesterov' if c.get('nesterov') else ''}, weight decay {c.get('weight_decay')}, "
         f"gradient clipping {c.get('grad_clip') or 'off'}"],
        ["schedule", "ReduceLROnPlateau, patience 0, on test accuracy",
         f"warm-up {c.get('warmup_epochs')} epoch, ReduceLROnPlateau on validation accuracy (factor "
         f"{c.get('plateau_factor')}, patience {c.get('plateau_patience')}, min lr {c.get('min_lr')}), "
         f"anneal over the last {c.get('anneal_epochs')} epoch"],
        ["augmentation", "RandomCrop(32, 4), CutOut 16, Rotate ±5°",
         f"RandomCrop(32, {c.get('crop_padding')}), {'flip, ' if c.get('flip') else ''}Rotate "
         f"±{c.get('rotate')}°, CutOut {c.get('cutout')}"],
        ["best checkpoint chosen on", "the test set", f"a validation split of {split(c, 'val')} images"],
    ]))
    page.add("### Test accuracy")
    page.add(table(["", "epochs", "test accuracy"], [
        ["the original (seed 004), CIFAR-10", o["epochs"], f"**{pct(o['test_acc'])}**"],
        ["this run", m.get("epochs"), on_data(run, f"**{pct(m.get('test_acc'))}**") +
         f" (best validation {pct(m.get('best_val_acc'))}, epoch {m.get('best_epoch')})"],
    ], right=(1,)))
    page.add("### Curves and the per-step loss", page.image(run, "curves.png", "loss, accuracy and LR per epoch"),
             page.image(run, "steps.png", "training loss and LR of every step", width=720))
    page.add(f"### {c.get('misclassified', 20)} misclassified test images and their Grad-CAM",
             f"Drawn at random (seeded) from the {count(m.get('misclassified_total'))} misclassified test images; "
             f"Grad-CAM at `{c.get('gradcam_layer')}` on the same images.",
             page.pair(page.image(run, "misclassified.png", "misclassified test images"),
                       page.image(run, "gradcam.png", "Grad-CAM of the same images")))


def split(config: dict, name: str) -> str:
    return count((config.get("split_sizes") or {}).get(name))


def count(n: object) -> str:
    return f"{n:,}" if isinstance(n, int) else "?"


# ----------------------------------------------------------------------------- task_cifar_transfer
def activation_source(run: Run) -> tuple[str, list[str]] | None:
    """Part (d)'s maps in a run: its d/ folder, or those eval.py --activations saved beside a checkpoint."""
    for folder in ["d", "a", *(f"b/{p.name}" for p in sorted(run.path("b").glob("config*")))]:
        maps = sorted(p.name for p in run.path(folder).glob("activations_*.png"))
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
        ["the original (seed 002), CIFAR-10", o["a"]["epochs"], f"**{pct(o['a']['test_acc'])}**"],
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
            rows.append([k, size, r["setup"] + note, pct(original, 1),
                         on_data(run, f"**{pct(r['test_acc'])}**") + f" ({r['trainable_params']:,} trainable)"])
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
        sizes = c.get("split_sizes", {})
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
        d = run.read_json(folder, "metrics.json") or {}
        if "layers" not in d:  # eval.py --activations beside a checkpoint: eval.json
            evaluated = run.read_json(folder, "eval.json") or {}
            d = {**evaluated.get("activations", {}), "checkpoint": evaluated.get("checkpoint")}
        which = f"test image {d.get('test_position', '?')} (a {d.get('label', '?')})"
        model = f"`{d['checkpoint']}`" if d.get("checkpoint") else f"the `{folder}` model"
        page.add(f"The stem conv, the stem ReLU and the four residual stages of {model}, for {which}; "
                 "each channel scaled to its own range (a dead channel is black).",
                 page.images_of(run, [f"{folder}/{name}" for name in maps], "(d) activations"))


def weights_note(config: dict, pretrained: bool = True) -> str:
    """Whether a pretrained model's weights file was ImageNet's. config.json's "pretrained_weights"
    ({"file", "sha256"}) answers it: torchvision names its files after their hash's first digits."""
    if not pretrained:
        return ""
    w = config.get("pretrained_weights")
    if not isinstance(w, dict):
        return " — weights file not recorded (ImageNet or a stand-in: unknown)"
    stem = Path(w.get("file", "")).stem
    if stem.rsplit("-", 1)[-1] and str(w.get("sha256", "")).startswith(stem.rsplit("-", 1)[-1]):
        return " — ImageNet weights (hash checked)"
    return " — **stand-in weights, not ImageNet** (the file's hash does not match its name)"


# ----------------------------------------------------------------------------- task_catsdogs
def catsdogs(page: Page, run: Run | None, incomplete: list[Path]) -> None:
    task = "task_catsdogs"
    heading(page, task)
    o = originals.CATSDOGS
    original_row = ["the original (seeds 000/001): 1 run, random init", f"{o['train_images']} / {o['test_images']}",
                    f"**{pct(o['plain']['acc'])}**, F1 {o['plain']['f1_weighted']:.4f}",
                    f"**{pct(o['aug']['acc'])}**, F1 {o['aug']['f1_weighted']:.4f}"]
    header = ["", "train / test images", "plain: accuracy, F1 (weighted)", "augmented: accuracy, F1 (weighted)"]
    if run is None:
        page.add(table(header, [original_row]), not_run("This task", MAKE[task], incomplete))
        return
    provenance(page, [("the run", run)])
    m, c = run.metrics, run.config
    seeds, sizes, summary = m["per_seed"], m.get("sizes", {}), {r["metric"]: r for r in m["summary"]}
    weights = weights_note(c, pretrained=c.get("init") == "imagenet")
    page.add("### Per seed",
             f"Test figures at the last epoch; ResNet-50 ({c.get('init')} init{weights}) at {c.get('image_size')} px, "
             f"{c.get('epochs')} epochs, {on_data(run, 'measured')}.")
    page.add(table(["seed", "plain accuracy", "augmented accuracy", "aug − plain", "plain F1 (weighted)",
                    "augmented F1 (weighted)", "aug − plain"],
                   [[r["seed"], pct(r["plain"]["acc"]), pct(r["aug"]["acc"]),
                     signed(r["aug"]["acc"] - r["plain"]["acc"]),
                     f"{r['plain']['f1_weighted']:.3f}", f"{r['aug']['f1_weighted']:.3f}",
                     signed(r["aug"]["f1_weighted"] - r["plain"]["f1_weighted"], 3)] for r in seeds],
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
                     f"**{signed(d['mean'], 3)}**{ci}"])
    page.add(table(["metric", "plain", "augmented", "aug − plain: mean [95% interval]"], rows, right=(1, 2, 3)))
    page.add("### The original's single run beside ours")
    acc = summary.get("acc", {})
    f1 = summary.get("f1_weighted", {})
    ours = [f"this run: mean ± std over {n} seed{'s' if n > 1 else ''}",
            f"{sizes.get('train', '?')} / {sizes.get('test', '?')}",
            on_data(run, f"**{pm(acc.get('plain_mean'), acc.get('plain_std'), pct)}**") +
            f", F1 {pm(f1.get('plain_mean'), f1.get('plain_std'))}",
            f"**{pm(acc.get('aug_mean'), acc.get('aug_std'), pct)}**, F1 {pm(f1.get('aug_mean'), f1.get('aug_std'))}"]
    page.add(table(header, [original_row, ours]),
             f"On {o['test_images']} test images one image is {pct(1 / o['test_images'], 1)} of accuracy; the "
             "original's confusion matrices show that neither of its models had learnt to tell cats from dogs.")
    first = f"seed{seeds[0]['seed']}" if seeds else "seed0"
    page.add("### Metric curves and augmented examples",
             page.image(run, "eval_metrics.png", "test metrics per epoch, both models"),
             page.image(run, f"{first}/augmented_examples.png", f"{first}: originals beside their augmented versions"))


def signed(x: float, digits: int | None = None) -> str:
    text = f"{x:+.{digits}f}" if digits is not None else f"{100 * x:+.2f} pt"
    return text.replace("-", "−")


def pm(mean: float | None, std: float | None, fmt=None) -> str:
    if mean is None:
        return "–"
    f = fmt or (lambda v: f"{v:.3f}")
    return f(mean) + (f" ± {f(std)}" if std is not None else "")


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
        counts = ", ".join(f"{v} {k}" for k, v in (m.get("trials") or {}).items() if v)
        page.add(f"{on_data(sweep, 'Searched')} at {c.get('image_size')} px, {c.get('epochs')} epochs per trial "
                 f"(trials: {counts or 'none'}); the best trial, number {m.get('best_trial')}, reached "
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
        ["the original (seed 003), iNaturalist-12K", o["epochs"], pct(o["best_val_acc"]), f"**{pct(o['test_acc'])}**"],
        ["this run", a.get("epochs", ""), pct(a.get("best_val_acc")) if run else "",
         on_data(run, f"**{pct(a['test_acc'])}**") if run else "not run yet"]], right=(1, 2)))
    if run is None:
        page.add(not_run("Part A", f"{MAKE[task]} ARGS=\"--part a\"", []))
    else:
        config = (run.read_json("a", "config.json") or {}).get("config") or run.config.get("config")
        page.add(f"{a.get('params', 0):,} parameters, {a.get('macs', 0):,} multiply-accumulates per image"
                 + (f"; configuration from `{config}`" if config else "; the original's best configuration") + ".")
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
        pretrained = weights_note(run.read_json("b", rows[0]["strategy"], "config.json") or run.config) if rows else ""
        page.add(f"From ImageNet weights{pretrained}; {on_data(run, 'measured')}. The original reported no figure.")
        page.add(table(["strategy", "trainable parameters", "best validation", "test accuracy", "s / epoch"],
                       [[r["description"], f"{r['trainable_params']:,}", pct(r["best_val_acc"]), pct(r["test_acc"]),
                         r["seconds_per_epoch"]] for r in rows], right=(1, 2, 3, 4)))


def fmt_param(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    if isinstance(v, bool):
        return "yes" if v else "no"
    return str(v)
