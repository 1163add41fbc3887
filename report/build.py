"""The report: the latest complete run of each task (each part, where a task has parts) on one page,
beside the original reports, written as REPORT.md and rendered from that same text to index.html.

Markdown is written once and rendered with the `markdown` package (Python-Markdown, with its `tables`
extension), so REPORT.md (read on GitHub) and index.html (read offline, from file://) cannot disagree,
and the code holds no HTML beyond one small page template with its style sheet inline.
"""
from __future__ import annotations

import html
import shutil
from datetime import datetime, timezone
from pathlib import Path

import markdown

from report import originals, sections
from report.runs import TASKS, Run, dataset_name, is_stand_in, load_runs
from report.sections import Page, pct


def parts_of(run: Run) -> set[str]:
    """What a run can stand for in the report: a task's parts, or "run" for the single-folder tasks."""
    if run.task == "task_cifar_transfer":
        return sections.cifar_parts(run)
    if run.task == "task_inaturalist":
        return {"sweep"} if run.kind == "sweep" else {p for p in ("a", "b") if p in run.metrics}
    return {"run"}


def latest(runs: list[Run], task: str) -> dict[str, Run]:
    """part -> the latest finished run of `task` that has it."""
    chosen: dict[str, Run] = {}
    for run in sorted((r for r in runs if r.task == task), key=lambda r: r.finished):
        for part in parts_of(run):
            chosen[part] = run
    return chosen


# task -> (the part its headline figure comes from, the original's headline figure)
HEADLINES = {
    "task_resnet_ln": ("run", f"{pct(originals.RESNET_LN['test_acc'])} test (CIFAR-10)"),
    "task_cifar_transfer": ("a", f"(a) {pct(originals.CIFAR_TRANSFER['a']['test_acc'])} test (CIFAR-10)"),
    "task_catsdogs": ("run", f"plain / augmented {pct(originals.CATSDOGS['plain']['acc'])} / "
                             f"{pct(originals.CATSDOGS['aug']['acc'])} (28 test photos)"),
    "task_inaturalist": ("a", f"part A {pct(originals.INATURALIST['test_acc'])} test (iNaturalist-12K)"),
}


def our_headline(run: Run) -> str:
    if run.task == "task_resnet_ln":
        return pct(run.metrics.get("test_acc"))
    if run.task == "task_catsdogs":
        acc = next(r for r in run.metrics["summary"] if r["metric"] == "acc")
        return f"{pct(acc['plain_mean'])} / {pct(acc['aug_mean'])}"
    return pct(run.metrics["a"].get("test_acc"))


def summary_row(task: str, parts: dict[str, Run]) -> list[str]:
    """The task (a link to its section), the original's headline figure, and ours with its data."""
    part, original = HEADLINES[task]
    run = parts.get(part)
    ours = "not run yet"
    if run is not None:
        stand_in = " *(stand-in data)*" if is_stand_in(task, run.config) else ""
        ours = f"**{our_headline(run)}** on {dataset_name(run.config)}{stand_in}"
    return [f"[{task}](#{sections.anchor(task)})", original, ours]


def build_markdown(roots: list[Path], note: str | None = None) -> Page:
    runs, incomplete = load_runs(roots)
    chosen = {task: latest(runs, task) for task in TASKS}
    page = Page()
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    page.add("# Four image-classification assignments: our runs beside the original reports")
    if note:
        page.add(f"> {note}")
    page.add(f"Built {when} by `python -m report` from the latest complete run of each task (of each part, where "
             f"a task has parts) in {', '.join(f'`{r}`' for r in roots)}. Each section names the data, the device, "
             "the date, the commit and the exact command of its figures; a figure measured on data that is not "
             "the assignment's own says so next to the number.")
    page.add(sections.table(["task", "the original report", "ours (latest run)"],
                            [summary_row(task, chosen[task]) for task in TASKS]))
    sections.resnet_ln(page, chosen["task_resnet_ln"].get("run"), incomplete["task_resnet_ln"])
    sections.cifar_transfer(page, chosen["task_cifar_transfer"], incomplete["task_cifar_transfer"])
    sections.catsdogs(page, chosen["task_catsdogs"].get("run"), incomplete["task_catsdogs"])
    sections.inaturalist(page, chosen["task_inaturalist"], incomplete["task_inaturalist"])
    return page


STYLE = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328;
       max-width: 1180px; margin: 2em auto; padding: 0 1.5em; }
h1 { font-size: 1.7em; border-bottom: 1px solid #d0d7de; padding-bottom: .3em; }
h2 { font-size: 1.35em; margin-top: 2.2em; border-bottom: 1px solid #d0d7de; padding-bottom: .25em; }
h3 { font-size: 1.1em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: .8em 0; font-size: 14px; display: block; overflow-x: auto; }
th, td { border: 1px solid #d0d7de; padding: 4px 10px; vertical-align: top; }
th { background: #f6f8fa; text-align: left; }
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


def render_html(text: str, title: str) -> str:
    body = markdown.markdown(text, extensions=["tables", "toc"], output_format="html")
    return (f"<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")


def write_report(roots: list[Path], out: Path, note: str | None = None, image_width: int | None = None) -> Path:
    """Write out/REPORT.md, out/index.html and out/img/; returns the index.html path."""
    page = build_markdown(roots, note)
    if out.exists():
        shutil.rmtree(out / "img", ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    for src, name in page.images.items():
        copy_image(src, out / name, image_width)
    text = page.markdown()
    (out / "REPORT.md").write_text(text)
    index = out / "index.html"
    index.write_text(render_html(text, "Four image-classification assignments: the report"))
    return index


def copy_image(src: Path, dst: Path, width: int | None) -> None:
    """Copied as it is, or scaled down to `width` pixels (for a report that is committed)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if width is None:
        shutil.copyfile(src, dst)
        return
    from PIL import Image

    with Image.open(src) as image:
        if image.width > width:
            image = image.resize((width, round(image.height * width / image.width)), Image.LANCZOS)
        image.save(dst, optimize=True)
