"""bench/bench.py runs at tiny sizes and writes its JSON and Markdown (a benchmark, not a timed test:
nothing here asserts a speed)."""
import json

import pytest

from bench import bench

TINY = ["--device", "cpu", "--images", "256", "--batch-size", "16", "--workers", "0", "--width", "4",
        "--steps", "1", "--warmup", "0", "--repeats", "2", "--epoch-fraction", "0.002", "--epoch-epochs", "2",
        "--epoch-flags", "--width 4 --batch-size 16"]


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench")
    assert bench.main([*TINY, "--out", str(folder)]) == 0
    return folder


def test_writes_json_with_every_section(out):
    res = json.loads((out / "bench-cpu.json").read_text())
    assert {"environment", "settings", "aug", "train", "norm_layer", "epoch"} <= res.keys()
    assert res["environment"]["command"].startswith("python bench/bench.py --device cpu")
    aug = res["aug"]
    for side in ("original", "ours"):
        assert aug[side]["images_per_s"] > 0 and len(aug[side]["repeats"]) == 2 and aug[side]["peak_mib"] > 0
    assert aug["ratio"] == pytest.approx(aug["ours"]["images_per_s"] / aug["original"]["images_per_s"], rel=0.01)
    setups = {(r["norm"], r["weight_std"], r["setup"]) for r in res["train"]["rows"]}
    assert setups == {("bn", False, "original"), ("bn", False, "ours"), ("ln", False, "original"),
                      ("ln", False, "ours"), ("ln", True, "ours")}
    assert len(res["norm_layer"]["rows"]) == 4


def test_epoch_section_runs_the_cifar_ln_recipe_and_scales_to_cifar_sizes(out):
    e = json.loads((out / "bench-cpu.json").read_text())["epoch"]
    assert len(e["epochs"]) == 2 and e["projected"]
    assert all(n % 16 == 0 for n in e["sizes"].values())  # whole batches only
    expected = e["train_s"] * 45_000 / e["sizes"]["train"] + e["val_s"] * 5_000 / e["sizes"]["val"]
    assert e["cifar10_epoch_s"] == pytest.approx(expected, rel=0.01)
    assert e["model"] == "ResNet-18, ln + WS, width 4"


def test_markdown_has_the_tables_and_says_the_gpu_is_still_to_be_measured(out):
    md = (out / "BENCHMARKS.md").read_text()
    for heading in ("### Augmentation throughput", "### Training throughput", "### LayerNorm penalty",
                    "### Epoch of `make cifar-ln`", "## GPU: still to be measured"):
        assert heading in md
    assert "python bench/bench.py --device cpu" in md  # every figure comes with its command


def test_markdown_includes_every_device_json(out):
    cpu = json.loads((out / "bench-cpu.json").read_text())
    cuda = {**cpu, "environment": {**cpu["environment"], "device": "cuda", "device_name": "Fake GPU"}}
    md = bench.render_markdown([cpu, cuda])
    assert "## CUDA: Fake GPU" in md and "## CPU:" in md and "still to be measured" not in md


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
