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
from statistics import mean, stdev
from typing import Sequence

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
