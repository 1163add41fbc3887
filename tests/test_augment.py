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


# ----------------------------------------------------------------------------- random resized crop
from torchvision.transforms.v2 import functional as TF  # noqa: E402

from common.augment import random_resized_crop, random_resized_crop_boxes  # noqa: E402


def smooth_batch(n=8, h=32, w=32, dtype=torch.float32, seed=0):
    """Low-frequency images, so that resampling differences stay small where the methods agree."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 4, 4, generator=g) * 255
    return F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 255).to(dtype)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
@pytest.mark.parametrize("size", [None, 24, 48])
def test_random_resized_crop_shape_and_dtype(dtype, size):
    x = batch(n=16, dtype=dtype)
    y = random_resized_crop(x, gen(), size)
    assert y.shape == (16, 3, size or 32, size or 32) and y.dtype == dtype


def test_random_resized_crop_is_seeded_and_differs_per_sample():
    x = smooth_batch(n=1).expand(16, -1, -1, -1).contiguous()  # 16 copies of one image
    a, b = random_resized_crop(x, gen(5), 32), random_resized_crop(x, gen(5), 32)
    assert torch.equal(a, b) and not torch.equal(a, random_resized_crop(x, gen(6), 32))
    assert len({tuple(s.flatten()[:50].round().tolist()) for s in a}) == 16  # each copy got its own box


def test_random_resized_crop_boxes_fit_and_follow_scale_and_ratio():
    boxes = random_resized_crop_boxes(2000, 64, 48, "cpu", gen(1), scale=(0.2, 0.6), ratio=(0.5, 2.0))
    y0, y1, x0, x1 = boxes.T
    assert (y0 >= 0).all() and (y1 <= 64).all() and (x0 >= 0).all() and (x1 <= 48).all()
    area = (y1 - y0) * (x1 - x0) / (64 * 48)
    aspect = (x1 - x0) / (y1 - y0)
    assert area.min() > 0.18 and area.max() < 0.62      # rounding the sides to pixels moves the area a little
    assert aspect.min() > 0.45 and aspect.max() < 2.2
    assert len({tuple(b) for b in boxes.tolist()}) > 1000  # per-sample sizes and positions
    assert area.std() > 0.05 and y0.float().std() > 3 and x0.float().std() > 3


def test_random_resized_crop_is_the_resize_of_its_box():
    x = smooth_batch(n=6)
    y = random_resized_crop(x, gen(2), 64, scale=(0.3, 0.9))  # every box is upscaled: plain bilinear
    boxes = random_resized_crop_boxes(6, 32, 32, "cpu", gen(2), scale=(0.3, 0.9))  # the same draws
    for i, (y0, y1, x0, x1) in enumerate(boxes.tolist()):
        expected = TF.resize(x[i, :, y0:y1, x0:x1], [64, 64], antialias=True)
        # the border ring samples across the box edge (into the image) where resize clamps: compare inside
        torch.testing.assert_close(y[i, :, 2:-2, 2:-2], expected[:, 2:-2, 2:-2], atol=1e-3, rtol=0)


@pytest.mark.parametrize("size", [32, 48, 20])
def test_whole_image_crop_is_a_plain_resize(size):
    x = smooth_batch(n=4)
    y = random_resized_crop(x, gen(), size, scale=(1.0, 1.0), ratio=(1.0, 1.0))
    expected = TF.resize(x, [size, size], antialias=True)
    if size >= 32:  # the identity, or an upscale: plain bilinear on both sides
        torch.testing.assert_close(y, expected, atol=1e-3, rtol=0)
    else:  # a downscale: box-averaged samples against the triangle filter, close on smooth images
        assert (y - expected).abs().mean() < 1.0 and (y - expected).abs().max() < 6.0
    xu = batch(n=4)
    assert torch.equal(random_resized_crop(xu, gen(), 32, scale=(1.0, 1.0), ratio=(1.0, 1.0)), xu)


def test_random_resized_crop_averages_when_it_downscales():
    x = torch.zeros(2, 3, 32, 32)
    x[..., ::4] = 255.0  # one bright column in four: any antialiased 4x shrink is a flat 255 / 4
    y = random_resized_crop(x, gen(), 8, scale=(1.0, 1.0), ratio=(1.0, 1.0))
    torch.testing.assert_close(y, torch.full_like(y, 255 / 4), atol=0.5, rtol=0)
    assert F.interpolate(x, size=(8, 8), mode="bilinear").max() < 1  # plain bilinear sampling misses them all


@pytest.mark.parametrize("size", [48, 24])  # the grid_sample path (every box upsampled), the roi_align path
def test_flip_p_one_mirrors_every_crop_in_the_same_pass(size):
    x = smooth_batch(n=6)
    plain = random_resized_crop(x, gen(3), size, scale=(0.3, 1.0))
    mirrored = random_resized_crop(x, gen(3), size, scale=(0.3, 1.0), flip_p=1.0)  # same boxes: drawn first
    torch.testing.assert_close(mirrored, plain.flip(-1), atol=1e-3, rtol=0)
    whole = dict(scale=(1.0, 1.0), ratio=(1.0, 1.0))  # every box is the whole image: only the flip varies
    same = x[:1].expand(400, -1, -1, -1).contiguous()
    half = random_resized_crop(same, gen(4), size, **whole, flip_p=0.5)
    ref = random_resized_crop(x[:1], gen(0), size, **whole)
    flipped = (half - ref.flip(-1)).abs().amax(dim=(1, 2, 3)) < 1e-3
    kept = (half - ref).abs().amax(dim=(1, 2, 3)) < 1e-3
    assert bool((flipped ^ kept).all()) and 150 < int(flipped.sum()) < 250  # each one or the other, about half


def test_the_upsampling_path_matches_roi_align():
    from torchvision.ops import roi_align

    from common.augment import _resample_boxes

    x = batch(n=8, dtype=torch.float32)
    boxes = random_resized_crop_boxes(8, 32, 32, "cpu", gen(7), scale=(0.2, 1.0))
    y0, y1, x0, x1 = boxes.T
    rois = torch.stack([torch.arange(8), x0, y0, x1, y1], dim=1).float()
    expected = roi_align(x, rois, (40, 40), spatial_scale=1.0, sampling_ratio=-1, aligned=True)
    got = _resample_boxes(x, boxes, 40, None)
    # inside the border ring, where roi_align and grid_sample's border padding clamp differently
    torch.testing.assert_close(got[..., 1:-1, 1:-1], expected[..., 1:-1, 1:-1], atol=1e-3, rtol=0)
