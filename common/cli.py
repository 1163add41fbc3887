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
import random
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn as nn

from common.data import DATASETS
from common.errors import UserError

REPO_ROOT = Path(__file__).resolve().parents[1]


class Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one `error:` line (no usage block) and exit code 2."""

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
    return p


def run_main(parser: argparse.ArgumentParser, run: Callable[[argparse.Namespace], int],
             argv: Sequence[str] | None) -> int:
    """Parse, run, and turn a UserError into a single `error: ...` line with exit code 2."""
    try:
        args = parser.parse_args(argv)
        return run(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def resolve_device(name: str) -> torch.device:
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


def prepare_run_dir(out: str | None, task: str) -> Path:
    """Create the run folder. A stale metrics.json is removed: the folder counts as complete only
    once this run writes its own metrics.json, last."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = Path(out) if out else REPO_ROOT / "runs" / task / stamp
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create run folder {run_dir}: {e.strerror}") from None
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
    p.add_argument("--checkpoint", required=True, help="checkpoint.pt or last.pt of a run")
    p.add_argument("--data-dir", default=None, help="override the data folder stored in the checkpoint")
    p.add_argument("--out", default=None, help="where to write the PNGs and eval.json (default: the run folder)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    return p


def load_checkpoint(path: str, task: str) -> dict:
    """A checkpoint written by common.training.fit, on the CPU, or one UserError line saying what is wrong."""
    if not path:
        raise UserError("no checkpoint given (--checkpoint PATH)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except FileNotFoundError:
        raise UserError(f"no checkpoint at {path}") from None
    except Exception as e:
        raise UserError(f"{path} is not a readable checkpoint ({type(e).__name__})") from None
    if not isinstance(ckpt, dict) or not {"model", "args", "mean", "std"} <= ckpt.keys():
        raise UserError(f"{path} is not a checkpoint written by {task}/train.py")
    return ckpt
