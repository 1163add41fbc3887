"""iNaturalist-12K: (a) a configurable 5-block CNN from scratch, with exact parameter and MAC counts, its
hyperparameters found by an optuna sweep, and the best model tested once (10 x 3 prediction grid); (b)
torchvision's ResNet-50 fine-tuned from ImageNet weights with four freezing strategies, in one table.

    python task_inaturalist/train.py --data-dir data                       # part A (original's best config), then B
    python task_inaturalist/train.py --sweep --trials 30 --epochs 10        # the sweep -> best_config.json
    python task_inaturalist/train.py --config runs/task_inaturalist/sweep/best_config.json --part a
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

if __package__ in (None, ""):  # `python task_inaturalist/train.py` without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from common import distributed
from common.cli import (add_max_pixels_flag, base_parser, batch_int, checked_values, epochs_int, finite_float,
                        image_size_int, int_in, non_negative_float, positive_float, run_main, update_flag)
from common.data import ImageData
from common.errors import UserError
from common.gradcam import resnet50_gradcam_layer
from common.memory import PeakMemory
from common.files import read_json, write_json
from common.run import REPO_ROOT, RunFolder, train_and_report, write_skipped
from common.runtime import device_name, start
from common.tables import markdown, percent, write_csv
from common.text import printable
from common.weights import imagenet_state_dict, weights_record
from task_inaturalist import finetune
from task_inaturalist.cnn import (ACTIVATIONS, ORGANISATIONS, PADDINGS, CNNConfig, build_cnn, feature_sizes,
                                  format_layer_table, layer_table, parameter_count, total_macs)
from task_inaturalist.data import DATASETS, load
from task_inaturalist.plots import PartAReport
from task_inaturalist.recipe import ORIGINAL_BEST, ORIGINAL_FIGURES, PARAM_KEYS, augmentation, cnn_config, train_config
from task_inaturalist.sweep import run_sweep

TASK = "task_inaturalist"
PARTS = ("a", "b", "all")


def build_parser() -> argparse.ArgumentParser:
    p = base_parser(TASK, __doc__.split("\n\n")[0], epochs=40, batch_size=ORIGINAL_BEST["batch_size"],
                    lr=ORIGINAL_BEST["lr"])
    p.epilog = ("--out DIR gets config.json, a/ (part A's run folder: layers.txt, grid.png, confusion_matrix.png, "
                "...), b/<strategy>/ run folders and b/strategies.md, then metrics.json (last). With --sweep, DIR "
                "(default runs/task_inaturalist/sweep) gets study.db, trials/, trials.csv, best_config.json and the "
                "sweep's PNGs; the same command continues the study.")
    update_flag(p, "dataset", choices=DATASETS, default="inaturalist",
                help="inaturalist: nature_12K in --data-dir (unpacked from the zip there if needed); folder: the "
                     "same train/ + val/ layout anywhere; fashion-mnist, synthetic: 32 px arrays resized to "
                     "--image-size (learning checks, smoke runs)")
    update_flag(p, "data_dir", help="folder with inaturalist_12K/ or nature_12K.zip (or the folder, or Fashion-MNIST)")
    update_flag(p, "val_size", help=argparse.SUPPRESS)  # --val-fraction instead
    update_flag(p, "epochs", help="part A's epochs (and each sweep trial's)")
    update_flag(p, "batch_size", help="part A's batch size (a sweep samples its own)")
    update_flag(p, "lr", help="part A's peak learning rate (a sweep samples its own)")
    p.add_argument("--part", choices=PARTS, default="all", help="a: the CNN; b: ResNet-50 fine-tuning; all: both")
    p.add_argument("--sweep", action="store_true", help="run part A's optuna sweep instead (see the sweep flags)")
    p.add_argument("--config", default=None, metavar="JSON",
                   help="a best_config.json (or any JSON with its 'params'): part A's architecture and recipe; "
                        "flags given explicitly still win")
    d = p.add_argument_group("data")
    d.add_argument("--image-size", type=image_size_int, default=224, help="photos are squashed to S x S")
    add_max_pixels_flag(d)
    d.add_argument("--val-fraction", type=finite_float, default=0.2, help="stratified share of train/ held out to validate")
    a = p.add_argument_group("part A: the CNN (defaults: the original report's best configuration)")
    a.add_argument("--filters", type=int_in(1, 4096), nargs="+", default=[ORIGINAL_BEST["filters"]],
                   help="the first block's filters (organised by --organisation), or 5 numbers, one per block")
    a.add_argument("--organisation", choices=ORGANISATIONS, default=ORIGINAL_BEST["organisation"])
    a.add_argument("--kernel", type=int_in(1, 31), default=ORIGINAL_BEST["kernel"])
    a.add_argument("--padding", choices=PADDINGS, default=ORIGINAL_BEST["padding"])
    a.add_argument("--bias", action=argparse.BooleanOptionalAction, default=ORIGINAL_BEST["bias"], help="conv bias")
    a.add_argument("--activation", choices=ACTIVATIONS, default=ORIGINAL_BEST["activation"])
    a.add_argument("--batch-norm", action=argparse.BooleanOptionalAction, default=ORIGINAL_BEST["batch_norm"])
    a.add_argument("--dropout", type=finite_float, default=ORIGINAL_BEST["dropout"], help="before the output layer")
    a.add_argument("--dense", type=int_in(1, 65536), default=ORIGINAL_BEST["dense"], help="neurons of the dense layer")
    a.add_argument("--augment", action=argparse.BooleanOptionalAction, default=ORIGINAL_BEST["augment"],
                   help="random resized crop and flip, per sample, batched on the device")
    a.add_argument("--optimizer", choices=("adam", "sgd"), default=ORIGINAL_BEST["optimizer"])
    a.add_argument("--weight-decay", type=non_negative_float, default=ORIGINAL_BEST["weight_decay"])
    a.add_argument("--warmup-epochs", type=non_negative_float, default=0.5, help="linear warm-up, then cosine to 0")
    a.add_argument("--eval-batch-size", type=batch_int, default=256)
    s = p.add_argument_group("the sweep (--sweep)")
    s.add_argument("--trials", type=int_in(1, 100_000), default=20, help="the study's total of finished trials")
    s.add_argument("--storage", default=None, metavar="URL",
                   help="default: $OPTUNA_STORAGE if set (keeps a password off the command line), else "
                        "sqlite:///<out>/study.db; postgresql://user:password@host/db for many workers")
    s.add_argument("--study-name", default="inaturalist-cnn")
    s.add_argument("--prune-startup", type=int_in(0, 100_000), default=3, help="trials before the median pruner may prune")
    s.add_argument("--prune-after", type=int_in(0, 100_000), default=1, help="epochs a trial runs before it may be pruned")
    s.add_argument("--max-macs", type=positive_float, default=None,
                   help="skip sampled architectures above this many multiply-accumulates per image (a CPU budget)")
    b = p.add_argument_group("part B: fine-tuning ResNet-50 from ImageNet weights")
    b.add_argument("--strategies", nargs="+", choices=finetune.STRATEGIES, default=list(finetune.STRATEGIES))
    b.add_argument("--freeze-k", type=int, default=6, help="children frozen by the freeze_k strategy (0-9)")
    b.add_argument("--ft-epochs", type=epochs_int, default=5)
    b.add_argument("--ft-batch-size", type=batch_int, default=64)
    b.add_argument("--ft-lr", type=finite_float, default=0.01, help="the head's peak LR (SGD, momentum 0.9, cosine)")
    b.add_argument("--ft-weight-decay", type=non_negative_float, default=1e-4)
    b.add_argument("--backbone-lr-scale", type=finite_float, default=0.1, help="the backbone's LR over the head's (full)")
    r = p.add_argument_group("report")
    r.add_argument("--misclassified", type=int_in(1, 200), default=20, help="images in the misclassified grids")
    r.add_argument("--checkpoints", action=argparse.BooleanOptionalAction, default=True,
                   help="write checkpoint.pt and last.pt per run (about 95 MB each for ResNet-50)")
    return p


# ----------------------------------------------------------------------------- flags and configs
def params_from_args(args: argparse.Namespace) -> dict:
    """Part A's configuration (recipe.PARAM_KEYS) from the flags."""
    filters = args.filters[0] if len(args.filters) == 1 else list(args.filters)
    return {"filters": filters, "organisation": args.organisation, "kernel": args.kernel, "padding": args.padding,
            "bias": args.bias, "activation": args.activation, "batch_norm": args.batch_norm, "dropout": args.dropout,
            "dense": args.dense, "augment": args.augment, "lr": args.lr, "weight_decay": args.weight_decay,
            "batch_size": args.batch_size, "optimizer": args.optimizer}


def config_defaults(parser: argparse.ArgumentParser, path: str) -> dict:
    """The parser defaults that a best_config.json (its "params") sets: dest -> value, through the flags' own
    validators (common.cli.checked_values): a value no flag would take is one error line."""
    saved = read_json(path, f"--config {path}")
    return checked_params(parser, saved.get("params", saved), f"--config {path}", as_flags=True)


def checked_params(parser: argparse.ArgumentParser, params: object, source: str, as_flags: bool = False) -> dict:
    """Part A's configuration (from a file or a checkpoint) through the flags' validators: one error line for a
    missing or unknown key or a value no flag would take. as_flags: --filters as a list, as the parser holds it."""
    if not isinstance(params, dict) or sorted(params) != sorted(PARAM_KEYS):
        raise UserError(f"{source} has no part A configuration: expected a 'params' object with the keys "
                        f"{', '.join(PARAM_KEYS)}")
    filters = params["filters"] if isinstance(params["filters"], list) else [params["filters"]]
    values = checked_values(parser, {**params, "filters": filters}, source)
    if not as_flags and len(values["filters"]) == 1:
        values["filters"] = values["filters"][0]
    return values


def checked_cnn(params: dict) -> CNNConfig:
    """The architecture of part A's configuration, or one error line saying what is wrong with it."""
    try:
        return cnn_config(params)
    except (ValueError, TypeError) as e:
        raise UserError(f"part A configuration: {e}") from None


def check_flags(args: argparse.Namespace) -> None:
    """Mistakes argparse cannot see, one error line each, before anything loads."""
    if len(args.filters) not in (1, 5):
        raise UserError(f"--filters takes one number (the first block's) or five (one per block), got "
                        f"{len(args.filters)}")
    if not 0 <= args.dropout < 1:
        raise UserError(f"--dropout must be in [0, 1), got {args.dropout}")
    if not 0 <= args.freeze_k <= 9:
        raise UserError(f"--freeze-k must be between 0 and 9 (ResNet-50 has 10 children, the last is the head), "
                        f"got {args.freeze_k}")
    for flag in ("lr", "ft_lr", "backbone_lr_scale"):
        if not getattr(args, flag) > 0:
            raise UserError(f"--{flag.replace('_', '-')} must be positive, got {getattr(args, flag)}")
    if args.sweep and args.resume:
        raise UserError("--sweep continues a study by running the same command again, not with --resume")
    if args.sweep and distributed.launched_by_torchrun():
        raise UserError("--sweep runs one trial at a time in one process: for several GPUs, start one worker per "
                        "GPU (CUDA_VISIBLE_DEVICES=k) on one --storage study instead of torchrun")
    cnn = checked_cnn(params_from_args(args))
    if args.part in ("a", "all") and not args.sweep:
        feature_sizes(cnn, args.image_size)  # one error line, naming the block, if a feature map vanishes


def gradcam_block(cnn: CNNConfig, image_size: int) -> str:
    """The deepest block whose output is at least 4 x 4 (a coarser map says little), else the first."""
    sizes = feature_sizes(cnn, image_size)
    deep = [i for i, s in enumerate(sizes) if s >= 4]
    return f"features.{deep[-1] if deep else 0}"


# ----------------------------------------------------------------------------- runs
def run_part_a(root: RunFolder, data: ImageData, device: torch.device) -> dict:
    params = params_from_args(root.args)
    cnn = checked_cnn(params)
    run = root.sub("a", cnn_params=params)
    if run.complete:  # kept from the experiment that --resume continues
        return run.metrics()
    args = run.create(device).args
    size = args.image_size
    rows = layer_table(cnn, size)
    table = format_layer_table(rows)
    model = build_cnn(cnn, size)
    if distributed.is_main():
        (run.path / "layers.txt").write_text(table + "\n")
        write_csv(run.path / "layers.csv", rows)
        print(f"part A: exact counts at {size} x {size} px (closed form, checked against torchsummary and "
              f"FlopCounterMode in the tests):\n{table}", flush=True)
    report = PartAReport(data, args.eval_batch_size, args.seed)
    cfg = train_config(params, args.epochs, warmup_epochs=args.warmup_epochs, eval_batch_size=args.eval_batch_size,
                       save_checkpoints=args.checkpoints)
    title = (f"part A: 5-block CNN ({', '.join(map(str, cnn.block_filters()))} filters, {cnn.kernel}x{cnn.kernel}, "
             f"{cnn.activation}) on {data.name}")
    return train_and_report(model, data, run, device=device, cfg=cfg, augment=augmentation(params["augment"]),
                            title=title,
                            gradcam_layer=gradcam_block(cnn, size), n_images=args.misclassified,
                            weights="best" if args.checkpoints else "last",
                            extra_metrics=lambda m: {**report.write(m, run.path),
                                                     "params_closed_form": parameter_count(cnn, size),
                                                     "macs": total_macs(cnn, size), "config": params})


def run_part_b(root: RunFolder, data: ImageData, device: torch.device) -> list[dict]:
    """Each strategy into root/b/<strategy>; the table of trainable parameters, validation and test
    accuracy, seconds per epoch and peak memory into root/b/strategies.{md,csv}."""
    args = root.args
    data = replace(data, mean=finetune.IMAGENET_MEAN, std=finetune.IMAGENET_STD)
    rows = []
    for strategy in args.strategies:
        run = root.sub(f"b/{strategy}", strategy=strategy)
        if run.complete:
            done = run.metrics()
        else:
            run.create(device)
            model = finetune.build_finetune_model(strategy, len(data.classes), args.freeze_k)
            cfg = train_config({"lr": args.ft_lr, "weight_decay": args.ft_weight_decay,
                                "batch_size": args.ft_batch_size, "optimizer": "sgd"}, args.ft_epochs,
                               warmup_epochs=args.warmup_epochs, eval_batch_size=args.eval_batch_size,
                               save_checkpoints=args.checkpoints)
            cfg = replace(cfg, lr_scales=finetune.lr_scales(strategy, args.backbone_lr_scale))
            title = f"part B: ResNet-50, {describe(strategy, args)}, on {data.name}"
            with PeakMemory(device, interval=1.0) as peak:  # sampling the CPU's PSS costs ~30 ms: once a second
                done = train_and_report(model, data, run, device=device, cfg=cfg,
                                        augment=augmentation(True), title=title,
                                        gradcam_layer=resnet50_gradcam_layer(args.image_size),
                                        n_images=args.misclassified,
                                        weights="best" if args.checkpoints else "last",
                                        extra_metrics=lambda m: {"strategy": strategy})
            if distributed.is_main():  # metrics.json gains the peak memory after the run (it is complete either way)
                done["peak_memory_mib"] = round(peak.mib, 1)
                write_json(run.path / "metrics.json", done)
        if distributed.is_main():
            rows.append({"strategy": strategy, "description": describe(strategy, args),
                         "trainable_params": done["trainable_params"], "params": done["params"],
                         "best_val_acc": done["best_val_acc"], "test_acc": done["test_acc"],
                         "seconds_per_epoch": done["seconds_per_epoch"],
                         "peak_memory_mib": done.get("peak_memory_mib")})
    if distributed.is_main():
        write_strategies(rows, root.path / "b", args, data.name, device)
    return rows


def describe(strategy: str, args: argparse.Namespace) -> str:
    return finetune.describe(strategy, args.freeze_k, args.backbone_lr_scale)


def write_strategies(rows: list[dict], folder: Path, args: argparse.Namespace, name: str, device: torch.device) -> None:
    memory = ("torch.cuda.max_memory_allocated" if device.type == "cuda" else
              "the process's peak PSS so far (the data, and the memory that earlier rows left for reuse, included)")
    header = (f"ResNet-50 fine-tuning on {name} at {args.image_size} px, {args.ft_epochs} "
              f"epoch{'s' if args.ft_epochs > 1 else ''} each, {device_name(device)}; peak memory: {memory}")
    shown = [{"strategy": r["description"], "trainable parameters": r["trainable_params"],
              "val acc": r["best_val_acc"], "test acc": r["test_acc"], "s / epoch": r["seconds_per_epoch"],
              "peak memory (MiB)": r["peak_memory_mib"]} for r in rows]
    text = f"{header}\n\n" + markdown(shown, {"val acc": percent, "test acc": percent, "s / epoch": lambda v: f"{v:.1f}"},
                                       align_right=list(shown[0])[1:])
    (folder / "strategies.md").write_text(text)
    write_csv(folder / "strategies.csv", rows)
    print(f"\n{text}", flush=True)


def on_device(data: ImageData, device: torch.device, image_size: int) -> ImageData:
    """The whole uint8 dataset moved to the device once; one error line if it does not fit there."""
    try:
        return data.to(device)
    except torch.OutOfMemoryError:
        n = len(data.train) + len(data.val) + len(data.test)
        need = n * 3 * image_size ** 2 / 2**30
        raise UserError(f"the {n:,} images at {image_size} px ({need:.1f} GiB as uint8) do not fit in {device}'s "
                        f"free memory: use a smaller --image-size (the size grows with its square)") from None


def run(args: argparse.Namespace) -> int:
    check_flags(args)
    if args.sweep:
        return sweep(args)
    root = RunFolder.check(args, TASK)
    device = start(args)
    if args.part in ("b", "all"):
        imagenet_state_dict(finetune.WEIGHTS)  # before the photos decode: one error line if missing
    data = on_device(load(args.dataset, args.data_dir, args.image_size, val_fraction=args.val_fraction,
                          subset=args.subset, seed=args.seed, max_pixels=args.max_pixels,
                          max_aspect=args.max_aspect), device, args.image_size)
    root.create(device, classes=data.classes,
                pretrained_weights=weights_record(finetune.WEIGHTS) if args.part in ("b", "all") else None,
                split_sizes={"train": len(data.train), "val": len(data.val), "test": len(data.test)})
    write_skipped(root.path, data.skipped)  # the terminal showed the first few; the run folder keeps them all
    results: dict = {}
    if args.part in ("a", "all"):
        results["a"] = run_part_a(root, data, device)
    if args.part in ("b", "all"):
        results["b"] = run_part_b(root, data, device)
    if "a" in results and distributed.is_main():
        a = results["a"]
        print(f"part A on {printable(data.name)}: test {100 * a['test_acc']:.2f}% (best val {100 * a['best_val_acc']:.2f}%); "
              f"the original on iNaturalist-12K: test {100 * ORIGINAL_FIGURES['test_acc']:.2f}% "
              f"(best val {100 * ORIGINAL_FIGURES['best_val_acc']:.2f}%)", flush=True)
    root.finish({**results, "original_report": ORIGINAL_FIGURES})  # last
    return 0


def sweep(args: argparse.Namespace) -> int:
    """--sweep: the study in --out (default runs/task_inaturalist/sweep), continued by the same command; one
    study per folder. Nothing is written before the study accepts these settings."""
    args.out = args.out or str(REPO_ROOT / "runs" / TASK / "sweep")
    folder = RunFolder.check(args, TASK, continued="sweep")
    config = Path(args.out) / "config.json"
    saved = read_json(config).get("study_name") if config.is_file() else None
    if saved not in (None, args.study_name):
        raise UserError(f"--out {args.out} holds the study {saved!r}: one study per folder, so give this study "
                        f"({args.study_name!r}) its own --out")
    device = start(args)
    data = on_device(load(args.dataset, args.data_dir, args.image_size, val_fraction=args.val_fraction,
                          subset=args.subset, seed=args.seed, max_pixels=args.max_pixels,
                          max_aspect=args.max_aspect), device, args.image_size)
    folder.make()
    write_skipped(folder.path, data.skipped)
    split_sizes = {"train": len(data.train), "val": len(data.val), "test": len(data.test)}
    run_sweep(args, data, device, folder, lambda: folder.write_config(device, continues="sweep",
                                                                       split_sizes=split_sizes))
    return 0


def load_config_defaults(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    """--config JSON: its part A configuration becomes the parser's defaults (flags given still win)."""
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            parser.set_defaults(**config_defaults(parser, argv[i + 1]))
        elif arg.startswith("--config="):
            parser.set_defaults(**config_defaults(parser, arg.split("=", 1)[1]))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    parser.before_parse = load_config_defaults
    return run_main(parser, run, argv)


if __name__ == "__main__":
    sys.exit(main())
