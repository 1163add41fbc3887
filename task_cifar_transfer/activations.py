"""Part (d): per-layer activation grids of one test image, via forward hooks (common.hooks)."""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from common.data import ImageData
from common.errors import UserError
from common.hooks import ActivationRecorder
from common.plots import activation_grid
from common.training import prepare_input

STAGES = ("layer1", "layer2", "layer3", "layer4")


def stem_and_stage_layers(model: nn.Module) -> dict[str, str]:
    """label -> module to hook: the stem conv, the stem's ReLU, and the four residual stages.

    torchvision's ResNet has a `relu` module for the stem; ours applies that ReLU functionally right
    after `bn1`, so for ours we hook `bn1` and apply the ReLU to what it records."""
    relu = "relu" if isinstance(getattr(model, "relu", None), nn.ReLU) else "bn1"
    return {"conv1": "conv1", "relu": relu, **{stage: stage for stage in STAGES}}


def record_activations(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """{label: activations (N, C, H, W)} at the layers of stem_and_stage_layers, for a normalised batch x."""
    layers = stem_and_stage_layers(model)
    with ActivationRecorder(model, list(layers.values())) as record:
        maps = record(x)
    out = {label: maps[name] for label, name in layers.items()}
    if layers["relu"] == "bn1":
        out["relu"] = out["relu"].relu()
    return out


def check_image_index(index: int, test_size: int) -> None:
    if not 0 <= index < test_size:
        raise UserError(f"--image-index must be in [0, {test_size - 1}], got {index}")


def save_activation_maps(model: nn.Module, data: ImageData, index: int, out_dir: Path,
                         channels_last: bool = True) -> dict:
    """One PNG per layer for test image `index` (position in the test split); returns what was saved."""
    check_image_index(index, len(data.test))
    image = data.test.images[index]
    maps = record_activations(model, prepare_input(image[None], data.mean, data.std, channels_last))
    label = data.classes[int(data.test.labels[index])]
    files = {}
    for i, (layer, act) in enumerate(maps.items(), 1):
        c, h, w = act.shape[1:]
        path = out_dir / f"activations_{i}_{layer}.png"
        activation_grid(image, act[0], path, f"{layer}: {c} channels of {h}x{w} (test image {index}, a {label})")
        files[layer] = {"file": path.name, "shape": [c, h, w]}
    return {"test_position": index, "test_index": int(data.test.index[index]), "label": label, "layers": files}
