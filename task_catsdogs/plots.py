"""This task's figures: augmented examples, image statistics, and the per-epoch test metrics of both models."""
from __future__ import annotations

from pathlib import Path
from statistics import mean, stdev

import torch
from matplotlib.ticker import MaxNLocator

from common.plots import PLAIN, image_grid, plt, text

# history.csv column -> panel title, in panel order
EPOCH_PANELS = (("test_acc", "test accuracy"), ("test_precision_weighted", "precision (weighted)"),
                ("test_recall_weighted", "recall (weighted)"), ("test_f1_weighted", "F1 (weighted)"),
                ("test_precision_macro", "precision (macro)"), ("test_recall_macro", "recall (macro)"),
                ("test_f1_macro", "F1 (macro)"), ("train_loss", "train loss"))
MODEL_STYLE = {"plain": ("model_plain (originals)", "tab:blue"),
               "aug": ("model_aug (originals + augmented)", "tab:orange")}


def augmented_examples(originals: torch.Tensor, augmented: torch.Tensor, names: list[list[str]],
                       row_classes: list[str], path: Path) -> None:
    """Rows of (original, first augmented version, second augmented version), as the model sees them
    (resized), each augmented one titled with its three augmentations in the order applied.
    originals: (n, 3, S, S); augmented: (n, calls, 3, S, S); names: for each augmented image (row-major), its
    augmentations; row_classes: the class name of each row."""
    n, calls = augmented.shape[:2]
    images = torch.cat([originals.unsqueeze(1), augmented], dim=1).flatten(0, 1)
    titles = []
    for i in range(n):
        titles.append(f"original ({row_classes[i]})")
        titles += ["\n".join(f"{k + 1}. {name}" for k, name in enumerate(names[i * calls + c])) for c in range(calls)]
    image_grid(images, titles, path, "train originals beside their two augmented versions (3 of 10 each)",
               cols=1 + calls)


def image_stats_png(rows: list[dict], path: Path) -> None:
    """Counts per class, side by side in each split: train before and after the augmentation, validation, test."""
    splits = ("train (originals)", "train (after augmentation)", "validation", "test")
    per_class = [r for r in rows if r["class"] != "all"]
    width = 0.8 / len(per_class)
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for k, r in enumerate(per_class):
        bars = ax.bar([i + (k - (len(per_class) - 1) / 2) * width for i in range(len(splits))],
                      [r[s] for s in splits], width, label=text(r["class"]).replace("$", r"\$"))  # a name, not mathtext
        ax.bar_label(bars, fontsize=8)
    ax.set_xticks(range(len(splits)), splits)
    ax.set(ylabel="images", title="images per class, before and after the augmentation")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def eval_metrics(histories: dict[str, list[list[dict]]], path: Path, title: str) -> None:
    """One panel per metric, both models on the same axes, against epoch. `histories`: model -> one
    history (list of rows) per seed; with several seeds, the mean line and a ±1 std band."""
    fig, axes = plt.subplots(2, 4, figsize=(18, 7.5), sharex=True)
    for ax, (column, label) in zip(axes.flat, EPOCH_PANELS):
        for model, runs in histories.items():
            legend, colour = MODEL_STYLE[model]
            epochs = [int(r["epoch"]) for r in runs[0]]
            values = [[float(run[e][column]) for run in runs] for e in range(len(epochs))]
            centre = [mean(v) for v in values]
            ax.plot(epochs, centre, "o-", color=colour, ms=3,
                    label=legend + (f", mean of {len(runs)} seeds" if len(runs) > 1 else ""))
            if len(runs) > 1:
                spread = [stdev(v) for v in values]
                ax.fill_between(epochs, [c - s for c, s in zip(centre, spread)],
                                [c + s for c, s in zip(centre, spread)], color=colour, alpha=0.15, lw=0)
        ax.set(title=label, xlabel="epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
        if column != "train_loss":
            ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=8, loc="lower right")
    fig.suptitle(text(title), **PLAIN)  # it names the data folder: plain text, whatever the name holds
    fig.subplots_adjust(left=0.04, right=0.99, bottom=0.08, top=0.9, wspace=0.22, hspace=0.3)  # tight_layout: 4x slower
    fig.savefig(path, dpi=110)
    plt.close(fig)
