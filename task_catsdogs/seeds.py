"""Results over seeds: mean ± std per model, and the paired difference (aug − plain) with a 95% interval.

Each seed is one whole twin experiment (split, initial state, augmentation), and both models of a seed
share everything but the training data, so the per-seed differences d_i = aug_i − plain_i are the unit of
analysis (a paired design: what varies between seeds cancels within a pair). The interval is Student's t
on those differences: mean(d) ± t(0.975, n − 1) · sd(d) / √n, with sd the sample standard deviation
(n − 1 in the denominator). It assumes the per-seed differences are independent draws from one roughly
normal distribution; with n = 5 it is wide, and it says nothing about a different test set or data set.
"""
from __future__ import annotations

import math
from pathlib import Path
from statistics import mean, stdev
from typing import Sequence

from common.tables import write_csv

# Student's t, 97.5% quantile (two-sided 95%), df = 1..30 (computed with scipy.stats.t.ppf; scipy is not a
# runtime dependency). Beyond 30 the Cornish-Fisher expansion below is within 1e-5 of it.
T975 = (12.706205, 4.302653, 3.182446, 2.776445, 2.570582, 2.446912, 2.364624, 2.306004, 2.262157, 2.228139,
        2.200985, 2.178813, 2.160369, 2.144787, 2.131450, 2.119905, 2.109816, 2.100922, 2.093024, 2.085963,
        2.079614, 2.073873, 2.068658, 2.063899, 2.059539, 2.055529, 2.051831, 2.048407, 2.045230, 2.042272)
Z975 = 1.959963985

# The figures compared, as (key in common.metrics.classification_metrics, label)
METRICS = (("acc", "accuracy"), ("precision_weighted", "precision (weighted)"),
           ("recall_weighted", "recall (weighted)"), ("f1_weighted", "F1 (weighted)"),
           ("precision_macro", "precision (macro)"), ("recall_macro", "recall (macro)"), ("f1_macro", "F1 (macro)"))
MODELS = (("plain", "plain"), ("aug", "augmented"))


def t_quantile_975(df: int) -> float:
    """Student's t 97.5% quantile for df degrees of freedom: the table to 30, then the Cornish-Fisher
    expansion about the normal quantile (Abramowitz & Stegun 26.7.5)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    if df <= len(T975):
        return T975[df - 1]
    z = Z975
    g1 = (z ** 3 + z) / 4
    g2 = (5 * z ** 5 + 16 * z ** 3 + 3 * z) / 96
    g3 = (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / 384
    g4 = (79 * z ** 9 + 776 * z ** 7 + 1482 * z ** 5 - 1920 * z ** 3 - 945 * z) / 92160
    return z + g1 / df + g2 / df ** 2 + g3 / df ** 3 + g4 / df ** 4


def paired_difference(plain: Sequence[float], aug: Sequence[float]) -> dict:
    """mean, sd and the 95% t interval of aug_i − plain_i; with one pair, no sd and no interval (None)."""
    if len(plain) != len(aug) or not plain:
        raise ValueError("need the same, non-zero number of plain and augmented results")
    diffs = [a - p for p, a in zip(plain, aug)]
    n = len(diffs)
    out = {"n": n, "mean": mean(diffs), "sd": None, "ci95": None, "t": None}
    if n > 1:
        sd = stdev(diffs)
        t = t_quantile_975(n - 1)
        half = t * sd / math.sqrt(n)
        out |= {"sd": sd, "t": t, "ci95": [out["mean"] - half, out["mean"] + half]}
    return out


def summarize(per_seed: list[dict]) -> list[dict]:
    """One row per metric: mean and std of each model over seeds, and the paired difference.
    `per_seed`: [{"seed": s, "plain": {metric: value}, "aug": {metric: value}}, ...]."""
    rows = []
    for key, label in METRICS:
        values = {m: [r[m][key] for r in per_seed] for m, _ in MODELS}
        row = {"metric": key, "label": label}
        for m, _ in MODELS:
            row[f"{m}_mean"] = mean(values[m])
            row[f"{m}_std"] = stdev(values[m]) if len(values[m]) > 1 else None
        row["diff"] = paired_difference(values["plain"], values["aug"])
        rows.append(row)
    return rows


def _pm(m: float, s: float | None) -> str:
    return f"{m:.3f} ± {s:.3f}" if s is not None else f"{m:.3f}"


def _signed(x: float) -> str:
    return f"{x:+.3f}".replace("-", "−")


def summary_markdown(rows: list[dict], n_test: int, seeds: Sequence[int]) -> str:
    """The table `make catsdogs` prints: fractions in [0, 1], last epoch, over the seeds."""
    n = len(seeds)
    interval = (f"mean [95% interval, t({n - 1}) = {rows[0]['diff']['t']:.3f}]" if n > 1
                else "one seed: no interval")
    lines = [f"Test figures at the last epoch, {n} seed{'s' if n > 1 else ''} ({', '.join(map(str, seeds))}), "
             f"{n_test} test images each (one image = {1 / n_test:.3f} of accuracy); mean ± std over seeds.",
             "",
             f"| metric | plain | augmented | aug − plain, paired: {interval} |",
             "|---|---|---|---|"]
    for r in rows:
        d = r["diff"]
        diff = _signed(d["mean"]) + (f" [{_signed(d['ci95'][0])}, {_signed(d['ci95'][1])}]" if d["ci95"] else "")
        lines.append(f"| {r['label']} | {_pm(r['plain_mean'], r['plain_std'])} | "
                     f"{_pm(r['aug_mean'], r['aug_std'])} | {diff} |")
    return "\n".join(lines) + "\n"


def per_seed_markdown(per_seed: list[dict]) -> str:
    lines = ["| seed | plain accuracy | augmented accuracy | difference | plain F1 (weighted) | augmented F1 (weighted) "
             "| difference |", "|---|---|---|---|---|---|---|"]
    for r in per_seed:
        p, a = r["plain"], r["aug"]
        lines.append(f"| {r['seed']} | {p['acc']:.3f} | {a['acc']:.3f} | {_signed(a['acc'] - p['acc'])} | "
                     f"{p['f1_weighted']:.3f} | {a['f1_weighted']:.3f} | {_signed(a['f1_weighted'] - p['f1_weighted'])} |")
    return "\n".join(lines) + "\n"


def write_seed_tables(run_dir: Path, per_seed: list[dict], rows: list[dict]) -> None:
    """seeds.csv (one row per seed and model) and summary.csv (one row per metric)."""
    write_csv(run_dir / "seeds.csv", [{"seed": r["seed"], "model": m, **{k: f"{r[m][k]:.6f}" for k, _ in METRICS}}
                                      for r in per_seed for m, _ in MODELS])
    blank = lambda v: "" if v is None else v  # noqa: E731
    write_csv(run_dir / "summary.csv", [
        {"metric": r["metric"], "plain_mean": r["plain_mean"], "plain_std": blank(r["plain_std"]),
         "aug_mean": r["aug_mean"], "aug_std": blank(r["aug_std"]), "diff_mean": r["diff"]["mean"],
         "diff_sd": blank(r["diff"]["sd"]), "diff_ci95_low": (r["diff"]["ci95"] or [""])[0],
         "diff_ci95_high": (r["diff"]["ci95"] or ["", ""])[1], "n_seeds": r["diff"]["n"]} for r in rows])
