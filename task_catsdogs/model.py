"""The twin ResNet-50s: torchvision's resnet50 with a 2-class head (23,512,130 parameters, the original's
count), from random weights (what the original ran) or from torchvision's ImageNet weights, and two copies
of one initial state, so that only the training data can make them differ.
"""
from __future__ import annotations

import copy
import re

import torch
import torch.nn as nn
from torchvision.models import ResNet, ResNet50_Weights, resnet50

from common.data import ImageData
from common.errors import UserError
from common.gradcam import resnet50_gradcam_layer
from common.hooks import get_layer
from common.metrics import classification_metrics
from common.training import evaluate
from common.weights import imagenet_state_dict

INITS = ("random", "imagenet")
WEIGHTS = ResNet50_Weights.IMAGENET1K_V2  # torchvision's DEFAULT for resnet50
# The normalisation the ImageNet weights were trained with; --init imagenet uses it instead of the train set's.
IMAGENET_MEAN = tuple(WEIGHTS.transforms().mean)
IMAGENET_STD = tuple(WEIGHTS.transforms().std)
ORIGINAL_PARAMS = 23_512_130  # "The total number of parameters for both models is equal to 23512130."


def build_resnet50(num_classes: int = 2, init: str = "random") -> ResNet:
    """torchvision's resnet50 with a num_classes head. "imagenet": every layer but the head from
    IMAGENET1K_V2 (the 1000-class fc is replaced by a fresh one, drawn from the global RNG like "random")."""
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; choose one of {', '.join(INITS)}")
    if init == "random":
        return resnet50(num_classes=num_classes)
    model = resnet50()
    model.load_state_dict(imagenet_state_dict(WEIGHTS))
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model


def twin_models(num_classes: int, init: str, seed: int) -> tuple[ResNet, ResNet]:
    """(model_plain, model_aug): one model drawn with `seed`, and an exact copy of it (every parameter and
    buffer equal, no storage shared)."""
    with torch.random.fork_rng(devices=[]):  # the draw depends on `seed` alone, not on what ran before
        torch.manual_seed(seed)
        plain = build_resnet50(num_classes, init)
    return plain, copy.deepcopy(plain)


def check_gradcam_layer(flag: str) -> None:
    """--gradcam-layer names a module of the ResNet-50 (or is "auto"), or one error line, before anything loads."""
    if flag == "auto":
        return
    with torch.device("meta"):  # the architecture only: no memory, no initialisation cost
        probe = resnet50(num_classes=2)
    try:
        get_layer(probe, flag)
    except ValueError as e:
        raise UserError(f"--gradcam-layer: {e} (try layer4.2, layer3.5 or auto)") from None


def gradcam_layer(flag: str, image_size: int) -> str:
    """--gradcam-layer: a module path, or "auto": the deepest block whose map is at least 4 x 4."""
    return resnet50_gradcam_layer(image_size) if flag == "auto" else flag


class TestMetrics:
    """The test figures of a model, every epoch (history.csv columns) and at the end (metrics.json).
    Measured, never used: no schedule, checkpoint or stopping rule reads them."""

    def __init__(self, data: ImageData, batch_size: int, channels_last: bool) -> None:
        self.data, self.batch_size, self.channels_last = data, batch_size, channels_last
        self.slugs = [re.sub(r"\W+", "_", c).strip("_") or f"class{k}" for k, c in enumerate(data.classes)]

    def measure(self, model: nn.Module) -> dict:
        res = evaluate(model, self.data.test, self.data.mean, self.data.std, self.batch_size, self.channels_last)
        return {"loss": res.loss, **classification_metrics(res.preds, self.data.test.labels.cpu(),
                                                            len(self.data.classes))}

    def epoch_end(self, model: nn.Module, epoch: int) -> dict:
        m = self.measure(model)
        row = {f"test_{k}": v for k, v in m.items() if k != "confusion_matrix"}
        for t, counts in enumerate(m["confusion_matrix"]):
            row |= {f"cm_{self.slugs[t]}_as_{self.slugs[p]}": n for p, n in enumerate(counts)}
        return row
