"""The tasks on the page, in order: the one place where they are listed.

Each task folder holds a torch-free `results` module that knows what the task reports: its TITLE, its DATA (the
assignment's own; any other is a stand-in), the MAKE command that runs it, a FLAG only its train.py has, the
ORIGINAL report's figures, the METRICS keys its metrics.json carries (per part), and the functions `parts(run)`,
`is_stand_in(config)`, `headline(parts)` and `section(page, parts, incomplete)`. The report asks each for its
section and knows no task's keys.
"""
from __future__ import annotations

import importlib
from types import ModuleType

TASKS = ("task_resnet_ln", "task_cifar_transfer", "task_catsdogs", "task_inaturalist")


def results(task: str) -> ModuleType:
    """The `results` module of a task folder."""
    return importlib.import_module(f"{task}.results")
