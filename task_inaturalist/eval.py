"""Re-evaluate a saved model of task_inaturalist (part A's CNN, or one part-B strategy) on its test set, and make
its plots again (misclassified.png, gradcam.png, and for part A grid.png and confusion_matrix.png).

    python task_inaturalist/eval.py --checkpoint runs/task_inaturalist/<stamp>/a/checkpoint.pt
"""
import sys
from pathlib import Path

if __package__ in (None, ""):  # `python task_inaturalist/eval.py` without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.cli import add_max_pixels_flag, eval_parser, run_main
from common.errors import UserError
from common.evaluation import reevaluate
from common.gradcam import resnet50_gradcam_layer
from task_inaturalist import finetune
from task_inaturalist.cnn import build_cnn, gradcam_block
from task_inaturalist.data import load_like
from task_inaturalist.plots import PartAReport
from task_inaturalist.recipe import checked_params, cnn_config
from task_inaturalist.train import TASK
from task_inaturalist.train import build_parser as train_parser


def model_of(saved, ckpt: dict):
    if saved.sub_run == "a":
        cnn = cnn_config(checked_params(train_parser(), saved.cnn_params, "the checkpoint's part A configuration"))
        return build_cnn(cnn, saved.image_size), gradcam_block(cnn, saved.image_size)
    if str(saved.sub_run).startswith("b/"):
        model = finetune.build_finetune_model(saved.strategy, len(ckpt["classes"]), saved.freeze_k,
                                              load_pretrained=False)
        return model, resnet50_gradcam_layer(saved.image_size)
    raise UserError("the checkpoint is not one of a part A or part B run (a/ or b/<strategy>/)")


def part_a_figures(model, data, saved, out: Path) -> dict:
    return PartAReport(data, saved.eval_batch_size, saved.seed).write(model, out) if saved.sub_run == "a" else {}


def build_parser():
    return add_max_pixels_flag(eval_parser(TASK, __doc__.split("\n\n")[0]))


def run(args) -> int:
    reevaluate(args, TASK, train_parser(), load_like, model_of, part_a_figures)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_main(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
