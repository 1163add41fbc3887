"""bench/bench.py runs at tiny sizes and writes its JSON and Markdown (a benchmark, not a timed test:
nothing here asserts a speed)."""
import json

import pytest
import torchvision

from bench import bench, folders

# torchvision 0.29 marks its image decoders deprecated (in favour of TorchCodec) on every call
pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding capabilities:DeprecationWarning")

TINY = ["--device", "cpu", "--images", "256", "--batch-size", "16", "--workers", "0", "--width", "4",
        "--steps", "1", "--warmup", "0", "--repeats", "2", "--epoch-fraction", "0.002", "--epoch-epochs", "2",
        "--epoch-flags", "--width 4 --batch-size 16", "--folder-images", "24", "--image-size", "64"]


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench")
    assert bench.main([*TINY, "--out", str(folder)]) == 0
    return folder


def test_writes_json_with_every_section(out):
    res = json.loads((out / "bench-cpu.json").read_text())
    assert {"environment", "settings", "folders", "aug", "train", "norm_layer", "epoch"} <= res.keys()
    assert res["environment"]["command"].startswith("python bench/bench.py --device cpu")
    aug = res["aug"]
    for side in ("original", "ours"):
        assert aug[side]["images_per_s"] > 0 and len(aug[side]["repeats"]) == 2 and aug[side]["peak_mib"] > 0
    assert aug["ratio"] == pytest.approx(aug["ours"]["images_per_s"] / aug["original"]["images_per_s"], rel=0.01)
    setups = {(r["norm"], r["weight_std"], r["setup"]) for r in res["train"]["rows"]}
    assert setups == {("bn", False, "original"), ("bn", False, "ours"), ("bn", False, "limit"),
                      ("ln", False, "original"), ("ln", False, "ours"), ("ln", False, "limit"), ("ln", True, "ours")}
    assert "| model | ours / original | ours / limit" in (out / "BENCHMARKS.md").read_text()
    assert len(res["norm_layer"]["rows"]) == 4


def test_epoch_section_runs_the_cifar_ln_recipe_and_scales_to_cifar_sizes(out):
    e = json.loads((out / "bench-cpu.json").read_text())["epoch"]
    assert len(e["epochs"]) == 2 and e["projected"]
    assert all(n % 16 == 0 for n in e["sizes"].values())  # whole batches only
    expected = e["train_s"] * 45_000 / e["sizes"]["train"] + e["val_s"] * 5_000 / e["sizes"]["val"]
    assert e["cifar10_epoch_s"] == pytest.approx(expected, rel=0.01)
    assert e["model"] == "ResNet-18, ln + WS, width 4"


def test_markdown_has_the_tables_and_says_the_gpu_is_not_measured_yet(out):
    md = (out / "BENCHMARKS.md").read_text()
    for heading in ("### Folder photos at 64 px (24 JPEGs in 2 class folders, batch 16)",
                    "### Augmentation throughput", "### Training throughput", "### LayerNorm penalty",
                    "### Epoch of `make cifar-ln`", "## GPU: not measured yet"):
        assert heading in md
    assert "python bench/bench.py --device cpu" in md  # every figure comes with its command


def test_markdown_includes_every_device_json(out):
    cpu = json.loads((out / "bench-cpu.json").read_text())
    cuda = {**cpu, "environment": {**cpu["environment"], "device": "cuda", "device_name": "Fake GPU"}}
    md = bench.render_markdown([cpu, cuda])
    assert "## CUDA: Fake GPU" in md and "## CPU:" in md and "still to be measured" not in md


def check_folders_result(f: dict, images: int, size: int, batch_size: int, workers: int, repeats: int) -> None:
    assert (f["images"], f["image_size"], f["batch_size"], f["workers"]) == (images, size, batch_size, workers)
    for side in ("original", "ours"):
        assert f[side]["images_per_s"] > 0 and len(f[side]["repeats"]) == repeats and f[side]["peak_mib"] > 0
    assert f["ratio"] == pytest.approx(f["ours"]["images_per_s"] / f["original"]["images_per_s"], rel=0.01)
    assert f["goal_cpu"] == 10
    assert f["decode_once"]["images"] == images and f["decode_once"]["seconds"] > 0
    assert f["decode_once"]["images_per_s"] == pytest.approx(images / f["decode_once"]["seconds"], rel=0.05)
    assert f["cache_hit"]["hit"] is True  # the second load_folder read the cache, and did not rewrite it
    assert f["resident_mib"] == pytest.approx(images * 3 * size * size / 2**20, abs=0.1)
    assert f["photos"]["files"] == images and f["photos"]["classes"] == 2 and f["photos"]["mean_kib"] > 5


def test_folders_section_times_both_pipelines_and_the_decode_once(out):
    f = json.loads((out / "bench-cpu.json").read_text())["folders"]
    check_folders_result(f, images=24, size=64, batch_size=16, workers=0, repeats=2)


def test_folders_section_alone_with_dataloader_workers(tmp_path):
    """The original's worker processes start and deliver; only the folders section runs, so no CIFAR data."""
    argv = ["--device", "cpu", "--sections", "folders", "--folder-images", "24", "--image-size", "64",
            "--batch-size", "8", "--workers", "2", "--repeats", "1", "--out", str(tmp_path)]
    assert bench.main(argv) == 0
    res = json.loads((tmp_path / "bench-cpu.json").read_text())
    assert res.keys() == {"environment", "settings", "folders"}
    check_folders_result(res["folders"], images=24, size=64, batch_size=8, workers=2, repeats=1)
    md = (tmp_path / "BENCHMARKS.md").read_text()
    assert "| original: ImageFolder, PIL transforms per image, DataLoader (2 workers)" in md
    assert f"**{res['folders']['ratio']:.1f}×** (goal on the CPU: ≥ 10×" in md
    assert "### Augmentation throughput" not in md


def test_generated_photos_are_an_image_folder_of_non_square_jpegs(tmp_path):
    stats = folders.write_photo_folder(tmp_path, 10, image_size=224)
    dataset = torchvision.datasets.ImageFolder(str(tmp_path))
    assert dataset.classes == ["class0", "class1"] and sorted(dataset.targets) == [0] * 5 + [1] * 5
    sizes = [dataset.loader(p).size for p, _ in dataset.samples]
    assert all(320 <= w <= 500 and 320 <= h <= 500 and w != h for w, h in sizes)
    assert len(set(sizes)) > 1
    assert all(p.endswith(".jpg") and open(p, "rb").read(2) == b"\xff\xd8" for p, _ in dataset.samples)
    assert stats["files"] == 10 and stats["width_range"] == [min(w for w, _ in sizes), max(w for w, _ in sizes)]


def test_markdown_of_a_json_without_the_folders_section(out):
    """JSONs written before the folders section existed still render, without its table."""
    res = json.loads((out / "bench-cpu.json").read_text())
    del res["folders"]
    md = bench.render_markdown([res])
    assert "### Folder photos" not in md and "### Augmentation throughput" in md


def test_batch_larger_than_the_folder_is_one_error_line(capsys, tmp_path):
    assert bench.main(["--sections", "folders", "--folder-images", "8", "--batch-size", "16",
                       "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--folder-images 8" in err[0]


def test_ln_penalty_is_ln_over_bn_in_the_same_setup():
    rows = [{"norm": "bn", "weight_std": False, "setup": "ours", "ms_per_step": 10.0},
            {"norm": "ln", "weight_std": False, "setup": "ours", "ms_per_step": 13.0},
            {"norm": "ln", "weight_std": True, "setup": "ours", "ms_per_step": 14.0},
            {"norm": "bn", "weight_std": False, "setup": "original", "ms_per_step": 40.0},
            {"norm": "ln", "weight_std": False, "setup": "original", "ms_per_step": 80.0}]
    p = bench.ln_penalty({"rows": rows})
    assert p["ours"]["ln_over_bn"] == pytest.approx(1.3) and p["ours"]["ln_ws_over_bn"] == pytest.approx(1.4)
    assert p["original"]["ln_over_bn"] == pytest.approx(2.0) and "ln_ws_ms" not in p["original"]


def test_unknown_section_is_one_error_line(capsys, tmp_path):
    assert bench.main(["--sections", "aug,warp", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "warp" in err[0]
    assert not list(tmp_path.glob("bench-*.json"))
