"""Files a run writes and reads, with no torch import (the report uses this module too).

- `atomic_write`: into a temporary file of the writer's own beside the target, then renamed over it, so a
  kill during a write leaves the previous file whole and a reader never sees half a file.
- `write_json`: JSON, secrets redacted (common.secrets), written atomically.
- `read_json`: a JSON object from a file we did not necessarily write (a config.json, a --config file), or
  one UserError line saying what is wrong with it: missing, unreadable, truncated, not an object, an
  integer of thousands of digits, nesting thousands deep.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable

from common.errors import UserError
from common.secrets import redact


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> None:
    """write(f) into a temporary file beside `path`, then rename it over `path` (atomic on POSIX).

    The temporary name is unique to this writer (mkstemp), so two processes writing the same file at once
    never share one; the file gets the usual permissions (0666 less the umask), not mkstemp's 0600, so
    another user of a shared folder can read it."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)  # the only way to read it is to set it
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """`text` (UTF-8) to `path` atomically (atomic_write)."""
    atomic_write(path, lambda f: f.write(text.encode()))


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """JSON (indented, secrets redacted) written atomically: a reader never sees half a file."""
    atomic_write_text(path, json.dumps(redact(obj), indent=2) + "\n")


def read_json(path: str | os.PathLike, what: str | None = None) -> dict:
    """The JSON object in `path`, or one UserError line naming `what` (default: the path) and the problem."""
    what = what or str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{what}: no such file") from None
    except UnicodeDecodeError:
        raise UserError(f"{what} is not UTF-8 text") from None
    except OSError as e:
        raise UserError(f"{what}: {e.strerror or type(e).__name__}") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"{what} is not JSON ({e.msg}, line {e.lineno}; truncated or damaged?)") from None
    except ValueError as e:  # an integer of more than 4,300 digits
        raise UserError(f"{what}: {str(e).split(';')[0]}") from None
    except RecursionError:
        raise UserError(f"{what} is nested too deeply to be a configuration") from None
    if not isinstance(value, dict):
        raise UserError(f"{what} holds a JSON {type(value).__name__}, not an object")
    return value
