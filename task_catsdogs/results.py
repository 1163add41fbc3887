"""What task_catsdogs reports, in one place (no torch: the report imports it): the original report's figures,
the keys its metrics.json carries, its tables (summary.md, summary.csv, seeds.csv), and its section of the
report page (`section`, with `parts`, `headline` and `is_stand_in`, which report/ asks every task for).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from common.markdown import Markdown, escape, percent, plus_minus, signed, table
from common.tables import write_csv
from common.text import printable
from report.page import Page, count, fixed, heading, not_run, on_data, pct, pm, points, provenance, weights_note
from report.page import signed as signed_figure
from report.runs import Run, ShapeError, number
from task_catsdogs.seeds import METRICS as FIGURES  # the figures compared, (key, label)
from task_catsdogs.seeds import MODELS

TASK = "task_catsdogs"
TITLE = "Cats vs dogs: twin ResNet-50s, with and without 3-of-10 augmentation"
DATA = "cats and dogs"  # the assignment's own data; any other is a stand-in
MAKE = "make catsdogs"
FLAG = "aug_calls"  # a flag only this task's train.py has: it names the task of a config.json without "task"
# What the original report printed for its single run: 10 epochs, random init, 112 train / 28 test photos.
ORIGINAL = {"plain": {"acc": 0.4643, "precision_weighted": 0.4067, "recall_weighted": 0.4643, "f1_weighted": 0.3665},
            "aug": {"acc": 0.5000, "precision_weighted": 0.5000, "recall_weighted": 0.5000, "f1_weighted": 0.4556},
            "train_images": 112, "test_images": 28, "epochs": 10, "params": 23_512_130}
# The keys of the experiment's metrics.json that the report reads (parts of a path: "*" is every element of a list).
METRICS = {"run": ("per_seed.*.seed", "per_seed.*.plain.acc", "per_seed.*.aug.acc", "per_seed.*.plain.f1_weighted",
                   "per_seed.*.aug.f1_weighted", "summary.*.metric", "summary.*.label", "summary.*.plain_mean",
                   "summary.*.plain_std", "summary.*.aug_mean", "summary.*.aug_std", "summary.*.diff.mean",
                   "summary.*.diff.ci95", "sizes.train", "sizes.test")}


# ----------------------------------------------------------------------------- the run's own tables
def summary_table(rows: list[dict], n_test: int, seeds: Sequence[int]) -> str:
    """The table `make catsdogs` prints: fractions in [0, 1], last epoch, over the seeds."""
    n = len(seeds)
    interval = f"mean [95% interval, t({n - 1}) = {rows[0]['diff']['t']:.3f}]" if n > 1 else "one seed: no interval"
    lines = []
    for r in rows:
        d = r["diff"]
        ci = f" [{signed(d['ci95'][0])}, {signed(d['ci95'][1])}]" if d["ci95"] else ""
        lines.append([r["label"], plus_minus(r["plain_mean"], r["plain_std"]), plus_minus(r["aug_mean"], r["aug_std"]),
                      signed(d["mean"]) + ci])
    return (f"Test figures at the last epoch, {n} seed{'s' if n > 1 else ''} ({', '.join(map(str, seeds))}), "
            f"{n_test} test images each (one image = {1 / n_test:.3f} of accuracy); mean ± std over seeds.\n\n"
            + table(["metric", "plain", "augmented", f"aug − plain, paired: {interval}"], lines))


def per_seed_table(per_seed: list[dict]) -> str:
    rows = [[r["seed"], f"{r['plain']['acc']:.3f}", f"{r['aug']['acc']:.3f}",
             signed(r["aug"]["acc"] - r["plain"]["acc"]),
             f"{r['plain']['f1_weighted']:.3f}", f"{r['aug']['f1_weighted']:.3f}",
             signed(r["aug"]["f1_weighted"] - r["plain"]["f1_weighted"])] for r in per_seed]
    return table(["seed", "plain accuracy", "augmented accuracy", "difference", "plain F1 (weighted)",
                  "augmented F1 (weighted)", "difference"], rows)


def seed_lines(seed: int, result: dict, classes: Sequence[str]) -> str:
    """What a seed's run prints at its end: each model's test figures at the last epoch."""
    return "\n".join(
        f"seed {seed}, model_{m}, last epoch: accuracy {r['acc']:.4f}, precision (weighted) "
        f"{r['precision_weighted']:.4f}, recall {r['recall_weighted']:.4f}, F1 {r['f1_weighted']:.4f}, F1 (macro) "
        f"{r['f1_macro']:.4f}; confusion matrix (rows true {'/'.join(map(printable, classes))}, columns predicted) "
        f"{r['confusion_matrix']}" for m, r in ((m, result[m]) for m, _ in MODELS if m in result))


def original_line() -> str:
    plain, aug = ORIGINAL["plain"], ORIGINAL["aug"]
    return (f"The original report (one run, {ORIGINAL['test_images']} test images, random init): plain accuracy "
            f"{plain['acc']:.4f}, F1 (weighted) {plain['f1_weighted']:.4f}; augmented accuracy {aug['acc']:.4f}, "
            f"F1 (weighted) {aug['f1_weighted']:.4f}.\n")


def write_summary(run_dir: Path, title: str, per_seed: list[dict], rows: list[dict], n_test: int) -> str:
    """summary.md (the summary table, the per-seed table, the original's figures), summary.csv (one row per
    metric) and seeds.csv (one row per seed and model); returns summary.md's text."""
    seeds = [r["seed"] for r in per_seed]
    text = f"{summary_table(rows, n_test, seeds)}\n{per_seed_table(per_seed)}\n{original_line()}"
    (run_dir / "summary.md").write_text(f"# {title}\n\n{text}")
    write_csv(run_dir / "seeds.csv", [{"seed": r["seed"], "model": m, **{k: f"{r[m][k]:.6f}" for k, _ in FIGURES}}
                                      for r in per_seed for m, _ in MODELS])
    blank = lambda v: "" if v is None else v  # noqa: E731
    write_csv(run_dir / "summary.csv", [
        {"metric": r["metric"], "plain_mean": r["plain_mean"], "plain_std": blank(r["plain_std"]),
         "aug_mean": r["aug_mean"], "aug_std": blank(r["aug_std"]), "diff_mean": r["diff"]["mean"],
         "diff_sd": blank(r["diff"]["sd"]), "diff_ci95_low": (r["diff"]["ci95"] or [""])[0],
         "diff_ci95_high": (r["diff"]["ci95"] or ["", ""])[1], "n_seeds": r["diff"]["n"]} for r in rows])
    return text


# ----------------------------------------------------------------------------- the report's section
def is_stand_in(config: dict) -> bool:
    """Oxford-IIIT Pet, or a folder of cats and dogs (Cat/ and Dog/, cats/ and dogs/), is the assignment's data."""
    classes = {str(c).lower().rstrip("s") for c in config.get("classes") or []}
    return not (config.get("dataset") == "pets" or (config.get("dataset") == "folder" and classes == {"cat", "dog"}))


def parts(run: Run) -> set[str]:
    return {"run"}


def headline(parts: dict[str, Run]) -> tuple[str, Run | None, str]:
    """The original's headline figure, and the run and figure of ours beside it on the page's first table."""
    run = parts.get("run")
    ours = ""
    if run is not None:
        acc = next((r for r in run.metrics["summary"] if r["metric"] == "acc"), None)
        if acc is None:
            raise ShapeError("its metrics.json has no 'acc' row in 'summary'")
        ours = f"{pct(acc['plain_mean'])} / {pct(acc['aug_mean'])}"
    return (f"plain / augmented {percent(ORIGINAL['plain']['acc'])} / {percent(ORIGINAL['aug']['acc'])} "
            f"({ORIGINAL['test_images']} test photos)", run, ours)


def section(page: Page, parts: dict[str, Run], incomplete: list[Path]) -> None:
    """The task's section: per seed, the paired difference, the original's single run beside ours, the plots."""
    heading(page, TASK)
    run, o = parts.get("run"), ORIGINAL
    original_row = ["the original: 1 run, random init", f"{o['train_images']} / {o['test_images']}",
                    Markdown(f"**{pct(o['plain']['acc'])}**, F1 {o['plain']['f1_weighted']:.4f}"),
                    Markdown(f"**{pct(o['aug']['acc'])}**, F1 {o['aug']['f1_weighted']:.4f}")]
    header = ["", "train / test images", "plain: accuracy, F1 (weighted)", "augmented: accuracy, F1 (weighted)"]
    if run is None:
        page.add(table(header, [original_row]), not_run("This task", MAKE, incomplete))
        return
    provenance(page, [("the run", run)])
    m, c = run.metrics, run.config
    seeds, sizes, summary = m["per_seed"], m["sizes"], {r["metric"]: r for r in m["summary"]}
    weights = weights_note(c, pretrained=c.get("init") == "imagenet")
    page.add("### Per seed",
             f"Test figures at the last epoch; ResNet-50 ({escape(c.get('init'))} init{weights}) at "
             f"{escape(c.get('image_size'))} px, {escape(c.get('epochs'))} epochs, {on_data(run, 'measured')}.")
    page.add(table(["seed", "plain accuracy", "augmented accuracy", "aug − plain", "plain F1 (weighted)",
                    "augmented F1 (weighted)", "aug − plain"],
                   [[r["seed"], pct(r["plain"]["acc"]), pct(r["aug"]["acc"]),
                     points(number(r["aug"]["acc"]) - number(r["plain"]["acc"])),
                     fixed(r["plain"]["f1_weighted"]), fixed(r["aug"]["f1_weighted"]),
                     signed_figure(number(r["aug"]["f1_weighted"]) - number(r["plain"]["f1_weighted"]))]
                    for r in seeds],
                   right=tuple(range(7))))
    n = len(seeds)
    page.add("### The paired difference, augmented − plain",
             f"Mean ± std over {n} seed{'s' if n > 1 else ''}; the difference is paired per seed, with its 95% "
             "interval (Student's t on the per-seed differences; one seed gives no interval). "
             "An interval that excludes 0 is evidence of a real difference on this data.")
    rows = []
    for r in summary.values():
        d = r["diff"]
        ci = f" [{signed_figure(d['ci95'][0])}, {signed_figure(d['ci95'][1])}]" if d["ci95"] else " (no interval)"
        rows.append([r["label"], pm(r["plain_mean"], r["plain_std"]), pm(r["aug_mean"], r["aug_std"]),
                     Markdown(f"**{signed_figure(d['mean'])}**{ci}")])
    page.add(table(["metric", "plain", "augmented", "aug − plain: mean [95% interval]"], rows, right=(1, 2, 3)))
    page.add("### The original's single run beside ours")
    acc, f1 = summary["acc"], summary["f1_weighted"]
    ours = [f"this run: mean ± std over {n} seed{'s' if n > 1 else ''}",
            f"{count(sizes['train'])} / {count(sizes['test'])}",
            Markdown(on_data(run, f"**{pm(acc['plain_mean'], acc['plain_std'], pct)}**") +
                     f", F1 {pm(f1['plain_mean'], f1['plain_std'])}"),
            Markdown(f"**{pm(acc['aug_mean'], acc['aug_std'], pct)}**, F1 {pm(f1['aug_mean'], f1['aug_std'])}")]
    page.add(table(header, [original_row, ours]),
             f"On {o['test_images']} test images one image is {pct(1 / o['test_images'], 1)} of accuracy; the "
             "original's confusion matrices show that neither of its models had learnt to tell cats from dogs.")
    first = f"seed{seeds[0]['seed']}" if seeds else "seed0"  # data: Page.image reads it only inside the run
    page.add("### Metric curves and augmented examples",
             page.image(run, "eval_metrics.png", "test metrics per epoch, both models"),
             page.image(run, f"{first}/augmented_examples.png", f"{first}: originals beside their augmented versions"))
