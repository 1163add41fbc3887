"""python -m report [--runs DIR | RUN_DIR ...] [--out DIR]: REPORT.md and index.html from the run folders.

    python -m report                                   # the latest complete runs under runs/ (not runs/smoke)
    python -m report --runs runs/smoke --out runs/smoke/report
    python -m report --runs runs/task_resnet_ln/20261126-101500 runs/task_catsdogs/20261126-103000

--out is a new or empty folder, or one that holds a report written by this tool (which is replaced: only its
REPORT.md, index.html and the images it links are deleted). A run folder the report cannot read is one
`skipped <folder>: <why>` line on stderr; a foreseeable mistake is one error line and exit code 2.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # `python report/__main__.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.cli import HelpFormatter
from common.errors import UserError
from common.text import printable
from report.build import write_report


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m report", description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter)
    p.add_argument("--runs", nargs="+", default=None, metavar="PATH",
                   help="run folders, or folders to search for them (default: runs, without runs/smoke)")
    p.add_argument("--out", default="runs/report", help="where REPORT.md, index.html and img/ go")
    p.add_argument("--note", default=None, help="one line shown at the top of the page, e.g. what data it is "
                   "(default: none)")
    p.add_argument("--image-width", type=int, default=None,
                   help="scale wider images down to this many pixels, for a report that is committed "
                        "(default: none, images keep their size)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    roots = [Path(p) for p in args.runs or ["runs"]]
    missing = [printable(str(p)) for p in roots if not p.is_dir()] if args.runs else []  # no runs/: "not run yet"
    try:
        if missing:
            raise UserError(f"no such folder: {', '.join(missing)}")
        if args.image_width is not None and args.image_width < 1:
            raise UserError(f"--image-width must be at least 1 pixel, not {args.image_width}")
        index, skipped = write_report(roots, Path(args.out), args.note, args.image_width)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a folder that cannot be written, a disk that is full
        where = f": {printable(str(e.filename))}" if e.filename else ""
        print(f"error: {e.strerror or type(e).__name__}{where}", file=sys.stderr)
        return 2
    for line in skipped:
        print(line, file=sys.stderr)
    print(f"report -> {printable(str(index))} (and REPORT.md beside it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
