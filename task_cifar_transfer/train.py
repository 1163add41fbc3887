"""ResNet-18 on CIFAR-10 four ways (the ELL 793 assignment): (a) our ResNet-18 from scratch with a modern
recipe, (b) torchvision's resnet18 from scratch and from ImageNet weights (frozen or not, new heads),
(c) an augmentation and dropout study on a tiny CIFAR-10, (d) activation maps; then one comparison table.

    python task_cifar_transfer/train.py                          # all parts: a, b, c, then d on the (a) model
    python task_cifar_transfer/train.py --part b --resize 32 224 # transfer at native 32 px and upsampled
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

if __package__ in (None, ""):  # `python task_cifar_transfer/train.py` without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
import torch.nn as nn

from common import distributed
from common.augment import cifar_train_augment
from common.checkpoint import load_checkpoint
from common.cli import add_sgd_flags, base_parser, image_size_int, int_in, non_negative_float, positive_int, run_main
from common.data import ImageData, balanced_subset, load_data
from common.errors import UserError
from common.models import resnet18
from common.plots import bar_chart, labelled_rows
from common.run import RunFolder, train_and_report
from common.runtime import start
from common.tables import percent, write_table
from common.training import TrainConfig, evaluate, fit
from common.weights import imagenet_state_dict, weights_record
from task_cifar_transfer.activations import save_activation_maps
from task_cifar_transfer.augstudy import AUGMENTATIONS, DROPOUTS, study_augmentation
from task_cifar_transfer.transfer import CONFIGS, IMAGENET_MEAN, IMAGENET_STD, WEIGHTS, build_transfer_model

TASK = "task_cifar_transfer"
PARTS = ("a", "b", "c")
# --epochs, --batch-size and --lr default per part (the issue: 50 epochs for (a), 30 for (b)).
PART_DEFAULTS = {"a": {"epochs": 50, "batch_size": 512, "lr": 0.4},
                 "b": {"epochs": 30, "batch_size": 128, "lr": 0.02},
                 "c": {"epochs": 30, "batch_size": 128, "lr": 0.05}}
ORIGINAL_SCRATCH_ACC = 0.8735  # part (a) of the report: "Accuracy: 8735/10000 (87%)" after 50 epochs


def build_parser() -> argparse.ArgumentParser:
    p = base_parser(TASK, __doc__.split("\n\n")[0], epochs=None, batch_size=None, lr=None)
    p.epilog = ("--epochs, --batch-size and --lr default per part: " +
                "; ".join(f"({k}) {v['epochs']}, {v['batch_size']}, {v['lr']}" for k, v in PART_DEFAULTS.items()) +
                ". --out DIR gets one folder per part (DIR/a, DIR/b, DIR/c, DIR/d), then DIR/comparison.md "
                "and DIR/metrics.json.")
    p.add_argument("--part", choices=(*PARTS, "all"), default="all",
                   help="all: a, b, c, then the activation maps (d) of the (a) model, and the comparison table")
    o = p.add_argument_group("optimiser and schedule (every part): SGD, warm-up, cosine to zero")
    add_sgd_flags(o, warmup_epochs=2.0, label_smoothing=0.1)
    a = p.add_argument_group("parts (a) and (b): model and augmentation (batched, per sample, on the device)")
    a.add_argument("--width", type=int_in(1, 512), default=64, help="base channels of our ResNet-18 in (a) and (c)")
    a.add_argument("--crop-padding", type=int_in(0, 64), default=4, help="RandomCrop(32, padding); 0 = off")
    a.add_argument("--flip", action=argparse.BooleanOptionalAction, default=True)
    a.add_argument("--cutout", type=int_in(0, 1024), default=16, help="CutOut square side; 0 = off")
    a.add_argument("--misclassified", type=int_in(1, 200), default=20, help="images in the report grids")
    b = p.add_argument_group("part (b): transfer learning")
    b.add_argument("--configs", type=int, nargs="+", choices=sorted(CONFIGS), default=sorted(CONFIGS),
                   help="1 scratch, 2 pretrained, 3 and 4 pretrained + frozen + new head (see README)")
    b.add_argument("--resize", type=image_size_int, nargs="+", default=[32],
                   help="input sizes to run each config at; e.g. 32 224 (bilinear upsampling on the device)")
    c = p.add_argument_group("part (c): augmentation and dropout study on a tiny, class-balanced subset")
    c.add_argument("--tiny-train", type=positive_int, default=5000, help="train images (balanced over classes)")
    c.add_argument("--tiny-test", type=positive_int, default=1000, help="test images, and as many validation images")
    c.add_argument("--augmentations", nargs="+", choices=AUGMENTATIONS, default=list(AUGMENTATIONS))
    c.add_argument("--dropouts", type=non_negative_float, nargs="+", default=list(DROPOUTS),
                   help="dropout before the final linear layer, with no augmentation")
    d = p.add_argument_group("part (d): activation maps")
    d.add_argument("--activation-image", type=int, default=0, help="position of the image in the test split")
    return p


def part_args(args: argparse.Namespace, part: str) -> dict:
    """The args that differ in one part: --epochs, --batch-size and --lr from its defaults where not given."""
    return {**{k: v for k, v in PART_DEFAULTS[part].items() if getattr(args, k) is None}, "part": part}


def train_config(args: argparse.Namespace, save_checkpoints: bool = True) -> TrainConfig:
    return TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, momentum=args.momentum,
                       nesterov=args.nesterov, weight_decay=args.weight_decay, warmup_epochs=args.warmup_epochs,
                       label_smoothing=args.label_smoothing, channels_last=args.channels_last, schedule="cosine",
                       save_checkpoints=save_checkpoints)


def build_model(args: argparse.Namespace, num_classes: int, load_pretrained: bool = False) -> nn.Module:
    """The model of a part-(a) or part-(b) run from its saved args (eval.py rebuilds it this way)."""
    if args.part == "b":
        return build_transfer_model(CONFIGS[args.config], num_classes, args.resize, load_pretrained)
    return resnet18(num_classes, norm="bn", width=args.width)


def restore_model(ckpt: dict, num_classes: int, device: torch.device) -> tuple[nn.Module, argparse.Namespace]:
    """The trained model of a checkpoint written by train_and_test, and the args it was trained with."""
    saved = argparse.Namespace(**ckpt["args"])
    model = build_model(saved, num_classes).to(device)
    model.load_state_dict(ckpt["model"])
    if saved.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model, saved


def gradcam_layer(args: argparse.Namespace) -> str:
    """layer4.1, except for torchvision's model below 128 px: its stem leaves layer4 at 1x1 there,
    where Grad-CAM has nothing to show."""
    return "layer2.1" if args.part == "b" and args.resize < 128 else "layer4.1"


def train_and_test(model: nn.Module, data: ImageData, run: RunFolder, device: torch.device, title: str) -> dict:
    """One complete run folder of part (a) or one config of (b), through the common pipeline."""
    args = run.args
    return train_and_report(model, data, run, device=device, cfg=train_config(args),
                            augment=cifar_train_augment(args.crop_padding, args.cutout, rotate_degrees=0.0,
                                                        flip=args.flip),
                            title=title, gradcam_layer=gradcam_layer(args), n_images=args.misclassified)


# ----------------------------------------------------------------------------- (a) scratch
def run_scratch(run: RunFolder, data: ImageData, device: torch.device) -> dict:
    run.create(device)
    model = build_model(run.args, len(data.classes))
    return train_and_test(model, data, run, device, f"(a) ResNet-18 (BN) from scratch on {run.args.dataset}")


# ----------------------------------------------------------------------------- (b) transfer
def run_transfer(part: RunFolder, data: ImageData, device: torch.device) -> dict:
    """Each config at each --resize size, one complete run folder each, then one table."""
    args, rows = part.args, []
    part.create(device)
    for size in args.resize:
        for number in args.configs:
            config = CONFIGS[number]
            run = part.sub(f"config{number}-{size}px", config=number, resize=size)
            if run.complete:  # kept from the experiment that --resume continues
                m = run.metrics()
            else:
                run.create(device)
                model = build_model(run.args, len(data.classes), load_pretrained=True)
                # ImageNet weights expect ImageNet's normalisation
                run_data = replace(data, mean=IMAGENET_MEAN, std=IMAGENET_STD) if config.pretrained else data
                m = train_and_test(model, run_data, run, device, f"(b) config {number} at {size} px on {args.dataset}")
            rows.append({"config": number, "size_px": size, "setup": config.setup,
                         "trainable_params": m["trainable_params"], "train_acc": m["final_train_acc"],
                         "best_val_acc": m["best_val_acc"], "test_acc": m["test_acc"],
                         "original_test_acc (CIFAR-10, 32 px)": config.original_test_acc})
    table = write_table(part.path / "results", rows, {k: percent for k in (
        "train_acc", "best_val_acc", "test_acc", "original_test_acc (CIFAR-10, 32 px)")})
    print(f"(b) transfer learning on {args.dataset} (train_acc: last epoch, augmented):\n{table}", flush=True)
    return part.finish({"results": rows})


# ----------------------------------------------------------------------------- (c) augmentation study
def tiny_dataset(data: ImageData, n_train: int, n_test: int, seed: int) -> ImageData:
    """Seeded, class-balanced subsets: n_train of train, n_test of test, and n_test of the validation split."""
    k = len(data.classes)
    return replace(data, train=balanced_subset(data.train, max(1, n_train // k), seed),
                   val=balanced_subset(data.val, max(1, n_test // k), seed),
                   test=balanced_subset(data.test, max(1, n_test // k), seed))


def augmentation_grid(images: torch.Tensor, path: Path, seed: int) -> None:
    """Every augmentation of the study (rows) applied to the same images (columns)."""
    torch.manual_seed(seed)  # v2 transforms draw from the global RNG
    g = torch.Generator(images.device).manual_seed(seed)
    rows = {}
    for name in AUGMENTATIONS:
        augment = study_augmentation(name, images.shape[-1])
        rows[name] = images if augment is None else augment(images, g)
    labelled_rows(rows, path, "each augmentation of the study on the same images")


def run_augmentation_study(part: RunFolder, data: ImageData, device: torch.device) -> dict:
    """One run per augmentation (dropout 0), then one per dropout value (no augmentation); the final
    epoch's model is measured (no checkpoint selection), so no checkpoints are written: each run is short,
    and an interrupted one starts over on --resume (the complete ones are kept)."""
    args = part.args
    tiny = tiny_dataset(data, args.tiny_train, args.tiny_test, args.seed)
    size = tiny.train.images.shape[-1]
    part.create(device, mean=tiny.mean, std=tiny.std,
                split_sizes={"train": len(tiny.train), "val": len(tiny.val), "test": len(tiny.test)})
    part.summary(resnet18(len(tiny.classes), norm="bn", width=args.width).to(device), (3, size, size), device)
    print(f"(c) tiny {args.dataset}: train {len(tiny.train)}, val {len(tiny.val)}, test {len(tiny.test)} "
          f"images; run folder {part.path}", flush=True)
    runs = [("augmentation", name, name, 0.0) for name in args.augmentations]
    runs += [("dropout", f"{p:.1f}", "none", p) for p in args.dropouts]
    done: dict[tuple[str, float], dict] = {}  # dropout 0.0 with no augmentation is the "none" run: run it once
    rows = []
    for kind, name, augmentation, dropout in runs:
        run = part.sub(f"{kind}/{name}", augmentation=augmentation, dropout=dropout)
        if (augmentation, dropout) not in done and run.complete:
            done[(augmentation, dropout)] = run.metrics()
        elif (augmentation, dropout) not in done:
            run.create(device)
            model = resnet18(len(tiny.classes), norm="bn", width=args.width, dropout=dropout).to(device)
            if args.channels_last:
                model = model.to(memory_format=torch.channels_last)
            print(f"(c) {kind} {name}", flush=True)
            fit(model, tiny, train_config(args, save_checkpoints=False), run.path,
                augment=study_augmentation(augmentation, size), generator=torch.Generator(device).manual_seed(args.seed),
                args=vars(run.args), resume_with=f"python {TASK}/train.py --resume {part.root.path}")
            done[(augmentation, dropout)] = run.finish({
                "train_acc": evaluate(model, tiny.train, tiny.mean, tiny.std, channels_last=args.channels_last).acc,
                "test_acc": evaluate(model, tiny.test, tiny.mean, tiny.std, channels_last=args.channels_last).acc})
        accs = done[(augmentation, dropout)]
        rows.append({"study": kind, "setting": name, "train_acc": accs["train_acc"], "test_acc": accs["test_acc"],
                     "test_error": 1 - accs["test_acc"]})
    table = write_table(part.path / "results", rows, {k: percent for k in ("train_acc", "test_acc", "test_error")})
    print(f"(c) augmentation and dropout study on tiny {args.dataset} (train_acc: clean train images, eval mode):\n"
          f"{table}", flush=True)
    bar_chart({f"augmentation (dropout 0), {args.epochs} epochs":
               {r["setting"]: 100 * r["test_acc"] for r in rows if r["study"] == "augmentation"},
               "dropout before the final linear (no augmentation)":
               {r["setting"]: 100 * r["test_acc"] for r in rows if r["study"] == "dropout"}},
              part.path / "test_accuracy.png", "test accuracy (%)",
              f"tiny {args.dataset}: {len(tiny.train)} train / {len(tiny.test)} test images")
    augmentation_grid(tiny.train.images[:8], part.path / "augmentations.png", args.seed)
    return part.finish({"results": rows, "split_sizes": {"train": len(tiny.train), "test": len(tiny.test)}})


# ----------------------------------------------------------------------------- (d) and the comparison
def run_activations(part: RunFolder, data: ImageData, device: torch.device, checkpoint: Path) -> dict:
    part.create(device)
    ckpt = load_checkpoint(checkpoint, TASK)
    model, saved = restore_model(ckpt, len(data.classes), device)
    return part.finish({"checkpoint": str(checkpoint),
                        **save_activation_maps(model, replace(data, mean=tuple(ckpt["mean"]), std=tuple(ckpt["std"])),
                                               part.args.activation_image, part.path, saved.channels_last)})


def comparison_table(results: dict, dataset: str, subset: int | None) -> str:
    """Our figures beside the original report's (CIFAR-10, test accuracy)."""
    ours = f"this run ({dataset}{f', subset {subset}' if subset else ''})"
    lines = [f"| part | setup | original (CIFAR-10) | {ours} |", "|---|---|---|---|"]
    if "a" in results:
        lines.append(f"| (a) | our ResNet-18 (BN) from scratch, {results['a']['epochs']} epochs | "
                     f"{percent(ORIGINAL_SCRATCH_ACC)} (50 epochs) | {percent(results['a']['test_acc'])} |")
    for r in results.get("b", {}).get("results", []):
        lines.append(f"| (b) config {r['config']}, {r['size_px']} px | {r['setup']} | "
                     f"{percent(r['original_test_acc (CIFAR-10, 32 px)'])} | {percent(r['test_acc'])} |")
    for study in ("augmentation", "dropout"):  # the full table is c/results.md
        rows = [r for r in results.get("c", {}).get("results", []) if r["study"] == study]
        if rows:
            best, first = max(rows, key=lambda r: r["test_acc"]), rows[0]
            lines.append(f"| (c) {study} study, tiny set | best: {best['setting']} ({first['setting']}: "
                         f"{percent(first['test_acc'])}; all runs in c/results.md) | a figure, not in the report's text "
                         f"| {percent(best['test_acc'])} |")
    if "d" in results:
        lines.append(f"| (d) | activation maps of the (a) model, test image {results['d']['test_position']} | "
                     f"figures | {len(results['d']['layers'])} PNGs in d/ |")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    parts = list(PARTS) if args.part == "all" else [args.part]
    if any(p >= 1 for p in args.dropouts):
        raise UserError(f"--dropouts must be in [0, 1), got {max(args.dropouts)}")
    if distributed.launched_by_torchrun() and ("c" in parts or args.part == "all"):
        raise UserError("under torchrun, run --part a or --part b (part (c) is many tiny runs: one process each)")
    root = RunFolder.check(args, TASK)
    device = start(args)
    data = load_data(args.dataset, args.data_dir, val_size=args.val_size, subset=args.subset, seed=args.seed)
    if args.part == "all" and not 0 <= args.activation_image < len(data.test):
        raise UserError(f"--activation-image must be in [0, {len(data.test) - 1}], got {args.activation_image}")
    if "b" in parts and any(CONFIGS[c].pretrained for c in args.configs):
        imagenet_state_dict(WEIGHTS)  # fail now, in one line, rather than after hours of part (a)
    data = data.to(device)
    pretrained = "b" in parts and any(CONFIGS[c].pretrained for c in args.configs)
    root.create(device, pretrained_weights=weights_record(WEIGHTS) if pretrained else None)

    runners = {"a": run_scratch, "b": run_transfer, "c": run_augmentation_study}
    results = {}
    for part in parts:  # each part's folder; a complete one is kept when --resume continues the experiment
        run = root.sub(part, **part_args(args, part))
        results[part] = run.metrics() if run.complete else runners[part](run, data, device)
    if args.part == "all":
        run = root.sub("d")
        results["d"] = run.metrics() if run.complete else run_activations(run, data, device,
                                                                            root.path / "a" / "checkpoint.pt")
    table = comparison_table(results, args.dataset, args.subset)
    (root.path / "comparison.md").write_text(table)
    print(f"\nThis run beside the original report -> {root.path / 'comparison.md'}\n{table}", flush=True)
    root.finish(results)  # last: marks the whole run complete
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_main(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
