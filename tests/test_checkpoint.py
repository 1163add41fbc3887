"""common/checkpoint.py and common/tables.py: atomic writes keep the usual permissions, and two processes
writing the same file at once never collide; tables keep odd names inside their cells."""
import csv
import io
import json
import multiprocessing
import os
import stat

import torch

from common.checkpoint import atomic_save, atomic_write_text
from common.tables import csv_text, markdown, write_csv


def test_atomic_writes_keep_the_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_save({"w": torch.ones(2)}, tmp_path / "last.pt")
        atomic_write_text(tmp_path / "metrics.json", "{}")
    finally:
        os.umask(old)
    for name in ("last.pt", "metrics.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name  # mkstemp alone gives 0600


def _write_many(path: str, worker: int, n: int) -> None:
    for i in range(n):
        write_csv(path + ".csv", [{"worker": worker, "i": i, "note": "a, \"quoted\"\nline"}])
        atomic_write_text(path + ".json", json.dumps({"worker": worker, "i": i}))


def test_two_processes_writing_the_same_files_at_once_never_fail(tmp_path):
    """What two sweep workers sharing one --out do with trials.csv and best_config.json."""
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_write_many, args=(str(tmp_path / "trials"), w, 150)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0]
    rows = list(csv.DictReader((tmp_path / "trials.csv").open(newline="")))
    assert len(rows) == 1 and rows[0]["note"] == "a, \"quoted\"\nline"
    assert json.loads((tmp_path / "trials.json").read_text())["i"] == 149
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trials.csv", "trials.json"]  # no temporary left


def test_tables_keep_odd_names_in_their_cells(tmp_path):
    name = "bad\udcffname,\nwith a $x^2$ | pipe"  # a non-UTF-8 byte as Python reads it from a file name
    write_csv(tmp_path / "t.csv", [{"file": name, "n": 1}])
    rows = list(csv.reader(io.StringIO((tmp_path / "t.csv").read_text(encoding="utf-8"), newline="")))
    assert rows == [["file", "n"], ["bad\\xffname,\nwith a $x^2$ | pipe", "1"]]
    md = markdown([{"file": name, "n": 1234}])
    assert md.count("\n") == 3 and "\\|" in md and "1,234" in md  # header, rule, one row: no forged row
    assert csv_text([{"a": 1}]).splitlines() == ["a", "1"]
