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
from common.evaluation import Grids, test_report
from common.run import RunFolder, write_skipped
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
    gradcam_block,
    layer_table,
    parameter_count,
    total_macs,
)
from task_inaturalist.data import DATASETS, load_on_device
from task_inaturalist.plots import PartAReport
from task_inaturalist.recipe import (
    ORIGINAL_BEST,
    add_part_a_flags,
    augmentation,
    checked_cnn,
    load_config_defaults,
    params_from_args,
    train_config,
)
from task_inaturalist.results import ORIGINAL
from task_inaturalist.sweep import add_sweep_flags, check_sweep_flags, sweep_command

TASK = "task_inaturalist"
PARTS = ("a", "b", "all")


def build_parser() -> argparse.ArgumentParser:
    p = base_parser(TASK, __doc__.split("\n\n")[0], epochs=40, batch_size=ORIGINAL_BEST["batch_size"],
                    lr=ORIGINAL_BEST["lr"])
    p.epilog = ("--out DIR gets config.json, a/ (part A's run folder: layers.txt, grid.png, confusion_matrix.png, "
                "...), b/<strategy>/ run folders and b/strategies.md, then metrics.json (last). With --sweep, DIR "
                "gets study.db, trials/, trials.csv, best_config.json and the sweep's PNGs; the same command continues "
                "the study.")
    update_flag(p, "dataset", choices=DATASETS, default="inaturalist",
                help="inaturalist: nature_12K in --data-dir (unpacked from the zip there if needed); folder: the "
                     "same train/ + val/ layout anywhere; fashion-mnist, synthetic: 32 px arrays resized to "
                     "--image-size (learning checks, smoke runs)")
    update_flag(p, "data_dir", help="folder with inaturalist_12K/ or nature_12K.zip (or the folder, or Fashion-MNIST)")
    update_flag(p, "val_size", help=argparse.SUPPRESS)  # --val-fraction instead
    update_flag(p, "epochs", help="part A's epochs (and each sweep trial's)")
    update_flag(p, "batch_size", help="part A's batch size (a sweep samples its own)")
    update_flag(p, "lr", help="part A's peak learning rate (a sweep samples its own)")
    update_flag(p, "out", help="run folder (default: runs/task_inaturalist/<date-time>; with --sweep, "
                "runs/task_inaturalist/sweep)")
    p.add_argument("--part", choices=PARTS, default="all", help="a: the CNN; b: ResNet-50 fine-tuning; all: both")
    p.add_argument("--sweep", action="store_true", help="run part A's optuna sweep instead (see the sweep flags)")
    p.add_argument("--config", default=None, metavar="JSON",
                   help="a best_config.json (or any JSON with its 'params'): part A's architecture and recipe; "
                        "flags given explicitly still win (default: none, the original's best configuration)")
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
                   help="write checkpoint.pt and last.pt per run, needed by --resume and eval.py: for a ResNet-50, "
                        "its 94 MB of weights and the SGD momentum of what trains, so about 94 MB (head) to 190 MB "
                        "(full) each")
    p.before_parse = load_config_defaults  # --config: its configuration becomes the defaults
    return p


def check_flags(args: argparse.Namespace) -> None:
    """Mistakes argparse cannot see, one error line each, before anything loads."""
    cnn = checked_cnn(params_from_args(args))
    if args.part in ("a", "all") and not args.sweep:
        feature_sizes(cnn, args.image_size)  # one error line, naming the block, if a feature map vanishes
    finetune.check_flags(args)
    if args.sweep:
        check_sweep_flags(args)


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
        return sweep_command(args)
    root = RunFolder.check(args, TASK)
    device = start(args)
    if args.part in ("b", "all"):
        imagenet_state_dict(finetune.WEIGHTS)  # before the photos decode: one error line if missing
    data = load_on_device(args, device)
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


def main(argv: list[str] | None = None) -> int:
    return run_main(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
