"""Forward activations of named layers, hooks behind a context manager (like common.gradcam).

    with ActivationRecorder(model, ["conv1", "layer1", "layer4"]) as record:
        maps = record(x)        # {"conv1": (N, C, H, W), "layer1": ..., "layer4": ...}, detached
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from common.gradcam import get_layer


class ActivationRecorder:
    def __init__(self, model: nn.Module, layer_names: Sequence[str]) -> None:
        self.model = model
        self.layers = {name: get_layer(model, name) for name in layer_names}  # ValueError on a bad name
        self._handles: list = []
        self._maps: dict[str, torch.Tensor] = {}

    def _hook(self, name: str):
        def save(module: nn.Module, inputs, output: torch.Tensor) -> None:
            self._maps[name] = output.detach()
        return save

    def __enter__(self) -> "ActivationRecorder":
        self._handles = [layer.register_forward_hook(self._hook(name)) for name, layer in self.layers.items()]
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
        self._maps = {}

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """One forward pass in eval mode; the output of every requested layer, in the order asked."""
        if not self._handles:
            raise RuntimeError("use ActivationRecorder inside a `with` block")
        self._maps = {}
        was_training = self.model.training
        self.model.eval()
        self.model(x)
        self.model.train(was_training)
        missing = [name for name in self.layers if name not in self._maps]
        if missing:
            raise RuntimeError(f"layers {missing} did not run in the forward pass")
        return {name: self._maps[name] for name in self.layers}
