import numpy as np
import pytest
import torch

from common.data import iterate_batches, load_data, make_synthetic
from common.errors import UserError
from tests.conftest import fashion_arrays, write_idx


def test_fashion_mnist_from_debian_layout(fashion_dir):
    before = sorted(p.name for p in fashion_dir.iterdir())
    data = load_data("fashion-mnist", fashion_dir, val_size=50, seed=0)
    assert (len(data.train), len(data.val), len(data.test)) == (250, 50, 100)
    assert data.train.images.dtype == torch.uint8 and data.train.images.shape[1:] == (3, 32, 32)
    assert data.classes[0] == "T-shirt/top" and data.classes[9] == "Ankle boot"
    # padded 28 -> 32 with zeros, gray repeated to 3 channels
    img = data.test.images[0]
    assert img[:, :2].sum() == 0 and img[:, :, -2:].sum() == 0
    assert torch.equal(img[0], img[1]) and torch.equal(img[1], img[2])
    # pixels and labels are the file's, in order, for the test split
    _, _, xte, yte = fashion_arrays()
    assert torch.equal(data.test.images[5, 0, 2:30, 2:30], torch.from_numpy(xte[5]))
    assert torch.equal(data.test.labels, torch.from_numpy(yte.astype(np.int64)))
    assert sorted(p.name for p in fashion_dir.iterdir()) == before  # nothing written into --data-dir


def test_fashion_mnist_from_torchvision_layout(tmp_path):
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    xtr, ytr, xte, yte = fashion_arrays(120, 30)
    for name, arr in [("train-images-idx3-ubyte", xtr), ("train-labels-idx1-ubyte", ytr),
                      ("t10k-images-idx3-ubyte", xte), ("t10k-labels-idx1-ubyte", yte)]:
        write_idx(raw / name, arr, compress=False)
    data = load_data("fashion-mnist", tmp_path, val_size=20)
    assert (len(data.train), len(data.val), len(data.test)) == (100, 20, 30)


def test_fashion_mnist_missing_offline_is_one_clear_line(tmp_path, offline):
    with pytest.raises(UserError) as e:
        load_data("fashion-mnist", tmp_path / "nothing-here")
    msg = str(e.value)
    assert "\n" not in msg
    assert "train-images-idx3-ubyte.gz" in msg and "apt-get install -y dataset-fashion-mnist" in msg


def test_truncated_idx_file_is_reported(fashion_dir):
    path = fashion_dir / "t10k-images-idx3-ubyte.gz"
    import gzip
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:-100]))
    with pytest.raises(UserError, match="truncated"):
        load_data("fashion-mnist", fashion_dir, val_size=50)


def test_cifar10_through_torchvision_loader(cifar_dir):
    data = load_data("cifar10", cifar_dir, val_size=10)
    assert (len(data.train), len(data.val), len(data.test)) == (40, 10, 40)
    assert data.train.images.shape[1:] == (3, 32, 32) and data.train.images.dtype == torch.uint8
    assert data.classes[0] == "airplane"


def test_cifar10_offline_without_files_is_one_clear_line(tmp_path, offline):
    with pytest.raises(UserError) as e:
        load_data("cifar10", tmp_path / "data")
    msg = str(e.value)
    assert "\n" not in msg and "cifar-10-python.tar.gz" in msg and str(tmp_path / "data") in msg


def test_split_is_seeded_disjoint_and_covers_train(fashion_dir):
    a = load_data("fashion-mnist", fashion_dir, val_size=50, seed=1)
    b = load_data("fashion-mnist", fashion_dir, val_size=50, seed=1)
    c = load_data("fashion-mnist", fashion_dir, val_size=50, seed=2)
    assert torch.equal(a.val.index, b.val.index) and not torch.equal(a.val.index, c.val.index)
    together = torch.cat([a.train.index, a.val.index])
    assert len(set(a.train.index.tolist()) & set(a.val.index.tolist())) == 0
    assert sorted(together.tolist()) == list(range(300))


def test_subset_scales_the_validation_split_down(fashion_dir):
    data = load_data("fashion-mnist", fashion_dir, subset=80)  # default val_size=5000 would not fit
    assert (len(data.train), len(data.val), len(data.test)) == (72, 8, 80)


def test_val_size_too_large_is_a_user_error(fashion_dir):
    with pytest.raises(UserError, match="--val-size"):
        load_data("fashion-mnist", fashion_dir, val_size=300)


def test_synthetic_is_deterministic_and_class_dependent():
    x1, y1 = make_synthetic(200, seed=3)
    x2, y2 = make_synthetic(200, seed=3)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert x1.shape == (200, 3, 32, 32) and x1.dtype == torch.uint8 and set(y1.tolist()) == set(range(10))
    # the class is in the stripes: even classes vary down the rows, odd ones across the columns
    gray = x1.float().mean(1)
    along_rows = gray.diff(dim=1).abs().mean((1, 2))  # changes from row to row: horizontal stripes
    along_cols = gray.diff(dim=2).abs().mean((1, 2))
    assert torch.equal(along_rows > along_cols, y1 % 2 == 0)
    # and the period, 3 + 1.5 * (k // 2) px: the row (or column) profile peaks at 32 / period cycles
    profile = torch.where((y1 % 2 == 0).view(-1, 1), gray.mean(2), gray.mean(1))
    spectrum = torch.fft.rfft(profile - profile.mean(1, keepdim=True), dim=1).abs()
    peak = spectrum.argmax(1).float()
    per_period = torch.stack([peak[y1 // 2 == j].mean() for j in range(5)])
    expected = 32 / (3 + 1.5 * torch.arange(5))
    torch.testing.assert_close(per_period, expected, atol=0.6, rtol=0)


def test_iterate_batches_covers_every_sample_once(fashion_dir):
    data = load_data("fashion-mnist", fashion_dir, val_size=50)
    seen = torch.cat([y for _, y in iterate_batches(data.train, 64, shuffle=True,
                                                    generator=torch.Generator().manual_seed(0))])
    assert len(seen) == len(data.train)
    assert torch.equal(seen.sort().values, data.train.labels.sort().values)


def test_iterate_batches_drop_last_gives_full_batches_only(fashion_dir):
    data = load_data("fashion-mnist", fashion_dir, val_size=50)  # 250 train images
    sizes = [len(y) for _, y in iterate_batches(data.train, 64, shuffle=True, drop_last=True,
                                                generator=torch.Generator().manual_seed(0))]
    assert sizes == [64, 64, 64]


def test_mean_and_std_are_measured_on_train(fashion_dir):
    data = load_data("fashion-mnist", fashion_dir, val_size=50)
    pixels = data.train.images.float() / 255
    assert data.mean[0] == pytest.approx(pixels[:, 0].mean().item(), rel=1e-4)
    assert data.std[0] == pytest.approx(pixels[:, 0].std().item(), rel=1e-4)
