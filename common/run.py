"""The run folder: where a run's files go, when it counts as complete, and how it is continued.

- `RunFolder.check(args, task)` looks at `--out` before anything is loaded and writes nothing: only a run
  folder of this task may be continued (`--resume`) or replaced (`--overwrite`, which deletes only the files
  runs write); any other folder that holds something, and /, $HOME, the working directory and the repository,
  are refused in one line.
- The steps of a run (RunFolder's docstring): once -> create -> train -> load_best -> (test report) -> finish.
  Complete = `metrics.json` exists; `finish(metrics)` writes it, last.
- Sub-runs (`b/config3-32px`, `seed2/aug`, `b/head`, ...): `folder.sub(name, **changed_args)` is a RunFolder
  of its own. While resuming, a complete sub-run is kept (`once`), an interrupted one continues from its last.pt
  (`resume_checkpoint`, read when it trains), and the rest run.
- `--resume` itself: `resumed_args` reads the flags a run was started with from its config.json.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import datetime as dt
import fnmatch
import functools
import io
import os
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import torch
import torch.nn as nn

from common import distributed
from common.augment import Augment
from common.checkpoint import load_checkpoint
from common.data import ImageData
from common.errors import Interrupted, TrainingDiverged, UserError
from common.files import atomic_write_text, read_json, write_json
from common.models import count_parameters
from common.runtime import device_name, place, seed_everything
from common.secrets import redact  # noqa: F401  (re-exported: tests and tasks import it from here)
from common.tables import read_csv
from common.text import printable

if TYPE_CHECKING:
    from common.training import TrainConfig  # for the annotation only

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG, METRICS, LAST = "config.json", "metrics.json", "last.pt"
INHERITED = ("pretrained_weights",)  # config.json keys a sub-run repeats from its experiment's: what the report shows


@functools.cache  # the checkout does not change while a run goes: once per process, not once per sub-run
def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


# ----------------------------------------------------------------------------- what --out may be
# The names runs write into a run folder and its sub-folders: only these are deleted when --overwrite replaces
# a run, and anything else there is somebody's own file (the run is then refused, naming it). A test runs
# every task and checks that each file it writes matches one of these.
RUN_FILES = (
    "config.json", "metrics.json", "eval.json", "summary.txt", "history.csv", "steps.csv", "skipped_files.txt",
    "checkpoint.pt", "last.pt", "*.png",  # plots (curves, grids, Grad-CAM, activations, the sweep's, ...)
    "results.csv", "results.md", "comparison.md", "summary.csv", "summary.md", "seeds.csv", "augmentations.csv",
    "image_stats.csv", "image_stats.md", "layers.txt", "layers.csv", "strategies.csv", "strategies.md",
    "best_config.json", "trials.csv", "params.json", "study.db", "study.db-journal",
    ".*.tmp",  # an atomic write's temporary file, left by a kill
)


SKIPPED = "skipped_files.txt"


def write_skipped(run_dir: str | os.PathLike, lines: Sequence[str]) -> None:
    """`run_dir`/skipped_files.txt: every input file the run left out and why, one "path: reason" a line (names
    through printable: one line each, whatever a name holds), written atomically; by the main process only.
    The terminal shows the first few (common.folders.SHOWN_SKIPPED); this keeps them all. Nothing is written
    when nothing was skipped."""
    if lines and distributed.is_main():
        atomic_write_text(Path(run_dir) / SKIPPED, "".join(f"{printable(line)}\n" for line in lines))


def is_run_file(name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in RUN_FILES)


def foreign_files(folder: Path) -> list[Path]:
    """What in `folder` (recursively) no run writes: files of other names, links, special files. Sorted."""
    found = []
    for here, dirs, files in os.walk(folder):  # never follows a link to a folder
        for name in sorted(files + [d for d in dirs if os.path.islink(os.path.join(here, d))]):
            path = Path(here, name)
            if path.is_symlink() or not path.is_file() or not is_run_file(name):
                found.append(path)
        dirs[:] = sorted(d for d in dirs if not os.path.islink(os.path.join(here, d)))
    return found


def protected_folder(path: Path) -> str | None:
    """What `path` is if a run must never take it as its folder, whatever it holds: /, $HOME, the working
    directory, the repository, or a folder that contains the repository."""
    where = path.resolve()
    named = {Path.cwd().resolve(): "the working directory"}
    with contextlib.suppress(RuntimeError):  # no home folder known
        named[Path.home().resolve()] = "$HOME"
    named |= {REPO_ROOT.resolve(): "the repository", Path("/"): "/"}  # the most telling name wins
    if where in named:
        return named[where]
    if where in REPO_ROOT.parents:
        return "a folder that contains the repository"
    return None


def run_config(path: Path) -> dict | None:
    """The config.json of the run folder `path` (a dict), or None if there is none to read."""
    try:
        return read_json(path / CONFIG)
    except UserError:
        return None


def check_out_folder(path: Path, task: str, flag: str = "--out") -> str:
    """What `path` holds, checked before a run writes there: "new" (absent or empty), or "run" (a run folder
    of `task`: a config.json that names it). Anything else is one error line, and nothing is changed."""
    what = protected_folder(path)
    if what is not None:
        raise UserError(f"{flag} {path} is {what}: a run never writes there (nothing was changed); give a folder "
                        f"of its own, e.g. runs/{task}/<name>")
    if not path.exists():
        return "new"
    if not path.is_dir():
        raise UserError(f"{flag} {path} is a file, not a folder: nothing was changed")
    if not any(path.iterdir()):
        return "new"
    owner = (run_config(path) or {}).get("task")
    if owner == task:
        return "run"
    if isinstance(owner, str) and owner:
        raise UserError(f"{flag} {path} is a run folder of {owner}, not of {task}: nothing was changed")
    raise UserError(f"{flag} {path} is not a run folder of {task} (it holds other files): nothing was changed")


def refuse_foreign_files(path: Path) -> None:
    """One error line naming the first file in the run folder `path` that no run writes, if there is one."""
    foreign = foreign_files(path)
    if foreign:
        more = f" (and {len(foreign) - 1} more)" if len(foreign) > 1 else ""
        raise UserError(f"--overwrite: {printable(path)} holds {printable(foreign[0])}{more}, which no run writes: "
                        f"nothing was changed (move it away, or give another --out)")


def remove_run(path: Path) -> None:
    """Delete what runs wrote in `path`, and nothing else: first refuse, naming it, if anything else is there."""
    refuse_foreign_files(path)
    for here, dirs, files in os.walk(path, topdown=False):
        for name in files:
            if is_run_file(name):
                Path(here, name).unlink(missing_ok=True)
        for name in dirs:
            with contextlib.suppress(OSError):  # not empty: something appeared meanwhile, and stays
                Path(here, name).rmdir()


class RunFolder:
    """One run folder (or a sub-run's): its path, the args it runs with, and the steps every run takes:

        run = folder.sub("a", part="a")          # a sub-run (folder.sub) or the top folder (RunFolder.check)
        run.once(body)                           # kept if a resumed experiment finished it already, else:
        run.create(device, data)                 #   the folder, config.json (once), the seeds
        history = run.train(model, data, cfg)    #   summary.txt, fit, curves.png, steps.png
        best = run.load_best(model)              #   checkpoint.pt's weights (best validation epoch)
        report = test_report(model, data, ...)   #   (common.evaluation) test accuracy, the two grids
        run.finish(metrics)                      #   metrics.json, last: the folder is complete
    """

    def __init__(self, path: Path | None, task: str, args: argparse.Namespace, *, resuming: bool = False,
                 name: str = "", root: "RunFolder | None" = None) -> None:
        self.path, self.task, self.args, self.resuming, self.name = path, task, args, resuming, name
        self.root = root or self
        self.inherited: dict = {}  # what the config.json of every sub-run repeats from this one's (INHERITED)
        self.title = ""  # what the run's lines call it (train() sets it)

    # ------------------------------------------------------------------ the top folder
    @classmethod
    def check(cls, args: argparse.Namespace, task: str, *, continued: str = "") -> "RunFolder":
        """The run folder of `args` (--out, --overwrite, --resume), checked before anything loads; nothing is
        read or written. Only a run folder of this task (a config.json that names it) may be continued or
        replaced; one that holds a run is refused unless --overwrite or --resume says what to do with it.
        `continued`: the kind of folder that the same command continues (a sweep's), whose config.json says so."""
        resuming = bool(getattr(args, "resume", None))
        path = Path(args.out) if args.out else None
        folder = cls(path, task, args, resuming=resuming)
        if path is None or resuming or check_out_folder(path, task) == "new":
            return folder
        if getattr(args, "overwrite", False):
            refuse_foreign_files(path)
            return folder
        if continued and (run_config(path) or {}).get("continues") == continued:
            return folder
        if (path / METRICS).is_file():
            raise UserError(f"--out {path} holds a complete run: nothing was changed. Re-evaluate it with "
                            f"{task}/eval.py --checkpoint {path}/..., or give another --out (or --overwrite to "
                            f"replace it)")
        raise UserError(f"--out {path} holds an unfinished run: nothing was changed. Continue it with "
                        f"{task}/train.py --resume {path}, or give another --out (or --overwrite to replace it)")

    def make_folder(self) -> "RunFolder":
        """The folder alone (rank 0 makes it, every rank gets the path): --overwrite replaces an old run; the
        default runs/<task>/<time> gets a -2, -3, ... suffix rather than share a folder with another run. Only a
        sweep calls this itself (its study must accept the settings before config.json is written); every other
        run calls create()."""
        path = None
        if distributed.is_main():
            try:
                path = self._make_main()
            except OSError as e:
                raise UserError(f"cannot write to run folder {self.path or REPO_ROOT / 'runs' / self.task}: "
                                f"{e.strerror}") from None
        self.path = Path(distributed.broadcast_object(str(path)))
        return self

    def _make_main(self) -> Path:
        if self.path is None:  # the default name: a new folder, never an existing one
            stamp = REPO_ROOT / "runs" / self.task / dt.datetime.now().strftime("%Y%m%d-%H%M%S")
            stamp.parent.mkdir(parents=True, exist_ok=True)
            for n in range(1, 1000):
                candidate = stamp if n == 1 else stamp.with_name(f"{stamp.name}-{n}")
                try:
                    candidate.mkdir()
                    return candidate
                except FileExistsError:
                    continue
            raise UserError(f"no free run folder name under {stamp.parent}")
        if self is self.root and getattr(self.args, "overwrite", False) and not self.resuming \
                and check_out_folder(self.path, self.task) == "run":
            remove_run(self.path)
            print(f"--overwrite: replaced the run in {self.path}", flush=True)
        self.path.mkdir(parents=True, exist_ok=True)
        probe = self.path / ".write-test.tmp"
        probe.write_bytes(b"")
        probe.unlink()
        return self.path

    def write_config(self, device: torch.device, data: ImageData | None = None, **extra: Any) -> dict:
        """config.json: every argument, the versions, device, commit and command (secrets redacted), and the
        data's split sizes and normalisation. A resumed run keeps the config.json it was started with."""
        import torchvision

        self.inherited = {**self.inherited, **{k: v for k, v in extra.items() if k in INHERITED}}
        if data is not None:
            extra = {"mean": data.mean, "std": data.std, "split_sizes": {"train": len(data.train),
                     "val": len(data.val), "test": len(data.test)}, **extra}
        config = {**vars(self.args), "task": self.task, **self.inherited,
                  "torch": torch.__version__, "torchvision": torchvision.__version__,
                  "device_name": device_name(device), "resolved_device": str(device),
                  "world_size": distributed.world_size(),
                  "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"), "git_commit": git_commit(),
                  "command": getattr(self.args, "command", None), **extra}  # (set by common.cli.run_main)
        if distributed.is_main() and not (self.resuming and (self.path / CONFIG).exists()):
            write_json(self.path / CONFIG, config)
        return config

    # ------------------------------------------------------------------ the steps of a run
    def once(self, body: Callable[["RunFolder"], dict]) -> dict:
        """A (sub-)run that a resumed experiment finished already is kept: its metrics.json; else body(self)."""
        return self.metrics() if self.complete else body(self)

    def create(self, device: torch.device, data: ImageData | None = None, **extra: Any) -> "RunFolder":
        """The folder, its config.json (written once) and the seeds: what every run and sub-run does first,
        before its model is built, so that the initial weights depend on the seed alone."""
        self.make_folder()
        self.write_config(device, data, **extra)
        seed_everything(self.args.seed)
        return self

    def train(self, model: nn.Module, data: ImageData, cfg: TrainConfig, *, title: str,
              augment: Augment | None = None, epoch_end: Callable[[nn.Module, int], dict] | None = None,
              after_epoch: Callable[[dict], None] | None = None) -> list[dict]:
        """A model's training as the user sees it: the torchsummary table (summary.txt), one line on what
        trains on what, then `fit`, then curves.png and steps.png. Returns the history."""
        from common.plots import step_losses, training_curves

        device, main = data.train.labels.device, distributed.is_main()
        self.title = title
        place(model, device, self.args.channels_last)
        self.summary(model, data.train.images.shape[1:], device)
        if main:
            trainable, params = count_parameters(model, trainable_only=True), count_parameters(model)
            processes = f" x {distributed.world_size()} processes" if distributed.active() else ""
            print(f"{printable(title)}: {trainable:,} of {params:,} parameters trainable; train {len(data.train)}, "
                  f"val {len(data.val)}, test {len(data.test)} images on {device}{processes}; run folder "
                  f"{self.path}", flush=True)
        history = self.fit(model, data, cfg, augment=augment, epoch_end=epoch_end, after_epoch=after_epoch)
        if main:
            training_curves(history, self.path / "curves.png", title)
            step_losses(read_csv(self.path / "steps.csv"), self.path / "steps.png", f"{title}: training loss per step")
        return history

    def fit(self, model: nn.Module, data: ImageData, cfg: TrainConfig, *, augment: Augment | None = None,
            epoch_end: Callable[[nn.Module, int], dict] | None = None,
            after_epoch: Callable[[dict], None] | None = None) -> list[dict]:
        """common.training.fit in this folder, with what every run needs and only this place does: the model
        moved to the data's device in the run's memory format (and compiled if asked), the checkpoints
        (continued from this folder's last.pt when resuming), the run's shuffling generator, each rank's shard
        of train and validation under torchrun, and the experiment's folder on a stop (what --resume continues)."""
        from common.training import Checkpointer, fit

        args, device = self.args, data.train.labels.device
        place(model, device, args.channels_last)
        resume = self.resume_checkpoint()
        if resume is not None and distributed.is_main():
            print(f"resuming {self.path / LAST} after epoch {resume['epoch']} of {cfg.epochs}", flush=True)
        checkpoints = Checkpointer(self.path, cfg.save_checkpoints, resume, args=vars(args), task=self.task,
                                   mean=data.mean, std=data.std, classes=data.classes)
        shard = replace(data, train=distributed.shard(data.train), val=distributed.shard(data.val))
        generator = torch.Generator(device).manual_seed(args.seed + distributed.rank())
        try:
            return fit(torch.compile(model) if args.compile else model, shard,
                       replace(cfg, channels_last=args.channels_last), checkpoints, augment=augment,
                       generator=generator, epoch_end=epoch_end, after_epoch=after_epoch)
        except (Interrupted, TrainingDiverged) as e:
            e.resume_from = self.root.path  # what --resume continues when this run keeps no last.pt
            raise

    def load_best(self, model: nn.Module) -> dict:
        """checkpoint.pt's weights (the best validation epoch) into `model`: {"best_val_acc", "best_epoch"}."""
        best = load_checkpoint(self.path / "checkpoint.pt", self.task)
        model.load_state_dict(best["model"])
        return {"best_val_acc": best["val_acc"], "best_epoch": best["epoch"]}

    def finish(self, metrics: dict) -> dict:
        """metrics.json, written last: it marks the folder complete. A trained run says its test accuracy; the
        top folder says where its results are."""
        if distributed.is_main():
            write_json(self.path / METRICS, metrics)
            if self.title and "test_acc" in metrics:
                best = (f"best_val_acc={100 * metrics['best_val_acc']:.2f}% (epoch {metrics['best_epoch']})"
                        if "reported_weights" not in metrics else metrics["reported_weights"])
                print(f"{printable(self.title)}: test_acc={100 * metrics['test_acc']:.2f}%  {best}  "
                      f"{metrics.get('seconds_per_epoch', 0):.1f} s/epoch  -> {self.path}", flush=True)
            if self is self.root:
                print(f"results: {self.path} (make report puts them on one page with the other tasks)", flush=True)
        return metrics

    # ------------------------------------------------------------------ sub-runs and resume
    def sub(self, name: str, **changed_args: Any) -> "RunFolder":
        """The sub-run `name` (a relative path) with these args changed; see .complete and .once."""
        full = f"{self.name}/{name}" if self.name else name
        args = argparse.Namespace(**{**vars(self.args), **changed_args, "sub_run": full})
        sub = RunFolder(self.path / name, self.task, args, resuming=self.resuming, name=full, root=self.root)
        sub.inherited = dict(self.inherited)
        return sub

    def resume_checkpoint(self) -> dict | None:
        """While resuming an unfinished (sub-)run that has a last.pt: that checkpoint (training continues from
        it); else None."""
        if self.resuming and not self.complete and (self.path / LAST).is_file():
            return load_checkpoint(self.path / LAST, self.task)
        return None

    @property
    def complete(self) -> bool:
        return self.path is not None and (self.path / METRICS).is_file()

    def metrics(self) -> dict:
        return read_json(self.path / METRICS)

    def summary(self, model: nn.Module, input_size: Sequence[int], device: torch.device) -> str:
        """Print the torchsummary table and save it to summary.txt (on a copy: no side effects on BN stats)."""
        from torchsummary import summary

        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            summary(copy.deepcopy(model).eval(), tuple(input_size), device=device.type)
        text = buf.getvalue()
        if distributed.is_main():
            print(text, end="")
            atomic_write_text(self.path / "summary.txt", text)
        return text


# ----------------------------------------------------------------------------- --resume
# Flags that may differ from the saved ones when resuming: they change where or how fast, not what.
RESUME_MAY_CHANGE = ("data_dir", "compile", "device")


def resume_root(path: str | Path, task: str) -> tuple[Path, dict]:
    """The top run folder that `--resume PATH` continues (PATH: it, a sub-run folder, or a last.pt in either)
    and its config.json; one error line when PATH is none of these, or its config.json is damaged."""
    path = Path(path)
    folder = path.parent if path.is_file() else path
    if not (folder / CONFIG).is_file():
        if path.is_file():
            load_checkpoint(path, task)  # the checkpoint's own error if it is not one of ours
        raise UserError(f"--resume {path}: no run folder there (no {CONFIG}); give the folder of a run of "
                        f"{task}/train.py, or its last.pt")
    config = read_json(folder / CONFIG, f"--resume: {folder / CONFIG}")
    if config.get("task") != task:
        owner = config.get("task")
        owner = printable(owner) if isinstance(owner, str) and owner else "another program"
        raise UserError(f"--resume {path} was written by {owner}, not {task}/train.py")
    sub_run = config.get("sub_run") or ""
    if not sub_run:
        return folder, config
    parts = Path(sub_run).parts if isinstance(sub_run, str) else ()
    if not parts or Path(sub_run).is_absolute() or ".." in parts or len(parts) >= len(folder.resolve().parts) \
            or folder.resolve().parts[-len(parts):] != parts:
        raise UserError(f"--resume: {folder / CONFIG} names its place in the experiment as "
                        f"{printable(str(sub_run))!r}, which is not the path to this folder: damaged, not resumed")
    root = Path(os.path.normpath(os.path.join(folder, *[".."] * len(parts))))
    saved = read_json(root / CONFIG, f"--resume: {root / CONFIG}")
    if saved.get("task") != task or saved.get("sub_run"):
        raise UserError(f"--resume: {root / CONFIG} is not the top of a run of {task}/train.py: not resumed")
    return root, saved


def resumed_args(parser: argparse.ArgumentParser, task: str, explicit: dict) -> argparse.Namespace:
    """The args a run was started with, from its config.json, for --resume; a flag changed on the command
    line, a value no flag would take, or a run that is already complete, is one error."""
    from common.cli import checked_values

    root, saved = resume_root(explicit["resume"], task)
    if (root / METRICS).is_file():
        raise UserError(f"{root} is a finished run: nothing to resume ({task}/eval.py --checkpoint re-evaluates "
                        f"it)")
    dests = {a.dest for a in parser._actions}
    if any("***" in str(saved.get(k)) for k in dests):
        raise UserError("--resume: this run's config.json holds a redacted secret; start a new run instead")
    saved = {**saved, **checked_values(parser, {k: saved[k] for k in dests if k in saved},
                                       f"--resume: {root / CONFIG}")}
    for key, value in explicit.items():
        if key not in (*RESUME_MAY_CHANGE, "resume") and saved.get(key) != value:
            flag = "--" + key.replace("_", "-")
            raise UserError(f"--resume continues a run with the flags it was started with, but {flag} {value} "
                            f"differs from its {saved.get(key)} (start a new run to change it)")
    values = {k: saved[k] for k in dests if k in saved}
    values |= {k: explicit[k] for k in RESUME_MAY_CHANGE if k in explicit}
    defaults = {a.dest: a.default for a in parser._actions if a.dest != "help"}
    print(f"resuming the experiment in {root}: complete runs are kept, the interrupted one continues", flush=True)
    return argparse.Namespace(**{**defaults, **values, "resume": str(root), "out": str(root)})
