"""Re-evaluate a saved model of task_inaturalist (part A's CNN, or one part-B strategy) on its test set:
accuracy, per-class accuracy, misclassified.png and gradcam.png again (same seeded pick), and for part A
grid.png (3 per class) and confusion_matrix.png.

    python task_inaturalist/eval.py --checkpoint runs/task_inaturalist/<stamp>/a/checkpoint.pt
    python task_inaturalist/eval.py --checkpoint runs/task_inaturalist/<stamp>/b/full/checkpoint.pt
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # `python task_inaturalist/eval.py` without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.cli import add_max_pixels_flag, eval_parser, run_main
from common.errors import UserError
from common.gradcam import resnet50_gradcam_layer
from common.report import reevaluate
from task_inaturalist import finetune
from task_inaturalist.cnn import build_cnn
from task_inaturalist.data import load
from task_inaturalist.plots import PartAReport
from task_inaturalist.recipe import cnn_config
from task_inaturalist.train import TASK, checked_params, gradcam_block
from task_inaturalist.train import build_parser as train_parser


def build_parser() -> argparse.ArgumentParser:
    p = eval_parser(TASK, __doc__.split("\n\n")[0])
    add_max_pixels_flag(p)
    return p


def model_of(saved: argparse.Namespace, ckpt: dict):
    part = getattr(saved, "sub_run", None) or ""
    if part == "a":
        cnn = cnn_config(checked_params(train_parser(), saved.cnn_params, "the checkpoint's part A configuration"))
        return build_cnn(cnn, saved.image_size), gradcam_block(cnn, saved.image_size)
    if part.startswith("b/"):
        return (finetune.build_finetune_model(saved.strategy, len(ckpt["classes"]), saved.freeze_k,
                                              load_pretrained=False), resnet50_gradcam_layer(saved.image_size))
    raise UserError("the checkpoint is not one of a part A or part B run (a/ or b/<strategy>/)")


def part_a_figures(model, data, saved: argparse.Namespace, out: Path) -> dict:
    return PartAReport(data, saved.eval_batch_size, saved.seed).write(model, out) if saved.sub_run == "a" else {}


def run(args: argparse.Namespace) -> int:
    reevaluate(args, TASK, train_parser(), build_model=model_of, extra=part_a_figures,
               load_data=lambda saved, data_dir: load(saved.dataset, data_dir, saved.image_size,
                                                      val_fraction=saved.val_fraction, subset=saved.subset,
                                                      seed=saved.seed, max_pixels=saved.max_pixels,
                                                      max_aspect=saved.max_aspect))
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_main(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
