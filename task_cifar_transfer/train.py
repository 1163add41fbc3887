"""ResNet-18 on CIFAR-10 four ways (the ELL 793 assignment): (a) our ResNet-18 from scratch with a modern
recipe, (b) torchvision's resnet18 from scratch and from ImageNet weights (frozen or not, new heads),
(c) an augmentation and dropout study on a tiny CIFAR-10, (d) activation maps; then one comparison table.

    python task_cifar_transfer/train.py                          # all parts: a, b, c, then d on the (a) model
    python task_cifar_transfer/train.py --part b --resize 32 224 # transfer at native 32 px and upsampled
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

if __package__ in (None, ""):  # `python task_cifar_transfer/train.py` without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
import torch.nn as nn

from common import distributed
from common.augment import cifar_train_augment
from common.checkpoint import load_checkpoint
from common.cli import (
    add_sgd_flags,
    base_parser,
    image_size_int,
    int_in,
    non_negative_float,
    positive_int,
    run_main,
    update_flag,
)
from common.data import ImageData, load_data
from common.errors import UserError
from common.evaluation import Grids, test_report
from common.models import resnet18
from common.run import RunFolder
from common.runtime import place, start
from common.training import TrainConfig, training_figures
from common.weights import imagenet_state_dict, weights_record
from task_cifar_transfer.activations import check_image_index, save_activation_maps
from task_cifar_transfer.augstudy import AUGMENTATIONS, DROPOUTS, run_study
from task_cifar_transfer.results import comparison_table, transfer_row, write_transfer_table
from task_cifar_transfer.transfer import CONFIGS, IMAGENET_MEAN, IMAGENET_STD, WEIGHTS, build_transfer_model

TASK = "task_cifar_transfer"
PARTS = ("a", "b", "c")
# --epochs, --batch-size and --lr default per part (the issue: 50 epochs for (a), 30 for (b)).
PART_DEFAULTS = {"a": {"epochs": 50, "batch_size": 512, "lr": 0.4},
                 "b": {"epochs": 30, "batch_size": 128, "lr": 0.02},
                 "c": {"epochs": 30, "batch_size": 128, "lr": 0.05}}


def per_part(key: str) -> str:
    """A per-part default in words, for --help: `(default: per part: (a) 50, (b) 30, (c) 30)`."""
    return f"(default: per part: {', '.join(f'({part}) {v[key]}' for part, v in PART_DEFAULTS.items())})"


def build_parser() -> argparse.ArgumentParser:
    p = base_parser(TASK, __doc__.split("\n\n")[0], epochs=None, batch_size=None, lr=None)
    p.epilog = ("--out DIR gets one folder per part (DIR/a, DIR/b, DIR/c, DIR/d), then DIR/comparison.md "
                "and DIR/metrics.json.")
    update_flag(p, "epochs", help=f"training epochs {per_part('epochs')}")
    update_flag(p, "batch_size", help=f"images per optimiser step {per_part('batch_size')}")
    update_flag(p, "lr", help=f"peak learning rate {per_part('lr')}")
    p.add_argument("--part", choices=(*PARTS, "all"), default="all",
                   help="all: a, b, c, then the activation maps (d) of the (a) model, and the comparison table")
    o = p.add_argument_group("optimiser and schedule (every part): SGD, warm-up, cosine to zero")
    add_sgd_flags(o, warmup_epochs=2.0, label_smoothing=0.1, grad_clip_help="clip the global gradient norm to this; "
                  "0 = off (BatchNorm ResNet-18s train without it)")
    a = p.add_argument_group("parts (a) and (b): model and augmentation (batched, per sample, on the device)")
    a.add_argument("--width", type=int_in(1, 512), default=64, help="base channels of our ResNet-18 in (a) and (c)")
    a.add_argument("--crop-padding", type=int_in(0, 64), default=4, help="RandomCrop(32, padding); 0 = off")
    a.add_argument("--flip", action=argparse.BooleanOptionalAction, default=True, help="random horizontal flip")
    a.add_argument("--cutout", type=int_in(0, 1024), default=16, help="CutOut square side; 0 = off")
    a.add_argument("--misclassified", type=int_in(1, 200), default=20, help="images in the report grids")
    b = p.add_argument_group("part (b): transfer learning")
    b.add_argument("--configs", type=int, nargs="+", choices=sorted(CONFIGS), default=sorted(CONFIGS),
                   help="1 scratch, 2 pretrained, 3 and 4 pretrained + frozen + new head (the task README)")
    b.add_argument("--resize", type=image_size_int, nargs="+", default=[32],
                   help="input sizes to run each config at; e.g. 32 224 (bilinear upsampling on the device)")
    c = p.add_argument_group("part (c): augmentation and dropout study on a tiny, class-balanced subset")
    c.add_argument("--tiny-train", type=positive_int, default=5000, help="train images (balanced over classes)")
    c.add_argument("--tiny-test", type=positive_int, default=1000, help="test images, and as many validation images")
    c.add_argument("--augmentations", nargs="+", choices=AUGMENTATIONS, default=list(AUGMENTATIONS),
                   help="one short run per augmentation (none: the baseline)")
    c.add_argument("--dropouts", type=non_negative_float, nargs="+", default=list(DROPOUTS),
                   help="dropout before the final linear layer, with no augmentation")
    d = p.add_argument_group("part (d): activation maps")
    d.add_argument("--image-index", type=int, default=0, help="the test image whose maps are drawn: its position in "
                   "the test split (eval.py --activations takes the same flag)")
    return p


def part_args(args: argparse.Namespace, part: str) -> dict:
    """The args that differ in one part: --epochs, --batch-size and --lr from its defaults where not given."""
    return {**{k: v for k, v in PART_DEFAULTS[part].items() if getattr(args, k) is None}, "part": part}


def train_config(args: argparse.Namespace, save_checkpoints: bool = True) -> TrainConfig:
    """SGD with warm-up and a cosine decay to zero, from the flags (part (c)'s many short runs keep no checkpoints)."""
    return TrainConfig.from_args(args, schedule="cosine", save_checkpoints=save_checkpoints)


def build_model(args: argparse.Namespace, num_classes: int, load_pretrained: bool = False) -> nn.Module:
    """The model of a part-(a) or part-(b) run from its saved args (eval.py rebuilds it this way)."""
    if args.part == "b":
        return build_transfer_model(CONFIGS[args.config], num_classes, args.resize, load_pretrained)
    return resnet18(num_classes, norm="bn", width=args.width)


def gradcam_layer(args: argparse.Namespace) -> str:
    """layer4.1, except for torchvision's model below 128 px: its stem leaves layer4 at 1x1 there,
    where Grad-CAM has nothing to show."""
    return "layer2.1" if args.part == "b" and args.resize < 128 else "layer4.1"


def train_and_test(run: RunFolder, model: nn.Module, data: ImageData, title: str) -> dict:
    """Part (a), or one configuration of (b): train, reload the best validation epoch, test, finish."""
    args, cfg = run.args, train_config(run.args)
    history = run.train(model, data, cfg, title=title, augment=cifar_train_augment(
        args.crop_padding, args.cutout, rotate_degrees=0.0, flip=args.flip))
    best = run.load_best(model)
    report = test_report(model, data, run.path, Grids(gradcam_layer(args), args.misclassified, args.seed),
                         batch_size=cfg.eval_batch_size, channels_last=args.channels_last)
    return run.finish({**report, **best, **training_figures(history, model)})


def run_scratch(run: RunFolder, data: ImageData, device: torch.device) -> dict:
    """(a): our ResNet-18 (BN) from scratch."""
    run.create(device, data)
    model = build_model(run.args, len(data.classes))
    return train_and_test(run, model, data, f"(a) ResNet-18 (BN) from scratch on {run.args.dataset}")


def run_transfer(part: RunFolder, data: ImageData, device: torch.device) -> dict:
    """(b): each configuration at each --resize size, one run folder each, then one table."""
    args, rows = part.create(device).args, []
    for size in args.resize:
        for number in args.configs:
            m = part.sub(f"config{number}-{size}px", config=number, resize=size).once(
                lambda run: transfer_one(run, data, device))
            rows.append(transfer_row(number, size, CONFIGS[number].setup, m))
    if distributed.is_main():
        print(write_transfer_table(part.path, rows, args.dataset), flush=True)
    return part.finish({"results": rows})


def transfer_one(run: RunFolder, data: ImageData, device: torch.device) -> dict:
    config = CONFIGS[run.args.config]
    if config.pretrained:  # ImageNet weights expect ImageNet's normalisation
        data = replace(data, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    run.create(device, data)
    model = build_model(run.args, len(data.classes), load_pretrained=True)
    return train_and_test(run, model, data, f"(b) config {config.number} at {run.args.resize} px on {run.args.dataset}")


def run_activations(part: RunFolder, data: ImageData, device: torch.device, checkpoint: Path) -> dict:
    """(d): the activation maps of a trained (a) model for one test image."""
    part.create(device)
    ckpt = load_checkpoint(checkpoint, TASK)
    saved = argparse.Namespace(**ckpt["args"])
    model = build_model(saved, len(data.classes))
    model.load_state_dict(ckpt["model"])
    place(model, device, saved.channels_last)
    data = replace(data, mean=tuple(ckpt["mean"]), std=tuple(ckpt["std"]))
    return part.finish({"checkpoint": str(checkpoint), **save_activation_maps(
        model, data, part.args.image_index, part.path, saved.channels_last)})


def run(args: argparse.Namespace) -> int:
    parts = list(PARTS) if args.part == "all" else [args.part]
    if any(p >= 1 for p in args.dropouts):
        raise UserError(f"--dropouts must be in [0, 1), got {max(args.dropouts)}")
    if distributed.launched_by_torchrun() and ("c" in parts or args.part == "all"):
        raise UserError("under torchrun, run --part a or --part b (part (c) is many tiny runs: one process each)")
    root = RunFolder.check(args, TASK)
    device = start(args)
    data = load_data(args.dataset, args.data_dir, val_size=args.val_size, subset=args.subset, seed=args.seed)
    if args.part == "all":
        check_image_index(args.image_index, len(data.test))  # before hours of training, not after
    pretrained = "b" in parts and any(CONFIGS[c].pretrained for c in args.configs)
    if pretrained:
        imagenet_state_dict(WEIGHTS)  # fail now, in one line, rather than after hours of part (a)
    data = data.to(device)
    root.create(device, pretrained_weights=weights_record(WEIGHTS) if pretrained else None)
    runners = {"a": run_scratch, "b": run_transfer,
               "c": lambda run, data, device: run_study(run, data, device, train_config(run.args, False))}
    results = {part: root.sub(part, **part_args(args, part)).once(  # kept if a resumed experiment finished it
        lambda run, part=part: runners[part](run, data, device)) for part in parts}
    if args.part == "all":
        checkpoint = root.path / "a" / "checkpoint.pt"
        results["d"] = root.sub("d").once(lambda run: run_activations(run, data, device, checkpoint))
    table = comparison_table(results, args.dataset, args.subset)
    (root.path / "comparison.md").write_text(table)
    print(f"\nThis run beside the original report -> {root.path / 'comparison.md'}\n{table}", flush=True)
    root.finish(results)  # last: marks the whole run complete
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_main(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
