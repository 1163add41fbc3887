"""CPU memory: the allocator setting that CPU runs use, and the peak memory of a block of work for the
tables that report it (make bench, fine-tuning strategies)."""
from __future__ import annotations

import ctypes
import ctypes.util
import sys
import threading
from pathlib import Path

import torch

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # glibc's mallopt parameters (malloc.h)


def keep_freed_memory() -> bool:
    """Make glibc malloc keep freed blocks for reuse instead of giving them back to the OS (Linux only).

    By default every block over 32 MiB (a 224 px batch of 128 is 77 MB as float32) is a fresh mmap, so each
    batch, activation and gradient of a CPU step page-faults its memory in again: on 2 cores that costs more
    than the arithmetic (make bench, `folders`). Served from the heap instead, freed memory is reused at
    once, as PyTorch's CUDA caching allocator does on the GPU; the resident size stays at its peak. The
    same as starting Python with MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=<large>. Returns whether it applied.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
    except (OSError, AttributeError):  # not glibc (musl has no mallopt): keep the default
        return False


class PeakMemory:
    """Peak memory inside a `with` block, in MiB (`.mib`).

    CUDA: torch.cuda.max_memory_allocated. CPU: the largest proportional set size (PSS: pages shared
    with forked DataLoader workers count once) of this process plus its children, sampled every `interval`
    seconds. Reading a process's PSS walks its page tables: about 30 ms for a few GB, so sampling every
    50 ms takes half a core, and a timed window must not run inside this block (bench.measure times its
    windows first, then runs one more under it); long blocks use a longer interval.
    """

    def __init__(self, device: torch.device, interval: float = 0.05) -> None:
        self.device, self.mib, self.interval = device, 0.0, interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def _pss_kib(pid: str) -> int:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    return int(line.split()[1])
        except OSError:
            pass
        return 0

    def _sample(self) -> float:
        pids = ["self"]
        for children in Path("/proc/self/task").glob("*/children"):
            try:
                pids += children.read_text().split()
            except OSError:
                pass
        return sum(self._pss_kib(p) for p in pids) / 1024

    def _poll(self) -> None:
        while not self._stop.wait(self.interval):
            self.mib = max(self.mib, self._sample())

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        else:
            self.mib = self._sample()
            self._thread = threading.Thread(target=self._poll, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.mib = torch.cuda.max_memory_allocated() / 2**20
        else:
            self._stop.set()
            self._thread.join()
            self.mib = max(self.mib, self._sample())
