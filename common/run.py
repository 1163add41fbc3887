"""The one pipeline every task runs for a trained model:
config -> summary -> fit -> curves -> reload the best checkpoint -> test report -> metrics.json (last).
(curves.png per epoch, steps.png per step.) A task that chooses nothing on validation reports the last
epoch's weights instead (`weights="last"`), and may add per-epoch columns (`epoch_end`) and final figures
(`extra_metrics`) of its own.

A task's train.py builds its data, model, TrainConfig and augmentation, and calls `train_and_report`;
what it adds beyond that (tables, extra plots) it does with the metrics this returns.
"""
from __future__ import annotations

import argparse
import csv
from dataclasses import replace
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn

from common import distributed
from common.augment import Augment
from common.checkpoint import load_checkpoint
from common.cli import model_summary, write_config, write_json
from common.data import ImageData
from common.models import count_parameters
from common.plots import step_losses, training_curves
from common.report import test_report
from common.training import TrainConfig, fit


def train_and_report(model: nn.Module, data: ImageData, args: argparse.Namespace, *, task: str, run_dir: Path,
                     device: torch.device, cfg: TrainConfig, augment: Augment | None, title: str,
                     gradcam_layer: str, gradcam_target: str = "pred", n_images: int = 20,
                     epoch_end: Callable[[nn.Module, int], dict] | None = None, weights: str = "best",
                     extra_metrics: Callable[[nn.Module], dict] | None = None) -> dict:
    """Train `model` on `data` into the run folder `run_dir` and report on the test set; returns the metrics.

    `args` are the script's (saved in config.json and in every checkpoint; args.channels_last already
    resolved by common.cli.start). With args.resume, training continues from that last.pt. Under
    torchrun, each rank trains on its shard of train and val, and rank 0 alone writes and reports
    (the other ranks return {}).

    `epoch_end(model, epoch)`: passed to fit; its numbers become extra history.csv columns.
    `weights`: "best" reloads checkpoint.pt (best validation accuracy) for the report; "last" reports the
    model as the last epoch left it (no checkpoint needed, so cfg.save_checkpoints may be False).
    `extra_metrics(model)`: task-specific figures of the reported model, merged into metrics.json.
    """
    if weights not in ("best", "last"):
        raise ValueError(f"weights must be 'best' or 'last', got {weights!r}")
    main = distributed.is_main()
    cfg = replace(cfg, channels_last=args.channels_last)
    model = model.to(device)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    params, trainable = count_parameters(model), count_parameters(model, trainable_only=True)
    resume = load_checkpoint(args.resume, task) if args.resume else None
    if main:
        if resume is None:  # a resumed run keeps the config.json it was started with
            write_config(run_dir, args, device, params=params, trainable_params=trainable, mean=data.mean,
                         std=data.std, world_size=distributed.world_size(),
                         split_sizes={"train": len(data.train), "val": len(data.val), "test": len(data.test)})
        model_summary(model, tuple(data.train.images.shape[1:]), device, run_dir)
        print(f"{title}: {trainable:,} of {params:,} parameters trainable; train {len(data.train)}, "
              f"val {len(data.val)}, test {len(data.test)} images on {device}"
              f"{f' x {distributed.world_size()} processes' if distributed.active() else ''}; run folder {run_dir}",
              flush=True)
        if resume is not None:
            print(f"resuming {args.resume} after epoch {resume['epoch']} of {args.epochs}", flush=True)

    shard = replace(data, train=distributed.shard(data.train), val=distributed.shard(data.val))
    trained = torch.compile(model) if args.compile else model
    generator = torch.Generator(device).manual_seed(args.seed + distributed.rank())
    history = fit(trained, shard, cfg, run_dir, augment=augment, generator=generator, args=vars(args), task=task,
                  resume=resume, epoch_end=epoch_end)
    if not main:
        return {}
    training_curves(history, run_dir / "curves.png", title)
    with (run_dir / "steps.csv").open() as f:
        step_losses(list(csv.DictReader(f)), run_dir / "steps.png", f"{title}: training loss per step")

    if weights == "best":
        best = load_checkpoint(run_dir / "checkpoint.pt", task)
        model.load_state_dict(best["model"])
        best_val_acc, best_epoch = best["val_acc"], best["epoch"]
    else:  # the model as the last epoch left it; the best validation epoch is only reported
        top = max(history, key=lambda row: row["val_acc"])
        best_val_acc, best_epoch = top["val_acc"], top["epoch"]
    report = test_report(model, data, run_dir, seed=args.seed, n_images=n_images, gradcam_layer=gradcam_layer,
                         gradcam_target=gradcam_target, channels_last=args.channels_last)
    train_seconds = sum(row["seconds"] for row in history)
    metrics = {"test_acc": report.pop("test_acc"), "best_val_acc": best_val_acc, "best_epoch": best_epoch,
               "final_train_acc": history[-1]["train_acc"], "epochs": args.epochs,
               "train_seconds": round(train_seconds, 1), "seconds_per_epoch": round(train_seconds / len(history), 2),
               "params": params, "trainable_params": trainable, **report}
    if weights == "last":
        metrics["reported_weights"] = f"last epoch ({history[-1]['epoch']})"
    if extra_metrics is not None:
        metrics.update(extra_metrics(model))
    write_json(run_dir / "metrics.json", metrics)  # last: marks the run folder complete
    which = "last epoch" if weights == "last" else f"best_val_acc={100 * best_val_acc:.2f}% (epoch {best_epoch})"
    print(f"{title}: test_acc={100 * metrics['test_acc']:.2f}%  {which}  {metrics['seconds_per_epoch']:.1f} s/epoch  "
          f"-> {run_dir}", flush=True)
    return metrics
