"""Where and how a run executes: the device (and the torchrun process group), the memory format, the
allocator, deterministic algorithms, and the seeds (set here and nowhere else).

The CUDA recipe: bf16 autocast, channels_last, LayerNorm2d's autograd Function, and the NaN and signal flags
read from the device every 10 steps. `CUDA_REHEARSAL=1` in the environment runs it on the CPU too (all but
channels_last, which stays NCHW there unless --channels-last: see channels_last_default), so that the CPU
test suite covers the paths a GPU takes (tests/test_cuda_path.py).
"""
from __future__ import annotations

import argparse
import os
import platform
import random
import sys

import numpy as np
import torch
import torch.nn as nn

from common import distributed
from common.errors import UserError
from common.memory import keep_freed_memory

CUDA_REHEARSAL = os.environ.get("CUDA_REHEARSAL", "") == "1"


def cuda_recipe(device: torch.device) -> bool:
    """Does this device run the CUDA recipe: on CUDA, or on the CPU under CUDA_REHEARSAL=1."""
    return device.type == "cuda" or CUDA_REHEARSAL


def resolve_device(name: str) -> torch.device:
    """The device to run on; under torchrun, this rank's device (and the process group is joined)."""
    if distributed.launched_by_torchrun():
        return distributed.setup(name)
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for, but torch sees no CUDA device (use --device cpu)")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's model (what every published figure is written next to)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "CPU"


def seed_everything(seed: int) -> None:
    """The one place where the global RNGs (Python, numpy, torch) are seeded: at the start of every run and
    sub-run (common.run.RunFolder), right before its model is built, so initial weights depend only on it."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def channels_last_default(device: torch.device) -> bool:
    """channels_last on CUDA (faster convs with bf16), NCHW on the CPU: torch 2.14.1's oneDNN backward
    of slim channels_last convs segfaults or hangs on AVX2 CPUs (docs/RELIABILITY.md)."""
    return device.type == "cuda"


def resolve_channels_last(requested: bool | None, device: torch.device) -> bool:
    """--channels-last: the device's default unless forced; forcing it on the CPU warns in one line."""
    if requested is None:
        return channels_last_default(device)
    if requested and device.type == "cpu" and distributed.is_main():
        print("warning: --channels-last on the CPU: torch 2.14.1's oneDNN backward of slim channels_last convs "
              "can segfault or hang on AVX2 CPUs (docs/RELIABILITY.md)", file=sys.stderr)
    return requested


def place(model: nn.Module, device: torch.device, channels_last: bool | None) -> nn.Module:
    """The one place a model moves: to `device`, in channels_last if asked (None: the device's default). In
    place, as nn.Module.to is; returned for convenience."""
    model.to(device)
    if channels_last if channels_last is not None else channels_last_default(device):
        model.to(memory_format=torch.channels_last)
    return model


def start(args: argparse.Namespace) -> torch.device:
    """What every train.py does first: the device, the memory format (into args, so config.json and the
    checkpoints record it) and deterministic algorithms if asked. The seeds are set by each run's
    RunFolder.create, right before its model is built."""
    device = resolve_device(args.device)
    if device.type == "cpu":
        keep_freed_memory()  # big CPU tensors reused instead of page-faulted in again every step
    args.channels_last = resolve_channels_last(args.channels_last, device)
    set_determinism(args.deterministic, device)
    return device


def set_determinism(deterministic: bool, device: torch.device) -> None:
    """--deterministic: deterministic algorithms (cuBLAS's workspace setting, no cuDNN autotuning); otherwise,
    on CUDA, cuDNN picks the fastest convolution for each shape once (every step has the same shapes)."""
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS's condition for determinism
    torch.backends.cudnn.benchmark = device.type == "cuda" and not deterministic
    torch.use_deterministic_algorithms(deterministic)
