"""Checkpoints that are safe to write and to load.

- Written atomically: to a temporary file in the same folder, then `os.replace`, so a kill during a
  save leaves the previous file whole.
- Loaded with `torch.load(weights_only=True)`: a checkpoint from someone else cannot run code on load.
  So a checkpoint holds plain types only: tensors, numbers, strings, lists, tuples and dicts.
- Every checkpoint names the task that wrote it; loading one from another task is one clear error.
"""
from __future__ import annotations

import os
import pickle
import random
from typing import Any

import numpy as np
import torch

from common.errors import UserError
from common.files import atomic_write, atomic_write_text  # noqa: F401  (atomic_write_text: re-exported)


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """torch.save `obj` to `path` atomically (atomic_write)."""
    atomic_write(path, lambda f: torch.save(obj, f))


def load_checkpoint(path: str | os.PathLike | None, task: str) -> dict:
    """A checkpoint written by `task`, on the CPU, or one UserError line saying what is wrong with it.

    Tensors are memory-mapped (copy-on-write): only what is used is read."""
    if not path:
        raise UserError("no checkpoint given (--checkpoint PATH)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except FileNotFoundError:
        raise UserError(f"no checkpoint at {path}") from None
    except IsADirectoryError:
        raise UserError(f"{path} is a folder; give the checkpoint file in it (last.pt or checkpoint.pt)") from None
    except pickle.UnpicklingError as e:
        if "GLOBAL" in str(e):  # the weights-only unpickler met a class or function it does not allow
            raise UserError(f"{path} refused: it holds Python objects beyond tensors and plain types, and loading "
                            f"it could run code (only load checkpoints from sources you trust)") from None
        raise UserError(f"{path} is not a readable checkpoint (UnpicklingError)") from None
    except Exception as e:
        raise UserError(f"{path} is not a readable checkpoint ({type(e).__name__})") from None
    if not isinstance(ckpt, dict) or not {"model", "args", "mean", "std"} <= ckpt.keys():
        raise UserError(f"{path} is not a checkpoint written by {task}/train.py")
    if ckpt.get("task") != task:
        raise UserError(f"{path} was written by {ckpt.get('task') or 'another program'}, not {task}/train.py")
    return ckpt


# ----------------------------------------------------------------------------- RNG state as plain types
def rng_state(generator: torch.Generator) -> dict:
    """Every RNG a run draws from: torch (CPU and CUDA), the augmentation generator, numpy, Python."""
    np_state = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "generator": generator.get_state(),
        "numpy": {"kind": np_state[0], "keys": torch.from_numpy(np_state[1].astype(np.int64)),
                  "pos": int(np_state[2]), "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
        "python": [py_version, list(py_internal), py_gauss],
    }


def set_rng_state(state: dict, generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    generator.set_state(state["generator"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
