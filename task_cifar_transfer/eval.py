"""Re-evaluate a saved part-(a) or part-(b) run on its test set, make misclassified.png and gradcam.png again, and
with --activations save the activation maps of one test image (part (d)).

    python task_cifar_transfer/eval.py --checkpoint runs/task_cifar_transfer/<stamp>/a/checkpoint.pt --activations
"""
import sys
from pathlib import Path

if __package__ in (None, ""):  # `python task_cifar_transfer/eval.py` without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.cli import eval_parser, run_main
from common.data import load_like
from common.errors import UserError
from common.evaluation import reevaluate
from task_cifar_transfer.activations import save_activation_maps
from task_cifar_transfer.train import TASK, build_model, gradcam_layer
from task_cifar_transfer.train import build_parser as train_parser


def build_parser():
    p = eval_parser(TASK, __doc__.split("\n\n")[0])
    p.add_argument("--activations", action="store_true",
                   help="also save activations_<n>_<layer>.png: stem conv, stem ReLU, the four stages")
    p.add_argument("--image-index", type=int, default=0, help="the test image for --activations (its position)")
    return p


def run(args) -> int:
    if not args.checkpoint:  # `make cifar-transfer PART=d` before any part (a) run: CHECKPOINT is empty
        raise UserError("no checkpoint given: train part (a) first, or pass --checkpoint (make: CHECKPOINT=...)")

    def model_of(saved, ckpt: dict):
        if saved.part not in ("a", "b"):  # part (c) keeps no checkpoints
            raise UserError(f"the checkpoint is not a part (a) or (b) checkpoint written by {TASK}/train.py")
        return build_model(saved, len(ckpt["classes"])), gradcam_layer(saved)

    def maps(model, data, saved, out: Path) -> dict:
        if not args.activations:
            return {}
        return {"activations": save_activation_maps(model, data, args.image_index, out, saved.channels_last)}

    reevaluate(args, TASK, train_parser(), load_like, model_of, maps)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_main(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
