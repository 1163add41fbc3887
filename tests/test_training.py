"""The training loop's batching, beyond what the task end-to-end tests cover."""
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# 135 training images in batches of 128 leave a last batch of 7. On the CPU (2 threads, channels_last),
# torch 2.14.1's oneDNN backward of the 1x1 stride-2 shortcut conv of a width-8 ResNet-18 corrupts the
# heap for such odd batches and aborts the process, so this runs in a child process.
ODD_REMAINDER_RUN = textwrap.dedent("""
    import tempfile, torch
    from pathlib import Path
    from common.augment import cifar_train_augment
    from common.data import ImageData, Split
    from common.models import resnet18
    from common.training import TrainConfig, fit
    torch.set_num_threads(2)
    g = torch.Generator().manual_seed(0)
    def split(n):
        return Split(torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g),
                     torch.randint(0, 10, (n,), generator=g), torch.arange(n))
    data = ImageData("random", list("abcdefghij"), split(135), split(32), split(32), (0.5,) * 3, (0.25,) * 3)
    model = resnet18(10, norm="bn", width=8).to(memory_format=torch.channels_last)
    with tempfile.TemporaryDirectory() as tmp:
        history = fit(model, data, TrainConfig(epochs=2, batch_size=128, save_checkpoints=False), Path(tmp),
                      augment=cifar_train_augment(), generator=torch.Generator().manual_seed(0), args={})
    print("trained", len(history), "epochs")
""")


def test_fit_trains_on_full_batches_so_an_odd_remainder_cannot_crash_the_cpu_backward():
    proc = subprocess.run([sys.executable, "-c", ODD_REMAINDER_RUN], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "trained 2 epochs" in proc.stdout
