"""Test-set report shared by train.py and eval.py: accuracy, per-class accuracy, and the
misclassified / Grad-CAM grids on the same randomly drawn (seeded) misclassified images."""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from common.data import ImageData
from common.gradcam import GradCAM, get_layer, overlay, predicted_class, true_class
from common.plots import image_grid, prediction_titles
from common.training import evaluate, per_class_accuracy, prepare_input


def pick_misclassified(preds: torch.Tensor, labels: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """n positions where preds != labels, drawn at random with a fixed seed (not the first n), sorted."""
    wrong = (preds.cpu() != labels.cpu()).nonzero().squeeze(1)
    g = torch.Generator().manual_seed(seed)
    return wrong[torch.randperm(len(wrong), generator=g)[:n]].sort().values


def test_report(model: nn.Module, data: ImageData, run_dir: Path, *, seed: int, n_images: int = 20,
                gradcam_layer: str = "layer4.1", gradcam_target: str = "pred", channels_last: bool | None = None) -> dict:
    """Evaluate on test; write misclassified.png and gradcam.png; return the figures for metrics.json."""
    model.eval()
    res = evaluate(model, data.test, data.mean, data.std, channels_last=channels_last)
    labels = data.test.labels.cpu()
    pick = pick_misclassified(res.preds, labels, n_images, seed)
    metrics = {"test_acc": res.acc, "test_loss": res.loss,
               "per_class_acc": per_class_accuracy(res.preds, labels, data.classes),
               "misclassified_total": int((res.preds != labels).sum()),
               "misclassified_indices": data.test.index[pick.to(data.test.index.device)].tolist()}
    if len(pick) == 0:  # a perfect test score: say so in both PNGs
        for name in ("misclassified.png", "gradcam.png"):
            image_grid(data.test.images[:0], [], run_dir / name, "no misclassified test images")
        return metrics
    images = data.test.images[pick.to(data.test.images.device)]
    preds = res.preds[pick]
    titles = prediction_titles(labels[pick], preds, res.probs[pick, preds], data.classes)
    image_grid(images, titles, run_dir / "misclassified.png",
               f"{len(pick)} misclassified test images (random, seed {seed}): true → predicted (confidence)")

    target = predicted_class if gradcam_target == "pred" else true_class(labels[pick])
    with GradCAM(model, get_layer(model, gradcam_layer)) as cam:
        maps, _ = cam(prepare_input(images, data.mean, data.std, channels_last), target)
    image_grid(overlay(images, maps), titles, run_dir / "gradcam.png",
               f"Grad-CAM at {gradcam_layer} for the {'predicted' if gradcam_target == 'pred' else 'true'} "
               f"class, same images")
    return metrics
