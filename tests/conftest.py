"""Small on-disk datasets in the real formats, so the real loaders are exercised offline."""
import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest


def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(path, "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)


def fashion_arrays(n_train: int = 300, n_test: int = 100, seed: int = 0):
    """Class-dependent 28x28 images: class k lights up a horizontal band at rows 2k..2k+5, plus noise."""
    rng = np.random.default_rng(seed)

    def make(n):
        labels = rng.integers(0, 10, n)
        images = rng.integers(0, 40, (n, 28, 28))
        for i, k in enumerate(labels):
            images[i, 2 * k + 2: 2 * k + 6, 4:24] = 220
        return images.astype(np.uint8), labels.astype(np.uint8)

    return (*make(n_train), *make(n_test))


@pytest.fixture
def fashion_dir(tmp_path) -> Path:
    """Debian's layout: four gzipped IDX files in one flat folder."""
    folder = tmp_path / "fashion"
    folder.mkdir()
    xtr, ytr, xte, yte = fashion_arrays()
    write_idx(folder / "train-images-idx3-ubyte.gz", xtr)
    write_idx(folder / "train-labels-idx1-ubyte.gz", ytr)
    write_idx(folder / "t10k-images-idx3-ubyte.gz", xte)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", yte)
    return folder


@pytest.fixture
def cifar_dir(tmp_path, monkeypatch) -> Path:
    """torchvision's cifar-10-batches-py layout (pickled batches), 50 + 40 images.

    Only the md5 check is replaced by an existence check: torchvision's CIFAR10 then reads these
    files as it reads the real ones.
    """
    import os

    import torchvision.datasets.cifar as tv_cifar

    root = tmp_path / "cifar"
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, n in [*[(f"data_batch_{i}", 10) for i in range(1, 6)], ("test_batch", 40)]:
        batch = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "labels": rng.integers(0, 10, n).tolist()}
        (folder / name).write_bytes(pickle.dumps(batch))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": ["c%d" % i for i in range(10)]}))
    monkeypatch.setattr(tv_cifar, "check_integrity", lambda path, md5=None: os.path.isfile(path))
    return root


@pytest.fixture
def offline(monkeypatch):
    """Make every torchvision download fail at once, as it does with no network."""
    import torchvision.datasets.utils as tvu

    def refuse(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(tvu, "download_url", refuse)
    monkeypatch.setattr(tvu, "download_and_extract_archive", refuse)
    import torchvision.datasets.cifar as tvc
    import torchvision.datasets.mnist as tvm
    monkeypatch.setattr(tvc, "download_and_extract_archive", refuse)
    monkeypatch.setattr(tvm, "download_and_extract_archive", refuse)


@pytest.fixture
def torch_home(tmp_path, monkeypatch) -> Path:
    """An empty TORCH_HOME: torchvision's weight API caches (and looks for) weights in <it>/hub/checkpoints.
    TORCHVISION_WEIGHTS_DIR is unset, so torchvision's (hash-checked) files are what is looked for."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.delenv("TORCHVISION_WEIGHTS_DIR", raising=False)
    return tmp_path / "torch_home"


@pytest.fixture
def no_network(monkeypatch):
    """A weights download fails at once, as it does offline (never a real connection, never a hang)."""
    import urllib.error

    import torch

    def refuse(*args, **kwargs):
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)


@pytest.fixture
def own_weights_dir(torch_home, monkeypatch) -> Path:
    """An empty folder named by TORCHVISION_WEIGHTS_DIR: weights files put there are loaded without a hash
    check (stand-ins for torchvision's files), TORCH_HOME being empty."""
    folder = torch_home.parent / "own_weights"
    folder.mkdir()
    monkeypatch.setenv("TORCHVISION_WEIGHTS_DIR", str(folder))
    return folder


@pytest.fixture
def stand_in_resnet50(own_weights_dir) -> Path:
    """A random torchvision ResNet-50 in TORCHVISION_WEIGHTS_DIR under IMAGENET1K_V2's file name: a stand-in,
    NOT ImageNet (torchvision's hash check would refuse it in TORCH_HOME)."""
    import torch
    import torchvision
    from torchvision.models import ResNet50_Weights

    from common.weights import own_weights_file

    path = own_weights_file(ResNet50_Weights.IMAGENET1K_V2)
    torch.save(torchvision.models.resnet50().state_dict(), path)
    return path


def one_error_line(capsys, prefix: str = "error: ", preceded_by: tuple[str, ...] = ()) -> str:
    """What a script printed on stderr: one line starting with `prefix`, last; before it, only lines starting
    with one of `preceded_by` (a loader's `skipped <file>` report, say). Returns the line."""
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith(prefix), err
    assert all(line.startswith(preceded_by) for line in err[:-1]) if preceded_by else len(err) == 1, err
    return err[-1]
