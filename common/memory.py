"""Peak memory of a block of work, for the tables that report it (make bench, fine-tuning strategies)."""
from __future__ import annotations

import threading
from pathlib import Path

import torch


class PeakMemory:
    """Peak memory inside a `with` block, in MiB (`.mib`).

    CUDA: torch.cuda.max_memory_allocated. CPU: the largest proportional set size (PSS: pages shared
    with forked DataLoader workers count once) of this process plus its children, sampled every 50 ms.
    """

    def __init__(self, device: torch.device) -> None:
        self.device, self.mib = device, 0.0
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
        while not self._stop.wait(0.05):
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
