"""The test-set report shared by train.py and eval.py: accuracy, per-class accuracy, and the misclassified /
Grad-CAM grids on the same randomly drawn (seeded) misclassified images; and `reevaluate`, the one path every
eval.py takes: load the checkpoint once, rebuild the data and the model from what it stores, report again,
and write eval.json."""
from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn

from common import distributed
from common.checkpoint import load_checkpoint
from common.data import ImageData
from common.errors import UserError
from common.files import write_json
from common.gradcam import GradCAM, overlay, predicted_class, true_class
from common.hooks import get_layer
from common.metrics import per_class_accuracy
from common.plots import image_grid, prediction_titles
from common.text import printable
from common.training import evaluate, prepare_input


def pick_misclassified(preds: torch.Tensor, labels: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """n positions where preds != labels, drawn at random with a fixed seed (not the first n), sorted."""
    wrong = (preds.cpu() != labels.cpu()).nonzero().squeeze(1)
    g = torch.Generator().manual_seed(seed)
    return wrong[torch.randperm(len(wrong), generator=g)[:n]].sort().values


@dataclass
class Grids:
    """What misclassified.png and gradcam.png show: `n_images` misclassified test images drawn with `seed`,
    and Grad-CAM at `layer` for the predicted ("pred") or the true ("true") class."""
    layer: str
    n_images: int = 20
    seed: int = 0
    target: str = "pred"


def test_report(model: nn.Module, data: ImageData, out_dir: Path, grids: Grids, *, batch_size: int = 1000,
                channels_last: bool | None = None) -> dict:
    """Evaluate on test (batches of `batch_size`); write misclassified.png and gradcam.png (main process only);
    return the figures for metrics.json."""
    model.eval()
    res = evaluate(model, data.test, data.mean, data.std, batch_size, channels_last)
    labels = data.test.labels.cpu()
    pick = pick_misclassified(res.preds, labels, grids.n_images, grids.seed)
    metrics = {"test_acc": res.acc, "test_loss": res.loss,
               "per_class_acc": per_class_accuracy(res.preds, labels, data.classes),
               "misclassified_total": int((res.preds != labels).sum()),
               "misclassified_indices": data.test.index[pick.to(data.test.index.device)].tolist()}
    if not distributed.is_main():
        return metrics
    if len(pick) == 0:  # a perfect test score: say so in both PNGs
        for name in ("misclassified.png", "gradcam.png"):
            image_grid(data.test.images[:0], [], out_dir / name, "no misclassified test images")
        return metrics
    images = data.test.images[pick.to(data.test.images.device)]
    preds = res.preds[pick]
    titles = prediction_titles(labels[pick], preds, res.probs[pick, preds], data.classes)
    image_grid(images, titles, out_dir / "misclassified.png",
               f"{len(pick)} misclassified test images (random, seed {grids.seed}): true → predicted (confidence)")

    target = predicted_class if grids.target == "pred" else true_class(labels[pick])
    with GradCAM(model, get_layer(model, grids.layer)) as cam:
        maps, _ = cam(prepare_input(images, data.mean, data.std, channels_last), target)
    image_grid(overlay(images, maps), titles, out_dir / "gradcam.png",
               f"Grad-CAM at {grids.layer} for the {'predicted' if grids.target == 'pred' else 'true'} "
               f"class, same images")
    return metrics


# Limits that protect the machine (memory, time): eval.py takes them from its own flags or their defaults, never
# from the checkpoint, whose saved args could switch them off.
SAFETY_LIMITS = ("max_pixels", "max_aspect")


def saved_args(ckpt: dict, args: argparse.Namespace, train_parser: argparse.ArgumentParser) -> argparse.Namespace:
    """The args a checkpoint was trained with, through the train flags' validators (a size no flag would take
    is one error line), with eval.py's own safety limits in place of the saved ones."""
    from common.cli import checked_values

    if not isinstance(ckpt["args"], dict):
        raise UserError(f"{args.checkpoint}: its saved args are not a dict: not a checkpoint of {train_parser.prog}")
    ours = {k: getattr(args, k) for k in SAFETY_LIMITS if hasattr(args, k)}  # never the saved ones, not even checked
    kept = {k: v for k, v in ckpt["args"].items() if k not in ours}
    saved = {**kept, **checked_values(train_parser, kept, f"{args.checkpoint} (saved args)"), **ours}
    return argparse.Namespace(**saved)


def reevaluate(args: argparse.Namespace, task: str, train_parser: argparse.ArgumentParser,
               load_data: Callable[[argparse.Namespace, str], ImageData],
               build_model: Callable[[argparse.Namespace, dict], tuple[nn.Module, str]],
               extra: Callable[[nn.Module, ImageData, argparse.Namespace, Path], dict] | None = None) -> dict:
    """eval.py --checkpoint PATH [--data-dir D] [--out O] [--device X]: load PATH once, rebuild its data with
    `load_data(saved_args, data_dir)` (normalised with the checkpoint's mean and std) and its model with
    `build_model(saved_args, checkpoint) -> (model, gradcam layer)`, load the weights, write the test report
    (and `extra(model, data, saved_args, out)`'s figures) and eval.json into O (default: the run folder).
    The saved args pass the flags' validators of `train_parser` (the task's train.py's)."""
    from common.run import check_out_folder
    from common.runtime import place, resolve_device

    ckpt = load_checkpoint(args.checkpoint, task)
    saved = saved_args(ckpt, args, train_parser)
    if args.out:  # a new folder, or a run folder of this task (its plots are made again): nobody else's files
        check_out_folder(Path(args.out), task)
    device = resolve_device(args.device)
    data = load_data(saved, args.data_dir or saved.data_dir)
    if list(data.classes) != list(ckpt["classes"]):
        raise UserError(f"the data's classes ({', '.join(data.classes)}) are not the checkpoint's "
                        f"({', '.join(ckpt['classes'])})")
    data = replace(data, mean=tuple(ckpt["mean"]), std=tuple(ckpt["std"])).to(device)
    model, layer = build_model(saved, ckpt)
    model.load_state_dict(ckpt["model"])
    place(model, device, saved.channels_last).eval()
    out = Path(args.out) if args.out else Path(args.checkpoint).resolve().parent
    out.mkdir(parents=True, exist_ok=True)
    grids = Grids(layer, saved.misclassified, saved.seed, getattr(saved, "gradcam_target", "pred"))
    report = test_report(model, data, out, grids, batch_size=getattr(saved, "eval_batch_size", 1000),
                         channels_last=saved.channels_last)
    if extra is not None:
        report |= extra(model, data, saved, out)
    metrics = {"checkpoint": str(args.checkpoint), "epoch": ckpt.get("epoch"),
               "sub_run": getattr(saved, "sub_run", None), **report}
    write_json(out / "eval.json", metrics)
    print(f"test_acc={100 * report['test_acc']:.2f}% on {len(data.test)} {printable(data.name)} test images "
          f"(checkpoint epoch {ckpt.get('epoch')}) -> {out}", flush=True)
    return metrics
