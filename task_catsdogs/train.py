"""Cats against dogs with twin ResNet-50s: one trained on 112 photos, its twin on the same 112 plus two
3-of-10 augmented versions of each (336), both from one initial state; test accuracy, precision, recall,
F1 and the confusion matrix every epoch, the last epoch reported, and the whole experiment repeated per seed.

    python task_catsdogs/train.py --data-dir data                                  # Oxford-IIIT Pet, seeds 0-4
    python task_catsdogs/train.py --dataset folder --data-dir PetImages --seeds 0  # one seed, as the original
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # `python task_catsdogs/train.py` without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
import torch.nn as nn

from common import distributed
from common.cli import (
    add_max_pixels_flag,
    add_sgd_flags,
    base_parser,
    batch_int,
    explicit_flags,
    image_size_int,
    int_in,
    positive_int,
    run_main,
    seed_int,
    update_flag,
)
from common.data import ImageData
from common.errors import UserError
from common.evaluation import Grids, test_report
from common.run import RunFolder, write_skipped
from common.runtime import start
from common.tables import read_csv
from common.training import TrainConfig, last_epoch, training_figures
from common.weights import imagenet_state_dict, weights_record
from task_catsdogs.augmentations import add_augmentation_flags
from task_catsdogs.data import DATASETS, Pool, balanced_split, describe_twin, load_pool, split_sizes, twin_data
from task_catsdogs.model import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    INITS,
    WEIGHTS,
    TestMetrics,
    check_gradcam_layer,
    gradcam_layer,
    twin_models,
)
from task_catsdogs.plots import eval_metrics
from task_catsdogs.results import ORIGINAL, seed_lines, write_summary
from task_catsdogs.seeds import summarize

TASK = "task_catsdogs"
MODELS = ("plain", "aug")
SEEDS = (0, 1, 2, 3, 4)  # --seeds' default: the whole experiment five times


def build_parser() -> argparse.ArgumentParser:
    p = base_parser(TASK, __doc__.split("\n\n")[0], epochs=10, batch_size=16, lr=0.02)
    p.epilog = ("--out DIR gets config.json, one folder per seed (DIR/seed<k>/: augmentations.csv, "
                "augmented_examples.png, image_stats.*, eval_metrics.png, plain/ and aug/ run folders, metrics.json), "
                "then summary.md, summary.csv, seeds.csv, eval_metrics.png and metrics.json (last).")
    update_flag(p, "dataset", choices=DATASETS, default="pets",
                 help="pets: Oxford-IIIT Pet cats vs dogs, downloaded into --data-dir; folder: any two-class "
                      "ImageFolder at --data-dir (e.g. PetImages with Cat/ and Dog/)")
    update_flag(p, "data_dir", help="where Oxford-IIIT Pet is (or goes), or the image folder for --dataset folder")
    update_flag(p, "val_size", default=28,
                 help="validation images (half per class), drawn apart from train and test; they only monitor "
                      "(history.csv, checkpoint.pt): the cosine schedule and the reported last epoch choose nothing")
    update_flag(p, "subset", help="cap --train-size, --val-size and --test-size at N (smoke runs) "
                "(default: none, no cap)")
    update_flag(p, "seed", default=None, help="one experiment with this seed: the same as --seeds N "
                "(default: none, --seeds decides)")
    d = p.add_argument_group("data and split (class-balanced, seeded)")
    d.add_argument("--image-size", type=image_size_int, default=224, help="photos are squashed to S x S")
    add_max_pixels_flag(d)
    d.add_argument("--train-size", type=positive_int, default=112, help="train originals (half per class)")
    d.add_argument("--test-size", type=positive_int, default=28, help="test images (half per class)")
    d.add_argument("--seeds", type=seed_int, nargs="+", default=list(SEEDS),
                   help="repeat the whole twin experiment per seed (new split, initial state and augmentation), "
                        "then report mean ± std and the paired difference with a 95%% interval")
    add_augmentation_flags(p)
    m = p.add_argument_group("model and optimiser (the same for both twins)")
    m.add_argument("--init", choices=INITS, default="random",
                   help="random: what the original ran; imagenet: torchvision's IMAGENET1K_V2 weights (new 2-class "
                        "head)")
    add_sgd_flags(m, warmup_epochs=1.0, warmup_help="linear warm-up, then cosine to 0", grad_clip_help="clip the "
                  "global gradient norm to this; 0 = off (BatchNorm ResNet-50 at this LR trains without it)")
    m.add_argument("--eval-batch-size", type=batch_int, default=64, help="images per step when validating and testing")
    m.add_argument("--checkpoints", action=argparse.BooleanOptionalAction, default=True,
                   help="write last.pt and checkpoint.pt per model, needed by --resume and eval.py: about 190 MB "
                        "each, the ResNet-50's 94 MB of weights and as much SGD momentum")
    r = p.add_argument_group("report")
    r.add_argument("--misclassified", type=int_in(1, 200), default=20, help="images in the report grids")
    r.add_argument("--gradcam-layer", default="auto",
                   help="module path, e.g. layer4.2; auto: the deepest block with a map of at least 4 x 4")
    p.before_parse = one_seed
    return p


def one_seed(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    """--seed N runs one experiment, seed N, as --seeds N does (Parser.before_parse); both is one error line."""
    given = explicit_flags(parser, argv)
    if "seed" in given and "seeds" in given:
        raise UserError("give --seed N (one experiment) or --seeds (one experiment each), not both")
    if "seed" in given:
        parser.set_defaults(seeds=[given["seed"]])


def check_flags(args: argparse.Namespace) -> None:
    """The mistakes argparse cannot see, each one error line before anything loads."""
    for flag in ("train_size", "val_size", "test_size"):
        value = getattr(args, flag)
        if value < 2 or value % 2:
            raise UserError(f"--{flag.replace('_', '-')} must be an even number of at least 2 (half of each class), "
                            f"got {value}")
    if len(set(args.seeds)) != len(args.seeds):
        raise UserError(f"--seeds has repeats ({' '.join(map(str, args.seeds))}): each seed is one experiment")
    check_gradcam_layer(args.gradcam_layer)


def train_config(args: argparse.Namespace) -> TrainConfig:
    """SGD with warm-up and a cosine decay to zero: nothing in it looks at validation or test figures."""
    return TrainConfig.from_args(args, schedule="cosine", save_checkpoints=args.checkpoints)


def train_twin(run: RunFolder, model: nn.Module, data: ImageData, device: torch.device) -> dict:
    """One model of a twin: trained, and reported as the last epoch left it (the test figures every epoch in
    history.csv; the validation split only monitors)."""
    args = run.create(device, data).args  # the twins were drawn from one initial state before either trained
    what = "originals" if args.model == "plain" else "originals + augmented"
    title = f"seed {args.seed}, model_{args.model}: ResNet-50 ({args.init} init) on {len(data.train)} images ({what})"
    test = TestMetrics(data, args.eval_batch_size, args.channels_last)
    history = run.train(model, data, train_config(args), title=title, epoch_end=test.epoch_end)
    grids = Grids(gradcam_layer(args.gradcam_layer, args.image_size), args.misclassified, args.seed)
    report = test_report(model, data, run.path, grids, batch_size=args.eval_batch_size,
                         channels_last=args.channels_last)
    return run.finish({**report, **last_epoch(history), **training_figures(history, model),
                       "test_metrics": test.measure(model)})


def run_seed(run: RunFolder, pool: Pool, device: torch.device) -> dict:
    """The whole twin experiment for one seed in seed<k>/: the split, the augmented set, both models from one
    initial state. Its metrics.json: {"result": {"seed", "plain": test figures, "aug": test figures}, ...}."""
    args = run.create(device).args
    sizes = split_sizes(args.train_size, args.val_size, args.test_size, args.subset)
    twin = twin_data(pool, *sizes, args.image_size, args.seed, args.aug_calls, args.aug_per_call,
                     mean_std=(IMAGENET_MEAN, IMAGENET_STD) if args.init == "imagenet" else None)
    if distributed.is_main():
        describe_twin(run.path, twin, args.data_dir, args.examples)
    models = dict(zip(MODELS, twin_models(len(pool.classes), args.init, args.seed)))
    data = {"plain": twin.plain, "aug": twin.aug}
    done = {m: run.sub(m, model=m).once(lambda sub, m=m: train_twin(sub, models[m], data[m].to(device), device))
            for m in MODELS}
    result = {"seed": args.seed, **{m: done[m]["test_metrics"] for m in MODELS}}
    if distributed.is_main():
        print(seed_lines(args.seed, result, pool.classes), flush=True)
        eval_metrics({m: [read_csv(run.path / m / "history.csv")] for m in MODELS}, run.path / "eval_metrics.png",
                     f"seed {args.seed}: {experiment_title(args, pool)}")
    return run.finish({"result": result, "sizes": dict(zip(("train", "val", "test"), sizes),
                                                         train_augmented=len(twin.aug.train))})


def experiment_title(args: argparse.Namespace, pool: Pool) -> str:
    test = split_sizes(args.train_size, args.val_size, args.test_size, args.subset)[2]
    return (f"ResNet-50 ({args.init} init) on {pool.name} at {args.image_size} px, {args.epochs} epochs, "
            f"{test} test images")


def run(args: argparse.Namespace) -> int:
    args.seeds = list(args.seeds)
    if args.seed is None:  # what the top-level run is seeded with; each seed's sub-run takes its own
        args.seed = args.seeds[0]
    check_flags(args)
    root = RunFolder.check(args, TASK)
    device = start(args)
    if args.init == "imagenet":
        imagenet_state_dict(WEIGHTS)  # the weights are there (one error line otherwise), before the photos decode
    pool = load_pool(args.dataset, args.data_dir, args.image_size, args.max_pixels, args.max_aspect)
    sizes = split_sizes(args.train_size, args.val_size, args.test_size, args.subset)
    for seed in args.seeds:  # every split fits (one error line otherwise) before any folder is made
        balanced_split(pool, *sizes, seed)
    root.create(device, classes=pool.classes, pretrained_weights=weights_record(WEIGHTS) if args.init == "imagenet"
                else None, pool={"train": len(pool.train), "test": len(pool.test) if pool.test is not pool.train
                                 else None, "skipped": pool.skipped})
    write_skipped(root.path, pool.skipped)  # the terminal showed the first few; the run folder keeps them all
    per_seed = [root.sub(f"seed{s}", seed=s).once(lambda run: run_seed(run, pool, device))["result"]
                for s in args.seeds]
    if not distributed.is_main():
        return 0
    rows, title = summarize(per_seed), experiment_title(args, pool)
    text = write_summary(root.path, title, per_seed, rows, sizes[2])
    eval_metrics({m: [read_csv(root.path / f"seed{s}" / m / "history.csv") for s in args.seeds] for m in MODELS},
                 root.path / "eval_metrics.png",
                 title + (f", mean ± std over {len(args.seeds)} seeds" if len(args.seeds) > 1 else ""))
    print(f"\n{title}\n{text}", flush=True)
    root.finish({"seeds": args.seeds, "per_seed": per_seed, "summary": rows,
                 "sizes": dict(zip(("train", "val", "test"), sizes)), "original_report": ORIGINAL})
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_main(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
