"""Part A's test figures: the 10 x 3 prediction grid and the confusion matrix of the model that is
reported (tested once, after training chose its checkpoint on validation)."""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from common.data import ImageData, balanced_indices
from common.metrics import confusion_matrix
from common.plots import confusion_matrix_png, image_grid
from common.training import evaluate


def grid_picks(labels: torch.Tensor, per_class: int, seed: int) -> torch.Tensor:
    """`per_class` test positions of every class (fewer if it has fewer), seeded random, class by class."""
    idx = balanced_indices(labels, per_class, seed)
    return idx[labels.cpu()[idx].argsort(stable=True)]  # one row per class, in class order


def prediction_grid(images: torch.Tensor, labels: torch.Tensor, preds: torch.Tensor, classes: list[str],
                    path: Path, title: str, cols: int = 3) -> None:
    """Test images, one row per class, each titled 'true / predicted' in green (right) or red (wrong)."""
    titles = [f"true: {classes[int(t)]}\npred: {classes[int(p)]}" for t, p in zip(labels, preds)]
    colors = ["tab:green" if int(t) == int(p) else "tab:red" for t, p in zip(labels, preds)]
    image_grid(images, titles, path, title, cols=cols, title_colors=colors)


class PartAReport:
    """grid.png (3 test images per class: 10 x 3 for iNaturalist) and confusion_matrix.png of a model."""

    def __init__(self, data: ImageData, batch_size: int, seed: int, per_class: int = 3) -> None:
        self.data, self.batch_size, self.seed, self.per_class = data, batch_size, seed, per_class

    def write(self, model: nn.Module, run_dir: Path) -> dict:
        data = self.data
        res = evaluate(model, data.test, data.mean, data.std, self.batch_size)
        labels = data.test.labels.cpu()
        cm = confusion_matrix(res.preds, labels, len(data.classes)).tolist()
        confusion_matrix_png(cm, data.classes, run_dir / "confusion_matrix.png",
                             f"test set, {len(labels)} images: {100 * res.acc:.2f}% correct")
        pick = grid_picks(labels, self.per_class, self.seed)
        prediction_grid(data.test.images[pick.to(data.test.images.device)], labels[pick], res.preds[pick],
                        data.classes, run_dir / "grid.png",
                        f"{self.per_class} test images per class (seeded random): green right, red wrong")
        return {"confusion_matrix": cm}
