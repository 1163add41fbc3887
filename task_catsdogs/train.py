"""Cats against dogs with twin ResNet-50s: one trained on 112 photos, its twin on the same 112 plus two
3-of-10 augmented versions of each (336), both from one initial state; test accuracy, precision, recall,
F1 and the confusion matrix every epoch, the last epoch reported, and the whole experiment repeated per seed.

    python task_catsdogs/train.py --data-dir data                                  # Oxford-IIIT Pet, seed 0
    python task_catsdogs/train.py --dataset folder --data-dir PetImages --seeds 0 1 2 3 4
"""
from __future__ import annotations

import argparse
import csv
import os
import re
import sys
from pathlib import Path

if __package__ in (None, ""):  # `python task_catsdogs/train.py` without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
import torch.nn as nn

from common import distributed
from common.cli import (add_max_pixels_flag, add_sgd_flags, base_parser, batch_int, image_size_int, int_in,
                        non_negative_float, positive_int, run_main, seed_int, update_flag)
from common.data import ImageData
from common.errors import UserError
from common.gradcam import get_layer, resnet50_gradcam_layer
from common.metrics import classification_metrics
from common.run import RunFolder, train_and_report, write_skipped
from common.runtime import start
from common.training import TrainConfig, evaluate
from common.weights import imagenet_state_dict, weights_record
from task_catsdogs.augmentations import AUGMENTATIONS, write_augmentations_csv
from common.tables import write_table
from common.text import printable
from task_catsdogs.data import DATASETS, Pool, TwinData, balanced_split, image_stats, load_pool, twin_data
from task_catsdogs.model import IMAGENET_MEAN, IMAGENET_STD, INITS, WEIGHTS, twin_models
from task_catsdogs.plots import augmented_examples, eval_metrics, image_stats_png
from task_catsdogs.seeds import per_seed_markdown, summarize, summary_markdown, write_seed_tables

TASK = "task_catsdogs"
MODELS = ("plain", "aug")
# What the original report printed for its single run (10 epochs, 28 test images; random init).
ORIGINAL = {"plain": {"acc": 0.4643, "precision_weighted": 0.4067, "recall_weighted": 0.4643, "f1_weighted": 0.3665},
            "aug": {"acc": 0.5000, "precision_weighted": 0.5000, "recall_weighted": 0.5000, "f1_weighted": 0.4556}}


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
    update_flag(p, "subset", help="cap --train-size, --val-size and --test-size at N (smoke runs)")
    update_flag(p, "seed", help="the seed when --seeds is not given")
    d = p.add_argument_group("data and split (class-balanced, seeded)")
    d.add_argument("--image-size", type=image_size_int, default=224, help="photos are squashed to S x S")
    add_max_pixels_flag(d)
    d.add_argument("--train-size", type=positive_int, default=112, help="train originals (half per class)")
    d.add_argument("--test-size", type=positive_int, default=28, help="test images (half per class)")
    d.add_argument("--seeds", type=seed_int, nargs="+", default=None,
                   help="repeat the whole twin experiment per seed (new split, initial state and augmentation), "
                        "then report mean ± std and the paired difference with a 95%% interval")
    a = p.add_argument_group("offline augmentation of the train originals (model_aug only)")
    a.add_argument("--aug-calls", type=int_in(1, 100), default=2, help="augmented versions per original")
    a.add_argument("--aug-per-call", type=int, choices=range(1, len(AUGMENTATIONS) + 1), default=3,
                   metavar=f"1..{len(AUGMENTATIONS)}", help="distinct augmentations per version, applied in sequence")
    a.add_argument("--examples", type=int_in(1, 64), default=4, help="originals shown in augmented_examples.png")
    m = p.add_argument_group("model and optimiser (the same for both twins)")
    m.add_argument("--init", choices=INITS, default="random",
                   help="random: what the original ran; imagenet: torchvision's IMAGENET1K_V2 weights (new 2-class head)")
    add_sgd_flags(m, warmup_epochs=1.0, warmup_help="linear warm-up, then cosine to 0")
    m.add_argument("--grad-clip", type=non_negative_float, default=0.0, help="clip the global gradient norm; 0 = off")
    m.add_argument("--eval-batch-size", type=batch_int, default=64)
    m.add_argument("--checkpoints", action=argparse.BooleanOptionalAction, default=True,
                   help="write last.pt and checkpoint.pt per model (about 190 MB each for ResNet-50): needed by "
                        "--resume and eval.py")
    r = p.add_argument_group("report")
    r.add_argument("--misclassified", type=int_in(1, 200), default=20, help="images in the report grids")
    r.add_argument("--gradcam-layer", default="auto",
                   help="module path, e.g. layer4.2; auto: the deepest block with a map of at least 4 x 4")
    return p


def split_sizes(args: argparse.Namespace) -> tuple[int, int, int]:
    """(train, val, test) sizes, each capped at --subset (rounded down to an even number)."""
    sizes = (args.train_size, args.val_size, args.test_size)
    if args.subset is not None:
        sizes = tuple(min(s, max(2, args.subset - args.subset % 2)) for s in sizes)
    return sizes


def gradcam_layer(args: argparse.Namespace) -> str:
    return resnet50_gradcam_layer(args.image_size) if args.gradcam_layer == "auto" else args.gradcam_layer


def check_flags(args: argparse.Namespace) -> None:
    """The mistakes argparse cannot see, each one error line before anything loads."""
    for flag in ("train_size", "val_size", "test_size"):
        value = getattr(args, flag)
        if value < 2 or value % 2:
            raise UserError(f"--{flag.replace('_', '-')} must be an even number of at least 2 (half of each class), "
                            f"got {value}")
    if len(set(args.seeds)) != len(args.seeds):
        raise UserError(f"--seeds has repeats ({' '.join(map(str, args.seeds))}): each seed is one experiment")
    if args.gradcam_layer != "auto":
        from torchvision.models import resnet50

        with torch.device("meta"):  # the architecture only: no memory, no initialisation cost
            probe = resnet50(num_classes=2)
        try:
            get_layer(probe, args.gradcam_layer)
        except ValueError as e:
            raise UserError(f"--gradcam-layer: {e} (try layer4.2, layer3.5 or auto)") from None


def train_config(args: argparse.Namespace) -> TrainConfig:
    """SGD with warm-up and a cosine decay to zero: nothing in it looks at validation or test figures."""
    return TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, momentum=args.momentum,
                       nesterov=args.nesterov, weight_decay=args.weight_decay, warmup_epochs=args.warmup_epochs,
                       label_smoothing=args.label_smoothing, grad_clip=args.grad_clip, schedule="cosine",
                       eval_batch_size=args.eval_batch_size, channels_last=args.channels_last,
                       save_checkpoints=args.checkpoints)


class TestMetrics:
    """The test figures of a model, every epoch (history.csv columns) and at the end (metrics.json).
    Measured, never used: no schedule, checkpoint or stopping rule reads them."""

    def __init__(self, data: ImageData, batch_size: int, channels_last: bool) -> None:
        self.data, self.batch_size, self.channels_last = data, batch_size, channels_last
        self.slugs = [re.sub(r"\W+", "_", c).strip("_") or f"class{k}" for k, c in enumerate(data.classes)]

    def measure(self, model: nn.Module) -> dict:
        res = evaluate(model, self.data.test, self.data.mean, self.data.std, self.batch_size, self.channels_last)
        return {"loss": res.loss, **classification_metrics(res.preds, self.data.test.labels.cpu(),
                                                            len(self.data.classes))}

    def epoch_end(self, model: nn.Module, epoch: int) -> dict:
        m = self.measure(model)
        row = {f"test_{k}": v for k, v in m.items() if k != "confusion_matrix"}
        for t, counts in enumerate(m["confusion_matrix"]):
            row |= {f"cm_{self.slugs[t]}_as_{self.slugs[p]}": n for p, n in enumerate(counts)}
        return row

    def final(self, model: nn.Module) -> dict:
        return {"test_metrics": self.measure(model)}


def read_history(path: Path) -> list[dict]:
    with path.open() as f:
        return list(csv.DictReader(f))


def relative(path: str, root: str) -> str:
    try:
        return os.path.relpath(path, root)
    except ValueError:  # another drive (Windows)
        return path


def write_augmentation_report(seed_dir: Path, twin: TwinData, args: argparse.Namespace) -> None:
    """augmentations.csv, augmented_examples.png, image_stats.{csv,md,png}; the stats table is printed too."""
    classes, labels = twin.plain.classes, twin.plain.train.labels.tolist()
    write_augmentations_csv(seed_dir / "augmentations.csv", twin.augmented.records,
                            [relative(f, args.data_dir) for f in twin.train_files], classes, labels)
    calls = args.aug_calls
    # the first originals of each class in turn: cat, dog, cat, dog, ...
    by_class = [[i for i, y in enumerate(labels) if y == k] for k in range(len(classes))]
    picks = [i for group in zip(*by_class) for i in group][:args.examples]
    augmented = twin.augmented.images.view(len(labels), calls, *twin.augmented.images.shape[1:])
    names = [[name for name, _ in twin.augmented.records[i * calls + c]["applied"]] for i in picks for c in range(calls)]
    augmented_examples(twin.plain.train.images[picks], augmented[picks], names, [classes[labels[i]] for i in picks],
                       seed_dir / "augmented_examples.png")
    rows = image_stats(twin)
    print(f"image statistics (seed {seed_dir.name[4:]}):\n{write_table(seed_dir / 'image_stats', rows)}", flush=True)
    image_stats_png(rows, seed_dir / "image_stats.png")


def train_one(seed_run: RunFolder, name: str, model: nn.Module, data: ImageData, device: torch.device) -> dict:
    """One model of a twin into seed<k>/<name> (a complete run folder), or its metrics if a resumed
    experiment finished it already; an interrupted one continues from its last.pt."""
    run = seed_run.sub(name, model=name)
    if run.complete:
        return run.metrics()
    run.make()  # not create(): the twins were built from one initial state before either trained
    args = run.args
    hook = TestMetrics(data, args.eval_batch_size, args.channels_last)
    what = "originals" if name == "plain" else "originals + augmented"
    title = f"seed {args.seed}, model_{name}: ResNet-50 ({args.init} init) on {len(data.train)} images ({what})"
    return train_and_report(model, data.to(device), run, device=device, cfg=train_config(args), augment=None,
                            title=title, gradcam_layer=gradcam_layer(args), n_images=args.misclassified,
                            epoch_end=hook.epoch_end, weights="last", extra_metrics=hook.final)


def run_seed(root: RunFolder, seed: int, pool: Pool, device: torch.device) -> dict:
    """The whole twin experiment for one seed, in root/seed<seed>/ (complete when its metrics.json exists).
    Returns {"seed", "plain": test metrics, "aug": test metrics} at the last epoch."""
    run = root.sub(f"seed{seed}", seed=seed)
    if run.complete:
        return run.metrics()["result"]
    args = run.create(device).args
    seed_dir, main = run.path, distributed.is_main()
    train_size, val_size, test_size = split_sizes(args)
    twin = twin_data(pool, train_size, val_size, test_size, args.image_size, seed, args.aug_calls, args.aug_per_call,
                     mean_std=(IMAGENET_MEAN, IMAGENET_STD) if args.init == "imagenet" else None)
    if main:
        write_augmentation_report(seed_dir, twin, args)
    models = dict(zip(MODELS, twin_models(len(pool.classes), args.init, seed)))
    data = {"plain": twin.plain, "aug": twin.aug}
    metrics = {name: train_one(run, name, models[name], data[name], device) for name in MODELS}
    if not main:
        return {}
    result = {"seed": seed, **{name: {k: v for k, v in metrics[name]["test_metrics"].items()} for name in MODELS}}
    for name in MODELS:
        cm = result[name]["confusion_matrix"]
        print(f"seed {seed}, model_{name}, last epoch: accuracy {result[name]['acc']:.4f}, precision (weighted) "
              f"{result[name]['precision_weighted']:.4f}, recall {result[name]['recall_weighted']:.4f}, F1 "
              f"{result[name]['f1_weighted']:.4f}, F1 (macro) {result[name]['f1_macro']:.4f}; confusion matrix "
              f"(rows true {'/'.join(map(printable, pool.classes))}, columns predicted) {cm}", flush=True)
    eval_metrics({name: [read_history(seed_dir / name / "history.csv")] for name in MODELS},
                 seed_dir / "eval_metrics.png", f"seed {seed}: {experiment_title(args, pool, test_size)}")
    run.finish({"result": result, "sizes": {"train": train_size, "val": val_size, "test": test_size,
                                            "train_augmented": len(twin.aug.train)}})
    return result


def experiment_title(args: argparse.Namespace, pool: Pool, test_size: int) -> str:
    return (f"ResNet-50 ({args.init} init) on {pool.name} at {args.image_size} px, {args.epochs} epochs, "
            f"{test_size} test images")


def run(args: argparse.Namespace) -> int:
    args.seeds = list(args.seeds) if args.seeds else [args.seed]
    check_flags(args)
    root = RunFolder.check(args, TASK)
    device = start(args)
    if args.init == "imagenet":
        imagenet_state_dict(WEIGHTS)  # the weights are there (one error line otherwise), before the photos decode
    pool = load_pool(args.dataset, args.data_dir, args.image_size, args.max_pixels, args.max_aspect)
    train_size, val_size, test_size = split_sizes(args)
    for seed in args.seeds:  # every split fits (one error line otherwise) before any folder is made
        balanced_split(pool, train_size, val_size, test_size, seed)
    root.create(device, classes=pool.classes,
                pretrained_weights=weights_record(WEIGHTS) if args.init == "imagenet" else None, pool={
        "train": len(pool.train), "test": len(pool.test) if pool.test is not pool.train else None,
        "skipped": pool.skipped})
    write_skipped(root.path, pool.skipped)  # the terminal showed the first few; the run folder keeps them all
    per_seed = [run_seed(root, seed, pool, device) for seed in args.seeds]
    if not distributed.is_main():
        return 0
    folder, root = root, root.path
    rows = summarize(per_seed)
    table = summary_markdown(rows, test_size, args.seeds)
    seeds_table = per_seed_markdown(per_seed)
    original = ("The original report (one run, 28 test images, random init): plain accuracy "
                f"{ORIGINAL['plain']['acc']:.4f}, F1 (weighted) {ORIGINAL['plain']['f1_weighted']:.4f}; augmented "
                f"accuracy {ORIGINAL['aug']['acc']:.4f}, F1 (weighted) {ORIGINAL['aug']['f1_weighted']:.4f}.\n")
    (root / "summary.md").write_text(f"# {experiment_title(args, pool, test_size)}\n\n{table}\n{seeds_table}\n{original}")
    write_seed_tables(root, per_seed, rows)
    eval_metrics({name: [read_history(root / f"seed{s}" / name / "history.csv") for s in args.seeds] for name in MODELS},
                 root / "eval_metrics.png", experiment_title(args, pool, test_size) +
                 (f", mean ± std over {len(args.seeds)} seeds" if len(args.seeds) > 1 else ""))
    print(f"\n{experiment_title(args, pool, test_size)}\n{table}\n{seeds_table}\n{original}", flush=True)
    folder.finish({"seeds": args.seeds, "per_seed": per_seed, "summary": rows,
                   "sizes": {"train": train_size, "val": val_size, "test": test_size},
                   "original_report": ORIGINAL})  # last: marks the experiment complete
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_main(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
