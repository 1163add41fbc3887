"""Tables of rows (a list of dicts) as files: CSV (history.csv, results.csv, summary.csv, trials.csv, ...), and
each table's Markdown twin (results.md, image_stats.md) through common.markdown's one table writer; and the
one CSV reader. (steps.csv is the exception: RunLog appends to it every epoch rather than rewrite it.)

CSV cells are written by the csv module, so a comma, a quote or a newline in a value (a file name, say)
stays inside its cell; text that is not valid UTF-8 (a file name from another system) is written with
backslash escapes instead of failing. Markdown tables are common.markdown's (the report's too): every cell
is escaped there, so a value is shown as its text and cannot add a column, a row or any markup.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Callable, Sequence

from common.files import atomic_write_text
from common.markdown import Markdown, escape, table

Format = Callable[[Any], str]


def csv_text(rows: Sequence[dict], fields: Sequence[str] | None = None) -> str:
    """The rows as CSV text with a header; `fields` (default: the first row's keys) sets the columns."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(fields if fields is not None else rows[0] if rows else []),
                            extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def write_csv(path: str | Path, rows: Sequence[dict], fields: Sequence[str] | None = None) -> None:
    """csv_text(rows, fields) to `path`, atomically (a reader never sees half a table)."""
    atomic_write_text(path, valid_utf8(csv_text(rows, fields)))


def read_csv(path: str | Path) -> list[dict]:
    """The rows of a CSV file with a header (history.csv, steps.csv): one dict of strings a row."""
    with Path(path).open(newline="") as f:
        return list(csv.DictReader(f))


def valid_utf8(text: str) -> str:
    """`text` with the bytes of a name that is not UTF-8 (read by Python as surrogates) written as `\\xff`."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def cell(value: Any) -> Markdown:
    """A value as Markdown cell text (escaped, one line): thousands separators for integers, 4 decimals for
    floats."""
    if value is None:
        return Markdown("-")  # ours, not data: a lone "-" is safe inside a cell, and stays readable in the .md
    if isinstance(value, bool):
        text = str(value)
    elif isinstance(value, int):
        text = f"{value:,}"
    elif isinstance(value, float):
        text = f"{value:.4f}"
    else:
        text = str(value)
    return escape(text)


def markdown(rows: Sequence[dict], formats: dict[str, Format] | None = None,
             headers: dict[str, str] | None = None, align_right: Sequence[str] = ()) -> str:
    """The rows as a Markdown table. `formats` maps a column to its formatter (default `cell`), `headers`
    renames columns, `align_right` right-aligns numeric ones."""
    if not rows:
        return ""
    formats, headers = formats or {}, headers or {}
    keys = list(rows[0])
    return table([cell(headers.get(k, k)) for k in keys],
                 [[cell(formats[k](row[k])) if k in formats else cell(row[k]) for k in keys] for row in rows],
                 right=[i for i, k in enumerate(keys) if k in align_right])


def write_table(stem: str | Path, rows: Sequence[dict], formats: dict[str, Format] | None = None,
                **markdown_options: Any) -> str:
    """rows as <stem>.csv (raw values) and <stem>.md (formatted); returns the Markdown."""
    stem = Path(stem)
    write_csv(stem.with_name(stem.name + ".csv"), rows)
    text = markdown(rows, formats, **markdown_options)
    atomic_write_text(stem.with_name(stem.name + ".md"), text)
    return text
