"""The report: the latest complete run of each task (each part, where a task has parts) on one page,
beside the original reports, written as REPORT.md and rendered from that same text to index.html.

Markdown is written once and rendered with the `markdown` package (Python-Markdown, with its `tables`
extension), so REPORT.md (read on GitHub) and index.html (read offline, from file://) cannot disagree,
and the code holds no HTML beyond one small page template with its style sheet inline.

The run folders are data. Their strings are escaped where they enter the Markdown (common.markdown), and the
rendered HTML is then sanitised with an allowlist (nh3): only the elements and attributes this page uses, links
only to img/ and to the page's own headings. A run folder the sections cannot read is left out with a
`skipped` line, and the next-latest run (or "not run yet") is shown in its place.

--out is a new or empty folder, or one that holds a report written here (its index.html has our <title>);
replacing one deletes only what it wrote: REPORT.md, index.html and the images its index.html links.
"""
from __future__ import annotations

import html
import io
import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import markdown
import nh3

from common.errors import UserError
from common.files import atomic_write_text
from common.markdown import Markdown, code, escape, table
from common.text import printable
from report.page import Page, anchor
from report.runs import Run, ShapeError, dataset_name, load_runs, missing, skipped_line
from report.tasks import TASKS, results

TITLE = "Four image-classification assignments: the report"  # in every index.html this tool wrote: the marker


def latest(runs: list[Run], task: str) -> dict[str, Run]:
    """part -> the latest finished run of `task` that has it."""
    chosen: dict[str, Run] = {}
    for run in sorted((r for r in runs if r.task == task), key=lambda r: r.finished):
        for part in results(task).parts(run):
            chosen[part] = run
    return chosen


def summary_row(task: str, parts: dict[str, Run]) -> list:
    """The task (a link to its section), the original's headline figure, and ours with its data."""
    original, run, figure = results(task).headline(parts)
    ours = Markdown("not run yet")
    if run is not None:
        stand_in = " *(stand-in data)*" if results(task).is_stand_in(run.config) else ""
        ours = Markdown(f"**{figure}** on {dataset_name(run.config)}{stand_in}")
    return [Markdown(f"[{task}](#{anchor(task)})"), original, ours]


def unreadable(task: str, parts: dict[str, Run]) -> str | None:
    """Why the section cannot be written from these runs (one line), or None: a key the task's METRICS names
    is missing; or, written into a scratch page, a missing key, a string where a number belongs or a list where
    a dict does is the answer."""
    keys = results(task).METRICS
    for part, run in parts.items():
        lack = next(filter(None, (missing(run.metrics, key) for key in keys.get(part, ()))), None)
        if lack is not None:
            return f"metrics.json has no {lack}"
    try:
        summary_row(task, parts)
        results(task).section(Page(), parts, [])
    except KeyError as e:
        return f"no {shorten(repr(e.args[0]) if e.args else '?')} where this report looks for it (an older run?)"
    except ShapeError as e:
        return str(e)
    except (TypeError, ValueError, AttributeError, IndexError) as e:
        return f"not in the shape this report reads ({type(e).__name__}: {shorten(str(e))})"
    return None


def shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def readable_runs(runs: list[Run], skipped: list[str]) -> list[Run]:
    """`runs` less those no section can be written from: each run that is the latest of one of its task's
    parts is tried alone; one that fails gets a `skipped` line, and the next-latest run takes its place."""
    runs = list(runs)
    while True:
        bad = next(((run, why) for task in TASKS for run, why in tried(runs, task) if why is not None), None)
        if bad is None:
            return runs
        runs = [run for run in runs if run is not bad[0]]
        skipped.append(skipped_line(bad[0].folder, bad[1]))


def tried(runs: list[Run], task: str):
    """(run, why or None) for each distinct run chosen for a part of `task`, with only its own parts."""
    chosen = latest(runs, task)
    distinct = {id(run): run for run in chosen.values()}  # a Run (a dataclass) is not hashable
    for run in distinct.values():
        yield run, unreadable(task, {part: r for part, r in chosen.items() if r is run})


def build_markdown(roots: list[Path], note: str | None = None,
                   taken: Callable[[str], bool] = lambda name: False) -> tuple[Page, list[str]]:
    """The page, and the `skipped <folder>: <why>` lines of the run folders left out of it."""
    runs, incomplete, skipped = load_runs(roots)
    runs = readable_runs(runs, skipped)
    chosen = {task: latest(runs, task) for task in TASKS}
    page = Page(taken)
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    page.add("# Four image-classification assignments: our runs beside the original reports")
    if note:
        page.add(f"> {escape(note)}")
    page.add(f"Built {when} by `python -m report` from the latest complete run of each task (of each part, where "
             f"a task has parts) in {', '.join(code(r) for r in roots)}. Each section names the data, the device, "
             "the date, the commit and the exact command of its figures; a figure measured on data that is not "
             "the assignment's own says so next to the number.")
    page.add(table(["task", "the original report", "ours (latest run)"],
                   [summary_row(task, chosen[task]) for task in TASKS]))
    for task in TASKS:
        results(task).section(page, chosen[task], incomplete[task])
    return page, skipped


STYLE = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328;
       max-width: 1180px; margin: 2em auto; padding: 0 1.5em; }
h1 { font-size: 1.7em; border-bottom: 1px solid #d0d7de; padding-bottom: .3em; }
h2 { font-size: 1.35em; margin-top: 2.2em; border-bottom: 1px solid #d0d7de; padding-bottom: .25em; }
h3 { font-size: 1.1em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: .8em 0; font-size: 14px; display: block; overflow-x: auto; }
th, td { border: 1px solid #d0d7de; padding: 4px 10px; vertical-align: top; }
th { background: #f6f8fa; text-align: left; }
th[align=right], td[align=right] { text-align: right; }  /* a column of numbers (the tables' ---: columns) */
tr:nth-child(even) td { background: #fbfcfd; }
code { font: 13px ui-monospace, SFMono-Regular, Menlo, monospace; background: #f6f8fa; padding: 1px 4px;
       border-radius: 4px; overflow-wrap: anywhere; }
blockquote { margin: 1em 0; padding: .5em 1em; border-left: 4px solid #d4a72c; background: #fff8c5; }
img { max-width: 100%; max-height: 1000px; height: auto; display: block; margin: .6em 0; }
img[width] { max-height: none; }
a:has(> img) { display: block; }
/* two figures in one paragraph (misclassified and Grad-CAM, grid and confusion matrix) stand side by side */
p > a:has(> img):first-child:nth-last-child(2), p > a:has(> img):first-child:nth-last-child(2) ~ a {
  display: inline-block; width: calc(50% - 10px); vertical-align: top; }
p > a:has(> img):first-child:nth-last-child(2) { margin-right: 12px; }
p > a:has(> img):first-child:nth-last-child(2) img, p > a:has(> img):first-child:nth-last-child(2) ~ a img {
  max-height: none; }  /* a tall figure (the 10 x 3 grid) keeps its column's width */
"""


# What the rendered Markdown may hold: the elements and attributes this page uses, nothing else. Links and
# images only to img/ and to the page's own headings (no scheme at all: no javascript:, no http: fetch).
HEADINGS = ("h1", "h2", "h3", "h4")
CLEANER = nh3.Cleaner(
    tags={*HEADINGS, "p", "a", "img", "table", "thead", "tbody", "tr", "th", "td", "code", "pre", "em", "strong",
          "ul", "ol", "li", "blockquote", "hr", "br"},
    clean_content_tags={"script", "style"},
    attributes={"a": {"href"}, "img": {"src", "alt", "width"}, **{h: {"id"} for h in HEADINGS}},
    tag_attribute_values={"th": {"align": {"left", "right", "center"}}, "td": {"align": {"left", "right", "center"}}},
    url_schemes=set(),
    url_relative=lambda url: url if re.fullmatch(r"img/[A-Za-z0-9._/-]+|#[\w-]*", url) and ".." not in url else None,
    link_rel=None,  # no target="_blank" is allowed, so there is no opener to protect; the page stays as it was
)


def render_html(text: str, title: str) -> str:
    """The page: Markdown rendered (alignment as align="right", not a style attribute, which the cleaner would
    drop), sanitised, inside our template with its own style sheet."""
    body = markdown.markdown(text, extensions=["tables", "toc"], extension_configs={
        "tables": {"use_align_attribute": True}}, output_format="html")
    body = CLEANER.clean(body)
    return (f"<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")


# ----------------------------------------------------------------------------- --out
def is_our_report(out: Path) -> bool:
    """Whether `out`'s index.html is one this tool wrote: its <title> (in the first 64 KiB) is ours."""
    index = out / "index.html"
    try:
        if not index.is_file():
            return False
        with index.open("rb") as f:
            head = f.read(1 << 16).decode("utf-8", "replace")
    except OSError:
        return False
    return f"<title>{html.escape(TITLE)}</title>" in head


def check_out(out: Path) -> None:
    """--out must be a new or empty folder, or a report written here; else one UserError line (nothing is
    written or deleted)."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {printable(str(out))} is a file, not a folder")
    if not out.exists():
        return
    if is_our_report(out):
        for folder in [out / "img", *(out / "img" / task for task in TASKS)]:
            if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
                raise UserError(f"--out {printable(str(out))}: {printable(str(folder))} is a link or a file, not "
                                "the folder of images this report writes; move it away first")
        return
    try:
        first = next(iter(sorted(out.iterdir())), None)
    except OSError as e:
        raise UserError(f"--out {printable(str(out))}: {e.strerror or type(e).__name__}") from None
    if first is not None:
        raise UserError(f"--out {printable(str(out))} holds files this report did not write (such as "
                        f"{printable(first.name)}): give a new or empty folder, or one with a report in it")


def old_images(out: Path) -> set[str]:
    """The img/ names the report in `out` links from its index.html: the images it wrote (and will delete)."""
    if not is_our_report(out):
        return set()
    text = (out / "index.html").read_text(encoding="utf-8", errors="replace")
    names = {html.unescape(n) for n in re.findall(r'(?:src|href)="(img/[^"]+)"', text)}
    img = out.resolve() / "img"  # checked to be a folder, not a link (check_out)
    return {n for n in names if ".." not in n.split("/") and (out / n).parent.resolve().is_relative_to(img)
            and ((out / n).is_symlink() or (out / n).is_file())}


def remove_old_report(out: Path, images: set[str]) -> None:
    """Delete the images the old report linked, then the folders of img/ that this leaves empty."""
    for name in images:
        (out / name).unlink(missing_ok=True)
    for folder in [out / "img" / task for task in TASKS] + [out / "img"]:
        try:
            folder.rmdir()  # only if empty: a file of anyone else's keeps its folder
        except OSError:
            pass


def write_report(roots: list[Path], out: Path, note: str | None = None,
                 image_width: int | None = None) -> tuple[Path, list[str]]:
    """Write out/REPORT.md, out/index.html and out/img/; returns the index.html path and the `skipped` lines.

    Raises UserError (one line) for an --out it must not write into, before anything is written."""
    check_out(out)
    old = old_images(out)
    page, skipped = build_markdown(roots, note, taken=lambda name: name not in old and os.path.lexists(out / name))
    remove_old_report(out, old)
    out.mkdir(parents=True, exist_ok=True)
    text = page.markdown()
    index = out / "index.html"
    atomic_write_text(index, render_html(text, TITLE))  # first: a report cut short still lists its images
    atomic_write_text(out / "REPORT.md", text)
    for src, name in page.images.items():
        copy_image(src, out / name, image_width)
    return index, skipped


def copy_image(src: Path, dst: Path, width: int | None) -> None:
    """Copied as it is, or scaled down to `width` pixels (for a report that is committed; an image Pillow cannot
    decode is copied as it is). The file is created new ("x" mode): a symlink or a file of someone else's at
    that name is never written through or over."""
    data = None
    if width is not None:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(src) as image:
                if image.width > width:
                    image = image.resize((width, round(image.height * width / image.width)), Image.LANCZOS)
                buffer = io.BytesIO()
                image.save(buffer, format="PNG", optimize=True)
                data = buffer.getvalue()
        except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError):
            data = None
    dst.parent.mkdir(parents=True, exist_ok=True)
    with dst.open("xb") as f:
        f.write(data if data is not None else src.read_bytes())
