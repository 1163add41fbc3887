"""`make gpu-check`: every GPU question in one command, in at most 8 minutes on one H100/H200.

It runs, each item in its own process, timed, with its peak memory:
1. every task, smoke-sized, on CUDA with the CUDA defaults (bf16 autocast, channels_last), and its eval.py;
2. task_resnet_ln again with --compile (inductor);
3. task_resnet_ln at width 64 on the full Fashion-MNIST, as many of its 40 epochs as fit in --fashion-seconds:
   seconds per epoch, images per second, test accuracy, and the projected time of `make cifar-ln EPOCHS=40`
   (Fashion-MNIST padded to 32 px is CIFAR-10's shape with 60k images against 50k: x 50/60);
4. `bench/bench.py --device cuda --compile`, shortened, with its "limit" row (ours / limit; the goal is >= 0.95).
After every item it writes <out>/gpu-check.json (what finished so far) and <out>/GPU-CHECK.md. It stops cleanly at
--budget seconds; a failed item (a CUDA error, any error) is printed with its output and the exit code is 1.

It runs on the GPU machine's own python3 (torch >= 2.11, torchvision >= 0.26), no network and no venv: what that
machine lacks is carried in (`make gpu-carry` on a machine with network fills .carry/: wheels unpacked into
.carry/site, Fashion-MNIST, the commit), and `make gpu-check CARRY=.carry` puts .carry/site on PYTHONPATH.

    make gpu-check                      # on the GPU machine: docs/gpu-check.json, docs/GPU-CHECK.md
    make gpu-check DEVICE=cpu           # the same script end to end, tiny, on the CPU (a dry run: --dry-run)
    python3 bench/gpu_check.py --dry-run --out /tmp/gpu-dry
"""
from __future__ import annotations

import argparse
import datetime as dt
import importlib
import importlib.util
import json
import os
import platform
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # `python3 bench/gpu_check.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.cli import HelpFormatter  # torch-free: this runs before the carried modules are checked
from task_resnet_ln.results import ORIGINAL  # torch-free too

REPO_ROOT = Path(__file__).resolve().parents[1]
ORIGINAL_EPOCH_S = ORIGINAL["epoch_s"]  # the original report's seconds per CIFAR-10 epoch
CIFAR_OVER_FASHION = 50 / 60  # images per epoch of CIFAR-10 (train + val) over Fashion-MNIST's
FASHION_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                 "t10k-labels-idx1-ubyte.gz")
# What the GPU machine must import: the CUDA machine has torch and torchvision; `make gpu-carry` brings the rest.
REQUIRED = ("numpy", "PIL", "tqdm", "matplotlib", "torchsummary")
CARRIED = ("torchsummary==1.5.1", "tqdm==4.70.1", "matplotlib==3.11.2", "optuna==5.0.0")
MIN_VERSIONS = {"torch": (2, 11), "torchvision": (0, 26)}


# ----------------------------------------------------------------------------- the items
@dataclass
class Item:
    """One measured step: commands run one after the other in fresh processes (each `python3 <argv>`); `seconds`:
    its own time limit, within the budget; `stop_at`: seconds after which its training is stopped with SIGINT
    (a clean stop that keeps its checkpoints), for a run that is measured for a fixed time."""
    name: str
    what: str
    commands: list[list[str]]
    run_dir: Path | None = None
    seconds: float = 240.0
    stop_at: float | None = None
    env: dict = field(default_factory=dict)


def items(args: argparse.Namespace, runs: Path) -> list[Item]:
    """What runs, in order: the tasks first (a CUDA error shows early), then the timed questions."""
    tiny = args.dry_run
    dev = ["--device", "cpu" if tiny else "cuda"]
    size = ["--subset", "200", "--width", "4"] if tiny else ["--subset", "1500", "--width", "8"]
    epochs = ["--epochs", "1" if tiny else "2"]
    own_weights = {"TORCHVISION_WEIGHTS_DIR": str(runs / "weights")}
    aot_eager = {"GPU_CHECK_COMPILE_BACKEND": "aot_eager"} if tiny else {}
    ln, tr, cd, inat, compiled, fashion, bench = (runs / name for name in (
        "task_resnet_ln", "task_cifar_transfer", "task_catsdogs", "task_inaturalist", "task_resnet_ln_compile",
        "fashion_width64", "bench"))
    ln_train = ["task_resnet_ln/train.py", "--dataset", "synthetic", *size, *epochs, "--batch-size", "32", *dev]
    transfer = ["task_cifar_transfer/train.py", "--dataset", "synthetic", *size, *epochs, "--batch-size", "32",
                "--warmup-epochs", "0.5", "--configs", "1", "3", "--tiny-train", "60" if tiny else "300",
                "--tiny-test", "30" if tiny else "100",
                *(["--augmentations", "none", "cutout", "--dropouts", "0.5"] if tiny else []), *dev, "--out", str(tr)]
    twins = ["task_catsdogs/train.py", "--dataset", "folder", "--data-dir", str(runs / "catsdogs_folder"),
             "--image-size", "32", *(["--train-size", "4", "--val-size", "2", "--test-size", "4", "--batch-size", "4"]
                                     if tiny else ["--train-size", "16", "--val-size", "4", "--test-size", "8",
                                                   "--batch-size", "8"]),
             *epochs, "--seeds", *(["0"] if tiny else ["0", "1"]), "--no-checkpoints", *dev, "--out", str(cd)]
    inat_train = ["task_inaturalist/train.py", "--dataset", "folder", "--data-dir", str(runs / "inaturalist_folder"),
                  "--image-size", "32", *epochs, "--strategies", "head", "--ft-epochs", "1", "--ft-batch-size", "16",
                  "--eval-batch-size", "64", *dev, "--out", str(inat)]
    fashion_data = (["--dataset", "fashion-mnist", "--data-dir", args.data_dir] if args.data_dir else
                    ["--dataset", "synthetic"])
    fashion_size = ["--subset", "600", "--width", "8"] if tiny else []  # 40 epochs, stopped at --fashion-seconds
    return [
        Item("task_resnet_ln", "ResNet-18 (ln), synthetic, then eval.py", [
            [*ln_train, "--out", str(ln)],
            ["task_resnet_ln/eval.py", "--checkpoint", str(ln / "checkpoint.pt"), *dev]], ln),
        Item("task_cifar_transfer", "parts a, b (configs 1 and 3, stand-in weights), c, d; eval.py --activations", [
            stand_in("resnet18", runs / "weights"), transfer,
            ["task_cifar_transfer/eval.py", "--checkpoint", str(tr / "b" / "config3-32px" / "checkpoint.pt"),
             "--activations", *dev]], tr, env=own_weights),
        Item("task_catsdogs", f"twin ResNet-50s, {1 if tiny else 2} seed(s), a generated folder of photos", [
            ["-m", "common.export_folder", "synthetic", "--per-class", "8" if tiny else "16", "--odd-files",
             "--out", str(runs / "catsdogs_folder")], twins], cd),
        Item("task_inaturalist", "part A (the original's best configuration), part B (head only, stand-in "
             "weights), eval.py", [
                 stand_in("resnet50", runs / "weights"),
                 ["-m", "common.export_folder", "synthetic", "--classes", "10", "--per-class", "6" if tiny else "8",
                  "--test-per-class", "2" if tiny else "3", "--out", str(runs / "inaturalist_folder")],
                 inat_train, ["task_inaturalist/eval.py", "--checkpoint", str(inat / "a" / "checkpoint.pt"), *dev]],
             inat, env=own_weights),
        Item("resnet_ln_compile", "task_resnet_ln with --compile" +
             (" (dry run: dynamo + AOTAutograd, no inductor)" if tiny else " (inductor)"),
             [[*ln_train, "--compile", "--out", str(compiled)]], compiled, env=aot_eager),
        Item("fashion_width64", f"task_resnet_ln at its defaults (width {8 if tiny else 64}) on "
             f"{'Fashion-MNIST' if args.data_dir else 'synthetic data (no --data-dir)'}, for "
             f"{args.fashion_seconds:.0f} s at most", [
                 ["task_resnet_ln/train.py", *fashion_data, *fashion_size, *dev, "--out", str(fashion)]],
             fashion, seconds=args.fashion_seconds + 120, stop_at=args.fashion_seconds),
        Item("bench", "make bench DEVICE=cuda ARGS=--compile, shortened",
             [["bench/bench.py", *dev, *(BENCH_TINY if tiny else BENCH_SHORT), "--out", str(bench)]],
             bench, seconds=300, env=aot_eager),
    ]


def stand_in(model: str, folder: Path) -> list[str]:
    """A random torchvision model saved under the file name of the ImageNet weights its task loads (NOT ImageNet:
    no download here), for TORCHVISION_WEIGHTS_DIR, as `make smoke` does."""
    from common.weights import weights_file
    from task_cifar_transfer.transfer import WEIGHTS as RESNET18
    from task_inaturalist.finetune import WEIGHTS as RESNET50

    name = weights_file({"resnet18": RESNET18, "resnet50": RESNET50}[model]).name
    return ["-c", f"import pathlib, torch, torchvision; p = pathlib.Path({str(folder)!r}); "
                  f"p.mkdir(parents=True, exist_ok=True); torch.manual_seed(0); "
                  f"torch.save(torchvision.models.{model}().state_dict(), p / {name!r})"]


BENCH_SHORT = ["--sections", "train,norm_layer", "--images", "10000", "--steps", "30", "--warmup", "10",
               "--repeats", "2", "--compile"]
BENCH_TINY = ["--sections", "aug,train,norm_layer", "--images", "256", "--batch-size", "16", "--workers", "0",
              "--width", "4", "--steps", "1", "--warmup", "0", "--repeats", "2", "--compile"]


# ----------------------------------------------------------------------------- running one item
def child(argv: list[str]) -> int:
    """`gpu_check.py --child RESULT ARGV...`: run ARGV (a script, `-m module` or `-c code`) in this process and
    write its peak memory to RESULT: the device's own counter on CUDA, the peak resident set on the CPU."""
    import resource
    import runpy

    import torch

    result, argv = Path(argv[0]), argv[1:]
    backend = os.environ.get("GPU_CHECK_COMPILE_BACKEND")
    if backend:  # the dry run: torch.compile through dynamo and AOTAutograd, without inductor's C++ build
        real = torch.compile
        torch.compile = lambda model, **kw: real(model, backend=backend, **kw)
    cuda = os.environ.get("GPU_CHECK_DEVICE", "cuda") == "cuda"
    code = 0
    sys.argv = argv if argv[0] not in ("-m", "-c") else argv[1:]
    try:
        if argv[0] == "-c":
            exec(compile(argv[1], "<gpu-check>", "exec"), {"__name__": "__main__"})
        elif argv[0] == "-m":
            runpy.run_module(argv[1], run_name="__main__")
        else:
            runpy.run_path(argv[0], run_name="__main__")
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    peak = (torch.cuda.max_memory_allocated() if cuda and torch.cuda.is_initialized() else
            0 if cuda else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    result.write_text(json.dumps({"peak_mib": round(peak / 2**20, 1), "rc": code}))
    return code


def run_item(item: Item, deadline: float, python: str, base_env: dict) -> dict:
    """Run an item's commands in order until one fails; its record (seconds, peak memory, output on failure)."""
    record = {"name": item.name, "what": item.what, "commands": [], "status": "ok", "seconds": 0.0, "peak_mib": None}
    t0 = time.perf_counter()
    for argv in item.commands:
        left = deadline - time.perf_counter()
        if left < 5:
            record["status"] = "stopped at the budget"
            break
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
            result = Path(f.name)
        cmd = [python, str(Path(__file__).resolve()), "--child", str(result), *argv]
        record["commands"].append(shlex.join(["python3", *argv]))
        env = {**base_env, **item.env}
        stop_at = item.stop_at if item.stop_at is not None and "train.py" in argv[0] else None
        rc, output, stopped = run_process(cmd, env, min(item.seconds, left), stop_at)
        peak = json.loads(result.read_text()).get("peak_mib") if result.stat().st_size else None
        result.unlink()
        if peak is not None:
            record["peak_mib"] = max(record["peak_mib"] or 0, peak)
        if stopped == "planned" and rc == 128 + signal.SIGINT:
            record["stopped_after_s"] = stop_at
            continue  # the fixed-time run stopped as planned, at an epoch's end: its checkpoints are whole
        if rc != 0:
            record["status"] = "stopped at the budget" if stopped == "budget" else f"FAILED (exit code {rc})"
            record["output_tail"] = output[-4000:]
            break
    record["seconds"] = round(time.perf_counter() - t0, 1)
    return record


def run_process(cmd: list[str], env: dict, limit: float, stop_at: float | None) -> tuple[int, str, str | None]:
    """Run cmd, echoing its output; SIGINT at stop_at ("planned") or at limit ("budget"), SIGKILL 30 s later.
    (exit code, output, why it was stopped or None)."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            errors="replace", bufsize=1)
    output: list[str] = []

    def reader() -> None:
        for line in proc.stdout:
            sys.stdout.write(line)
            output.append(line)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    planned = stop_at is not None and stop_at < limit
    stop, stopped = (stop_at if planned else limit), None
    while proc.poll() is None:
        elapsed = time.perf_counter() - started
        if stopped is None and elapsed >= stop:
            proc.send_signal(signal.SIGINT)  # our scripts stop cleanly at the next step
            stopped = "planned" if planned else "budget"
        elif stopped is not None and elapsed >= stop + 30:
            proc.kill()
        time.sleep(0.1)
    thread.join(timeout=5)
    return proc.returncode, "".join(output), stopped


# ----------------------------------------------------------------------------- figures from the run folders
def json_or_none(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def test_accuracies(run_dir: Path) -> dict[str, float]:
    """test_acc of every metrics.json (and eval.json) under a run folder, by its sub-folder ("run": the folder)."""
    found = {}
    for name in ("metrics.json", "eval.json"):
        for path in sorted(run_dir.rglob(name)) if run_dir.is_dir() else []:
            data = json_or_none(path)
            if isinstance(data, dict) and isinstance(data.get("test_acc"), (int, float)):
                where = path.parent.relative_to(run_dir).as_posix()
                found[f"{'run' if where == '.' else where} ({name})"] = data["test_acc"]
    return found


def fashion_figures(run_dir: Path, python: str, deadline: float, base_env: dict) -> dict:
    """Seconds per epoch (the first apart: it pays cuDNN's autotuning), images per second, the test accuracy (of
    the finished run, or else of its best checkpoint so far) and the projected `make cifar-ln EPOCHS=40`."""
    import csv

    try:
        with (run_dir / "history.csv").open() as f:
            rows = list(csv.DictReader(f))
        config = json.loads((run_dir / "config.json").read_text())
    except (OSError, ValueError):
        return {}
    if not rows:
        return {}
    seconds = [float(r["seconds"]) for r in rows]
    train_seconds = [float(r["train_seconds"]) for r in rows]
    steady = seconds[1:] or seconds
    per_epoch = sum(steady) / len(steady)
    train_images = config["split_sizes"]["train"] if "split_sizes" in config else None
    out = {"epochs_done": len(rows), "epochs_planned": config.get("epochs"), "width": config.get("width"),
           "first_epoch_s": seconds[0], "seconds_per_epoch": round(per_epoch, 2),
           "images_per_s": round(train_images / (sum(train_seconds[1:] or train_seconds) / len(steady)))
           if train_images else None,
           "best_val_acc": max(float(r["val_acc"]) for r in rows),
           "projected_cifar_ln_40_epochs_s": round(40 * per_epoch * CIFAR_OVER_FASHION, 1),
           "projected_cifar_ln_epoch_s": round(per_epoch * CIFAR_OVER_FASHION, 2),
           "original_epoch_s": ORIGINAL_EPOCH_S}
    metrics = json_or_none(run_dir / "metrics.json")
    if metrics and "test_acc" in metrics:
        out["test_acc"], out["test_acc_of"] = metrics["test_acc"], "the finished run"
    elif (run_dir / "checkpoint.pt").is_file() and deadline - time.perf_counter() > 20:
        evaluated = run_dir.parent / "fashion_eval"
        cmd = [python, str(Path(__file__).resolve()), "--child", os.devnull, "task_resnet_ln/eval.py",
               "--checkpoint", str(run_dir / "checkpoint.pt"), "--device", base_env["GPU_CHECK_DEVICE"],
               "--out", str(evaluated)]
        run_process(cmd, base_env, deadline - time.perf_counter(), None)
        result = json_or_none(evaluated / "eval.json")
        if result and "test_acc" in result:
            out["test_acc"] = result["test_acc"]
            out["test_acc_of"] = f"its best checkpoint after {len(rows)} of {config.get('epochs')} epochs"
    return out


def bench_figures(run_dir: Path) -> dict:
    """ours / original and ours / limit per model, from the shortened bench's JSON."""
    from bench.bench import train_ratios

    for path in sorted(run_dir.glob("bench-*.json")):
        data = json_or_none(path) or {}
        if "train" in data:
            return {norm: {"ours_over_original": round(r, 2), "ours_over_limit": None if lim is None else round(lim, 3)}
                    for norm, (r, lim) in train_ratios(data["train"]).items()}
    return {}


# ----------------------------------------------------------------------------- environment and outputs
def environment(args: argparse.Namespace, argv: list[str]) -> dict:
    import torch
    import torchvision

    cuda = not args.dry_run
    return {"device": torch.cuda.get_device_name(0) if cuda else f"CPU: {cpu_model()} (dry run)",
            "driver": nvidia_driver() if cuda else None,
            "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version() if cuda else None,
            "torch": torch.__version__, "torchvision": torchvision.__version__, "python": platform.python_version(),
            "cpu": cpu_model(), "commit": commit(args.carry), "date": dt.datetime.now(dt.timezone.utc).isoformat(
                timespec="seconds"), "command": shlex.join(["python3", "bench/gpu_check.py", *argv]),
            "budget_s": args.budget}


def cpu_model() -> str:
    import torch

    from common.runtime import device_name
    return device_name(torch.device("cpu"))


def nvidia_driver() -> str | None:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None
    except (OSError, subprocess.SubprocessError):
        return None


def commit(carry: str | None) -> str | None:
    """The git commit, or the one `make gpu-carry` wrote into the carried folder (the GPU machine gets a copy of
    the working tree, maybe without .git)."""
    from common.run import git_commit

    found = git_commit()
    if not found and carry and (Path(carry) / "COMMIT").is_file():
        found = (Path(carry) / "COMMIT").read_text().strip() or None
    return found


def write_outputs(out: Path, report: dict) -> None:
    from common.files import atomic_write_text, write_json

    write_json(out / "gpu-check.json", report)
    atomic_write_text(out / "GPU-CHECK.md", render(report))


def _pct(v) -> str:
    return "–" if v is None else f"{100 * v:.2f}%"


def render(report: dict) -> str:
    env = report["environment"]
    lines = ["# GPU check" + (" (dry run on the CPU: tiny sizes, figures mean nothing)" if report["dry_run"] else ""),
             "", "Written by `make gpu-check` (`bench/gpu_check.py`) into `gpu-check.json` beside this file.",
             "", f"- device: {env['device']}; driver {env['driver'] or 'unknown'}; CUDA {env['cuda']}, "
             f"cuDNN {env['cudnn'] or '–'}", f"- torch {env['torch']}, torchvision {env['torchvision']}, "
             f"Python {env['python']}, CPU {env['cpu']}",
             f"- commit `{(env['commit'] or 'unknown')[:12]}`, {env['date']}, budget {env['budget_s']:.0f} s",
             f"- command: `{env['command']}`", "",
             f"**{report['state']}** after {report['seconds']:.0f} s.", "",
             "| item | status | seconds | peak memory (MiB) | test accuracy |", "|---|---|---:|---:|---|"]
    for r in report["items"]:
        accs = ", ".join(f"{k}: {_pct(v)}" for k, v in r.get("test_acc", {}).items())
        peak = "–" if r["peak_mib"] is None else f"{r['peak_mib']:,.0f}"
        lines.append(f"| {r['name']}: {r['what']} | {r['status']} | {r['seconds']:.1f} | {peak} | {accs or '–'} |")
    fashion = next((r.get("figures") for r in report["items"] if r["name"] == "fashion_width64"), None)
    if fashion:
        lines += ["", "## task_resnet_ln at full width on Fashion-MNIST", "",
                  f"{fashion['epochs_done']} of {fashion['epochs_planned']} epochs at width {fashion['width']}: "
                  f"{fashion['seconds_per_epoch']:.2f} s per epoch with validation (the first: "
                  f"{fashion['first_epoch_s']:.2f} s), {fashion['images_per_s'] or 0:,} training images/s; "
                  f"best validation {_pct(fashion['best_val_acc'])}; test accuracy {_pct(fashion.get('test_acc'))}"
                  f" ({fashion.get('test_acc_of', 'not measured')}).", "",
                  f"Projected `make cifar-ln EPOCHS=40`: {fashion['projected_cifar_ln_epoch_s']:.2f} s per epoch, "
                  f"{fashion['projected_cifar_ln_40_epochs_s'] / 60:.1f} min in all (x 50/60 of Fashion-MNIST's), "
                  f"against the original report's {ORIGINAL_EPOCH_S} s per epoch."]
    bench = next((r.get("figures") for r in report["items"] if r["name"] == "bench"), None)
    if bench:
        lines += ["", "## The bench's limit row (shortened)", "",
                  "| model | ours / original | ours / limit (goal >= 0.95) |", "|---|---:|---:|"]
        lines += [f"| {norm} | {v['ours_over_original']:.2f}× | {v['ours_over_limit']} |" for norm, v in bench.items()]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- preflight and carry
def missing_modules() -> list[str]:
    """The modules of REQUIRED that do not import here (missing, or built for another Python)."""
    missing = []
    for name in REQUIRED:
        try:
            importlib.import_module(name)
        except ImportError as e:
            missing.append(name if importlib.util.find_spec(name) is None else f"{name} ({e})")
    return missing


def too_old() -> list[str]:
    import torch
    import torchvision

    old = []
    for module in (torch, torchvision):
        need = MIN_VERSIONS[module.__name__]
        if tuple(int(p) for p in module.__version__.split("+")[0].split(".")[:2]) < need:
            old.append(f"{module.__name__} {module.__version__} (needs >= {need[0]}.{need[1]})")
    return old


def carry_hint() -> str:
    return ("on a machine with network, run `make gpu-carry CARRY_PY=<this machine's Python, e.g. 3.12>` (pip "
            f"download of {', '.join(CARRIED)} into .carry/wheels, and Fashion-MNIST into .carry/fashion-mnist), "
            "carry .carry/ along, then `make gpu-check` here (it unpacks the wheels into .carry/site and puts that "
            "on PYTHONPATH)")


FASHION_HINT = "apt-get install -y dataset-fashion-mnist puts its files in /usr/share/datasets/fashion-mnist"


def make_carry(folder: Path, python_version: str, data_dir: str | None) -> int:
    """`make gpu-carry`: the wheels the GPU machine lacks, for its Python (pip download --python-version), less
    numpy and Pillow (torchvision's own dependencies, so already there); Fashion-MNIST's four files; the commit.
    `make gpu-check` unpacks the wheels into <folder>/site and puts it on PYTHONPATH. Fails over 64 MiB."""
    import shutil

    wheels = folder / "wheels"
    shutil.rmtree(wheels, ignore_errors=True)
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--dest", str(wheels),
           "--only-binary=:all:", "--python-version", python_version, "--platform", "manylinux2014_x86_64",
           "--platform", "manylinux_2_28_x86_64", *CARRIED]
    print("$ " + shlex.join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    for wheel in [*wheels.glob("numpy-*.whl"), *wheels.glob("pillow-*.whl")]:
        wheel.unlink()
    if data_dir:
        (folder / "fashion-mnist").mkdir(parents=True, exist_ok=True)
        for name in FASHION_FILES:
            shutil.copy2(Path(data_dir) / name, folder / "fashion-mnist" / name)
    else:
        print(f"no Fashion-MNIST in --data-dir: the width-64 run will use synthetic data ({FASHION_HINT})", flush=True)
    from common.run import git_commit

    (folder / "COMMIT").write_text((git_commit() or "unknown") + "\n")
    total = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and "site" not in p.relative_to(
        folder).parts)
    print(f"{folder}: {total / 2**20:.1f} MiB to carry (the limit is 64 MiB): {len(list(wheels.glob('*.whl')))} "
          f"wheels for Python {python_version}, Fashion-MNIST, COMMIT", flush=True)
    return 0 if total <= 64 * 2**20 else 1


# ----------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench/gpu_check.py", description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter)
    p.add_argument("--dry-run", action="store_true",
                   help="the same items on the CPU, tiny, with the CUDA recipe rehearsed (CUDA_REHEARSAL=1)")
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda", help="cpu means --dry-run")
    p.add_argument("--budget", type=float, default=480.0, help="seconds for everything; what finished is kept")
    p.add_argument("--fashion-seconds", type=float, default=None,
                   help="seconds of the full-width Fashion-MNIST run, then stopped cleanly and tested (default: 180; "
                   "a dry run: 10)")
    p.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist",
                   help="Fashion-MNIST's four .gz files (none there: that run uses synthetic data)")
    p.add_argument("--out", default=None, help="gpu-check.json and GPU-CHECK.md (default: docs/; a dry run: "
                   "runs/gpu-check-dry/)")
    p.add_argument("--runs", default=None, help="the items' run folders (default: runs/gpu-check/<date-time>; a "
                   "dry run: runs/gpu-check-dry/<date-time>)")
    p.add_argument("--only", nargs="+", default=None, help="these items only, by name (default: every item)")
    p.add_argument("--carry", default=None, help="the carried folder (its COMMIT names the commit without git) "
                   "(default: none, the commit from git alone)")
    p.add_argument("--make-carry", metavar="FOLDER", default=None,
                   help="fill FOLDER with what the GPU machine lacks (run here, with network), then stop "
                   "(default: none, run the check)")
    p.add_argument("--carry-python", default="3.12", help="the GPU machine's Python version, for --make-carry")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        return child(argv[1:])
    args = build_parser().parse_args(argv)
    data_ok = all((Path(args.data_dir) / f).is_file() for f in FASHION_FILES)
    if args.make_carry:
        return make_carry(Path(args.make_carry), args.carry_python, args.data_dir if data_ok else None)
    args.dry_run = args.dry_run or args.device == "cpu"
    args.fashion_seconds = args.fashion_seconds or (10.0 if args.dry_run else 180.0)
    args.data_dir = args.data_dir if data_ok else None
    missing, old = missing_modules(), too_old()
    if missing or old:
        print(f"error: {', '.join(missing + old)} {'is' if len(missing + old) == 1 else 'are'} missing or too old "
              f"here: {carry_hint()}", file=sys.stderr)
        return 2
    import torch

    if not args.dry_run and not torch.cuda.is_available():
        print("error: torch sees no CUDA device here: run `make gpu-check DEVICE=cpu` for the dry run",
              file=sys.stderr)
        return 2
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(args.out or (REPO_ROOT / ("runs/gpu-check-dry" if args.dry_run else "docs")))
    runs = Path(args.runs or (REPO_ROOT / "runs" / ("gpu-check-dry" if args.dry_run else "gpu-check") / stamp))
    if runs.exists() and any(runs.iterdir()):
        print(f"error: --runs {runs} is not empty: give a new folder", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    runs.mkdir(parents=True, exist_ok=True)
    base_env = {**os.environ, "PYTHONUNBUFFERED": "1", "GPU_CHECK_DEVICE": "cpu" if args.dry_run else "cuda",
                **({"CUDA_REHEARSAL": "1"} if args.dry_run else {})}  # a dry run: the CUDA recipe on the CPU
    start = time.perf_counter()
    deadline = start + args.budget
    report = {"dry_run": args.dry_run, "environment": environment(args, argv), "runs": str(runs), "items": [],
              "state": "running", "seconds": 0.0}
    todo = [i for i in items(args, runs) if args.only is None or i.name in args.only]
    for item in todo:
        print(f"\n=== gpu-check: {item.name}: {item.what} ({deadline - time.perf_counter():.0f} s of the budget left)",
              flush=True)
        if deadline - time.perf_counter() < 10:
            record = {"name": item.name, "what": item.what, "status": "not run: the budget was spent", "seconds": 0.0,
                      "peak_mib": None, "commands": []}
        else:
            record = run_item(item, deadline, sys.executable, base_env)
            record["test_acc"] = test_accuracies(item.run_dir) if item.run_dir else {}
            if item.name == "fashion_width64":
                record["figures"] = fashion_figures(item.run_dir, sys.executable, deadline, base_env)
                if "test_acc" in record["figures"] and not record["test_acc"]:
                    record["test_acc"] = {"best checkpoint (eval.json)": record["figures"]["test_acc"]}
            elif item.name == "bench":
                record["figures"] = bench_figures(item.run_dir)
        report["items"].append(record)
        report["seconds"] = round(time.perf_counter() - start, 1)
        write_outputs(out, report)
        if record["status"].startswith("FAILED"):
            print(f"gpu-check: {item.name} FAILED; its output is above and in {out / 'gpu-check.json'}",
                  file=sys.stderr, flush=True)
    failed = [r["name"] for r in report["items"] if r["status"].startswith("FAILED")]
    cut = [r["name"] for r in report["items"] if r["status"] != "ok" and r["name"] not in failed]
    report["state"] = (f"FAILED: {', '.join(failed)}" if failed else
                       f"stopped at the budget: {', '.join(cut)} not finished" if cut else "all items finished")
    report["seconds"] = round(time.perf_counter() - start, 1)
    write_outputs(out, report)
    print(f"\ngpu-check: {report['state']} in {report['seconds']:.0f} s -> {out / 'gpu-check.json'}, "
          f"{out / 'GPU-CHECK.md'}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
