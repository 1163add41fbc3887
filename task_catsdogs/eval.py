"""Re-evaluate one model of a saved twin run (seed<k>/plain or seed<k>/aug) on its seed's test split: accuracy,
precision, recall and F1 (weighted and macro), the confusion matrix, and its two grids again.

    python task_catsdogs/eval.py --checkpoint runs/task_catsdogs/<stamp>/seed0/aug/last.pt
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # `python task_catsdogs/eval.py` without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.cli import add_max_pixels_flag, eval_parser, run_main
from common.errors import UserError
from common.evaluation import reevaluate
from task_catsdogs.data import seed_test_data
from task_catsdogs.model import TestMetrics, build_resnet50, gradcam_layer
from task_catsdogs.results import seed_lines
from task_catsdogs.train import TASK
from task_catsdogs.train import build_parser as train_parser


def model_of(saved, ckpt: dict):
    if getattr(saved, "model", None) not in ("plain", "aug"):
        raise UserError("the checkpoint is not one of a model run (seed<k>/plain or seed<k>/aug)")
    return build_resnet50(len(ckpt["classes"])), gradcam_layer(saved.gradcam_layer, saved.image_size)


def test_metrics(model, data, saved, out: Path) -> dict:
    m = TestMetrics(data, saved.eval_batch_size, saved.channels_last).measure(model)
    print(seed_lines(saved.seed, {saved.model: m}, data.classes), flush=True)
    return {"model": saved.model, "seed": saved.seed, "test_metrics": m}


def build_parser():
    parser = eval_parser(TASK, __doc__.split("\n\n")[0])
    add_max_pixels_flag(parser)
    return parser


def run(args) -> int:
    reevaluate(args, TASK, train_parser(), seed_test_data, model_of, test_metrics)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_main(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
