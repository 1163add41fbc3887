"""Every script's --help as a user reads it: each optional argument shows its default exactly once, and true
(never "(default: None)"); a required one shows none. One formatter does it, common.cli.HelpFormatter."""
import argparse
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from common.cli import HelpFormatter

# Every script with a command line, by the module whose build_parser() makes its parser.
SCRIPTS = ["task_resnet_ln.train", "task_resnet_ln.eval", "task_cifar_transfer.train", "task_cifar_transfer.eval",
           "task_catsdogs.train", "task_catsdogs.eval", "task_inaturalist.train", "task_inaturalist.eval",
           "task_inaturalist.data", "report.__main__", "report.check_browser", "bench.bench", "bench.gpu_check",
           "common.export_folder"]
DEFAULT = re.compile(r"\bdefault\b", re.IGNORECASE)


def entries(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Each shown option's help entry in format_help(): the lines from its option strings to the next option,
    joined into one line; keyed by its first option string."""
    lines = parser.format_help().splitlines()
    found: dict[str, str] = {}
    for i, line in enumerate(lines):
        if line.startswith("  -") and not line.startswith("   "):
            entry = [line]
            for more in lines[i + 1:]:
                if not more.startswith("   "):  # a blank line, a group title, the next option
                    break
                entry.append(more)
            found[line.split()[0].rstrip(",")] = " ".join(" ".join(entry).split())
    return found


def shown_options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.option_strings and a.help != argparse.SUPPRESS
            and not isinstance(a, argparse._HelpAction)]


@pytest.fixture(autouse=True)
def columns(monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")  # argparse wraps at the terminal's width; the same one every time


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_optional_argument_shows_its_default_once_and_never_none(script):
    parser = importlib.import_module(script).build_parser()
    shown = entries(parser)
    problems = []
    for action in shown_options(parser):
        flag = action.option_strings[0]
        entry = shown.get(flag)
        if entry is None:
            problems.append(f"{flag}: not found in --help")
        elif action.required and DEFAULT.search(entry):
            problems.append(f"{flag} is required, yet its help shows a default: {entry}")
        elif not action.required and len(DEFAULT.findall(entry)) != 1:
            problems.append(f"{flag}: 'default' {len(DEFAULT.findall(entry))} times, not once: {entry}")
        if entry is not None and re.search(r"\(default: (None)?\)", entry):
            problems.append(f"{flag} shows an empty or None default: {entry}")
    assert not problems, f"{parser.prog} --help:\n" + "\n".join(problems)


def test_the_formatter_shows_each_kind_of_default_as_typed():
    p = argparse.ArgumentParser(prog="x", formatter_class=HelpFormatter)
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--lr", type=float, default=0.05, help="peak learning rate")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="one run each")
    p.add_argument("--compile", action="store_true", help="compile")
    p.add_argument("--flip", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--share", type=float, default=0.5, help="50%% of it")
    p.add_argument("--out", default=None, help="run folder (default: runs/<date-time>)")
    p.add_argument("--note", default=None, help="a line")
    p.add_argument("--checkpoint", required=True, help="a file")
    shown = entries(p)
    assert shown["--epochs"].endswith("--epochs EPOCHS (default: 40)")
    assert shown["--lr"].endswith("peak learning rate (default: 0.05)")
    assert shown["--seeds"].endswith("one run each (default: 0 1 2 3 4)")
    assert shown["--compile"].endswith("compile (default: off)")
    assert shown["--flip"].endswith("(default: on)")
    assert shown["--share"].endswith("50% of it (default: 0.5)")
    assert shown["--out"].endswith("run folder (default: runs/<date-time>)")  # its words, nothing added
    assert shown["--note"].endswith("a line")  # None: only the help can say what it means (the test above checks)
    assert shown["--checkpoint"].endswith("a file")


def test_the_formatter_imports_no_torch():
    """report and bench/gpu_check.py (which runs before it checks what the machine lacks) import common.cli."""
    code = "import sys, common.cli; print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'numpy')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[1], check=True)
    assert done.stdout.strip() == "[]"
