"""Part B: torchvision's ResNet-50 from ImageNet weights with a new 10-class head at 224 px, fine-tuned
four ways (one table row each):

    head      the head only: every child but fc frozen
    freeze12  layer1 and layer2 frozen, conv1/bn1 trainable: what the original's code did,
              `freeze_layers(name): any(x in name for x in ['layer1', 'layer2'])` on parameter names
    freeze_k  the first k children frozen, k a flag (children: conv1 bn1 relu maxpool layer1..4 avgpool fc)
    full      every layer trained, the backbone at a lower LR than the head (lr_scales)

Frozen modules get no gradients and stay in eval mode under model.train() (common.finetune), so their
BatchNorms keep the ImageNet running statistics, as in task_cifar_transfer.
"""
from __future__ import annotations

import torch.nn as nn
from torchvision.models import ResNet, ResNet50_Weights
from torchvision.models.resnet import Bottleneck

from common.finetune import KeepsFrozenInEval
from common.weights import imagenet_state_dict

# V2, torchvision's DEFAULT for resnet50 (80.9% top-1 against V1's 76.1%), as task_catsdogs uses: one
# cached file (resnet50-11ad3fa6.pth) serves both tasks. Both were trained with the same mean and std.
WEIGHTS = ResNet50_Weights.IMAGENET1K_V2
# The normalisation the ImageNet weights were trained with; the fine-tuned models are fed with it.
IMAGENET_MEAN = tuple(WEIGHTS.transforms().mean)
IMAGENET_STD = tuple(WEIGHTS.transforms().std)

STRATEGIES = ("head", "freeze12", "freeze_k", "full")
# torchvision's ResNet children, in order; freeze_k freezes the first k of them.
CHILDREN = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool", "fc")
MAX_FREEZE_K = len(CHILDREN) - 1  # 9: everything but fc (the head is always trained)


class FineTuneResNet50(KeepsFrozenInEval, ResNet):
    """torchvision's resnet50 (same module names and state-dict keys) whose frozen modules stay in eval mode."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__(Bottleneck, [3, 4, 6, 3], num_classes=num_classes)


def _check(strategy: str, freeze_k: int) -> None:
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if not 0 <= freeze_k <= MAX_FREEZE_K:
        raise ValueError(f"freeze_k must be in 0..{MAX_FREEZE_K} (children: {' '.join(CHILDREN)}), not {freeze_k}")


def frozen_modules(strategy: str, freeze_k: int = 6) -> list[str]:
    """The names of the modules `strategy` freezes."""
    _check(strategy, freeze_k)
    if strategy == "head":
        return list(CHILDREN[:MAX_FREEZE_K])
    if strategy == "freeze12":
        return ["layer1", "layer2"]
    if strategy == "freeze_k":
        return list(CHILDREN[:freeze_k])
    return []


def describe(strategy: str, freeze_k: int = 6, backbone_lr_scale: float | None = None) -> str:
    """One line for the results table (backbone_lr_scale: the "full" strategy's, when known)."""
    _check(strategy, freeze_k)
    if strategy == "head":
        return "head only (fc)"
    if strategy == "freeze12":
        return "layer1, layer2 frozen (the original's code)"
    if strategy == "freeze_k":
        names = CHILDREN[:freeze_k]
        which = "none" if not names else names[0] if len(names) == 1 else f"{names[0]} ... {names[-1]}"
        return f"first {freeze_k} children frozen ({which})"
    if backbone_lr_scale is None:
        return "all layers, backbone at a lower LR than the head"
    return f"all layers, backbone LR x{backbone_lr_scale:g}"


def build_finetune_model(strategy: str, num_classes: int = 10, freeze_k: int = 6,
                         load_pretrained: bool = True) -> FineTuneResNet50:
    """ResNet-50 with ImageNet weights (from TORCH_HOME; one UserError line when missing offline), a new
    Linear(2048, num_classes) head `fc`, and the strategy's modules frozen. `load_pretrained=False` builds the
    architecture only (to load a checkpoint into)."""
    frozen = frozen_modules(strategy, freeze_k)  # bad arguments fail before the weights are read
    model = FineTuneResNet50()
    if load_pretrained:
        model.load_state_dict(imagenet_state_dict(WEIGHTS))  # with its 1000-class fc, replaced next
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    model.freeze(frozen)
    return model


def lr_scales(strategy: str, backbone_lr_scale: float) -> dict[str, float]:
    """common.training.TrainConfig.lr_scales for `strategy`: "full" trains the backbone at backbone_lr_scale
    times the LR and the new head at the LR; the others train at one LR (frozen parameters are not optimised)."""
    _check(strategy, 0)
    if strategy == "full" and not backbone_lr_scale > 0:
        raise ValueError(f"backbone_lr_scale must be > 0, not {backbone_lr_scale}")
    return {"": backbone_lr_scale, "fc.": 1.0} if strategy == "full" else {}
