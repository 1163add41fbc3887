"""The task-script contract: shared flags, device and seed, the run folder, and one-line errors.

Every task's train.py / eval.py does `main(argv) -> run_main(build_parser(), run, argv)`.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import datetime as dt
import io
import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn as nn

from common import distributed
from common.checkpoint import load_checkpoint
from common.data import DATASETS
from common.errors import Interrupted, UserError
from common.memory import keep_freed_memory

REPO_ROOT = Path(__file__).resolve().parents[1]


class Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one `error:` line (no usage block) and exit code 2."""

    task = ""  # the task folder, for checkpoints and the resume command

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UserError(f"{self.prog}: {message}")


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def base_parser(task: str, description: str, *, epochs: int, batch_size: int, lr: float,
                dataset: str = "cifar10") -> Parser:
    """A parser with the shared flags, same names in every task (see STYLE.md)."""
    p = Parser(prog=f"{task}/train.py", description=description,
               formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.task = task
    p.add_argument("--epochs", type=positive_int, default=epochs)
    p.add_argument("--batch-size", type=positive_int, default=batch_size)
    p.add_argument("--lr", type=float, default=lr, help="peak learning rate")
    p.add_argument("--seed", type=int, default=0, help="seeds weights, split, shuffling and augmentation")
    p.add_argument("--dataset", choices=DATASETS, default=dataset)
    p.add_argument("--data-dir", default="data", help="dataset folder (Fashion-MNIST: /usr/share/datasets/fashion-mnist)")
    p.add_argument("--out", default=None, help=f"run folder (default runs/{task}/<timestamp>)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--subset", type=positive_int, default=None,
                   help="cap train and test at N images (smoke runs); the val split shrinks with it")
    p.add_argument("--val-size", type=positive_int, default=5000, help="images held out of train for validation")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help="memory format; default: on for CUDA, off on the CPU (a oneDNN bug there, see README)")
    p.add_argument("--resume", default=None, metavar="PATH",
                   help="continue an interrupted run from its last.pt, with the flags it was started with")
    p.add_argument("--deterministic", action="store_true",
                   help="deterministic algorithms only (bit-identical reruns and resumes; slower on CUDA)")
    return p


def update_flag(parser: argparse.ArgumentParser, dest: str, **changes: Any) -> None:
    """Change a shared flag's choices, default or help for one task (base_parser defines it for CIFAR)."""
    for action in parser._actions:
        if action.dest == dest:
            for key, value in changes.items():
                setattr(action, key, value)
            if "default" in changes:
                parser.set_defaults(**{dest: changes["default"]})
            return
    raise KeyError(dest)


# Flags that may differ from a checkpoint's when resuming it: they change where or how fast, not what.
RESUME_MAY_CHANGE = ("data_dir", "compile")


def explicit_flags(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> dict:
    """The flags given on the command line (not their defaults), parsed: dest -> value."""
    missing = object()
    ns = argparse.Namespace(**{a.dest: missing for a in parser._actions})  # argparse skips defaults it sees set
    parser.parse_args(argv, ns)
    return {k: v for k, v in vars(ns).items() if v is not missing}


def resumed_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None,
                 args: argparse.Namespace) -> argparse.Namespace:
    """The args a run was started with, from its last.pt; a changed flag or a finished run is one error."""
    ckpt = load_checkpoint(args.resume, getattr(parser, "task", ""))
    saved = ckpt["args"]
    epochs = ckpt.get("train_config", {}).get("epochs", saved["epochs"])  # the run's own (a sub-run may differ)
    if ckpt["epoch"] >= epochs:
        raise UserError(f"{args.resume} is the end of a finished run ({ckpt['epoch']} of {epochs} epochs): "
                        f"nothing to resume (eval.py --checkpoint re-evaluates it)")
    given = explicit_flags(parser, argv)
    for key, value in given.items():
        if key not in (*RESUME_MAY_CHANGE, "resume") and saved.get(key) != value:
            flag = "--" + key.replace("_", "-")
            raise UserError(f"--resume continues a run with the flags it was started with, but {flag} {value} "
                            f"differs from its {saved.get(key)} (start a new run to change it)")
    kept = {k: given[k] for k in RESUME_MAY_CHANGE if k in given}
    return argparse.Namespace(**{**saved, **kept, "resume": args.resume, "out": str(Path(args.resume).parent)})


def experiment_args(args: argparse.Namespace, run_keys: Sequence[str],
                    sub_runs: str) -> tuple[argparse.Namespace, Path]:
    """For a task whose run folder holds several sub-runs (seeds, models, parts), each with its own last.pt:
    the whole experiment's flags and folder from the args that `--resume <sub-run>/last.pt` read back (the
    sub-run added `run_keys` to them). One error line if that last.pt is not a sub-run's (`sub_runs` says
    which folders are)."""
    if not getattr(args, "experiment_dir", None):
        raise UserError(f"{args.resume} is not the last.pt of a sub-run ({sub_runs})")
    root = Path(args.experiment_dir)
    flags = {k: v for k, v in vars(args).items() if k not in run_keys}
    print(f"resuming the experiment in {root}: finished runs are kept, the interrupted one continues", flush=True)
    return argparse.Namespace(**{**flags, "out": str(root), "resume": args.resume}), root


def run_main(parser: argparse.ArgumentParser, run: Callable[[argparse.Namespace], int],
             argv: Sequence[str] | None) -> int:
    """Parse, run, and turn each foreseeable stop into one line on stderr and its exit code: a UserError
    (`error: ...`, 2), a diverged loss (1), Ctrl-C or SIGTERM (`interrupted: ...`, 130 or 143)."""
    try:
        args = parser.parse_args(argv)
        if getattr(args, "resume", None):
            args = resumed_args(parser, argv, args)
        return run(args)
    except (UserError, Interrupted) as e:
        print(f"{e.prefix}: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:  # outside the training loop (loading data, the test report): nothing to resume
        print("interrupted: Ctrl-C outside training; the run folder has no metrics.json, so it is not complete",
              file=sys.stderr)
        return 130
    finally:
        distributed.teardown()


def resolve_device(name: str) -> torch.device:
    """The device to run on; under torchrun, this rank's device (and the process group is joined)."""
    if distributed.launched_by_torchrun():
        return distributed.setup(name)
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for, but torch sees no CUDA device (use --device cpu)")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """The one place where global RNGs are seeded."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_channels_last(requested: bool | None, device: torch.device) -> bool:
    """--channels-last: the device's default unless forced; forcing it on the CPU warns in one line."""
    from common.training import channels_last_default

    if requested is None:
        return channels_last_default(device)
    if requested and device.type == "cpu" and distributed.is_main():
        print("warning: --channels-last on the CPU: torch 2.14.1's oneDNN backward of slim channels_last convs "
              "can segfault or hang on AVX2 CPUs (see README)", file=sys.stderr)
    return requested


def start(args: argparse.Namespace) -> torch.device:
    """What every train.py does first: the device, the memory format (into args, so config.json and the
    checkpoints record it) and the seeds."""
    device = resolve_device(args.device)
    if device.type == "cpu":
        keep_freed_memory()  # big CPU tensors reused instead of page-faulted in again every step
    args.channels_last = resolve_channels_last(args.channels_last, device)
    if args.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS's condition for determinism
        torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(args.deterministic)
    seed_everything(args.seed)
    return device


def prepare_run_dir(out: str | None, task: str) -> Path:
    """Create the run folder (rank 0; every rank gets its path). A stale metrics.json is removed: the
    folder counts as complete only once this run writes its own metrics.json, last."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = Path(distributed.broadcast_object(str(Path(out) if out else REPO_ROOT / "runs" / task / stamp)))
    if not distributed.is_main():
        return run_dir
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise UserError(f"cannot write to run folder {run_dir}: {e.strerror}") from None
    (run_dir / "metrics.json").unlink(missing_ok=True)
    return run_dir


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_config(run_dir: Path, args: argparse.Namespace, device: torch.device, **extra: Any) -> dict:
    import torchvision

    config = {**vars(args), "torch": torch.__version__, "torchvision": torchvision.__version__,
              "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
              "resolved_device": str(device), "git_commit": git_commit(),
              "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]), **extra}
    write_json(run_dir / "config.json", config)
    return config


def model_summary(model: nn.Module, input_size: tuple[int, int, int], device: torch.device, run_dir: Path) -> str:
    """Print the torchsummary table and save it to summary.txt (on a copy: no side effects on BN stats)."""
    from torchsummary import summary

    buf = io.StringIO()
    probe = copy.deepcopy(model).eval()
    with contextlib.redirect_stdout(buf):
        summary(probe, input_size, device=device.type)
    text = buf.getvalue()
    print(text, end="")
    (run_dir / "summary.txt").write_text(text)
    return text


def eval_parser(task: str, description: str) -> Parser:
    """The flags every task's eval.py shares: --checkpoint, --data-dir, --out, --device."""
    p = Parser(prog=f"{task}/eval.py", description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.task = task
    p.add_argument("--checkpoint", required=True, help="checkpoint.pt or last.pt of a run")
    p.add_argument("--data-dir", default=None, help="override the data folder stored in the checkpoint")
    p.add_argument("--out", default=None, help="where to write the PNGs and eval.json (default: the run folder)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    return p
