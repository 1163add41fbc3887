"""One configuration of part A, as the flat dict of hyperparameters that a sweep trial samples,
best_config.json stores and train.py's flags give: the CNN's architecture (task_inaturalist.cnn.CNNConfig)
plus how it is trained (Recipe). Every run of part A goes through `from_params`, and it uses every key
or stops: the original sampled keys that never reached its model.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from common.augment import Augment, random_resized_crop
from common.training import OPTIMIZERS, TrainConfig
from task_inaturalist.cnn import CNNConfig

CNN_KEYS = tuple(f.name for f in fields(CNNConfig) if f.name not in ("num_classes", "in_channels"))
RECIPE_KEYS = ("augment", "lr", "weight_decay", "batch_size", "optimizer")
PARAM_KEYS = CNN_KEYS + RECIPE_KEYS

# The original report's best configuration (best validation 43.38%, test 44.82% on iNaturalist-12K).
ORIGINAL_BEST = {"filters": 64, "organisation": "same", "kernel": 5, "padding": "same", "bias": True,
                 "activation": "gelu", "batch_norm": True, "dropout": 0.31396, "dense": 128, "augment": True,
                 "lr": 0.00027, "weight_decay": 0.00133, "batch_size": 32, "optimizer": "adam"}
ORIGINAL_FIGURES = {"best_val_acc": 0.4338, "test_acc": 0.4482, "train_acc": 0.5376, "epochs": 40}


@dataclass(frozen=True)
class Recipe:
    """How part A trains, beside the architecture."""
    augment: bool = True        # random resized crop (area 25-100%) and horizontal flip, batched on the device
    lr: float = 2.7e-4
    weight_decay: float = 1.33e-3  # 0 allowed (the original crashed on it)
    batch_size: int = 32
    optimizer: str = "adam"     # adam or sgd (momentum 0.9, nesterov)

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
        if not self.lr > 0 or self.weight_decay < 0 or self.batch_size < 1:
            raise ValueError(f"lr must be > 0, weight_decay >= 0 and batch_size >= 1, got {self}")


def from_params(params: dict) -> tuple[CNNConfig, Recipe]:
    """(architecture, recipe) from a flat dict with exactly the keys PARAM_KEYS; a missing or an unused key
    is a ValueError naming it."""
    unknown = sorted(set(params) - set(PARAM_KEYS))
    missing = [k for k in PARAM_KEYS if k not in params]
    if unknown or missing:
        problems = ([f"unknown keys {', '.join(unknown)}"] if unknown else []) + \
            ([f"missing keys {', '.join(missing)}"] if missing else [])
        raise ValueError(f"part A configuration: {'; '.join(problems)}")
    cnn = {k: params[k] for k in CNN_KEYS}
    if isinstance(cnn["filters"], list):
        cnn["filters"] = tuple(cnn["filters"])
    return CNNConfig(**cnn), Recipe(**{k: params[k] for k in RECIPE_KEYS})


def to_params(cnn: CNNConfig, recipe: Recipe) -> dict:
    """The flat dict of `cnn` and `recipe` (JSON-ready): from_params(to_params(c, r)) == (c, r)."""
    arch = asdict(cnn)
    if isinstance(arch["filters"], tuple):
        arch["filters"] = list(arch["filters"])
    return {**{k: arch[k] for k in CNN_KEYS}, **asdict(recipe)}


def train_config(recipe: Recipe, epochs: int, *, warmup_epochs: float = 0.5, label_smoothing: float = 0.0,
                 eval_batch_size: int = 256, save_checkpoints: bool = True) -> TrainConfig:
    """The recipe as common.training's TrainConfig: a short linear warm-up, then a cosine decay to zero
    (nothing in the schedule looks at validation, so a sweep compares recipes, not schedule luck)."""
    return TrainConfig(epochs=epochs, batch_size=recipe.batch_size, lr=recipe.lr, weight_decay=recipe.weight_decay,
                       optimizer=recipe.optimizer, schedule="cosine", warmup_epochs=warmup_epochs,
                       label_smoothing=label_smoothing, eval_batch_size=eval_batch_size,
                       save_checkpoints=save_checkpoints)


def augmentation(recipe: Recipe) -> Augment | None:
    """Random resized crop (25-100% of the area, aspect 3/4-4/3) and a horizontal flip, per sample, on
    uint8 batches on the device; None without augmentation."""
    if not recipe.augment:
        return None
    return lambda x, g: random_resized_crop(x, g, scale=(0.25, 1.0), flip_p=0.5)
