"""Photos from folders (ImageFolder layout, Oxford-IIIT Pet) as one uint8 tensor (N, 3, S, S), cached.

Photos come in every size, mode and format, so each file is decoded once, on the CPU, with Pillow
(grayscale, CMYK, palette, RGBA and 16-bit all become 8-bit RGB), squashed to S x S and kept like the CIFAR
path in common.data: one device-resident uint8 tensor, no DataLoader, no per-image Python while training.

- Decoder: Pillow (torchvision resizes), which reads every format we accept (JPEG, PNG, BMP, GIF, WebP; by
  content, not by extension), reads the size from the header before decoding, decodes a large JPEG at 1/2,
  1/4 or 1/8 scale when S is much smaller (DCT scaling, Image.draft), and applies the EXIF orientation of
  phone photos.
  (torchvision.io's decoders are deprecated since 0.29; TorchCodec's read no BMP and apply no EXIF.)
- Size: a file whose header gives more than `max_pixels` pixels (default 89,478,485, PIL's bomb limit) is
  skipped unread. Images over LARGE_PIXELS are decoded one at a time, so the memory peak stays near
  threads x 185 MB plus one image at the limit (1 GB), whatever the folder holds.
- Shape: a file whose header gives a long side more than `max_aspect` times its short side (default
  MAX_ASPECT_RATIO, 20:1; no camera's frame or phone panorama comes near) is skipped unread too. The pixel
  count bounds the decode; the resize's work and memory grow with S x the long side (the squash first
  stretches the short side to S: a 1 x 10,000,000 PNG of 19 kB would hold 6.7 GB at 224 px). With both
  limits the long side is at most sqrt(max_pixels x 20) (42,300 px), so a resize holds at most
  3 x S x 42,300 bytes (28 MB at 224 px) besides the decode.
- Resize: *squash*. Each photo is resized straight to S x S (bilinear, antialiased), aspect ratio not kept.
  The whole frame survives, so a pet at the edge of a portrait photo is never cropped away, and the
  training crop (common.augment.random_resized_crop) varies the aspect ratio by 3/4 to 4/3 anyway.
- Cache: the tensor, labels and file list go to `<cache_dir>/<name>-<S>px-<root hash>-<key>.pt`
  (default cache_dir: `<root>/.cache/`). The key hashes the sorted file list with each file's size and
  mtime_ns, the classes, S, max_pixels and max_aspect, so a changed, added or removed file, another S or
  another limit decodes again; a hit decodes nothing. Written atomically (common.checkpoint.atomic_save), loaded with
  weights_only=True; plain tensors, strings and lists only. A newer cache file replaces the older ones of
  the same root and size.
- Links and special files: a class folder is walked with os.walk(followlinks=False), hidden folders pruned,
  and the files sorted by path as before (the seeded splits depend on the order). A symbolic link to a
  regular file is followed (a dataset assembled from links to photos elsewhere works); a link to anything
  else is never read: a dangling link, a link loop, a FIFO, a device or a socket with an image extension, and
  a link to a folder inside a class folder (not walked: `ln -s .. loop` would never end), are each a skip
  line, never a silent gap. A class folder itself may be a link (it is walked, links inside it are not).
  The kind is checked again when the file is opened, without blocking, so a file swapped for a FIFO or a
  device after listing is a skip line too, never a wait or an endless read.
- Bad files: a corrupt, truncated, oversized or non-image file is skipped, named on stderr (one line each,
  also on a cache hit; the first SHOWN_SKIPPED (5), then `... and N more`), and counted in one line
  `skipped N unreadable files of M`. FolderImages.skipped keeps every "path: reason" line; the tasks'
  train.py write them to the run folder's skipped_files.txt (common.run.write_skipped). The user's own mistakes
  (no folder, no class folders, an empty class folder, a class missing from the test folder) are one
  UserError line each.
- Names are data: file and class names are printed through `printable` (bytes that are not UTF-8 as \\xff,
  newlines and control characters escaped), so a name can never break a line, a log or a CSV.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import stat
import struct
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Sequence

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torchvision.transforms.v2 import functional as TF

from common.checkpoint import atomic_save
from common.data import ImageData, Split, channel_mean_std, check_subset, validation_size
from common.errors import UserError
from common.text import printable  # also imported from here by task_catsdogs and tests

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
FORMATS = ("JPEG", "PNG", "BMP", "GIF", "WEBP")  # PIL's names; JPEG includes a phone's multi-picture (MPO) file
CACHE_FORMAT = "common.folders/2"  # bump when the cache's content, the decoder or the resize changes
# PIL's default decompression-bomb limit, as our default: a 30000x30000 PNG can be 1 MB on disk and 2.7 GB
# decoded. Ours is per call (max_pixels), so PIL's process-wide one, which warns past the limit and fails
# past twice it whatever the caller allows, is lifted: every photo is read through decode_rgb.
MAX_PIXELS = 89_478_485
Image.MAX_IMAGE_PIXELS = None
# The longest side over the shortest that is decoded (see the module docstring): the pixel limit alone lets a
# 1 x 89,000,000 strip through, whose squash to S x S would hold S x 89,000,000 x 3 bytes.
MAX_ASPECT_RATIO = 20
# A decode holds up to 11 bytes a pixel (the decoded mode and its RGB copy, 4 bytes a pixel each in PIL, and
# the 3-byte array). Images larger than this (after JPEG scaling) are decoded one at a time, so the peak stays
# near threads x 185 MB plus one image at the limit (1 GB at MAX_PIXELS), whatever the folder holds.
LARGE_PIXELS = 2 ** 24
_ONE_LARGE_AT_A_TIME = threading.Lock()
DECODE_ERRORS = (OSError, ValueError, EOFError, SyntaxError, struct.error)  # what PIL raises on a bad file
# Skip lines printed per load: a folder of 10,000 broken files must not bury the run's output; the full list
# stays on FolderImages.skipped (and goes to the run folder's skipped_files.txt, common.run.write_skipped).
SHOWN_SKIPPED = 5
PETS_URL = "https://www.robots.ox.ac.uk/~vgg/data/pets/"
PETS_SPLITS = ("trainval", "test")


@dataclass
class FolderImages:
    images: torch.Tensor  # uint8 (N, 3, S, S)
    labels: torch.Tensor  # int64 (N,)
    classes: list[str]
    paths: list[str]      # the file of each image, same order: to say which photo a prediction was about
    skipped: list[str]    # "path: reason" of each file left out (the terminal shows only the first SHOWN_SKIPPED)

    def __len__(self) -> int:
        return len(self.labels)

    def as_split(self) -> Split:
        """Every image, each at its own position (Split.take draws train, val or test from it)."""
        return Split.whole(self.images, self.labels)


# ----------------------------------------------------------------------------- one file
class ImageTooLarge(ValueError):
    """The header gives more pixels than the caller allows: the file is skipped before it is decoded."""


class NotARegularFile(OSError):
    """A FIFO, a device, a socket or a folder where a photo was listed: never read (a FIFO would wait for a
    writer, a device could be read forever)."""


_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))


def _refuse_unless_regular(mode: int, path: str | os.PathLike | None = None) -> None:
    """NotARegularFile unless `mode` is a regular file's; given `path`, a link is named as one."""
    if not stat.S_ISREG(mode):
        kind = next((name for is_kind, name in _KINDS if is_kind(mode)), "an unknown kind of file")
        if path is not None and os.path.islink(path):
            raise NotARegularFile(f"a symbolic link to {kind}, not followed")
        raise NotARegularFile(f"not a regular file ({kind})")


def _open_regular(path: str | os.PathLike) -> BinaryIO:
    """`path` opened for reading if it is a regular file (a symlink to one included), else NotARegularFile.

    Checked on the name first (opening a device can act on it), then on the open descriptor: the file may have
    been swapped since. O_NONBLOCK, because opening a FIFO for reading otherwise waits for a writer, forever;
    on a regular file it changes nothing."""
    try:
        _refuse_unless_regular(os.stat(path).st_mode, path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise NotARegularFile("a symbolic link to a file that does not exist") from None
        raise
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        _refuse_unless_regular(os.fstat(fd).st_mode)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _as_rgb(image: Image.Image) -> Image.Image:
    """Any mode as RGB. Alpha is dropped; 16-bit gray is scaled to 8 bits (PIL's convert would clip it)."""
    if image.mode.startswith("I"):  # I;16, I;16B, I: a 16-bit grayscale PNG
        image = Image.fromarray((np.asarray(image) >> 8).astype(np.uint8))
    image.info.pop("transparency", None)  # dropped anyway; kept, it makes convert() warn about palettes
    return image if image.mode == "RGB" else image.convert("RGB")


def decode_rgb(path: str | os.PathLike, max_pixels: int | None = MAX_PIXELS,
               size: int | None = None, max_aspect: float | None = MAX_ASPECT_RATIO) -> torch.Tensor:
    """Decode one image file to uint8 (3, H, W) RGB, whatever its mode (gray, CMYK, palette, RGBA, 16-bit),
    or, given `size`, squashed to (3, size, size).

    PIL reads the width and height from the header first: a file of more than `max_pixels` pixels, or whose
    long side is more than `max_aspect` times its short side, raises ImageTooLarge before anything is decoded
    (None: no limit, for files that passed it already). The
    format comes from the content, not the extension; an animated GIF or WebP gives its first frame. EXIF
    orientation is applied, so a phone photo stands the way it was shot. Given `size`, a JPEG is decoded at
    1/2, 1/4 or 1/8 scale (DCT scaling) while both sides stay >= size: the same photo, in less time and memory.
    """
    with _open_regular(path) as file, Image.open(file, formats=FORMATS) as image:
        width, height = image.size
        if max_pixels is not None and width * height > max_pixels:
            raise ImageTooLarge(f"{width}x{height} px: {width * height:,} pixels, over the limit of "
                                f"{max_pixels:,} (--max-pixels)")
        _check_aspect(width, height, max_aspect)
        if size is not None:
            image.draft(None, (size, size))  # JPEG only; the header's size becomes the reduced one
        large = image.size[0] * image.size[1] > LARGE_PIXELS
        with _ONE_LARGE_AT_A_TIME if large else contextlib.nullcontext():
            ImageOps.exif_transpose(image, in_place=True)
            chw = torch.from_numpy(np.array(_as_rgb(image))).permute(2, 0, 1)  # a (3, H, W) view, channels last
            if size is not None:
                # torchvision's uint8 resize on channels-last pixels: 4x faster than PIL's resize here
                chw = TF.resize(chw, [size, size], antialias=True)
            # to (3, H, W) memory order in numpy: torch's copy out of this layout wakes its thread pool,
            # 10 ms at 224 px on 2 busy cores, numpy's 0.2 ms
            return torch.from_numpy(np.ascontiguousarray(chw.numpy()))


def _check_aspect(width: int, height: int, max_aspect: float | None) -> None:
    """ImageTooLarge if the long side is more than `max_aspect` times the short one (or a side is empty)."""
    long, short = max(width, height), min(width, height)
    if short < 1:
        raise ImageTooLarge(f"{width}x{height} px: an empty image")
    if max_aspect is not None and long > max_aspect * short:  # integers: exact at the limit
        raise ImageTooLarge(f"{width}x{height} px: aspect ratio {_ratio(long / short)}:1, over the limit of "
                            f"{_ratio(max_aspect)}:1")


def _ratio(x: float) -> str:
    return f"{x:,.1f}".removesuffix(".0")  # 10,000,000 and 20.3


def _reason(error: Exception) -> str:
    """Why a file was skipped, in a few words; an error that is not one of a bad file's names its type."""
    if isinstance(error, UnidentifiedImageError):  # its message repeats the path
        return f"not an image in a format we read ({', '.join(FORMATS)})"
    if isinstance(error, OSError) and error.strerror:  # "Permission denied", without the path again
        return error.strerror
    lines = str(error).strip().splitlines()
    text = lines[0].split(". ")[0][:160] if lines else ""
    if not isinstance(error, DECODE_ERRORS):  # out of memory, a bomb, a bug: the type says which
        return f"{type(error).__name__}: {text}" if text else type(error).__name__
    return text or type(error).__name__


def _decode_resized(path: str, image_size: int, max_pixels: int | None,
                    max_aspect: float | None) -> torch.Tensor | str:
    """The file squashed to (3, S, S) uint8, or why it could not be read. Any error is that file's: a bad file
    can raise nearly anything from PIL or torch (MemoryError, RuntimeError, a bomb error), and one file never
    ends the load. Ctrl-C (not an Exception) still does."""
    try:
        return decode_rgb(path, max_pixels, image_size, max_aspect)
    except Exception as e:
        return _reason(e)


def _decode_all(paths: Sequence[str], image_size: int, workers: int, max_pixels: int | None = MAX_PIXELS,
                max_aspect: float | None = MAX_ASPECT_RATIO) -> tuple[torch.Tensor, list[int], list[str]]:
    """Decode every file into one (M, 3, S, S) tensor; return it, the indices that worked, and the reasons
    (path: why) of those that did not. Threads, because PIL and torch release the GIL while they decode and
    resize; order is kept."""
    out = torch.empty((len(paths), 3, image_size, image_size), dtype=torch.uint8)
    ok, bad = [], []

    def one(i: int) -> tuple[int, torch.Tensor | str]:
        return i, _decode_resized(paths[i], image_size, max_pixels, max_aspect)

    with ThreadPoolExecutor(max(1, workers)) as pool:
        for i, result in pool.map(one, range(len(paths))):  # taken in order as they come, not all held twice
            if isinstance(result, str):
                bad.append(f"{paths[i]}: {result}")
            else:
                out.numpy()[i] = result.numpy()  # numpy's copy: torch's wakes its thread pool each time (ms)
                ok.append(i)
    return out, ok, bad


# ----------------------------------------------------------------------------- cache
def _cache_key(identity: str, entries: list[list], classes: list[str], image_size: int,
               max_pixels: int | None, max_aspect: float | None) -> str:
    payload = json.dumps({"format": CACHE_FORMAT, "root": identity, "image_size": image_size, "resize": "squash",
                          "max_pixels": max_pixels, "max_aspect": max_aspect, "classes": classes, "files": entries})
    return hashlib.sha256(payload.encode()).hexdigest()


def _stat_entry(path: str, label: int) -> list:
    """(path, size, mtime_ns, label): what the cache key covers. A vanished file gets -1s (and is skipped)."""
    try:
        st = os.stat(path)
        return [path, st.st_size, st.st_mtime_ns, label]
    except OSError:
        return [path, -1, -1, label]


def _read_cache(path: Path, key: str) -> dict | None:
    """The cached dict if `path` holds this key, else None (a missing, stale or unreadable cache file)."""
    if not path.is_file():
        return None
    try:
        cached = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        print(f"warning: cache file {printable(path)} is unreadable ({type(e).__name__}); decoding again",
              file=sys.stderr)
        return None
    if not isinstance(cached, dict) or cached.get("key") != key or cached.get("format") != CACHE_FORMAT:
        return None
    return cached


def _write_cache(path: Path, cached: dict) -> None:
    """Atomically write the cache, then remove the older caches of the same root and size. A folder we may
    not write into (a read-only dataset) costs a decode per run, not the run: one warning line."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_save(cached, path)
    except OSError as e:
        print(f"warning: cannot write the image cache {printable(path)} ({e.strerror or e}); pass another cache_dir "
              f"to keep it", file=sys.stderr)
        return
    prefix = path.name.rsplit("-", 1)[0]
    for old in path.parent.glob(f"{prefix}-*.pt"):
        if old != path:
            old.unlink(missing_ok=True)


def _report_skipped(reasons: list[str], total: int, where: str) -> None:
    """The first SHOWN_SKIPPED skipped files ("path: why"), "... and N more", then the count; names escaped, so
    each is one line."""
    for line in reasons[:SHOWN_SKIPPED]:
        print(f"skipped {printable(line)}", file=sys.stderr)
    if len(reasons) > SHOWN_SKIPPED:
        print(f"skipped ... and {len(reasons) - SHOWN_SKIPPED} more", file=sys.stderr)
    if reasons:
        print(f"skipped {len(reasons)} unreadable files of {total} in {printable(where)}", file=sys.stderr)


@dataclass
class Decoding:
    """How the photos of one load become a tensor: squashed to size x size; a file over either limit skipped
    unread (None: no limit); `workers` threads (None: up to 8)."""
    size: int
    max_pixels: int | None = MAX_PIXELS
    max_aspect: float | None = MAX_ASPECT_RATIO
    workers: int | None = None


def _load_files(name: str, identity: str, listing: tuple[list[str], list[int], list[str]], decoding: Decoding,
                cache_dir: Path) -> FolderImages:
    """Decode the listing's (paths, labels, classes) (or read them from the cache) into FolderImages; the cache
    file is named after `name`."""
    paths, labels, classes = listing
    image_size, max_pixels, max_aspect, workers = (decoding.size, decoding.max_pixels, decoding.max_aspect,
                                                   decoding.workers)
    if image_size < 1:
        raise UserError(f"image size must be a positive number of pixels, got {image_size}")
    if max_pixels is not None and max_pixels < 1:
        raise UserError(f"the pixel limit must be a positive number of pixels, got {max_pixels}")
    if max_aspect is not None and not max_aspect >= 1:
        raise UserError(f"the aspect ratio limit must be at least 1 (square), got {max_aspect}")
    key = _cache_key(identity, [_stat_entry(p, y) for p, y in zip(paths, labels)], classes, image_size, max_pixels,
                     max_aspect)
    slug = re.sub(r"[^A-Za-z0-9_.]+", "_", name)
    root_hash = hashlib.sha256(identity.encode()).hexdigest()[:8]
    cache_file = cache_dir / f"{slug}-{image_size}px-{root_hash}-{key[:20]}.pt"

    cached = _read_cache(cache_file, key)
    if cached is None:
        print(f"decoding {len(paths)} images of {printable(identity)} at {image_size}x{image_size} px "
              f"(once: cached in {printable(cache_file)})", flush=True)
        images, ok, reasons = _decode_all(paths, image_size, workers or min(8, os.cpu_count() or 1), max_pixels,
                                          max_aspect)
        if not ok:
            _report_skipped(reasons, len(paths), identity)
            raise UserError(f"none of the {len(paths)} image files of {printable(identity)} could be read")
        keep = torch.tensor(ok, dtype=torch.int64)
        decoded = set(ok)
        label_tensor = torch.tensor(labels, dtype=torch.int64)
        cached = {
            "format": CACHE_FORMAT,
            "key": key,
            "images": images[keep] if len(ok) < len(paths) else images,
            "labels": label_tensor[keep],
            "classes": list(classes),
            "paths": [paths[i] for i in ok],
            "skipped": [p for i, p in enumerate(paths) if i not in decoded],
            "reasons": reasons,
            "total": len(paths),
        }
        _write_cache(cache_file, cached)
    _report_skipped(cached["reasons"], cached["total"], identity)
    return FolderImages(cached["images"], cached["labels"], cached["classes"], cached["paths"], cached["reasons"])


# ----------------------------------------------------------------------------- public API
def _names(names: Sequence[str]) -> str:
    return ", ".join(printable(n) for n in names)


def _class_files(folder: Path) -> list[Path]:
    """Every entry under `folder` with an image extension that is not a folder (regular files, links, FIFOs, ...:
    the decoder refuses all but regular files, each in a skip line), and the links to folders, not walked, named
    the same way; hidden files and folders left out. Sorted as paths (by their parts), as rglob's were."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]  # .cache, .git: never walked
        found += [here / d for d in dirnames if os.path.islink(here / d)]
        found += [here / f for f in filenames if not f.startswith(".") and Path(f).suffix.lower() in IMAGE_EXTENSIONS]
    return sorted(found)


def list_image_folder(root: str | os.PathLike,
                      classes: Sequence[str] | None = None) -> tuple[list[str], list[int], list[str]]:
    """The ImageFolder layout `root/<class>/**/<image>`: (paths, labels, classes), sorted by class, then path.

    Classes are the sorted names of root's non-hidden subfolders, or `classes` (the train split's, to
    label a test folder alike). Hidden files and folders (.DS_Store, .cache) and other extensions are ignored.
    Links and special files are listed, to be refused by the decoder in a skip line (see the module docstring).
    """
    root = Path(root)
    shown = printable(root)  # names in messages are escaped: one line each, whatever the folder is called
    if not root.is_dir():
        raise UserError(f"image folder {shown} does not exist" if not root.exists() else f"{shown} is not a folder")
    found = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not found:
        raise UserError(f"{shown} has no class folders: put the images in {shown}/<class name>/, one folder per "
                        f"class")
    if classes is None:
        classes = found
    else:
        classes = list(classes)
        missing = [c for c in classes if c not in found]
        if missing:
            raise UserError(f"{shown} has no folder for class{'es' if len(missing) > 1 else ''} "
                            f"{_names(missing)} (expected the train split's classes: {_names(classes)})")
        extra = [c for c in found if c not in classes]
        if extra:
            raise UserError(f"{shown} has class folder{'s' if len(extra) > 1 else ''} {_names(extra)} that the "
                            f"train split does not have (its classes: {_names(classes)})")
    paths, labels = [], []
    for label, name in enumerate(classes):
        folder = root / name
        files = _class_files(folder)
        if not files:
            raise UserError(f"class folder {printable(folder)} has no images ({' '.join(IMAGE_EXTENSIONS)}): add "
                            f"some or remove the folder")
        paths += [str(p) for p in files]
        labels += [label] * len(files)
    return paths, labels, classes


def load_folder(root: str | os.PathLike, image_size: int = 224, cache_dir: str | os.PathLike | None = None,
                classes: Sequence[str] | None = None, workers: int | None = None,
                max_pixels: int | None = MAX_PIXELS, max_aspect: float | None = MAX_ASPECT_RATIO) -> FolderImages:
    """An ImageFolder `root/<class>/*.jpg|jpeg|png|bmp|gif|webp` as FolderImages, squashed to image_size.

    Pass the train split's `classes` when loading a test folder, so that labels mean the same thing.
    Decoded once (with `workers` threads, default up to 8), then read from `cache_dir` (default `root/.cache`).
    A file of more than `max_pixels` pixels, or whose long side is more than `max_aspect` times its short side
    (None: no limit), is skipped and named, unread.
    """
    cache_dir = Path(cache_dir) if cache_dir is not None else Path(root) / ".cache"
    return _load_files(Path(root).name, str(Path(root).resolve()), list_image_folder(root, classes),
                       Decoding(image_size, max_pixels, max_aspect, workers), cache_dir)


def load_oxford_pets(data_dir: str | os.PathLike, split: str = "trainval", image_size: int = 224,
                     cache_dir: str | os.PathLike | None = None, workers: int | None = None,
                     max_pixels: int | None = MAX_PIXELS,
                     max_aspect: float | None = MAX_ASPECT_RATIO) -> FolderImages:
    """Oxford-IIIT Pet as cats (0) vs dogs (1), from `data_dir/oxford-iiit-pet/` (downloaded if missing).

    torchvision's OxfordIIITPet only lists the files and their species; the photos are decoded by our own
    path, like a folder's (the real set has a few CMYK and PNG-in-.jpg files). Cache: `oxford-iiit-pet/.cache`.
    """
    from torchvision.datasets import OxfordIIITPet

    if split not in PETS_SPLITS:
        raise UserError(f"Oxford-IIIT Pet has the splits {' and '.join(PETS_SPLITS)}, not {split!r}")
    base = Path(data_dir) / "oxford-iiit-pet"
    try:
        pets = OxfordIIITPet(str(data_dir), split=split, target_types="binary-category", download=True)
    except Exception as e:  # offline, a partial folder, or an archive that fails its checksum
        raise UserError(
            f"Oxford-IIIT Pet not found in {base} and could not be downloaded ({type(e).__name__}): download "
            f"images.tar.gz and annotations.tar.gz from {PETS_URL} and put them in {base}/ (torchvision unpacks "
            f"them there on the next run)") from None
    listing = ([str(p) for p in pets._images], [int(y) for y in pets._bin_labels],
               [c.lower() for c in pets.bin_classes])
    cache_dir = Path(cache_dir) if cache_dir is not None else base / ".cache"
    return _load_files(f"oxford-iiit-pet-{split}", f"{base.resolve()}:{split}", listing,
                       Decoding(image_size, max_pixels, max_aspect, workers), cache_dir)


def stratified_split(labels: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train_idx, val_idx), sorted: a seeded `fraction` of every class goes to val, so both keep the class
    proportions. val has round(fraction * N) images in all (each class gets the floor or the ceiling of its
    share), and a class never loses its last image to val."""
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be strictly between 0 and 1, got {fraction}")
    labels = labels.cpu()
    classes, counts = labels.unique(return_counts=True)
    share = counts.double() * fraction
    take = share.floor().long()
    remainder = share - take
    remainder[take + 1 >= counts] = -1  # one more would leave that class no training image
    short = round(fraction * len(labels)) - int(take.sum())
    extra = remainder.argsort(descending=True, stable=True)[:max(short, 0)]
    take[extra[remainder[extra] > 0]] += 1

    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    shuffled = labels[order]
    val = torch.cat([order[shuffled == k][:n] for k, n in zip(classes.tolist(), take.tolist())])
    in_val = torch.zeros(len(labels), dtype=torch.bool)
    in_val[val] = True
    return (~in_val).nonzero().squeeze(1), in_val.nonzero().squeeze(1)


def image_data_from_folders(name: str, train: FolderImages, test: FolderImages, *, val_size: int = 1000,
                            val_fraction: float | None = None, subset: int | None = None, seed: int = 0) -> ImageData:
    """Train and test FolderImages as common.data.ImageData: a seeded, stratified validation split of
    `val_size` images (or `val_fraction` of the train pool) out of train, mean/std measured on the rest,
    the test set as is.

    `subset` caps the train pool and the test set at that many images (stratified seeded picks), and the
    validation split shrinks to at most a tenth of the pool, as in common.data.load_data. `Split.index`
    indexes `train.paths` (train and val) or `test.paths` (test).
    """
    if train.classes != test.classes:
        raise UserError(f"the test set's classes ({_names(test.classes)}) differ from the train set's "
                        f"({_names(train.classes)})")
    pool = torch.arange(len(train))
    test_idx = torch.arange(len(test))
    if subset is not None:
        check_subset(subset)
        if subset < len(pool):
            pool = stratified_split(train.labels, subset / len(pool), seed)[1]
        if subset < len(test_idx):
            test_idx = stratified_split(test.labels, subset / len(test_idx), seed)[1]
    if val_fraction is not None:
        val_size = validation_size(name, len(pool), round(val_fraction * len(pool)), None)
    else:
        val_size = validation_size(name, len(pool), val_size, subset)
    keep, held = stratified_split(train.labels[pool], val_size / len(pool), seed)
    train_idx, val_idx = pool[keep], pool[held]

    train_split = train.as_split().take(train_idx)
    mean, std = channel_mean_std(train_split.images)
    return ImageData(name, list(train.classes), train_split, train.as_split().take(val_idx),
                     test.as_split().take(test_idx), mean, std, skipped=train.skipped + test.skipped)
