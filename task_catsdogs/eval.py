"""Re-evaluate one model of a saved twin run (seed<k>/plain or seed<k>/aug) on its seed's test split: accuracy,
precision, recall and F1 (weighted and macro), the confusion matrix, and misclassified.png and gradcam.png
again (same seeded pick of images as at training time).

    python task_catsdogs/eval.py --checkpoint runs/task_catsdogs/<stamp>/seed0/aug/last.pt
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # `python task_catsdogs/eval.py` without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.cli import add_max_pixels_flag, eval_parser, run_main
from common.data import ImageData, Split
from common.errors import UserError
from common.report import reevaluate
from task_catsdogs.data import balanced_split, load_pool
from task_catsdogs.model import build_resnet50
from task_catsdogs.train import TASK, TestMetrics, gradcam_layer, split_sizes
from task_catsdogs.train import build_parser as train_parser


def build_parser() -> argparse.ArgumentParser:
    p = eval_parser(TASK, __doc__.split("\n\n")[0])
    add_max_pixels_flag(p)
    return p


def test_split(saved: argparse.Namespace, data_dir: str) -> ImageData:
    """The seed's test images (the same balanced split as at training time); no train or val needed."""
    pool = load_pool(saved.dataset, data_dir, saved.image_size, saved.max_pixels, saved.max_aspect)  # eval.py's own
    _, _, test_idx = balanced_split(pool, *split_sizes(saved), saved.seed)
    test = Split(pool.test.images[test_idx].contiguous(), pool.test.labels[test_idx], test_idx)
    empty = Split(test.images[:0], test.labels[:0], test.index[:0])
    return ImageData(pool.name, list(pool.classes), empty, empty, test, (0.0,) * 3, (1.0,) * 3)


def model_of(saved: argparse.Namespace, ckpt: dict):
    if getattr(saved, "model", None) not in ("plain", "aug"):
        raise UserError("the checkpoint is not one of a model run (seed<k>/plain or seed<k>/aug)")
    return build_resnet50(len(ckpt["classes"]), "random"), gradcam_layer(saved)  # the weights: the checkpoint's


def test_metrics(model, data: ImageData, saved: argparse.Namespace, out: Path) -> dict:
    figures = TestMetrics(data, saved.eval_batch_size, saved.channels_last).final(model)
    m = figures["test_metrics"]
    print(f"seed {saved.seed}, model_{saved.model}: accuracy {m['acc']:.4f}, precision (weighted) "
          f"{m['precision_weighted']:.4f}, recall {m['recall_weighted']:.4f}, F1 {m['f1_weighted']:.4f}, F1 (macro) "
          f"{m['f1_macro']:.4f}; confusion matrix {m['confusion_matrix']}", flush=True)
    return {"model": saved.model, "seed": saved.seed, **figures}


def run(args: argparse.Namespace) -> int:
    reevaluate(args, TASK, train_parser(), load_data=test_split, build_model=model_of, extra=test_metrics)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_main(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
