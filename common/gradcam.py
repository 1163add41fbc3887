"""A small Grad-CAM (Selvaraju et al. 2017), hooks behind a context manager.

    with GradCAM(model, model.layer4[-1]) as cam:
        maps, logits = cam(x)                  # maps: (N, H, W) in [0, 1], upsampled to the input
        raw = cam.raw_maps(x, targets)         # (N, 1, h, w) at the layer's resolution, like captum
"""
from __future__ import annotations

from typing import Callable

import matplotlib.cm
import torch
import torch.nn as nn
import torch.nn.functional as F

from common.hooks import LayerHooks

Target = Callable[[torch.Tensor], torch.Tensor]  # logits (N, K) -> class index per sample (N,)


def predicted_class(logits: torch.Tensor) -> torch.Tensor:
    return logits.argmax(1)


def true_class(labels: torch.Tensor) -> Target:
    return lambda logits: labels.to(logits.device)


class GradCAM:
    """Grad-CAM at one layer of `model`; its hooks (common.hooks.LayerHooks) live while the `with` block does."""

    def __init__(self, model: nn.Module, layer: nn.Module) -> None:
        self.model, self.hooks = model, LayerHooks({"layer": layer}, gradients=True)

    def __enter__(self) -> "GradCAM":
        self.hooks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.hooks.__exit__(*exc)

    def raw_maps(self, x: torch.Tensor, target: Target | torch.Tensor = predicted_class
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """ReLU(sum_k alpha_k A^k) at the layer's resolution, (N, 1, h, w), and the logits."""
        if not self.hooks.active:
            raise RuntimeError("use GradCAM inside a `with` block")
        with torch.enable_grad():
            self.model.zero_grad(set_to_none=True)
            # an input that requires grad makes every activation carry a gradient, so a layer of a
            # frozen (requires_grad=False) backbone works too
            logits = self.model(x.detach().requires_grad_(True))
            idx = target if isinstance(target, torch.Tensor) else target(logits)
            logits.gather(1, idx.view(-1, 1).to(logits.device)).sum().backward()
        acts, grads = self.hooks.outputs["layer"].detach().float(), self.hooks.grads["layer"].float()
        weights = grads.mean(dim=(2, 3), keepdim=True)  # alpha_k: global-average-pooled gradients
        cam = F.relu((weights * acts).sum(1, keepdim=True))
        self.model.zero_grad(set_to_none=True)
        return cam, logits.detach()

    def __call__(self, x: torch.Tensor, target: Target | torch.Tensor = predicted_class
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """Maps upsampled to the input size and scaled to [0, 1] per image, and the logits."""
        cam, logits = self.raw_maps(x, target)
        cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False).squeeze(1)
        lo = cam.amin(dim=(1, 2), keepdim=True)
        hi = cam.amax(dim=(1, 2), keepdim=True)
        return (cam - lo) / (hi - lo).clamp_min(1e-8), logits


def overlay(images: torch.Tensor, maps: torch.Tensor, alpha: float = 0.45) -> torch.Tensor:
    """Blend jet-coloured maps (N, H, W) in [0, 1] onto uint8 RGB images (N, 3, H, W) -> float (N, H, W, 3)."""
    rgb = images.detach().cpu().permute(0, 2, 3, 1).float() / 255
    heat = torch.from_numpy(matplotlib.colormaps["jet"](maps.detach().cpu().numpy())[..., :3]).float()
    return ((1 - alpha) * rgb + alpha * heat).clamp(0, 1)


def resnet50_gradcam_layer(image_size: int) -> str:
    """Where to take a torchvision resnet50's Grad-CAM: the deepest block whose feature map is still at least
    4 x 4. It divides the input by 32 at layer4 (7 x 7 at 224 px), by 16 at layer3, by 8 at layer2; a 1 x 1
    or 2 x 2 map shows nothing."""
    for layer, stride in (("layer4.2", 32), ("layer3.5", 16), ("layer2.3", 8)):
        if image_size // stride >= 4:
            return layer
    return "layer1.2"
