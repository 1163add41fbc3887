"""Values that come from files go through the flags' own validators: a --config file, the config.json a --resume
reads, the args saved in a checkpoint that eval.py rebuilds from. A value no flag would take is one error line
(exit 2), never a traceback, a run that asks for terabytes, or a run marked complete with NaN losses."""
import json
from pathlib import Path

import pytest
import torch

from common import training
from task_inaturalist import train as inat_train
from task_inaturalist.recipe import ORIGINAL_BEST
from task_resnet_ln import eval as ln_eval
from task_resnet_ln import train as ln_train
from tests.conftest import one_error_line

TINY = ["--dataset", "synthetic", "--subset", "300", "--width", "4", "--epochs", "1", "--batch-size", "32",
        "--device", "cpu", "--misclassified", "2"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("values") / "run"
    assert ln_train.main([*TINY, "--out", str(out)]) == 0
    return out


# ----------------------------------------------------------------------------- --config
@pytest.mark.parametrize("change, message", [
    ({"weight_decay": float("nan")}, "argument --weight-decay: must be a finite number, got nan"),
    ({"augment": "no"}, "augment must be true or false, got 'no'"),
    ({"dense": 10 ** 12}, "argument --dense: must be an integer from 1 to 65,536"),
    ({"dense": "DIGITS"}, "Exceeds the limit (4300 digits) for integer string conversion"),
    ({"batch_size": 0}, "argument --batch-size: must be an integer from 1"),
    ({"filters": [8, "x", 8, 8, 8]}, "argument --filters: invalid integer"),
    ({"lr": None}, "lr needs a value (--lr), got null"),
    ({"optimizer": ["adam"]}, "optimizer holds ['adam'], which is not what --optimizer takes"),
], ids=["nan", "string-switch", "huge-dense", "5000-digits", "zero-batch", "string-filter", "null", "list"])
def test_config_values_go_through_the_flags_validators(change, message, tmp_path, capsys):
    path = tmp_path / "best_config.json"
    text = json.dumps({"params": {**ORIGINAL_BEST, **change}})  # json writes NaN as is, as a user's file may hold
    path.write_text(text.replace('"DIGITS"', "9" * 5000))  # an integer of 5000 digits, as the file would hold it
    assert inat_train.main(["--config", str(path), "--dataset", "synthetic", "--out", str(tmp_path / "o")]) == 2
    line = one_error_line(capsys)
    assert line.startswith(f"error: --config {path}: ") and message in line, line
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("text, message", [
    ('{"params": {"filters": 8', "is not JSON"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('[1, 2]', "holds a JSON list, not an object"),
    (b"\xff\xfe", "is not UTF-8 text"),
], ids=["truncated", "deep", "list", "binary"])
def test_a_damaged_config_file_is_one_line(text, message, tmp_path, capsys):
    path = tmp_path / "best_config.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    assert inat_train.main(["--config", str(path)]) == 2
    assert message in one_error_line(capsys)


def test_flags_refuse_non_finite_numbers(capsys):
    for flag in (["--weight-decay", "nan"], ["--lr", "inf"], ["--momentum", "nan"], ["--label-smoothing=-inf"]):
        assert ln_train.main([*TINY, *flag]) == 2
        assert "must be" in one_error_line(capsys)


# ----------------------------------------------------------------------------- --resume of a damaged config.json
def unfinished_copy(finished: Path, where: Path) -> Path:
    """A copy of a finished run without its metrics.json: an interrupted run, as --resume finds one."""
    where.mkdir()
    for name in ("config.json", "last.pt", "history.csv", "steps.csv"):
        (where / name).write_bytes((finished / name).read_bytes())
    return where


@pytest.mark.parametrize("damage, message", [
    (lambda c: json.dumps(c)[:40], "is not JSON"),
    (lambda c: json.dumps([c]), "holds a JSON list, not an object"),
    (lambda c: json.dumps({**c, "sub_run": "/etc"}), "which is not the path to this folder"),
    (lambda c: json.dumps({**c, "sub_run": "a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s/t/u/v/w/x/y/z"}),
     "which is not the path to this folder"),
    (lambda c: json.dumps({**c, "sub_run": "../other"}), "which is not the path to this folder"),
    (lambda c: json.dumps({**c, "width": 10 ** 9}), "argument --width: must be an integer from 1 to 512"),
    (lambda c: json.dumps({**c, "weight_decay": float("nan")}), "argument --weight-decay: must be a finite number"),
], ids=["truncated", "list", "absolute-sub-run", "deeper-than-the-path", "outside", "huge-width", "nan"])
def test_resume_of_a_damaged_config_is_one_line(damage, message, finished, tmp_path, capsys):
    run = unfinished_copy(finished, tmp_path / "run")
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(damage(config))
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    assert ln_train.main(["--resume", str(run)]) == 2
    assert message in one_error_line(capsys)
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


def test_resume_never_reads_another_folders_config_through_sub_run(finished, tmp_path, capsys):
    """An absolute sub_run used to make --resume take its flags from some other folder's config.json."""
    other = unfinished_copy(finished, tmp_path / "other")
    run = unfinished_copy(finished, tmp_path / "run")
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "sub_run": str(other)}))
    assert ln_train.main(["--resume", str(run)]) == 2
    assert "not the path to this folder" in one_error_line(capsys)


# ----------------------------------------------------------------------------- eval.py and a checkpoint's args
def checkpoint_with(finished: Path, where: Path, **args) -> Path:
    ckpt = torch.load(finished / "checkpoint.pt", weights_only=True)
    where.mkdir()
    torch.save({**ckpt, "args": {**ckpt["args"], **args}}, where / "checkpoint.pt")
    return where / "checkpoint.pt"


@pytest.mark.parametrize("args, message", [
    ({"width": 10 ** 6}, "argument --width: must be an integer from 1 to 512"),
    ({"batch_size": -1}, "argument --batch-size"),
    ({"flip": "yes"}, "flip must be true or false"),
    ({"cutout": 10 ** 9}, "argument --cutout: must be an integer from 0 to 1,024"),
], ids=["huge-width", "negative-batch", "string-switch", "huge-cutout"])
def test_eval_checks_a_checkpoints_saved_args_like_the_flags(args, message, finished, tmp_path, capsys):
    path = checkpoint_with(finished, tmp_path / "c", **args)
    assert ln_eval.main(["--checkpoint", str(path), "--device", "cpu"]) == 2
    line = one_error_line(capsys)
    assert line.startswith(f"error: {path} (saved args): ") and message in line, line
    assert not (tmp_path / "c" / "eval.json").exists()


def test_eval_takes_the_pixel_limit_from_its_own_flags_never_the_checkpoint(tmp_path, monkeypatch):
    """A checkpoint whose saved args say "max_pixels": null (no limit) is evaluated with eval.py's own limit."""
    from common import evaluation
    from task_inaturalist import eval as inat_eval

    ckpt = {"args": {"max_pixels": None, "image_size": 32}}
    args = inat_eval.build_parser().parse_args(["--checkpoint", "x.pt"])
    saved = evaluation.saved_args(ckpt, args, inat_train.build_parser())
    assert saved.max_pixels == args.max_pixels == 89_478_485
    args = inat_eval.build_parser().parse_args(["--checkpoint", "x.pt", "--max-pixels", "1000"])
    assert evaluation.saved_args(ckpt, args, inat_train.build_parser()).max_pixels == 1000


def test_eval_out_is_a_new_folder_or_a_run_folder_of_the_task(finished, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "misclassified.png").write_bytes(b"my own picture")
    assert ln_eval.main(["--checkpoint", str(finished / "checkpoint.pt"), "--device", "cpu", "--out", str(out)]) == 2
    assert "is not a run folder of task_resnet_ln" in one_error_line(capsys)
    assert (out / "misclassified.png").read_bytes() == b"my own picture"


# ----------------------------------------------------------------------------- non-finite runs never complete
def test_a_non_finite_validation_loss_stops_the_run_without_metrics(tmp_path, monkeypatch, capsys):
    real = training.evaluate

    def nan_loss(*args, **kwargs):
        result = real(*args, **kwargs)
        result.loss = float("nan")
        return result

    monkeypatch.setattr(training, "evaluate", nan_loss)
    out = tmp_path / "run"
    assert ln_train.main([*TINY, "--epochs", "2", "--out", str(out)]) == 1
    line = one_error_line(capsys)
    assert "non-finite validation loss after epoch 1" in line and "no metrics.json was written" in line
    assert not (out / "metrics.json").exists() and not (out / "checkpoint.pt").exists()


def test_non_finite_weights_stop_the_run_even_when_the_loss_is_finite(tmp_path, capsys):
    """A weight no forward pass reads can turn NaN while every loss stays finite: it still never counts as done."""
    from common.data import load_data
    from common.errors import TrainingDiverged
    from common.models import resnet18

    data = load_data("synthetic", "", val_size=50, subset=300, seed=0)
    model = resnet18(len(data.classes), width=4)
    model.register_parameter("unused", torch.nn.Parameter(torch.zeros(3)))

    def poison(m, epoch):
        with torch.no_grad():
            m.unused.fill_(float("nan"))
        return {}

    cfg = training.TrainConfig(epochs=2, batch_size=32, lr=0.05, warmup_epochs=0.0)
    with pytest.raises(TrainingDiverged) as stop:
        training.fit(model, data, cfg, training.Checkpointer(tmp_path), generator=torch.Generator().manual_seed(0),
                     epoch_end=poison)
    assert (stop.value.what, stop.value.epoch, stop.value.kept) == ("weights", 1, tmp_path / "last.pt")
    assert not (tmp_path / "checkpoint.pt").exists()


# ----------------------------------------------------------------------------- flags -> TrainConfig
SGD_FLAGS = ["--epochs", "3", "--batch-size", "24", "--lr", "0.3", "--momentum", "0.5", "--no-nesterov",
             "--weight-decay", "0.001", "--warmup-epochs", "0.5", "--label-smoothing", "0.2", "--grad-clip", "3"]


@pytest.mark.parametrize("task", ["task_resnet_ln", "task_cifar_transfer", "task_catsdogs"])
def test_every_recipe_flag_reaches_the_training_config(task):
    """TrainConfig.from_args: a flag named like a TrainConfig field is that field, in every task that trains
    with the shared SGD flags; what the task fixes (its schedule) is not a flag."""
    import importlib

    train = importlib.import_module(f"{task}.train")
    args = train.build_parser().parse_args(SGD_FLAGS)
    cfg = train.train_config(args)
    expected = {"epochs": 3, "batch_size": 24, "lr": 0.3, "momentum": 0.5, "nesterov": False, "weight_decay": 0.001,
                "warmup_epochs": 0.5, "label_smoothing": 0.2, "grad_clip": 3.0}
    assert {k: getattr(cfg, k) for k in expected} == expected
    assert cfg.schedule == ("plateau" if task == "task_resnet_ln" else "cosine")
    fixed = training.TrainConfig.from_args(args, schedule="cosine", epochs=7)
    assert (fixed.epochs, fixed.lr, fixed.schedule) == (7, 0.3, "cosine")
