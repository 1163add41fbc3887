"""Markdown that holds data: one escape for every string that did not come from our code, and one table writer.

A folder, class or file name, a config.json value, a command, a metrics string or a --note is data: it must
appear on the page as the text it is, never as a heading, a link, an image, a list, an extra table cell or
HTML. Everything that writes Markdown from such a string goes through `escape` (or `code`, or `table`, which
call it), and Markdown that our own code wrote is marked as such by the `Markdown` type, so a value that was
not escaped is escaped when it enters a table (fail-safe) rather than trusted.

The escaping is chosen to mean the same thing to both renderers the report is read with: Python-Markdown
(index.html) and GitHub's (REPORT.md). A backslash is used only before the characters both treat as
escapable, HTML entities for the rest (an entity is text in both, never structure). No torch import: the
report uses this module.
"""
from __future__ import annotations

import re
from typing import Callable, Sequence

from common.text import printable


class Markdown(str):
    """Text that is Markdown already: written by our code, with any data in it escaped."""


# Backslash escapes that Python-Markdown (with `tables`) and GitHub both honour; everything else that could be
# structure is written as an entity: a backslash before `<`, `~` or `$` stays visible in Python-Markdown.
# Parentheses are left as they are ("Intel(R) Xeon(R)"): with every `[` and `]` escaped they cannot end a link.
_BACKSLASHED = set("\\`*[]#|")
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "~": "&#126;", "$": "&#36;"}
_BULLET_START = re.compile(r"[-+](\s|$|[-+])")  # "- x", "+", "---" at the start of a line: a list or a rule
_LIST_START = re.compile(r"(\d+)([.)])(\s|$)")  # "1. x" or "1) x" at the start of a line: a list
_LINE_BREAKS = re.compile(r"\r\n|[\t\n\v\f\r\x1c\x1d\x1e\x85\u2028\u2029]")


def one_line(value: object) -> str:
    """`value` as one printable line: line breaks and tabs folded to a space, other control or non-printing
    characters (an escape sequence, Python-Markdown's \\x02/\\x03 placeholders) and bytes that are not UTF-8
    shown as \\x1b, \\x02, \\xff (common.text.printable), leading and trailing spaces dropped (four leading
    spaces would start a code block; HTML collapses spaces anyway)."""
    return printable(_LINE_BREAKS.sub(" ", str(value))).strip()


def escape(value: object) -> Markdown:
    """`value` (any data) as Markdown that shows exactly its text, on one line. Markdown passes through.

    Safe at the start of a line too (after "> ", say): a leading list marker ("- ", "+ ", "1. ", "1) "), rule
    or setext underline ("---", "===") is escaped; "-0.5" and "0.05" are left as they are."""
    if isinstance(value, Markdown):
        return value
    text = one_line(value)
    out = []
    for i, c in enumerate(text):
        if c in _BACKSLASHED:
            out.append("\\" + c)
        elif c in _ENTITIES:
            out.append(_ENTITIES[c])
        elif c == "_" and not (0 < i < len(text) - 1 and text[i - 1].isalnum() and text[i + 1].isalnum()):
            out.append("\\_")  # could open or close emphasis; task_resnet_ln's stay readable
        else:
            out.append(c)
    escaped = "".join(out)
    if _BULLET_START.match(escaped):
        escaped = "\\" + escaped
    elif escaped.startswith("="):
        escaped = "&#61;" + escaped[1:]
    elif match := _LIST_START.match(escaped):
        escaped = f"{match[1]}\\{match[2]}{escaped[match.end(2):]}"
    return Markdown(escaped)


def code(value: object) -> Markdown:
    """`value` in a code font, as text: a literal <code> element around escape(value).

    Not a backtick span: inside one, Python-Markdown shows the backslash of `\\|` (which a table cell needs)
    and GitHub does not, and a backtick in the value would end the span. Escaped text inside <code> reads the
    same in both, and the page gets the same <code> element."""
    return Markdown(f"<code>{escape(value)}</code>")


def attribute(value: object) -> str:
    """`value` for a double-quoted HTML attribute of our own raw tags (the alt of an <img>): one line, and every
    ASCII character other than a letter, a digit or a space as a numeric entity. Python-Markdown runs its
    inline patterns (code spans, links, images) before it sets raw HTML aside, so even inside an attribute a
    backtick or a bracket would be markup; an entity is not, and the browser shows the character."""
    return "".join(c if c.isalnum() or c == " " or ord(c) > 127 else f"&#{ord(c)};" for c in one_line(value))


def table(header: Sequence[object], rows: Sequence[Sequence[object]], right: Sequence[int] = ()) -> Markdown:
    """A Markdown table; columns in `right` are right-aligned (numbers). Every cell that is not `Markdown` is
    escaped (so a cell cannot add a column or a row), and Markdown cells are folded to one line."""
    def cell(value: object) -> str:
        return escape(value) if not isinstance(value, Markdown) else " ".join(value.splitlines())

    align = ["---:" if i in right else "---" for i in range(len(header))]
    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return Markdown("\n".join(lines) + "\n")


# ----------------------------------------------------------------------------- numbers in tables and text
def percent(value: float | None, digits: int = 2) -> str:
    """A fraction in [0, 1] as a percentage ("83.06%"); "–" for a figure that is not there."""
    return "–" if value is None else f"{100 * value:.{digits}f}%"


def plus_minus(mean: float | None, std: float | None, fmt: Callable[[float], str] = lambda v: f"{v:.3f}") -> str:
    """mean ± std, each through `fmt` ("0.512 ± 0.031"); the mean alone when there is no std (one seed)."""
    if mean is None:
        return "–"
    return fmt(mean) + (f" ± {fmt(std)}" if std is not None else "")


def signed(value: float, digits: int = 3) -> str:
    """A difference with its sign, and a true minus sign ("+0.036", "−0.012")."""
    return f"{value:+.{digits}f}".replace("-", "−")
