"""Batched, on-device augmentation with per-sample randomness.

torchvision v2 transforms draw one set of parameters per call, i.e. per batch; these draw one per
sample. Each function takes a batch (N, C, H, W) and a `torch.Generator` on the batch's device,
and returns a new batch of the same shape and dtype. No Python loop runs over images (the CPU path of
random_resized_crop loops over chunks of 4, which keeps each chunk in cache).
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torchvision.ops import roi_align

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def _uniform(n: int, low: float, high: float, like: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    return torch.rand(n, device=like.device, generator=g) * (high - low) + low


def random_crop(x: torch.Tensor, g: torch.Generator, size: int = 32, padding: int = 4) -> torch.Tensor:
    """RandomCrop(size, padding) with zero padding: an independent offset per sample, via two gathers."""
    n, c = x.shape[:2]
    xp = F.pad(x, (padding,) * 4)
    hp, wp = xp.shape[-2:]
    dy = torch.randint(0, hp - size + 1, (n,), device=x.device, generator=g)
    dx = torch.randint(0, wp - size + 1, (n,), device=x.device, generator=g)
    ar = torch.arange(size, device=x.device)
    rows = (dy[:, None] + ar).view(n, 1, size, 1).expand(n, c, size, wp)
    out = xp.gather(2, rows)
    cols = (dx[:, None] + ar).view(n, 1, 1, size).expand(n, c, size, size)
    return out.gather(3, cols)


def hflip(x: torch.Tensor, g: torch.Generator, p: float = 0.5) -> torch.Tensor:
    """Mirror each sample left-right with probability p."""
    flip = torch.rand(x.shape[0], device=x.device, generator=g) < p
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)


def cutout_boxes(n: int, h: int, w: int, size: int, device, g: torch.Generator) -> torch.Tensor:
    """(n, 4) boxes y0, y1, x0, x1: a size x size square around a uniform centre, clipped at the borders."""
    cy = torch.randint(0, h, (n,), device=device, generator=g)
    cx = torch.randint(0, w, (n,), device=device, generator=g)
    half = size // 2
    return torch.stack([(cy - half).clamp(0, h), (cy - half + size).clamp(0, h),
                        (cx - half).clamp(0, w), (cx - half + size).clamp(0, w)], dim=1)


def cutout(x: torch.Tensor, g: torch.Generator, size: int = 16) -> torch.Tensor:
    """CutOut (DeVries & Taylor 2017): zero a size x size square per sample, clipped at the borders."""
    n, _, h, w = x.shape
    y0, y1, x0, x1 = cutout_boxes(n, h, w, size, x.device, g).T.view(4, n, 1, 1)
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    hole = (ys >= y0) & (ys < y1) & (xs >= x0) & (xs < x1)
    return x.masked_fill(hole.unsqueeze(1), 0)


def rotate(x: torch.Tensor, g: torch.Generator, degrees: float = 5.0) -> torch.Tensor:
    """Rotate each sample by an angle uniform in [-degrees, degrees] about its centre (bilinear, zero fill)."""
    n = x.shape[0]
    angle = _uniform(n, -degrees, degrees, x, g) * (math.pi / 180)
    cos, sin, zero = angle.cos(), angle.sin(), torch.zeros_like(angle)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    xf = x.float()
    grid = F.affine_grid(theta, list(xf.shape), align_corners=False)
    out = F.grid_sample(xf, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    if x.dtype == torch.uint8:
        out = out.round_().clamp_(0, 255)
    return out.to(x.dtype)


def salt_and_pepper(x: torch.Tensor, g: torch.Generator, amount: float = 0.05) -> torch.Tensor:
    """Set a random `amount` of each sample's pixels (all channels at once) to white or black, half each.

    The pixels are drawn independently, so each sample gets its own pattern; `amount` is the
    expected fraction of pixels hit. Values are the dtype's range: 255 and 0 for uint8, 1 and 0 for floats.
    """
    n, _, h, w = x.shape
    u = torch.rand(n, 1, h, w, device=x.device, generator=g)
    white = 255 if x.dtype == torch.uint8 else 1.0
    out = x.masked_fill(u < amount / 2, 0)
    return out.masked_fill((u >= amount / 2) & (u < amount), white)


def random_resized_crop_boxes(n: int, h: int, w: int, device, g: torch.Generator,
                              scale: tuple[float, float] = (0.08, 1.0),
                              ratio: tuple[float, float] = (3 / 4, 4 / 3), tries: int = 10) -> torch.Tensor:
    """(n, 4) boxes y0, y1, x0, x1 drawn per sample as torchvision's RandomResizedCrop draws one: an area
    uniform in `scale` x h x w and a log-uniform aspect ratio (w/h) in `ratio`, the first of `tries` that fits,
    at a uniform position; if none fits, the central crop of the whole image at the nearest allowed ratio."""
    u_area, u_ratio = torch.rand((2, n, tries), device=device, generator=g)
    area = (u_area * (scale[1] - scale[0]) + scale[0]) * (h * w)
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    aspect = (u_ratio * (log_hi - log_lo) + log_lo).exp()
    cw = (area * aspect).sqrt().round().long()
    ch = (area / aspect).sqrt().round().long()
    fits = (cw > 0) & (cw <= w) & (ch > 0) & (ch <= h)
    first = fits.to(torch.uint8).argmax(1, keepdim=True)  # the first try that fits (argmax takes the first max)
    found = fits.any(1)
    if w / h < min(ratio):
        fallback_w, fallback_h = w, int(round(w / min(ratio)))
    elif w / h > max(ratio):
        fallback_w, fallback_h = int(round(h * max(ratio))), h
    else:
        fallback_w, fallback_h = w, h
    cw = torch.where(found, cw.gather(1, first).squeeze(1), fallback_w)
    ch = torch.where(found, ch.gather(1, first).squeeze(1), fallback_h)
    y0 = (torch.rand(n, device=device, generator=g) * (h - ch + 1)).long().clamp_max(h - ch)
    x0 = (torch.rand(n, device=device, generator=g) * (w - cw + 1)).long().clamp_max(w - cw)
    y0 = torch.where(found, y0, (h - ch) // 2)
    x0 = torch.where(found, x0, (w - cw) // 2)
    return torch.stack([y0, y0 + ch, x0, x0 + cw], dim=1)


def resample_chunk(device: torch.device, n: int) -> int:
    """Samples per grid_sample call: 4 on the CPU, where they stay in cache (about 3x faster than the whole
    batch at 224 px); the whole batch on CUDA."""
    return 4 if device.type == "cpu" else max(n, 1)


def _resample_boxes(x: torch.Tensor, boxes: torch.Tensor, size: int, flip: torch.Tensor | None) -> torch.Tensor:
    """Each box of x bilinearly resampled to size x size (optionally mirrored), with one grid_sample per
    chunk of samples (resample_chunk). Exact bilinear interpolation when no box is larger than
    `size` (an upscale); the grid is the affine map of each box, so a mirror costs nothing."""
    n, c, h, w = x.shape
    y0, y1, x0, x1 = boxes.T.to(torch.float32)
    ax, bx = (x1 - x0) / w, (x0 + x1) / w - 1  # output pixel centres u in (-1, 1) -> a * u + b in the input
    ay, by = (y1 - y0) / h, (y0 + y1) / h - 1
    if flip is not None:
        ax = torch.where(flip, -ax, ax)
    u = (2 * torch.arange(size, device=x.device, dtype=torch.float32) + 1) / size - 1
    out = torch.empty(n, c, size, size, device=x.device, dtype=x.dtype)
    chunk = resample_chunk(x.device, n)
    for i in range(0, n, chunk):
        part = slice(i, i + chunk)
        gx = ax[part, None, None] * u + bx[part, None, None]
        gy = ay[part, None, None] * u[:, None] + by[part, None, None]
        grid = torch.stack(torch.broadcast_tensors(gx, gy), dim=-1)
        sampled = F.grid_sample(x[part].float(), grid, mode="bilinear", padding_mode="border", align_corners=False)
        out[part] = sampled.round_().clamp_(0, 255) if x.dtype == torch.uint8 else sampled
    return out


def random_resized_crop(x: torch.Tensor, g: torch.Generator, size: int | None = None,
                        scale: tuple[float, float] = (0.08, 1.0),
                        ratio: tuple[float, float] = (3 / 4, 4 / 3), flip_p: float = 0.0) -> torch.Tensor:
    """RandomResizedCrop(size, scale, ratio) with a box per sample, resampled to (N, C, size, size)
    (default size: the input's height, so a square batch keeps its shape); with flip_p > 0, each sample is
    also mirrored left-right with that probability (RandomHorizontalFlip, in the same pass).

    When `size` is at least the image's size, every box is upsampled, and plain bilinear interpolation
    is exact: one grid_sample per chunk (_resample_boxes). Otherwise a box may be shrunk, and
    torchvision.ops.roi_align resamples all boxes at once, averaging ceil(box / size)^2 samples per
    pixel, so a downscale is antialiased too. Pixel edges, not centres, bound the box in both paths:
    the whole image at its own size is the identity.
    """
    n, _, h, w = x.shape
    size = size or h
    boxes = random_resized_crop_boxes(n, h, w, x.device, g, scale, ratio)
    flip = torch.rand(n, device=x.device, generator=g) < flip_p if flip_p > 0 else None
    if size >= max(h, w):
        return _resample_boxes(x, boxes, size, flip)
    y0, y1, x0, x1 = boxes.T
    rois = torch.stack([torch.arange(n, device=x.device), x0, y0, x1, y1], dim=1).float()
    out = roi_align(x.float(), rois, (size, size), spatial_scale=1.0, sampling_ratio=-1, aligned=True)
    if flip is not None:
        out = torch.where(flip.view(-1, 1, 1, 1), out.flip(-1), out)
    if x.dtype == torch.uint8:
        out = out.round_().clamp_(0, 255)
    return out.to(x.dtype)


def normalize(x: torch.Tensor, mean: Sequence[float], std: Sequence[float],
              dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 [0, 255] -> float, standardised per channel."""
    m = torch.tensor(mean, device=x.device, dtype=dtype).view(1, -1, 1, 1) * 255
    s = torch.tensor(std, device=x.device, dtype=dtype).view(1, -1, 1, 1) * 255
    return (x.to(dtype) - m) / s


def compose(*augments: Augment) -> Augment:
    def run(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        for aug in augments:
            x = aug(x, g)
        return x
    return run


def cifar_train_augment(crop_padding: int = 4, cutout_size: int = 16, rotate_degrees: float = 5.0,
                        flip: bool = True) -> Augment:
    """The assignment's recipe on uint8 batches: RandomCrop(32, 4), flip, Rotate(±5°), CutOut(16)."""
    steps: list[Augment] = []
    if crop_padding > 0:
        steps.append(lambda x, g: random_crop(x, g, x.shape[-1], crop_padding))
    if flip:
        steps.append(hflip)
    if rotate_degrees > 0:
        steps.append(lambda x, g: rotate(x, g, rotate_degrees))
    if cutout_size > 0:
        steps.append(lambda x, g: cutout(x, g, cutout_size))
    return compose(*steps)
