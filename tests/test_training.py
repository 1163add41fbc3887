"""The training loop on the CPU with its default flags, in a child process (a crash or hang there must
not take the test run with it)."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# torch 2.14.1's oneDNN backward of a slim channels_last conv segfaults (1 thread) or hangs (2 threads)
# on AVX2 CPUs; a width-4 ResNet-18 is such a net. fit() must pick NCHW on the CPU by default.
# FORCE_CHANNELS_LAST=1 in the child's argv forces channels_last, to see the crash this test guards against.
WIDTH4_RUN = textwrap.dedent("""
    import sys, tempfile, torch
    from pathlib import Path
    from common.augment import cifar_train_augment
    from common.data import ImageData, Split
    from common.models import resnet18
    from common.training import Checkpointer, TrainConfig, fit
    torch.set_num_threads(int(sys.argv[1]))
    force = sys.argv[2] == "1"
    g = torch.Generator().manual_seed(0)
    def split(n):
        return Split(torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g),
                     torch.randint(0, 10, (n,), generator=g), torch.arange(n))
    data = ImageData("random", list("abcdefghij"), split(135), split(32), split(32), (0.5,) * 3, (0.25,) * 3)
    model = resnet18(10, norm="bn", width=4)
    cfg = TrainConfig(epochs=2, batch_size=16, save_checkpoints=False)
    if force:
        model = model.to(memory_format=torch.channels_last)
        cfg.channels_last = True
    with tempfile.TemporaryDirectory() as tmp:
        history = fit(model, data, cfg, Checkpointer(Path(tmp), cfg.save_checkpoints), augment=cifar_train_augment(),
                      generator=torch.Generator().manual_seed(0))
    print("trained", len(history), "epochs")
""")


def run_width4(threads: int, force_channels_last: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", WIDTH4_RUN, str(threads), "1" if force_channels_last else "0"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)


def test_width4_resnet_trains_two_epochs_on_the_cpu_with_default_flags():
    for threads in (1, 2):
        proc = run_width4(threads)
        assert proc.returncode == 0, (threads, proc.stderr[-2000:])
        assert "trained 2 epochs" in proc.stdout


FREED_MEMORY_PROBE = textwrap.dedent("""
    import sys
    import torch
    from common.memory import keep_freed_memory

    def rss_mib():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096 / 2**20

    applied = keep_freed_memory() if sys.argv[1] == "keep" else False
    x = torch.ones(64 * 2**20 // 4)  # 64 MiB: over glibc's largest mmap threshold
    before = rss_mib()
    del x
    print(applied, round(before - rss_mib()))  # MiB given back to the OS by the free
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_cpu_runs_keep_freed_memory_for_reuse():
    """By default glibc gives a big freed block back to the OS (and the next batch page-faults it in
    again); after keep_freed_memory() it stays in the heap for the next allocation."""
    def run(mode: str) -> tuple[str, int]:
        out = subprocess.run([sys.executable, "-c", FREED_MEMORY_PROBE, mode], capture_output=True, text=True,
                             cwd=REPO, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
        assert out.returncode == 0, out.stderr
        applied, returned = out.stdout.split()
        return applied, int(returned)

    assert run("default") == ("False", 64)
    assert run("keep") == ("True", 0)
