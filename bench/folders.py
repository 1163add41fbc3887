"""`make bench`, section `folders`: photos from an ImageFolder, the original-style pipeline against ours.

Both deliver what the model receives at --image-size px (224 by default): RandomResizedCrop, a horizontal
flip and ImageNet normalisation, as float batches of --batch-size on the device, over whole shuffled epochs.

  original  torchvision.datasets.ImageFolder with per-image PIL transforms and a DataLoader (--workers
            worker processes, started afresh each epoch as the original did): every epoch decodes every
            JPEG and resizes it again;
  ours      common.folders.load_folder decodes each file once, squashes it to S x S and caches the uint8
            (N, 3, S, S) tensor on disk; the tensor moves to the device once, and each epoch indexes it
            (common.data.iterate_batches) and augments whole batches there (common.augment).

Ours' one-off costs are reported on their own: the first load_folder (cache miss: decode and resize every
file) and the second (cache hit: read the tensor back). The one-off decode is also compared, on the same files
and threads, the two decoders: torchvision.io's decode_image then a tensor resize (deprecated since
torchvision 0.29) against Pillow with JPEG DCT scaling, then the same resize (common.folders.decode_rgb), on
the photos and on up to PHONE_PHOTOS phone-size JPEGs (PHONE_SIDES px; one per 25 --folder-images, so tiny
runs have none), where the reduced-scale decode matters most. The photos are --folder-images JPEGs written to a
temporary folder: smoothed noise at photo-like sizes (320 to 500 px a side, not square), which compresses
like a photo rather than like a flat colour; pixels do not change speed, JPEG sizes do a little.
"""
from __future__ import annotations

import argparse
import itertools
import math
import os
import statistics
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import torchvision
import torchvision.transforms as T
from PIL import Image

from bench.bench import measure, sync
from common.augment import random_resized_crop
from common.data import Split, iterate_batches
from common.folders import decode_rgb, load_folder
from common.memory import PeakMemory
from common.training import prepare_input

# ImageNet's per-channel statistics, with which photo pipelines (and pretrained ResNets) normalise.
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
PHOTO_SIDES = (320, 500)  # photo width and height range at 224 px; scaled up with larger --image-size
WARMUP_BATCHES = 3        # untimed batches of each pipeline first (allocator, imports, first-call set-up)
GOAL_CPU = 10.0           # ours at least 10x the original-style pipeline on the CPU (not met on 2 cores: BENCHMARKS.md)
PHONE_PHOTOS, PHONE_SIDES = 16, (3000, 2000)  # a 6 MP phone photo, for the decode comparison


# ----------------------------------------------------------------------------- the photos
def smooth_noise_photo(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """An RGB image that JPEG compresses roughly as a photo does: blobs at two scales plus fine grain."""
    pixels = rng.integers(-8, 9, (height, width, 3), dtype=np.int16) + 128
    for cell, amplitude in ((48, 70), (12, 35)):  # amplitude out of 128
        small = rng.integers(0, 256, (math.ceil(height / cell) + 1, math.ceil(width / cell) + 1, 3), dtype=np.uint8)
        smooth = np.asarray(Image.fromarray(small).resize((width, height), Image.BICUBIC), dtype=np.int16)
        pixels += ((smooth - 128) * amplitude) >> 7
    return Image.fromarray(pixels.clip(0, 255).astype(np.uint8))


def write_photo_folder(root: Path, n: int, image_size: int = 224, classes: int = 2, seed: int = 0) -> dict:
    """`root/class<k>/<i>.jpg`: n JPEGs (quality 90) spread evenly over `classes` folders, each side drawn
    uniformly from PHOTO_SIDES (scaled by image_size / 224 when that is larger). Returns what was written."""
    rng = np.random.default_rng(seed)
    lo, hi = (round(s * max(1.0, image_size / 224)) for s in PHOTO_SIDES)
    t0 = time.perf_counter()
    widths, heights, sizes = [], [], []
    for i in range(n):
        width, height = (int(s) for s in rng.integers(lo, hi + 1, 2))
        if width == height:  # photos are rarely square; the original's crop and our squash both see the aspect
            height -= 1
        folder = root / f"class{i % classes}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{i:06d}.jpg"
        smooth_noise_photo(rng, width, height).save(path, "JPEG", quality=90)
        widths.append(width)
        heights.append(height)
        sizes.append(path.stat().st_size)
    return {"files": n, "classes": classes, "width_range": [min(widths), max(widths)],
            "height_range": [min(heights), max(heights)], "mean_width": round(statistics.mean(widths)),
            "mean_height": round(statistics.mean(heights)), "mean_kib": round(statistics.mean(sizes) / 1024, 1),
            "write_s": round(time.perf_counter() - t0, 2)}


# ----------------------------------------------------------------------------- the one-off decode
def torchvision_io_decode(path: Path, size: int) -> torch.Tensor:
    """The torchvision.io decode, which common.folders does not use (its JPEG path): the whole file at full size,
    then an antialiased tensor resize."""
    from torchvision.io import ImageReadMode, decode_image
    from torchvision.transforms.v2 import functional as TF

    data = torch.frombuffer(bytearray(path.read_bytes()), dtype=torch.uint8)
    image = decode_image(data, mode=ImageReadMode.RGB, apply_exif_orientation=True)
    return TF.resize(image, [size, size], antialias=True)


def pillow_decode(path: Path, size: int) -> torch.Tensor:
    """The decode common.folders uses: Pillow, a large JPEG at reduced scale, then the same tensor resize."""
    return decode_rgb(path, size=size)


def time_decodes(paths: list[Path], size: int, threads: int) -> dict:
    """images/s of both decoders over the same files and threads, each after an untimed pass (page cache)."""
    out = {}
    for name, decode in (("torchvision.io", torchvision_io_decode), ("pillow", pillow_decode)):
        with warnings.catch_warnings(), ThreadPoolExecutor(threads) as pool:
            warnings.simplefilter("ignore", DeprecationWarning)  # torchvision.io's, on every call
            list(pool.map(decode, paths[:threads], [size] * threads))
            t0 = time.perf_counter()
            list(pool.map(decode, paths, [size] * len(paths)))
            seconds = time.perf_counter() - t0
        out[name] = {"seconds": round(seconds, 3), "images_per_s": round(len(paths) / seconds, 1)}
    out["speedup"] = round(out["pillow"]["images_per_s"] / out["torchvision.io"]["images_per_s"], 2)
    return out


def write_phone_photos(root: Path, n: int, seed: int = 1) -> dict:
    """n JPEGs of PHONE_SIDES px (quality 90), alternately landscape and portrait."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    sizes = []
    for i in range(n):
        width, height = PHONE_SIDES if i % 2 == 0 else PHONE_SIDES[::-1]
        path = root / f"{i:04d}.jpg"
        smooth_noise_photo(rng, width, height).save(path, "JPEG", quality=90)
        sizes.append(path.stat().st_size)
    return {"files": n, "width": PHONE_SIDES[0], "height": PHONE_SIDES[1],
            "mean_kib": round(statistics.mean(sizes) / 1024, 1)}


# ----------------------------------------------------------------------------- the two pipelines
def original_transform(image_size: int) -> T.Compose:
    return T.Compose([T.RandomResizedCrop(image_size), T.RandomHorizontalFlip(), T.ToTensor(),
                      T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


def original_folder_epoch(root: Path, image_size: int, batch_size: int, device: torch.device,
                          workers: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch of the original: ImageFolder (PIL decode), per-image transforms, a shuffling DataLoader
    whose workers start with the epoch, batches copied to the device."""
    dataset = torchvision.datasets.ImageFolder(str(root), transform=original_transform(image_size))
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers,
                                         pin_memory=device.type == "cuda", drop_last=True)
    for x, y in loader:
        yield x.to(device, non_blocking=True), y.to(device, non_blocking=True)


def ours_folder_epoch(split: Split, image_size: int, batch_size: int, g: torch.Generator
                      ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch of ours: index the device-resident uint8 tensor, then per-sample RandomResizedCrop and
    flip in one resampling pass over the whole batch, normalised to float as fit() feeds the model
    (common.training.prepare_input)."""
    for x, y in iterate_batches(split, batch_size, shuffle=True, generator=g, drop_last=True):
        x = random_resized_crop(x, g, image_size, flip_p=0.5)
        yield prepare_input(x, IMAGENET_MEAN, IMAGENET_STD), y


def _delivered(epoch: Iterator[tuple[torch.Tensor, torch.Tensor]], batches: int | None = None) -> int:
    """Images delivered by an epoch (or by its first `batches` batches); measure() syncs the device."""
    return sum(len(y) for _, y in itertools.islice(epoch, batches))


# ----------------------------------------------------------------------------- the section
def bench_folders(device: torch.device, args: argparse.Namespace) -> dict:
    """Write the photos, time the original over whole epochs, then ours: decode once, cache hit, epochs."""
    size, bs, n = args.image_size, args.batch_size, args.folder_images
    decode_threads = min(8, os.cpu_count() or 1)  # load_folder's default, named here so that it is reported
    with tempfile.TemporaryDirectory(prefix="bench-folders-") as tmp:
        # the cache outside root: ImageFolder would take a .cache folder for a class
        root, cache = Path(tmp) / "images", Path(tmp) / "cache"
        photos = write_photo_folder(root, n, size)
        print(f"  folders: {n} JPEGs, about {photos['mean_width']}x{photos['mean_height']} px, "
              f"{photos['mean_kib']} KiB each, written in {photos['write_s']:.0f} s", flush=True)
        base_mib = round(PeakMemory(device)._sample(), 1) if device.type == "cpu" else 0.0

        def original() -> int:
            return _delivered(original_folder_epoch(root, size, bs, device, args.workers))

        _delivered(original_folder_epoch(root, size, bs, device, args.workers), WARMUP_BATCHES)
        original_result = measure(original, device, args.repeats)
        print(f"  folders original: {original_result['images_per_s']:.0f} img/s", flush=True)

        decoders = {"photos": time_decodes(sorted(root.rglob("*.jpg")), size, decode_threads)}
        if n // 25:
            phone = write_phone_photos(Path(tmp) / "phone", min(PHONE_PHOTOS, n // 25))
            decoders["phone"] = {**time_decodes(sorted((Path(tmp) / "phone").glob("*.jpg")), size,
                                                decode_threads), **phone}
        for which, d in decoders.items():
            print(f"  folders decode ({which}): torchvision.io {d['torchvision.io']['images_per_s']:.0f} img/s, "
                  f"pillow {d['pillow']['images_per_s']:.0f} img/s ({d['speedup']:.1f}x)", flush=True)

        t0 = time.perf_counter()  # timed without the memory sampler, which costs CPU time
        first = load_folder(root, size, cache_dir=cache, workers=decode_threads)
        decode_s = time.perf_counter() - t0
        decoded = len(first)
        del first
        with PeakMemory(torch.device("cpu"), interval=0.25) as mem:  # decoding runs on the CPU whatever the device
            load_folder(root, size, cache_dir=Path(tmp) / "cache-for-memory", workers=decode_threads)
        stamps = {p: p.stat().st_mtime_ns for p in cache.glob("*.pt")}
        t0 = time.perf_counter()
        photos_ours = load_folder(root, size, cache_dir=cache, workers=decode_threads)
        hit_s = time.perf_counter() - t0
        hit = bool(stamps) and stamps == {p: p.stat().st_mtime_ns for p in cache.glob("*.pt")}

        sync(device)
        t0 = time.perf_counter()
        split = Split(photos_ours.images.to(device), photos_ours.labels.to(device),
                      torch.arange(len(photos_ours), device=device))
        sync(device)
        to_device_s = time.perf_counter() - t0
        del photos_ours
        g = torch.Generator(device).manual_seed(0)

        def ours() -> int:
            return _delivered(ours_folder_epoch(split, size, bs, g))

        _delivered(ours_folder_epoch(split, size, bs, g), WARMUP_BATCHES)
        ours_result = measure(ours, device, args.repeats)
        print(f"  folders ours: {ours_result['images_per_s']:.0f} img/s", flush=True)
    return {"images": n, "image_size": size, "batch_size": bs, "workers": args.workers, "photos": photos,
            "base_mib": base_mib, "original": original_result,
            "decode_once": {"seconds": round(decode_s, 3), "images_per_s": round(decoded / decode_s, 1),
                            "images": decoded, "threads": decode_threads, "peak_mib": round(mem.mib, 1)},
            "decoders": decoders, "cache_hit": {"seconds": round(hit_s, 3), "hit": hit},
            "to_device_s": round(to_device_s, 3), "resident_mib": round(split.images.nbytes / 2**20, 1),
            "ours": ours_result,
            "ratio": round(ours_result["images_per_s"] / original_result["images_per_s"], 2),
            "goal_cpu": GOAL_CPU}


# ----------------------------------------------------------------------------- the report
def render_folders(f: dict, device: str, mem: str) -> list[str]:
    """The section's table in docs/BENCHMARKS.md; `mem` names what the memory column measures."""
    p, s, d = f["photos"], f["image_size"], f["decode_once"]
    goal = ""
    if device == "cpu":
        goal = f" (goal on the CPU: ≥ {f['goal_cpu']:.0f}×, {'met' if f['ratio'] >= f['goal_cpu'] else 'not met'})"
    lines = [
        f"### Folder photos at {s} px ({f['images']:,} JPEGs in {p['classes']} class folders, "
        f"batch {f['batch_size']})", "",
        f"Generated photos, {p['width_range'][0]}–{p['width_range'][1]} × {p['height_range'][0]}–"
        f"{p['height_range'][1]} px (mean {p['mean_width']} × {p['mean_height']}, {p['mean_kib']} KiB). "
        f"Both deliver float batches to the model: RandomResizedCrop({s}), horizontal flip, normalisation, "
        f"whole shuffled epochs.", "",
        f"| pipeline | images/s (median) | repeats | {mem} |", "|---|---:|---|---:|",
        f"| original: ImageFolder, PIL transforms per image, DataLoader ({f['workers']} workers); decodes and "
        f"resizes every epoch | {f['original']['images_per_s']:,.0f} | {f['original']['repeats']} | "
        f"{f['original']['peak_mib']:,.0f} |",
        f"| ours: cached uint8 ({f['images']:,}, 3, {s}, {s}) on the {'GPU' if device == 'cuda' else 'CPU'}, "
        f"batched per-sample crop, flip, normalisation | {f['ours']['images_per_s']:,.0f} | {f['ours']['repeats']} | "
        f"{f['ours']['peak_mib']:,.0f} |",
        f"| **ratio** | **{f['ratio']:.1f}×**{goal} | | |", "",
        f"Ours pays once: decoding and squashing the {d['images']:,} files took {d['seconds']:.2f} s "
        f"({d['images_per_s']:,.0f} images/s, {d['threads']} threads, peak PSS {d['peak_mib']:,.0f} MiB); "
        f"every later run reads the {f['resident_mib']:,.0f} MiB cache back in {f['cache_hit']['seconds']:.2f} s"
        f"{'' if f['cache_hit']['hit'] else ' (**the second load did not hit the cache**)'}."
        + (f" The process held {f['base_mib']:,.0f} MiB before the section began." if f["base_mib"] else ""), ""]
    if "decoders" in f:  # results from before the decoder comparison have none
        dec = f["decoders"]
        lines += [f"The one-off decode to {s} × {s} px, torchvision.io against Pillow (ours), same files, "
                  f"{d['threads']} threads (images/s):", "",
                  "| files | torchvision.io, full decode + tensor resize | Pillow, JPEG DCT scaling + "
                  "tensor resize (ours) | ratio |", "|---|---:|---:|---:|"]
        rows = [(f"the {f['images']:,} photos above", dec["photos"])]
        if "phone" in dec:
            ph = dec["phone"]
            rows.append((f"{ph['files']} phone-size JPEGs, {ph['width']} × {ph['height']} px, "
                         f"{ph['mean_kib']:,.0f} KiB", ph))
        for label, r in rows:
            lines.append(f"| {label} | {r['torchvision.io']['images_per_s']:,.1f} | {r['pillow']['images_per_s']:,.1f} "
                         f"| **{r['speedup']:.1f}×** |")
        lines.append("")
    return lines
