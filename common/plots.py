"""The PNGs a run writes: training curves and image grids."""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402


def training_curves(history: list[dict], path: Path, title: str = "") -> None:
    """Loss, accuracy and learning rate against epoch."""
    epochs = [r["epoch"] for r in history]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    axes[0].plot(epochs, [r["train_loss"] for r in history], "o-", label="train")
    axes[0].plot(epochs, [r["val_loss"] for r in history], "o-", label="validation")
    axes[0].set(title="loss", xlabel="epoch")
    axes[1].plot(epochs, [100 * r["train_acc"] for r in history], "o-", label="train (augmented)")
    axes[1].plot(epochs, [100 * r["val_acc"] for r in history], "o-", label="validation")
    axes[1].set(title="accuracy (%)", xlabel="epoch")
    axes[2].plot(epochs, [r["lr"] for r in history], "o-")
    axes[2].set(title="learning rate", xlabel="epoch", yscale="log")
    for ax in axes[:2]:
        ax.legend()
    for ax in axes:
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def image_grid(images: torch.Tensor, titles: list[str], path: Path, suptitle: str = "", cols: int = 5) -> None:
    """A grid of images: uint8 (N, 3, H, W) or float (N, H, W, 3) in [0, 1], each with a title.
    With no images it still writes the file, saying so, so a run folder always has its PNGs."""
    if images.dtype == torch.uint8:
        images = images.detach().cpu().permute(0, 2, 3, 1)
    n = len(images)
    rows = max(1, math.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.9 * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i].numpy(), interpolation="nearest")
            ax.set_title(titles[i], fontsize=8)
    if n == 0:
        axes.flat[0].text(0, 0.5, "no images", fontsize=12)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def prediction_titles(labels, preds, confidences, classes: list[str]) -> list[str]:
    """'true → predicted (confidence)' for each image."""
    return [f"{classes[int(t)]} → {classes[int(p)]} ({float(c):.2f})" for t, p, c in zip(labels, preds, confidences)]
