"""Part (b): torchvision's ResNet-18 on CIFAR-10, from scratch or from ImageNet weights, with the first
children frozen and new heads, as in the original report's four configurations.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models import ResNet, ResNet18_Weights
from torchvision.models.resnet import BasicBlock

from common.finetune import KeepsFrozenInEval, first_children
from common.weights import imagenet_state_dict

WEIGHTS = ResNet18_Weights.IMAGENET1K_V1
# The normalisation the ImageNet weights were trained with; pretrained configs use it instead of the
# dataset's own mean and std.
IMAGENET_MEAN = tuple(WEIGHTS.transforms().mean)
IMAGENET_STD = tuple(WEIGHTS.transforms().std)
FROZEN_CHILDREN = 7  # conv1, bn1, relu, maxpool, layer1, layer2, layer3: all but layer4, avgpool, fc


@dataclass(frozen=True)
class TransferConfig:
    number: int
    setup: str
    pretrained: bool
    frozen_children: int
    head: str  # "linear" (torchvision's fc), "mlp" or "deep"


# The original report's four configurations (their test accuracies: task_cifar_transfer.results.ORIGINAL).
CONFIGS = {c.number: c for c in [
    TransferConfig(1, "weights=None (scratch), all layers trainable", False, 0, "linear"),
    TransferConfig(2, "weights=IMAGENET1K_V1, all layers trainable", True, 0, "linear"),
    TransferConfig(3, "pretrained, first 7 children frozen, head 512-128-10 (original's config 1)",
                   True, FROZEN_CHILDREN, "mlp"),
    TransferConfig(4, "pretrained, first 7 children frozen, head 512-256-128-128-64-32-10 (original's config 2)",
                   True, FROZEN_CHILDREN, "deep"),
]}


def make_head(kind: str, in_features: int = 512, num_classes: int = 10) -> nn.Module:
    """The classifier after global average pooling, as in the original report."""
    if kind == "linear":
        return nn.Linear(in_features, num_classes)
    if kind == "mlp":
        return nn.Sequential(nn.Linear(in_features, 128), nn.ReLU(), nn.Dropout(0.3), nn.Linear(128, num_classes))
    if kind == "deep":
        # The original's layers exactly: Dropout(0.2) after the first four ReLUs, none after the fifth.
        layers: list[nn.Module] = []
        widths = [in_features, 256, 128, 128, 64, 32]
        for i, (a, b) in enumerate(zip(widths, widths[1:])):
            layers += [nn.Linear(a, b), nn.ReLU()] + ([nn.Dropout(0.2)] if i < 4 else [])
        return nn.Sequential(*layers, nn.Linear(widths[-1], num_classes))
    raise ValueError(f"unknown head {kind!r}")


class TransferResNet18(KeepsFrozenInEval, ResNet):
    """torchvision's ResNet-18 (same module names and state-dict keys) with two additions:

    - the first `frozen_children` children can be frozen (common.finetune): no gradients, and they stay in
      eval mode even under `model.train()`, so their BatchNorms keep the ImageNet running statistics;
    - `resize`: inputs are upsampled (bilinear, batched, on the device) to resize x resize first. The
      model sees normalised inputs; bilinear interpolation commutes with the per-channel normalisation.
    """

    def __init__(self, num_classes: int = 1000, resize: int | None = None) -> None:
        super().__init__(BasicBlock, [2, 2, 2, 2], num_classes=num_classes)
        self.resize = resize

    @property
    def frozen_children(self) -> int:
        """How many children are frozen (only freeze_first_children freezes anything here: a leading run)."""
        return len(self.frozen)

    def freeze_first_children(self, n: int) -> list[str]:
        """Freeze the first n children; return their names."""
        return self.freeze(first_children(self, n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.resize is not None and x.shape[-1] != self.resize:
            x = F.interpolate(x, size=(self.resize, self.resize), mode="bilinear", align_corners=False)
        return super().forward(x)


def build_transfer_model(config: TransferConfig, num_classes: int, resize: int | None = None,
                         load_pretrained: bool = True) -> TransferResNet18:
    """Config 1-4 of part (b). `load_pretrained=False` builds the architecture only (to load a checkpoint)."""
    model = TransferResNet18(resize=resize)
    if config.pretrained and load_pretrained:
        model.load_state_dict(imagenet_state_dict(WEIGHTS))  # with its 1000-class fc, replaced next
    model.fc = make_head(config.head, model.fc.in_features, num_classes)
    model.freeze_first_children(config.frozen_children)
    return model
