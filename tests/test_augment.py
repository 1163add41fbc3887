import pytest
import torch
import torch.nn.functional as F

from common.augment import cifar_train_augment, cutout, cutout_boxes, hflip, normalize, random_crop, rotate

AUGMENTS = {
    "crop": random_crop,
    "flip": hflip,
    "cutout": cutout,
    "rotate": rotate,
    "recipe": cifar_train_augment(),
}


def batch(n=64, dtype=torch.uint8, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(1, 256, (n, 3, 32, 32), generator=g)
    return x.to(dtype)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("name", AUGMENTS)
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_shape_and_dtype_are_kept(name, dtype):
    x = batch(dtype=dtype)
    y = AUGMENTS[name](x, gen())
    assert y.shape == x.shape and y.dtype == x.dtype


@pytest.mark.parametrize("name", AUGMENTS)
def test_seeded_generator_reproduces(name):
    x = batch()
    a, b = AUGMENTS[name](x, gen(7)), AUGMENTS[name](x, gen(7))
    assert torch.equal(a, b)
    assert not torch.equal(a, AUGMENTS[name](x, gen(8)))


def test_crop_is_a_window_of_the_zero_padded_image_with_per_sample_offsets():
    x = batch(n=32)
    y = random_crop(x, gen(), 32, 4)
    padded = F.pad(x, (4, 4, 4, 4))
    offsets = set()
    for i in range(len(x)):
        found = [(dy, dx) for dy in range(9) for dx in range(9)
                 if torch.equal(padded[i, :, dy:dy + 32, dx:dx + 32], y[i])]
        assert found, f"sample {i} is not a crop of its padded image"
        offsets.add(found[0])
    assert len(offsets) > 10  # independent offsets, not one per batch


def test_flip_mirrors_some_samples_and_keeps_the_others():
    x = batch(n=64)
    y = hflip(x, gen())
    flipped = [torch.equal(y[i], x[i].flip(2)) for i in range(64)]
    kept = [torch.equal(y[i], x[i]) for i in range(64)]
    assert all(f or k for f, k in zip(flipped, kept))
    assert 10 < sum(flipped) < 54


def test_cutout_zeroes_exactly_the_clipped_square():
    x = batch(n=200)  # values >= 1, so every zero comes from cutout
    y = cutout(x, gen(3), 16)
    boxes = cutout_boxes(200, 32, 32, 16, x.device, gen(3))  # same draws as inside cutout
    clipped = 0
    for i, (y0, y1, x0, x1) in enumerate(boxes.tolist()):
        expected = torch.zeros(32, 32, dtype=torch.bool)
        expected[y0:y1, x0:x1] = True
        assert torch.equal(y[i] == 0, expected.expand(3, 32, 32)), i
        assert torch.equal(y[i][:, ~expected], x[i][:, ~expected])
        assert 0 < y1 - y0 <= 16 and 0 < x1 - x0 <= 16
        clipped += (y1 - y0 < 16) or (x1 - x0 < 16)
    assert 0 < clipped < 200  # the centre is uniform, so some squares hit a border and some don't
    assert len({tuple(b) for b in boxes.tolist()}) > 100  # per-sample positions


def test_rotation_by_zero_degrees_is_the_identity():
    x = batch(dtype=torch.float32)
    torch.testing.assert_close(rotate(x, gen(), 0.0), x, atol=1e-4, rtol=0)
    xu = batch()
    assert torch.equal(rotate(xu, gen(), 0.0), xu)


def test_rotation_angles_differ_per_sample_and_stay_small():
    x = batch(n=1, dtype=torch.float32).expand(16, -1, -1, -1).contiguous()  # 16 copies of one image
    y = rotate(x, gen(), 5.0)
    diffs = (y - x).abs().mean(dim=(1, 2, 3))
    assert len(set(torch.round(diffs, decimals=3).tolist())) > 8
    # a 90-degree rotation would move far more than +-5 degrees does
    assert diffs.max() < (torch.rot90(x[0], 1, (1, 2)) - x[0]).abs().mean()


def test_normalize_standardises_per_channel():
    x = torch.full((2, 3, 4, 4), 255, dtype=torch.uint8)
    y = normalize(x, (0.5, 0.5, 0.5), (0.25, 0.5, 1.0))
    torch.testing.assert_close(y[0, :, 0, 0], torch.tensor([2.0, 1.0, 0.5]))
