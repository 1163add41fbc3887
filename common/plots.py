"""The PNGs a run writes: training curves and image grids."""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from common.text import printable  # noqa: E402

# Titles and labels carry names from the data (class folders, file names, dataset names), and a name may hold
# "$": matplotlib would read "$x$" as mathtext, and fail to save the figure on "$\\foo$". Such texts are drawn
# as they are, with this; the axes' own tick numbers keep mathtext (a log axis writes its powers with it).
PLAIN = {"parse_math": False}


def text(value: object) -> str:
    """A title or label as drawn: each line through common.text.printable, so a control character in a name
    (an escape sequence, a bell) is shown escaped, never handed to the font."""
    return "\n".join(printable(line) for line in str(value).split("\n"))


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
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers: no 1.5 tick
    if title:
        fig.suptitle(text(title), **PLAIN)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def step_losses(steps: list[dict], path: Path, title: str = "") -> None:
    """The training loss of every step (steps.csv), epochs marked, with the learning rate on a second axis."""
    x = list(range(1, len(steps) + 1))
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.plot(x, [float(r["loss"]) for r in steps], lw=0.8, label="training loss, per step")
    ax.set(xlabel="step", ylabel="loss")
    ax.set_title(text(title or "training loss per step"), **PLAIN)
    ends = [i + 1 for i in range(len(steps) - 1) if steps[i]["epoch"] != steps[i + 1]["epoch"]]
    for end in ends:
        ax.axvline(end + 0.5, color="grey", lw=0.5, ls=":")
    lr = ax.twinx()
    lr.plot(x, [float(r["lr"]) for r in steps], color="tab:orange", lw=0.8)
    lr.set_ylabel("learning rate", color="tab:orange")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def image_grid(images: torch.Tensor, titles: list[str], path: Path, suptitle: str = "", cols: int = 5,
               title_colors: list[str] | None = None) -> None:
    """A grid of images: uint8 (N, 3, H, W) or float (N, H, W, 3) in [0, 1], each with a title (in
    `title_colors`, if given). With no images it still writes the file, saying so, so a run folder
    always has its PNGs."""
    if images.dtype == torch.uint8:
        images = images.detach().cpu().permute(0, 2, 3, 1)
    n = len(images)
    cols = max(1, min(cols, n))  # one misclassified image is one panel, not one of five with four empty
    rows = max(1, math.ceil(n / cols))
    width = max(2.6 * cols, 0.11 * len(suptitle))  # wide enough for the title (about 0.11 in a character)
    fig, axes = plt.subplots(rows, cols, figsize=(width, 2.9 * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i].numpy(), interpolation="nearest")
            ax.set_title(text(titles[i]), fontsize=8, **PLAIN, **({"color": title_colors[i]} if title_colors else {}))
    if n == 0:
        axes.flat[0].text(0, 0.5, "no images", fontsize=12)
    if suptitle:
        fig.suptitle(text(suptitle), **PLAIN)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.45 / fig.get_figheight()) if suptitle else None)  # room for the suptitle
    fig.savefig(path, dpi=110)
    plt.close(fig)


def prediction_titles(labels, preds, confidences, classes: list[str]) -> list[str]:
    """'true → predicted (confidence)' for each image."""
    return [f"{classes[int(t)]} → {classes[int(p)]} ({float(c):.2f})" for t, p, c in zip(labels, preds, confidences)]


def bar_chart(groups: dict[str, dict[str, float]], path: Path, ylabel: str, title: str = "") -> None:
    """One panel per group, one labelled bar per entry: {"augmentation": {"none": 71.2, ...}, ...}."""
    fig, axes = plt.subplots(1, len(groups), figsize=(6.5 * len(groups), 4.5), squeeze=False)
    for ax, (group, values) in zip(axes.flat, groups.items()):
        bars = ax.bar(range(len(values)), list(values.values()), color="tab:blue")
        ax.bar_label(bars, fmt="%.1f", fontsize=8)
        ax.set_xticks(range(len(values)), [text(v) for v in values], rotation=40, ha="right", **PLAIN)
        ax.set_title(text(group), **PLAIN)
        ax.set_ylabel(ylabel)
        ax.grid(axis="y", alpha=0.3)
    if title:
        fig.suptitle(text(title), **PLAIN)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def tile(images: torch.Tensor, cols: int, pad: int = 1, fill: float = 1.0) -> torch.Tensor:
    """(N, C, h, w) -> one (C, H, W) mosaic, `cols` per row, separated by `pad` pixels of `fill`.
    One imshow of a mosaic draws in a fraction of the time of one axes per image."""
    n, c, h, w = images.shape
    rows = math.ceil(n / cols)
    out = torch.full((c, rows * (h + pad) - pad, cols * (w + pad) - pad), fill, dtype=images.dtype)
    for i, img in enumerate(images):
        r, k = divmod(i, cols)
        out[:, r * (h + pad): r * (h + pad) + h, k * (w + pad): k * (w + pad) + w] = img
    return out


def labelled_rows(rows: dict[str, torch.Tensor], path: Path, title: str = "") -> None:
    """Rows of uint8 images (n, 3, h, w), one row per label, the label at the left of its row."""
    batches = list(rows.values())
    n, _, h, w = batches[0].shape
    mosaic = tile(torch.cat(batches).cpu(), cols=n, pad=2, fill=255)
    fig, ax = plt.subplots(figsize=(1.2 * n + 2, 1.2 * len(rows) + 0.6))
    ax.imshow(mosaic.permute(1, 2, 0).numpy(), interpolation="nearest")
    ax.set_yticks([r * (h + 2) + h / 2 for r in range(len(rows))], [text(r) for r in rows], **PLAIN)
    ax.set_xticks([])
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    if title:
        ax.set_title(text(title), **PLAIN)
    fig.savefig(path, dpi=110, bbox_inches="tight")  # "tight": room for the longest row label
    plt.close(fig)


def activation_grid(image: torch.Tensor, maps: torch.Tensor, path: Path, title: str, max_channels: int = 64) -> None:
    """The input image (uint8 (3, H, W)) beside the first `max_channels` channels of one sample's
    activations (C, h, w), 8 per row in channel order, each in grey scaled to its own min..max
    (a constant channel, e.g. a dead ReLU, is black)."""
    maps = maps.detach().float().cpu()[:max_channels]
    lo = maps.amin(dim=(1, 2), keepdim=True)
    hi = maps.amax(dim=(1, 2), keepdim=True)
    scaled = ((maps - lo) / (hi - lo).clamp_min(1e-8)).unsqueeze(1)
    mosaic = tile(scaled, cols=min(8, len(maps)), pad=max(1, maps.shape[-1] // 16))[0]
    aspect = mosaic.shape[0] / mosaic.shape[1]  # the figure is only as tall as the mosaic needs
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 0.8 + 7.3 * max(aspect, 0.5)),
                                      gridspec_kw={"width_ratios": [1, 2]})
    left.imshow(image.detach().cpu().permute(1, 2, 0).numpy(), interpolation="nearest")
    left.set_title("input")
    right.imshow(mosaic.numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    right.set_title(f"channels 0-{len(maps) - 1}, row by row")
    for ax in (left, right):
        ax.axis("off")
    fig.suptitle(text(title), **PLAIN)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def confusion_matrix_png(cm: list[list[int]], classes: list[str], path: Path, title: str = "") -> None:
    """A confusion matrix (rows: true class, columns: predicted) as a heat map, each cell with its count,
    shaded by the share of its row (so that large and small classes read alike)."""
    counts = torch.tensor(cm, dtype=torch.float64)
    share = counts / counts.sum(1, keepdim=True).clamp_min(1)
    n = len(classes)
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * n, 0.8 + 0.7 * n))
    ax.imshow(share.numpy(), cmap="Blues", vmin=0, vmax=1)
    for t in range(n):
        for p in range(n):
            ax.text(p, t, f"{int(counts[t, p])}", ha="center", va="center", fontsize=8,
                    color="white" if share[t, p] > 0.5 else "black")
    ax.set_xticks(range(n), [text(c) for c in classes], rotation=45, ha="right", **PLAIN)
    ax.set_yticks(range(n), [text(c) for c in classes], **PLAIN)
    ax.set(xlabel="predicted", ylabel="true")
    if title:
        ax.set_title(text(title), **PLAIN)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
