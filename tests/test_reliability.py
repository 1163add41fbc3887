"""Resume, interrupts, non-finite losses, safe checkpoints and bad input, through the scripts' main(argv)
(and a real subprocess and signal where a signal is the point)."""
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from common import training
from common.checkpoint import atomic_save
from task_resnet_ln import eval as ln_eval
from task_resnet_ln import train as ln_train
from tests.conftest import one_error_line

REPO = Path(__file__).resolve().parents[1]
# 900 train images: 28 batches of 32 an epoch, a second or two on 2 cores.
RUN = ["--dataset", "synthetic", "--subset", "1000", "--width", "8", "--batch-size", "32", "--device", "cpu",
       "--seed", "0", "--epochs", "4", "--deterministic", "--misclassified", "4"]


def accuracies(run_dir: Path) -> list[tuple]:
    rows = csv.DictReader((run_dir / "history.csv").open())
    return [(r["epoch"], r["train_loss"], r["train_acc"], r["val_loss"], r["val_acc"], r["lr"]) for r in rows]


def weights(run_dir: Path) -> dict:
    return torch.load(run_dir / "last.pt", weights_only=True)["model"]


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """4 epochs without a break: the reference."""
    out = tmp_path_factory.mktemp("straight")
    assert ln_train.main([*RUN, "--out", str(out)]) == 0
    return out


def assert_same_run(a: Path, b: Path) -> None:
    assert accuracies(a) == accuracies(b)
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa), [k for k in wa if not torch.equal(wa[k], wb[k])]
    ma, mb = (json.loads((d / "metrics.json").read_text()) for d in (a, b))
    assert ma["test_acc"] == mb["test_acc"] and ma["misclassified_indices"] == mb["misclassified_indices"]


def assert_stopped_at_epoch_2(out: Path, line: str) -> None:
    """The interrupted run kept epoch 2 (last.pt, history.csv), wrote no metrics.json, and said how to resume."""
    assert line.endswith(f"Resume with: python task_resnet_ln/train.py --resume {out / 'last.pt'}")
    assert not (out / "metrics.json").exists() and len(accuracies(out)) == 2
    assert torch.load(out / "last.pt", weights_only=True)["epoch"] == 2


def test_sigterm_at_an_epoch_end_then_resume_is_bit_identical(straight, tmp_path, monkeypatch, capsys):
    """SIGTERM right after epoch 2 is saved: exit 143, one line with the resume command; the resume
    ends with the weights and history of the straight run."""
    out = tmp_path / "run"
    write_history = training.write_csv

    def write_then_signal(path, history, fields):
        write_history(path, history, fields)
        if len(history) == 2:
            signal.raise_signal(signal.SIGTERM)

    monkeypatch.setattr(training, "write_csv", write_then_signal)
    assert ln_train.main([*RUN, "--out", str(out)]) == 143
    line = one_error_line(capsys, "interrupted: SIGTERM after epoch 2")
    assert_stopped_at_epoch_2(out, line)

    monkeypatch.setattr(training, "write_csv", write_history)
    assert ln_train.main(["--resume", str(out / "last.pt")]) == 0
    assert_same_run(straight, out)


def test_ctrl_c_mid_epoch_rolls_back_to_the_epoch_boundary_and_resumes_bit_identical(straight, tmp_path,
                                                                                    monkeypatch, capsys):
    """SIGINT at batch 5 of epoch 3: exit 130; the partial epoch is dropped, last.pt and history.csv hold
    epoch 2, and the resume ends with the straight run's exact weights."""
    out = tmp_path / "run"
    make_augment = ln_train.cifar_train_augment

    def augment_that_signals(*a, **k):
        augment, calls = make_augment(*a, **k), [0]

        def run(x, g):
            calls[0] += 1
            if calls[0] == 2 * 28 + 6:  # 28 batches an epoch: batch 5 of epoch 3
                signal.raise_signal(signal.SIGINT)
            return augment(x, g)
        return run

    monkeypatch.setattr(ln_train, "cifar_train_augment", augment_that_signals)
    assert ln_train.main([*RUN, "--out", str(out)]) == 130
    line = one_error_line(capsys, "interrupted: SIGINT in epoch 3, batch 5: stopped; the partial epoch is dropped")
    assert_stopped_at_epoch_2(out, line)

    monkeypatch.setattr(ln_train, "cifar_train_augment", make_augment)
    assert ln_train.main(["--resume", str(out / "last.pt")]) == 0
    assert_same_run(straight, out)


def test_a_real_sigint_to_a_training_process_exits_130_with_the_resume_command(straight, tmp_path):
    """The signal from outside, as a terminal's Ctrl-C sends it, while epoch 3 runs (or, if it lands just
    as epoch 2 ends, right after it): either way the run stops at epoch 2 and resumes to the same weights."""
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "task_resnet_ln/train.py", *RUN, "--out", str(out)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    for line in proc.stdout:
        if line.startswith("epoch   2/4"):
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(("interrupted: SIGINT in epoch 3, batch ",
                                                    "interrupted: SIGINT after epoch 2")), lines
    assert_stopped_at_epoch_2(out, lines[0])
    command = lines[0].split("Resume with: ")[1]

    assert ln_train.main(command.split()[2:]) == 0
    assert_same_run(straight, out)


def test_resume_refuses_a_finished_run_and_changed_flags(straight, tmp_path, capsys):
    assert ln_train.main(["--resume", str(straight / "last.pt")]) == 2
    assert "finished run" in one_error_line(capsys)
    folder = tmp_path / "unfinished"  # the straight run as it was after epoch 2: no metrics.json yet
    shutil.copytree(straight, folder)
    (folder / "metrics.json").unlink()
    unfinished = folder / "last.pt"
    ckpt = torch.load(straight / "last.pt", weights_only=True)
    torch.save({**ckpt, "epoch": 2}, unfinished)
    assert ln_train.main(["--resume", str(unfinished), "--width", "16"]) == 2
    assert "--width 16 differs from its 8" in one_error_line(capsys)
    assert ln_train.main(["--resume", str(unfinished), "--norm", "bn"]) == 2
    assert "--norm bn" in one_error_line(capsys)


def test_non_finite_loss_stops_with_one_line_and_keeps_the_last_good_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    assert ln_train.main([*RUN, "--epochs", "2", "--lr", "1e12", "--out", str(out)]) == 1
    line = one_error_line(capsys)
    assert "non-finite loss" in line and "in epoch 1, batch " in line and "at lr " in line
    assert not (out / "metrics.json").exists()
    good = torch.load(out / "last.pt", weights_only=True)
    assert good["epoch"] == 0 and all(torch.isfinite(t).all() for t in good["model"].values())


# ----------------------------------------------------------------------------- checkpoints
def test_a_crash_during_a_save_leaves_the_previous_checkpoint_whole(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    atomic_save({"epoch": 1, "w": torch.ones(3)}, path)
    real_save = torch.save

    def save_half_then_die(obj, f, *a, **k):
        real_save({"epoch": 2}, f)
        f.truncate(10)
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", save_half_then_die)
    with pytest.raises(OSError):
        atomic_save({"epoch": 2, "w": torch.zeros(3)}, path)
    assert torch.load(path, weights_only=True)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left behind


class RunsCode:
    """Unpickling this runs os.system: what a hostile 'checkpoint' would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_checkpoint_that_would_run_code_is_refused_and_the_code_does_not_run(tmp_path, capsys):
    marker, path = tmp_path / "pwned", tmp_path / "checkpoint.pt"
    torch.save({"model": {}, "args": {}, "mean": [0.5], "std": [0.2], "payload": RunsCode(marker)}, path)
    assert ln_eval.main(["--checkpoint", str(path), "--device", "cpu"]) == 2
    assert "refused" in one_error_line(capsys)
    assert not marker.exists()


def test_garbage_and_foreign_checkpoints_are_one_line(tmp_path, capsys):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(os.urandom(1000))
    assert ln_eval.main(["--checkpoint", str(garbage)]) == 2
    assert "not a readable checkpoint" in one_error_line(capsys)
    foreign = tmp_path / "foreign.pt"
    torch.save({"model": {}, "args": {}, "mean": [0.5], "std": [0.2], "task": "task_cifar_transfer"}, foreign)
    assert ln_eval.main(["--checkpoint", str(foreign)]) == 2
    assert "written by task_cifar_transfer" in one_error_line(capsys)
    assert ln_train.main(["--resume", str(foreign)]) == 2
    assert "written by task_cifar_transfer" in one_error_line(capsys)


# ----------------------------------------------------------------------------- bad input
def write_fashion(folder: Path) -> None:
    from tests.conftest import fashion_arrays, write_idx

    folder.mkdir(parents=True, exist_ok=True)
    xtr, ytr, xte, yte = fashion_arrays()
    for name, array in [("train-images-idx3-ubyte", xtr), ("train-labels-idx1-ubyte", ytr),
                        ("t10k-images-idx3-ubyte", xte), ("t10k-labels-idx1-ubyte", yte)]:
        write_idx(folder / f"{name}.gz", array)


def fashion_run(data_dir: Path, out: Path, *extra: str) -> list[str]:
    return ["--dataset", "fashion-mnist", "--data-dir", str(data_dir), "--width", "4", "--epochs", "1",
            "--device", "cpu", "--out", str(out), *extra]


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def not_gzip(path: Path) -> None:
    path.write_bytes(b"this is not a gzip file at all")


def replace_by_folder(path: Path) -> None:  # unreadable as a file, even for root
    path.unlink()
    path.mkdir()


@pytest.mark.parametrize("damage, expected", [
    (truncate, "train-images-idx3-ubyte.gz is truncated or corrupt"),
    (not_gzip, "train-images-idx3-ubyte.gz is truncated or corrupt"),
    (replace_by_folder, "cannot read"),
])
def test_damaged_fashion_files_are_one_line(damage, expected, tmp_path, capsys, offline):
    data = tmp_path / "fashion"
    write_fashion(data)
    damage(data / "train-images-idx3-ubyte.gz")
    out = tmp_path / "run"
    assert ln_train.main(fashion_run(data, out)) == 2
    assert expected in one_error_line(capsys)
    assert not out.exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_fashion_file_is_one_line(tmp_path, capsys, offline):
    data = tmp_path / "fashion"
    write_fashion(data)
    (data / "train-labels-idx1-ubyte.gz").chmod(0)
    assert ln_train.main(fashion_run(data, tmp_path / "run")) == 2
    assert "cannot read" in one_error_line(capsys)


def test_empty_data_folder_is_one_line(tmp_path, capsys, offline):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert ln_train.main(fashion_run(empty, tmp_path / "run")) == 2
    assert "Fashion-MNIST not found in" in one_error_line(capsys)


def test_junk_cifar_archive_is_one_line(tmp_path, capsys, offline):
    data = tmp_path / "cifar"
    data.mkdir()
    (data / "cifar-10-python.tar.gz").write_bytes(b"<html>not a tarball</html>")
    assert ln_train.main(["--dataset", "cifar10", "--data-dir", str(data), "--device", "cpu",
                          "--out", str(tmp_path / "run")]) == 2
    line = one_error_line(capsys)
    assert "cifar-10-python.tar.gz is not a valid CIFAR-10 archive" in line and "delete it" in line


def test_unwritable_out_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert ln_train.main(["--dataset", "synthetic", "--subset", "300", "--width", "4", "--device", "cpu",
                          "--out", str(blocker / "run")]) == 2
    assert "cannot write to run folder" in one_error_line(capsys)


def test_subset_too_small_for_the_split_is_one_line(tmp_path, capsys):
    assert ln_train.main(["--dataset", "synthetic", "--subset", "5", "--device", "cpu",
                          "--out", str(tmp_path / "run")]) == 2
    line = one_error_line(capsys)
    assert "--subset 5 is too small" in line
    assert not (tmp_path / "run").exists()
