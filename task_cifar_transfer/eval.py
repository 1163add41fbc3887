"""Re-evaluate a saved part-(a) or part-(b) run on its test set, regenerate misclassified.png and
gradcam.png, and with --activations save the activation maps of one test image (part (d)).

    python task_cifar_transfer/eval.py --checkpoint runs/task_cifar_transfer/<stamp>/a/checkpoint.pt --activations
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # `python task_cifar_transfer/eval.py` without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.cli import eval_parser, run_main
from common.data import load_data
from common.errors import UserError
from common.evaluation import reevaluate
from task_cifar_transfer.activations import save_activation_maps
from task_cifar_transfer.train import TASK, build_model, gradcam_layer
from task_cifar_transfer.train import build_parser as train_parser


def build_parser() -> argparse.ArgumentParser:
    p = eval_parser(TASK, __doc__.split("\n\n")[0])
    p.add_argument("--activations", action="store_true",
                   help="also save activations_<n>_<layer>.png: stem conv, stem ReLU, the four stages")
    p.add_argument("--image-index", type=int, default=0,
                   help="test image for --activations (position in the test split)")
    return p


def model_of(saved: argparse.Namespace, ckpt: dict):
    if saved.part not in ("a", "b"):  # part (c) keeps no checkpoints
        raise UserError(f"the checkpoint is not a part (a) or (b) checkpoint written by {TASK}/train.py")
    return build_model(saved, len(ckpt["classes"])), gradcam_layer(saved)


def activations(args: argparse.Namespace):
    def save(model, data, saved, out) -> dict:
        if not 0 <= args.image_index < len(data.test):
            raise UserError(f"--image-index must be in [0, {len(data.test) - 1}], got {args.image_index}")
        return {"activations": save_activation_maps(model, data, args.image_index, out, saved.channels_last)}
    return save if args.activations else None


def run(args: argparse.Namespace) -> int:
    if not args.checkpoint:
        raise UserError("no checkpoint given: train part (a) first, or pass --checkpoint (make: CHECKPOINT=...)")
    reevaluate(args, TASK, train_parser(),
               load_data=lambda saved, data_dir: load_data(saved.dataset, data_dir, val_size=saved.val_size,
                                                           subset=saved.subset, seed=saved.seed),
               build_model=model_of, extra=activations(args))
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_main(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
