"""`make bench`: our pipeline against the original report's, measured in one run on one machine.

Five sections; every figure is the median of --repeats timed windows after a warm-up:
  folders photos from an ImageFolder at --image-size px: the original ImageFolder + per-image PIL
         transforms + DataLoader, decoding every epoch, against ours (decoded once into a cached uint8
         tensor, batched augmentation on the device); bench/folders.py;
  aug    augmentation throughput over 50k CIFAR-shaped uint8 images: the original per-image
         torchvision/PIL transforms through a DataLoader (2 workers) against our batched on-device ones;
  train  ResNet-18 training throughput, bn and ln: the original setup (fp32, NCHW, batch 128,
         DataLoader with per-image transforms) against ours (device-resident uint8, batched
         augmentation; channels_last and bf16 autocast on CUDA, NCHW fp32 on the CPU; torch.compile with --compile);
  ln     the LayerNorm penalty: ln over bn step time under the same settings, for the whole network
         and for the norm layer alone;
  epoch  epochs of `make cifar-ln` with its default recipe, through the task's own fit() (train and
         validation per epoch; the test pass, once per run, is timed on its own).

Pixels do not change speed, so the data is random uint8 of CIFAR-10's shape (generated JPEGs for folders).
The raw figures go to docs/bench-<cpu|cuda>.json, and docs/BENCHMARKS.md is rendered again from every such
JSON there.

    python bench/bench.py                       # CPU: width 16 for `train`; the full-width epoch is projected
    python bench/bench.py --device cuda --compile
"""
from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import platform
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

if __package__ in (None, ""):  # `python bench/bench.py` without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
import torchvision.transforms as T
from PIL import Image

from common.augment import cifar_train_augment
from common.cli import Parser, positive_int, run_main
from common.data import ImageData, Split, iterate_batches
from common.errors import UserError
from common.memory import PeakMemory, keep_freed_memory
from common.models import LayerNorm2d, resnet18
from common.run import REPO_ROOT, git_commit
from common.runtime import channels_last_default, device_name, place, resolve_device
from common.training import Checkpointer, autocast, evaluate, fit, prepare_input
from task_resnet_ln.results import ORIGINAL

# CIFAR-10's per-channel statistics, with which the original report normalised.
CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
CIFAR_SIZES = {"train": 45_000, "val": 5_000, "test": 10_000}  # cifar-ln's default split of CIFAR-10


# ----------------------------------------------------------------------------- measuring
def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(window: Callable[[], int], device: torch.device, repeats: int) -> dict:
    """Median images/s over `repeats` calls of window() (each returns the images it processed); then the
    peak memory of one more call, untimed: sampling the CPU's PSS costs CPU time (common.memory.PeakMemory)."""
    rates = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        n = window()
        sync(device)
        rates.append(n / (time.perf_counter() - t0))
    with PeakMemory(device) as mem:
        window()
    return {"images_per_s": round(statistics.median(rates), 1), "repeats": [round(r, 1) for r in rates],
            "peak_mib": round(mem.mib, 1)}


# ----------------------------------------------------------------------------- the two input pipelines
class OriginalStyleDataset(torch.utils.data.Dataset):
    """The original report's input pipeline: one PIL image at a time through torchvision transforms."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images = images.permute(0, 2, 3, 1).numpy()  # HWC uint8, as torchvision's CIFAR10 holds it
        self.labels = labels.tolist()
        self.transform = T.Compose([
            T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.RandomRotation(5),
            T.ToTensor(), T.Normalize(CIFAR_MEAN, CIFAR_STD),
            # CutOut 16x16: a square a quarter of the image's area, aspect 1, erased to 0
            T.RandomErasing(p=1.0, scale=(0.25, 0.25), ratio=(1.0, 1.0), value=0),
        ])

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.transform(Image.fromarray(self.images[i])), self.labels[i]


def original_epoch(images: torch.Tensor, labels: torch.Tensor, batch_size: int, device: torch.device,
                   workers: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch of the original pipeline: a shuffling DataLoader, batches copied to the device."""
    loader = torch.utils.data.DataLoader(OriginalStyleDataset(images, labels), batch_size=batch_size,
                                         shuffle=True, num_workers=workers, pin_memory=device.type == "cuda",
                                         drop_last=True)
    for x, y in loader:
        yield x.to(device, non_blocking=True), y.to(device, non_blocking=True)


def ours_epoch(split: Split, batch_size: int, g: torch.Generator, channels_last: bool | None = None
               ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch of ours: index the device-resident uint8 set, augment the batch per sample, normalise."""
    augment = cifar_train_augment()
    for x, y in iterate_batches(split, batch_size, shuffle=True, generator=g, drop_last=True):
        yield prepare_input(augment(x, g), CIFAR_MEAN, CIFAR_STD, channels_last), y


def endless(make_epoch: Callable[[], Iterator]) -> Iterator:
    while True:
        yield from make_epoch()


def random_cifar(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g),
            torch.randint(0, 10, (n,), generator=g))


# ----------------------------------------------------------------------------- sections
def bench_augmentation(images: torch.Tensor, labels: torch.Tensor, device: torch.device,
                       args: argparse.Namespace) -> dict:
    """A full pass over the images each way (an epoch's augmentation, worker start-up included)."""
    resident = Split(images.to(device), labels.to(device), torch.arange(len(labels)))
    g = torch.Generator(device).manual_seed(0)

    def original() -> int:
        return sum(len(y) for _, y in original_epoch(images, labels, args.batch_size, device, args.workers))

    def ours() -> int:
        return sum(len(y) for _, y in ours_epoch(resident, args.batch_size, g))

    ours()  # warm-up (allocator, kernels); the original's warm-up is its worker start-up, counted above
    result = {"images": len(labels), "batch_size": args.batch_size, "workers": args.workers,
              "original": measure(original, device, args.repeats), "ours": measure(ours, device, args.repeats)}
    result["ratio"] = round(result["ours"]["images_per_s"] / result["original"]["images_per_s"], 2)
    return result


def train_steps(model: nn.Module, batches: Iterator, device: torch.device, *, amp: bool, steps: int,
                warmup: int, repeats: int) -> dict:
    """Images/s of SGD steps on `model` fed by `batches`, after `warmup` steps."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)
    model.train()

    def step() -> int:
        x, y = next(batches)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return len(y)

    for _ in range(warmup):
        step()
    return measure(lambda: sum(step() for _ in range(steps)), device, repeats)


def bench_training(images: torch.Tensor, labels: torch.Tensor, device: torch.device,
                   args: argparse.Namespace) -> dict:
    """The original setup and ours, for each model; ms per step derived from the median images/s."""
    resident = Split(images.to(device), labels.to(device), torch.arange(len(labels)))
    g = torch.Generator(device).manual_seed(0)
    amp = device.type == "cuda"
    # limit: the same model stepping on one pre-made batch (augmented and normalised once): no data pipeline at
    # all, so ours / limit says how much of the model's own speed our pipeline leaves on the table.
    premade = next(ours_epoch(resident, args.batch_size, torch.Generator(device).manual_seed(1)))
    setups = {"original": lambda: endless(lambda: original_epoch(images, labels, args.batch_size, device,
                                                                 args.workers)),
              "ours": lambda: endless(lambda: ours_epoch(resident, args.batch_size, g)),
              "limit": lambda: itertools.repeat(premade)}
    ours_setups = ["ours", *(["ours+compile"] if args.compile else [])]
    runs = [(norm, False, setup) for norm in ("bn", "ln") for setup in ("original", *ours_setups, "limit")]
    runs += [("ln", True, setup) for setup in ours_setups]  # ln + Weight Standardization: cifar-ln's default
    rows = []
    for norm, ws, setup in runs:
        torch.manual_seed(0)
        model = resnet18(10, norm=norm, width=args.width, weight_std=ws).to(device)
        ours = setup != "original"
        if ours and channels_last_default(device):  # ours: channels_last on CUDA, NCHW on the CPU
            model = model.to(memory_format=torch.channels_last)
        trained = torch.compile(model) if setup == "ours+compile" else model
        batches = setups[setup if setup in setups else "ours"]()
        r = train_steps(trained, batches, device, amp=amp and ours, steps=args.steps,
                        warmup=args.warmup + (5 if setup == "ours+compile" else 0), repeats=args.repeats)
        r["ms_per_step"] = round(1000 * args.batch_size / r["images_per_s"], 1)
        rows.append({"norm": norm, "weight_std": ws, "setup": setup, **r})
        print(f"  train {norm}{'+ws' if ws else ''} {setup}: {r['images_per_s']:.0f} img/s", flush=True)
    return {"width": args.width, "batch_size": args.batch_size, "steps": args.steps, "amp_bf16": amp,
            "rows": rows}


def bench_norm_layer(device: torch.device, args: argparse.Namespace) -> dict:
    """Forward + backward of one norm layer on a ResNet-18 layer1 activation (batch, 64, 32, 32):
    bf16 under autocast on CUDA, as in training, fp32 on the CPU."""
    x0 = torch.randn(args.batch_size, 64, 32, 32, device=device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    layers = {"BatchNorm2d, channels_last": (nn.BatchNorm2d(64), True),
              "LayerNorm2d, channels_last": (LayerNorm2d(64), True),
              "LayerNorm2d, NCHW": (LayerNorm2d(64), False),
              "GroupNorm(1, C), channels_last input": (nn.GroupNorm(1, 64), True)}
    rows = []
    for name, (layer, cl) in layers.items():
        layer = layer.to(device)
        x = (x0.to(dtype).contiguous(memory_format=torch.channels_last) if cl else x0.to(dtype)).requires_grad_()

        def window(layer: nn.Module = layer, x: torch.Tensor = x) -> int:
            for _ in range(args.steps):
                with autocast(device):  # as in training: bf16 activations, fp32 norm parameters
                    out = layer(x)
                out.float().sum().backward()
            return args.steps * len(x)

        window()
        r = measure(window, device, args.repeats)
        rows.append({"layer": name, "ms_per_call": round(1000 * len(x) / r["images_per_s"], 3), **r})
    return {"shape": list(x0.shape), "dtype": str(dtype).replace("torch.", ""), "rows": rows}


def bench_epoch(device: torch.device, args: argparse.Namespace) -> dict:
    """`make cifar-ln`'s default recipe through its own build_model / train_config / fit, on random data.
    With --epoch-fraction < 1 the split sizes shrink and the times are scaled to CIFAR-10's sizes."""
    from task_resnet_ln.train import build_model, train_config
    from task_resnet_ln.train import build_parser as cifar_ln_parser

    ln_args = cifar_ln_parser().parse_args(["--epochs", str(args.epoch_epochs), *shlex.split(args.epoch_flags)])
    # Whole batches, so that scaling by image count is exact (fit() trains on full batches only).
    bs = ln_args.batch_size
    sizes = {k: bs * max(1, round(v * args.epoch_fraction / bs)) for k, v in CIFAR_SIZES.items()}
    split = {}
    for i, (k, n) in enumerate(sizes.items()):
        x, y = random_cifar(n, seed=10 + i)
        split[k] = Split(x, y, torch.arange(n))
    data = ImageData("random", [str(c) for c in range(10)], split["train"], split["val"], split["test"],
                     CIFAR_MEAN, CIFAR_STD).to(device)
    torch.manual_seed(0)
    model = place(build_model(ln_args, 10), device, None)
    trained = torch.compile(model) if args.compile else model
    augment = cifar_train_augment(ln_args.crop_padding, ln_args.cutout, ln_args.rotate, ln_args.flip)
    cfg = train_config(ln_args)
    with tempfile.TemporaryDirectory() as tmp, PeakMemory(device, interval=1.0) as mem:  # ~1% of a core
        history = fit(trained, data, cfg, Checkpointer(Path(tmp)), augment=augment,
                      generator=torch.Generator(device).manual_seed(0))
        sync(device)
        t0 = time.perf_counter()
        evaluate(trained, data.test, data.mean, data.std, cfg.eval_batch_size, cfg.channels_last)
        test_s = time.perf_counter() - t0
    epochs = [{"train_s": r["train_seconds"], "val_s": round(r["seconds"] - r["train_seconds"], 3)} for r in history]
    steady = epochs[1:] or epochs  # the first epoch pays for warm-up (and compilation)
    train_s = statistics.median(e["train_s"] for e in steady)
    val_s = statistics.median(e["val_s"] for e in steady)
    scale = {k: CIFAR_SIZES[k] / sizes[k] for k in sizes}
    epoch_s = train_s * scale["train"] + val_s * scale["val"]
    return {"model": f"ResNet-18, {ln_args.norm}{' + WS' if ln_args.weight_std else ''}, width {ln_args.width}",
            "batch_size": bs, "flags": args.epoch_flags,
            "sizes": sizes, "fraction": args.epoch_fraction, "compile": args.compile, "epochs": epochs,
            "train_s": train_s, "val_s": val_s, "test_s": round(test_s, 3),
            "cifar10_epoch_s": round(epoch_s, 2), "cifar10_test_s": round(test_s * scale["test"], 2),
            "projected": args.epoch_fraction < 1, "peak_mib": round(mem.mib, 1)}


# ----------------------------------------------------------------------------- the report
def environment(device: torch.device, argv: list[str]) -> dict:
    name = device_name(device) + ("" if device.type == "cuda" else
                                  f" ({torch.backends.cpu.get_cpu_capability()}), {torch.get_num_threads()} threads")
    return {"device": device.type, "device_name": name, "torch": torch.__version__,
            "torchvision": torchvision.__version__, "python": platform.python_version(),
            "date": dt.date.today().isoformat(), "git_commit": git_commit(),
            "malloc_keeps_freed_memory": device.type == "cpu",  # common.memory.keep_freed_memory, for both pipelines
            "command": " ".join(["python bench/bench.py", *argv])}


def _mib(r: dict) -> str:
    return f"{r['peak_mib']:,.0f}"


def render_device(res: dict) -> list[str]:
    env = res["environment"]
    mem = "peak GPU memory allocated, MiB" if env["device"] == "cuda" else "peak PSS of process + workers, MiB"
    out = [f"## {env['device'].upper()}: {env['device_name']}", "",
           f"torch {env['torch']}, torchvision {env['torchvision']}, Python {env['python']}, {env['date']}, "
           f"commit `{(env['git_commit'] or 'none')[:10]}`. Command:", "", "```", env["command"], "```", ""]
    if "folders" in res:
        from bench.folders import render_folders  # bench.folders imports this module: import it when needed

        out += render_folders(res["folders"], env["device"], mem)
    if "aug" in res:
        a = res["aug"]
        out += [f"### Augmentation throughput ({a['images']:,} CIFAR-shaped uint8 images, batch {a['batch_size']})", "",
                "RandomCrop(32, 4), horizontal flip, Rotate ±5°, CutOut 16×16 and normalisation, one full pass.", "",
                f"| pipeline | images/s (median) | repeats | {mem} |", "|---|---:|---|---:|",
                f"| original: per-image torchvision/PIL, DataLoader ({a['workers']} workers) | "
                f"{a['original']['images_per_s']:,.0f} | {a['original']['repeats']} | {_mib(a['original'])} |",
                f"| ours: batched on the {env['device'].upper()}, per-sample randomness | "
                f"{a['ours']['images_per_s']:,.0f} | "
                f"{a['ours']['repeats']} | {_mib(a['ours'])} |",
                f"| **ratio** | **{a['ratio']:.1f}×** | | |", ""]
    if "train" in res:
        t = res["train"]
        out += [f"### Training throughput (ResNet-18, width {t['width']}, batch {t['batch_size']}, "
                f"{t['steps']} SGD steps a window)", "",
                "original setup: fp32, NCHW, DataLoader with per-image transforms. ours: device-resident uint8, "
                "batched augmentation, " +
                ("channels_last, bf16 autocast." if t["amp_bf16"] else
                 "NCHW, fp32 (channels_last and bf16 are for CUDA)."),
                "",
                f"| model | setup | images/s (median) | ms/step | repeats | {mem} |", "|---|---|---:|---:|---|---:|"]
        for r in t["rows"]:
            out.append(f"| {r['norm']}{' + WS' if r['weight_std'] else ''} | {r['setup']} | {r['images_per_s']:,.0f} | "
                       f"{r['ms_per_step']} | {r['repeats']} | {_mib(r)} |")
        out += ["", "| model | ours / original | ours / limit (one pre-made batch, no data pipeline) |",
                "|---|---:|---:|"]
        for norm, (ratio, of_limit) in train_ratios(t).items():
            out.append(f"| {norm} | **{ratio:.1f}×** | {'–' if of_limit is None else f'{of_limit:.2f}'} |")
        out += ["", "### LayerNorm penalty (step time of ln over bn, same settings)", "",
                "| setup | bn ms/step | ln ms/step | ln / bn | ln + WS ms/step | ln + WS / bn |",
                "|---|---:|---:|---:|---:|---:|"]
        for setup, p in ln_penalty(t).items():
            ws = f"{p['ln_ws_ms']} | {p['ln_ws_over_bn']:.2f}×" if "ln_ws_ms" in p else "– | –"
            out.append(f"| {setup} | {p['bn_ms']} | {p['ln_ms']} | {p['ln_over_bn']:.2f}× | {ws} |")
        out.append("")
    if "norm_layer" in res:
        n = res["norm_layer"]
        out += [f"Norm layer alone, forward + backward on a {tuple(n['shape'])} {n['dtype']} activation:", "",
                "| layer | ms per call (median) | repeats, images/s |", "|---|---:|---|"]
        out += [f"| {r['layer']} | {r['ms_per_call']} | {r['repeats']} |" for r in n["rows"]]
        out.append("")
    if "epoch" in res:
        e = res["epoch"]
        how = (f"measured on {e['sizes']['train']:,} / {e['sizes']['val']:,} / {e['sizes']['test']:,} images "
               f"(train / val / test) and **projected** to CIFAR-10's 45,000 / 5,000 / 10,000 by image count"
               if e["projected"] else "measured at CIFAR-10's sizes: 45,000 / 5,000 / 10,000 images")
        flags = f", with `{e['flags']}`" if e["flags"] else " (default recipe)"
        out += [f"### Epoch of `make cifar-ln`{flags}: {e['model']}, batch {e['batch_size']}", "",
                f"Through the task's own `fit()`, {how}; median over the epochs after the first "
                f"({len(e['epochs'])} epochs run), torch.compile {'on' if e['compile'] else 'off'}.", "",
                f"| train s | validation s | **epoch (train + validation) s** | test pass s (once per run) | {mem} |",
                "|---:|---:|---:|---:|---:|",
                f"| {e['train_s'] * CIFAR_SIZES['train'] / e['sizes']['train']:.1f} | "
                f"{e['val_s'] * CIFAR_SIZES['val'] / e['sizes']['val']:.1f} | **{e['cifar10_epoch_s']:.1f}** | "
                f"{e['cifar10_test_s']:.1f} | {_mib(e)} |", "",
                f"The original report logged {ORIGINAL['epoch_s']} s per epoch on its GPU (391 iterations at 2.63 "
                "it/s, batch 128), "
                "not measured here.", ""]
    return out


def train_ratios(t: dict) -> dict[str, tuple[float, float | None]]:
    """Per model: ours / original and ours / limit images/s (ours: ours+compile where measured, else ours)."""
    by = {(r["norm"], r["weight_std"], r["setup"]): r["images_per_s"] for r in t["rows"]}
    ratios = {}
    for norm in ("bn", "ln"):
        best = by.get((norm, False, "ours+compile")) or by.get((norm, False, "ours"))
        if best and (norm, False, "original") in by:
            limit = by.get((norm, False, "limit"))
            ratios[norm] = (best / by[(norm, False, "original")], best / limit if limit else None)
    return ratios


def ln_penalty(t: dict) -> dict[str, dict]:
    ms = {(r["norm"], r["weight_std"], r["setup"]): r["ms_per_step"] for r in t["rows"]}
    out = {}
    for setup in dict.fromkeys(r["setup"] for r in t["rows"]):
        if ("bn", False, setup) in ms and ("ln", False, setup) in ms:
            bn = ms[("bn", False, setup)]
            p = {"bn_ms": bn, "ln_ms": ms[("ln", False, setup)], "ln_over_bn": ms[("ln", False, setup)] / bn}
            if ("ln", True, setup) in ms:
                p.update(ln_ws_ms=ms[("ln", True, setup)], ln_ws_over_bn=ms[("ln", True, setup)] / bn)
            out[setup] = p
    return out


def render_markdown(results: list[dict]) -> str:
    lines = ["# Benchmarks", "",
             "Written by `make bench` (`bench/bench.py`) from the raw figures in `docs/bench-<device>.json`; "
             "do not edit by hand. Every figure is the median of several timed windows after a warm-up (the "
             "repeats are listed), on random CIFAR-shaped data or generated JPEGs (pixels do not change speed), "
             "measured in one run on one machine, so the ratios compare like with like. Peak memory comes "
             "from one more window, untimed (on the CPU, sampling the PSS costs CPU time); the epoch section "
             "samples it once a second while it runs. Machines differ: the same run can take twice as long on a "
             "CPU with AVX2 only as on one with AVX-512, so compare ratios, not times.", "", SECTIONS_TABLE, ""]
    for res in results:
        lines += render_device(res)
    if not any(r["environment"]["device"] == "cuda" for r in results):
        lines += ["## GPU: not measured yet", "",
                  "On a CUDA machine, `make bench DEVICE=cuda ARGS=--compile` adds `docs/bench-cuda.json` and its "
                  "section here (`make gpu-check` runs a shortened one among its other GPU questions). Goals on an "
                  "H100: ResNet-18 bn training ≥ 20,000 img/s, `make cifar-ln` ≤ 6 s per epoch including "
                  "validation, ours ≥ 10× the original-style pipeline.", ""]
    return "\n".join(lines) + "\n" + NOTES


SECTIONS_TABLE = """| section | the original's way | ours |
|---|---|---|
| folder photos at 224 px, generated JPEGs | `ImageFolder`, PIL RandomResizedCrop(224), flip, ToTensor, Normalize per \
image, `DataLoader(num_workers=2)`, decoding every epoch | the cached uint8 tensor (`common/folders.py`), batched \
per-sample crop + flip, normalise |
| augmentation, CIFAR-shaped | per-image torchvision/PIL RandomCrop(32, 4), flip, Rotate ±5°, CutOut, Normalize \
through a `DataLoader(num_workers=2)` | `common.augment` on the device-resident uint8 batch, randomness per sample |
| training, ResNet-18 bn and ln | fp32, NCHW, batch 128, that DataLoader | device-resident data, batched \
augmentation; channels_last and bf16 autocast on CUDA; `--compile` optional |
| limit | | the same model stepping on one batch made once (augmented and normalised): no data pipeline at all, \
so ours / limit says how much of the model's own speed our pipeline leaves on the table |
| LayerNorm penalty | ln over bn step time under the same settings, whole network and the norm layer alone | |
| epoch of `make cifar-ln` | | the task's own `build_model`, `train_config` and `fit()` with its defaults: train + \
validation per epoch; the test pass, once per run, timed on its own |

On the CPU the training section uses width 16 (`--width`), and the full-width cifar-ln epoch runs on 4% of
CIFAR-10's split sizes and is **projected** by image count (`--epoch-fraction 1` runs it whole). On CUDA both run
full size by default."""

NOTES = """## Notes: what the figures mean, and what we learned measuring

**The decoder.** torchvision 0.29 deprecates its image decoders. TorchCodec, their named successor, decodes JPEG,
PNG, GIF and WebP without a system FFmpeg, but not BMP, and it has no EXIF orientation, no header-only size and no
reduced-scale JPEG decode. Pillow has all of these and reads every format we accept, so `common/folders.py`
decodes with Pillow: slower on small photos, faster on phone photos (DCT scaling; the decode table above), paid
once and then cached, and its memory bounded by a header check (`--max-pixels`, `--max-aspect`).

**Folder photos on 2 CPU cores.** The 10× goal is not met there, and we do not expect it to be: the original
spends its time per image on the JPEG decode, the PIL resize and the conversion to float; ours spends it
interpolating and writing each 224 × 224 × 3 float image, and no per-image Python is left to remove. On a GPU the
same batched operations run on the device while the CPU decodes nothing: that is where the design pays.

**Fresh memory costs more than arithmetic.** glibc gives every freed block over 32 MiB back to the operating
system, so each 77 MB batch of 224 px floats was page-faulted in again. CPU runs keep freed memory for reuse
(`common/memory.py`, `keep_freed_memory()`, called by `common.runtime.start` on the CPU; a test checks both
behaviours), as PyTorch's caching allocator does on CUDA. The crop resamples 4 images at a time on the CPU, so
they stay in cache (one `grid_sample` per chunk, the flip folded into its grid); on CUDA the whole batch is one
chunk.

**Measuring memory can cost more than what it measures.** Reading a process's PSS from `/proc` walks its page
tables, which takes tens of milliseconds for a few GB. So no timed window samples it: the peak memory comes from
one more, untimed window (the epoch section samples once a second).

**Run the bench on a quiet machine.** With another busy process, the OpenMP threads of one process wait on each
other at every small operation (`NPROC=1` avoids it when you must share the cores).

**channels_last is for CUDA.** torch 2.14.1's oneDNN backward of a slim channels_last convolution crashes or
hangs on AVX2 CPUs, so the CPU default and every CPU figure here is NCHW ([docs/RELIABILITY.md](RELIABILITY.md)).
On CUDA, `LayerNorm2d` does not call `F.group_norm`, which forces NCHW-contiguous tensors (pytorch/pytorch#111824);
it uses a closed-form autograd function that keeps channels_last (`_LayerNorm2dFn` in `common/models.py`), tested
against `nn.GroupNorm(1, C)` in values and gradients. The norm-layer table shows whether it stays within 1.5× of
BatchNorm.

**Full batches only.** `fit()` trains on full batches: every step has the same size, and every rank of a DDP run
takes the same number of steps.
"""


# ----------------------------------------------------------------------------- CLI
# folders first: it measures process memory, which the 50k CIFAR-shaped images of aug and train would inflate
SECTIONS = ("folders", "aug", "train", "norm_layer", "epoch")
FOLDER_IMAGES = 4000


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="bench/bench.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="auto: cuda if torch sees a GPU, else cpu")
    p.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated subset")
    p.add_argument("--images", type=positive_int, default=50_000, help="CIFAR-shaped images for aug and train")
    p.add_argument("--folder-images", type=positive_int, default=FOLDER_IMAGES,
                   help="generated JPEG photos for the folders section")
    p.add_argument("--image-size", type=positive_int, default=224,
                   help="side in px of the batches the folders section delivers (and of ours' cache)")
    p.add_argument("--batch-size", type=positive_int, default=128,
                   help="images per batch in every section but epoch (that one runs cifar-ln's own)")
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers of the original pipeline")
    p.add_argument("--width", type=positive_int, default=None,
                   help="ResNet-18 base width (default: 64 on CUDA, 16 on the CPU)")
    p.add_argument("--steps", type=positive_int, default=None,
                   help="SGD steps per timed window (default: 50 CUDA, 10 CPU)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps first (default: 10 CUDA, 3 CPU)")
    p.add_argument("--repeats", type=positive_int, default=3, help="timed windows; the median is reported")
    p.add_argument("--compile", action="store_true", help="also measure ours under torch.compile")
    p.add_argument("--epoch-epochs", type=positive_int, default=2, help="epochs of the cifar-ln run (first is warm-up)")
    p.add_argument("--epoch-fraction", type=float, default=None,
                   help="share of CIFAR-10's split sizes to run the epoch on, then scale (default: 1 CUDA, 0.04 CPU)")
    p.add_argument("--epoch-flags", default="",
                   help="extra cifar-ln flags for the epoch section, e.g. '--width 8' (default: none)")
    p.add_argument("--out", default=str(REPO_ROOT / "docs"),
                   help="folder for bench-<device>.json and BENCHMARKS.md (default: docs/ of the repository)")
    return p


def run(args: argparse.Namespace, argv: list[str]) -> int:
    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    if not cuda:
        keep_freed_memory()  # as every CPU run of ours does (common.cli.start); forked DataLoader workers inherit it
    sections = [s for s in args.sections.split(",") if s]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise UserError(f"--sections: unknown {', '.join(sorted(unknown))}; choose from {', '.join(SECTIONS)}")
    args.width = args.width or (64 if cuda else 16)
    args.steps = args.steps or (50 if cuda else 10)
    args.warmup = args.warmup if args.warmup is not None else (10 if cuda else 3)
    args.epoch_fraction = args.epoch_fraction or (1.0 if cuda else 0.04)
    if not 0 < args.epoch_fraction <= 1:
        raise UserError(f"--epoch-fraction must be in (0, 1], got {args.epoch_fraction}")
    if args.batch_size > args.images:
        raise UserError(f"--batch-size {args.batch_size} is larger than --images {args.images}")
    if "folders" in sections and args.batch_size > args.folder_images:
        raise UserError(f"--batch-size {args.batch_size} is larger than --folder-images {args.folder_images}")
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create {out}: {e.strerror}") from None

    result: dict = {"environment": environment(device, argv), "settings": vars(args).copy()}
    if {"aug", "train"} & set(sections):
        images, labels = random_cifar(args.images, seed=0)
    print(f"bench on {result['environment']['device_name']}: {', '.join(sections)}", flush=True)
    for name in sections:
        t0 = time.perf_counter()
        if name == "folders":
            from bench.folders import bench_folders

            result[name] = bench_folders(device, args)
        elif name == "aug":
            result[name] = bench_augmentation(images, labels, device, args)
        elif name == "train":
            result[name] = bench_training(images, labels, device, args)
        elif name == "norm_layer":
            result[name] = bench_norm_layer(device, args)
        else:
            result[name] = bench_epoch(device, args)
        print(f"{name}: done in {time.perf_counter() - t0:.0f} s", flush=True)

    json_path = out / f"bench-{device.type}.json"
    json_path.write_text(json.dumps(result, indent=2) + "\n")
    results = [json.loads(p.read_text()) for p in sorted(out.glob("bench-*.json"))]
    (out / "BENCHMARKS.md").write_text(render_markdown(results))
    print("\n".join(render_device(result)))
    print(f"-> {json_path} and {out / 'BENCHMARKS.md'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    return run_main(build_parser(), lambda args: run(args, argv), argv)


if __name__ == "__main__":
    sys.exit(main())
