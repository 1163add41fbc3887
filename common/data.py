"""Datasets as device-resident uint8 tensors (N, 3, 32, 32), split into train / val / test.

Everything CIFAR-shaped lives on the training device as uint8 and is normalised on the fly
(cifar10-airbench style): no DataLoader, no per-image Python in the training loop.
"""
from __future__ import annotations

import gzip
import math
import os
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from common.errors import UserError

DATASETS = ("cifar10", "fashion-mnist", "synthetic")

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
FASHION_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
FASHION_DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"


@dataclass
class Split:
    images: torch.Tensor  # uint8 (N, 3, H, W)
    labels: torch.Tensor  # int64 (N,)
    index: torch.Tensor   # int64 (N,): position of each image in the source train or test set

    def __len__(self) -> int:
        return len(self.labels)

    @classmethod
    def whole(cls, images: torch.Tensor, labels: torch.Tensor) -> "Split":
        """Every image of a source set, each at its own position."""
        return cls(images, labels, torch.arange(len(labels), device=labels.device))

    def take(self, idx: torch.Tensor) -> "Split":
        """The images at positions `idx` (contiguous), keeping where each came from."""
        return Split(self.images[idx].contiguous(), self.labels[idx], self.index[idx])

    def to(self, device: torch.device | str) -> "Split":
        return Split(self.images.to(device), self.labels.to(device), self.index.to(device))


@dataclass
class ImageData:
    name: str
    classes: list[str]
    train: Split
    val: Split
    test: Split
    mean: tuple[float, ...]  # per channel, in [0, 1], measured on the train split
    std: tuple[float, ...]
    # "path: reason" of every input file left out (common.folders), for the run folder's skipped_files.txt
    skipped: list[str] = field(default_factory=list)

    def to(self, device: torch.device | str) -> "ImageData":
        return replace(self, train=self.train.to(device), val=self.val.to(device), test=self.test.to(device))


# ----------------------------------------------------------------------------- raw loaders
def _read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (gzipped or not): big-endian header, then uint8 data."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (EOFError, gzip.BadGzipFile, zlib.error):
        raise UserError(f"{path} is truncated or corrupt: download it again") from None
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror or e}") from None
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] != 0x08:
        raise UserError(f"{path} is not an IDX file of unsigned bytes")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise UserError(f"{path} is truncated: expected {int(np.prod(shape))} bytes of data, found {data.size}")
    return data.reshape(shape)


def _find_fashion_dir(data_dir: Path) -> Path | None:
    """The folder holding the four IDX files: flat (Debian's layout) or torchvision's FashionMNIST/raw."""
    for folder in (data_dir, data_dir / "FashionMNIST" / "raw"):
        if all((folder / f"{n}.gz").exists() or (folder / n).exists() for n in FASHION_FILES.values()):
            return folder
    return None


def _load_fashion(data_dir: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    folder = _find_fashion_dir(data_dir)
    if folder is None:
        try:  # online: torchvision fetches into DATA_DIR/FashionMNIST/raw
            from torchvision.datasets import FashionMNIST
            FashionMNIST(str(data_dir), train=True, download=True)
            FashionMNIST(str(data_dir), train=False, download=True)
        except Exception:
            pass
        folder = _find_fashion_dir(data_dir)
    if folder is None:
        raise UserError(
            f"Fashion-MNIST not found in {data_dir} and could not be downloaded: run "
            f"`apt-get install -y dataset-fashion-mnist` and pass --data-dir {FASHION_DEBIAN_DIR}, "
            f"or put {FASHION_FILES['train_images']}.gz and the other three IDX files from "
            f"https://github.com/zalandoresearch/fashion-mnist into {data_dir}")

    def read(key: str) -> np.ndarray:
        name = FASHION_FILES[key]
        path = folder / f"{name}.gz"
        return _read_idx(path if path.exists() else folder / name)

    return read("train_images"), read("train_labels"), read("test_images"), read("test_labels")


def _gray28_to_rgb32(images: np.ndarray) -> torch.Tensor:
    """(N, 28, 28) -> (N, 3, 32, 32): zero-pad by 2 (the background is black) and repeat channels."""
    x = torch.from_numpy(images.copy()).unsqueeze(1)
    return F.pad(x, (2, 2, 2, 2)).expand(-1, 3, -1, -1).contiguous()


def _load_cifar10(data_dir: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from torchvision.datasets import CIFAR10

    try:
        train = CIFAR10(str(data_dir), train=True, download=True)
        test = CIFAR10(str(data_dir), train=False, download=True)
    except Exception as e:  # offline, or a corrupt / partial folder
        archive = data_dir / "cifar-10-python.tar.gz"
        if archive.is_file():  # torchvision found it, failed its md5 or could not unpack it
            raise UserError(f"{archive} is not a valid CIFAR-10 archive (wrong checksum or truncated): delete it "
                            f"and download {CIFAR10_URL} again") from None
        raise UserError(
            f"CIFAR-10 not found in {data_dir / 'cifar-10-batches-py'} and could not be downloaded "
            f"({type(e).__name__}): download {CIFAR10_URL} and put it in {data_dir}/ "
            f"(torchvision unpacks it there on the next run)") from None
    return train.data, np.asarray(train.targets), test.data, np.asarray(test.targets)


SYNTHETIC_CLASSES = [f"{'horiz' if k % 2 == 0 else 'vert'} {3 + 1.5 * (k // 2):g}px" for k in range(10)]


def make_synthetic(n: int, seed: int, num_classes: int = 10, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """A learnable toy set: stripes whose orientation and period give the class, in a random colour
    and phase, plus Gaussian noise. Class k: horizontal if k is even, else vertical; period 3 + 1.5 * (k // 2) px.

    The texture fills the image, so it survives every augmentation we use (crop, flip, ±5° rotation,
    CutOut), and a slim network with any norm learns it in a few hundred steps; no single pixel gives
    the class away.
    """
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, num_classes, (n,), generator=g)
    yy, xx = torch.meshgrid(torch.arange(size).float(), torch.arange(size).float(), indexing="ij")
    horizontal = (labels % 2 == 0).float().view(n, 1, 1)
    period = (3 + 1.5 * (labels // 2)).float().view(n, 1, 1)
    phase = torch.rand(n, 1, 1, generator=g) * 2 * math.pi
    wave = torch.sin(2 * math.pi * (horizontal * yy + (1 - horizontal) * xx) / period + phase)
    colour = torch.randint(80, 256, (n, 3, 1, 1), generator=g).float()
    noise = torch.randn(n, 3, size, size, generator=g) * 25
    images = (wave[:, None] * 0.5 + 0.5) * colour + noise + 20
    return images.round().clamp(0, 255).to(torch.uint8), labels


# ----------------------------------------------------------------------------- splits
def check_subset(subset: int) -> None:
    if subset < 20:
        raise UserError(f"--subset {subset} is too small to split: a tenth of it is held out for validation, "
                        f"which needs at least 2 images; use --subset 20 or more")


def validation_size(name: str, pool: int, val_size: int, subset: int | None) -> int:
    """The validation split's size: --val-size, or at most a tenth of the pool under --subset; one error
    line if it does not fit."""
    if subset is not None:
        val_size = min(val_size, pool // 10)
    if not 1 <= val_size < pool:
        raise UserError(f"--val-size must be between 1 and {pool - 1} for {name} with {pool} training images, "
                        f"got {val_size}")
    return val_size


def channel_mean_std(images: torch.Tensor, chunk: int = 128) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std in [0, 1] of a uint8 (N, C, H, W) tensor, summed in chunks: at 224 px, a
    float copy of a whole train split would need 4 bytes x 150,528 per image."""
    total = torch.zeros(images.shape[1], dtype=torch.float64)
    squares = torch.zeros_like(total)
    for start in range(0, len(images), chunk):
        px = images[start:start + chunk].double()
        total += px.sum(dim=(0, 2, 3))
        squares += (px * px).sum(dim=(0, 2, 3))
    count = images.numel() // images.shape[1]
    mean = total / count
    var = (squares - count * mean * mean) / max(count - 1, 1)
    std = var.clamp_min(0).sqrt() / 255
    return tuple((mean / 255).tolist()), tuple(std.clamp_min(1e-3).tolist())


# ----------------------------------------------------------------------------- public API
def load_data(
    name: str,
    data_dir: str | os.PathLike = "data",
    *,
    val_size: int = 5000,
    val_fraction: float | None = None,
    subset: int | None = None,
    seed: int = 0,
) -> ImageData:
    """Load `name` as uint8 tensors on the CPU (call `.to(device)` after), with a seeded val split of
    `val_size` images, or `val_fraction` of the train pool.

    `subset` caps the train pool and the test set at that many images (seeded random picks), and
    the validation split shrinks with it to at most a tenth of the pool, so `--subset` works alone.
    """
    data_dir = Path(data_dir)
    if name == "cifar10":
        xtr, ytr, xte, yte = _load_cifar10(data_dir)
        train_x = torch.from_numpy(xtr).permute(0, 3, 1, 2).contiguous()
        test_x = torch.from_numpy(xte).permute(0, 3, 1, 2).contiguous()
        classes = CIFAR10_CLASSES
    elif name == "fashion-mnist":
        xtr, ytr, xte, yte = _load_fashion(data_dir)
        train_x, test_x = _gray28_to_rgb32(xtr), _gray28_to_rgb32(xte)
        classes = FASHION_CLASSES
    elif name == "synthetic":
        train_x, ytr = make_synthetic(4000, seed=1)
        test_x, yte = make_synthetic(1000, seed=2)
        ytr, yte = ytr.numpy(), yte.numpy()
        classes = SYNTHETIC_CLASSES
    else:
        raise UserError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    train_y = torch.as_tensor(np.array(ytr, dtype=np.int64))
    test_y = torch.as_tensor(np.array(yte, dtype=np.int64))

    g = torch.Generator().manual_seed(seed)
    pool = torch.randperm(len(train_y), generator=g)
    test_idx = torch.arange(len(test_y))
    if subset is not None:
        check_subset(subset)
        pool = pool[:subset]
        test_idx = torch.randperm(len(test_y), generator=g)[:subset].sort().values
    if val_fraction is not None:
        val_size = validation_size(name, len(pool), round(val_fraction * len(pool)), None)
    else:
        val_size = validation_size(name, len(pool), val_size, subset)
    val_idx, train_idx = pool[:val_size].sort().values, pool[val_size:].sort().values

    source, test = Split.whole(train_x, train_y), Split.whole(test_x, test_y)
    train = source.take(train_idx)
    mean, std = channel_mean_std(train.images)
    return ImageData(name, classes, train, source.take(val_idx), test.take(test_idx), mean, std)


def load_like(saved, data_dir: str) -> ImageData:
    """The data a run with these saved args (a checkpoint's) loaded, from `data_dir`: for eval.py."""
    return load_data(saved.dataset, data_dir, val_size=saved.val_size, subset=saved.subset, seed=saved.seed)


def balanced_indices(labels: torch.Tensor, per_class: int, seed: int) -> torch.Tensor:
    """Seeded picks of `per_class` positions of every class (fewer if a class has fewer), in ascending order."""
    g = torch.Generator().manual_seed(seed)
    labels = labels.cpu()
    picks = []
    for k in labels.unique():
        members = (labels == k).nonzero().squeeze(1)
        picks.append(members[torch.randperm(len(members), generator=g)[:per_class]])
    return torch.cat(picks).sort().values if picks else torch.zeros(0, dtype=torch.long)


def balanced_subset(split: Split, per_class: int, seed: int) -> Split:
    """A seeded, class-balanced subset: `per_class` images of every class (fewer if a class has fewer),
    in their original order. For "tiny" versions of a dataset."""
    return split.take(balanced_indices(split.labels, per_class, seed).to(split.labels.device))


def iterate_batches(split: Split, batch_size: int, shuffle: bool = False,
                    generator: torch.Generator | None = None, drop_last: bool = False):
    """Yield (images uint8, labels) batches by indexing the device-resident tensors; with drop_last,
    full batches only (training: with a fresh shuffle each epoch, every image is still seen)."""
    n = len(split)
    order = torch.randperm(n, device=split.labels.device, generator=generator) if shuffle else None
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        if order is None:
            yield split.images[start:start + batch_size], split.labels[start:start + batch_size]
        else:
            idx = order[start:start + batch_size]
            yield split.images[idx], split.labels[idx]
