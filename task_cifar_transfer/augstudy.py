"""Part (c): the augmentations of the study, and the per-image adapter for torchvision v2 transforms.

Each augmentation is an `Augment` (batch, generator) -> batch, as `common.training.fit` expects. Those
torchvision v2 has are v2 transforms applied to each image of the batch in turn, so every image draws
its own parameters (a v2 transform called on a whole batch draws one set for the batch). CutOut and
salt-and-pepper come batched from `common.augment`.
"""
from __future__ import annotations

import torch
from torchvision.transforms import v2

from common.augment import Augment, cutout, salt_and_pepper

AUGMENTATIONS = ("none", "rotation", "hflip", "color_jitter", "random_resized_crop", "resize_center_crop",
                 "cutout", "gaussian_blur", "salt_pepper")
DROPOUTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)


def per_image(transform: v2.Transform) -> Augment:
    """Apply a v2 transform to each image separately (own random parameters), on the CPU.

    The study's train set is 5,000 images of 32x32, so a Python loop costs well under a second per
    epoch, and 32x32 images are too small to be worth thousands of tiny GPU kernel launches. v2 draws
    its parameters from torch's global RNG, which `seed_everything` seeds, not from `g`.
    """
    def run(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        return torch.stack([transform(img) for img in x.cpu()]).to(x.device)
    return run


def study_augmentation(name: str, size: int = 32) -> Augment | None:
    """The augmentation `name` of AUGMENTATIONS, for size x size uint8 images; None for "none"."""
    v2_transforms = {
        "rotation": v2.RandomRotation(15),
        "hflip": v2.RandomHorizontalFlip(0.5),
        "color_jitter": v2.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1),
        # scale from 0.5: the ImageNet default (0.08) leaves a few pixels of a 32x32 image
        "random_resized_crop": v2.RandomResizedCrop(size, scale=(0.5, 1.0), antialias=True),
        # a fixed 1.25x zoom on the centre (train only, so it also measures a train/test mismatch)
        "resize_center_crop": v2.Compose([v2.Resize(size * 5 // 4, antialias=True), v2.CenterCrop(size)]),
        "gaussian_blur": v2.GaussianBlur(kernel_size=3, sigma=(0.1, 2.0)),
    }
    if name == "none":
        return None
    if name == "cutout":
        return lambda x, g: cutout(x, g, size // 2)
    if name == "salt_pepper":
        return lambda x, g: salt_and_pepper(x, g, amount=0.05)
    if name in v2_transforms:
        return per_image(v2_transforms[name])
    raise ValueError(f"unknown augmentation {name!r}; choose from {', '.join(AUGMENTATIONS)}")
