"""torchvision's ImageNet weights, loaded so that a weights file can never run code.

- torchvision's files live in $TORCH_HOME/hub/checkpoints/ (downloaded there when online). Their names carry
  the first hex digits of their sha256 (`resnet50-11ad3fa6.pth`); the file's hash is checked against them
  *before* it is unpickled, and it is unpickled with `torch.load(weights_only=True)`. A damaged or substituted
  file is refused with one line.
- TORCHVISION_WEIGHTS_DIR=<folder>: your own files, named as torchvision names them, are taken from there
  instead, with no hash check (you vouched for them by naming the folder) but still weights-only, and one
  line on stderr says so. Smoke runs and tests use it for stand-in weights (a random ResNet, not ImageNet).
- Offline, with no file: one UserError line naming the file, the folder and the URL.
"""
from __future__ import annotations

import hashlib
import os
import re
import sys
from pathlib import Path
from urllib.parse import urlparse

import torch
from torchvision.models import WeightsEnum

from common.errors import UserError

WEIGHTS_DIR_ENV = "TORCHVISION_WEIGHTS_DIR"
_announced: set[Path] = set()  # own files already announced: part B loads the same file once per strategy


def weights_file(weights: WeightsEnum) -> Path:
    """Where torchvision's weight API caches `weights`: $TORCH_HOME/hub/checkpoints/<file>."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(weights.url).path).name


def own_weights_file(weights: WeightsEnum) -> Path | None:
    """$TORCHVISION_WEIGHTS_DIR/<torchvision's file name> when that variable is set, else None."""
    folder = os.environ.get(WEIGHTS_DIR_ENV)
    return Path(folder) / weights_file(weights).name if folder else None


def imagenet_state_dict(weights: WeightsEnum) -> dict[str, torch.Tensor]:
    """The state dict of `weights`: your own file if TORCHVISION_WEIGHTS_DIR is set, else torchvision's file
    (downloaded into TORCH_HOME when it is not there yet), hash-checked. One UserError line otherwise."""
    own = own_weights_file(weights)
    if own is not None:
        if not own.is_file():
            raise UserError(f"{own.name} not in {own.parent} ({WEIGHTS_DIR_ENV}): put your weights file there "
                            f"under that name, or unset {WEIGHTS_DIR_ENV} to use torchvision's {weights.url}")
        if own not in _announced:
            _announced.add(own)
            print(f"using your own weights file {own} ({WEIGHTS_DIR_ENV}; not hash-checked)", file=sys.stderr,
                  flush=True)
        return _load_weights_only(own)
    return checked_state_dict(weights.url, weights_file(weights))


def checked_state_dict(url: str, path: Path) -> dict[str, torch.Tensor]:
    """The state dict in `path`, downloaded from `url` first if absent; its sha256 must start with the hex
    digits in the file name (torchvision's convention), checked before anything is unpickled."""
    named = re.search(r"-([0-9a-f]{8,})\.", path.name)
    if named is None:  # every torchvision weights file has one; without it nothing vouches for the file
        raise UserError(f"{path.name} has no sha256 prefix in its name, so it cannot be checked: put it in a "
                        f"folder and set {WEIGHTS_DIR_ENV} to that folder if you trust it")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:  # looked up on torch.hub at call time, so tests can replace it; progress=False prints nothing
            torch.hub.download_url_to_file(url, str(path), hash_prefix=named[1], progress=False)
        except Exception as e:  # no network (URLError, timeouts), or a download whose hash is wrong
            raise UserError(f"pretrained weights {path.name} not in {path.parent} and could not be downloaded "
                            f"({type(e).__name__}): download {url} and put it there") from None
    if not sha256(path).startswith(named[1]):
        raise UserError(f"pretrained weights {path} refused: its sha256 does not start with {named[1]}, so it is "
                        f"damaged or not torchvision's file; delete it and download {url} there again (your "
                        f"own weights: put them in a folder and set {WEIGHTS_DIR_ENV} to it)")
    return _load_weights_only(path)


def _load_weights_only(path: Path) -> dict[str, torch.Tensor]:
    """torch.load(weights_only=True): an unpickler that builds tensors and plain types only, so no code runs."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # weights_only's own message is many lines and suggests loading it unsafely
        raise UserError(f"weights file {path} refused: it is damaged, or it holds more than tensors (and loading "
                        f"that could run code) ({type(e).__name__})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"weights file {path} refused: it is not a state dict (a dict of tensors)")
    return state


def weights_record(weights: WeightsEnum) -> dict | None:
    """What config.json records of the weights file a run uses: its path and sha256 (so a report can tell
    torchvision's file, whose name starts its hash, from a stand-in); None when there is no file yet."""
    path = own_weights_file(weights) or weights_file(weights)
    if not path.is_file():
        return None
    return {"file": str(path), "sha256": sha256(path), "own": path == own_weights_file(weights)}


def sha256(path: Path) -> str:
    """The file's sha256 (hex), read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
