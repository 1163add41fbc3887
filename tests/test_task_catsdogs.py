"""task_catsdogs on small ImageFolders of real encoded files (JPEG and PNG of varied sizes, grayscale, CMYK,
RGBA, a truncated JPEG, a text file named .jpg): parameter count, one initial state for both twins, the
3-of-10 augmentation and its CSV, 336 training images, metrics against scikit-learn, the seeds table, a
folder run end to end, eval.py, resume, and one error line for each foreseeable mistake."""
import csv
import json
import math
import signal
from pathlib import Path

import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

from common.export_folder import export_synthetic
from common.folders import load_folder
from common.gradcam import resnet50_gradcam_layer
from common.models import count_parameters
from common.weights import weights_file
from task_catsdogs import augmentations as aug_module
from task_catsdogs import eval as cd_eval
from task_catsdogs import model as cd_model
from task_catsdogs import train as cd_train
from task_catsdogs.augmentations import AUGMENTATIONS, augment_once, augment_originals, write_augmentations_csv
from task_catsdogs.data import Pool, balanced_split, image_stats, twin_data
from task_catsdogs.seeds import paired_difference, summarize, t_quantile_975
from tests.conftest import one_error_line

# torchvision 0.29 marks its image decoders deprecated (in favour of TorchCodec) on every call
pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding capabilities:DeprecationWarning")

# A twin run small enough for one CPU thread: 32 px, 8 train originals (24 with the augmented), 2 epochs.
TINY = ["--dataset", "folder", "--image-size", "32", "--train-size", "8", "--val-size", "4", "--test-size", "6",
        "--epochs", "2", "--batch-size", "4", "--device", "cpu", "--misclassified", "4", "--examples", "2"]


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """horizontal/ and vertical/: 10 JPEGs and PNGs of 40 to 120 px each, plus a grayscale JPEG, a CMYK JPEG
    and an RGBA PNG (13 readable per class), a truncated JPEG and a text file named .jpg."""
    root = tmp_path_factory.mktemp("photos")
    export_synthetic(root, per_class=10, seed=0, odd_files=True)
    return root


# ----------------------------------------------------------------------------- model
def test_resnet50_with_a_two_class_head_has_the_originals_parameter_count():
    assert count_parameters(cd_model.build_resnet50(2)) == cd_model.ORIGINAL_PARAMS == 23_512_130


def test_twins_start_from_one_state_and_share_no_storage():
    plain, aug = cd_model.twin_models(2, "random", seed=3)
    a, b = plain.state_dict(), aug.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert all(a[k].data_ptr() != b[k].data_ptr() for k in a)
    other, _ = cd_model.twin_models(2, "random", seed=4)
    assert not torch.equal(other.conv1.weight, plain.conv1.weight)


def test_imagenet_init_loads_every_layer_but_the_head_from_your_own_weights_dir(own_weights_dir):
    torch.manual_seed(7)
    state = cd_model.resnet50().state_dict()  # a stand-in for the ImageNet file, under its name
    torch.save(state, own_weights_dir / weights_file(cd_model.WEIGHTS).name)
    model = cd_model.build_resnet50(2, "imagenet")
    for name, value in model.state_dict().items():
        if not name.startswith("fc."):
            assert torch.equal(value, state[name]), name
    assert model.fc.out_features == 2 and count_parameters(model) == 23_512_130


def test_gradcam_layer_keeps_a_map_of_at_least_4x4():
    assert [resnet50_gradcam_layer(s) for s in (224, 128, 64, 32, 16)] == \
        ["layer4.2", "layer4.2", "layer3.5", "layer2.3", "layer1.2"]


# ----------------------------------------------------------------------------- the ten augmentations
def noise_image(h: int, w: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def test_the_ten_augmentations_are_the_originals_and_each_returns_uint8_rgb():
    assert [a.name for a in AUGMENTATIONS] == ["rotation 30°", "scale", "saturation", "blur", "random noise",
                                               "colour jitter", "pad to square", "pad", "horizontal flip",
                                               "pixelization"]
    image = noise_image(30, 50)
    g = torch.Generator().manual_seed(0)
    out = {a.name: a.apply(image, g)[0] for a in AUGMENTATIONS}
    assert all(x.dtype == torch.uint8 and x.shape[0] == 3 for x in out.values())
    assert out["pad to square"].shape == (3, 50, 50)
    assert torch.equal(out["pad to square"][:, 10:40], image) and out["pad to square"][:, :10].eq(0).all()
    assert torch.equal(out["horizontal flip"], image.flip(-1))
    assert all(out[n].shape == image.shape for n in ("rotation 30°", "scale", "blur", "pixelization", "random noise"))
    pixelated = out["pixelization"]  # nearest upscaling: far fewer distinct columns than the 50 of the noise
    assert len(torch.unique(pixelated[0], dim=1).T) < 15


def test_each_call_applies_3_distinct_of_the_10_in_sequence(monkeypatch):
    trace = []

    def marker(k):
        def apply(image, g):
            trace.append(k)
            return torch.cat([image, torch.full_like(image[:, :, :1], k)], dim=2), f"k={k}"  # one column wider
        return aug_module.Augmentation(f"a{k}", apply)

    monkeypatch.setattr(aug_module, "AUGMENTATIONS", tuple(marker(k) for k in range(10)))
    seen = set()
    for call in range(40):
        trace.clear()
        out, applied = augment_once(noise_image(4, 4), torch.Generator().manual_seed(call))
        assert len(applied) == 3 and len(set(trace)) == 3
        assert [name for name, _ in applied] == [f"a{k}" for k in trace]  # recorded in the order applied
        assert out.shape[-1] == 4 + 3 and out[0, 0, 4:].tolist() == trace  # each step got the previous output
        assert trace == torch.randperm(10, generator=torch.Generator().manual_seed(call))[:3].tolist()
        seen.update(trace)
    assert seen == set(range(10))


def test_augmentation_is_seeded_and_augmentations_csv_names_the_three(tmp_path):
    originals = [noise_image(40 + 7 * i, 60 - 5 * i, i) for i in range(5)]
    a = augment_originals(originals, 24, seed=1)
    assert a.images.shape == (10, 3, 24, 24) and a.images.dtype == torch.uint8
    assert a.source.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert torch.equal(a.images, augment_originals(originals, 24, seed=1).images)
    assert not torch.equal(a.images, augment_originals(originals, 24, seed=2).images)
    write_augmentations_csv(tmp_path / "augmentations.csv", a.records, [f"f{i}.jpg" for i in range(5)],
                            ["cat", "dog"], [0, 1, 0, 1, 0])
    rows = list(csv.DictReader((tmp_path / "augmentations.csv").open()))
    assert len(rows) == 10 and [r["call"] for r in rows[:2]] == ["1", "2"]
    assert rows[3]["file"] == "f1.jpg" and rows[3]["class"] == "dog"
    names = {a.name for a in AUGMENTATIONS}
    for r in rows:
        applied = [r["aug_1"], r["aug_2"], r["aug_3"]]
        assert len(set(applied)) == 3 and set(applied) <= names


def test_112_originals_become_336_training_images_half_of_each_class(tmp_path):
    export_synthetic(tmp_path, per_class=90, seed=1, min_size=20, max_size=40)
    images = load_folder(tmp_path, 16)
    pool = Pool("stripes", images, images)
    twin = twin_data(pool, 112, 28, 28, 16, seed=0)
    assert (len(twin.plain.train), len(twin.aug.train), len(twin.plain.test)) == (112, 336, 28)
    assert torch.bincount(twin.aug.train.labels).tolist() == [168, 168]
    assert torch.equal(twin.aug.train.images[:112], twin.plain.train.images)  # the originals first
    assert twin.aug.test is twin.plain.test and twin.aug.mean == twin.plain.mean  # only the train data differ
    rows = {r["class"]: r for r in image_stats(twin)}
    assert rows["all"]["train (originals)"] == 112 and rows["all"]["train (after augmentation)"] == 336
    assert rows["horizontal"]["augmented"] == 112 and rows["vertical"]["test"] == 14
    train, val, test = balanced_split(pool, 112, 28, 28, seed=0)
    assert not (set(train.tolist()) & set(val.tolist()) or set(train.tolist()) & set(test.tolist())
                or set(val.tolist()) & set(test.tolist()))
    assert not torch.equal(balanced_split(pool, 112, 28, 28, seed=1)[0], train)


# ----------------------------------------------------------------------------- seeds table
def test_paired_difference_and_its_t_interval_on_known_numbers():
    plain = [0.50, 0.60, 0.55, 0.70, 0.65]
    aug = [0.60, 0.65, 0.50, 0.80, 0.70]  # differences 0.10, 0.05, -0.05, 0.10, 0.05
    d = paired_difference(plain, aug)
    sd = math.sqrt(sum((x - 0.05) ** 2 for x in [0.10, 0.05, -0.05, 0.10, 0.05]) / 4)  # 0.0612...
    half = 2.776445 * sd / math.sqrt(5)
    assert d["n"] == 5 and d["mean"] == pytest.approx(0.05) and d["sd"] == pytest.approx(sd)
    assert d["ci95"] == pytest.approx([0.05 - half, 0.05 + half]) and d["t"] == pytest.approx(2.776445)
    one = paired_difference([0.5], [0.6])
    assert one["mean"] == pytest.approx(0.1) and one["ci95"] is None and one["sd"] is None
    rows = summarize([{"seed": s, "plain": {k: p for k in ("acc", "precision_weighted", "recall_weighted",
                                                           "f1_weighted", "precision_macro", "recall_macro",
                                                           "f1_macro")},
                       "aug": {k: a for k in ("acc", "precision_weighted", "recall_weighted", "f1_weighted",
                                              "precision_macro", "recall_macro", "f1_macro")}}
                      for s, (p, a) in enumerate(zip(plain, aug))])
    acc = rows[0]
    assert acc["metric"] == "acc" and acc["plain_mean"] == pytest.approx(0.6)
    assert acc["plain_std"] == pytest.approx(math.sqrt(0.025 / 4)) and acc["diff"]["ci95"] == d["ci95"]


def test_t_quantile_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    for df in list(range(1, 61)) + [100, 1000]:
        assert t_quantile_975(df) == pytest.approx(stats.t.ppf(0.975, df), abs=2e-5), df


class StopAfterTheRunFolder(Exception):
    """Raised in place of the training, once the run folder exists."""


def test_every_skipped_file_is_listed_in_the_run_folder_once_it_exists(photos, tmp_path, monkeypatch):
    """The terminal shows the first few skip lines; skipped_files.txt keeps them all, "path: reason" a line."""
    def stop(*args, **kwargs):
        raise StopAfterTheRunFolder

    monkeypatch.setattr(cd_train, "run_seed", stop)
    out = tmp_path / "out"
    with pytest.raises(StopAfterTheRunFolder):
        cd_train.main([*TINY, "--data-dir", str(photos), "--seeds", "0", "--out", str(out)])
    lines = (out / "skipped_files.txt").read_text().splitlines()
    assert len(lines) == 4 and all(line.startswith(f"{photos}/") for line in lines)  # truncated and text, per class
    assert sorted(Path(line.split(": ", 1)[0]).name for line in lines) == 2 * ["odd_not_an_image.jpg"] + 2 * [
        "odd_truncated.jpg"]


# ----------------------------------------------------------------------------- a folder run, end to end
@pytest.fixture(scope="module")
def folder_run(photos, tmp_path_factory):
    """Two seeds of the twin experiment on the photo folder; records both twins' states before and after
    training, and every (predictions, labels, figures) the task computed."""
    out = tmp_path_factory.mktemp("run") / "out"
    states, figures = {}, []
    real_twins, real_metrics = cd_train.twin_models, cd_model.classification_metrics

    def recording_twins(num_classes, init, seed):
        plain, aug = real_twins(num_classes, init, seed)
        states[seed] = {"before": [{k: v.clone() for k, v in m.state_dict().items()} for m in (plain, aug)],
                        "models": (plain, aug)}
        return plain, aug

    def recording_metrics(preds, labels, k):
        result = real_metrics(preds, labels, k)
        figures.append((preds.clone(), labels.clone(), result))
        return result

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cd_train, "twin_models", recording_twins)
        mp.setattr(cd_model, "classification_metrics", recording_metrics)
        code = cd_train.main([*TINY, "--data-dir", str(photos), "--seeds", "0", "1", "--no-checkpoints",
                              "--out", str(out)])
    return {"code": code, "out": out, "states": states, "figures": figures}


def test_folder_run_writes_every_file_and_metrics_json_last(folder_run):
    assert folder_run["code"] == 0
    out = folder_run["out"]
    for name in ("config.json", "summary.md", "summary.csv", "seeds.csv", "eval_metrics.png", "metrics.json"):
        assert (out / name).is_file(), name
    for seed in (0, 1):
        s = out / f"seed{seed}"
        for name in ("augmentations.csv", "augmented_examples.png", "image_stats.csv", "image_stats.md",
                     "image_stats.png", "eval_metrics.png", "metrics.json"):
            assert (s / name).is_file(), (seed, name)
        for model in ("plain", "aug"):
            for name in ("config.json", "summary.txt", "history.csv", "curves.png", "misclassified.png",
                         "gradcam.png", "metrics.json"):
                assert (s / model / name).is_file(), (seed, model, name)
            assert not (s / model / "last.pt").exists()  # --no-checkpoints
        # each folder is complete only once its metrics.json is there, written after everything else in it
        newest = max(p.stat().st_mtime_ns for p in s.iterdir() if p.is_file())
        assert (s / "metrics.json").stat().st_mtime_ns == newest
    assert (out / "metrics.json").stat().st_mtime_ns == max(p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file())
    config = json.loads((out / "config.json").read_text())
    assert config["pool"]["train"] == 26 and len(config["pool"]["skipped"]) == 4  # truncated and text, per class
    assert json.loads((out / "seed0" / "plain" / "metrics.json").read_text())["params"] == 23_512_130


def test_the_augmented_twin_trains_on_three_times_the_originals(folder_run):
    s = folder_run["out"] / "seed0"
    assert len(list(csv.DictReader((s / "augmentations.csv").open()))) == 16
    rows = {r["class"]: r for r in csv.DictReader((s / "image_stats.csv").open())}
    assert (rows["all"]["train (originals)"], rows["all"]["train (after augmentation)"]) == ("8", "24")
    configs = [json.loads((s / m / "config.json").read_text()) for m in ("plain", "aug")]
    assert [c["split_sizes"]["train"] for c in configs] == [8, 24]
    # the same recipe: only the data differ
    same = ("lr", "batch_size", "epochs", "momentum", "weight_decay", "warmup_epochs", "seed", "mean", "std")
    assert all(configs[0][k] == configs[1][k] for k in same)


def test_twins_equal_before_training_and_different_after(folder_run):
    for record in folder_run["states"].values():
        before_plain, before_aug = record["before"]
        assert all(torch.equal(before_plain[k], before_aug[k]) for k in before_plain)
        plain, aug = (m.state_dict() for m in record["models"])
        same = [k for k in plain if torch.equal(plain[k], aug[k])]
        assert not same, same
    assert not torch.equal(folder_run["states"][0]["before"][0]["conv1.weight"],
                           folder_run["states"][1]["before"][0]["conv1.weight"])  # a new initial state per seed


def test_per_epoch_metrics_match_sklearn_and_the_last_epoch_is_reported(folder_run):
    figures = folder_run["figures"]
    assert len(figures) == 2 * 2 * (2 + 1)  # seeds x models x (2 epochs + the final report)
    for preds, labels, ours in figures:
        y, p = labels.numpy(), preds.numpy()
        assert ours["acc"] == pytest.approx(accuracy_score(y, p))
        for how in ("weighted", "macro"):
            assert ours[f"precision_{how}"] == pytest.approx(precision_score(y, p, average=how, zero_division=0))
            assert ours[f"recall_{how}"] == pytest.approx(recall_score(y, p, average=how, zero_division=0))
            assert ours[f"f1_{how}"] == pytest.approx(f1_score(y, p, average=how, zero_division=0))
    run = folder_run["out"] / "seed1" / "aug"
    history = list(csv.DictReader((run / "history.csv").open()))
    assert len(history) == 2
    metrics = json.loads((run / "metrics.json").read_text())
    last, final = history[-1], metrics["test_metrics"]
    for key in ("acc", "precision_weighted", "recall_weighted", "f1_weighted", "precision_macro", "recall_macro",
                "f1_macro"):
        assert float(last[f"test_{key}"]) == pytest.approx(final[key]), key
    assert [[int(last[f"cm_{t}_as_{p}"]) for p in ("horizontal", "vertical")] for t in ("horizontal", "vertical")] \
        == final["confusion_matrix"]
    assert sum(map(sum, final["confusion_matrix"])) == 6 and metrics["test_acc"] == pytest.approx(final["acc"])
    assert metrics["reported_weights"] == "last epoch (2)"


def test_seed_tables_hold_the_paired_differences(folder_run):
    out = folder_run["out"]
    top = json.loads((out / "metrics.json").read_text())
    per_seed = {r["seed"]: r for r in top["per_seed"]}
    diffs = [per_seed[s]["aug"]["acc"] - per_seed[s]["plain"]["acc"] for s in (0, 1)]
    acc = next(r for r in csv.DictReader((out / "summary.csv").open()) if r["metric"] == "acc")
    assert float(acc["diff_mean"]) == pytest.approx(sum(diffs) / 2) and acc["n_seeds"] == "2"
    if diffs[0] != diffs[1]:
        half = 12.706205 * abs(diffs[0] - diffs[1]) / math.sqrt(2) / math.sqrt(2)
        assert float(acc["diff_ci95_high"]) - float(acc["diff_ci95_low"]) == pytest.approx(2 * half)
    assert per_seed[0]["aug"] == json.loads((out / "seed0" / "aug" / "metrics.json").read_text())["test_metrics"]
    assert "aug − plain, paired" in (out / "summary.md").read_text()


# ----------------------------------------------------------------------------- checkpoints: eval.py and resume
@pytest.fixture(scope="module")
def checkpointed_run(photos, tmp_path_factory) -> tuple[list[str], Path]:
    """One seed with checkpoints (last.pt, checkpoint.pt per model), uninterrupted, deterministic."""
    run = [*TINY, "--data-dir", str(photos), "--seeds", "0", "--deterministic"]
    out = tmp_path_factory.mktemp("checkpointed") / "out"
    assert cd_train.main([*run, "--out", str(out)]) == 0
    return run, out


def test_eval_reproduces_the_reported_last_epoch(checkpointed_run, tmp_path, capsys):
    _, out = checkpointed_run
    assert cd_eval.main(["--checkpoint", str(out / "seed0" / "aug" / "last.pt"), "--device", "cpu",
                         "--out", str(tmp_path / "eval")]) == 0
    evaluated = json.loads((tmp_path / "eval" / "eval.json").read_text())
    trained = json.loads((out / "seed0" / "aug" / "metrics.json").read_text())
    assert evaluated["test_metrics"]["confusion_matrix"] == trained["test_metrics"]["confusion_matrix"]
    assert evaluated["test_metrics"]["f1_macro"] == pytest.approx(trained["test_metrics"]["f1_macro"])
    assert evaluated["misclassified_indices"] == trained["misclassified_indices"]
    assert (tmp_path / "eval" / "misclassified.png").is_file() and (tmp_path / "eval" / "gradcam.png").is_file()


def test_resume_finishes_an_interrupted_experiment_as_an_uninterrupted_one(checkpointed_run, tmp_path, monkeypatch,
                                                                          capsys):
    """A real SIGTERM as epoch 1 of model_aug (the later sub-run) ends: exit 143; --resume of the folder keeps the
    finished plain run, continues aug from its last.pt (epoch 1), and ends with the weights and figures of the
    uninterrupted run (--deterministic)."""
    run, straight = checkpointed_run
    out = tmp_path / "stopped"
    real = cd_train.TestMetrics.epoch_end

    def stop_in_aug(self, model, epoch):
        row = real(self, model, epoch)
        if len(self.data.train) == 24 and epoch == 1:  # model_aug
            signal.raise_signal(signal.SIGTERM)
        return row

    monkeypatch.setattr(cd_train.TestMetrics, "epoch_end", stop_in_aug)
    assert cd_train.main([*run, "--out", str(out)]) == 143
    assert "interrupted: SIGTERM after epoch 1" in capsys.readouterr().err
    assert not (out / "metrics.json").exists() and not (out / "seed0" / "metrics.json").exists()
    plain = (out / "seed0" / "plain" / "metrics.json").read_text()
    monkeypatch.setattr(cd_train.TestMetrics, "epoch_end", real)
    assert cd_train.main(["--resume", str(out)]) == 0
    assert (out / "seed0" / "plain" / "metrics.json").read_text() == plain  # kept, not run again
    for model in ("plain", "aug"):
        a, b = (json.loads((d / "seed0" / model / "metrics.json").read_text())["test_metrics"] for d in (straight, out))
        assert a == b, model
        wa, wb = (torch.load(d / "seed0" / model / "last.pt", weights_only=True)["model"] for d in (straight, out))
        assert all(torch.equal(wa[k], wb[k]) for k in wa), model
    assert (out / "metrics.json").exists()


# ----------------------------------------------------------------------------- the seeds
@pytest.mark.parametrize("flags, seeds", [([], [0, 1, 2, 3, 4]), (["--seed", "7"], [7]),
                                          (["--seeds", "2", "3"], [2, 3])],
                         ids=["five-by-default", "seed-n-is-one", "seeds"])
def test_five_seeds_by_default_and_seed_n_alone_is_one_experiment(flags, seeds, monkeypatch):
    seen = []
    monkeypatch.setattr(cd_train, "run", lambda args: seen.append(args) or 0)
    assert cd_train.main(flags) == 0
    assert seen[0].seeds == seeds


# ----------------------------------------------------------------------------- one error line each
def test_oxford_pets_offline_is_one_line_saying_what_to_download(tmp_path, offline, monkeypatch, capsys):
    import torchvision.datasets.oxford_iiit_pet as tv_pets

    def refuse(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(tv_pets, "download_and_extract_archive", refuse)
    out = tmp_path / "out"
    assert cd_train.main(["--data-dir", str(tmp_path / "data"), "--device", "cpu", "--out", str(out)]) == 2
    line = one_error_line(capsys, preceded_by=("skipped ",))
    assert "https://www.robots.ox.ac.uk/~vgg/data/pets/" in line and "images.tar.gz" in line
    assert not out.exists()


@pytest.fixture
def three_classes(photos, tmp_path) -> Path:
    for name in ("a", "b", "c"):
        (tmp_path / "three" / name).mkdir(parents=True)
        (tmp_path / "three" / name / "x.png").write_bytes((photos / "horizontal" / "0001.png").read_bytes())
    return tmp_path / "three"


@pytest.mark.parametrize("flags, expected", [
    (["--train-size", "7"], "--train-size must be an even number"),
    (["--seeds", "0", "0"], "--seeds has repeats"),
    (["--seed", "1", "--seeds", "0"], "not both"),
    (["--aug-per-call", "11"], "--aug-per-call"),
    (["--dataset", "cifar10"], "--dataset"),
    (["--gradcam-layer", "layer9"], "--gradcam-layer"),
    (["--test-size", "40"], "need 26 of each class"),
    (["--data-dir", "MISSING"], "does not exist"),
    (["--data-dir", "THREE"], "compares two classes"),
    (["--init", "imagenet"], "not in"),
    (["--epochs", "0"], "--epochs"),
])
def test_bad_inputs_are_one_error_line_and_no_run_folder(flags, expected, photos, three_classes, tmp_path,
                                                         monkeypatch, capsys):
    import urllib.error

    def refuse(*args, **kwargs):
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    flags = [{"MISSING": str(tmp_path / "nowhere"), "THREE": str(three_classes)}.get(f, f) for f in flags]
    out = tmp_path / "out"
    assert cd_train.main([*TINY, "--data-dir", str(photos), *flags, "--out", str(out)]) == 2
    assert expected in one_error_line(capsys, preceded_by=("skipped ",))
    assert not out.exists()
