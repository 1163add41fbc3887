"""The configurable 5-block CNN of the iNaturalist assignment (part A), and its exact counts.

    5 x [conv k x k -> BatchNorm (optional) -> activation -> max-pool 2x2 stride 2]
    -> Flatten -> Linear(flat, n) -> activation -> Dropout -> Linear(n, classes)

The original had no activation between its two dense layers, so they collapsed into one linear map;
here the activation is always there. Parameter and multiply-accumulate (MAC) counts come from closed
forms (`parameter_count`, `layer_table`), never from summing the built module, so that the tests can
check one against the other (sum of p.numel(), torchsummary, torch.utils.flop_counter).

    cfg = CNNConfig(filters=(64,), organisation="same", kernel=5, padding="same", bias=True, activation="gelu",
                    batch_norm=True, dropout=0.3, dense=128)
    model = build_cnn(cfg, 224)                  # model.features[4] is the last block, [4][0] its conv
    print(format_layer_table(layer_table(cfg, 224)))
"""
from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass

import torch
import torch.nn as nn

# PyTorch warns once that padding='same' with an even kernel pads a copy of the input: expected here (kernel 4).
warnings.filterwarnings("ignore", message="Using padding='same' with even kernel")

from common.errors import UserError

ACTIVATIONS = ("relu", "gelu", "silu", "mish", "elu", "leaky_relu")
ORGANISATIONS = ("same", "double", "half")
PADDINGS = ("same", "valid")
NUM_BLOCKS = 5

_ACTIVATION_MODULES: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "mish": nn.Mish, "elu": nn.ELU, "leaky_relu": nn.LeakyReLU,
}

# Elementwise work that is not a MAC, per output element, for the "other ops" column (inference):
# a bias add is 1, BatchNorm folds to a per-channel scale and shift (a multiply and an add: 2), an
# activation is 1 evaluation, a 2x2 max-pool takes 3 comparisons per output.
_BIAS_OPS, _BN_OPS, _ACT_OPS, _POOL_OPS = 1, 2, 1, 3


def _is_int(x: object) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _choice(field: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"unknown {field} {value!r}; choose one of {', '.join(choices)}")


def _positive_int(field: str, value: object) -> int:
    if not _is_int(value) or value < 1:
        raise ValueError(f"{field} must be a positive integer, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class CNNConfig:
    """Everything that shapes the network. No defaults of its own: a run's come from the original's best
    configuration (task_inaturalist.recipe.ORIGINAL_BEST, the flags' defaults), in one place."""

    filters: tuple[int, ...]  # one count (the first block's, organised by `organisation`), or one per block (5)
    organisation: str         # same | double | half (ignored for 5 explicit counts)
    kernel: int
    padding: str              # same: output = input size (PyTorch's "same", also for even k); valid: none
    bias: bool                # conv bias
    activation: str
    batch_norm: bool
    dropout: float
    dense: int
    num_classes: int = 10
    in_channels: int = 3

    def __post_init__(self) -> None:
        # Normalise while validating (one count or a list becomes a tuple, numpy ints become ints), so that
        # equal configurations compare and hash equal. object.__setattr__ because the dataclass is frozen.
        f = self.filters
        if isinstance(f, (list, tuple)):
            if len(f) not in (1, NUM_BLOCKS):
                raise ValueError(f"filters takes one count (organised by organisation) or one count per block "
                                 f"({NUM_BLOCKS}), got {len(f)}: {list(f)}")
            f = tuple(_positive_int("each filter count", v) for v in f)
        else:
            f = (_positive_int("filters", f),)
        object.__setattr__(self, "filters", f)
        _choice("organisation", self.organisation, ORGANISATIONS)
        _choice("padding", self.padding, PADDINGS)
        _choice("activation", self.activation, ACTIVATIONS)
        for name in ("kernel", "dense", "num_classes", "in_channels"):
            object.__setattr__(self, name, _positive_int(name, getattr(self, name)))
        for name in ("bias", "batch_norm"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        p = self.dropout
        if not isinstance(p, numbers.Real) or isinstance(p, bool) or not 0 <= p < 1:
            raise ValueError(f"dropout must be a probability in [0, 1), got {p!r}")
        object.__setattr__(self, "dropout", float(p))

    def block_filters(self) -> list[int]:
        """The filter count of each of the 5 blocks; "half" never goes below 1."""
        if len(self.filters) == NUM_BLOCKS:
            return list(self.filters)
        m = self.filters[0]
        if self.organisation == "same":
            return [m] * NUM_BLOCKS
        if self.organisation == "double":
            return [m * 2 ** i for i in range(NUM_BLOCKS)]
        return [max(1, m // 2 ** i) for i in range(NUM_BLOCKS)]


# ----------------------------------------------------------------------------- shapes

def _conv_size(cfg: CNNConfig, size: int) -> int:
    return size if cfg.padding == "same" else size - cfg.kernel + 1


def min_image_size(cfg: CNNConfig) -> int:
    """The smallest input side for which no feature map vanishes: 32 with same padding; with valid padding
    a_5 = k + 1 and a_i = 2 a_(i+1) + k - 1 (block i's conv must leave 2 a_(i+1) pixels for the pool)."""
    need = 1  # the side wanted after the last block
    for _ in range(NUM_BLOCKS):
        need = 2 * need + (0 if cfg.padding == "same" else cfg.kernel - 1)
    return need


def _spatial(cfg: CNNConfig, image_size: int) -> list[tuple[int, int, int]]:
    """(input side, side after the conv, side after the pool) of each block; UserError if a map vanishes."""
    if not _is_int(image_size) or image_size < 1:
        raise UserError(f"image size must be a positive integer, got {image_size!r}")
    out, size = [], int(image_size)
    for b in range(NUM_BLOCKS):
        conv = _conv_size(cfg, size)
        if conv < 2:  # conv < 1: the convolution leaves nothing; conv == 1: the 2x2 pool leaves nothing
            what = (f"its {cfg.kernel}x{cfg.kernel} valid convolution leaves nothing of a {size}x{size} map"
                    if conv < 1 else f"its 2x2 max-pool leaves nothing of a {conv}x{conv} map")
            raise UserError(f"the feature map vanishes in block {b + 1} (features.{b}) at image size {image_size}: "
                            f"{what}; use an image size of at least {min_image_size(cfg)} "
                            f"for kernel {cfg.kernel} with {cfg.padding} padding")
        out.append((size, conv, conv // 2))
        size = conv // 2
    return out


def feature_sizes(cfg: CNNConfig, image_size: int) -> list[int]:
    """The spatial side after each of the 5 blocks (conv, then floor(side / 2) from the pool)."""
    return [pooled for _, _, pooled in _spatial(cfg, image_size)]


# ----------------------------------------------------------------------------- the model

def _activation(name: str) -> nn.Module:
    return _ACTIVATION_MODULES[name]()  # not in-place: Grad-CAM hooks keep the conv's output


class ConfigurableCNN(nn.Module):
    """`features`: 5 blocks nn.Sequential(conv, [BatchNorm2d,] activation, MaxPool2d), so "features.4" is the
    last block and "features.4.0" its conv. `classifier`: Flatten, Linear, activation, Dropout, Linear
    (the Dropout is there even at p=0, so the classifier's indices never move)."""

    def __init__(self, cfg: CNNConfig, image_size: int) -> None:
        super().__init__()
        spatial = _spatial(cfg, image_size)
        self.config, self.image_size = cfg, int(image_size)
        blocks, c_in = [], cfg.in_channels
        for c_out in cfg.block_filters():
            layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, cfg.kernel, stride=1, bias=cfg.bias,
                                                 padding="same" if cfg.padding == "same" else 0)]
            if cfg.batch_norm:
                layers.append(nn.BatchNorm2d(c_out))
            layers += [_activation(cfg.activation), nn.MaxPool2d(2, 2)]
            blocks.append(nn.Sequential(*layers))
            c_in = c_out
        self.features = nn.Sequential(*blocks)
        flat = c_in * spatial[-1][2] ** 2
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(flat, cfg.dense), _activation(cfg.activation), nn.Dropout(cfg.dropout),
            nn.Linear(cfg.dense, cfg.num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.image_size, self.image_size):
            # otherwise the first Linear fails with an opaque "mat1 and mat2 shapes" message
            raise ValueError(f"this CNN was built for {self.image_size}x{self.image_size} inputs, got {tuple(x.shape)}")
        return self.classifier(self.features(x))


def build_cnn(cfg: CNNConfig, image_size: int) -> nn.Module:
    """The network for (B, cfg.in_channels, image_size, image_size) inputs; UserError if a map vanishes."""
    return ConfigurableCNN(cfg, image_size)


# ----------------------------------------------------------------------------- closed-form counts

def layer_table(cfg: CNNConfig, image_size: int) -> list[dict]:
    """One row per leaf module, in forward order (the rows of torchsummary), from closed forms:
    name (the module's path), type, output_shape (C, H, W) or (n,), params, macs, other.

    macs: conv H_out * W_out * C_out * k * k * C_in, linear in * out (padded zeros are multiplied too, as
    in FlopCounterMode, which reports 2 FLOPs per MAC); every other layer 0.
    other: elementwise work that is not a MAC (bias adds 1, BatchNorm 2, activation 1 per element; max-pool
    3 comparisons per output).
    """
    rows: list[dict] = []

    def row(name: str, kind: str, shape: tuple[int, ...], params: int = 0, macs: int = 0, other: int = 0) -> None:
        rows.append({"name": name, "type": kind, "output_shape": shape, "params": params, "macs": macs,
                     "other": other})

    k, c_in = cfg.kernel, cfg.in_channels
    act = _ACTIVATION_MODULES[cfg.activation].__name__
    for b, ((_, conv, pooled), c_out) in enumerate(zip(_spatial(cfg, image_size), cfg.block_filters())):
        elems = c_out * conv * conv
        row(f"features.{b}.0", "Conv2d", (c_out, conv, conv), params=k * k * c_in * c_out + cfg.bias * c_out,
            macs=elems * k * k * c_in, other=cfg.bias * _BIAS_OPS * elems)
        i = 1
        if cfg.batch_norm:
            row(f"features.{b}.1", "BatchNorm2d", (c_out, conv, conv), params=2 * c_out, other=_BN_OPS * elems)
            i = 2
        row(f"features.{b}.{i}", act, (c_out, conv, conv), other=_ACT_OPS * elems)
        row(f"features.{b}.{i + 1}", "MaxPool2d", (c_out, pooled, pooled), other=_POOL_OPS * c_out * pooled * pooled)
        c_in, side = c_out, pooled
    flat, n, classes = c_in * side * side, cfg.dense, cfg.num_classes
    row("classifier.0", "Flatten", (flat,))
    row("classifier.1", "Linear", (n,), params=flat * n + n, macs=flat * n, other=_BIAS_OPS * n)
    row("classifier.2", act, (n,), other=_ACT_OPS * n)
    row("classifier.3", "Dropout", (n,))
    row("classifier.4", "Linear", (classes,), params=n * classes + classes, macs=n * classes, other=_BIAS_OPS * classes)
    return rows


def parameter_count(cfg: CNNConfig, image_size: int) -> int:
    """Closed form: sum over blocks of k^2 C_in C_out + [bias] C_out + [BN] 2 C_out, then
    (C_5 S_5^2) n + n + n * classes + classes, with S_5 the side after the last block."""
    k, c_in, total = cfg.kernel, cfg.in_channels, 0
    for c_out in cfg.block_filters():
        total += k * k * c_in * c_out + cfg.bias * c_out + cfg.batch_norm * 2 * c_out
        c_in = c_out
    flat = c_in * feature_sizes(cfg, image_size)[-1] ** 2
    return total + flat * cfg.dense + cfg.dense + cfg.dense * cfg.num_classes + cfg.num_classes


def total_macs(cfg: CNNConfig, image_size: int) -> int:
    """Multiply-accumulates of one image through all conv and linear layers (FLOPs = 2 x this)."""
    return sum(r["macs"] for r in layer_table(cfg, image_size))


def format_layer_table(rows: list[dict]) -> str:
    """A fixed-width table in torchsummary's look, with a total line and what the columns count."""
    header = f"{'Layer':<15} {'Type':<12} {'Output Shape':>16} {'Param #':>13} {'MACs':>17} {'Other ops':>15}"
    rule, double = "-" * len(header), "=" * len(header)
    lines = [rule, header, double]
    for r in rows:
        shape = "(" + ", ".join(map(str, r["output_shape"])) + ("," if len(r["output_shape"]) == 1 else "") + ")"
        lines.append(f"{r['name']:<15} {r['type']:<12} {shape:>16} {r['params']:>13,} {r['macs']:>17,} "
                     f"{r['other']:>15,}")
    params, macs, other = (sum(r[key] for r in rows) for key in ("params", "macs", "other"))
    lines += [double, f"{'Total':<15} {'':<12} {'':>16} {params:>13,} {macs:>17,} {other:>15,}", rule,
              f"Total params: {params:,}",
              f"Total MACs per image: {macs:,} ({2 * macs / 1e9:.3f} GFLOPs at 2 FLOPs per MAC)",
              "MACs: conv and linear multiply-accumulates. Other ops (not MACs): bias adds 1, BatchNorm 2,",
              "activation 1 per element; max-pool 3 comparisons per output.",
              rule]
    return "\n".join(lines) + "\n"


def gradcam_block(cnn: CNNConfig, image_size: int) -> str:
    """The deepest block whose output is at least 4 x 4 (a coarser map says little), else the first."""
    sizes = feature_sizes(cnn, image_size)
    deep = [i for i, s in enumerate(sizes) if s >= 4]
    return f"features.{deep[-1] if deep else 0}"
