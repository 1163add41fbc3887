"""common.weights: a weights file never runs code, torchvision's files are hash-checked before they are
unpickled, your own files come from TORCHVISION_WEIGHTS_DIR (said on stderr), and every refusal is one line."""
import hashlib
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from torchvision.models import ResNet18_Weights

from common.errors import UserError
from common.weights import checked_state_dict, imagenet_state_dict, own_weights_file, weights_file

WEIGHTS = ResNet18_Weights.IMAGENET1K_V1  # resnet18-f37072fd.pth


class Payload:
    """Unpickling this object calls open(marker, "w"): the file appears only if the loader runs code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


def write_payload(path: Path, marker: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"fc.weight": torch.zeros(2, 2), "fc.bias": Payload(marker)}, path)
    return path


def small_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return nn.Linear(3, 2).state_dict()


def hashed_file(folder: Path, state: dict) -> Path:
    """`state` saved as folder/tiny-<first 8 hex digits of its sha256>.pth, torchvision's naming."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / "tiny.tmp"
    torch.save(state, tmp)
    path = folder / f"tiny-{hashlib.sha256(tmp.read_bytes()).hexdigest()[:8]}.pth"
    tmp.rename(path)
    return path


def test_the_payload_runs_code_under_an_unsafe_load(tmp_path):
    """Proof that the payload below is live: torch.load(weights_only=False) creates the marker."""
    marker = tmp_path / "ran"
    torch.load(write_payload(tmp_path / "x.pth", marker), weights_only=False)
    assert marker.exists()


def test_a_code_running_file_in_torch_home_is_refused_by_its_hash_and_never_runs(torch_home, no_network, capsys):
    marker = torch_home.parent / "ran"
    write_payload(weights_file(WEIGHTS), marker)
    with pytest.raises(UserError) as e:
        imagenet_state_dict(WEIGHTS)
    message = str(e.value)
    assert not marker.exists()
    assert "\n" not in message and str(weights_file(WEIGHTS)) in message
    assert "sha256 does not start with f37072fd" in message and f"download {WEIGHTS.url}" in message
    assert capsys.readouterr() == ("", "")


def test_a_code_running_file_in_your_own_weights_dir_is_refused_and_never_runs(own_weights_dir, capsys):
    marker = own_weights_dir.parent / "ran"
    path = write_payload(own_weights_dir / "resnet18-f37072fd.pth", marker)
    with pytest.raises(UserError) as e:
        imagenet_state_dict(WEIGHTS)
    assert not marker.exists()
    message = str(e.value)
    assert "\n" not in message and message.startswith(f"weights file {path} refused:") and "could run code" in message


def test_a_wrong_hash_and_a_truncated_file_are_refused_before_unpickling(tmp_path):
    good = hashed_file(tmp_path / "hub", small_state())
    state = checked_state_dict("file:///unused", good)
    assert torch.equal(state["weight"], small_state()["weight"])

    other = good.with_name("tiny-00000000.pth")  # the right bytes under another hash: substituted
    shutil.copy(good, other)
    with pytest.raises(UserError, match="sha256 does not start with 00000000"):
        checked_state_dict("file:///unused", other)

    good.write_bytes(good.read_bytes()[:200])  # a download cut short
    with pytest.raises(UserError) as e:
        checked_state_dict("file:///unused", good)
    assert f"{good} refused" in str(e.value) and "delete it and download" in str(e.value)


def test_a_missing_file_is_downloaded_hash_checked_and_a_bad_download_is_not_kept(tmp_path, capsys):
    served = hashed_file(tmp_path / "server", small_state())
    path = tmp_path / "hub" / "checkpoints" / served.name
    state = checked_state_dict(served.as_uri(), path)
    assert path.is_file() and torch.equal(state["bias"], small_state()["bias"])

    lying = served.with_name("tiny-12345678.pth")  # the server sends bytes whose hash is not in the name
    shutil.copy(served, lying)
    path = tmp_path / "hub" / "checkpoints" / lying.name
    with pytest.raises(UserError, match="could not be downloaded .RuntimeError."):
        checked_state_dict(lying.as_uri(), path)
    assert not path.exists() and not list(path.parent.glob("*.partial"))
    assert capsys.readouterr() == ("", "")  # no progress bar, no "Downloading:" line


def test_offline_and_absent_is_one_line_and_nothing_printed_before_it(tmp_path, capsys):
    path = tmp_path / "hub" / "checkpoints" / "tiny-12345678.pth"
    with pytest.raises(UserError) as e:  # port 9 (discard) on 127.0.0.1: connection refused at once
        checked_state_dict("http://127.0.0.1:9/tiny-12345678.pth", path)
    message = str(e.value)
    assert "\n" not in message and message.startswith("pretrained weights tiny-12345678.pth not in ")
    assert "download http://127.0.0.1:9/tiny-12345678.pth and put it there" in message
    assert capsys.readouterr() == ("", "") and not path.exists()


def test_your_own_weights_file_is_used_unchecked_and_said_once(own_weights_dir, torch_home, capsys):
    state = torch.nn.Linear(3, 2).state_dict()  # anything with the right name: no hash check
    torch.save(state, own_weights_dir / "resnet18-f37072fd.pth")
    assert own_weights_file(WEIGHTS) == own_weights_dir / "resnet18-f37072fd.pth"
    for _ in range(2):
        assert torch.equal(imagenet_state_dict(WEIGHTS)["weight"], state["weight"])
    out, err = capsys.readouterr()
    assert out == "" and err == (f"using your own weights file {own_weights_dir / 'resnet18-f37072fd.pth'} "
                                 f"(TORCHVISION_WEIGHTS_DIR; not hash-checked)\n")
    assert not (torch_home / "hub").exists()  # TORCH_HOME is not looked at


def test_your_own_weights_dir_without_the_file_or_with_no_state_dict_is_one_line(own_weights_dir):
    with pytest.raises(UserError) as e:
        imagenet_state_dict(WEIGHTS)
    assert str(e.value).startswith(f"resnet18-f37072fd.pth not in {own_weights_dir} (TORCHVISION_WEIGHTS_DIR)")
    torch.save([1, 2, 3], own_weights_dir / "resnet18-f37072fd.pth")
    with pytest.raises(UserError, match="it is not a state dict"):
        imagenet_state_dict(WEIGHTS)


def test_a_script_refuses_a_code_running_weights_file_in_one_line(torch_home, no_network, tmp_path, capsys):
    """The issue's case through a training script: the crafted file in TORCH_HOME, one `error:` line, exit 2."""
    from task_cifar_transfer import train as tr_train

    marker = tmp_path / "ran"
    write_payload(weights_file(WEIGHTS), marker)
    assert tr_train.main(["--dataset", "synthetic", "--subset", "300", "--device", "cpu", "--part", "b",
                          "--configs", "3", "--out", str(tmp_path / "run")]) == 2
    out, err = capsys.readouterr()
    assert not marker.exists() and "Downloading" not in out
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: pretrained weights ")
