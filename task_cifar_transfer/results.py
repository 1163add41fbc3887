"""What task_cifar_transfer reports, in one place (no torch: the report imports it): the original report's
figures, the keys its metrics.json carries, its tables (b's and c's results, comparison.md), and its section of
the report page (`section`, with `parts`, `headline` and `is_stand_in`, which report/ asks every task for).
"""
from __future__ import annotations

from pathlib import Path

from common.markdown import Markdown, code, escape, percent, table
from common.tables import write_table
from report.page import Page, count, heading, not_run, on_data, pct, provenance, weights_note
from report.runs import Run

TASK = "task_cifar_transfer"
TITLE = "ResNet-18 from scratch, transfer learning, augmentation, activation maps"
DATA = "CIFAR-10"  # the assignment's own data; any other is a stand-in
MAKE = "make cifar-transfer"
FLAG = "tiny_train"  # a flag only this task's train.py has: it names the task of a config.json without "task"
# The original report: (a) "Accuracy: 8735/10000 (87%)" after 50 epochs; (b) "Testing Accuracy" of its four
# configurations after 30 epochs each, with what each was; (c) and (d) were figures only.
ORIGINAL = {"a": {"test_acc": 0.8735, "epochs": 50},
            "b": {1: 0.738, 2: 0.804, 3: 0.790, 4: 0.792}, "b_epochs": 30,
            "b_setup": {1: "torchvision resnet18 from scratch, all layers trainable",
                        2: "ImageNet weights, all layers trainable",
                        3: "ImageNet weights, first 7 children frozen, head 512-128-10",
                        4: "ImageNet weights, first 7 children frozen, head 512-256-128-128-64-32-10"}}
ORIGINAL_B_KEY = "original_test_acc (CIFAR-10, 32 px)"
# The keys of the experiment's metrics.json that the report reads, per part (parts of a path: "*" is every element
# of a list).
METRICS = {"a": ("a.test_acc", "a.epochs"),
           "b": ("b.results.*.config", "b.results.*.size_px", "b.results.*.setup", "b.results.*.trainable_params",
                 "b.results.*.test_acc"),
           "c": ("c.results.*.study", "c.results.*.setting", "c.results.*.train_acc", "c.results.*.test_acc",
                 "c.split_sizes.train", "c.split_sizes.test"),
           "d": ()}


# ----------------------------------------------------------------------------- the run's own tables
def transfer_row(number: int, size: int, setup: str, m: dict) -> dict:
    """One row of (b)'s results table from a config's metrics.json."""
    return {"config": number, "size_px": size, "setup": setup, "trainable_params": m["trainable_params"],
            "train_acc": m["final_train_acc"], "best_val_acc": m["best_val_acc"], "test_acc": m["test_acc"],
            ORIGINAL_B_KEY: ORIGINAL["b"][number]}


def write_transfer_table(folder: Path, rows: list[dict], dataset: str) -> str:
    """b/results.csv and .md; returns what to print."""
    text = write_table(folder / "results", rows, {k: percent for k in (
        "train_acc", "best_val_acc", "test_acc", ORIGINAL_B_KEY)})
    return f"(b) transfer learning on {dataset} (train_acc: last epoch, augmented):\n{text}"


def study_row(kind: str, setting: str, m: dict) -> dict:
    return {"study": kind, "setting": setting, "train_acc": m["train_acc"], "test_acc": m["test_acc"],
            "test_error": 1 - m["test_acc"]}


def write_study_table(folder: Path, rows: list[dict], dataset: str) -> str:
    """c/results.csv and .md; returns what to print."""
    text = write_table(folder / "results", rows, {k: percent for k in ("train_acc", "test_acc", "test_error")})
    return f"(c) augmentation and dropout study on tiny {dataset} (train_acc: clean train images, eval mode):\n{text}"


def comparison_table(results: dict, dataset: str, subset: int | None) -> str:
    """comparison.md: our figures beside the original report's (CIFAR-10, test accuracy)."""
    rows = []
    if "a" in results:
        rows.append(["(a)", f"our ResNet-18 (BN) from scratch, {results['a']['epochs']} epochs",
                     f"{percent(ORIGINAL['a']['test_acc'])} ({ORIGINAL['a']['epochs']} epochs)",
                     percent(results["a"]["test_acc"])])
    for r in results.get("b", {}).get("results", []):
        rows.append([f"(b) config {r['config']}, {r['size_px']} px", r["setup"], percent(r[ORIGINAL_B_KEY]),
                     percent(r["test_acc"])])
    for study in ("augmentation", "dropout"):  # the full table is c/results.md
        runs = [r for r in results.get("c", {}).get("results", []) if r["study"] == study]
        if runs:
            best, first = max(runs, key=lambda r: r["test_acc"]), runs[0]
            rows.append([f"(c) {study} study, tiny set", f"best: {best['setting']} ({first['setting']}: "
                         f"{percent(first['test_acc'])}; all runs in c/results.md)", "a figure, not in the report's "
                         "text", percent(best["test_acc"])])
    if "d" in results:
        rows.append(["(d)", f"activation maps of the (a) model, test image {results['d']['test_position']}", "figures",
                     f"{len(results['d']['layers'])} PNGs in d/"])
    ours = f"this run ({dataset}{f', subset {subset}' if subset else ''})"
    return table(["part", "setup", "original (CIFAR-10)", ours], rows)


# ----------------------------------------------------------------------------- the report's section
def is_stand_in(config: dict) -> bool:
    return config.get("dataset") != "cifar10"


def headline(parts: dict[str, Run]) -> tuple[str, Run | None, str]:
    """The original's headline figure, and the run and figure of ours beside it on the page's first table."""
    run = parts.get("a")
    ours = pct(run.metrics["a"]["test_acc"]) if run else ""
    return f"(a) {percent(ORIGINAL['a']['test_acc'])} test (CIFAR-10)", run, ours


def activation_source(run: Run) -> tuple[str, list[str]] | None:
    """Part (d)'s maps in a run: its d/ folder, or those eval.py --activations saved beside a checkpoint."""
    b = run.dir("b")
    for folder in ["d", "a", *(f"b/{p.name}" for p in (sorted(b.glob("config*")) if b is not None else []))]:
        inside = run.dir(*folder.split("/"))  # a b/ or d/ that is a symlink out of the run is not looked into
        maps = sorted(p.name for p in inside.glob("activations_*.png")) if inside is not None else []
        if maps:
            return folder, maps
    return None


def parts(run: Run) -> set[str]:
    """The parts a run holds: (a), (b), (c) in its metrics.json, and (d) where its activation maps are."""
    return {p for p in ("a", "b", "c") if p in run.metrics} | ({"d"} if activation_source(run) else set())


def section(page: Page, parts: dict[str, Run], incomplete: list[Path]) -> None:
    """The task's section, in the original's order: (a), (b), (c), (d), each from the latest run that has it."""
    heading(page, TASK)
    o = ORIGINAL
    if parts:
        provenance(page, [(f"({p})", parts[p]) for p in "abcd" if p in parts])
    else:
        page.add(not_run("This task", MAKE, incomplete))

    page.add("### (a) Our ResNet-18 from scratch")
    run = parts.get("a")
    ours = ("not run yet", "") if run is None else (
        on_data(run, f"**{pct(run.metrics['a']['test_acc'])}**"), run.metrics["a"]["epochs"])
    page.add(table(["", "epochs", "test accuracy"], [
        ["the original, CIFAR-10", o["a"]["epochs"], Markdown(f"**{pct(o['a']['test_acc'])}**")],
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
            cfg = run.json_or_none("b", f"config{k}-{size}px", "config.json") or run.config
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
        sizes = c["split_sizes"]
        page.add(f"{on_data(run, 'Measured')}: a class-balanced {count(sizes['train'])} train / "
                 f"{count(sizes['test'])} test images, the last epoch's model (the original: plots only, "
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
        d = run.json_or_none(*folder.split("/"), "metrics.json") or {}
        if "layers" not in d:  # eval.py --activations beside a checkpoint: eval.json
            evaluated = run.json_or_none(*folder.split("/"), "eval.json") or {}
            activations = evaluated.get("activations")
            d = {**(activations if isinstance(activations, dict) else {}), "checkpoint": evaluated.get("checkpoint")}
        which = f"test image {escape(d.get('test_position', '?'))} (a {escape(d.get('label', '?'))})"
        model = code(d["checkpoint"]) if d.get("checkpoint") else f"the {code(folder)} model"
        page.add(f"The stem conv, the stem ReLU and the four residual stages of {model}, for {which}; "
                 "each channel scaled to its own range (a dead channel is black).",
                 page.images_of(run, [f"{folder}/{name}" for name in maps], "(d) activations"))
