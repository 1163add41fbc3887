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

from common.cli import eval_parser, run_main
from common.data import load_like
from common.evaluation import reevaluate
from task_resnet_ln.train import TASK, build_model
from task_resnet_ln.train import build_parser as train_parser


def build_parser() -> argparse.ArgumentParser:
    return eval_parser(TASK, __doc__.split("\n\n")[0])


def run(args: argparse.Namespace) -> int:
    reevaluate(args, TASK, train_parser(), load_like,
               build_model=lambda saved, ckpt: (build_model(saved, len(ckpt["classes"])), saved.gradcam_layer))
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_main(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
