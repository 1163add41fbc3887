"""Write a two-class ImageFolder of real encoded image files of varied sizes: for smoke runs, tests, and the
learning check when no cat or dog photos can be downloaded.

    python -m common.export_folder synthetic --out runs/smoke/catsdogs_folder --per-class 40 --odd-files
    python -m common.export_folder fashion-mnist --data-dir /usr/share/datasets/fashion-mnist \\
        --classes 0 6 --per-class 300 --out runs/fashion_folder

synthetic: horizontal stripes against vertical stripes (common.data.make_synthetic), JPEG and PNG.
fashion-mnist: two Fashion-MNIST classes from its train set, each 28 x 28 image upscaled (bilinear) to its own
random width and height in [--min-size, --max-size] and saved as a grayscale JPEG.
--odd-files adds what real folders hold: a grayscale JPEG, a CMYK JPEG and an RGBA PNG (readable), a
truncated JPEG and a text file named .jpg (skipped by the loader, and counted).
"""
from __future__ import annotations

import argparse
import io
import re
import sys
from pathlib import Path

if __package__ in (None, ""):  # `python common/export_folder.py` without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from common.cli import Parser, positive_int, run_main
from common.data import FASHION_CLASSES, SYNTHETIC_CLASSES, load_data, make_synthetic
from common.errors import UserError

SOURCES = ("synthetic", "fashion-mnist")


def _sizes(n: int, low: int, high: int, seed: int) -> list[tuple[int, int]]:
    g = torch.Generator().manual_seed(seed)
    return [tuple(torch.randint(low, high + 1, (2,), generator=g).tolist()) for _ in range(n)]


def _resize(image: torch.Tensor, width: int, height: int) -> np.ndarray:
    """uint8 (C, h, w) -> uint8 (height, width, C) array, bilinear."""
    out = F.interpolate(image[None].float(), size=(height, width), mode="bilinear", align_corners=False)[0]
    return out.round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")


def write_odd_files(folder: Path, sample: np.ndarray) -> None:
    """Readable grayscale, CMYK and RGBA files made from `sample` (H, W, 3), and two unreadable ones."""
    rgb = Image.fromarray(sample)
    rgb.convert("L").save(folder / "odd_gray.jpg", quality=90)
    rgb.convert("CMYK").save(folder / "odd_cmyk.jpg", quality=90)
    rgb.convert("RGBA").save(folder / "odd_rgba.png")
    buffer = io.BytesIO()
    rgb.save(buffer, "JPEG", quality=90)
    whole = buffer.getvalue()
    (folder / "odd_truncated.jpg").write_bytes(whole[:len(whole) // 2])
    (folder / "odd_not_an_image.jpg").write_text("this is a text file with a .jpg name\n")


def export_synthetic(out: Path, per_class: int, seed: int = 0, min_size: int = 40, max_size: int = 120,
                     odd_files: bool = False, num_classes: int = 2) -> list[str]:
    """num_classes folders of stripes (2: horizontal/ and vertical/), per_class files each, JPEG and PNG in
    turn, every one at its own size. Returns the class folder names."""
    images, labels = make_synthetic(2 * num_classes * per_class + 8 * num_classes, seed, num_classes=num_classes,
                                    size=96)
    classes = ["horizontal", "vertical"] if num_classes == 2 else [_slug(c) for c in SYNTHETIC_CLASSES[:num_classes]]
    sizes = iter(_sizes(num_classes * per_class, min_size, max_size, seed))
    for k, name in enumerate(classes):
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        members = (labels == k).nonzero().squeeze(1)[:per_class]
        if len(members) < per_class:
            raise UserError(f"make_synthetic drew too few images of class {k}; use another --seed")
        for n, i in enumerate(members.tolist()):
            w, h = next(sizes)
            pixels = _resize(images[i], w, h)
            Image.fromarray(pixels).save(folder / f"{n:04d}.{'jpg' if n % 2 == 0 else 'png'}", quality=92)
        if odd_files:
            write_odd_files(folder, _resize(images[members[0]], 50, 40))
    return classes


def export_fashion(out: Path, data_dir: str, class_ids: tuple[int, ...], per_class: int, seed: int = 0,
                   size_range: tuple[int, int] = (40, 120), odd_files: bool = False, split: str = "train") -> list[str]:
    """Fashion-MNIST classes from its train set (or its test set) as grayscale JPEGs of varied sizes."""
    data = load_data("fashion-mnist", data_dir, val_size=1, seed=seed)
    if split == "train":
        images = torch.cat([data.train.images, data.val.images])
        labels = torch.cat([data.train.labels, data.val.labels])
    else:
        images, labels = data.test.images, data.test.labels
    images = images[:, :1, 2:30, 2:30]  # undo the 28 -> 32 padding
    g = torch.Generator().manual_seed(seed)
    sizes = iter(_sizes(len(class_ids) * per_class, *size_range, seed))
    names = []
    for k in class_ids:
        name = _slug(FASHION_CLASSES[k])
        names.append(name)
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        members = (labels == k).nonzero().squeeze(1)
        members = members[torch.randperm(len(members), generator=g)[:per_class]]
        for n, i in enumerate(members.tolist()):
            w, h = next(sizes)
            Image.fromarray(_resize(images[i], w, h)[..., 0]).save(folder / f"{n:04d}.jpg", quality=92)
        if odd_files:
            write_odd_files(folder, _resize(images[members[0]].expand(3, -1, -1), 50, 40))
    return names


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m common.export_folder", description=__doc__.split("\n\n")[0])
    p.add_argument("source", choices=SOURCES, help="generated stripes, or Fashion-MNIST's images")
    p.add_argument("--out", required=True, help="the ImageFolder root to write (class folders inside)")
    p.add_argument("--per-class", type=positive_int, default=100, help="images per class (in train/ with "
                   "--test-per-class)")
    p.add_argument("--classes", type=int, nargs="+", default=None,
                   help=f"synthetic: the number of classes; fashion-mnist: class ids, of "
                        f"{', '.join(f'{k} {c}' for k, c in enumerate(FASHION_CLASSES))} "
                        f"(default: synthetic 2, fashion-mnist 0 6)")
    p.add_argument("--test-per-class", type=positive_int, default=None,
                   help="write OUT/train/<class>/ and OUT/val/<class>/ (this many per class) instead "
                        "(default: none, OUT/<class>/ alone)")
    p.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist", help="Fashion-MNIST's IDX files")
    p.add_argument("--min-size", type=positive_int, default=40, help="least width or height of an image, in px")
    p.add_argument("--max-size", type=positive_int, default=120, help="greatest width or height of an image, in px")
    p.add_argument("--seed", type=int, default=0, help="seeds the images drawn and their sizes")
    p.add_argument("--odd-files", action="store_true", help="add gray, CMYK, RGBA, truncated and text files")
    return p


def export(args: argparse.Namespace, out: Path, per_class: int, seed: int, split: str) -> list[str]:
    if args.source == "synthetic":
        return export_synthetic(out, per_class, seed, args.min_size, args.max_size, args.odd_files, args.classes[0])
    return export_fashion(out, args.data_dir, tuple(args.classes), per_class, seed, (args.min_size, args.max_size),
                          args.odd_files, split)


def run(args: argparse.Namespace) -> int:
    if args.min_size > args.max_size:
        raise UserError(f"--min-size {args.min_size} is larger than --max-size {args.max_size}")
    if args.source == "synthetic":
        args.classes = args.classes or [2]
        if len(args.classes) != 1 or not 2 <= args.classes[0] <= len(SYNTHETIC_CLASSES):
            raise UserError(f"--classes for synthetic is one number of classes in 2..{len(SYNTHETIC_CLASSES)}, "
                            f"got {' '.join(map(str, args.classes))}")
    else:
        args.classes = args.classes or [0, 6]
        if len(set(args.classes)) != len(args.classes) or len(args.classes) < 2 or \
                not all(0 <= k < len(FASHION_CLASSES) for k in args.classes):
            raise UserError(f"--classes needs two or more different ids in 0..{len(FASHION_CLASSES) - 1}, "
                            f"got {' '.join(map(str, args.classes))}")
    out = Path(args.out)
    if args.test_per_class is None:
        classes = export(args, out, args.per_class, args.seed, "train")
        where = f"{out}/{{{','.join(classes)}}}/"
    else:  # the iNaturalist layout; another seed for the held-out files
        classes = export(args, out / "train", args.per_class, args.seed, "train")
        export(args, out / "val", args.test_per_class, args.seed + 1, "test")
        where = f"{out}/train/ and {out}/val/ ({args.test_per_class} per class), classes {', '.join(classes)}"
    print(f"wrote {args.per_class} {args.source} images per class into {where}", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_main(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
