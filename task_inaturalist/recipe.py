"""Part A's one configuration: the flat dict of hyperparameters (`params`, the keys PARAM_KEYS) that the flags
give, a sweep trial samples, best_config.json and config.json store, and `--config` reads back. What runs is
derived from it, and nothing else: the CNN's architecture (`cnn_config`, for task_inaturalist.cnn and its exact
counts) and how it trains (`train_config`, common.training's TrainConfig; `augmentation`).

- ORIGINAL_BEST, the original report's best configuration, is the one place its defaults are written: the flags'
  defaults come from it.
- "filters" has one shape everywhere: a list of one count (the first block's, organised by "organisation") or of
  five (one per block). An older best_config.json's single number is read as a list of one.
- Every value from a file (a --config file, a checkpoint's saved configuration) goes through the flags' own
  validators (`checked_params`), and every run uses every key or stops: the original sampled keys that never
  reached its model.
"""
from __future__ import annotations

import argparse

from common.augment import Augment, random_resized_crop
from common.cli import batch_int, checked_values, finite_float, int_in, non_negative_float
from common.errors import UserError
from common.files import read_json
from common.training import TrainConfig
from task_inaturalist.cnn import ACTIVATIONS, ORGANISATIONS, PADDINGS, CNNConfig

# The original report's best configuration (best validation 43.38%, test 44.82% on iNaturalist-12K).
ORIGINAL_BEST = {"filters": [64], "organisation": "same", "kernel": 5, "padding": "same", "bias": True,
                 "activation": "gelu", "batch_norm": True, "dropout": 0.31396, "dense": 128, "augment": True,
                 "lr": 0.00027, "weight_decay": 0.00133, "batch_size": 32, "optimizer": "adam"}
PARAM_KEYS = tuple(ORIGINAL_BEST)
CNN_KEYS = ("filters", "organisation", "kernel", "padding", "bias", "activation", "batch_norm", "dropout", "dense")


def add_part_a_flags(parser: argparse.ArgumentParser) -> None:
    """Part A's architecture and recipe as flags, their defaults the original's best configuration (--lr and
    --batch-size are the shared flags, set by the caller from ORIGINAL_BEST too)."""
    a = parser.add_argument_group("part A: the CNN (defaults: the original report's best configuration)")
    b = ORIGINAL_BEST
    a.add_argument("--filters", type=int_in(1, 4096), nargs="+", default=b["filters"],
                   help="the first block's filters (organised by --organisation), or 5 numbers, one per block")
    a.add_argument("--organisation", choices=ORGANISATIONS, default=b["organisation"],
                   help="filters of blocks 2-5 from the first's: the same, doubling or halving per block")
    a.add_argument("--kernel", type=int_in(1, 31), default=b["kernel"], help="convolution kernel side")
    a.add_argument("--padding", choices=PADDINGS, default=b["padding"], help="convolution padding")
    a.add_argument("--bias", action=argparse.BooleanOptionalAction, default=b["bias"], help="conv bias")
    a.add_argument("--activation", choices=ACTIVATIONS, default=b["activation"],
                   help="after every convolution and the dense layer")
    a.add_argument("--batch-norm", action=argparse.BooleanOptionalAction, default=b["batch_norm"],
                   help="BatchNorm after every convolution")
    a.add_argument("--dropout", type=finite_float, default=b["dropout"], help="before the output layer")
    a.add_argument("--dense", type=int_in(1, 65536), default=b["dense"], help="neurons of the dense layer")
    a.add_argument("--augment", action=argparse.BooleanOptionalAction, default=b["augment"],
                   help="random resized crop and flip, per sample, batched on the device")
    a.add_argument("--optimizer", choices=("adam", "sgd"), default=b["optimizer"], help="part A's optimiser")
    a.add_argument("--weight-decay", type=non_negative_float, default=b["weight_decay"], help="part A's weight decay")
    a.add_argument("--warmup-epochs", type=non_negative_float, default=0.5,
                   help="linear warm-up, then cosine to 0 (parts A and B)")
    a.add_argument("--eval-batch-size", type=batch_int, default=256,
                   help="images per step when validating and testing (parts A and B)")


def params_from_args(args: argparse.Namespace) -> dict:
    """Part A's configuration from the flags."""
    return {key: list(args.filters) if key == "filters" else getattr(args, key) for key in PARAM_KEYS}


def checked_params(parser: argparse.ArgumentParser, params: object, source: str) -> dict:
    """Part A's configuration from a file or a checkpoint, through the flags' validators: one error line for a
    missing or unknown key or a value no flag would take."""
    if not isinstance(params, dict) or sorted(params) != sorted(PARAM_KEYS):
        raise UserError(f"{source} has no part A configuration: expected a 'params' object with the keys "
                        f"{', '.join(PARAM_KEYS)}")
    filters = params["filters"] if isinstance(params["filters"], list) else [params["filters"]]  # an older file's
    return checked_values(parser, {**params, "filters": filters}, source)


def load_config_defaults(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    """--config JSON (a best_config.json, or any JSON with its "params"): its part A configuration becomes the
    parser's defaults, so flags given explicitly still win. Run before the flags are parsed (Parser.before_parse)."""
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            path = argv[i + 1]
        elif arg.startswith("--config="):
            path = arg.split("=", 1)[1]
        else:
            continue
        saved = read_json(path, f"--config {path}")
        parser.set_defaults(**checked_params(parser, saved.get("params", saved), f"--config {path}"))


def checked_cnn(params: dict) -> CNNConfig:
    """The architecture of part A's configuration, or one error line saying what is wrong with it (a --filters
    of neither one count nor five, a --dropout outside [0, 1), ...)."""
    if len(params["filters"]) not in (1, 5):
        raise UserError(f"--filters takes one number (the first block's) or five (one per block), got "
                        f"{len(params['filters'])}")
    if not 0 <= params["dropout"] < 1:
        raise UserError(f"--dropout must be in [0, 1), got {params['dropout']}")
    try:
        return cnn_config(params)
    except (ValueError, TypeError) as e:
        raise UserError(f"part A configuration: {e}") from None


def check_params(params: dict) -> None:
    """A ValueError naming what is wrong: a missing or unused key, or a training value out of range (weight
    decay 0 is allowed: the original crashed on it)."""
    unknown = sorted(set(params) - set(PARAM_KEYS))
    missing = [k for k in PARAM_KEYS if k not in params]
    if unknown or missing:
        problems = ([f"unknown keys {', '.join(unknown)}"] if unknown else []) + \
            ([f"missing keys {', '.join(missing)}"] if missing else [])
        raise ValueError(f"part A configuration: {'; '.join(problems)}")
    if params["optimizer"] not in ("adam", "sgd"):
        raise ValueError(f"unknown optimizer {params['optimizer']!r}; choose one of adam, sgd")
    if not params["lr"] > 0 or params["weight_decay"] < 0 or params["batch_size"] < 1:
        raise ValueError(f"lr must be > 0, weight_decay >= 0 and batch_size >= 1, got lr {params['lr']}, "
                         f"weight_decay {params['weight_decay']}, batch_size {params['batch_size']}")


def cnn_config(params: dict) -> CNNConfig:
    """The architecture of a checked configuration."""
    check_params(params)
    return CNNConfig(**{k: tuple(params[k]) if k == "filters" else params[k] for k in CNN_KEYS})


def train_config(params: dict, epochs: int, *, warmup_epochs: float = 0.5, label_smoothing: float = 0.0,
                 eval_batch_size: int = 256, save_checkpoints: bool = True) -> TrainConfig:
    """The training keys of `params` (lr, weight_decay, batch_size, optimizer) as common.training's TrainConfig:
    a short linear warm-up, then a cosine decay to zero (nothing in the schedule looks at validation, so a
    sweep compares configurations, not schedule luck)."""
    return TrainConfig(epochs=epochs, batch_size=params["batch_size"], lr=params["lr"],
                       weight_decay=params["weight_decay"], optimizer=params["optimizer"], schedule="cosine",
                       warmup_epochs=warmup_epochs, label_smoothing=label_smoothing, eval_batch_size=eval_batch_size,
                       save_checkpoints=save_checkpoints)


def augmentation(augment: bool) -> Augment | None:
    """Random resized crop (25-100% of the area, aspect 3/4-4/3) and a horizontal flip, per sample, on
    uint8 batches on the device; None without augmentation."""
    if not augment:
        return None
    return lambda x, g: random_resized_crop(x, g, scale=(0.25, 1.0), flip_p=0.5)
