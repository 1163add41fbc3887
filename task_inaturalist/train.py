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
from pathlib import Path

if __package__ in (None, ""):  # `python task_inaturalist/train.py` without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from common import distributed
from common.cli import add_max_pixels_flag, base_parser, finite_float, image_size_int, int_in, run_main, update_flag
from common.data import ImageData
from common.errors import UserError
from common.evaluation import Grids, test_report
from common.files import read_json
from common.run import REPO_ROOT, RunFolder, write_skipped
from common.runtime import start
from common.tables import write_csv
from common.text import printable
from common.training import last_epoch, training_figures
from common.weights import imagenet_state_dict, weights_record
from task_inaturalist import finetune
from task_inaturalist.cnn import (
    CNNConfig,
    build_cnn,
    feature_sizes,
    format_layer_table,
    layer_table,
    parameter_count,
    total_macs,
)
from task_inaturalist.data import DATASETS, load
from task_inaturalist.plots import PartAReport
from task_inaturalist.recipe import (
    ORIGINAL_BEST,
    add_part_a_flags,
    augmentation,
    cnn_config,
    load_config_defaults,
    params_from_args,
    train_config,
)
from task_inaturalist.results import ORIGINAL
from task_inaturalist.sweep import add_sweep_flags, run_sweep

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
    d.add_argument("--val-fraction", type=finite_float, default=0.2,
                   help="stratified share of train/ held out to validate")
    add_part_a_flags(p)
    add_sweep_flags(p)
    finetune.add_finetune_flags(p)
    r = p.add_argument_group("report")
    r.add_argument("--misclassified", type=int_in(1, 200), default=20, help="images in the misclassified grids")
    r.add_argument("--checkpoints", action=argparse.BooleanOptionalAction, default=True,
                   help="write checkpoint.pt and last.pt per run (about 95 MB each for ResNet-50)")
    p.before_parse = load_config_defaults  # --config: its configuration becomes the defaults
    return p


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
    for flag in ("ft_lr", "backbone_lr_scale"):
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


def run_part_a(root: RunFolder, data: ImageData, device: torch.device) -> dict:
    """Part A: the CNN of the configuration the flags (or --config) give, trained, then tested once."""
    params = params_from_args(root.args)
    cnn = checked_cnn(params)
    return root.sub("a", cnn_params=params).once(lambda run: train_part_a(run, cnn, params, data, device))


def train_part_a(run: RunFolder, cnn: CNNConfig, params: dict, data: ImageData, device: torch.device) -> dict:
    args = run.create(device, data).args
    size = args.image_size
    model = build_cnn(cnn, size)
    if distributed.is_main():
        rows = layer_table(cnn, size)
        (run.path / "layers.txt").write_text(format_layer_table(rows) + "\n")
        write_csv(run.path / "layers.csv", rows)
        print(f"part A: exact counts at {size} x {size} px (closed form, checked against torchsummary and "
              f"FlopCounterMode in the tests):\n{format_layer_table(rows)}", flush=True)
    cfg = train_config(params, args.epochs, warmup_epochs=args.warmup_epochs, eval_batch_size=args.eval_batch_size,
                       save_checkpoints=args.checkpoints)
    title = (f"part A: 5-block CNN ({', '.join(map(str, cnn.block_filters()))} filters, {cnn.kernel}x{cnn.kernel}, "
             f"{cnn.activation}) on {data.name}")
    history = run.train(model, data, cfg, title=title, augment=augmentation(params["augment"]))
    best = run.load_best(model) if args.checkpoints else last_epoch(history)
    report = test_report(model, data, run.path, Grids(gradcam_block(cnn, size), args.misclassified, args.seed),
                         batch_size=args.eval_batch_size, channels_last=args.channels_last)
    figures = PartAReport(data, args.eval_batch_size, args.seed).write(model, run.path)
    return run.finish({**report, **best, **training_figures(history, model), **figures,
                       "params_closed_form": parameter_count(cnn, size), "macs": total_macs(cnn, size),
                       "config": params})


def run(args: argparse.Namespace) -> int:
    check_flags(args)
    if args.sweep:
        return sweep(args)
    root = RunFolder.check(args, TASK)
    device = start(args)
    if args.part in ("b", "all"):
        imagenet_state_dict(finetune.WEIGHTS)  # before the photos decode: one error line if missing
    data = load_data(args, device)
    root.create(device, data, classes=data.classes,
                pretrained_weights=weights_record(finetune.WEIGHTS) if args.part in ("b", "all") else None)
    write_skipped(root.path, data.skipped)  # the terminal showed the first few; the run folder keeps them all
    results: dict = {}
    if args.part in ("a", "all"):
        results["a"] = run_part_a(root, data, device)
        print(f"part A on {printable(data.name)}: test {100 * results['a']['test_acc']:.2f}% (best val "
              f"{100 * results['a']['best_val_acc']:.2f}%); the original on iNaturalist-12K: test "
              f"{100 * ORIGINAL['test_acc']:.2f}% (best val {100 * ORIGINAL['best_val_acc']:.2f}%)", flush=True)
    if args.part in ("b", "all"):
        results["b"] = finetune.run_part_b(root, data, device)
    root.finish({**results, "original_report": ORIGINAL})  # last
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
    data = load_data(args, device)
    folder.make_folder()
    write_skipped(folder.path, data.skipped)
    run_sweep(args, data, folder, lambda: folder.write_config(device, data, continues="sweep"))
    return 0


def load_data(args: argparse.Namespace, device: torch.device) -> ImageData:
    """The dataset, decoded once, on the device; one error line if it does not fit there."""
    data = load(args.dataset, args.data_dir, args.image_size, val_fraction=args.val_fraction, subset=args.subset,
                seed=args.seed, max_pixels=args.max_pixels, max_aspect=args.max_aspect)
    try:
        return data.to(device)
    except torch.OutOfMemoryError:
        n = len(data.train) + len(data.val) + len(data.test)
        raise UserError(f"the {n:,} images at {args.image_size} px ({n * 3 * args.image_size ** 2 / 2**30:.1f} GiB "
                        f"as uint8) do not fit in {device}'s free memory: use a smaller --image-size (the size grows "
                        f"with its square)") from None


def main(argv: list[str] | None = None) -> int:
    return run_main(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
