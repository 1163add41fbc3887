"""Part (c): the augmentation and dropout study on a tiny, class-balanced CIFAR-10: its augmentations, the
per-image adapter for torchvision v2 transforms, and its runs (`run_study`: one short run per augmentation and
per dropout value, each measured as its last epoch left it).

Each augmentation is an `Augment` (batch, generator) -> batch, as `common.training.fit` expects. Those
torchvision v2 has are v2 transforms applied to each image of the batch in turn, so every image draws
its own parameters (a v2 transform called on a whole batch draws one set for the batch). CutOut and
salt-and-pepper come batched from `common.augment`.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch
from torchvision.transforms import v2

from common.augment import Augment, cutout, salt_and_pepper
from common.data import ImageData, balanced_subset
from common.models import resnet18
from common.plots import bar_chart, labelled_rows
from common.run import RunFolder
from common.runtime import place
from common.training import TrainConfig, evaluate
from task_cifar_transfer.results import study_row, write_study_table

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


def tiny_dataset(data: ImageData, n_train: int, n_test: int, seed: int) -> ImageData:
    """Seeded, class-balanced subsets: n_train of train, n_test of test, and n_test of the validation split."""
    k = len(data.classes)
    return replace(data, train=balanced_subset(data.train, max(1, n_train // k), seed),
                   val=balanced_subset(data.val, max(1, n_test // k), seed),
                   test=balanced_subset(data.test, max(1, n_test // k), seed))


def study_runs(augmentations: list[str], dropouts: list[float]) -> list[tuple[str, str, str, float]]:
    """(study, setting, augmentation, dropout) of every run: one per augmentation (dropout 0), then one per
    dropout value (no augmentation). Dropout 0 with no augmentation is the "none" run of both studies."""
    return [("augmentation", name, name, 0.0) for name in augmentations] + \
        [("dropout", f"{p:.1f}", "none", p) for p in dropouts]


def augmentation_grid(images: torch.Tensor, path: Path, seed: int) -> None:
    """Every augmentation of the study (rows) applied to the same images (columns)."""
    g = torch.Generator(images.device).manual_seed(seed)
    rows = {}
    with torch.random.fork_rng(devices=[]):  # v2 transforms draw from the global RNG: seeded here, locally
        torch.manual_seed(seed)
        for name in AUGMENTATIONS:
            augment = study_augmentation(name, images.shape[-1])
            rows[name] = images if augment is None else augment(images, g)
    labelled_rows(rows, path, "each augmentation of the study on the same images")


def run_study(part: RunFolder, data: ImageData, device: torch.device, cfg: TrainConfig) -> dict:
    """(c): one short run per augmentation and per dropout value on a tiny set, each measured as its last epoch
    left it (no checkpoints: an interrupted one starts over on --resume, the complete ones are kept)."""
    args = part.args
    tiny = tiny_dataset(data, args.tiny_train, args.tiny_test, args.seed)
    part.create(device, tiny)
    part.summary(place(resnet18(len(tiny.classes), norm="bn", width=args.width), device, args.channels_last),
                 tiny.train.images.shape[1:], device)
    print(f"(c) tiny {args.dataset}: train {len(tiny.train)}, val {len(tiny.val)}, test {len(tiny.test)} "
          f"images; run folder {part.path}", flush=True)
    done, rows = {}, []
    for kind, name, augmentation, dropout in study_runs(args.augmentations, args.dropouts):
        if (augmentation, dropout) not in done:  # the "none" run stands in both studies: it runs once
            done[augmentation, dropout] = part.sub(f"{kind}/{name}", augmentation=augmentation, dropout=dropout).once(
                lambda run, title=f"(c) {kind} {name}": study_one(run, tiny, device, cfg, title))
        rows.append(study_row(kind, name, done[augmentation, dropout]))
    print(write_study_table(part.path, rows, args.dataset), flush=True)
    bar_chart({f"augmentation (dropout 0), {args.epochs} epochs":
               {r["setting"]: 100 * r["test_acc"] for r in rows if r["study"] == "augmentation"},
               "dropout before the final linear (no augmentation)":
               {r["setting"]: 100 * r["test_acc"] for r in rows if r["study"] == "dropout"}},
              part.path / "test_accuracy.png", "test accuracy (%)",
              f"tiny {args.dataset}: {len(tiny.train)} train / {len(tiny.test)} test images")
    augmentation_grid(tiny.train.images[:8], part.path / "augmentations.png", args.seed)
    return part.finish({"results": rows, "split_sizes": {"train": len(tiny.train), "test": len(tiny.test)}})


def study_one(run: RunFolder, tiny: ImageData, device: torch.device, cfg: TrainConfig, title: str) -> dict:
    """One run of the study: ResNet-18 (BN) with its dropout, trained with its augmentation, measured as its last
    epoch left it on clean train images and on test."""
    args = run.create(device, tiny).args
    model = resnet18(len(tiny.classes), norm="bn", width=args.width, dropout=args.dropout)
    print(title, flush=True)
    run.fit(model, tiny, cfg, augment=study_augmentation(args.augmentation, tiny.train.images.shape[-1]))
    def accuracy(split): return evaluate(model, split, tiny.mean, tiny.std, cfg.eval_batch_size, args.channels_last).acc
    return run.finish({"train_acc": accuracy(tiny.train), "test_acc": accuracy(tiny.test)})
