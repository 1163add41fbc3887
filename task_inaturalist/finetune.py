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

import argparse
from dataclasses import replace

import torch
import torch.nn as nn
from torchvision.models import ResNet, ResNet50_Weights
from torchvision.models.resnet import Bottleneck

from common import distributed
from common.cli import batch_int, epochs_int, finite_float, non_negative_float
from common.data import ImageData
from common.errors import UserError
from common.evaluation import Grids, test_report
from common.finetune import KeepsFrozenInEval
from common.gradcam import resnet50_gradcam_layer
from common.memory import PeakMemory
from common.run import RunFolder
from common.runtime import device_name
from common.training import last_epoch, training_figures
from common.weights import imagenet_state_dict
from task_inaturalist.recipe import augmentation, train_config
from task_inaturalist.results import strategy_row, write_strategies

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


def check_flags(args: argparse.Namespace) -> None:
    """Part B's mistakes argparse cannot see, one error line each."""
    if not 0 <= args.freeze_k <= 9:
        raise UserError(f"--freeze-k must be between 0 and 9 (ResNet-50 has 10 children, the last is the head), "
                        f"got {args.freeze_k}")
    for flag in ("ft_lr", "backbone_lr_scale"):
        if not getattr(args, flag) > 0:
            raise UserError(f"--{flag.replace('_', '-')} must be positive, got {getattr(args, flag)}")


def add_finetune_flags(parser: argparse.ArgumentParser) -> None:
    b = parser.add_argument_group("part B: fine-tuning ResNet-50 from ImageNet weights")
    b.add_argument("--strategies", nargs="+", choices=STRATEGIES, default=list(STRATEGIES),
                   help="head: the new head only; freeze12: layer1 and layer2 frozen; freeze_k: the first "
                        "--freeze-k children frozen; full: every layer, the backbone at a lower LR")
    b.add_argument("--freeze-k", type=int, default=6, help="children frozen by the freeze_k strategy (0-9)")
    b.add_argument("--ft-epochs", type=epochs_int, default=5, help="epochs of each strategy")
    b.add_argument("--ft-batch-size", type=batch_int, default=64, help="part B's batch size")
    b.add_argument("--ft-lr", type=finite_float, default=0.01, help="the head's peak LR (SGD, momentum 0.9, cosine)")
    b.add_argument("--ft-weight-decay", type=non_negative_float, default=1e-4, help="part B's weight decay")
    b.add_argument("--backbone-lr-scale", type=finite_float, default=0.1,
                   help="the backbone's LR over the head's (full)")


# ----------------------------------------------------------------------------- part B's runs
def run_part_b(root: RunFolder, data: ImageData, device: torch.device) -> list[dict]:
    """Part B: each strategy into b/<strategy>, then b/strategies.{md,csv}: trainable parameters, validation and
    test accuracy, seconds per epoch and peak memory."""
    args = root.args
    data = replace(data, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    rows = [strategy_row(s, describe_strategy(s, args), root.sub(f"b/{s}", strategy=s).once(
        lambda run: train_strategy(run, data, device))) for s in args.strategies]
    if distributed.is_main():
        what = (f"ResNet-50 fine-tuning on {data.name} at {args.image_size} px, {args.ft_epochs} "
                f"epoch{'s' if args.ft_epochs > 1 else ''} each, {device_name(device)}")
        print("\n" + write_strategies(rows, root.path / "b", what, device.type == "cuda"), flush=True)
    return rows


def train_strategy(run: RunFolder, data: ImageData, device: torch.device) -> dict:
    args = run.create(device, data).args
    model = build_finetune_model(args.strategy, len(data.classes), args.freeze_k)
    cfg = train_config({"lr": args.ft_lr, "weight_decay": args.ft_weight_decay, "batch_size": args.ft_batch_size,
                        "optimizer": "sgd"}, args.ft_epochs, warmup_epochs=args.warmup_epochs,
                       eval_batch_size=args.eval_batch_size, save_checkpoints=args.checkpoints)
    cfg = replace(cfg, lr_scales=lr_scales(args.strategy, args.backbone_lr_scale))
    title = f"part B: ResNet-50, {describe_strategy(args.strategy, args)}, on {data.name}"
    with PeakMemory(device, interval=1.0) as peak:  # sampling the CPU's PSS costs ~30 ms: once a second
        history = run.train(model, data, cfg, title=title, augment=augmentation(True))
        best = run.load_best(model) if args.checkpoints else last_epoch(history)
        report = test_report(model, data, run.path, Grids(resnet50_gradcam_layer(args.image_size),
                                                          args.misclassified, args.seed),
                             batch_size=args.eval_batch_size, channels_last=args.channels_last)
    return run.finish({**report, **best, **training_figures(history, model), "strategy": args.strategy,
                       "peak_memory_mib": round(peak.mib, 1)})


def describe_strategy(strategy: str, args: argparse.Namespace) -> str:
    return describe(strategy, args.freeze_k, args.backbone_lr_scale)
