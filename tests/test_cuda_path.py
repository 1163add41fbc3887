"""The CUDA recipe, rehearsed on the CPU: what a GPU run does that the CPU defaults skip.

- every task end to end with bf16 autocast and LayerNorm2d's autograd Function (CUDA_REHEARSAL, as
  common.runtime.cuda_recipe reads it), checked from inside the model: the convolutions compute in bf16,
  the LayerNorms run through the Function, and eval.py reproduces the reported accuracy;
- channels_last end to end, where the CPU is safe (not on AVX2: torch 2.14.1's oneDNN backward);
- `--compile` on task_resnet_ln, through dynamo and AOTAutograd (`aot_eager`: inductor's C++ build alone
  takes a minute on 2 cores; `make gpu-check` runs inductor on the GPU);
- the NaN and signal flags read every 10 steps (check_every=10), as on CUDA;
- and each CUDA-only branch, a small function, called with a CUDA device value.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from common import augment, distributed, memory, runtime, training
from common.checkpoint import load_checkpoint, rng_state, set_rng_state
from common.data import load_data
from common.errors import Interrupted, TrainingDiverged
from common.export_folder import export_synthetic
from common.models import LayerNorm2d, resnet18
from common.training import Checkpointer, TrainConfig, check_interval, fit
from task_catsdogs import train as cd_train
from task_cifar_transfer import eval as tr_eval
from task_cifar_transfer import train as tr_train
from task_inaturalist import eval as inat_eval
from task_inaturalist import train as inat_train
from task_inaturalist.results import write_strategies
from task_resnet_ln import eval as ln_eval
from task_resnet_ln import train as ln_train

CPU = ["--device", "cpu"]
CUDA = torch.device("cuda", 0)  # a value only: nothing here needs a GPU


def cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    return set(next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), []))


AVX2_ONLY = "avx512f" not in cpu_flags()


class Seen:
    """What the model computed in training steps, read by a forward hook on every module: the dtype of each
    convolution's output, the backward node of each LayerNorm2d output, and the memory format of conv inputs."""

    def __init__(self) -> None:
        self.conv_dtypes: set[torch.dtype] = set()
        self.ln_backward: set[str] = set()
        self.conv_channels_last: set[bool] = set()

    def __call__(self, module: nn.Module, inputs, output) -> None:
        if not (module.training and torch.is_grad_enabled()):
            return
        if isinstance(module, nn.Conv2d) and inputs[0].dim() == 4:
            self.conv_dtypes.add(output.dtype)
            self.conv_channels_last.add(inputs[0].is_contiguous(memory_format=torch.channels_last)
                                        and not inputs[0].is_contiguous())
        elif isinstance(module, LayerNorm2d):
            self.ln_backward.add(type(output.grad_fn).__name__)


@pytest.fixture
def rehearsal(monkeypatch):
    """CUDA_REHEARSAL on, and a Seen recording every training step's forward pass."""
    monkeypatch.setattr(runtime, "CUDA_REHEARSAL", True)
    seen = Seen()
    handle = torch.nn.modules.module.register_module_forward_hook(seen)
    yield seen
    handle.remove()


def assert_cuda_recipe(seen: Seen, layernorm: bool = False) -> None:
    assert seen.conv_dtypes == {torch.bfloat16}, f"autocast was not on in training: {seen.conv_dtypes}"
    if layernorm:
        assert seen.ln_backward == {"_LayerNorm2dFnBackward"}, seen.ln_backward


def reproduced(eval_main, checkpoint: Path, out: Path, reported: float) -> None:
    assert eval_main(["--checkpoint", str(checkpoint), *CPU, "--out", str(out)]) == 0
    assert json.loads((out / "eval.json").read_text())["test_acc"] == pytest.approx(reported, abs=1e-9)


# ----------------------------------------------------------------------------- every task, bf16 + LN Function
def test_resnet_ln_runs_the_cuda_recipe(rehearsal, tmp_path):
    out = tmp_path / "ln"
    assert ln_train.main(["--dataset", "synthetic", "--subset", "200", "--width", "4", "--epochs", "1",
                          "--batch-size", "32", *CPU, "--out", str(out)]) == 0
    assert_cuda_recipe(rehearsal, layernorm=True)
    metrics = json.loads((out / "metrics.json").read_text())
    reproduced(ln_eval.main, out / "checkpoint.pt", tmp_path / "eval", metrics["test_acc"])


def test_cifar_transfer_runs_the_cuda_recipe(rehearsal, tmp_path):
    out = tmp_path / "transfer"
    assert tr_train.main(["--dataset", "synthetic", "--subset", "200", "--width", "4", "--epochs", "1",
                          "--warmup-epochs", "0", "--batch-size", "32", "--configs", "1", "--tiny-train", "60",
                          "--tiny-test", "30", "--augmentations", "cutout", "--dropouts", "0.5", *CPU,
                          "--out", str(out)]) == 0
    assert_cuda_recipe(rehearsal)
    metrics = json.loads((out / "a" / "metrics.json").read_text())
    reproduced(tr_eval.main, out / "a" / "checkpoint.pt", tmp_path / "eval", metrics["test_acc"])
    assert (out / "d" / "metrics.json").is_file() and (out / "metrics.json").is_file()


def test_catsdogs_runs_the_cuda_recipe(rehearsal, tmp_path):
    photos = tmp_path / "photos"
    export_synthetic(photos, 8, seed=0)
    out = tmp_path / "twins"
    assert cd_train.main(["--dataset", "folder", "--data-dir", str(photos), "--image-size", "32", "--train-size", "4",
                          "--val-size", "2", "--test-size", "4", "--epochs", "1", "--batch-size", "4", "--seeds", "0",
                          "--no-checkpoints", "--examples", "2", *CPU, "--out", str(out)]) == 0
    assert_cuda_recipe(rehearsal)
    assert json.loads((out / "metrics.json").read_text())["per_seed"]


def test_inaturalist_runs_the_cuda_recipe(rehearsal, tmp_path, stand_in_resnet50):
    layout = tmp_path / "inat"
    export_synthetic(layout / "train", 6, seed=0, num_classes=10)
    export_synthetic(layout / "val", 2, seed=1, num_classes=10)
    out = tmp_path / "run"
    assert inat_train.main(["--dataset", "folder", "--data-dir", str(layout), "--image-size", "32", "--epochs", "1",
                            "--eval-batch-size", "64", "--strategies", "head", "--ft-epochs", "1",
                            "--ft-batch-size", "16", *CPU, "--out", str(out)]) == 0
    assert_cuda_recipe(rehearsal)
    metrics = json.loads((out / "a" / "metrics.json").read_text())
    reproduced(inat_eval.main, out / "a" / "checkpoint.pt", tmp_path / "eval", metrics["test_acc"])
    assert (out / "b" / "head" / "metrics.json").is_file() and (out / "metrics.json").is_file()


# ----------------------------------------------------------------------------- channels_last, --compile
@pytest.mark.skipif(AVX2_ONLY, reason="this CPU has AVX2 but not AVX-512: torch 2.14.1's oneDNN backward of a "
                    "slim channels_last convolution crashes or hangs there (README, the memory format)")
def test_channels_last_end_to_end(rehearsal, tmp_path):
    out = tmp_path / "cl"
    assert ln_train.main(["--dataset", "synthetic", "--subset", "200", "--width", "4", "--epochs", "1",
                          "--batch-size", "32", "--channels-last", *CPU, "--out", str(out)]) == 0
    assert rehearsal.conv_channels_last == {True}, "a convolution saw an NCHW input"
    assert_cuda_recipe(rehearsal, layernorm=True)
    assert json.loads((out / "config.json").read_text())["channels_last"] is True


def test_compile_trains_without_graph_breaks_and_saves_plain_weights(tmp_path, monkeypatch):
    """No forward hook here: one would be traced into the graph."""
    import torch._dynamo

    monkeypatch.setattr(runtime, "CUDA_REHEARSAL", True)
    compiled = []
    real_compile = torch.compile

    def compile_aot_eager(model, **kwargs):
        compiled.append(type(model).__name__)
        return real_compile(model, backend="aot_eager", **kwargs)

    monkeypatch.setattr(torch, "compile", compile_aot_eager)
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    out = tmp_path / "compiled"
    assert ln_train.main(["--dataset", "synthetic", "--subset", "200", "--width", "4", "--epochs", "1",
                          "--batch-size", "32", "--compile", *CPU, "--out", str(out)]) == 0
    assert compiled == ["ResNet"]
    assert dict(torch._dynamo.utils.counters["graph_break"]) == {}
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1  # something was compiled
    weights = load_checkpoint(out / "checkpoint.pt", "task_resnet_ln")["model"]
    assert not [k for k in weights if k.startswith("_orig_mod.")]
    reproduced(ln_eval.main, out / "checkpoint.pt", tmp_path / "eval",
               json.loads((out / "metrics.json").read_text())["test_acc"])
    torch._dynamo.reset()


# ----------------------------------------------------------------------------- the flags every 10 steps
class Probe(nn.Module):
    """A linear model that counts its training forwards, and on a chosen one returns NaN or sends a signal."""

    def __init__(self, nan_at: int | None = None, signal_at: int | None = None) -> None:
        super().__init__()
        self.fc = nn.Linear(3 * 32 * 32, 10)
        self.calls, self.nan_at, self.signal_at = 0, nan_at, signal_at

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.fc(x.flatten(1))
        if self.training:
            if self.calls == self.nan_at:
                out = out * float("nan")
            if self.calls == self.signal_at:
                os.kill(os.getpid(), signal.SIGINT)
            self.calls += 1
        return out


@pytest.fixture(scope="module")
def stripes(tmp_path_factory):
    return load_data("synthetic", tmp_path_factory.mktemp("data"), val_size=50, subset=800, seed=0)


@pytest.mark.parametrize("check_every, steps_run", [(10, 10), (1, 4)])
def test_a_nan_is_found_at_its_batch_when_the_flag_is_read(stripes, tmp_path, check_every, steps_run):
    model = Probe(nan_at=3)
    cfg = TrainConfig(epochs=1, batch_size=32, lr=0.01, warmup_epochs=0, check_every=check_every)
    with pytest.raises(TrainingDiverged) as e:
        fit(model, stripes, cfg, Checkpointer(tmp_path))
    assert e.value.batch == 3 and e.value.epoch == 1  # the batch that went bad, not the one that read the flag
    assert model.calls == steps_run  # the flag is read after every `check_every` steps, not every step
    assert torch.load(tmp_path / "last.pt", weights_only=True)["epoch"] == 0  # no checkpoint after the bad step


@pytest.mark.parametrize("check_every, stopped_after", [(10, 9), (1, 2)])
def test_a_signal_stops_at_the_next_read_of_the_flag(stripes, tmp_path, check_every, stopped_after):
    model = Probe(signal_at=2)
    cfg = TrainConfig(epochs=1, batch_size=32, lr=0.01, warmup_epochs=0, check_every=check_every)
    with pytest.raises(Interrupted) as e:
        fit(model, stripes, cfg, Checkpointer(tmp_path))
    assert e.value.signum == signal.SIGINT and e.value.batch == stopped_after
    assert model.calls == stopped_after + 1


def test_the_cuda_recipe_reads_the_flags_every_10_steps(monkeypatch):
    assert check_interval(torch.device("cpu")) == 1 and check_interval(CUDA) == 10
    assert check_interval(CUDA, requested=3) == 3
    monkeypatch.setattr(runtime, "CUDA_REHEARSAL", True)
    assert check_interval(torch.device("cpu")) == 10


# ----------------------------------------------------------------------------- CUDA-only branches
def test_autocast_is_bf16_on_cuda_and_under_the_rehearsal(monkeypatch):
    made = []
    monkeypatch.setattr(torch, "autocast", lambda **kw: made.append(kw))
    training.autocast(CUDA)
    training.autocast(torch.device("cpu"))
    monkeypatch.setattr(runtime, "CUDA_REHEARSAL", True)
    training.autocast(torch.device("cpu"))
    assert made == [{"device_type": "cuda", "dtype": torch.bfloat16, "enabled": True},
                    {"device_type": "cpu", "dtype": torch.bfloat16, "enabled": False},
                    {"device_type": "cpu", "dtype": torch.bfloat16, "enabled": True}]


def test_layernorm2d_takes_the_function_only_in_the_cuda_recipe(monkeypatch):
    norm = LayerNorm2d(4)
    x = torch.randn(2, 4, 5, 5, requires_grad=True)
    assert type(norm(x).grad_fn).__name__ != "_LayerNorm2dFnBackward"
    monkeypatch.setattr(runtime, "CUDA_REHEARSAL", True)
    y = norm(x)
    assert type(y.grad_fn).__name__ == "_LayerNorm2dFnBackward"
    torch.testing.assert_close(y, nn.functional.group_norm(x, 1, norm.weight, norm.bias, norm.eps))


def test_the_device_is_cuda_when_torch_sees_one(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H200")
    assert runtime.resolve_device("auto") == torch.device("cuda")
    assert runtime.resolve_device("cuda") == torch.device("cuda")
    assert runtime.device_name(CUDA) == "NVIDIA H200"
    assert runtime.resolve_channels_last(None, CUDA) is True
    assert runtime.resolve_channels_last(None, torch.device("cpu")) is False


def test_cuda_runs_let_cudnn_autotune_unless_deterministic():
    before = torch.backends.cudnn.benchmark, torch.are_deterministic_algorithms_enabled()
    try:
        runtime.set_determinism(False, CUDA)
        assert torch.backends.cudnn.benchmark and not torch.are_deterministic_algorithms_enabled()
        runtime.set_determinism(True, CUDA)
        assert not torch.backends.cudnn.benchmark and torch.are_deterministic_algorithms_enabled()
        runtime.set_determinism(False, torch.device("cpu"))
        assert not torch.backends.cudnn.benchmark
    finally:
        torch.backends.cudnn.benchmark = before[0]
        torch.use_deterministic_algorithms(before[1])


def test_data_and_model_move_whole_to_another_device():
    """The one move of the data and the one move of the model, to the meta device: nothing stays behind on
    the CPU, the images stay uint8 and the model's 4-d weights become channels_last."""
    data = load_data("synthetic", "unused", val_size=20, subset=100, seed=0)
    moved = data.to("meta")
    for split in (moved.train, moved.val, moved.test):
        assert {t.device.type for t in (split.images, split.labels, split.index)} == {"meta"}
        assert split.images.dtype == torch.uint8 and len(split.images) == len(split.labels)
    model = runtime.place(resnet18(10, norm="ln", width=4), torch.device("meta"), channels_last=True)
    params = list(model.parameters())
    assert {p.device.type for p in params} == {"meta"}
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in params if p.dim() == 4)


def test_ddp_takes_this_ranks_gpu():
    assert distributed.device_ids(torch.device("cuda", 3)) == [3]
    assert distributed.device_ids(torch.device("cpu")) is None


def test_the_crop_resamples_the_whole_batch_at_once_on_cuda(monkeypatch):
    assert augment.resample_chunk(CUDA, 64) == 64 and augment.resample_chunk(torch.device("cpu"), 64) == 4
    x = torch.randint(0, 256, (9, 3, 20, 20), dtype=torch.uint8)

    def crop():  # an upscale: the chunked grid_sample path
        return augment.random_resized_crop(x, torch.Generator().manual_seed(0), 24, flip_p=0.5)

    in_chunks = crop()
    monkeypatch.setattr(augment, "resample_chunk", lambda device, n: n)
    torch.testing.assert_close(crop(), in_chunks, atol=0, rtol=0)


def test_peak_memory_on_cuda_is_torchs_own_counter(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda: calls.append("sync"))
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda: calls.append("reset"))
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda: 3 * 2**20)
    with memory.PeakMemory(CUDA) as peak:
        pass
    assert calls == ["sync", "reset", "sync"] and peak.mib == 3


def test_checkpoints_carry_and_restore_the_cuda_generators(monkeypatch):
    states = [torch.tensor([1, 2], dtype=torch.uint8)]
    restored = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: states)
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", lambda s: restored.append(s))
    generator = torch.Generator()
    saved = rng_state(generator)
    set_rng_state(saved, generator)
    assert len(restored) == 1 and torch.equal(restored[0][0], states[0])


def test_part_b_names_the_gpu_memory_counter(tmp_path):
    rows = [{"strategy": "head", "description": "head only (fc)", "trainable_params": 20490, "test_acc": 0.5,
             "best_val_acc": 0.5, "best_epoch": 1, "seconds_per_epoch": 1.0, "peak_memory_mib": 100.0}]
    assert "torch.cuda.max_memory_allocated" in write_strategies(rows, tmp_path, "head", on_cuda=True)
    assert "torch.cuda.max_memory_allocated" not in write_strategies(rows, tmp_path, "head", on_cuda=False)


def test_the_rehearsal_switch_comes_from_the_environment(tmp_path):
    import subprocess
    import sys
    code = "from common import runtime; print(runtime.CUDA_REHEARSAL)"
    env = {**os.environ, "CUDA_REHEARSAL": "1"}
    on = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
                        cwd=Path(__file__).resolve().parents[1])
    env.pop("CUDA_REHEARSAL")
    off = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert (on.stdout.strip(), off.stdout.strip()) == ("True", "False")


def test_start_on_cuda_keeps_the_cpu_allocator_alone_and_picks_channels_last(monkeypatch):
    calls = []
    monkeypatch.setattr(runtime, "resolve_device", lambda name: CUDA)
    monkeypatch.setattr(runtime, "keep_freed_memory", lambda: calls.append("keep"))
    monkeypatch.setattr(runtime, "set_determinism", lambda deterministic, device: calls.append(device.type))
    args = argparse.Namespace(device="cuda", channels_last=None, deterministic=False)
    assert runtime.start(args) == CUDA
    assert args.channels_last is True and calls == ["cuda"]
