"""The configurable iNaturalist CNN: its closed-form counts against torchsummary, sum(p.numel()) and
torch.utils.flop_counter, its validation, and that every config field reaches the built model."""
import contextlib
import dataclasses
import io
import json
import re
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode
from torchsummary import summary

from common.errors import UserError
from common.gradcam import GradCAM
from common.hooks import get_layer
from task_inaturalist import cnn
from task_inaturalist.cnn import (
    ACTIVATIONS,
    build_cnn,
    feature_sizes,
    format_layer_table,
    layer_table,
    min_image_size,
    parameter_count,
    total_macs,
)

# A plain network (CNNConfig has no defaults of its own: a run's are the original's best configuration); each case
# below changes a few fields of it.
PLAIN = {"filters": 32, "organisation": "same", "kernel": 3, "padding": "same", "bias": True, "activation": "relu",
         "batch_norm": False, "dropout": 0.0, "dense": 128}


def CNNConfig(**changes) -> cnn.CNNConfig:  # noqa: N802 (it stands for the class, with PLAIN's fields)
    return cnn.CNNConfig(**{**PLAIN, **changes})


# PyTorch warns that padding="same" with an even kernel pads a copy of the input; that is what we ask for.
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")

# Small configurations covering every organisation, both paddings, odd and even kernels, bias off, BN on,
# every activation, and sizes where the floor of the pool (or of a valid convolution) matters.
CASES = {
    "same-k3-32": (CNNConfig(filters=4, kernel=3, dense=8), 32),
    "double-bn-gelu-37": (CNNConfig(filters=2, organisation="double", activation="gelu", batch_norm=True, dense=6), 37),
    "half-nobias-mish-45": (CNNConfig(filters=16, organisation="half", activation="mish", bias=False, dense=5), 45),
    "tuple-k4same-elu-45": (CNNConfig(filters=(3, 5, 7, 4, 2), kernel=4, activation="elu", dense=7), 45),
    "valid-k3-silu-99": (CNNConfig(filters=3, kernel=3, padding="valid", activation="silu", dense=4), 99),
    "valid-k2-leaky-bn-nobias-67": (CNNConfig(filters=2, organisation="double", kernel=2, padding="valid",
                                              activation="leaky_relu", batch_norm=True, bias=False, dense=9), 67),
    "valid-k5-160": (CNNConfig(filters=2, kernel=5, padding="valid", num_classes=3, in_channels=1), 160),
    "k6same-bn-64": (CNNConfig(filters=3, kernel=6, batch_norm=True, dropout=0.3, dense=3), 64),
}
BEST = CNNConfig(filters=64, kernel=5, padding="same", activation="gelu", batch_norm=True, bias=True, dense=128)


def case(name):
    torch.manual_seed(0)
    cfg, size = CASES[name]
    return cfg, size, build_cnn(cfg, size)


def torchsummary_rows(model, cfg, size):
    """torchsummary's rows as (type, output shape, params), and its "Total params"."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        summary(model, (cfg.in_channels, size, size), device="cpu")
    text = buf.getvalue()
    rows = [(m[1], tuple(json.loads(m[2])[1:]), int(m[3].replace(",", "")))
            for m in re.finditer(r"^\s*(\w+)-\d+\s+(\[[-\d, ]+\])\s+([\d,]+)$", text, re.M)]
    total = int(re.search(r"Total params: ([\d,]+)", text)[1].replace(",", ""))
    return rows, total


# ----------------------------------------------------------------------------- parameter counts

@pytest.mark.parametrize("name", CASES)
def test_parameter_count_matches_numel_and_torchsummary_per_layer(name):
    cfg, size, model = case(name)
    rows, ts_total = torchsummary_rows(model, cfg, size)
    table = layer_table(cfg, size)
    assert parameter_count(cfg, size) == sum(p.numel() for p in model.parameters()) == ts_total
    assert sum(r["params"] for r in table) == ts_total
    assert [(r["type"], r["output_shape"], r["params"]) for r in table] == rows  # every row: type, shape, params


@pytest.mark.parametrize("cfg", [BEST, dataclasses.replace(BEST, organisation="double"),
                                 dataclasses.replace(BEST, organisation="half", padding="valid", bias=False),
                                 dataclasses.replace(BEST, filters=(16, 32, 64, 64, 128), kernel=4, batch_norm=False)],
                         ids=["best", "double", "half-valid-nobias", "tuple-k4"])
def test_parameter_count_at_224_matches_numel(cfg):
    assert parameter_count(cfg, 224) == sum(p.numel() for p in build_cnn(cfg, 224).parameters())


def _other_ops(module, output):
    """The "other ops" column's definition, applied to a module and the output it produced."""
    elems = output[0].numel()
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        return elems if module.bias is not None else 0
    if isinstance(module, nn.BatchNorm2d):
        return 2 * elems
    if isinstance(module, nn.MaxPool2d):
        return 3 * elems
    return 0 if isinstance(module, (nn.Flatten, nn.Dropout)) else elems  # an activation


@pytest.mark.parametrize("name", ["tuple-k4same-elu-45", "valid-k2-leaky-bn-nobias-67"])
def test_layer_table_names_shapes_and_other_ops_follow_the_forward_pass(name):
    cfg, size, model = case(name)
    seen = []
    hooks = [m.register_forward_hook(lambda mod, i, o, n=n: seen.append((n, tuple(o.shape[1:]), _other_ops(mod, o))))
             for n, m in model.named_modules() if not list(m.children())]
    model(torch.randn(2, cfg.in_channels, size, size))
    for h in hooks:
        h.remove()
    assert [(r["name"], r["output_shape"], r["other"]) for r in layer_table(cfg, size)] == seen


def test_feature_sizes_floor_at_each_step():
    assert feature_sizes(*CASES["tuple-k4same-elu-45"]) == [22, 11, 5, 2, 1]  # same padding, even kernel
    assert feature_sizes(*CASES["double-bn-gelu-37"]) == [18, 9, 4, 2, 1]
    # valid k=2: 67 -> conv 66 -> 33 -> conv 32 -> 16 -> conv 15 -> 7 -> conv 6 -> 3 -> conv 2 -> 1
    assert feature_sizes(*CASES["valid-k2-leaky-bn-nobias-67"]) == [33, 16, 7, 3, 1]
    assert feature_sizes(BEST, 224) == [112, 56, 28, 14, 7]
    assert feature_sizes(dataclasses.replace(BEST, padding="valid"), 224) == [110, 53, 24, 10, 3]


# ----------------------------------------------------------------------------- MACs

@pytest.mark.parametrize("name", CASES)
def test_macs_match_the_flop_counter_per_layer_and_in_total(name):
    cfg, size, model = case(name)
    batch = 2
    with FlopCounterMode(display=False, depth=None) as counter:
        model(torch.randn(batch, cfg.in_channels, size, size))
    per_module = counter.get_flop_counts()
    table = layer_table(cfg, size)
    prefix = type(model).__name__
    for r in table:
        flops = sum(per_module.get(f"{prefix}.{r['name']}", {}).values())
        assert flops == 2 * batch * r["macs"], r["name"]  # FlopCounterMode counts 2 FLOPs per MAC
    assert sum(r["macs"] > 0 for r in table) == 7  # 5 convs and 2 linears
    assert counter.get_total_flops() == 2 * batch * total_macs(cfg, size)


def _doc_formulas(m, k, n, N, padding, bias, bn):
    """The formulas of task_inaturalist/COUNTS.md, written out independently of cnn.py:
    m filters per block, k x k kernels, n dense neurons, an N x N x 3 input, 10 classes."""
    side, convs = N, []
    for _ in range(5):
        c = side if padding == "same" else side - k + 1
        convs.append(c)
        side = c // 2
    params = k * k * m * (3 + 4 * m) + (5 * bias + 10 * bn) * m + n * (m * side ** 2 + 11) + 10
    macs = k * k * m * (3 * convs[0] ** 2 + m * sum(c ** 2 for c in convs[1:])) + n * (m * side ** 2 + 10)
    return params, macs


@pytest.mark.parametrize("padding", ["same", "valid"])
def test_the_general_formula_in_counts_md_agrees_with_the_closed_form(padding):
    for m, k, n, N, bias, bn in [(64, 5, 128, 224, True, True), (16, 3, 32, 225, False, True),
                                 (32, 4, 64, 161, True, False), (1, 1, 1, 255, False, False),
                                 (7, 2, 9, 190, True, True)]:
        cfg = CNNConfig(filters=m, kernel=k, dense=n, padding=padding, bias=bias, batch_norm=bn)
        assert (parameter_count(cfg, N), total_macs(cfg, N)) == _doc_formulas(m, k, n, N, padding, bias, bn)


def test_counts_md_shows_the_worked_example_as_the_functions_print_it():
    doc = (Path(__file__).parents[1] / "task_inaturalist" / "COUNTS.md").read_text()
    assert format_layer_table(layer_table(BEST, 224)) in doc
    assert f"{parameter_count(BEST, 224):,}" in doc and f"{total_macs(BEST, 224):,}" in doc


def test_format_layer_table_has_a_total_line():
    cfg, size = CASES["same-k3-32"]
    text = format_layer_table(layer_table(cfg, size))
    total = next(line for line in text.splitlines() if line.startswith("Total "))
    assert f"{parameter_count(cfg, size):,}" in total and f"{total_macs(cfg, size):,}" in total
    assert len(text.splitlines()) == len(layer_table(cfg, size)) + 11


# ----------------------------------------------------------------------------- configuration

def test_block_filters_for_each_organisation():
    assert CNNConfig(filters=32).block_filters() == [32] * 5
    assert CNNConfig(filters=16, organisation="double").block_filters() == [16, 32, 64, 128, 256]
    assert CNNConfig(filters=64, organisation="half").block_filters() == [64, 32, 16, 8, 4]
    assert CNNConfig(filters=5, organisation="half").block_filters() == [5, 2, 1, 1, 1]  # floors, never 0
    assert CNNConfig(filters=(8, 4, 2, 4, 8), organisation="double").block_filters() == [8, 4, 2, 4, 8]
    assert CNNConfig(filters=[1, 2, 3, 4, 5]).filters == (1, 2, 3, 4, 5)  # a list is stored as a tuple


@pytest.mark.parametrize("kwargs, message", [
    ({"activation": "tanh"}, "unknown activation 'tanh'"),
    ({"organisation": "triple"}, "unknown organisation"),
    ({"padding": "full"}, "unknown padding"),
    ({"kernel": 0}, "kernel must be a positive integer"),
    ({"kernel": 3.0}, "kernel must be a positive integer"),
    ({"dropout": 1.0}, r"dropout must be a probability in \[0, 1\)"),
    ({"dropout": -0.1}, "dropout must be"),
    ({"filters": (8, 8, 8)}, "one count per block"),
    ({"filters": (8, 8, 0, 8, 8)}, "each filter count must be a positive integer"),
    ({"filters": 0}, "filters must be a positive integer"),
    ({"filters": True}, "filters must be a positive integer"),
    ({"dense": 0}, "dense must be"),
    ({"num_classes": 0}, "num_classes must be"),
    ({"bias": "yes"}, "bias must be True or False"),
    ({"batch_norm": 1}, "batch_norm must be True or False"),
])
def test_invalid_configurations_are_rejected_clearly(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CNNConfig(**kwargs)


@pytest.mark.parametrize("cfg, size, block", [
    (CNNConfig(), 31, 5),                                    # same padding needs 32
    (CNNConfig(kernel=5, padding="valid"), 100, 5),           # 100 -> 96 -> 48 -> 44 -> 22 -> 18 -> 9 -> 5 -> 2
    (CNNConfig(kernel=7, padding="valid"), 7, 1),            # the conv leaves 1 pixel, the pool nothing
    (CNNConfig(kernel=9, padding="valid"), 8, 1),            # the conv itself leaves nothing
])
def test_a_vanishing_feature_map_is_a_user_error_naming_the_block(cfg, size, block):
    for call in (build_cnn, feature_sizes, parameter_count, layer_table):
        with pytest.raises(UserError, match=rf"vanishes in block {block} \(features\.{block - 1}\)") as e:
            call(cfg, size)
        assert "\n" not in str(e.value) and f"at least {min_image_size(cfg)}" in str(e.value)


@pytest.mark.parametrize("cfg", [CNNConfig(filters=1), CNNConfig(filters=1, kernel=3, padding="valid"),
                                 CNNConfig(filters=1, kernel=4, padding="valid")])
def test_min_image_size_is_exactly_the_smallest_that_builds(cfg):
    n = min_image_size(cfg)
    assert build_cnn(cfg, n)(torch.randn(1, 3, n, n)).shape == (1, 10)
    assert feature_sizes(cfg, n)[-1] == 1
    with pytest.raises(UserError):
        build_cnn(cfg, n - 1)


# ----------------------------------------------------------------------------- the module

def test_the_dense_layers_have_an_activation_between_them():
    """The original stacked Linear -> Linear, one linear map in disguise."""
    for act in ACTIVATIONS:
        head = build_cnn(CNNConfig(filters=2, activation=act, dense=6), 32).classifier
        kinds = [type(m) for m in head]
        assert kinds[0] is nn.Flatten and kinds[1] is nn.Linear and kinds[4] is nn.Linear
        assert kinds[2] is type(build_cnn(CNNConfig(filters=2, activation=act), 32).features[0][1])
        assert kinds[3] is nn.Dropout
    torch.manual_seed(0)
    head = build_cnn(CNNConfig(filters=2, dense=6), 32).classifier.double()
    x = torch.randn(16, 2, dtype=torch.double)
    zero = head(torch.zeros_like(x))
    assert not torch.allclose(head(2 * x) - zero, 2 * (head(x) - zero))  # not affine


BASE = CNNConfig(filters=4, kernel=3, dense=8)


def _conv(model, block=0):
    return model.features[block][0]


FIELD_CHANGES = {
    "filters": (8, lambda m: _conv(m).out_channels == 8),
    "organisation": ("double", lambda m: [_conv(m, b).out_channels for b in range(5)] == [4, 8, 16, 32, 64]),
    "kernel": (5, lambda m: _conv(m).kernel_size == (5, 5)),
    "padding": ("valid", lambda m: _conv(m).padding == (0, 0) and m.classifier[1].in_features == 4 * 1 * 1),
    "bias": (False, lambda m: all(_conv(m, b).bias is None for b in range(5))),
    "activation": ("mish", lambda m: isinstance(m.features[0][1], nn.Mish) and isinstance(m.classifier[2], nn.Mish)),
    "batch_norm": (True, lambda m: sum(isinstance(x, nn.BatchNorm2d) for x in m.modules()) == 5),
    "dropout": (0.4, lambda m: m.classifier[3].p == 0.4),
    "dense": (16, lambda m: m.classifier[1].out_features == 16 == m.classifier[4].in_features),
    "num_classes": (7, lambda m: m.classifier[4].out_features == 7),
    "in_channels": (1, lambda m: _conv(m).in_channels == 1),
}


def test_every_config_field_is_covered():
    assert set(FIELD_CHANGES) == {f.name for f in dataclasses.fields(cnn.CNNConfig)}


@pytest.mark.parametrize("field", FIELD_CHANGES)
def test_changing_each_config_field_changes_the_built_model(field):
    value, holds = FIELD_CHANGES[field]
    base, changed = build_cnn(BASE, 94), build_cnn(dataclasses.replace(BASE, **{field: value}), 94)
    assert holds(changed) and not holds(base)
    assert str(changed) != str(base)


@pytest.mark.parametrize("name", ["double-bn-gelu-37", "k6same-bn-64"])
def test_forward_backward_and_cpu_autocast(name):
    cfg, size, model = case(name)
    x = torch.randn(3, cfg.in_channels, size, size)
    model(x).logsumexp(1).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model.eval()(x)
    assert out.shape == (3, cfg.num_classes) and out.dtype == torch.bfloat16
    with pytest.raises(ValueError, match=f"built for {size}x{size}"):
        model(torch.randn(1, cfg.in_channels, size + 1, size + 1))


def test_gradcam_layer_names_reach_the_blocks():
    cfg, size, model = case("same-k3-32")
    assert isinstance(get_layer(model, "features.4.0"), nn.Conv2d)
    with GradCAM(model.eval(), get_layer(model, "features.4")) as cam:
        maps, logits = cam(torch.randn(2, 3, size, size))
    assert maps.shape == (2, size, size) and logits.shape == (2, 10)
