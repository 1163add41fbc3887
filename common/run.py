"""The run folder: where a run's files go, when it counts as complete, and how it is continued.

- `RunFolder.check(args, task)` looks at `--out` before anything is loaded and writes nothing: a folder that
  holds a run (complete or not) is refused in one line, unless `--overwrite` (replace it) or `--resume`
  (continue it). `create()` then makes the folder (a default name never collides), writes config.json
  (secrets redacted) and seeds the run.
- Complete = `metrics.json` exists; `finish(metrics)` writes it, last.
- Sub-runs (`b/config3-32px`, `seed2/aug`, `b/head`, ...): `folder.sub(name, **changed_args)` is a RunFolder
  of its own. While resuming, a complete sub-run is kept (`.complete`, `.metrics()`), an interrupted one
  continues from its last.pt (`.checkpoint`, loaded here, once), and the rest run.
- `train_and_report`: the pipeline every trained model goes through: summary -> fit -> curves -> reload the
  best checkpoint -> test report -> metrics.json.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import copy
import datetime as dt
import functools
import io
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import torch
import torch.nn as nn

from common import distributed
from common.augment import Augment
from common.checkpoint import atomic_write_text, load_checkpoint
from common.data import ImageData
from common.errors import UserError
from common.models import count_parameters
from common.runtime import device_name, seed_everything

if TYPE_CHECKING:
    from common.training import TrainConfig  # for the annotation only

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG, METRICS, LAST = "config.json", "metrics.json", "last.pt"
INHERITED = ("pretrained_weights",)  # config.json keys a sub-run repeats from its experiment's: what the report shows

# ----------------------------------------------------------------------------- secrets
_URL_PASSWORD = re.compile(r"(\w[\w+.-]*://[^/\s:@]*):[^/\s@]*@")


def redact(value: Any) -> Any:
    """`value` with every password in a URL (`scheme://user:password@host`) replaced by `***`, in strings
    and inside lists and dicts: what config.json, logs and printed lines may hold."""
    if isinstance(value, str):
        return _URL_PASSWORD.sub(r"\1:***@", value)
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value


def write_json(path: str | Path, obj: Any) -> None:
    """JSON (indented, secrets redacted) written atomically: a reader never sees half a file."""
    atomic_write_text(path, json.dumps(redact(obj), indent=2) + "\n")


def read_json(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())


@functools.cache  # the checkout does not change while a run goes: once per process, not once per sub-run
def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


# ----------------------------------------------------------------------------- the folder
def holds_a_run(path: Path) -> bool:
    """A folder with anything in it counts as a run (complete or in progress): never written into blindly."""
    return path.is_dir() and any(path.iterdir())


class RunFolder:
    """One run folder (or a sub-run's): its path, the args it runs with, and what a resume found in it."""

    def __init__(self, path: Path | None, task: str, args: argparse.Namespace, *, resuming: bool = False,
                 name: str = "", root: "RunFolder | None" = None) -> None:
        self.path, self.task, self.args, self.resuming, self.name = path, task, args, resuming, name
        self.root = root or self
        self.checkpoint: dict | None = None  # the last.pt a resumed sub-run continues from, loaded once
        self.inherited: dict = {}  # what the config.json of every sub-run repeats from this one's (INHERITED)

    # ------------------------------------------------------------------ the top folder
    @classmethod
    def check(cls, args: argparse.Namespace, task: str, *, continued: str = "") -> "RunFolder":
        """The run folder of `args` (--out, --overwrite, --resume), checked before anything loads: one error
        line for a folder that holds another run. `continued`: the kind of folder that the same command
        continues (a sweep's), whose config.json must say so under "continues"."""
        resuming = bool(getattr(args, "resume", None))
        path = Path(args.out) if args.out else None
        folder = cls(path, task, args, resuming=resuming)
        if path is None or resuming or getattr(args, "overwrite", False) or not holds_a_run(path):
            return folder.load_resume_checkpoint()
        if continued:
            saved = read_json(path / CONFIG) if (path / CONFIG).is_file() else {}
            if saved.get("continues") == continued and saved.get("task") == task:
                return folder
        script = f"{task}/train.py"
        if (path / METRICS).is_file():
            raise UserError(f"--out {path} holds a complete run: nothing was changed. Re-evaluate it with "
                            f"{task}/eval.py --checkpoint {path}/..., or give another --out (or --overwrite to "
                            f"replace it)")
        raise UserError(f"--out {path} holds an unfinished run: nothing was changed. Continue it with "
                        f"{script} --resume {path}, or give another --out (or --overwrite to replace it)")

    def make(self) -> "RunFolder":
        """Create the folder (rank 0; every rank gets the path): --overwrite replaces an old one; the default
        runs/<task>/<time> gets a -2, -3, ... suffix rather than share a folder with another run."""
        path = None
        if distributed.is_main():
            try:
                path = self._make_main()
            except OSError as e:
                raise UserError(f"cannot write to run folder {self.path or REPO_ROOT / 'runs' / self.task}: "
                                f"{e.strerror}") from None
        self.path = Path(distributed.broadcast_object(str(path)))
        return self

    def _make_main(self) -> Path:
        if self.path is None:  # the default name: a new folder, never an existing one
            stamp = REPO_ROOT / "runs" / self.task / dt.datetime.now().strftime("%Y%m%d-%H%M%S")
            stamp.parent.mkdir(parents=True, exist_ok=True)
            for n in range(1, 1000):
                candidate = stamp if n == 1 else stamp.with_name(f"{stamp.name}-{n}")
                try:
                    candidate.mkdir()
                    return candidate
                except FileExistsError:
                    continue
            raise UserError(f"no free run folder name under {stamp.parent}")
        if self is self.root and getattr(self.args, "overwrite", False) and not self.resuming \
                and holds_a_run(self.path):
            shutil.rmtree(self.path)
            print(f"--overwrite: replaced {self.path}", flush=True)
        self.path.mkdir(parents=True, exist_ok=True)
        probe = self.path / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
        return self.path

    def write_config(self, device: torch.device, **extra: Any) -> dict:
        """config.json: every argument, the versions, device, commit and command (secrets redacted). A resumed
        run keeps the config.json it was started with."""
        import torchvision

        self.inherited = {**self.inherited, **{k: v for k, v in extra.items() if k in INHERITED}}
        config = {**vars(self.args), "task": self.task, **self.inherited,
                  "torch": torch.__version__, "torchvision": torchvision.__version__,
                  "device_name": device_name(device), "resolved_device": str(device),
                  "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"), "git_commit": git_commit(),
                  "command": getattr(self.args, "command", None), **extra}  # (set by common.cli.run_main)
        if distributed.is_main() and not (self.resuming and (self.path / CONFIG).exists()):
            write_json(self.path / CONFIG, config)
        return config

    def create(self, device: torch.device, **extra: Any) -> "RunFolder":
        """make() + write_config() + seed the run: what every run and sub-run does before building its model."""
        self.make()
        self.write_config(device, **extra)
        seed_everything(self.args.seed)
        return self

    # ------------------------------------------------------------------ sub-runs and resume
    def sub(self, name: str, **changed_args: Any) -> "RunFolder":
        """The sub-run `name` (a relative path) with these args changed; see .complete and .checkpoint."""
        full = f"{self.name}/{name}" if self.name else name
        args = argparse.Namespace(**{**vars(self.args), **changed_args, "sub_run": full})
        sub = RunFolder(self.path / name, self.task, args, resuming=self.resuming, name=full, root=self.root)
        sub.inherited = dict(self.inherited)
        return sub.load_resume_checkpoint()

    def load_resume_checkpoint(self) -> "RunFolder":
        """While resuming an unfinished (sub-)run that has a last.pt: load it, once."""
        if self.resuming and self.path is not None and not self.complete and (self.path / LAST).is_file():
            self.checkpoint = load_checkpoint(self.path / LAST, self.task)
        return self

    @property
    def complete(self) -> bool:
        return self.path is not None and (self.path / METRICS).is_file()

    def metrics(self) -> dict:
        return read_json(self.path / METRICS)

    def finish(self, metrics: dict) -> dict:
        """metrics.json, written last: it marks the folder complete. The top folder says where it is."""
        if distributed.is_main():
            write_json(self.path / METRICS, metrics)
            if self is self.root:
                print(f"results: {self.path} (make report puts them on one page with the other tasks)", flush=True)
        return metrics

    def summary(self, model: nn.Module, input_size: Sequence[int], device: torch.device) -> str:
        """Print the torchsummary table and save it to summary.txt (on a copy: no side effects on BN stats)."""
        from torchsummary import summary

        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            summary(copy.deepcopy(model).eval(), tuple(input_size), device=device.type)
        text = buf.getvalue()
        if distributed.is_main():
            print(text, end="")
            atomic_write_text(self.path / "summary.txt", text)
        return text


# ----------------------------------------------------------------------------- --resume
# Flags that may differ from the saved ones when resuming: they change where or how fast, not what.
RESUME_MAY_CHANGE = ("data_dir", "compile", "device")


def resume_root(path: str | Path, task: str) -> tuple[Path, dict]:
    """The top run folder that `--resume PATH` continues (PATH: it, a sub-run folder, or a last.pt in either)
    and its config.json; one error line when PATH is none of these."""
    path = Path(path)
    folder = path.parent if path.is_file() else path
    if not (folder / CONFIG).is_file():
        if path.is_file():
            load_checkpoint(path, task)  # the checkpoint's own error if it is not one of ours
        raise UserError(f"--resume {path}: no run folder there (no {CONFIG}); give the folder of a run of "
                        f"{task}/train.py, or its last.pt")
    config = read_json(folder / CONFIG)
    if config.get("task", task) != task:
        raise UserError(f"--resume {path} was written by {config['task']}, not {task}/train.py")
    sub_run = config.get("sub_run", "")
    root = folder.parents[len(Path(sub_run).parts) - 1] if sub_run else folder
    return root, (read_json(root / CONFIG) if sub_run else config)


def resumed_args(parser: argparse.ArgumentParser, task: str, explicit: dict) -> argparse.Namespace:
    """The args a run was started with, from its config.json, for --resume; a flag changed on the command
    line, or a run that is already complete, is one error."""
    root, saved = resume_root(explicit["resume"], task)
    if (root / METRICS).is_file():
        raise UserError(f"{root} is a finished run: nothing to resume ({task}/eval.py --checkpoint re-evaluates "
                        f"it)")
    dests = {a.dest for a in parser._actions}
    for key, value in explicit.items():
        if key not in (*RESUME_MAY_CHANGE, "resume") and saved.get(key) != value:
            flag = "--" + key.replace("_", "-")
            raise UserError(f"--resume continues a run with the flags it was started with, but {flag} {value} "
                            f"differs from its {saved.get(key)} (start a new run to change it)")
    if any(":***@" in str(saved.get(k)) for k in dests):
        raise UserError("--resume: this run's config.json holds a redacted secret; start a new run instead")
    values = {k: saved[k] for k in dests if k in saved}
    values |= {k: explicit[k] for k in RESUME_MAY_CHANGE if k in explicit}
    defaults = {a.dest: a.default for a in parser._actions if a.dest != "help"}
    print(f"resuming the experiment in {root}: complete runs are kept, the interrupted one continues", flush=True)
    return argparse.Namespace(**{**defaults, **values, "resume": str(root), "out": str(root)})


def resume_command(path: Path, task: str) -> str:
    """The exact command that continues the whole experiment that `path` (a run folder or last.pt) is in."""
    world = distributed.world_size()
    launcher = f"torchrun --nproc_per_node {world}" if world > 1 else "python"
    return f"{launcher} {task}/train.py --resume {path}"


# ----------------------------------------------------------------------------- the pipeline
def train_and_report(model: nn.Module, data: ImageData, run: RunFolder, *, device: torch.device, cfg: TrainConfig,
                     augment: Augment | None, title: str, gradcam_layer: str, gradcam_target: str = "pred",
                     n_images: int = 20, epoch_end: Callable[[nn.Module, int], dict] | None = None,
                     weights: str = "best", extra_metrics: Callable[[nn.Module], dict] | None = None,
                     after_epoch: Callable[[dict], None] | None = None) -> dict:
    """Train `model` on `data` into `run` (created: common.run.RunFolder.create) and report on the test set;
    returns the metrics (rank 0; {} on the other ranks of a torchrun job, which train on their shards).

    `run.checkpoint`, when resuming, is the last.pt training continues from. `epoch_end(model, epoch)`: extra
    history.csv columns. `weights`: "best" reloads checkpoint.pt (best validation accuracy) for the report,
    "last" reports the model as the last epoch left it. `extra_metrics(model)`: task figures for metrics.json.
    """
    from dataclasses import replace

    from common.plots import step_losses, training_curves
    from common.report import test_report
    from common.training import fit

    if weights not in ("best", "last"):
        raise ValueError(f"weights must be 'best' or 'last', got {weights!r}")
    args, run_dir, main = run.args, run.path, distributed.is_main()
    cfg = replace(cfg, channels_last=args.channels_last)
    model = model.to(device)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    params, trainable = count_parameters(model), count_parameters(model, trainable_only=True)
    run.write_config(device, params=params, trainable_params=trainable, mean=data.mean, std=data.std,
                     world_size=distributed.world_size(),
                     split_sizes={"train": len(data.train), "val": len(data.val), "test": len(data.test)})
    run.summary(model, data.train.images.shape[1:], device)
    if main:
        print(f"{title}: {trainable:,} of {params:,} parameters trainable; train {len(data.train)}, "
              f"val {len(data.val)}, test {len(data.test)} images on {device}"
              f"{f' x {distributed.world_size()} processes' if distributed.active() else ''}; run folder {run_dir}",
              flush=True)
        if run.checkpoint is not None:
            print(f"resuming {run_dir / LAST} after epoch {run.checkpoint['epoch']} of {cfg.epochs}", flush=True)

    shard = replace(data, train=distributed.shard(data.train), val=distributed.shard(data.val))
    trained = torch.compile(model) if args.compile else model
    generator = torch.Generator(device).manual_seed(args.seed + distributed.rank())
    history = fit(trained, shard, cfg, run_dir, augment=augment, generator=generator, args=vars(args),
                  task=run.task, resume=run.checkpoint, epoch_end=epoch_end, after_epoch=after_epoch,
                  resume_with=resume_command(run_dir / LAST if cfg.save_checkpoints else run.root.path, run.task))
    if not main:
        return {}
    training_curves(history, run_dir / "curves.png", title)
    with (run_dir / "steps.csv").open() as f:
        step_losses(list(csv.DictReader(f)), run_dir / "steps.png", f"{title}: training loss per step")

    if weights == "best":
        best = load_checkpoint(run_dir / "checkpoint.pt", run.task)
        model.load_state_dict(best["model"])
        best_val_acc, best_epoch = best["val_acc"], best["epoch"]
    else:  # the model as the last epoch left it; the best validation epoch is only reported
        top = max(history, key=lambda row: row["val_acc"])
        best_val_acc, best_epoch = top["val_acc"], top["epoch"]
    report = test_report(model, data, run_dir, seed=args.seed, n_images=n_images, gradcam_layer=gradcam_layer,
                         gradcam_target=gradcam_target, channels_last=args.channels_last)
    train_seconds = sum(row["seconds"] for row in history)
    metrics = {"test_acc": report.pop("test_acc"), "best_val_acc": best_val_acc, "best_epoch": best_epoch,
               "final_train_acc": history[-1]["train_acc"], "epochs": cfg.epochs,
               "train_seconds": round(train_seconds, 1), "seconds_per_epoch": round(train_seconds / len(history), 2),
               "params": params, "trainable_params": trainable, **report}
    if weights == "last":
        metrics["reported_weights"] = f"last epoch ({history[-1]['epoch']})"
    if extra_metrics is not None:
        metrics.update(extra_metrics(model))
    run.finish(metrics)
    which = "last epoch" if weights == "last" else f"best_val_acc={100 * best_val_acc:.2f}% (epoch {best_epoch})"
    print(f"{title}: test_acc={100 * metrics['test_acc']:.2f}%  {which}  {metrics['seconds_per_epoch']:.1f} s/epoch  "
          f"-> {run_dir}", flush=True)
    return metrics

