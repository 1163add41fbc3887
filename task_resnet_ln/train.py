"""ResNet-18 with LayerNorm in every norm slot, trained on CIFAR-10 with RandomCrop(32, 4), flip,
Rotate(±5°), CutOut(16) and ReduceLROnPlateau on validation accuracy; then test accuracy, 20 random
misclassified test images and Grad-CAM on those same 20.

    python task_resnet_ln/train.py --epochs 40
    python task_resnet_ln/train.py --dataset fashion-mnist --data-dir /usr/share/datasets/fashion-mnist
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # `python task_resnet_ln/train.py` without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from common.augment import cifar_train_augment
from common.cli import add_sgd_flags, base_parser, int_in, non_negative_float, run_main
from common.data import load_data
from common.errors import UserError
from common.evaluation import Grids, test_report
from common.hooks import get_layer
from common.models import NORMS, resnet18
from common.run import RunFolder
from common.runtime import start
from common.training import TrainConfig, training_figures

TASK = "task_resnet_ln"


def build_parser() -> argparse.ArgumentParser:
    p = base_parser(TASK, __doc__.split("\n\n")[0], epochs=40, batch_size=128, lr=0.05)
    m = p.add_argument_group("model")
    m.add_argument("--norm", choices=NORMS, default="ln", help="norm in every slot: stem, blocks, shortcuts")
    m.add_argument("--width", type=int_in(1, 512), default=64, help="base channels (64 = ResNet-18)")
    m.add_argument("--weight-std", action=argparse.BooleanOptionalAction, default=True,
                   help="Weight Standardization in every conv (no parameters): LayerNorm nets learn faster")
    m.add_argument("--zero-init-residual", action=argparse.BooleanOptionalAction, default=False,
                   help="start each block as the identity (last norm gain 0); slower with LayerNorm here")
    o = p.add_argument_group("optimiser and schedule")
    add_sgd_flags(o, warmup_epochs=0.3, grad_clip=1.0, grad_clip_help="clip the global gradient norm to this; 0 = "
                  "off (LayerNorm at width 64 diverges without it at this LR, see the task README)")
    o.add_argument("--anneal-epochs", type=non_negative_float, default=1.0,
                   help="linear decay to zero over the last N epochs, after ReduceLROnPlateau")
    o.add_argument("--plateau-factor", type=non_negative_float, default=0.2, help="ReduceLROnPlateau factor")
    o.add_argument("--plateau-patience", type=int_in(0, 1000), default=3, help="epochs without val gain before a cut")
    o.add_argument("--min-lr", type=non_negative_float, default=1e-4, help="ReduceLROnPlateau never cuts below this")
    a = p.add_argument_group("augmentation (batched, per sample, on the device)")
    a.add_argument("--crop-padding", type=int_in(0, 64), default=4, help="RandomCrop(32, padding); 0 = off")
    a.add_argument("--cutout", type=int_in(0, 1024), default=16, help="CutOut square side; 0 = off")
    a.add_argument("--rotate", type=non_negative_float, default=5.0, help="max rotation in degrees; 0 = off")
    a.add_argument("--flip", action=argparse.BooleanOptionalAction, default=True, help="random horizontal flip")
    r = p.add_argument_group("report")
    r.add_argument("--misclassified", type=int_in(1, 200), default=20, help="images in the grids")
    r.add_argument("--gradcam-target", choices=("pred", "true"), default="pred",
                   help="the class Grad-CAM explains: the predicted or the true one")
    r.add_argument("--gradcam-layer", default="layer4.1", help="module path, e.g. layer3.1 or layer4.1.conv2")
    return p


def build_model(args: argparse.Namespace, num_classes: int) -> torch.nn.Module:
    return resnet18(num_classes, norm=args.norm, width=args.width,
                    zero_init_residual=getattr(args, "zero_init_residual", False),
                    weight_std=getattr(args, "weight_std", False))


def train_config(args: argparse.Namespace) -> TrainConfig:
    """SGD, warm-up, ReduceLROnPlateau on validation accuracy, then a final anneal: all of it from the flags."""
    return TrainConfig.from_args(args, schedule="plateau")


def run(args: argparse.Namespace) -> int:
    if not 0 < args.plateau_factor < 1:
        raise UserError(f"--plateau-factor must be in (0, 1), got {args.plateau_factor}")
    folder = RunFolder.check(args, TASK)
    device = start(args)
    data = load_data(args.dataset, args.data_dir, val_size=args.val_size, subset=args.subset, seed=args.seed)
    try:
        get_layer(build_model(args, len(data.classes)), args.gradcam_layer)
    except ValueError as e:
        raise UserError(f"--gradcam-layer: {e} (try layer4.1)") from None
    data = data.to(device)
    run = folder.create(device, data)
    model = build_model(args, len(data.classes))  # after create(), which seeds the run
    cfg = train_config(args)
    history = run.train(model, data, cfg, title=f"ResNet-18 ({args.norm}) on {args.dataset}",
                        augment=cifar_train_augment(args.crop_padding, args.cutout, args.rotate, args.flip))
    best = run.load_best(model)
    grids = Grids(args.gradcam_layer, args.misclassified, args.seed, args.gradcam_target)
    report = test_report(model, data, run.path, grids, batch_size=cfg.eval_batch_size,
                         channels_last=args.channels_last)
    run.finish({**report, **best, **training_figures(history, model)})
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_main(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
