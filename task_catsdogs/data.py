"""The cats-and-dogs data: a pool of photos (Oxford-IIIT Pet or any two-class folder), decoded once and
cached by common.folders; per seed, a class-balanced split (112 train / 28 test by default, plus a small
validation split that only monitors); and the twin training sets: the train originals alone, and the same
originals followed by two 3-of-10 augmented versions of each (336 images).
"""
from __future__ import annotations

import os
import statistics
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from common.data import ImageData, Split, channel_mean_std
from common.errors import UserError
from common.folders import MAX_ASPECT_RATIO, MAX_PIXELS, FolderImages, decode_rgb, load_folder, load_oxford_pets
from common.tables import write_table
from common.text import printable
from task_catsdogs.augmentations import AugmentedSet, augment_originals, write_augmentations_csv
from task_catsdogs.plots import augmented_examples, image_stats_png

DATASETS = ("pets", "folder")


@dataclass
class Pool:
    """The photos a split is drawn from: train and validation from `train`, test from `test`. For a folder
    both are the same FolderImages (and the picks are disjoint); for Oxford Pets, its trainval and test lists."""
    name: str
    train: FolderImages
    test: FolderImages

    @property
    def classes(self) -> list[str]:
        return self.train.classes

    @property
    def skipped(self) -> list[str]:
        """"path: reason" of every file of the pool left out (for a folder, train and test are the same list)."""
        return self.train.skipped + (self.test.skipped if self.test is not self.train else [])


def load_pool(dataset: str, data_dir: str, image_size: int, max_pixels: int | None = MAX_PIXELS,
              max_aspect: float | None = MAX_ASPECT_RATIO) -> Pool:
    """Every photo of the dataset at image_size x image_size (cached on disk; a file of more than
    `max_pixels` pixels, or longer than `max_aspect` times its width, is skipped); one error line if it is
    missing or does not have exactly two classes."""
    limits = {"max_pixels": max_pixels, "max_aspect": max_aspect}
    if dataset == "pets":
        pool = Pool("Oxford-IIIT Pet", load_oxford_pets(data_dir, "trainval", image_size, **limits),
                    load_oxford_pets(data_dir, "test", image_size, **limits))
    elif dataset == "folder":
        images = load_folder(data_dir, image_size, **limits)
        pool = Pool(Path(data_dir).resolve().name, images, images)
    else:
        raise UserError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    if len(pool.classes) != 2:
        raise UserError(f"{printable(data_dir)} has {len(pool.classes)} class folders "
                        f"({', '.join(printable(c) for c in pool.classes)}); this task "
                        f"compares two classes, e.g. Cat/ and Dog/")
    return pool


def split_sizes(train: int, val: int, test: int, subset: int | None) -> tuple[int, int, int]:
    """(train, val, test) sizes, each capped at --subset (rounded down to an even number)."""
    sizes = (train, val, test)
    if subset is not None:
        sizes = tuple(min(s, max(2, subset - subset % 2)) for s in sizes)
    return sizes


def _per_class(size: int, flag: str) -> int:
    if size < 2 or size % 2:
        raise UserError(f"{flag} must be an even number of at least 2 (half of each class), got {size}")
    return size // 2


def balanced_split(pool: Pool, train_size: int, val_size: int, test_size: int,
                   seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(train, val, test) positions, each half one class and half the other, drawn with `seed`, disjoint.

    Per class, one seeded permutation of its photos: train takes the first, validation the next; test takes
    the next ones of the same permutation for a folder, or the first of a permutation of Pets' test list."""
    n_train, n_val, n_test = (_per_class(s, f) for s, f in ((train_size, "--train-size"), (val_size, "--val-size"),
                                                             (test_size, "--test-size")))
    g = torch.Generator().manual_seed(seed)
    same = pool.test is pool.train
    picks: dict[str, list[torch.Tensor]] = {"train": [], "val": [], "test": []}
    for k, name in enumerate(pool.classes):
        members = (pool.train.labels == k).nonzero().squeeze(1)
        need = n_train + n_val + (n_test if same else 0)
        if len(members) < need:
            raise UserError(f"class {name!r} has {len(members)} readable images in {pool.name}, but --train-size, "
                            f"--val-size{' and --test-size' if same else ''} need {need} of each class")
        order = members[torch.randperm(len(members), generator=g)]
        picks["train"].append(order[:n_train])
        picks["val"].append(order[n_train:n_train + n_val])
        if same:
            picks["test"].append(order[n_train + n_val:need])
        else:
            tests = (pool.test.labels == k).nonzero().squeeze(1)
            if len(tests) < n_test:
                raise UserError(f"class {name!r} has {len(tests)} readable test images in {pool.name}, but "
                                f"--test-size {test_size} needs {n_test}")
            picks["test"].append(tests[torch.randperm(len(tests), generator=g)[:n_test]])
    train, val, test = (torch.cat(picks[s]).sort().values for s in ("train", "val", "test"))
    return train, val, test


@dataclass
class TwinData:
    plain: ImageData          # train: the originals
    aug: ImageData            # train: the originals, then `calls` augmented versions of each
    train_files: list[str]    # the file of each train original, in train order
    augmented: AugmentedSet   # the augmented images and which augmentations made them
    original_sizes: list[tuple[int, int]]  # (width, height) of each train original as decoded


def twin_data(pool: Pool, train_size: int, val_size: int, test_size: int, image_size: int, seed: int,
              calls: int = 2, per_call: int = 3, mean_std: tuple | None = None) -> TwinData:
    """The split for `seed` and both training sets. The augmentations run on the train photos decoded again
    at full size (before the resize, so pad-to-square keeps the aspect ratio). Both models share the
    normalisation: the train originals' mean and std, or `mean_std` (ImageNet's, for ImageNet weights)."""
    train_idx, val_idx, test_idx = balanced_split(pool, train_size, val_size, test_size, seed)

    train = pool.train.as_split().take(train_idx)
    files = [pool.train.paths[i] for i in train_idx.tolist()]
    # they passed the pool's limits already (which may be above the defaults)
    originals = [decode_rgb(path, max_pixels=None, max_aspect=None) for path in files]
    augmented = augment_originals(originals, image_size, seed, calls, per_call)
    mean, std = mean_std or channel_mean_std(train.images)
    plain = ImageData(pool.name, list(pool.classes), train, pool.train.as_split().take(val_idx),
                      pool.test.as_split().take(test_idx), mean, std)
    aug_train = Split(torch.cat([train.images, augmented.images]),
                      torch.cat([train.labels, train.labels[augmented.source]]),
                      torch.cat([train.index, train.index[augmented.source]]))
    return TwinData(plain, replace(plain, train=aug_train), files, augmented,
                    [(int(o.shape[-1]), int(o.shape[-2])) for o in originals])


def image_stats(twin: TwinData) -> list[dict]:
    """Counts per class before and after the augmentation (and of validation and test), with the median
    size of the train originals: the original's IMAGE STATISTICS, as a table."""
    rows = []
    classes = twin.plain.classes
    labels = twin.plain.train.labels.tolist()
    for k, name in enumerate(classes + ["all"]):
        def count(split: Split, k: int = k, name: str = name) -> int:
            return len(split) if name == "all" else int((split.labels == k).sum())
        sizes = [s for s, y in zip(twin.original_sizes, labels) if name == "all" or y == k]
        rows.append({"class": printable(name), "train (originals)": count(twin.plain.train),
                     "augmented": count(twin.aug.train) - count(twin.plain.train),
                     "train (after augmentation)": count(twin.aug.train),
                     "validation": count(twin.plain.val), "test": count(twin.plain.test),
                     "median original size (w x h)": f"{statistics.median(w for w, _ in sizes):g} x "
                                                     f"{statistics.median(h for _, h in sizes):g}"})
    return rows


def seed_test_data(saved, data_dir: str) -> ImageData:
    """The seed's test images (the same balanced split as at training time); no train or val needed."""
    pool = load_pool(saved.dataset, data_dir, saved.image_size, saved.max_pixels, saved.max_aspect)  # eval's limits
    test = pool.test.as_split().take(balanced_split(pool, *split_sizes(saved.train_size, saved.val_size,
                                                                       saved.test_size, saved.subset), saved.seed)[2])
    none = test.take(slice(0))
    return ImageData(pool.name, list(pool.classes), none, none, test, (0.0,) * 3, (1.0,) * 3)  # mean, std: ckpt's


def describe_twin(seed_dir: Path, twin: TwinData, data_dir: str, examples: int) -> None:
    """What the augmentation made, for one seed: augmentations.csv (every augmented image: its original, the
    augmentations and their parameters), augmented_examples.png (the first originals of each class in turn
    beside their augmented versions) and image_stats.{csv,md,png} (the table is printed too)."""
    classes, labels = twin.plain.classes, twin.plain.train.labels.tolist()
    write_augmentations_csv(seed_dir / "augmentations.csv", twin.augmented.records,
                            [relative(f, data_dir) for f in twin.train_files], classes, labels)
    calls = len(twin.augmented.records) // len(labels)
    by_class = [[i for i, y in enumerate(labels) if y == k] for k in range(len(classes))]
    picks = [i for group in zip(*by_class) for i in group][:examples]  # cat, dog, cat, dog, ...
    augmented = twin.augmented.images.view(len(labels), calls, *twin.augmented.images.shape[1:])
    names = [[name for name, _ in twin.augmented.records[i * calls + c]["applied"]]
             for i in picks for c in range(calls)]
    augmented_examples(twin.plain.train.images[picks], augmented[picks], names, [classes[labels[i]] for i in picks],
                       seed_dir / "augmented_examples.png")
    rows = image_stats(twin)
    print(f"image statistics (seed {seed_dir.name[4:]}):\n{write_table(seed_dir / 'image_stats', rows)}", flush=True)
    image_stats_png(rows, seed_dir / "image_stats.png")


def relative(path: str, root: str) -> str:
    try:
        return os.path.relpath(path, root)
    except ValueError:  # another drive (Windows)
        return path
