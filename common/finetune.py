"""Freezing part of a pretrained model for fine-tuning: frozen modules get no gradients and stay in eval mode
under `model.train()`, so their BatchNorms keep the running statistics they were pretrained with.

    class MyResNet(KeepsFrozenInEval, ResNet): ...
    model.freeze(first_children(model, 6))     # or model.freeze(["layer1", "layer2"])

Why a mixin and not a function that patches a model: the eval-mode rule has to run on every `train()` call
that reaches the model, including those from a wrapper (DDP, torch.compile) and from `copy.deepcopy` copies.
A method of the class does; a `train` patched onto one instance would be copied by deepcopy still bound to
the original. The mixin adds no parameters or buffers, so state-dict keys stay those of the base model.
"""
from __future__ import annotations

from typing import Iterable

import torch.nn as nn


class KeepsFrozenInEval(nn.Module):
    """Mixin, listed before the model class: `class FineTuneResNet50(KeepsFrozenInEval, ResNet)`."""

    frozen: tuple[str, ...] = ()  # dotted names of the frozen submodules (a class default: nothing frozen)

    def freeze(self, names: Iterable[str]) -> list[str]:
        """Freeze the named submodules (dotted names like "layer4.2" work): requires_grad False on their
        parameters, eval mode from now on. Adds to what is already frozen; returns `names` as a list."""
        names = list(names)
        for name in names:
            self.get_submodule(name).requires_grad_(False)  # AttributeError names a missing module
        self.frozen = tuple(dict.fromkeys([*self.frozen, *names]))
        self.train(self.training)
        return names

    def train(self, mode: bool = True) -> "KeepsFrozenInEval":
        super().train(mode)
        for name in self.frozen:
            self.get_submodule(name).eval()  # frozen BatchNorms must not update their running statistics
        return self


def first_children(model: nn.Module, k: int) -> list[str]:
    """The names of the first k direct children of `model`, in registration order (ValueError outside
    0 <= k <= number of children)."""
    names = [name for name, _ in model.named_children()]
    if not 0 <= k <= len(names):
        raise ValueError(f"cannot take the first {k} children of a model with {len(names)}: "
                         f"k must be in 0..{len(names)}")
    return names[:k]
