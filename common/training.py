"""The training loop: SGD (nesterov) + warm-up, then ReduceLROnPlateau on validation accuracy
(`schedule="plateau"`) or a cosine decay to zero (`schedule="cosine"`).

Data is device-resident uint8; each step indexes a batch, augments it on the device with per-sample
randomness, normalises, and runs the model in channels_last (and bf16 autocast on CUDA).
"""
from __future__ import annotations

import csv
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

from common.augment import Augment, normalize
from common.data import ImageData, Split, iterate_batches


@dataclass
class TrainConfig:
    epochs: int = 40
    batch_size: int = 128
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    warmup_epochs: float = 0.3
    anneal_epochs: float = 1.0
    label_smoothing: float = 0.0
    plateau_factor: float = 0.2
    plateau_patience: int = 3
    min_lr: float = 1e-4
    eval_batch_size: int = 1000
    channels_last: bool = True
    schedule: str = "plateau"  # "plateau": warm-up, ReduceLROnPlateau, final anneal; "cosine": warm-up, cosine to 0
    save_checkpoints: bool = True  # False: history.csv only (studies of many short runs)

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; choose one of {', '.join(SCHEDULES)}")


SCHEDULES = ("plateau", "cosine")


def warmup_cosine(step: int, warmup_steps: int, total_steps: int) -> float:
    """LR multiplier at `step`: linear warm-up to 1 over warmup_steps, then a half cosine to 0 at total_steps."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


@dataclass
class EvalResult:
    loss: float
    acc: float
    preds: torch.Tensor  # (N,) on the CPU
    probs: torch.Tensor  # (N, classes) softmax, float32, on the CPU


def autocast(device: torch.device):
    """bf16 autocast on CUDA; plain fp32 elsewhere (bf16 on these CPUs is slower, not faster)."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def prepare_input(x: torch.Tensor, mean, std, channels_last: bool) -> torch.Tensor:
    x = normalize(x, mean, std)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


@torch.no_grad()
def evaluate(model: nn.Module, split: Split, mean, std, batch_size: int = 1000,
             channels_last: bool = True) -> EvalResult:
    """Loss, accuracy, predictions and probabilities over a whole split (eval mode, no augmentation)."""
    was_training = model.training
    model.eval()
    device = split.labels.device
    total_loss = torch.zeros((), device=device)
    probs = []
    for x, y in iterate_batches(split, batch_size):
        with autocast(device):
            logits = model(prepare_input(x, mean, std, channels_last))
        logits = logits.float()
        total_loss += F.cross_entropy(logits, y, reduction="sum")
        probs.append(logits.softmax(1))
    model.train(was_training)
    p = torch.cat(probs).cpu()
    preds = p.argmax(1)
    acc = (preds == split.labels.cpu()).float().mean().item()
    return EvalResult(total_loss.item() / len(split), acc, preds, p)


def per_class_accuracy(preds: torch.Tensor, labels: torch.Tensor, classes: list[str]) -> dict[str, float]:
    labels = labels.cpu()
    return {name: (preds[labels == i] == i).float().mean().item() if (labels == i).any() else float("nan")
            for i, name in enumerate(classes)}


def unwrap(model: nn.Module) -> nn.Module:
    """The module under torch.compile, so checkpoints load into a plain model."""
    return getattr(model, "_orig_mod", model)


def save_checkpoint(path: Path, model, optimizer, scheduler, epoch: int, args: dict, **extra: Any) -> None:
    torch.save({"model": unwrap(model).state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "epoch": epoch, "args": args, **extra}, path)


def write_history(path: Path, history: list[dict]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)


def fit(model: nn.Module, data: ImageData, cfg: TrainConfig, run_dir: Path, *, augment: Augment | None,
        generator: torch.Generator, args: dict, checkpoint_extra: dict | None = None) -> list[dict]:
    """Train for cfg.epochs; write history.csv, checkpoint.pt (best val acc) and last.pt every epoch
    (the two checkpoints only while cfg.save_checkpoints).

    The LR with cfg.schedule "plateau": a linear warm-up over cfg.warmup_epochs, then ReduceLROnPlateau
    on validation accuracy, then a linear anneal to zero over the last cfg.anneal_epochs (from wherever
    the plateau left it). The plateau rule alone never fires in a short run and leaves the model at its
    peak LR; the final anneal costs nothing in a long run and gains several points in a short one.
    With "cosine": the same warm-up, then a per-step cosine decay to zero (LambdaLR; no anneal needed).

    Only parameters with requires_grad are optimised (frozen layers of a fine-tuned model are left out),
    and `model.train()` is called each epoch, so a model that keeps frozen BatchNorms in eval mode does
    so by overriding its own `train()`.
    """
    device = data.train.labels.device
    trainable = [p for p in model.parameters() if p.requires_grad]
    params_decay = [p for p in trainable if p.ndim > 1]
    params_no_decay = [p for p in trainable if p.ndim <= 1]  # norm affines and biases
    optimizer = torch.optim.SGD(
        [{"params": params_decay, "weight_decay": cfg.weight_decay}, {"params": params_no_decay, "weight_decay": 0.0}],
        lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov)
    # Full batches only (when there is one): a small last batch is a noisy step, and on the CPU torch
    # 2.14.1's oneDNN backward of a 1x1 stride-2 channels_last conv corrupts the heap for some odd
    # batch sizes (seen at width 8 with 2 threads; see the README).
    drop_last = len(data.train) >= cfg.batch_size
    steps_per_epoch = len(data.train) // cfg.batch_size if drop_last else 1
    total_steps = cfg.epochs * steps_per_epoch
    warmup_steps = round(cfg.warmup_epochs * steps_per_epoch)
    cosine = cfg.schedule == "cosine"
    if cosine:
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: warmup_cosine(step, warmup_steps, total_steps))
    else:
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="max", factor=cfg.plateau_factor, patience=cfg.plateau_patience, min_lr=cfg.min_lr)
    anneal_start = total_steps - min(total_steps, round(cfg.anneal_epochs * steps_per_epoch))
    anneal_from: float | None = None

    def set_lr(lr: float) -> None:
        for group in optimizer.param_groups:
            group["lr"] = lr
    extra = {"mean": data.mean, "std": data.std, "classes": data.classes, "train_config": asdict(cfg),
             **(checkpoint_extra or {})}

    history: list[dict] = []
    best_val, step = -1.0, 0
    for epoch in range(1, cfg.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        bar = tqdm(total=steps_per_epoch, disable=None, leave=True, dynamic_ncols=True)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        seen = 0
        for batch_id, (x, y) in enumerate(iterate_batches(data.train, cfg.batch_size, True, generator, drop_last)):
            if not cosine:  # (the cosine schedule's LambdaLR sets the LR in scheduler.step())
                if step >= anneal_start:  # linear anneal to zero over the last steps
                    anneal_from = anneal_from or optimizer.param_groups[0]["lr"]
                    set_lr(anneal_from * (total_steps - step) / (total_steps - anneal_start))
                elif step < warmup_steps:  # linear warm-up, per step, to the peak LR
                    set_lr(cfg.lr * (step + 1) / warmup_steps)
            lr_used = optimizer.param_groups[0]["lr"]
            if augment is not None:
                x = augment(x, generator)
            with autocast(device):
                logits = model(prepare_input(x, data.mean, data.std, cfg.channels_last))
                loss = F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if cosine:
                scheduler.step()
            step += 1
            loss_sum += loss.detach() * len(y)
            correct += (logits.argmax(1) == y).sum()
            seen += len(y)
            if not bar.disable:  # reading values syncs the device, so only when a bar is shown
                if batch_id % 10 == 0 or batch_id == steps_per_epoch - 1:
                    bar.set_description(f"Loss={loss.item():.4f} Batch_id={batch_id} "
                                        f"LR={optimizer.param_groups[0]['lr']:.5f} "
                                        f"Accuracy={100 * correct.item() / seen:.2f}")
                bar.update(1)
        bar.close()
        train_seconds = time.perf_counter() - t0
        val = evaluate(model, data.val, data.mean, data.std, cfg.eval_batch_size, cfg.channels_last)
        if not cosine and warmup_steps <= step < anneal_start:
            scheduler.step(val.acc)
        row = {"epoch": epoch, "train_loss": loss_sum.item() / seen, "train_acc": correct.item() / seen,
               "val_loss": val.loss, "val_acc": val.acc, "lr": lr_used,
               "seconds": round(time.perf_counter() - t0, 3), "train_seconds": round(train_seconds, 3)}
        history.append(row)
        write_history(run_dir / "history.csv", history)
        improved = val.acc > best_val
        if improved:
            best_val = val.acc
            if cfg.save_checkpoints:
                save_checkpoint(run_dir / "checkpoint.pt", model, optimizer, scheduler, epoch, args,
                                val_acc=val.acc, **extra)
        if cfg.save_checkpoints:
            save_checkpoint(run_dir / "last.pt", model, optimizer, scheduler, epoch, args, val_acc=val.acc, **extra)
        print(f"epoch {epoch:>3}/{cfg.epochs}  train_loss={row['train_loss']:.4f}  "
              f"train_acc={100 * row['train_acc']:.2f}  val_loss={val.loss:.4f}  val_acc={100 * val.acc:.2f}  "
              f"lr={lr_used:.5f}  time={row['seconds']:.1f}s{'  *best' if improved else ''}", flush=True)
    return history
