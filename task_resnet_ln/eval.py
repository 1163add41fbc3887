"""Re-evaluate a saved task_resnet_ln run on its test set and regenerate misclassified.png and
gradcam.png (same seeded pick of images as at training time).

    python task_resnet_ln/eval.py --checkpoint runs/task_resnet_ln/<stamp>/checkpoint.pt
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # `python task_resnet_ln/eval.py` without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from common.checkpoint import load_checkpoint
from common.cli import eval_parser, resolve_device, run_main, write_json
from common.data import load_data
from common.report import test_report
from task_resnet_ln.train import build_model


def build_parser() -> argparse.ArgumentParser:
    return eval_parser("task_resnet_ln", __doc__.split("\n\n")[0])


def run(args: argparse.Namespace) -> int:
    ckpt = load_checkpoint(args.checkpoint, "task_resnet_ln")
    saved = argparse.Namespace(**ckpt["args"])
    device = resolve_device(args.device)
    data = load_data(saved.dataset, args.data_dir or saved.data_dir, val_size=saved.val_size,
                     subset=saved.subset, seed=saved.seed).to(device)
    model = build_model(saved, len(data.classes)).to(device)
    model.load_state_dict(ckpt["model"])
    if saved.channels_last:
        model = model.to(memory_format=torch.channels_last)
    out = Path(args.out) if args.out else Path(args.checkpoint).resolve().parent
    out.mkdir(parents=True, exist_ok=True)
    metrics = test_report(model, data, out, seed=saved.seed, n_images=saved.misclassified,
                          gradcam_layer=saved.gradcam_layer, gradcam_target=saved.gradcam_target,
                          channels_last=saved.channels_last)
    metrics = {"checkpoint": str(args.checkpoint), "epoch": ckpt.get("epoch"), **metrics}
    write_json(out / "eval.json", metrics)
    print(f"test_acc={100 * metrics['test_acc']:.2f}% on {len(data.test)} {saved.dataset} test images "
          f"(checkpoint epoch {ckpt.get('epoch')}) -> {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_main(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
