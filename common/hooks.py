"""Hooks on named layers, held in one place behind a context manager that releases them (as pytorch-grad-cam's
ActivationsAndGradients does): what a layer outputs in a forward pass and, when asked, the gradient that reaches
that output in the backward pass. Grad-CAM (common.gradcam) and the activation maps both read them from here.

    with ActivationRecorder(model, ["conv1", "layer1", "layer4"]) as record:
        maps = record(x)        # {"conv1": (N, C, H, W), "layer1": ..., "layer4": ...}, detached
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn


def get_layer(model: nn.Module, name: str) -> nn.Module:
    """`"layer4.1"` -> model.layer4[1]; a clear error for a name that does not exist."""
    try:
        return model.get_submodule(name)
    except AttributeError:
        raise ValueError(f"model has no layer {name!r}") from None


class LayerHooks:
    """While entered: `outputs[name]`, the last output of each layer, and with `gradients`, `grads[name]`, the
    gradient of that output once a backward pass reaches it. Leaving releases every hook and what it held."""

    def __init__(self, layers: dict[str, nn.Module], gradients: bool = False) -> None:
        self.layers, self.gradients = layers, gradients
        self.outputs: dict[str, torch.Tensor] = {}
        self.grads: dict[str, torch.Tensor] = {}
        self._handles: list = []

    def _forward(self, name: str):
        def hook(module: nn.Module, inputs, output: torch.Tensor) -> None:
            self.outputs[name] = output if self.gradients else output.detach()
            if self.gradients and output.requires_grad:
                self._handles.append(output.register_hook(lambda grad: self.grads.__setitem__(name, grad)))
        return hook

    @property
    def active(self) -> bool:
        return bool(self._handles)

    def __enter__(self) -> "LayerHooks":
        self._handles = [layer.register_forward_hook(self._forward(name)) for name, layer in self.layers.items()]
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self.outputs, self.grads = {}, {}


class ActivationRecorder:
    """The forward activations of named layers of a model, one eval-mode pass at a time."""

    def __init__(self, model: nn.Module, layer_names: Sequence[str]) -> None:
        self.model = model
        self.hooks = LayerHooks({name: get_layer(model, name) for name in layer_names})  # ValueError on a bad name

    def __enter__(self) -> "ActivationRecorder":
        self.hooks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.hooks.__exit__(*exc)

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """One forward pass in eval mode; the output of every requested layer, in the order asked."""
        if not self.hooks.active:
            raise RuntimeError("use ActivationRecorder inside a `with` block")
        self.hooks.outputs = {}
        was_training = self.model.training
        self.model.eval()
        self.model(x)
        self.model.train(was_training)
        missing = [name for name in self.hooks.layers if name not in self.hooks.outputs]
        if missing:
            raise RuntimeError(f"layers {missing} did not run in the forward pass")
        return {name: self.hooks.outputs[name] for name in self.hooks.layers}
