"""The training loop: SGD (nesterov) + warm-up, then ReduceLROnPlateau on validation accuracy
(`schedule="plateau"`) or a cosine decay to zero (`schedule="cosine"`).

Data is device-resident uint8; each step indexes a batch, augments it on the device with per-sample
randomness, normalises, and runs the model (channels_last and bf16 autocast on CUDA).

Reliability, all inside `fit()`:
- `last.pt` holds everything needed to continue (model, optimizer, scheduler, schedule position, best
  score, history, every RNG); `fit(resume=...)` continues from it bit for bit.
- Ctrl-C / SIGTERM ends the current step and stops with `Interrupted`; the partial epoch is dropped and
  `last.pt` (the last epoch boundary) is what a resume starts from.
- A NaN or infinite loss stops with `TrainingDiverged` before any checkpoint is overwritten.
"""
from __future__ import annotations

import csv
import math
import signal
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

from common import distributed
from common.augment import Augment, normalize
from common.checkpoint import atomic_save, rng_state, set_rng_state
from common.data import ImageData, Split, iterate_batches
from common.errors import Interrupted, TrainingDiverged


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
    grad_clip: float = 0.0  # > 0: clip the global gradient norm to this before each step
    plateau_factor: float = 0.2
    plateau_patience: int = 3
    min_lr: float = 1e-4
    eval_batch_size: int = 1000
    channels_last: bool | None = None  # None: channels_last on CUDA, NCHW on the CPU (see channels_last_default)
    schedule: str = "plateau"  # "plateau": warm-up, ReduceLROnPlateau, final anneal; "cosine": warm-up, cosine to 0
    save_checkpoints: bool = True  # False: history.csv only (studies of many short runs)
    optimizer: str = "sgd"  # "sgd" (momentum, nesterov) or "adam" (weight_decay as L2, like torch.optim.Adam)
    # Per-parameter LR multipliers by name prefix, the longest matching prefix wins, 1.0 where none matches:
    # {"": 0.1, "fc.": 1.0} trains everything at a tenth of the LR except the head.
    lr_scales: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; choose one of {', '.join(SCHEDULES)}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")


SCHEDULES = ("plateau", "cosine")
OPTIMIZERS = ("sgd", "adam")


def lr_scale(name: str, scales: dict[str, float]) -> float:
    """The LR multiplier of parameter `name` under TrainConfig.lr_scales (longest matching prefix, else 1)."""
    matches = [prefix for prefix in scales if name.startswith(prefix)]
    return scales[max(matches, key=len)] if matches else 1.0


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """cfg.optimizer over the trainable parameters of `model`: weight decay on weights only (not on biases
    and norm affines), one group per (decay, LR scale), each group's "lr_scale" kept for the schedule."""
    groups: dict[tuple[bool, float], list] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            groups.setdefault((p.ndim > 1, lr_scale(name, cfg.lr_scales)), []).append(p)
    order = sorted(groups, key=lambda key: (not key[0], key[1]))  # decayed first: the order of older checkpoints
    param_groups = [{"params": groups[(decay, scale)], "weight_decay": cfg.weight_decay if decay else 0.0,
                     "lr": cfg.lr * scale, "lr_scale": scale} for decay, scale in order]
    if cfg.optimizer == "adam":
        return torch.optim.Adam(param_groups, lr=cfg.lr)
    return torch.optim.SGD(param_groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov)


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


def channels_last_default(device: torch.device) -> bool:
    """channels_last on CUDA (faster convs with bf16), NCHW on the CPU: torch 2.14.1's oneDNN backward
    of slim channels_last convs segfaults or hangs on AVX2 CPUs (see the README)."""
    return device.type == "cuda"


def autocast(device: torch.device):
    """bf16 autocast on CUDA; plain fp32 elsewhere (bf16 on these CPUs is slower, not faster)."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def prepare_input(x: torch.Tensor, mean, std, channels_last: bool | None = None) -> torch.Tensor:
    """uint8 batch -> normalised float batch, in channels_last if asked (None: the device's default)."""
    if channels_last is None:
        channels_last = channels_last_default(x.device)
    x = normalize(x, mean, std)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


@torch.no_grad()
def evaluate(model: nn.Module, split: Split, mean, std, batch_size: int = 1000,
             channels_last: bool | None = None) -> EvalResult:
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
    """The plain module under DDP and torch.compile, so checkpoints load into a plain model."""
    model = getattr(model, "module", model)  # DistributedDataParallel
    return getattr(model, "_orig_mod", model)  # torch.compile


def write_history(path: Path, history: list[dict], fields: list[str]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(history)


HISTORY_FIELDS = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "max_step_loss",
                  "seconds", "train_seconds"]


class StopOnSignal:
    """While active, the first SIGINT or SIGTERM only sets `signum`: the loop finishes its step and stops.
    A second one acts as usual (the handlers are restored at the first)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict = {}

    def _handle(self, signum, frame) -> None:
        self.signum = signum
        self._restore()

    def _restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def __enter__(self) -> "StopOnSignal":
        if threading.current_thread() is threading.main_thread():  # signals reach the main thread only
            self._previous = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        self._restore()


def resume_command(last_pt: Path, task: str) -> str:
    """The exact command that continues this run."""
    world = distributed.world_size()
    launcher = f"torchrun --nproc_per_node {world}" if world > 1 else "python"
    return f"{launcher} {task}/train.py --resume {last_pt}"


def fit(model: nn.Module, data: ImageData, cfg: TrainConfig, run_dir: Path, *, augment: Augment | None,
        generator: torch.Generator, args: dict, task: str = "", checkpoint_extra: dict | None = None,
        resume: dict | None = None, epoch_end: Callable[[nn.Module, int], dict] | None = None,
        after_epoch: Callable[[dict], None] | None = None) -> list[dict]:
    """Train for cfg.epochs; write history.csv, steps.csv (the loss of every step), checkpoint.pt (best
    val acc) and last.pt every epoch (the two checkpoints only while cfg.save_checkpoints).

    The LR with cfg.schedule "plateau": a linear warm-up over cfg.warmup_epochs, then ReduceLROnPlateau
    on validation accuracy, then a linear anneal to zero over the last cfg.anneal_epochs (from wherever
    the plateau left it). The plateau rule alone never fires in a short run and leaves the model at its
    peak LR; the final anneal costs nothing in a long run and gains several points in a short one.
    With "cosine": the same warm-up, then a per-step cosine decay to zero (LambdaLR; no anneal needed).

    Only parameters with requires_grad are optimised (frozen layers of a fine-tuned model are left out),
    and `model.train()` is called each epoch, so a model that keeps frozen BatchNorms in eval mode does
    so by overriding its own `train()`.

    `resume`: a last.pt of the same run (common.checkpoint.load_checkpoint); training continues after
    its epoch with every state and RNG restored, so the result is the one an uninterrupted run gives.
    `epoch_end(model, epoch)`: called after each epoch's validation; the numbers it returns become extra
    columns of that epoch's history row (e.g. test metrics that are reported per epoch but choose nothing).
    `after_epoch(row)`: called with each finished (written and saved) history row; it may raise to stop
    the run there (a sweep's pruner does).
    Under torchrun, `data` is this rank's shard and `cfg.batch_size` the global batch.
    """
    device = data.train.labels.device
    main = distributed.is_main()
    channels_last = channels_last_default(device) if cfg.channels_last is None else cfg.channels_last
    plain = unwrap(model)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer(plain, cfg)  # plain names: a compiled model prefixes "_orig_mod."
    if distributed.active():  # after the optimizer: it holds the same parameters either way
        device_ids = [device.index] if device.type == "cuda" else None
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
    batch_size = distributed.local_batch_size(cfg.batch_size)
    # Full batches only (when there is one): every step has the same size, so every rank of a DDP run
    # takes the same number of steps, and no step is a noisy handful of leftover images.
    drop_last = len(data.train) >= batch_size
    steps_per_epoch = len(data.train) // batch_size if drop_last else 1
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
    # Checking the loss reads it from the device: every step on the CPU (free), every 10 on CUDA.
    check_every = 1 if device.type == "cpu" else 10

    def set_lr(lr: float) -> None:  # the base LR; each group runs at its lr_scale times it
        for group in optimizer.param_groups:
            group["lr"] = lr * group["lr_scale"]

    def base_lr() -> float:
        group = optimizer.param_groups[0]
        return group["lr"] / group["lr_scale"]

    extra = {"task": task, "mean": data.mean, "std": data.std, "classes": data.classes,
             "train_config": asdict(cfg), **(checkpoint_extra or {})}
    history: list[dict] = []
    best_val, start_epoch, anneal_from = -1.0, 0, None
    if resume is not None:
        plain.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        for group in optimizer.param_groups:  # a last.pt from before per-group LR scales
            group.setdefault("lr_scale", 1.0)
        scheduler.load_state_dict(resume["scheduler"])
        start_epoch, best_val, anneal_from = resume["epoch"], resume["best_val"], resume["anneal_from"]
        history = [dict(row) for row in resume["history"]]
        set_rng_state(resume["rng"], generator)

    def save(name: str, epoch: int, val_acc: float | None) -> None:
        if cfg.save_checkpoints and main:
            atomic_save({"model": plain.state_dict(), "optimizer": optimizer.state_dict(),
                         "scheduler": scheduler.state_dict(), "epoch": epoch, "args": args, "val_acc": val_acc,
                         "best_val": best_val, "anneal_from": anneal_from, "history": history,
                         "rng": rng_state(generator), **extra}, run_dir / name)

    if main:
        write_history(run_dir / "history.csv", history, list(history[-1]) if history else HISTORY_FIELDS)
        if resume is None:
            (run_dir / "steps.csv").write_text("epoch,batch,lr,loss\n")
    if resume is None:
        save("last.pt", 0, None)  # a resumable start, so an interrupt in epoch 1 is resumable too
    step = start_epoch * steps_per_epoch
    with StopOnSignal() as stop:
        for epoch in range(start_epoch + 1, cfg.epochs + 1):
            t0 = time.perf_counter()
            model.train()
            bar = tqdm(total=steps_per_epoch, disable=None if main else True, leave=True, dynamic_ncols=True)
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), device=device, dtype=torch.long)
            first_bad = torch.full((), -1, device=device, dtype=torch.long)  # first batch with a non-finite loss
            seen = 0
            step_losses, step_lrs = [], []  # per step, kept on the device: read once per epoch
            batches = iterate_batches(data.train, batch_size, True, generator, drop_last)
            for batch_id, (x, y) in enumerate(batches):
                if not cosine:  # (the cosine schedule's LambdaLR sets the LR in scheduler.step())
                    if step >= anneal_start:  # linear anneal to zero over the last steps
                        anneal_from = anneal_from or base_lr()
                        set_lr(anneal_from * (total_steps - step) / (total_steps - anneal_start))
                    elif step < warmup_steps:  # linear warm-up, per step, to the peak LR
                        set_lr(cfg.lr * (step + 1) / warmup_steps)
                lr_used = base_lr()
                if augment is not None:
                    x = augment(x, generator)
                with autocast(device):
                    logits = model(prepare_input(x, data.mean, data.std, channels_last))
                    loss = F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(trainable, cfg.grad_clip)
                optimizer.step()
                if cosine:
                    scheduler.step()
                step += 1
                loss = loss.detach()
                step_losses.append(loss)
                step_lrs.append(lr_used)
                loss_sum += loss * len(y)
                correct += (logits.argmax(1) == y).sum()
                seen += len(y)
                first_bad = torch.where((first_bad < 0) & ~torch.isfinite(loss), batch_id, first_bad)
                last_batch = batch_id == steps_per_epoch - 1
                if (batch_id + 1) % check_every == 0 or last_batch:
                    flags = torch.stack([first_bad, torch.tensor(stop.signum or 0, device=device)])
                    bad_batch, signum = distributed.all_reduce_max(flags).tolist()
                    if bad_batch >= 0:
                        raise TrainingDiverged(
                            f"non-finite loss ({step_losses[bad_batch].item()}) in epoch {epoch}, batch {bad_batch}, "
                            f"at lr {step_lrs[bad_batch]:.4g}: training stopped; {run_dir / 'last.pt'} "
                            f"(epoch {epoch - 1}) is the last good checkpoint, and no metrics.json was written")
                    if signum and not last_batch:
                        raise Interrupted(
                            f"{signal.Signals(signum).name} in epoch {epoch}, batch {batch_id}: stopped; the partial "
                            f"epoch is dropped, and {run_dir / 'last.pt'} holds epoch {epoch - 1}. Resume with: "
                            f"{resume_command(run_dir / 'last.pt', task)}", signum)
                if bar.disable is False and (batch_id % 10 == 0 or last_batch):  # .item() syncs: only with a bar
                    bar.set_description(f"Loss={loss.item():.4f} Batch_id={batch_id} LR={lr_used:.5f} "
                                        f"Accuracy={100 * correct.item() / seen:.2f}")
                if bar.disable is False:
                    bar.update(1)
            bar.close()
            train_seconds = time.perf_counter() - t0
            val = evaluate(model, data.val, data.mean, data.std, cfg.eval_batch_size, channels_last)
            # Sums over ranks (a no-op for one process): every rank sees the same figures and schedule.
            totals = distributed.all_reduce_sum(torch.tensor(
                [loss_sum.item(), correct.item(), seen, val.loss * len(data.val), val.acc * len(data.val),
                 len(data.val)], dtype=torch.float64, device=device)).tolist()
            train_loss, train_acc = totals[0] / totals[2], totals[1] / totals[2]
            val_loss, val_acc = totals[3] / totals[5], totals[4] / totals[5]
            if not cosine and warmup_steps <= step < anneal_start:
                scheduler.step(val_acc)
            losses = torch.stack(step_losses).float().tolist()
            row = {"epoch": epoch, "train_loss": train_loss, "train_acc": train_acc, "val_loss": val_loss,
                   "val_acc": val_acc, "lr": lr_used, "max_step_loss": max(losses),
                   "seconds": round(time.perf_counter() - t0, 3), "train_seconds": round(train_seconds, 3)}
            if epoch_end is not None:
                row.update(epoch_end(plain, epoch))
            history.append(row)
            improved = val_acc > best_val
            best_val = max(best_val, val_acc)
            if main:
                write_history(run_dir / "history.csv", history, list(row))
                with (run_dir / "steps.csv").open("a") as f:
                    f.writelines(f"{epoch},{i},{lr:.6g},{l:.6g}\n" for i, (lr, l) in enumerate(zip(step_lrs, losses)))
            if improved:
                save("checkpoint.pt", epoch, val_acc)
            save("last.pt", epoch, val_acc)
            if main:
                print(f"epoch {epoch:>3}/{cfg.epochs}  train_loss={train_loss:.4f}  train_acc={100 * train_acc:.2f}  "
                      f"val_loss={val_loss:.4f}  val_acc={100 * val_acc:.2f}  lr={lr_used:.5f}  "
                      f"time={row['seconds']:.1f}s{'  *best' if improved else ''}", flush=True)
            if after_epoch is not None:
                after_epoch(row)
            # A signal during the last step or the validation: the epoch is complete and saved, so stop here.
            signum = int(distributed.all_reduce_max(torch.tensor(stop.signum or 0, device=device)).item())
            if signum and epoch < cfg.epochs:
                raise Interrupted(
                    f"{signal.Signals(signum).name} after epoch {epoch}: stopped; {run_dir / 'last.pt'} holds it. "
                    f"Resume with: {resume_command(run_dir / 'last.pt', task)}", signum)
    return history
