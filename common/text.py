"""Names are data: a file, class or folder name from the wild, made safe to print as one line of text.

No torch import: the report uses it too.
"""
from __future__ import annotations

import os


def printable(name: str | bytes | os.PathLike) -> str:
    """A file or class name as one line of UTF-8 text, for a terminal, a log line, a CSV cell or an error message.

    Bytes that are not UTF-8 come out as \\xff, and newlines, escape sequences and other control or
    non-printing characters as \\n, \\x1b, \\u2028 (so a name can never forge a line or drive the terminal);
    the rest as is.
    """
    out = []
    for c in os.fsdecode(name):  # bytes that are not UTF-8 arrive as surrogates U+DC80..U+DCFF
        if "\udc80" <= c <= "\udcff":
            out.append(f"\\x{ord(c) - 0xDC00:02x}")
        else:
            out.append(c if c.isprintable() else repr(c)[1:-1])
    return "".join(out)
