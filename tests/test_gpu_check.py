"""`make gpu-check` on the CPU: the dry run end to end (tiny, the CUDA recipe rehearsed), its JSON and Markdown,
the clean stop at its budget, a failed item, the missing-module line, and the version floor. Every item runs
once in .ci/run (`make gpu-check DEVICE=cpu`); here a subset that takes every path: a task with its eval.py,
the timed Fashion-MNIST run stopped at its time and tested from its best checkpoint, and the shortened bench."""
import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import write_idx

from bench import gpu_check

SUBSET = ["task_resnet_ln", "fashion_width64", "bench"]


@pytest.fixture(scope="module")
def fashion(tmp_path_factory):
    """Fashion-MNIST's four files, small: 700 train and 200 test images of 10 classes."""
    folder = tmp_path_factory.mktemp("fashion")
    rng = np.random.default_rng(0)
    for split, n in (("train", 700), ("t10k", 200)):
        labels = np.arange(n, dtype=np.uint8) % 10
        images = (rng.integers(0, 60, (n, 28, 28)) + labels[:, None, None] * 19).astype(np.uint8)
        write_idx(folder / f"{split}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{split}-labels-idx1-ubyte.gz", labels)
    return folder


@pytest.fixture(scope="module")
def dry_run(fashion, tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu-check")
    code = gpu_check.main(["--dry-run", "--data-dir", str(fashion), "--out", str(out), "--runs", str(out / "runs"),
                           "--fashion-seconds", "12", "--only", *SUBSET])
    return code, out, json.loads((out / "gpu-check.json").read_text())


def test_the_dry_run_finishes_every_item_and_records_its_figures(dry_run):
    code, out, report = dry_run
    assert code == 0 and report["dry_run"] and report["state"] == "all items finished"
    env = report["environment"]
    assert {"device", "driver", "cuda", "torch", "torchvision", "python", "cpu", "commit", "date",
            "command"} <= env.keys()
    assert env["device"].startswith("CPU") and env["command"].startswith("python3 bench/gpu_check.py --dry-run")
    assert [r["name"] for r in report["items"]] == SUBSET
    for r in report["items"]:
        assert r["status"] == "ok" and r["seconds"] > 0 and r["peak_mib"] > 0, r
    ln = report["items"][0]
    assert ln["test_acc"]["run (metrics.json)"] == ln["test_acc"]["run (eval.json)"]  # eval.py reproduced it
    assert "--device cpu" in ln["commands"][0]


def test_the_timed_run_is_stopped_cleanly_and_tested_from_its_best_checkpoint(dry_run):
    _, out, report = dry_run
    f = report["items"][1]["figures"]
    assert 1 <= f["epochs_done"] <= f["epochs_planned"] == 40
    assert f["seconds_per_epoch"] > 0 and f["images_per_s"] > 0 and 0 <= f["test_acc"] <= 1
    assert f["projected_cifar_ln_40_epochs_s"] == pytest.approx(40 * f["seconds_per_epoch"] * 50 / 60, rel=0.01)
    assert f["original_epoch_s"] == 149
    if f["epochs_done"] < 40:  # stopped at --fashion-seconds (SIGINT): no metrics.json, its checkpoint tested
        assert not (out / "runs" / "fashion_width64" / "metrics.json").exists()
        assert "best checkpoint after" in f["test_acc_of"] and report["items"][1]["stopped_after_s"] == 12


def test_the_bench_gives_the_limit_row_and_the_markdown_says_it_all(dry_run):
    _, out, report = dry_run
    bench = report["items"][2]["figures"]
    assert set(bench) == {"bn", "ln"} and all(v["ours_over_limit"] > 0 for v in bench.values())
    md = (out / "GPU-CHECK.md").read_text()
    assert md.startswith("# GPU check (dry run") and "Projected `make cifar-ln EPOCHS=40`" in md
    assert "limit row" in md and all(name in md for name in SUBSET)
    assert report["environment"]["torch"] in md


def test_the_budget_stops_it_cleanly_leaving_the_json(fashion, tmp_path):
    code = gpu_check.main(["--dry-run", "--budget", "1", "--data-dir", str(fashion), "--out", str(tmp_path),
                           "--runs", str(tmp_path / "runs")])
    report = json.loads((tmp_path / "gpu-check.json").read_text())
    assert code == 0 and report["state"].startswith("stopped at the budget")
    assert {r["status"] for r in report["items"]} == {"not run: the budget was spent"}
    assert len(report["items"]) == 7


def test_a_stop_at_the_budget_interrupts_a_running_process():
    rc, output, stopped = gpu_check.run_process(
        [sys.executable, "-c", "import time; print('started', flush=True); time.sleep(60)"], {}, 2, None)
    assert stopped == "budget" and rc != 0 and "started" in output


def test_a_failed_item_is_loud_and_fails_the_command(tmp_path, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in gpu_check.FASHION_FILES:
        (bad / name).write_bytes(b"not gzip")
    code = gpu_check.main(["--dry-run", "--data-dir", str(bad), "--out", str(tmp_path), "--runs",
                           str(tmp_path / "runs"), "--only", "fashion_width64"])
    report = json.loads((tmp_path / "gpu-check.json").read_text())
    assert code == 1 and report["state"] == "FAILED: fashion_width64"
    item = report["items"][0]
    assert item["status"] == "FAILED (exit code 2)" and "truncated or corrupt" in item["output_tail"]
    assert "fashion_width64 FAILED" in capsys.readouterr().err


def test_a_missing_module_is_one_line_saying_how_to_carry_it(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(gpu_check, "REQUIRED", (*gpu_check.REQUIRED, "no_such_module_here"))
    assert gpu_check.main(["--dry-run", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no_such_module_here" in err[0] and "make gpu-carry" in err[0]
    assert not (tmp_path / "gpu-check.json").exists()


def test_torch_below_2_11_is_named(monkeypatch):
    import torch

    monkeypatch.setattr(torch, "__version__", "2.10.1+cu128")
    assert gpu_check.too_old() == ["torch 2.10.1+cu128 (needs >= 2.11)"]


def test_parts_a_and_b_import_without_optuna_and_the_sweep_says_what_is_missing(tmp_path):
    code = ("import sys; sys.modules['optuna'] = None; sys.modules['sqlalchemy'] = None\n"
            "from task_inaturalist import train\n"
            "sys.exit(train.main(['--sweep', '--dataset', 'folder', '--data-dir', 'x', '--out', sys.argv[1]]))")
    run = subprocess.run([sys.executable, "-c", code, str(tmp_path / "sweep")], capture_output=True, text=True,
                         cwd=gpu_check.REPO_ROOT)
    assert run.returncode == 2 and run.stderr.strip().splitlines() == [
        "error: --sweep needs optuna, which is not installed here: pip install optuna==5.0.0 (make setup installs "
        "it; parts A and B run without it)"]
    assert not (tmp_path / "sweep").exists()
