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

import torch

from common.checkpoint import load_checkpoint
from common.cli import eval_parser, resolve_device, run_main, write_json
from common.data import ImageData, Split
from common.errors import UserError
from common.metrics import classification_metrics
from common.report import test_report
from common.training import evaluate
from task_catsdogs.data import balanced_split, load_pool
from task_catsdogs.model import build_resnet50
from task_catsdogs.train import TASK, gradcam_layer, split_sizes


def build_parser() -> argparse.ArgumentParser:
    return eval_parser(TASK, __doc__.split("\n\n")[0])


def run(args: argparse.Namespace) -> int:
    ckpt = load_checkpoint(args.checkpoint, TASK)
    saved = argparse.Namespace(**ckpt["args"])
    if getattr(saved, "model", None) not in ("plain", "aug"):
        raise UserError(f"{args.checkpoint} is not the checkpoint of a model run (seed<k>/plain or seed<k>/aug)")
    device = resolve_device(args.device)
    pool = load_pool(saved.dataset, args.data_dir or saved.data_dir, saved.image_size)
    if list(pool.classes) != list(ckpt["classes"]):
        raise UserError(f"the data's classes ({', '.join(pool.classes)}) are not the checkpoint's "
                        f"({', '.join(ckpt['classes'])})")
    _, _, test_idx = balanced_split(pool, *split_sizes(saved), saved.seed)
    test = Split(pool.test.images[test_idx].contiguous(), pool.test.labels[test_idx], test_idx)
    empty = Split(test.images[:0], test.labels[:0], test.index[:0])
    data = ImageData(pool.name, list(pool.classes), empty, empty, test, tuple(ckpt["mean"]),
                     tuple(ckpt["std"])).to(device)
    model = build_resnet50(len(pool.classes), "random").to(device)  # the architecture; the weights are the checkpoint's
    model.load_state_dict(ckpt["model"])
    if saved.channels_last:
        model = model.to(memory_format=torch.channels_last)
    out = Path(args.out) if args.out else Path(args.checkpoint).resolve().parent
    out.mkdir(parents=True, exist_ok=True)
    report = test_report(model, data, out, seed=saved.seed, n_images=saved.misclassified,
                         gradcam_layer=gradcam_layer(saved), channels_last=saved.channels_last)
    res = evaluate(model, data.test, data.mean, data.std, saved.eval_batch_size, saved.channels_last)
    figures = classification_metrics(res.preds, data.test.labels.cpu(), len(pool.classes))
    metrics = {"checkpoint": str(args.checkpoint), "epoch": ckpt.get("epoch"), "model": saved.model,
               "seed": saved.seed, **report, "test_metrics": {"loss": res.loss, **figures}}
    write_json(out / "eval.json", metrics)
    print(f"seed {saved.seed}, model_{saved.model} (epoch {ckpt.get('epoch')}): accuracy {figures['acc']:.4f}, "
          f"precision (weighted) {figures['precision_weighted']:.4f}, recall {figures['recall_weighted']:.4f}, "
          f"F1 {figures['f1_weighted']:.4f}, F1 (macro) {figures['f1_macro']:.4f} on {len(data.test)} test images; "
          f"confusion matrix {figures['confusion_matrix']} -> {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_main(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
