"""Which run folders the report reads, which task each belongs to, and where each figure came from.

A run folder is a folder with a config.json; it is complete once its metrics.json exists (written last).
Discovery looks only at experiment roots: it does not descend into a folder that has a config.json, so the
sub-runs of a task (a/, b/config1-32px/, seed0/plain/) are read through their root, never on their own.

Run folders are data the report did not necessarily write (an older version's, a copy, a hand-edited one):
a config.json or metrics.json that cannot be read as a JSON object is a `skipped <folder>: <why>` line, and
every file a section reads or copies is reached through `Run.file`, which only returns a regular file inside
the run folder (no symlink out of it, no `..` in a seed or a strategy name from metrics.json).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from common.errors import UserError
from common.files import read_json
from common.markdown import Markdown, code, escape
from common.text import printable
from report.tasks import TASKS, results


@dataclass
class Run:
    """One complete experiment root: its task, its config.json and metrics.json."""
    folder: Path
    task: str
    config: dict
    metrics: dict
    finished: float = field(default=0.0)  # metrics.json's mtime: "latest" means latest finished

    def path(self, *parts: str) -> Path:
        """run.folder/parts, as it is: for names only. What is read or copied goes through file()/dir()."""
        return self.folder.joinpath(*parts)

    def file(self, *parts: str) -> Path | None:
        """The regular file at run.folder/parts, resolved, if it lies inside the run folder; else None.

        The parts can come from the data (a seed, a strategy name in metrics.json): "0/../../..", an absolute
        path or a symlink to a file outside are never read, nor copied onto the page."""
        path = self._inside(parts)
        return path if path is not None and path.is_file() else None

    def dir(self, *parts: str) -> Path | None:
        """The folder at run.folder/parts, resolved, if it lies inside the run folder; else None."""
        path = self._inside(parts)
        return path if path is not None and path.is_dir() else None

    def _inside(self, parts: tuple[str, ...]) -> Path | None:
        try:
            root = self.folder.resolve()
            path = root.joinpath(*(str(p) for p in parts)).resolve()
        except (OSError, ValueError, RuntimeError):  # a NUL byte, a symlink loop, a name too long
            return None
        return path if path.is_relative_to(root) else None

    def json_or_none(self, *parts: str) -> dict | None:
        """A JSON object inside the run (file()), or None if it is missing, damaged or not an object (unlike
        common.files.read_json, which says what is wrong in one error line)."""
        path = self.file(*parts)
        try:
            return read_json(path) if path is not None else None
        except UserError:
            return None

    def read_text(self, *parts: str, limit: int = 1 << 20) -> str:
        """A text file inside the run (file()), at most `limit` bytes of it, or "" if it is missing."""
        path = self.file(*parts)
        if path is None:
            return ""
        try:
            with path.open("rb") as f:
                return f.read(limit).decode("utf-8", "replace")
        except OSError:
            return ""


def task_of(folder: Path, config: dict) -> str | None:
    """config.json's "task" key if it has one; else the flag only that task's train.py has (each task's results
    FLAG: every argument is saved, and paths are no guide, --out can be anything); else a folder named after a
    task on the path (runs/<task>/<stamp>); else None."""
    if config.get("task") in TASKS:
        return config["task"]
    for task in TASKS:
        if results(task).FLAG in config:
            return task
    return next((part for part in reversed(folder.parts) if part in TASKS), None)


def experiment_root(folder: Path) -> Path:
    """A sub-run named on its own (runs/x/a, runs/x/seed0/plain) stands for the experiment it belongs to."""
    root = folder
    while (root.parent / "config.json").exists() and root.parent != root:
        root = root.parent
    return root


def run_folders(paths: list[Path], skip: tuple[str, ...] = ("smoke",)) -> list[Path]:
    """The experiment roots: each path that is a run folder itself (named on the command line), or every
    run folder found under a path that is not one. Folders named in `skip` (the smoke runs) and hidden
    folders are not searched, unless a path names them itself.

    This is the one place that decides which folders exist; it can be swapped for common.run's."""
    found: list[Path] = []
    for path in paths:
        if (path / "config.json").exists():
            found.append(experiment_root(path))
            continue
        for here, dirs, files in os.walk(path):
            if "config.json" in files:
                found.append(Path(here))
                dirs.clear()  # its sub-runs belong to it
            else:
                dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in skip)
    return list(dict.fromkeys(found))


def load_runs(paths: list[Path]) -> tuple[list[Run], dict[str, list[Path]], list[str]]:
    """(complete runs of the four tasks, task -> incomplete run folders: a config.json, no metrics.json yet,
    `skipped <folder>: <why>` lines for run folders whose config.json or metrics.json is not a JSON object)."""
    complete: list[Run] = []
    incomplete: dict[str, list[Path]] = {task: [] for task in TASKS}
    skipped: list[str] = []
    for folder in run_folders(paths):
        try:
            config = read_json(folder / "config.json", "config.json")
            task = task_of(folder, config)
            if task is None:  # another project's config.json: not ours to read
                continue
            if not (folder / "metrics.json").exists():
                incomplete[task].append(folder)
                continue
            metrics = read_json(folder / "metrics.json", "metrics.json")
            finished = (folder / "metrics.json").stat().st_mtime
        except (UserError, OSError) as e:
            skipped.append(skipped_line(folder, str(e)))
            continue
        complete.append(Run(folder, task, config, metrics, finished))
    return complete, incomplete, skipped


def missing(metrics: object, path: str) -> str | None:
    """The first part of `path` ("a.test_acc", "b.results.*.config": "*" is every element of a list) that
    `metrics` lacks, as far as it got ("a.test_acc"), or None when every element has it."""
    node: list = [metrics]
    done: list[str] = []
    for key in path.split("."):
        done.append(key)
        if key == "*":
            if not all(isinstance(n, list) for n in node):
                return ".".join(done[:-1]) + " (not a list)"
            node = [item for n in node for item in n]
        elif all(isinstance(n, dict) and key in n for n in node):
            node = [n[key] for n in node]
        else:
            return ".".join(done)
    return None


def skipped_line(folder: Path, why: str) -> str:
    """The one line a run folder the report cannot show gets on stderr: the folder and why, as printable text."""
    return f"skipped {printable(str(folder))}: {printable(why)}"


# ----------------------------------------------------------------------------- where a figure came from
DATASETS = {"cifar10": "CIFAR-10", "fashion-mnist": "Fashion-MNIST", "synthetic": "synthetic stripes",
            "pets": "Oxford-IIIT Pet", "inaturalist": "iNaturalist-12K"}


class ShapeError(ValueError):
    """A run folder holds something other than what this report reads (a string where a number belongs)."""


def number(x: object) -> int | float:
    """`x` if it is a number (not a bool), else ShapeError: "0.5" in metrics.json is not shown as a figure."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        shown = repr(x)
        raise ShapeError(f"it holds {shown[:40] + '...' if len(shown) > 40 else shown} where a number belongs")
    return x


def dataset_name(config: dict) -> Markdown:
    """The data, named plainly: CIFAR-10, Fashion-MNIST, synthetic stripes, or the folder's name and classes."""
    name = config.get("dataset", "?")
    if name != "folder":
        text = escape(DATASETS.get(name, name))
    else:
        classes = config.get("classes") or []
        shown = ", ".join(map(str, classes)) if len(classes) <= 3 else f"{len(classes)} classes"
        folder = code(Path(str(config.get("data_dir") or "?")).name)
        text = f"folder {folder}" + (f" ({escape(shown)})" if classes else "")
    return Markdown(text + (f", subset {number(config['subset']):,}" if config.get("subset") else ""))


def device_label(config: dict) -> Markdown:
    """The device a run's figures were measured on, as the page names it: the GPU's name (x the processes), or
    "CPU: <model>". From config.json's device_name (common.runtime.device_name wrote it: the GPU's name or the
    CPU's model; resolved_device says which); older runs wrote "cpu" there, or the model under cpu_model."""
    name = config.get("device_name")
    processes = number(config.get("world_size") or 1)
    if str(config.get("resolved_device", "")).startswith("cuda") or (name and name != "cpu" and
                                                                     "resolved_device" not in config):
        return Markdown(escape(name) + (f" × {processes}" if processes > 1 else ""))
    model = name if name and name != "cpu" else config.get("cpu_model")
    return Markdown(f"CPU: {escape(model)}" if model else "CPU (model not recorded)")


def finished_at(config: dict, when: float) -> Markdown:
    """config.json's "date" if it records one, else when metrics.json was written (UTC)."""
    if config.get("date"):
        return escape(config["date"])
    return Markdown(datetime.fromtimestamp(when, timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))


def command(task: str, config: dict) -> str:
    """The command as config.json records it (text, not Markdown); "train.py ..." is run from the repository
    root as python <task>/train.py ..."""
    cmd = str(config.get("command") or "(not recorded)")
    return f"python {task}/{cmd}" if cmd.split(" ", 1)[0] in ("train.py", "eval.py") else cmd
