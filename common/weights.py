"""torchvision's ImageNet weights, offline-aware: the weight API caches them in $TORCH_HOME/hub/checkpoints/;
with no network and no cached file, one UserError line names the file, the folder and the URL."""
from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import torch
from torchvision.models import WeightsEnum

from common.errors import UserError


def weights_file(weights: WeightsEnum) -> Path:
    """Where torchvision's weight API caches `weights`: $TORCH_HOME/hub/checkpoints/<file>."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(weights.url).path).name


def imagenet_state_dict(weights: WeightsEnum) -> dict[str, torch.Tensor]:
    """The state dict of `weights` (cached under TORCH_HOME, downloaded when online), or one clear UserError
    naming the file and the folder when it is not cached and cannot be downloaded."""
    path = weights_file(weights)
    try:
        return weights.get_state_dict(progress=False)
    except Exception as e:  # no network (URLError, timeouts) or a damaged cached file
        if path.exists():
            raise UserError(f"pretrained weights {path} could not be read ({type(e).__name__}): delete it and "
                            f"download {weights.url} there again") from None
        raise UserError(f"pretrained weights {path.name} not in {path.parent} and could not be downloaded "
                        f"({type(e).__name__}): download {weights.url} and put it there") from None
