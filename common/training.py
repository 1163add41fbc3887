"""The training loop, in the pieces torchvision's references use: `train_one_epoch` and `evaluate`, with
`fit` looping over epochs on one screen. Beside them, three small objects:
- a schedule (`WarmupCosine`, or `WarmupPlateauAnneal` for task_resnet_ln): `lr(step)`, `observe(val_acc)`,
  `state_dict()`;
- `Checkpointer`: last.pt (everything needed to continue bit for bit: model, optimizer, schedule, best
  score, history, every RNG) and checkpoint.pt (the best validation epoch);
- `RunLog`: history.csv, steps.csv (the loss of every step), the tqdm bar and one plain line per epoch.

Data is device-resident uint8; each step indexes a batch, augments it on the device with per-sample
randomness, normalises, and runs the model (channels_last and bf16 autocast on CUDA).

Reliability:
- Ctrl-C / SIGTERM ends the current step and stops with `Interrupted`; the partial epoch is dropped and
  `last.pt` (the last epoch boundary) is what a resume starts from.
- A NaN or infinite loss stops with `TrainingDiverged` before any checkpoint is overwritten.
"""
from __future__ import annotations

import argparse
import math
import os
import shutil
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, field, fields
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
from common.models import count_parameters
from common.runtime import channels_last_default, cuda_recipe
from common.tables import write_csv


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
    check_every: int | None = None  # steps between reads of the NaN and signal flags (None: check_interval's)
    schedule: str = "plateau"  # "plateau": warm-up, ReduceLROnPlateau, final anneal; "cosine": warm-up, cosine to 0
    save_checkpoints: bool = True  # False: history.csv only (studies of many short runs)
    optimizer: str = "sgd"  # "sgd" (momentum, nesterov) or "adam" (weight_decay as L2, like torch.optim.Adam)
    # Per-parameter LR multipliers by name prefix, the longest matching prefix wins, 1.0 where none matches:
    # {"": 0.1, "fc.": 1.0} trains everything at a tenth of the LR except the head.
    lr_scales: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_args(cls, args: argparse.Namespace, **fixed) -> TrainConfig:
        """The recipe as a run's flags give it: every field that has a flag of the same name (--epochs, --lr,
        --momentum, --warmup-epochs, ...), then `fixed`, what the task sets without a flag."""
        flags = {f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)}
        return cls(**{**flags, **fixed})

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


def autocast(device: torch.device):
    """bf16 autocast in the CUDA recipe (common.runtime.cuda_recipe); plain fp32 on the CPU, where bf16 is
    slower, not faster."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=cuda_recipe(device))


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


def all_finite(model: nn.Module) -> bool:
    """Every parameter and buffer finite (one read from the device): a run with NaN weights never counts as done."""
    tensors = [t for t in (*model.parameters(), *model.buffers()) if t.is_floating_point()]
    return bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all()) if tensors else True


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module under DDP and torch.compile, so checkpoints load into a plain model."""
    model = getattr(model, "module", model)  # DistributedDataParallel
    return getattr(model, "_orig_mod", model)  # torch.compile


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


# ----------------------------------------------------------------------------- the schedules
class WarmupCosine:
    """A linear warm-up to cfg.lr over cfg.warmup_epochs, then a half cosine to zero at the last step."""

    def __init__(self, cfg: TrainConfig, steps_per_epoch: int) -> None:
        self.peak, self.total = cfg.lr, cfg.epochs * steps_per_epoch
        self.warmup = round(cfg.warmup_epochs * steps_per_epoch)

    def lr(self, step: int) -> float:
        return self.peak * warmup_cosine(step, self.warmup, self.total)

    def observe(self, val_acc: float, step: int) -> None:  # looks at nothing
        pass

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class WarmupPlateauAnneal:
    """A linear warm-up over cfg.warmup_epochs; then ReduceLROnPlateau's rule on validation accuracy (mode
    max, relative threshold 1e-4: cut by cfg.plateau_factor after more than cfg.plateau_patience epochs
    without a gain, never below cfg.min_lr); then a linear anneal to zero over the last cfg.anneal_epochs,
    from wherever the plateau left the LR. The plateau rule alone never fires in a short run and leaves the
    model at its peak LR; the anneal costs nothing in a long run and gains several points in a short one."""

    THRESHOLD = 1e-4

    def __init__(self, cfg: TrainConfig, steps_per_epoch: int) -> None:
        self.peak, self.factor = cfg.lr, cfg.plateau_factor
        self.patience, self.min_lr = cfg.plateau_patience, cfg.min_lr
        self.total = cfg.epochs * steps_per_epoch
        self.warmup = round(cfg.warmup_epochs * steps_per_epoch)
        self.anneal_start = self.total - min(self.total, round(cfg.anneal_epochs * steps_per_epoch))
        self.current, self.best, self.bad_epochs, self.anneal_from = cfg.lr, -math.inf, 0, None

    def lr(self, step: int) -> float:
        if step >= self.anneal_start:
            if self.anneal_from is None:
                self.anneal_from = self.current
            return self.anneal_from * (self.total - step) / (self.total - self.anneal_start)
        if step < self.warmup:
            self.current = self.peak * (step + 1) / self.warmup
        return self.current

    def observe(self, val_acc: float, step: int) -> None:
        """An epoch ended after `step` steps with this validation accuracy (counts between warm-up and anneal)."""
        if not self.warmup <= step < self.anneal_start:
            return
        if val_acc > self.best * (1 + self.THRESHOLD):
            self.best, self.bad_epochs = val_acc, 0
        else:
            self.bad_epochs += 1
        if self.bad_epochs > self.patience:
            cut = max(self.current * self.factor, self.min_lr)
            if self.current - cut > 1e-8:
                self.current = cut
            self.bad_epochs = 0

    def state_dict(self) -> dict:
        return {"current": self.current, "best": self.best, "bad_epochs": self.bad_epochs,
                "anneal_from": self.anneal_from}

    def load_state_dict(self, state: dict) -> None:
        self.current, self.best = state["current"], state["best"]
        self.bad_epochs, self.anneal_from = state["bad_epochs"], state["anneal_from"]


def make_schedule(cfg: TrainConfig, steps_per_epoch: int) -> WarmupCosine | WarmupPlateauAnneal:
    return (WarmupCosine if cfg.schedule == "cosine" else WarmupPlateauAnneal)(cfg, steps_per_epoch)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """The base LR; each parameter group runs at its lr_scale times it."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group["lr_scale"]


# ----------------------------------------------------------------------------- checkpoints and the log
class Checkpointer:
    """Where a run's checkpoints go and what each one carries besides the training state (args, task, mean,
    std, classes: what eval.py rebuilds the data and model from); built by the caller, filled by fit:
    last.pt after every epoch (and before the first, so an interrupt in epoch 1 is resumable) and
    checkpoint.pt at each new best validation accuracy. Rank 0 only, and only while `enabled`.
    `resume`: the last.pt this run continues from (loaded once, by common.run)."""

    def __init__(self, run_dir: Path, enabled: bool = True, resume: dict | None = None, **extra: object) -> None:
        self.run_dir, self.enabled, self.resume, self.extra = run_dir, enabled, resume, extra

    @property
    def kept(self) -> Path | None:
        """The file an interrupted or diverged run leaves to continue from (None without checkpoints)."""
        return self.run_dir / "last.pt" if self.enabled else None

    def save(self, name: str, state: dict) -> None:
        if self.enabled and distributed.is_main():
            atomic_save({**state, **self.extra}, self.run_dir / name)


HISTORY_FIELDS = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "max_step_loss",
                  "seconds", "train_seconds"]


class RunLog:
    """What a run shows and keeps of its progress: the tqdm bar with the original reports' description
    (`Loss=… Batch_id=… LR=… Accuracy=…`) on a terminal, one plain line per epoch always, history.csv (one
    row per epoch, written whole) and steps.csv (the loss and LR of every step, appended). Rank 0 only."""

    def __init__(self, run_dir: Path, epochs: int, history: list[dict]) -> None:
        self.run_dir, self.epochs, self.main = run_dir, epochs, distributed.is_main()
        if self.main:
            write_csv(run_dir / "history.csv", history, list(history[-1]) if history else HISTORY_FIELDS)
            if not history:
                (run_dir / "steps.csv").write_text("epoch,batch,lr,loss\n")

    def bar(self, steps: int) -> tqdm:
        """A bar on a terminal (tqdm's disable=None: off when stderr is not a TTY), none on other ranks. It
        follows the terminal's width; a terminal that reports no size (`script` run without one, some CI
        consoles) gets $COLUMNS x $LINES or 80 x 24: tqdm would draw nothing there."""
        try:
            columns = os.get_terminal_size(sys.stderr.fileno()).columns
        except (OSError, ValueError):
            columns = 0
        fallback = shutil.get_terminal_size()  # tqdm would take 0 x 0 as "no row to draw on", and draw nothing
        width = {"dynamic_ncols": True} if columns else {"ncols": fallback.columns, "nrows": fallback.lines}
        return tqdm(total=steps, disable=None if self.main else True, leave=True, **width)

    def epoch(self, history: list[dict], step_lrs: list[float], losses: list[float], improved: bool) -> None:
        if not self.main:
            return
        row = history[-1]
        write_csv(self.run_dir / "history.csv", history, list(row))
        with (self.run_dir / "steps.csv").open("a") as f:
            f.writelines(f"{row['epoch']},{i},{lr:.6g},{loss:.6g}\n"
                         for i, (lr, loss) in enumerate(zip(step_lrs, losses)))
        print(f"epoch {row['epoch']:>3}/{self.epochs}  train_loss={row['train_loss']:.4f}  "
              f"train_acc={100 * row['train_acc']:.2f}  val_loss={row['val_loss']:.4f}  "
              f"val_acc={100 * row['val_acc']:.2f}  lr={row['lr']:.5f}  time={row['seconds']:.1f}s"
              f"{'  *best' if improved else ''}", flush=True)


# ----------------------------------------------------------------------------- one epoch, and fit
def check_interval(device: torch.device, requested: int | None = None) -> int:
    """How many steps pass between reads of the NaN and signal flags: every step on the CPU (a read is free
    there), every 10 in the CUDA recipe (each read waits for the device), unless TrainConfig.check_every says."""
    return requested if requested is not None else (10 if cuda_recipe(device) else 1)


@dataclass
class TrainState:
    """Where training is: what train_one_epoch needs besides the model and the data."""
    optimizer: torch.optim.Optimizer
    schedule: WarmupCosine | WarmupPlateauAnneal
    cfg: TrainConfig
    batch_size: int
    steps_per_epoch: int
    channels_last: bool
    generator: torch.Generator
    augment: Augment | None
    stop: StopOnSignal
    kept: Path | None  # the last.pt an interrupted or diverged run leaves (None without checkpoints)
    step: int = 0


def train_one_epoch(model: nn.Module, data: ImageData, s: TrainState, epoch: int, bar: tqdm) -> dict:
    """One pass over the shuffled train split; returns the epoch's sums (on the device, read once) and the
    loss and LR of every step. Stops with TrainingDiverged at a non-finite loss and with Interrupted at a
    signal, both read from the device every check_interval() steps."""
    device = data.train.labels.device
    check_every = check_interval(device, s.cfg.check_every)
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    first_bad = torch.full((), -1, device=device, dtype=torch.long)  # the first batch with a non-finite loss
    seen, losses, lrs = 0, [], []
    trainable = [p for p in model.parameters() if p.requires_grad]
    drop_last = len(data.train) >= s.batch_size
    for batch_id, (x, y) in enumerate(iterate_batches(data.train, s.batch_size, True, s.generator, drop_last)):
        lr = s.schedule.lr(s.step)
        set_lr(s.optimizer, lr)
        if s.augment is not None:
            x = s.augment(x, s.generator)
        with autocast(device):
            logits = model(prepare_input(x, data.mean, data.std, s.channels_last))
            loss = F.cross_entropy(logits, y, label_smoothing=s.cfg.label_smoothing)
        s.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if s.cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(trainable, s.cfg.grad_clip)
        s.optimizer.step()
        s.step += 1
        loss = loss.detach()
        losses.append(loss)
        lrs.append(lr)
        loss_sum += loss * len(y)
        correct += (logits.argmax(1) == y).sum()
        seen += len(y)
        first_bad = torch.where((first_bad < 0) & ~torch.isfinite(loss), batch_id, first_bad)
        last_batch = batch_id == s.steps_per_epoch - 1
        if (batch_id + 1) % check_every == 0 or last_batch:
            flags = torch.stack([first_bad, torch.tensor(s.stop.signum or 0, device=device)])
            bad_batch, signum = distributed.all_reduce_max(flags).tolist()
            if bad_batch >= 0:
                raise TrainingDiverged("loss", epoch, batch=bad_batch, lr=lrs[bad_batch],
                                       value=losses[bad_batch].item(), kept=s.kept)
            if signum and not last_batch:
                raise Interrupted(signum, epoch=epoch, batch=batch_id, kept=s.kept)
        if not bar.disable:  # .item() syncs with the device: only when a bar shows it
            if batch_id % 10 == 0 or last_batch:
                bar.set_description(f"Loss={loss.item():.4f} Batch_id={batch_id} LR={lr:.5f} "
                                    f"Accuracy={100 * correct.item() / seen:.2f}", refresh=False)
            bar.update(1)
    return {"loss_sum": loss_sum.item(), "correct": correct.item(), "seen": seen,
            "losses": torch.stack(losses).float().tolist(), "lrs": lrs, "lr": lrs[-1]}


def fit(model: nn.Module, data: ImageData, cfg: TrainConfig, checkpoints: Checkpointer, *,
        augment: Augment | None = None, generator: torch.Generator | None = None,
        epoch_end: Callable[[nn.Module, int], dict] | None = None,
        after_epoch: Callable[[dict], None] | None = None) -> list[dict]:
    """Train for cfg.epochs; the history, one dict per epoch. Files go to the checkpointer's folder (history.csv,
    steps.csv; last.pt and checkpoint.pt while it is enabled); `checkpoints.resume`, a last.pt of this run, is
    continued with every state and RNG restored (bit for bit under --deterministic). Only parameters with
    requires_grad are optimised. `generator`: the shuffling and augmentation stream (default: seeded 0).
    `epoch_end(model, epoch)`: extra history columns; `after_epoch(row)`: may raise to stop (a sweep's pruner).
    Under torchrun, `data` is this rank's shard and `cfg.batch_size` the global batch."""
    device, plain = data.train.labels.device, unwrap(model)
    generator = generator if generator is not None else torch.Generator(device).manual_seed(0)
    optimizer = make_optimizer(plain, cfg)  # plain names: a compiled model prefixes "_orig_mod."
    if distributed.active():  # after the optimizer: it holds the same parameters either way
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=distributed.device_ids(device))
    batch_size = distributed.local_batch_size(cfg.batch_size)
    # Full batches only (when there is one): every rank takes the same number of equal steps.
    steps_per_epoch = len(data.train) // batch_size if len(data.train) >= batch_size else 1
    schedule = make_schedule(cfg, steps_per_epoch)

    def state(epoch: int, val_acc: float | None, best_val: float, history: list[dict]) -> dict:
        return {"model": plain.state_dict(), "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
                "epoch": epoch, "val_acc": val_acc, "best_val": best_val, "history": history,
                "rng": rng_state(generator), "train_config": asdict(cfg)}

    start_epoch, best_val, history = 0, -1.0, []
    if checkpoints.resume is not None:
        start_epoch, best_val, history = restore(checkpoints.resume, plain, optimizer, schedule, generator)
    log = RunLog(checkpoints.run_dir, cfg.epochs, history)
    if checkpoints.resume is None:
        checkpoints.save("last.pt", state(0, None, best_val, history))
    with StopOnSignal() as stop:
        s = TrainState(optimizer, schedule, cfg, batch_size, steps_per_epoch,
                       channels_last_default(device) if cfg.channels_last is None else cfg.channels_last, generator,
                       augment, stop, checkpoints.kept, step=start_epoch * steps_per_epoch)
        for epoch in range(start_epoch + 1, cfg.epochs + 1):
            row, t = run_epoch(model, data, s, epoch, log)
            schedule.observe(row["val_acc"], s.step)
            row |= epoch_end(plain, epoch) if epoch_end else {}
            if not math.isfinite(row["val_loss"]):  # before anything of this epoch is kept
                raise TrainingDiverged("validation loss", epoch, kept=s.kept)
            if not all_finite(plain):
                raise TrainingDiverged("weights", epoch, kept=s.kept)
            history.append(row)
            improved, best_val = row["val_acc"] > best_val, max(best_val, row["val_acc"])
            log.epoch(history, t["lrs"], t["losses"], improved)
            if improved:
                checkpoints.save("checkpoint.pt", state(epoch, row["val_acc"], best_val, history))
            checkpoints.save("last.pt", state(epoch, row["val_acc"], best_val, history))
            if after_epoch is not None:
                after_epoch(row)
            # A signal during the last step or the validation: the epoch is complete and saved, so stop here
            # (after the last epoch too: the experiment stops, and a resume writes this run's report).
            signum = int(distributed.all_reduce_max(torch.tensor(stop.signum or 0, device=device)).item())
            if signum:
                raise Interrupted(signum, epoch=epoch, kept=s.kept)
    return history


def run_epoch(model: nn.Module, data: ImageData, s: TrainState, epoch: int, log: RunLog) -> tuple[dict, dict]:
    """One epoch: train (its bar), then validate; the history row (sums over ranks: every rank sees the same
    figures and schedule) and the epoch's per-step losses and LRs."""
    device = data.train.labels.device
    t0 = time.perf_counter()
    model.train()
    with log.bar(s.steps_per_epoch) as bar:
        t = train_one_epoch(model, data, s, epoch, bar)
    train_seconds = time.perf_counter() - t0
    val = evaluate(model, data.val, data.mean, data.std, s.cfg.eval_batch_size, s.channels_last)
    totals = distributed.all_reduce_sum(torch.tensor(
        [t["loss_sum"], t["correct"], t["seen"], val.loss * len(data.val), val.acc * len(data.val), len(data.val)],
        dtype=torch.float64, device=device)).tolist()
    row = {"epoch": epoch, "train_loss": totals[0] / totals[2], "train_acc": totals[1] / totals[2],
           "val_loss": totals[3] / totals[5], "val_acc": totals[4] / totals[5], "lr": t["lr"],
           "max_step_loss": max(t["losses"]), "seconds": round(time.perf_counter() - t0, 3),
           "train_seconds": round(train_seconds, 3)}
    return row, t


def restore(ckpt: dict, model: nn.Module, optimizer: torch.optim.Optimizer, schedule, generator: torch.Generator
            ) -> tuple[int, float, list[dict]]:
    """Every state of a last.pt of this run; returns (its epoch, best validation accuracy, history)."""
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    schedule.load_state_dict(ckpt["schedule"])
    set_rng_state(ckpt["rng"], generator)
    return ckpt["epoch"], ckpt["best_val"], [dict(row) for row in ckpt["history"]]


def last_epoch(history: list[dict]) -> dict:
    """For a model reported as its last epoch left it (no checkpoint chosen): which that was, and the best
    validation epoch, for the record."""
    top = max(history, key=lambda row: row["val_acc"])
    return {"best_val_acc": top["val_acc"], "best_epoch": top["epoch"],
            "reported_weights": f"last epoch ({history[-1]['epoch']})"}


def training_figures(history: list[dict], model: nn.Module) -> dict:
    """What metrics.json says of the training itself: the last epoch's train accuracy, the time, the sizes."""
    train_seconds = sum(row["seconds"] for row in history)
    return {"final_train_acc": history[-1]["train_acc"], "epochs": history[-1]["epoch"],
            "train_seconds": round(train_seconds, 1), "seconds_per_epoch": round(train_seconds / len(history), 2),
            "params": count_parameters(model), "trainable_params": count_parameters(model, trainable_only=True)}
