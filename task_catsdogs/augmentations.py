"""The original's ten augmentations, three distinct ones per call, applied in sequence to a decoded original
photo (any size) before it is resized to the training size.

Offline preprocessing of a few hundred photos, so a Python loop over images is fine here; training then
runs on the resulting uint8 tensor. Every augmentation is a torchvision.transforms.v2 functional op where
v2 has one (rotate, affine, adjust_saturation, gaussian_blur, gaussian_noise, the four colour adjustments,
pad, horizontal_flip, resize); pad-to-square and pixelization are compositions of those. Parameters are
drawn from a seeded torch.Generator, not the global RNG, and written to augmentations.csv with the names,
so any augmented image can be reproduced and read about.
"""
from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from common.cli import int_in
from common.tables import write_csv
from common.text import printable

# image uint8 (3, H, W), generator -> (image uint8 (3, H', W'), the parameters drawn, as text)
AugmentFn = Callable[[torch.Tensor, torch.Generator], tuple[torch.Tensor, str]]


@dataclass(frozen=True)
class Augmentation:
    name: str
    apply: AugmentFn


def _uniform(g: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * torch.rand((), generator=g).item()


def rotation(image: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, str]:
    """RandomRotation(30): an angle uniform in [-30, 30] degrees, same frame, black corners."""
    angle = _uniform(g, -30, 30)
    return TF.rotate(image, angle, interpolation=InterpolationMode.BILINEAR), f"angle={angle:.1f}"


def scale(image: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, str]:
    """Zoom about the centre by a factor in [0.7, 1.3] within the same frame (RandomAffine's scale)."""
    factor = _uniform(g, 0.7, 1.3)
    out = TF.affine(image, angle=0.0, translate=[0, 0], scale=factor, shear=[0.0, 0.0],
                    interpolation=InterpolationMode.BILINEAR)
    return out, f"factor={factor:.2f}"


def saturation(image: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, str]:
    factor = _uniform(g, 0.3, 1.7)
    return TF.adjust_saturation(image, factor), f"factor={factor:.2f}"


def blur(image: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, str]:
    """Gaussian blur with sigma 0.4% to 1.2% of the short side: as strong on a 500 px photo as on a 100 px one."""
    short = min(image.shape[-2:])
    sigma = max(0.3, short * _uniform(g, 0.004, 0.012))
    kernel = 2 * math.ceil(3 * sigma) + 1
    return TF.gaussian_blur(image, [kernel, kernel], [sigma, sigma]), f"sigma={sigma:.2f}px"


def random_noise(image: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, str]:
    """Additive Gaussian noise, sigma 0.03 to 0.10 of the full range (v2.GaussianNoise on a float copy)."""
    sigma = _uniform(g, 0.03, 0.10)
    with torch.random.fork_rng(devices=[]):  # gaussian_noise draws from the global RNG: seed it from g, locally
        torch.manual_seed(int(torch.randint(0, 2 ** 62, (), generator=g)))
        noisy = TF.gaussian_noise(TF.to_dtype(image, torch.float32, scale=True), sigma=sigma, clip=True)
    return TF.to_dtype(noisy, torch.uint8, scale=True), f"sigma={sigma:.3f}"


def colour_jitter(image: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, str]:
    """ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1), in that order."""
    b, c, s, h = _uniform(g, 0.6, 1.4), _uniform(g, 0.6, 1.4), _uniform(g, 0.6, 1.4), _uniform(g, -0.1, 0.1)
    out = TF.adjust_hue(TF.adjust_saturation(TF.adjust_contrast(TF.adjust_brightness(image, b), c), s), h)
    return out, f"brightness={b:.2f} contrast={c:.2f} saturation={s:.2f} hue={h:+.3f}"


def pad_to_square(image: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, str]:
    """Black bars on the short side, centred, so that the square resize keeps the aspect ratio."""
    h, w = image.shape[-2:]
    side = max(h, w)
    left, top = (side - w) // 2, (side - h) // 2
    out = TF.pad(image, [left, top, side - w - left, side - h - top], fill=0)
    return out, f"{w}x{h}->{side}x{side}"


def pad(image: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, str]:
    """Pad(p) with black on every side, p 5% to 20% of the short side."""
    p = max(1, round(min(image.shape[-2:]) * _uniform(g, 0.05, 0.20)))
    return TF.pad(image, [p], fill=0), f"pixels={p}"


def horizontal_flip(image: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, str]:
    return TF.horizontal_flip(image), ""


def pixelization(image: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, str]:
    """Downscale by 4x to 10x (antialiased), then back up with nearest neighbour: visible blocks."""
    h, w = image.shape[-2:]
    factor = _uniform(g, 4, 10)
    small = TF.resize(image, [max(2, round(h / factor)), max(2, round(w / factor))], antialias=True)
    return TF.resize(small, [h, w], interpolation=InterpolationMode.NEAREST), f"factor={factor:.1f}"


AUGMENTATIONS: tuple[Augmentation, ...] = (
    Augmentation("rotation 30°", rotation),
    Augmentation("scale", scale),
    Augmentation("saturation", saturation),
    Augmentation("blur", blur),
    Augmentation("random noise", random_noise),
    Augmentation("colour jitter", colour_jitter),
    Augmentation("pad to square", pad_to_square),
    Augmentation("pad", pad),
    Augmentation("horizontal flip", horizontal_flip),
    Augmentation("pixelization", pixelization),
)


def augment_once(image: torch.Tensor, g: torch.Generator,
                 per_call: int = 3) -> tuple[torch.Tensor, list[tuple[str, str]]]:
    """Pick `per_call` distinct augmentations at random and apply them in the order drawn.
    Returns the image and [(name, parameters)] in the order applied."""
    if not 1 <= per_call <= len(AUGMENTATIONS):
        raise ValueError(f"per_call must be in [1, {len(AUGMENTATIONS)}], got {per_call}")
    applied = []
    for k in torch.randperm(len(AUGMENTATIONS), generator=g)[:per_call].tolist():
        image, params = AUGMENTATIONS[k].apply(image, g)
        applied.append((AUGMENTATIONS[k].name, params))
    return image, applied


def resize_square(image: torch.Tensor, size: int) -> torch.Tensor:
    """The same squash as common.folders applies to every photo: straight to size x size, antialiased."""
    return TF.resize(image, [size, size], antialias=True)


@dataclass
class AugmentedSet:
    images: torch.Tensor  # uint8 (N * calls, 3, S, S): calls per source image, image-major
    source: torch.Tensor  # int64 (N * calls,): position of the source image in the originals
    records: list[dict]   # one per augmented image: source, call, and the augmentations applied


def augment_originals(originals: Sequence[torch.Tensor], image_size: int, seed: int, calls: int = 2,
                      per_call: int = 3) -> AugmentedSet:
    """`calls` augmented versions of every original photo (uint8 (3, H, W), any size), each resized to
    image_size x image_size after augmenting. Seeded: the same seed gives the same images and records."""
    g = torch.Generator().manual_seed(seed)
    images, source, records = [], [], []
    for i, original in enumerate(originals):
        for call in range(1, calls + 1):
            augmented, applied = augment_once(original, g, per_call)
            images.append(resize_square(augmented, image_size))
            source.append(i)
            records.append({"source": i, "call": call, "applied": applied})
    stacked = torch.stack(images) if images else torch.empty((0, 3, image_size, image_size), dtype=torch.uint8)
    return AugmentedSet(stacked, torch.tensor(source, dtype=torch.int64), records)


def write_augmentations_csv(path: Path, records: list[dict], files: Sequence[str], classes: Sequence[str],
                            labels: Sequence[int]) -> None:
    """One row per augmented image: which original (train position, file, class), which call, and the
    augmentations in the order applied, each with the parameters drawn. File and class names are written
    escaped (common.folders.printable): valid UTF-8, one line per row, whatever bytes the names hold."""
    per_call = max((len(r["applied"]) for r in records), default=0)
    header = ["augmented_index", "train_index", "file", "class", "call"]
    for k in range(1, per_call + 1):
        header += [f"aug_{k}", f"params_{k}"]
    rows = []
    for n, r in enumerate(records):
        i = r["source"]
        row = {"augmented_index": n, "train_index": i, "file": printable(files[i]),
               "class": printable(classes[labels[i]]), "call": r["call"]}
        for k, (name, params) in enumerate(r["applied"], 1):
            row |= {f"aug_{k}": name, f"params_{k}": params}
        rows.append(row)
    write_csv(path, rows, header)


def add_augmentation_flags(parser: argparse.ArgumentParser) -> None:
    a = parser.add_argument_group("offline augmentation of the train originals (model_aug only)")
    a.add_argument("--aug-calls", type=int_in(1, 100), default=2, help="augmented versions per original")
    a.add_argument("--aug-per-call", type=int, choices=range(1, len(AUGMENTATIONS) + 1), default=3,
                   metavar=f"1..{len(AUGMENTATIONS)}", help="distinct augmentations per version, applied in sequence")
    a.add_argument("--examples", type=int_in(1, 64), default=4, help="originals shown in augmented_examples.png")
