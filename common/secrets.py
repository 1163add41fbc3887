"""Secrets (a password in a database or download URL) never reach a file the project writes, nor a printed line.

- `hide_url(url)`: the URL as SQLAlchemy itself parses it (`make_url`, the parser optuna's storage uses), with
  the password shown as `***` and the `password` / `passwd` query parameters dropped. A string that does not
  parse as a URL keeps only its scheme (`postgresql://***`).
- `remember_secrets(texts)`: run_main passes argv and $OPTUNA_STORAGE here before anything runs; every
  password found is then hidden wherever it appears, in free text too (an error line that quotes the URL).
- `redact(value)`: a string, or the strings inside a dict or list, with every secret hidden: what every JSON
  file we write and every error line goes through.
"""
from __future__ import annotations

import re
from typing import Any, Iterable
from urllib.parse import quote, unquote, urlsplit

SECRET_QUERY_KEYS = ("password", "passwd")
# Settings that hold a URL with credentials: always shown through hide_url, whether or not they parse.
SECRET_KEYS = ("storage", "url")
SECRET_FLAGS = tuple(f"--{key}" for key in SECRET_KEYS)
HIDDEN = "***"
_URL_START = re.compile(r"^[A-Za-z][\w+.-]*://")
# Free text: a URL's user:password@ (the password may hold anything but whitespace and @), and ?password=
_USERINFO = re.compile(r"(\b[A-Za-z][\w+.-]*://[^/\s:@]*):[^\s@]*@")
_QUERY = re.compile(r"([?&](?:" + "|".join(SECRET_QUERY_KEYS) + r")=)[^&#\s]*", re.IGNORECASE)
_known: set[str] = set()  # passwords seen in this process's argv and environment (remember_secrets)


def _parse(url: str):
    """SQLAlchemy's URL object, or None when it does not parse (or SQLAlchemy is not installed)."""
    try:
        from sqlalchemy.engine import make_url
    except ImportError:  # a machine without optuna (and so without SQLAlchemy): the fallback below
        return None
    try:
        return make_url(url)
    except Exception:  # ArgumentError, ValueError: not a URL at all
        return None


def hide_url(url: str) -> str:
    """`url` with its password hidden and its password/passwd query parameters dropped; a string that is not a
    URL keeps only its scheme."""
    parsed = _parse(url)
    if parsed is not None:
        parsed = parsed.difference_update_query([k for k in parsed.query if k.lower() in SECRET_QUERY_KEYS])
        return parsed.render_as_string(hide_password=True)
    scheme, sep, _ = url.partition("://")
    if sep and _URL_START.match(url):
        try:  # without SQLAlchemy: the standard library's parser, for URLs it reads cleanly
            parts = urlsplit(url)
            if parts.password is None and "@" not in url and not _QUERY.search(url):
                return url
        except ValueError:
            pass
        return f"{scheme}://{HIDDEN}"
    return HIDDEN


def _secrets_in(url: str) -> list[str]:
    """The password and secret query values of one URL, as written and percent-decoded."""
    found: list[str] = []
    parsed = _parse(url)
    if parsed is not None:
        found += [parsed.password] if parsed.password else []
        found += [v for k, v in parsed.query.items() if k.lower() in SECRET_QUERY_KEYS for v in
                  ([v] if isinstance(v, str) else v)]
    m = _USERINFO.search(url)
    if m:
        found.append(url[m.end(1) + 1:m.end() - 1])
    found += [m.group(0).split("=", 1)[1] for m in _QUERY.finditer(url)]
    return [s for s in {*found, *(unquote(s) for s in found), *(quote(s, safe="") for s in found)} if s]


def remember_secrets(argv: Iterable[str], urls: Iterable[str | None] = ()) -> None:
    """Remember the passwords in a command line and in URL settings (an environment variable) so that `redact`
    hides them in any text, not only inside a URL it can parse. The value of a secret setting that is not a URL
    at all is remembered whole. Very short ones are only hidden inside URLs (hiding "ab" everywhere would garble
    every line)."""
    argv, found = list(argv), []
    values = [v for flag, v in zip(argv, argv[1:]) if flag in SECRET_FLAGS]
    values += [t.split("=", 1)[1] for t in argv if t.split("=", 1)[0] in SECRET_FLAGS and "=" in t]
    for text in [*values, *(u for u in urls if u)]:
        found += [text] if _parse(text) is None else []
    for text in [*argv, *(u for u in urls if u)]:
        for m in re.finditer(r"[A-Za-z][\w+.-]*://", text):  # each URL in it, to the end of the text
            found += _secrets_in(text[m.start():])
    _known.update(s for s in found if len(s) >= 3)


def _scrub(text: str) -> str:
    for secret in sorted(_known, key=len, reverse=True):
        text = text.replace(secret, HIDDEN)
    text = _USERINFO.sub(rf"\1:{HIDDEN}@", text)
    return _QUERY.sub(rf"\1{HIDDEN}", text)


def redact(value: Any) -> Any:
    """`value` with every secret hidden: a string that is a URL through hide_url, any other string with the
    remembered passwords and every `user:password@` and `?password=` replaced by ***; dicts and lists
    element by element."""
    if isinstance(value, str):
        if _URL_START.match(value) and (_parse(value) is not None or "@" in value or _QUERY.search(value)):
            return _scrub(hide_url(value))
        return _scrub(value)
    if isinstance(value, dict):
        return {k: _scrub(hide_url(v)) if k in SECRET_KEYS and isinstance(v, str) else redact(v)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value


def redact_argv(argv: Iterable[str]) -> list[str]:
    """Command-line tokens with secrets hidden, token by token (a password with a space is one token)."""
    out: list[str] = []
    for token in argv:
        flag, eq, rest = token.partition("=")
        if out and out[-1] in SECRET_FLAGS:  # the value of --storage / --url, URL or not
            out.append(_scrub(hide_url(token)))
        elif eq and flag in SECRET_FLAGS:
            out.append(f"{flag}={_scrub(hide_url(rest))}")
        elif eq and flag.startswith("--") and _URL_START.match(rest):
            out.append(f"{flag}={redact(rest)}")
        else:
            out.append(redact(token))
    return out
