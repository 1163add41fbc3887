"""Re-evaluate a saved part-(a) or part-(b) run on its test set, regenerate misclassified.png and
gradcam.png, and with --activations save the activation maps of one test image (part (d)).

    python task_cifar_transfer/eval.py --checkpoint runs/task_cifar_transfer/<stamp>/a/checkpoint.pt --activations
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

if __package__ in (None, ""):  # `python task_cifar_transfer/eval.py` without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.checkpoint import load_checkpoint
from common.cli import eval_parser, resolve_device, run_main, write_json
from common.data import load_data
from common.errors import UserError
from common.report import test_report
from task_cifar_transfer.activations import save_activation_maps
from task_cifar_transfer.train import TASK, gradcam_layer, restore_model


def build_parser() -> argparse.ArgumentParser:
    p = eval_parser(TASK, __doc__.split("\n\n")[0])
    p.add_argument("--activations", action="store_true",
                   help="also save activations_<n>_<layer>.png: stem conv, stem ReLU, the four stages")
    p.add_argument("--image-index", type=int, default=0, help="test image for --activations (position in the test split)")
    return p


def load_part_checkpoint(path: str) -> dict:
    """A part (a) or (b) checkpoint (part (c) keeps none), or one UserError line."""
    if not path:
        raise UserError("no checkpoint given: train part (a) first, or pass --checkpoint (make: CHECKPOINT=...)")
    ckpt = load_checkpoint(path, TASK)
    if ckpt["args"].get("part") not in ("a", "b"):
        raise UserError(f"{path} is not a part (a) or (b) checkpoint written by {TASK}/train.py")
    return ckpt


def run(args: argparse.Namespace) -> int:
    ckpt = load_part_checkpoint(args.checkpoint)
    saved = argparse.Namespace(**ckpt["args"])
    device = resolve_device(args.device)
    data = load_data(saved.dataset, args.data_dir or saved.data_dir, val_size=saved.val_size,
                     subset=saved.subset, seed=saved.seed)
    # the normalisation the model was trained with (ImageNet's for pretrained configs)
    data = replace(data, mean=tuple(ckpt["mean"]), std=tuple(ckpt["std"])).to(device)
    if args.activations and not 0 <= args.image_index < len(data.test):
        raise UserError(f"--image-index must be in [0, {len(data.test) - 1}], got {args.image_index}")
    model, _ = restore_model(ckpt, len(data.classes), device)
    out = Path(args.out) if args.out else Path(args.checkpoint).resolve().parent
    out.mkdir(parents=True, exist_ok=True)
    metrics = test_report(model, data, out, seed=saved.seed, n_images=saved.misclassified,
                          gradcam_layer=gradcam_layer(saved), channels_last=saved.channels_last)
    metrics = {"checkpoint": str(args.checkpoint), "epoch": ckpt.get("epoch"), **metrics}
    if args.activations:
        metrics["activations"] = save_activation_maps(model, data, args.image_index, out, saved.channels_last)
    write_json(out / "eval.json", metrics)
    print(f"test_acc={100 * metrics['test_acc']:.2f}% on {len(data.test)} {saved.dataset} test images "
          f"(checkpoint epoch {ckpt.get('epoch')}){', activation maps saved' if args.activations else ''} -> {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_main(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
