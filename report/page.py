"""What every task's section of the page is made of (torch-free): the page and the images it links, the
provenance of a section's figures, "not run yet", the stand-in note, and numbers checked to be numbers.

Every string from a run folder (config.json and metrics.json values, folder and file names, the command) is
data: it enters the Markdown through common.markdown's escape(), code() or table(), and text composed of our
Markdown and escaped data is marked `Markdown`. A number is checked to be one (`number`), so a run folder of
another shape is a ShapeError, KeyError, TypeError, ... that the report turns into a `skipped` line.
"""
from __future__ import annotations

import re
from pathlib import Path

from common.markdown import Markdown, attribute, code, escape, percent, plus_minus
from common.markdown import signed as signed_number
from report.runs import Run, command, dataset_name, device_label, finished_at, number
from report.tasks import results

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def pct(x: object, digits: int = 2) -> str:
    """A fraction as a percentage; "–" for None; ShapeError for anything that is not a number."""
    return percent(None if x is None else number(x), digits)


def fixed(x: object, digits: int = 3) -> str:
    return f"{number(x):.{digits}f}"


def count(n: object) -> str:
    """An integer with thousands separators; "?" for None; ShapeError for anything that is not a number."""
    return "?" if n is None else f"{number(n):,}"


def pm(mean: object, std: object, fmt=fixed) -> str:
    """mean ± std of figures from a run folder, each checked to be a number."""
    return plus_minus(None if mean is None else number(mean), None if std is None else number(std), fmt)


def signed(x: object, digits: int = 3) -> str:
    return signed_number(number(x), digits)


def points(x: object) -> str:
    """A difference of two fractions in percentage points, signed ("+3.57 pt")."""
    return signed_number(100 * number(x), 2) + " pt"


def image_name(text: str) -> str:
    """A file name for img/ made of A-Z a-z 0-9 . _ - only (a folder name is data): safe as a Markdown link
    target and in the src of an <img>, never hidden, never an option, never too long for the file system."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", text)[-120:].lstrip("._-")
    return name if name.endswith(".png") and len(name) > 4 else f"{name or 'image'}.png"


class Page:
    """The Markdown being written and the images it links: source path -> name beside the page.

    `taken(name)` says whether a name is used already beside the page by a file the report will not replace
    (another program's file in img/): such a name is never chosen, so that file is never overwritten."""

    def __init__(self, taken=lambda name: False) -> None:
        self.parts: list[str] = []
        self.images: dict[Path, str] = {}
        self.taken = taken

    def add(self, *blocks: str) -> None:
        """Blocks of Markdown: our text, with any data in it already escaped."""
        self.parts.extend(blocks)

    def image(self, run: Run, relative: str, alt: str, width: int | None = None) -> Markdown:
        """A Markdown image of run/relative, copied to img/<task>/..., that opens at full size when clicked; a
        plain note if it is not a PNG file inside the run folder (Run.file). `width` (pixels) shows a plot drawn
        with large fonts smaller: an <img> tag, which GitHub and the `markdown` package both pass through.
        `relative` and `alt` may hold data (a seed, a file name): both are escaped here."""
        src = run.file(*relative.split("/"))
        if src is None:
            return Markdown(f"*({escape(alt)}: {code(relative)} is not in the run folder)*")
        if not is_png(src):
            return Markdown(f"*({escape(alt)}: {code(relative)} is not a PNG image)*")
        name = self.images.get(src) or self.new_name(run, relative)
        self.images[src] = name
        if width is not None:
            return Markdown(f'<a href="{name}"><img src="{name}" alt="{attribute(alt)}" width="{int(width)}"></a>')
        return Markdown(f"[![{escape(alt)}]({name})]({name})")

    def new_name(self, run: Run, relative: str) -> str:
        """img/<task>/<folder name>_<relative>, made safe (image_name), with -2, -3, ... where that is used."""
        stem = image_name(f"{run.folder.name}_{relative.replace('/', '_')}")[:-len(".png")]
        used = set(self.images.values())
        for n in range(1, 10_000):
            name = f"img/{run.task}/{stem}{'' if n == 1 else f'-{n}'}.png"
            if name not in used and not self.taken(name):
                return name
        raise RuntimeError("no free image name")  # 10,000 files of one name: not a foreseeable layout

    def images_of(self, run: Run, relatives: list[str], alt: str) -> Markdown:
        """Images two to a paragraph: the page shows each pair side by side."""
        images = [self.image(run, r, f"{alt}: {Path(r).stem}") for r in relatives]
        return Markdown("\n\n".join("\n".join(images[i:i + 2]) for i in range(0, len(images), 2)))

    def pair(self, left: str, right: str) -> Markdown:
        """Two images in one paragraph: side by side on the page."""
        return Markdown(f"{left}\n{right}")

    def markdown(self) -> str:
        return "\n\n".join(p.strip("\n") for p in self.parts) + "\n"


def is_png(path: Path) -> bool:
    """Whether a file starts as a PNG does: only PNGs are copied beside the page (the plots are PNGs)."""
    try:
        with path.open("rb") as f:
            return f.read(len(PNG_SIGNATURE)) == PNG_SIGNATURE
    except OSError:
        return False


def on_data(run: Run, value: str) -> Markdown:
    """A figure of ours (Markdown) with its data next to it, and "stand-in" where that is not the assignment's."""
    data, task = dataset_name(run.config), results(run.task)
    if task.is_stand_in(run.config):
        return Markdown(f"{value} on {data} *(stand-in data, not {task.DATA})*")
    return Markdown(f"{value} on {data}")


def provenance(page: Page, runs: list[tuple[str, Run]]) -> None:
    """Where the section's figures came from: per run folder, the data, device, date, commit and command."""
    parts: dict[Path, list[str]] = {}
    folders: dict[Path, Run] = {}
    for what, run in runs:
        parts.setdefault(run.folder, []).append(what)
        folders[run.folder] = run
    lines = []
    for folder, run in folders.items():
        c = run.config
        commit = str(c.get("git_commit") or "not recorded")[:7]
        stand_in = " (stand-in data)" if results(run.task).is_stand_in(c) else ""
        lines.append(f"- **{', '.join(parts[folder])}**: {code(folder)}  \n"
                     f"  data: {dataset_name(c)}{stand_in} · device: {device_label(c)} · "
                     f"finished: {finished_at(c, run.finished)} · commit: {code(commit)} · "
                     f"torch {escape(c.get('torch', '?'))}  \n"
                     f"  command: {code(command(run.task, c))}")
    page.add("**Where these figures come from**\n\n" + "\n".join(lines))


def not_run(what: str, make: str | tuple[str, ...], incomplete: list[Path]) -> Markdown:
    """The line for a task or part with no complete run: the command(s) that make it, and any unfinished run."""
    commands = ", then ".join(f"`{m}`" for m in ((make,) if isinstance(make, str) else make))
    unfinished = "".join(f" An incomplete run (no metrics.json yet) is in {code(p)}." for p in incomplete)
    return Markdown(f"**{what}: not run yet.** Make it with {commands}.{unfinished}")


def heading(page: Page, task: str) -> None:
    page.add(f"## {task}: {results(task).TITLE}")


def anchor(task: str) -> str:
    """The id of a task's heading, as GitHub and Python-Markdown's toc both make it: lower case, punctuation
    other than - and _ dropped, spaces as hyphens."""
    return re.sub(r"[^\w\s-]", "", f"{task}: {results(task).TITLE}").strip().lower().replace(" ", "-")


def weights_note(config: dict, pretrained: bool = True) -> Markdown:
    """Whether a pretrained model's weights file was ImageNet's. config.json's "pretrained_weights"
    ({"file", "sha256"}) answers it: torchvision names its files after their hash's first digits."""
    if not pretrained:
        return Markdown("")
    w = config.get("pretrained_weights")
    if not isinstance(w, dict):
        return Markdown(" — weights file not recorded (ImageNet or a stand-in: unknown)")
    stem = Path(str(w.get("file", ""))).stem
    if stem.rsplit("-", 1)[-1] and str(w.get("sha256", "")).startswith(stem.rsplit("-", 1)[-1]):
        return Markdown(" — ImageNet weights (hash checked)")
    return Markdown(" — **stand-in weights, not ImageNet** (the file's hash does not match its name)")
