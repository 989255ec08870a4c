"""Secrets out of everything a person reads: log lines, errors, command output.

`url()` hides a URL's userinfo and query values (the usual places of a credential);
`source()` names a URL that came from `*_env` / `*_file` by its host only, since its secret may
be the path itself (Slack, Discord). `scrub()` is the safety net behind both: every secret value
the process has resolved is registered here and replaced wherever it still turns up (the
logging formatter runs every line through it)."""

from __future__ import annotations

import json
import re
import threading
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

MASK = "***"
_MIN_SECRET = 4  # shorter values would mask ordinary words
_URL = re.compile(r"""https?://[^\s"'<>]+""", re.I)
_known: dict[str, str] = {}
_lock = threading.Lock()


def url(text: str) -> str:
    """`https://user:pw@host/p?token=x` -> `https://***:***@host/p?token=***`."""
    try:
        parts = urlsplit(text)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return MASK
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    if parts.username is not None or parts.password is not None:
        netloc = (f"{MASK}:{MASK}@" if parts.password is not None else f"{MASK}@") + netloc
    query = "&".join(f"{quote(k, safe='')}={MASK}"
                     for k, _ in parse_qsl(parts.query, keep_blank_values=True))
    if parts.query and not query:
        query = MASK
    if not netloc and text.startswith(f"{parts.scheme}://"):
        # urlunsplit would drop the empty authority: "sqlite:////srv/bw.db" -> "sqlite://srv/bw.db"
        return f"{parts.scheme}://{parts.path}" + (f"?{query}" if query else "")
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def host(text: str) -> str:
    try:
        return urlsplit(text).hostname or "?"
    except ValueError:
        return "?"


def source(value: str | None, *, env: str = "", file: str = "") -> str:
    """A URL configured through `*_env` / `*_file`: its host and where it came from."""
    origin = f"(from ${env})" if env else f"(from {file})"
    return f"{host(value)} {origin}" if value else origin


def urls_in(text: str) -> str:
    """Every http(s) URL in free text redacted with `url()`."""
    return _URL.sub(lambda m: url(m.group(0)), text)


def register(value: str | None, shown_as: str = MASK) -> None:
    """A secret value this process knows; `scrub` replaces it with `shown_as` from now on."""
    if not value or len(value) < _MIN_SECRET:
        return
    with _lock:
        _known[value] = shown_as
        # the same value as it appears inside a JSON string (JSON log lines)
        escaped = json.dumps(value, ensure_ascii=False)[1:-1]
        if escaped != value:
            _known[escaped] = shown_as


def forget_all() -> None:
    with _lock:
        _known.clear()


def scrub(text: str) -> str:
    """Known secret values replaced (longest first, so a URL goes before its password)."""
    if not _known:
        return text
    with _lock:
        items = sorted(_known.items(), key=lambda kv: len(kv[0]), reverse=True)
    for value, shown in items:
        if value in text:
            text = text.replace(value, shown)
    return text
