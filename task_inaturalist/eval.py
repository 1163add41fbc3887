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

import torch

from common.checkpoint import load_checkpoint
from common.cli import eval_parser, resolve_device, run_main, write_json
from common.data import ImageData
from common.errors import UserError
from common.gradcam import resnet50_gradcam_layer
from common.report import test_report
from task_inaturalist import finetune
from task_inaturalist.cnn import build_cnn
from task_inaturalist.data import load
from task_inaturalist.plots import PartAReport
from task_inaturalist.recipe import from_params
from task_inaturalist.train import TASK, gradcam_block


def build_parser() -> argparse.ArgumentParser:
    return eval_parser(TASK, __doc__.split("\n\n")[0])


def run(args: argparse.Namespace) -> int:
    ckpt = load_checkpoint(args.checkpoint, TASK)
    saved = argparse.Namespace(**ckpt["args"])
    part = getattr(saved, "run_part", None)
    if part is None:
        raise UserError(f"{args.checkpoint} is not the checkpoint of a part A or part B run (a/ or b/<strategy>/)")
    device = resolve_device(args.device)
    data = load(saved.dataset, args.data_dir or saved.data_dir, saved.image_size, val_fraction=saved.val_fraction,
                subset=saved.subset, seed=saved.seed)
    if list(data.classes) != list(ckpt["classes"]):
        raise UserError(f"the data's classes ({', '.join(data.classes)}) are not the checkpoint's "
                        f"({', '.join(ckpt['classes'])})")
    data = ImageData(data.name, data.classes, data.train, data.val, data.test, tuple(ckpt["mean"]),
                     tuple(ckpt["std"])).to(device)
    if part == "a":
        cnn, _ = from_params(saved.cnn_params)
        model, layer = build_cnn(cnn, saved.image_size), gradcam_block(cnn, saved.image_size)
    else:
        strategy = part.split("/", 1)[1]
        model = finetune.build_finetune_model(strategy, len(data.classes), saved.freeze_k, load_pretrained=False)
        layer = resnet50_gradcam_layer(saved.image_size)
    model.load_state_dict(ckpt["model"])
    model = model.to(device).eval()
    if saved.channels_last:
        model = model.to(memory_format=torch.channels_last)
    out = Path(args.out) if args.out else Path(args.checkpoint).resolve().parent
    out.mkdir(parents=True, exist_ok=True)
    report = test_report(model, data, out, seed=saved.seed, n_images=saved.misclassified, gradcam_layer=layer,
                         channels_last=saved.channels_last)
    if part == "a":
        report |= PartAReport(data, saved.eval_batch_size, saved.seed).write(model, out)
    write_json(out / "eval.json", {"checkpoint": str(args.checkpoint), "epoch": ckpt.get("epoch"), "part": part,
                                   **report})
    print(f"{part} (epoch {ckpt.get('epoch')}): test accuracy {100 * report['test_acc']:.2f}% on {len(data.test)} "
          f"images -> {out}", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_main(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
