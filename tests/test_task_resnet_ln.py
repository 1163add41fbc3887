"""End to end: task_resnet_ln/train.py and eval.py through their main(argv)."""
import csv
import json

import pytest
import torch

from task_resnet_ln import eval as ln_eval
from task_resnet_ln import train as ln_train

SMALL = ["--dataset", "synthetic", "--subset", "2000", "--width", "8", "--batch-size", "32",
         "--device", "cpu", "--seed", "0"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert ln_train.main([*SMALL, "--epochs", "2", "--out", str(out)]) == 0
    return out


def test_run_folder_is_complete(run_dir):
    for name in ["config.json", "summary.txt", "history.csv", "steps.csv", "metrics.json", "checkpoint.pt", "last.pt",
                 "curves.png", "misclassified.png", "gradcam.png"]:
        assert (run_dir / name).stat().st_size > 0, name


def test_it_learns_above_chance(run_dir):
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert 0.0 <= metrics["test_acc"] <= 1.0
    assert metrics["test_acc"] > 0.3  # ten classes: chance is 0.1
    assert metrics["best_val_acc"] > 0.3


def test_history_config_and_summary(run_dir):
    rows = list(csv.DictReader((run_dir / "history.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert {"train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds"} <= rows[0].keys()
    # warm-up reaches the peak LR in epoch 1; the last epoch anneals linearly towards zero
    assert float(rows[0]["lr"]) == pytest.approx(0.05)
    assert 0 < float(rows[1]["lr"]) < 0.05 / 10
    config = json.loads((run_dir / "config.json").read_text())
    assert config["norm"] == "ln" and config["seed"] == 0 and config["torch"] == torch.__version__
    summary = (run_dir / "summary.txt").read_text()
    assert "LayerNorm2d" in summary and "BatchNorm" not in summary and "Total params" in summary


def test_misclassified_indices_are_real_test_errors(run_dir):
    metrics = json.loads((run_dir / "metrics.json").read_text())
    idx = metrics["misclassified_indices"]
    assert len(idx) == min(20, metrics["misclassified_total"]) and len(set(idx)) == len(idx)
    assert list(metrics["per_class_acc"]) == ["horiz 3px", "vert 3px", "horiz 4.5px", "vert 4.5px", "horiz 6px",
                                              "vert 6px", "horiz 7.5px", "vert 7.5px", "horiz 9px", "vert 9px"]


def test_checkpoints_hold_full_state(run_dir):
    for name in ["checkpoint.pt", "last.pt"]:
        ckpt = torch.load(run_dir / name, weights_only=True)  # plain types only: loads without unpickling code
        assert {"model", "optimizer", "schedule", "epoch", "args", "rng", "history", "task"} <= ckpt.keys()
        assert ckpt["task"] == "task_resnet_ln" and ckpt["args"]["channels_last"] is False  # NCHW on the CPU
    assert torch.load(run_dir / "last.pt", weights_only=True)["epoch"] == 2


def test_eval_reproduces_test_acc(run_dir, tmp_path):
    assert ln_eval.main(["--checkpoint", str(run_dir / "checkpoint.pt"), "--device", "cpu",
                         "--out", str(tmp_path)]) == 0
    ours = json.loads((tmp_path / "eval.json").read_text())
    trained = json.loads((run_dir / "metrics.json").read_text())
    assert ours["test_acc"] == pytest.approx(trained["test_acc"], abs=1e-9)
    assert ours["misclassified_indices"] == trained["misclassified_indices"]
    assert (tmp_path / "misclassified.png").exists() and (tmp_path / "gradcam.png").exists()


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("error: ")
    return err[0]


@pytest.mark.parametrize("argv, expected", [
    (["--epochs", "0"], "--epochs"),
    (["--norm", "batchnorm"], "--norm"),
    (["--dataset", "imagenet"], "--dataset"),
    (["--gradcam-layer", "layer9"], "layer9"),
    (["--plateau-factor", "1.5"], "--plateau-factor"),
])
def test_bad_flags_give_one_line_and_exit_2(argv, expected, capsys, tmp_path):
    out = tmp_path / "run"
    assert ln_train.main([*SMALL, *argv, "--out", str(out)]) == 2
    assert expected in _one_error_line(capsys)
    assert not (out / "metrics.json").exists()


def test_missing_data_offline_gives_one_line(capsys, tmp_path, offline):
    out = tmp_path / "run"
    code = ln_train.main(["--dataset", "cifar10", "--data-dir", str(tmp_path / "no-data"), "--device", "cpu",
                          "--out", str(out)])
    assert code == 2
    line = _one_error_line(capsys)
    assert "cifar-10-python.tar.gz" in line
    assert not out.exists()  # no run folder is created before the data is there


def test_cuda_asked_without_cuda_is_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert ln_train.main([*SMALL, "--device", "cuda", "--out", str(tmp_path / "r")]) == 2
    assert "--device cuda" in _one_error_line(capsys)


def test_eval_with_missing_checkpoint_is_one_line(capsys, tmp_path):
    assert ln_eval.main(["--checkpoint", str(tmp_path / "nope.pt")]) == 2
    assert "no checkpoint" in _one_error_line(capsys)


def test_help_works(capsys):
    with pytest.raises(SystemExit) as e:
        ln_train.main(["--help"])
    assert e.value.code == 0
    assert "--norm" in capsys.readouterr().out


def test_default_recipe_does_not_diverge_at_full_width():
    """Width 64 with the default flags: the first 20 steps (16 px synthetic images, batch 64, so it is cheap)
    stay below a loss of 3.0. Without gradient clipping (the old default) they reached 34 here."""
    import csv
    import tempfile
    from pathlib import Path

    from common.augment import cifar_train_augment
    from common.data import ImageData, Split, make_synthetic
    from common.training import Checkpointer, fit

    args = ln_train.build_parser().parse_args(["--epochs", "1", "--batch-size", "64"])
    assert args.width == 64
    x, y = make_synthetic(20 * 64 + 64, seed=1, size=16)
    train, val = Split(x[:1280], y[:1280], torch.arange(1280)), Split(x[1280:], y[1280:], torch.arange(64))
    data = ImageData("synthetic", [str(k) for k in range(10)], train, val, val, (0.4,) * 3, (0.25,) * 3)
    torch.manual_seed(0)
    cfg = ln_train.train_config(args)
    cfg.save_checkpoints, cfg.anneal_epochs = False, 0.0  # 20 steps of warm-up, then the peak LR
    with tempfile.TemporaryDirectory() as tmp:
        fit(ln_train.build_model(args, 10), data, cfg, Checkpointer(Path(tmp), cfg.save_checkpoints),
            generator=torch.Generator().manual_seed(0),
            augment=cifar_train_augment(args.crop_padding, 4, args.rotate, args.flip))
        losses = [float(r["loss"]) for r in csv.DictReader(open(Path(tmp) / "steps.csv"))]
    assert len(losses) == 20
    assert max(losses) < 3.0, losses
    assert losses[-1] < losses[0]  # and it learns
