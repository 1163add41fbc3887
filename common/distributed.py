"""torchrun / DDP: one process per GPU (or per CPU process with gloo, for tests).

Under `torchrun --nproc_per_node N train.py ...` every process runs the whole script:
- `setup()` joins the process group (nccl on CUDA, gloo on the CPU) and picks cuda:LOCAL_RANK;
- each rank keeps its own shard of the device-resident train and validation data (`shard`);
- the flags' --batch-size and --lr are the global ones: each rank steps on batch_size / world images,
  and DDP averages the gradients, so one step equals a single process's step on the global batch;
- loss, accuracy and validation are summed over ranks (`all_reduce_sum`);
- rank 0 alone writes the run folder, the logs and the checkpoints (`is_main`).
Without torchrun every function here is a no-op for a world of one.
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist

from common.errors import UserError


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def active() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    return rank() == 0


def setup(device_name: str) -> torch.device:
    """Join torchrun's process group and return this rank's device."""
    use_cuda = device_name == "cuda" or (device_name == "auto" and torch.cuda.is_available())
    if use_cuda and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for, but torch sees no CUDA device (use --device cpu)")
    if not active():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    if use_cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return torch.device("cpu")


def device_ids(device: torch.device) -> list[int] | None:
    """DistributedDataParallel's device_ids: this rank's GPU, or None on the CPU (gloo)."""
    return [device.index] if device.type == "cuda" else None


def teardown() -> None:
    if active():
        dist.destroy_process_group()


def broadcast_object(obj):
    """Rank 0's value of `obj` on every rank (e.g. the run folder's path)."""
    if not active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """The sum over ranks, in place (a no-op for one process)."""
    if active():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def all_reduce_max(t: torch.Tensor) -> torch.Tensor:
    if active():
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t


def local_batch_size(global_batch: int) -> int:
    world = world_size()
    if global_batch % world:
        raise UserError(f"--batch-size {global_batch} is the global batch and must divide by the {world} processes")
    return global_batch // world


def shard(split, rank_: int | None = None, world: int | None = None):
    """This rank's equal share of a Split: images rank, rank + world, ... of the first N - N % world."""
    rank_ = rank() if rank_ is None else rank_
    world = world_size() if world is None else world
    if world == 1:
        return split
    n = len(split) - len(split) % world
    idx = torch.arange(rank_, n, world, device=split.labels.device)
    return type(split)(split.images[idx], split.labels[idx], split.index[idx])
