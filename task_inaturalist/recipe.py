"""Part A's one configuration: the flat dict of hyperparameters (`params`, the keys PARAM_KEYS) that the flags
give, a sweep trial samples, best_config.json and config.json store, and `--config` reads back. What runs is
derived from it, and nothing else: the CNN's architecture (`cnn_config`, for task_inaturalist.cnn and its exact
counts) and how it trains (`train_config`, common.training's TrainConfig; `augmentation`).

`check_params` makes every run use every key or stop: the original sampled keys that never reached its model.
"""
from __future__ import annotations

from dataclasses import asdict, fields

from common.augment import Augment, random_resized_crop
from common.training import OPTIMIZERS, TrainConfig
from task_inaturalist.cnn import CNNConfig

CNN_KEYS = tuple(f.name for f in fields(CNNConfig) if f.name not in ("num_classes", "in_channels"))
# How part A trains, beside the architecture; the defaults are the original's best configuration's.
TRAINING_DEFAULTS = {"augment": True, "lr": 2.7e-4, "weight_decay": 1.33e-3, "batch_size": 32, "optimizer": "adam"}
PARAM_KEYS = CNN_KEYS + tuple(TRAINING_DEFAULTS)

# The original report's best configuration (best validation 43.38%, test 44.82% on iNaturalist-12K).
ORIGINAL_BEST = {"filters": 64, "organisation": "same", "kernel": 5, "padding": "same", "bias": True,
                 "activation": "gelu", "batch_norm": True, "dropout": 0.31396, "dense": 128, "augment": True,
                 "lr": 0.00027, "weight_decay": 0.00133, "batch_size": 32, "optimizer": "adam"}
ORIGINAL_FIGURES = {"best_val_acc": 0.4338, "test_acc": 0.4482, "train_acc": 0.5376, "epochs": 40}


def check_params(params: dict) -> None:
    """A ValueError naming what is wrong: a missing or unused key, or a training value out of range (weight
    decay 0 is allowed: the original crashed on it)."""
    unknown = sorted(set(params) - set(PARAM_KEYS))
    missing = [k for k in PARAM_KEYS if k not in params]
    if unknown or missing:
        problems = ([f"unknown keys {', '.join(unknown)}"] if unknown else []) + \
            ([f"missing keys {', '.join(missing)}"] if missing else [])
        raise ValueError(f"part A configuration: {'; '.join(problems)}")
    if params["optimizer"] not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {params['optimizer']!r}; choose one of {', '.join(OPTIMIZERS)}")
    if not params["lr"] > 0 or params["weight_decay"] < 0 or params["batch_size"] < 1:
        raise ValueError(f"lr must be > 0, weight_decay >= 0 and batch_size >= 1, got lr {params['lr']}, "
                         f"weight_decay {params['weight_decay']}, batch_size {params['batch_size']}")


def cnn_config(params: dict) -> CNNConfig:
    """The architecture of a checked configuration (check_params first)."""
    check_params(params)
    cnn = {k: params[k] for k in CNN_KEYS}
    if isinstance(cnn["filters"], list):
        cnn["filters"] = tuple(cnn["filters"])
    return CNNConfig(**cnn)


def default_params() -> dict:
    """CNNConfig's defaults and TRAINING_DEFAULTS, as one configuration (JSON-ready)."""
    arch = asdict(CNNConfig())
    if isinstance(arch["filters"], tuple):
        arch["filters"] = list(arch["filters"])
    return {**{k: arch[k] for k in CNN_KEYS}, **TRAINING_DEFAULTS}


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
