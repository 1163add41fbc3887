"""task_inaturalist end to end on small generated folders of real image files: the zip and its layout, the
splits (test apart, class proportions kept), every sampled sweep key reaching the model or the optimiser,
the sweep (continued by the same command, no duplicate trials), the best configuration retrained and
tested once, part B with a stand-in weights file, eval.py, and bad input as one line."""
import csv
import json
import signal
import zipfile
from pathlib import Path

import optuna
import pytest
import torch
import torch.nn as nn

from common.errors import UserError
from common.export_folder import export_synthetic
from common.run import RunFolder
from common.training import make_optimizer
from common.weights import weights_file
from task_inaturalist import data as inat_data
from task_inaturalist import eval as inat_eval
from task_inaturalist import finetune, sweep
from task_inaturalist import train as inat_train
from task_inaturalist.cnn import build_cnn
from task_inaturalist.recipe import ORIGINAL_BEST, PARAM_KEYS, augmentation, cnn_config, train_config

FAST = ["--image-size", "32", "--device", "cpu", "--eval-batch-size", "64"]


def make_layout(root: Path, per_class: int = 8, test_per_class: int = 3, classes: int = 10) -> Path:
    """root/train/<class>/ and root/val/<class>/, JPEG and PNG of 40-120 px, plus what real folders hold."""
    export_synthetic(root / "train", per_class, seed=0, num_classes=classes)
    export_synthetic(root / "val", test_per_class, seed=1, num_classes=classes)
    (root / "train" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    first = sorted((root / "train").iterdir())[1]
    (first / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (first / "notes.txt").write_text("not an image")
    return root


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return make_layout(tmp_path_factory.mktemp("inat") / "folder")


# ----------------------------------------------------------------------------- data
def zip_layout(source: Path, zip_path: Path) -> None:
    """nature_12K.zip as it comes: inaturalist_12K/{train,val}/..., with macOS's __MACOSX/ shadow entries."""
    with zipfile.ZipFile(zip_path, "w") as z:
        for f in sorted(source.rglob("*")):
            if f.is_file() and ".cache" not in f.parts:
                z.write(f, f"inaturalist_12K/{f.relative_to(source)}")
        z.writestr("__MACOSX/inaturalist_12K/._train", b"junk")


def test_the_zip_in_data_dir_is_unpacked_once_and_loaded(folder, tmp_path, capsys):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    zip_layout(folder, data_dir / inat_data.INAT_ZIP)
    root = inat_data.find_inaturalist(data_dir)
    assert root == data_dir / "inaturalist_12K" and (root / "train").is_dir() and (root / "val").is_dir()
    assert not (data_dir / "__MACOSX").exists() and not list(data_dir.glob(".unpacking-*"))
    assert "unpacking" in capsys.readouterr().out
    assert inat_data.find_inaturalist(data_dir) == root  # the second time: nothing to unpack
    assert "unpacking" not in capsys.readouterr().out
    data = inat_data.load("inaturalist", str(data_dir), 32)
    assert len(data.classes) == 10 and data.train.images.dtype == torch.uint8
    assert data.train.images.shape[1:] == (3, 32, 32)


def test_make_inaturalist_data_downloads_through_a_part_file_and_unpacks(folder, tmp_path):
    served = tmp_path / "served.zip"
    zip_layout(folder, served)
    data_dir = tmp_path / "data"
    assert inat_data.main(["--data-dir", str(data_dir), "--url", served.as_uri()]) == 0
    assert (data_dir / inat_data.INAT_ZIP).is_file() and not list(data_dir.glob("*.part"))
    assert (data_dir / "inaturalist_12K" / "val").is_dir()


def test_offline_and_absent_says_what_to_download_and_where(tmp_path, capsys):
    with pytest.raises(UserError) as e:
        inat_data.find_inaturalist(tmp_path)
    message = str(e.value)
    assert inat_data.INAT_URL in message and str(tmp_path / inat_data.INAT_ZIP) in message and "\n" not in message
    # make inaturalist-data with no network: one line, exit 2, no .part file left behind
    assert inat_data.main(["--data-dir", str(tmp_path), "--url", "http://127.0.0.1:9/nature_12K.zip"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: could not download") and len(err.splitlines()) == 1
    assert not list(tmp_path.glob("*.part"))


def test_a_damaged_zip_is_one_error_line(tmp_path):
    (tmp_path / inat_data.INAT_ZIP).write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(UserError, match="not a readable zip"):
        inat_data.find_inaturalist(tmp_path)
    assert not (tmp_path / "inaturalist_12K").exists()


def test_test_images_stay_apart_and_validation_keeps_class_proportions(folder):
    data = inat_data.load("folder", str(folder), 32, val_fraction=0.25, seed=3)

    def fingerprints(split):
        return {hash(img.numpy().tobytes()) for img in split.images}

    test = fingerprints(data.test)
    assert not test & fingerprints(data.train) and not test & fingerprints(data.val)
    assert not set(data.train.index.tolist()) & set(data.val.index.tolist())
    assert len(data.train) + len(data.val) == 80 and len(data.test) == 30
    per_class = torch.bincount(data.val.labels, minlength=10)
    assert per_class.tolist() == [2] * 10  # 25% of every class's 8
    assert inat_data.load("folder", str(folder), 32, val_fraction=0.25, seed=4).val.index.tolist() != \
        data.val.index.tolist()


# ----------------------------------------------------------------------------- the sweep's keys
# Every value differs from the defaults (ORIGINAL_BEST, the flags'), so a key that cnn_config or train_config dropped
# would show.
SAMPLED = {"filters": 16, "organisation": "double", "kernel": 4, "padding": "valid", "bias": False,
           "activation": "silu", "batch_norm": False, "dropout": 0.45, "dense": 64, "augment": False, "lr": 3e-3,
           "weight_decay": 0.0, "batch_size": 128, "optimizer": "sgd"}


def test_every_sampled_key_reaches_the_model_or_the_optimiser():
    params = sweep.sample(optuna.trial.FixedTrial(SAMPLED), image_size=160)
    assert params == {**SAMPLED, "filters": [16]} and set(params) == set(PARAM_KEYS)  # filters: recipe's list
    cnn = cnn_config(params)
    assert all(ORIGINAL_BEST[k] != params[k] for k in PARAM_KEYS)
    model = build_cnn(cnn, 160)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    cfg = train_config(params, epochs=1)
    optimizer = make_optimizer(model, cfg)
    decayed = [g for g in optimizer.param_groups if any(p.ndim > 1 for p in g["params"])]
    checks = {
        "filters": [c.out_channels for c in convs][0] == 16,
        "organisation": [c.out_channels for c in convs] == [16, 32, 64, 128, 256],
        "kernel": all(c.kernel_size == (4, 4) for c in convs),
        "padding": all(c.padding in ((0, 0), "valid") for c in convs),
        "bias": all(c.bias is None for c in convs),
        "activation": sum(isinstance(m, nn.SiLU) for m in model.modules()) == 6,
        "batch_norm": sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 0,
        "dropout": [m.p for m in model.modules() if isinstance(m, nn.Dropout)] == [0.45],
        "dense": linears[0].out_features == 64 and linears[1].in_features == 64,
        "augment": augmentation(params["augment"]) is None and augmentation(True) is not None,
        "lr": all(g["lr"] == 3e-3 for g in optimizer.param_groups),
        "weight_decay": all(g["weight_decay"] == 0.0 for g in decayed),
        "batch_size": cfg.batch_size == 128,
        "optimizer": isinstance(optimizer, torch.optim.SGD),
    }
    assert set(checks) == set(PARAM_KEYS)  # a new key needs its own check here
    assert [k for k, ok in checks.items() if not ok] == []


def test_small_images_sample_same_padding_only():
    def paddings(image_size: int) -> set[str]:  # a study per size: a study's choices cannot change
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        return {sweep.sample(study.ask(), image_size=image_size)["padding"] for _ in range(30)}

    assert paddings(32) == {"same"} and paddings(93) == {"same"} and paddings(94) == {"same", "valid"}


def test_cnn_config_refuses_unknown_and_missing_keys():
    with pytest.raises(ValueError, match="unknown keys epochs"):
        cnn_config({**SAMPLED, "epochs": 40})
    with pytest.raises(ValueError, match="missing keys dense"):
        cnn_config({k: v for k, v in SAMPLED.items() if k != "dense"})


# ----------------------------------------------------------------------------- end to end
def read_trials(path: Path) -> list[dict]:
    with path.open() as f:
        return list(csv.DictReader(f))


def counted(rows: list[dict]) -> list[dict]:
    """The trials that count towards --trials (an infeasible sample at 32 px fails at once and does not)."""
    return [r for r in rows if r["state"] in ("COMPLETE", "PRUNED")]


class StopAfterTheRunFolder(Exception):
    """Raised in place of the training or the sweep, once the run folder exists."""


@pytest.mark.parametrize("mode, step", [(["--part", "a"], "run_part_a"), (["--sweep"], "run_sweep")])
def test_every_skipped_file_is_listed_in_the_run_folder_once_it_exists(tmp_path, monkeypatch, mode, step):
    """The terminal shows the first few skip lines; skipped_files.txt keeps them all, train/'s and val/'s."""
    root = make_layout(tmp_path / "folder", per_class=4, test_per_class=1, classes=2)
    first, second = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
    broken = [root / "train" / first / f"broken{i}.jpg" for i in range(6)] + [root / "val" / second / "x.png"]
    for path in broken:
        path.write_text("not a photo")

    def stop(*args, **kwargs):
        raise StopAfterTheRunFolder

    monkeypatch.setattr(sweep if step == "run_sweep" else inat_train, step, stop)  # the sweep has its own module
    out = tmp_path / "out"
    with pytest.raises(StopAfterTheRunFolder):
        inat_train.main([*mode, "--dataset", "folder", "--data-dir", str(root), "--out", str(out), *FAST])
    lines = (out / "skipped_files.txt").read_text().splitlines()
    assert [line.split(": ", 1)[0] for line in lines] == [str(p) for p in broken]
    assert all(line.endswith(": not an image in a format we read (JPEG, PNG, BMP, GIF, WEBP)") for line in lines)


def test_sweep_continues_with_the_same_command_then_the_best_is_retrained_and_tested_once(folder, tmp_path, capsys):
    out = tmp_path / "sweep"
    args = ["--sweep", "--dataset", "folder", "--data-dir", str(folder), "--epochs", "1", "--max-macs", "2e7",
            "--out", str(out), *FAST]
    assert inat_train.main([*args, "--trials", "2"]) == 0
    first = counted(read_trials(out / "trials.csv"))
    assert len(first) == 2
    for png in ("optimization_history.png", "param_importances.png", "parallel_coordinate.png"):
        assert (out / png).stat().st_size > 0
    assert inat_train.main([*args, "--trials", "2"]) == 0  # nothing more to run
    assert "nothing to run" in capsys.readouterr().out
    assert inat_train.main([*args, "--trials", "3"]) == 0  # continues the same study
    rows = read_trials(out / "trials.csv")
    assert len(counted(rows)) == 3 and len({r["number"] for r in rows}) == len(rows)
    earlier = {r["number"]: r for r in first}
    assert all(r["note"].startswith("infeasible") for r in rows if r["state"] == "FAIL")
    assert all(r == earlier[r["number"]] for r in rows if r["number"] in earlier)  # stored trials unchanged
    best = json.loads((out / "best_config.json").read_text())
    assert set(best["params"]) == set(PARAM_KEYS) and 0 <= best["best_val_acc"] <= 1
    assert json.loads((out / "metrics.json").read_text())["best_trial"] == best["trial"]

    assert inat_train.main([*args, "--trials", "3", "--epochs", "2"]) == 2  # another study: refused
    assert "was run with --epochs 1" in capsys.readouterr().err

    run = tmp_path / "best"
    assert inat_train.main(["--config", str(out / "best_config.json"), "--part", "a", "--dataset", "folder",
                            "--data-dir", str(folder), "--epochs", "1", "--out", str(run), *FAST]) == 0
    metrics = json.loads((run / "a" / "metrics.json").read_text())
    assert metrics["config"] == best["params"]  # the retrained model is the sweep's best configuration
    assert metrics["params"] == metrics["params_closed_form"]
    assert len(metrics["confusion_matrix"]) == 10 and sum(map(sum, metrics["confusion_matrix"])) == 30
    for name in ("grid.png", "confusion_matrix.png", "layers.txt", "summary.txt", "misclassified.png", "gradcam.png"):
        assert (run / "a" / name).stat().st_size > 0
    assert (run / "metrics.json").exists()

    assert inat_eval.main(["--checkpoint", str(run / "a" / "checkpoint.pt"), "--device", "cpu",
                           "--out", str(tmp_path / "eval")]) == 0
    again = json.loads((tmp_path / "eval" / "eval.json").read_text())
    assert again["test_acc"] == metrics["test_acc"] and again["confusion_matrix"] == metrics["confusion_matrix"]


def test_part_b_strategies_table_with_a_stand_in_weights_file(folder, tmp_path, stand_in_resnet50):
    assert stand_in_resnet50.name == weights_file(finetune.WEIGHTS).name
    out = tmp_path / "run"
    assert inat_train.main(["--part", "b", "--strategies", "head", "full", "--ft-epochs", "1", "--ft-batch-size", "16",
                            "--dataset", "folder", "--data-dir", str(folder), "--no-checkpoints", "--out", str(out),
                            *FAST]) == 0
    with (out / "b" / "strategies.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["strategy"] for r in rows] == ["head", "full"]
    assert int(rows[0]["trainable_params"]) == 20_490 and int(rows[1]["trainable_params"]) == 23_528_522
    assert all(float(r["peak_memory_mib"]) > 0 for r in rows)
    assert "| head only (fc) | 20,490 |" in (out / "b" / "strategies.md").read_text()


@pytest.mark.parametrize("flags, message", [
    (["--filters", "8", "16", "32"], "--filters takes one number"),
    (["--padding", "valid", "--kernel", "5", "--part", "a"], "vanishes"),
    (["--freeze-k", "12"], "--freeze-k must be between 0 and 9"),
    (["--dropout", "1.5"], "--dropout must be in [0, 1)"),
])
def test_bad_flags_are_one_error_line(folder, tmp_path, capsys, flags, message):
    assert inat_train.main(["--dataset", "folder", "--data-dir", str(folder), "--out", str(tmp_path / "r"),
                            *FAST, *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_a_config_file_without_a_configuration_is_one_error_line(tmp_path, capsys):
    bad = tmp_path / "best_config.json"
    bad.write_text(json.dumps({"params": {"filters": 8}}))
    assert inat_train.main(["--config", str(bad)]) == 2
    assert "has no part A configuration" in capsys.readouterr().err
    bad.write_text("{not json")
    assert inat_train.main(["--config", str(bad)]) == 2
    assert "is not JSON" in capsys.readouterr().err


def test_resume_keeps_finished_parts_and_continues_the_interrupted_strategy(folder, tmp_path, monkeypatch, capsys,
                                                                           stand_in_resnet50):
    """Part A and part B's head run finish; a real SIGTERM arrives as epoch 1 of `full` (of 2) ends: --resume of
    the folder keeps a/ and b/head/, finishes full, and writes the table and metrics.json."""
    out = tmp_path / "run"
    real = RunFolder.train

    def stop_full(run, model, data, cfg, **kw):
        if run.name == "b/full" and run.resume_checkpoint() is None:
            def epoch_end(m, epoch):
                if epoch == 1:
                    signal.raise_signal(signal.SIGTERM)
                return {}
            kw["epoch_end"] = epoch_end
        return real(run, model, data, cfg, **kw)

    monkeypatch.setattr(RunFolder, "train", stop_full)
    flags = ["--epochs", "1", "--strategies", "head", "full", "--ft-epochs", "2", "--ft-batch-size", "16",
             "--filters", "8", "--kernel", "3", "--dataset", "folder", "--data-dir", str(folder), "--out", str(out),
             *FAST]
    assert inat_train.main(flags) == 143
    assert "interrupted: SIGTERM after epoch 1" in capsys.readouterr().err
    assert (out / "a" / "metrics.json").exists() and (out / "b" / "head" / "metrics.json").exists()
    assert not (out / "b" / "full" / "metrics.json").exists() and not (out / "metrics.json").exists()
    a_before = (out / "a" / "metrics.json").read_text()
    assert inat_train.main(["--resume", str(out)]) == 0
    assert "resuming the experiment" in capsys.readouterr().out
    assert (out / "a" / "metrics.json").read_text() == a_before  # kept, not run again
    rows = json.loads((out / "metrics.json").read_text())["b"]
    assert [r["strategy"] for r in rows] == ["head", "full"]
    with (out / "b" / "full" / "history.csv").open() as f:
        assert [r["epoch"] for r in csv.DictReader(f)] == ["1", "2"]
