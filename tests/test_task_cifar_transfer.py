"""task_cifar_transfer: freezing, heads, parameter counts, weights from TORCH_HOME, salt-and-pepper,
activation hooks, the cosine schedule, and every part end to end on synthetic data."""
import csv
import json
import signal

import pytest
import torch
import torchvision

from common.augment import salt_and_pepper
from common.data import balanced_subset, load_data
from common.hooks import ActivationRecorder
from common.models import count_parameters, resnet18
from common.training import Checkpointer, TrainConfig, fit, warmup_cosine
from common.weights import weights_file
from task_cifar_transfer import eval as tr_eval
from task_cifar_transfer import train as tr_train
from task_cifar_transfer.activations import record_activations
from task_cifar_transfer.augstudy import AUGMENTATIONS
from task_cifar_transfer.transfer import CONFIGS, WEIGHTS, build_transfer_model, make_head
from tests.conftest import one_error_line

# 5 images per report grid
SMALL = ["--dataset", "synthetic", "--subset", "300", "--width", "8", "--device", "cpu", "--seed", "0",
         "--misclassified", "5"]



@pytest.fixture
def cached_weights(own_weights_dir):
    """A state dict of a fresh torchvision resnet18 (a stand-in, not ImageNet), under torchvision's name, in
    TORCHVISION_WEIGHTS_DIR (torchvision's hash check would refuse it in TORCH_HOME)."""
    torch.manual_seed(123)
    state = torchvision.models.resnet18().state_dict()
    torch.save(state, own_weights_dir / "resnet18-f37072fd.pth")
    return state



# ----------------------------------------------------------------------------- part (b) model
def test_pretrained_weights_load_from_your_own_weights_dir(cached_weights, no_network):
    model = build_transfer_model(CONFIGS[2], num_classes=10)
    for name, value in model.state_dict().items():
        if not name.startswith("fc."):  # the 1000-class fc is replaced by a 10-class one
            assert torch.equal(value, cached_weights[name]), name
    assert model.fc.out_features == 10


def test_missing_weights_offline_is_one_line(torch_home, no_network, capsys, tmp_path):
    out = tmp_path / "run"
    assert tr_train.main([*SMALL, "--part", "b", "--configs", "3", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: pretrained weights resnet18-f37072fd.pth not in ")
    assert str(torch_home / "hub" / "checkpoints") in err[0] and "download https://" in err[0]
    assert weights_file(WEIGHTS) == torch_home / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    assert not out.exists()  # it fails before any folder is made


def test_trainable_parameter_counts():
    # torchvision resnet18 with a 10-class fc: 11,181,642. layer4 alone: convs 1,179,648 + 3 x 2,359,296 +
    # 131,072 (projection) + 5 BatchNorms x 1,024 = 8,393,728; heads: 512-128-10 = 66,954,
    # 512-256-128-128-64-32-10 = 191,402.
    expected = {1: 11_181_642, 2: 11_181_642, 3: 8_393_728 + 66_954, 4: 8_393_728 + 191_402}
    for number, count in expected.items():
        model = build_transfer_model(CONFIGS[number], 10, load_pretrained=False)
        assert count_parameters(model, trainable_only=True) == count, number
    frozen = [name for name, child in model.named_children() if not any(p.requires_grad for p in child.parameters())
              and any(True for _ in child.parameters())]
    assert frozen == ["conv1", "bn1", "layer1", "layer2", "layer3"]  # relu and maxpool have no parameters
    assert model.frozen_children == 7


@pytest.mark.parametrize("kind, hidden", [("linear", []), ("mlp", [128]), ("deep", [256, 128, 128, 64, 32])])
def test_head_output_shapes(kind, hidden):
    head = make_head(kind, 512, 10)
    assert head(torch.randn(5, 512)).shape == (5, 10)
    linears = [m for m in head.modules() if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in linears] == [*hidden, 10]


def test_resize_upsamples_on_the_way_in():
    model = build_transfer_model(CONFIGS[1], 10, resize=224, load_pretrained=False).eval()
    with ActivationRecorder(model, ["conv1"]) as record:
        maps = record(torch.randn(2, 3, 32, 32))
    assert maps["conv1"].shape == (2, 64, 112, 112)  # 224 / 2: the 7x7 stride-2 stem saw 224 px


def test_frozen_layers_and_bn_statistics_stay_unchanged(tmp_path):
    torch.manual_seed(0)
    model = build_transfer_model(CONFIGS[3], 10, load_pretrained=False)
    data = load_data("synthetic", subset=80, seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fit(model, data, TrainConfig(epochs=1, batch_size=24, lr=0.1, warmup_epochs=0, schedule="cosine",
                                 save_checkpoints=False),
        Checkpointer(tmp_path, enabled=False), augment=None, generator=torch.Generator().manual_seed(0))
    after = model.state_dict()
    frozen = ("conv1.", "bn1.", "layer1.", "layer2.", "layer3.")
    for name, value in after.items():
        if name.startswith(frozen):  # weights and BN running_mean / running_var / num_batches_tracked
            assert torch.equal(value, before[name]), name
    assert not torch.equal(after["fc.0.weight"], before["fc.0.weight"])  # the head learned
    assert not torch.equal(after["layer4.0.bn1.running_mean"], before["layer4.0.bn1.running_mean"])
    model.train()
    assert not model.layer3.training and not model.bn1.training and model.layer4.training and model.fc.training


# ----------------------------------------------------------------------------- common pieces
def test_salt_and_pepper_fraction():
    x = torch.full((64, 3, 32, 32), 128, dtype=torch.uint8)
    out = salt_and_pepper(x, torch.Generator().manual_seed(0), amount=0.1)
    assert out.dtype == torch.uint8 and out.shape == x.shape
    hit = out != 128
    assert torch.equal(hit[:, 0], hit[:, 1]) and torch.equal(hit[:, 0], hit[:, 2])  # whole pixels
    assert hit[:, 0].float().mean().item() == pytest.approx(0.1, abs=0.005)  # 65,536 pixels
    white = (out[:, 0] == 255).float().mean().item()
    black = (out[:, 0] == 0).float().mean().item()
    assert white == pytest.approx(0.05, abs=0.005) and black == pytest.approx(0.05, abs=0.005)
    assert not torch.equal(hit[0], hit[1])  # each sample its own pattern
    floats = salt_and_pepper(torch.full((4, 3, 8, 8), 0.5), torch.Generator().manual_seed(0), amount=0.5)
    assert set(floats.unique().tolist()) <= {0.0, 0.5, 1.0}


def test_activation_hooks_return_one_map_per_requested_layer():
    ours = resnet18(10, norm="bn", width=8)
    names = ["conv1", "bn1", "layer1", "layer2.1", "layer4"]
    with ActivationRecorder(ours, names) as record:
        maps = record(torch.randn(2, 3, 32, 32))
    assert list(maps) == names
    assert [tuple(m.shape) for m in maps.values()] == [(2, 8, 32, 32), (2, 8, 32, 32), (2, 8, 32, 32),
                                                       (2, 16, 16, 16), (2, 64, 4, 4)]
    assert all(not layer._forward_hooks for layer in ours.modules())  # released on exit
    with pytest.raises(ValueError, match="layer9"):
        ActivationRecorder(ours, ["layer9"])
    for model in (ours, build_transfer_model(CONFIGS[1], 10, load_pretrained=False)):
        maps = record_activations(model, torch.randn(1, 3, 32, 32))
        assert list(maps) == ["conv1", "relu", "layer1", "layer2", "layer3", "layer4"]
        assert maps["relu"].min() >= 0 and maps["conv1"].min() < 0


def test_balanced_subset_is_balanced_and_seeded():
    data = load_data("synthetic", val_size=500, seed=0)
    tiny = balanced_subset(data.train, 30, seed=1)
    assert torch.bincount(tiny.labels, minlength=10).tolist() == [30] * 10
    assert torch.equal(tiny.index, balanced_subset(data.train, 30, seed=1).index)
    assert not torch.equal(tiny.index, balanced_subset(data.train, 30, seed=2).index)
    assert set(tiny.index.tolist()) <= set(data.train.index.tolist())


def test_warmup_cosine():
    assert warmup_cosine(0, 10, 110) == pytest.approx(0.1)
    assert warmup_cosine(9, 10, 110) == pytest.approx(1.0)
    assert warmup_cosine(10, 10, 110) == pytest.approx(1.0)
    assert warmup_cosine(60, 10, 110) == pytest.approx(0.5)
    assert warmup_cosine(109, 10, 110) < 0.001
    with pytest.raises(ValueError, match="schedule"):
        TrainConfig(schedule="step")


# ----------------------------------------------------------------------------- every part, end to end
@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("transfer")
    mp = pytest.MonkeyPatch()
    own_weights = tmp_path_factory.mktemp("own_weights")  # a stand-in resnet18, not ImageNet
    mp.setenv("TORCHVISION_WEIGHTS_DIR", str(own_weights))
    torch.save(torchvision.models.resnet18().state_dict(), own_weights / "resnet18-f37072fd.pth")
    code = tr_train.main([*SMALL, "--epochs", "2", "--warmup-epochs", "0", "--batch-size", "64",
                          "--configs", "1", "3", "--tiny-train", "100", "--tiny-test", "50",
                          "--augmentations", "none", "rotation", "cutout", "salt_pepper",
                          "--dropouts", "0.0", "0.5", "--out", str(out)])
    mp.undo()
    assert code == 0
    return out


def test_part_a_folder_is_complete(run_dir):
    for name in ["config.json", "summary.txt", "history.csv", "checkpoint.pt", "last.pt", "curves.png",
                 "misclassified.png", "gradcam.png", "metrics.json"]:
        assert (run_dir / "a" / name).stat().st_size > 0, name
    metrics = json.loads((run_dir / "a" / "metrics.json").read_text())
    assert 0 <= metrics["test_acc"] <= 1 and metrics["params"] == count_parameters(resnet18(10, width=8))
    config = json.loads((run_dir / "a" / "config.json").read_text())
    assert (config["part"], config["epochs"], config["batch_size"], config["lr"]) == ("a", 2, 64, 0.4)


def test_part_b_table_and_configs(run_dir):
    rows = list(csv.DictReader((run_dir / "b" / "results.csv").open()))
    assert [(r["config"], r["size_px"]) for r in rows] == [("1", "32"), ("3", "32")]
    assert [int(r["trainable_params"]) for r in rows] == [11_181_642, 8_460_682]
    for sub in ("config1-32px", "config3-32px"):
        assert (run_dir / "b" / sub / "metrics.json").exists() and (run_dir / "b" / sub / "gradcam.png").exists()
    assert "| 3 | 32 |" in (run_dir / "b" / "results.md").read_text()
    config3 = json.loads((run_dir / "b" / "config3-32px" / "config.json").read_text())
    assert config3["mean"] == pytest.approx([0.485, 0.456, 0.406])  # ImageNet's normalisation


def test_part_c_tables_and_plots(run_dir):
    rows = list(csv.DictReader((run_dir / "c" / "results.csv").open()))
    assert [(r["study"], r["setting"]) for r in rows] == [
        ("augmentation", "none"), ("augmentation", "rotation"), ("augmentation", "cutout"),
        ("augmentation", "salt_pepper"), ("dropout", "0.0"), ("dropout", "0.5")]
    for r in rows:
        assert float(r["test_error"]) == pytest.approx(1 - float(r["test_acc"]))
    assert rows[4]["test_acc"] == rows[0]["test_acc"]  # dropout 0.0 without augmentation is the "none" run
    assert "| augmentation | none |" in (run_dir / "c" / "results.md").read_text()
    for name in ["test_accuracy.png", "augmentations.png", "metrics.json", "augmentation/rotation/history.csv"]:
        assert (run_dir / "c" / name).stat().st_size > 0, name
    config = json.loads((run_dir / "c" / "config.json").read_text())
    assert config["split_sizes"]["train"] == 100 and config["split_sizes"]["test"] == 50
    assert len(AUGMENTATIONS) == 9


def test_part_d_and_comparison(run_dir):
    files = sorted(p.name for p in (run_dir / "d").glob("activations_*.png"))
    assert files == ["activations_1_conv1.png", "activations_2_relu.png", "activations_3_layer1.png",
                     "activations_4_layer2.png", "activations_5_layer3.png", "activations_6_layer4.png"]
    table = (run_dir / "comparison.md").read_text()
    assert "87.35%" in table and "73.80%" in table and "79.00%" in table and "synthetic, subset 300" in table
    assert "| (c) augmentation study, tiny set | best: " in table and "| (c) dropout study, tiny set | best: " in table
    summary = json.loads((run_dir / "metrics.json").read_text())
    assert set(summary) == {"a", "b", "c", "d"}


@pytest.mark.parametrize("part_run", ["a", "b/config3-32px"])
def test_eval_reproduces_test_acc_and_saves_activations(run_dir, tmp_path, part_run):
    assert tr_eval.main(["--checkpoint", str(run_dir / part_run / "checkpoint.pt"), "--device", "cpu",
                         "--activations", "--image-index", "3", "--out", str(tmp_path)]) == 0
    ours = json.loads((tmp_path / "eval.json").read_text())
    trained = json.loads((run_dir / part_run / "metrics.json").read_text())
    assert ours["test_acc"] == pytest.approx(trained["test_acc"], abs=1e-9)
    assert len(list(tmp_path.glob("activations_*.png"))) == 6 and ours["activations"]["test_position"] == 3


@pytest.mark.parametrize("argv, expected", [
    (["--part", "e"], "--part"),
    (["--configs", "5"], "--configs"),
    (["--dropouts", "1.5"], "--dropouts"),
    (["--augmentations", "mixup"], "--augmentations"),
    (["--image-index", "5000"], "--image-index"),
])
def test_bad_flags_give_one_line_and_exit_2(argv, expected, capsys, tmp_path):
    out = tmp_path / "run"
    assert tr_train.main([*SMALL, *argv, "--out", str(out)]) == 2
    assert expected in one_error_line(capsys)
    assert not out.exists()


def test_eval_errors_are_one_line(capsys, tmp_path):
    assert tr_eval.main(["--checkpoint", str(tmp_path / "nope.pt")]) == 2
    assert "no checkpoint at" in one_error_line(capsys)
    assert tr_eval.main(["--checkpoint", ""]) == 2
    assert "train part (a) first" in one_error_line(capsys)


def test_sigterm_in_a_later_sub_run_then_resume_of_the_folder_finishes_the_experiment(tmp_path, monkeypatch, capsys):
    """Part (b) at two sizes: a real SIGTERM as epoch 1 of the second run (config1-40px) ends; --resume of the run
    folder keeps config1-32px as it was, continues config1-40px from its last.pt, and writes the table."""
    from common import training

    out = tmp_path / "run"
    flags = [*SMALL, "--part", "b", "--configs", "1", "--resize", "32", "40", "--epochs", "2", "--batch-size", "64",
             "--out", str(out)]
    real = training.write_csv

    def signal_in_the_second_run(path, history, fields):
        real(path, history, fields)
        if "config1-40px" in str(path) and len(history) == 1:
            signal.raise_signal(signal.SIGTERM)

    monkeypatch.setattr(training, "write_csv", signal_in_the_second_run)
    assert tr_train.main(flags) == 143
    assert "interrupted: SIGTERM after epoch 1" in capsys.readouterr().err
    first = (out / "b" / "config1-32px" / "metrics.json").read_text()
    assert not (out / "b" / "config1-40px" / "metrics.json").exists() and not (out / "metrics.json").exists()
    monkeypatch.setattr(training, "write_csv", real)
    assert tr_train.main(["--resume", str(out)]) == 0
    assert (out / "b" / "config1-32px" / "metrics.json").read_text() == first  # kept, not run again
    with (out / "b" / "config1-40px" / "history.csv").open() as f:
        assert [r["epoch"] for r in csv.DictReader(f)] == ["1", "2"]
    with (out / "b" / "results.csv").open() as f:
        assert [r["size_px"] for r in csv.DictReader(f)] == ["32", "40"]
    assert (out / "metrics.json").exists()
