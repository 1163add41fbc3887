"""What task_inaturalist reports, in one place (no torch: the report imports it): the original report's
figures, the keys its metrics.json carries, its tables (part B's strategies), and its section of the report
page (`section`, with `parts`, `headline` and `is_stand_in`, which report/ asks every task for).
"""
from __future__ import annotations

from pathlib import Path

from common.markdown import Markdown, code, escape, percent, table
from common.tables import markdown, write_csv
from report.page import Page, count, heading, not_run, on_data, pct, provenance, weights_note
from report.runs import Run

TASK = "task_inaturalist"
TITLE = "iNaturalist-12K: a configurable CNN, its sweep, ResNet-50 fine-tuning"
DATA = "iNaturalist-12K"  # the assignment's own data; any other is a stand-in
MAKE = "make inaturalist"
FLAG = "ft_epochs"  # a flag only this task's train.py has: it names the task of a config.json without "task"
# The original report: its sweep's best configuration (part A) reached 43.38% best validation and 44.82% test
# accuracy on iNaturalist-12K after 40 epochs (train 53.76%); it reported no figure for part B.
ORIGINAL = {"best_val_acc": 0.4338, "test_acc": 0.4482, "train_acc": 0.5376, "epochs": 40}
# The keys of the experiment's metrics.json (and the sweep's) that the report reads, per part ("*": every element).
METRICS = {"a": ("a.test_acc", "a.best_val_acc", "a.epochs", "a.params", "a.macs"),
           "b": ("b.*.strategy", "b.*.description", "b.*.trainable_params", "b.*.best_val_acc", "b.*.test_acc",
                 "b.*.seconds_per_epoch"),
           "sweep": ("trials", "best_trial", "best_val_acc", "best_params")}


def strategy_row(strategy: str, description: str, m: dict) -> dict:
    """One row of part B's table from a strategy's metrics.json."""
    return {"strategy": strategy, "description": description, "trainable_params": m["trainable_params"],
            "params": m["params"], "best_val_acc": m["best_val_acc"], "test_acc": m["test_acc"],
            "seconds_per_epoch": m["seconds_per_epoch"], "peak_memory_mib": m.get("peak_memory_mib")}


def write_strategies(rows: list[dict], folder: Path, what: str, on_cuda: bool) -> str:
    """b/strategies.md and .csv; returns what to print. `what`: the data, size, epochs and device in words."""
    memory = ("torch.cuda.max_memory_allocated" if on_cuda else
              "the process's peak PSS so far (the data, and the memory that earlier rows left for reuse, included)")
    shown = [{"strategy": r["description"], "trainable parameters": r["trainable_params"],
              "val acc": r["best_val_acc"], "test acc": r["test_acc"], "s / epoch": r["seconds_per_epoch"],
              "peak memory (MiB)": r["peak_memory_mib"]} for r in rows]
    text = f"{what}; peak memory: {memory}\n\n" + markdown(
        shown, {"val acc": percent, "test acc": percent, "s / epoch": lambda v: f"{v:.1f}",
                "peak memory (MiB)": lambda v: "-" if v is None else f"{v:,.0f}"},
        align_right=list(shown[0])[1:])
    (folder / "strategies.md").write_text(text)
    write_csv(folder / "strategies.csv", rows)
    return text


# ----------------------------------------------------------------------------- the report's section
SWEEP = "make inaturalist-sweep"  # 20 trials of 10 epochs
CLASSES = {"amphibia", "animalia", "arachnida", "aves", "fungi", "insecta", "mammalia", "mollusca", "plantae",
           "reptilia"}  # iNaturalist-12K's: a folder with these classes is the assignment's data


def is_stand_in(config: dict) -> bool:
    return not (config.get("dataset") == "inaturalist" or (config.get("dataset") == "folder" and
                                                           {str(c).lower() for c in config.get("classes") or []}
                                                           == CLASSES))


def parts(run: Run) -> set[str]:
    """The sweep's folder is the sweep; an experiment's holds part A, part B, or both."""
    return {"sweep"} if run.config.get("sweep") else {p for p in ("a", "b") if p in run.metrics}


def headline(parts: dict[str, Run]) -> tuple[str, Run | None, str]:
    """The original's headline figure, and the run and figure of ours beside it on the page's first table."""
    run = parts.get("a")
    return (f"part A {percent(ORIGINAL['test_acc'])} test (iNaturalist-12K)", run,
            pct(run.metrics["a"]["test_acc"]) if run else "")


def section(page: Page, parts: dict[str, Run], incomplete: list[Path]) -> None:
    """The task's section: the sweep, part A (the best configuration, tested once), part B's strategies."""
    heading(page, TASK)
    o = ORIGINAL
    if parts:
        names = {"sweep": "the sweep", "a": "part A", "b": "part B"}
        provenance(page, [(names[p], parts[p]) for p in ("sweep", "a", "b") if p in parts])
    else:
        page.add(not_run("This task", (SWEEP, f'{MAKE} ARGS="--config runs/task_inaturalist/sweep/best_config.json"'),
                         incomplete))

    page.add("### The sweep: its three plots and the best configuration")
    sweep = parts.get("sweep")
    if sweep is None:
        page.add(not_run("The sweep", SWEEP, []))
    else:
        m, c = sweep.metrics, sweep.config
        counts = escape(", ".join(f"{v} {k}" for k, v in m["trials"].items() if v) or "none")
        page.add(f"{on_data(sweep, 'Searched')} at {escape(c.get('image_size'))} px, {escape(c.get('epochs'))} "
                 f"epochs per trial (trials: {counts}); the best trial, number {escape(m['best_trial'])}, reached "
                 f"**{pct(m['best_val_acc'])}** validation accuracy (the original's best: {pct(o['best_val_acc'])} "
                 "on iNaturalist-12K).")
        best = [(k, fmt_param(v)) for k, v in (m["best_params"] or {}).items()]
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
        ["the original, iNaturalist-12K", o["epochs"], pct(o["best_val_acc"]),
         Markdown(f"**{pct(o['test_acc'])}**")],
        ["this run", a["epochs"] if run else "", pct(a["best_val_acc"]) if run else "",
         on_data(run, f"**{pct(a['test_acc'])}**") if run else "not run yet"]], right=(1, 2)))
    if run is None:
        page.add(not_run("Part A", f"{MAKE} ARGS=\"--part a\"", []))
    else:
        config = (run.json_or_none("a", "config.json") or {}).get("config") or run.config.get("config")
        page.add(f"{count(a['params'])} parameters, {count(a['macs'])} multiply-accumulates per image"
                 + (f"; configuration from {code(config)}" if config else "; the original's best configuration") + ".")
        page.add("### The 10 × 3 grid and the confusion matrix",
                 page.pair(page.image(run, "a/grid.png", "three test images per class, with the predictions"),
                           page.image(run, "a/confusion_matrix.png", "confusion matrix on the test set")))

    page.add("### Part B: ResNet-50 fine-tuning strategies")
    run = parts.get("b")
    if run is None:
        page.add("The original reported no figure for part B.",
                 not_run("Part B", f'{MAKE} ARGS="--part b"', []))
    else:
        rows = run.metrics["b"]
        # the strategy's name is data: a sub-folder of the run, or nothing (Run.json_or_none stays inside the run)
        strategy = run.json_or_none("b", str(rows[0]["strategy"]), "config.json") if rows else None
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
