"""Minimal HTTP/1.1 for lab sites: parse one request, write one response, Connection: close."""

from __future__ import annotations

import asyncio
import gzip as gzip_module
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

MAX_HEAD = 64 * 1024
MAX_REQUEST_BODY = 1024 * 1024
_FILLER = b"<!-- lab padding 0123456789abcdefghijklmnopqrstuvwxyz -->\n"


@dataclass
class Request:
    method: str
    target: str
    path: str
    version: str
    headers: dict[str, str]  # lower-case names
    body: bytes = b""

    @property
    def host(self) -> str | None:
        """The Host header without port, lower-case."""
        host = self.headers.get("host")
        if not host:
            return None
        if host.startswith("["):
            return host[1 : host.find("]")].lower()
        return host.rsplit(":", 1)[0].lower() if ":" in host else host.lower()


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    """One request, or None on EOF / garbage / oversized head."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return None
    try:
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ", 2)
    except ValueError:
        return None
    if not (method.isalpha() and version.startswith("HTTP/") and target):
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    path = target
    if "://" in target:  # absolute-form
        parts = urlsplit(target)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        headers.setdefault("host", parts.netloc)
    body = b""
    try:
        length = int(headers.get("content-length", "0"))
    except ValueError:
        length = 0
    if 0 < length <= MAX_REQUEST_BODY:
        try:
            body = await reader.readexactly(length)
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
    return Request(method.upper(), target, path, version, headers, body)


BodySource = bytes | str | Callable[..., bytes | str]


@dataclass
class Page:
    """A response. `body` may be a callable (called per request, with the Request if it takes
    an argument) for content that changes on every request."""

    body: BodySource = b""
    status: int = 200
    headers: dict[str, str] | list[tuple[str, str]] = field(default_factory=dict)
    content_type: str = "text/html; charset=utf-8"
    gzip: bool = False  # Content-Encoding: gzip
    size: int | None = None  # pad (or cut) the body to exactly this many bytes
    redirect: str | None = None  # Location; status becomes 301 unless a 3xx is given
    _cache: tuple[bytes, bytes | None] | None = field(default=None, init=False, repr=False)

    def _raw_body(self, request: Request) -> bytes:
        body: Any = self.body
        if callable(body):
            try:
                wants_request = len(inspect.signature(body).parameters) > 0
            except (TypeError, ValueError):
                wants_request = True
            body = body(request) if wants_request else body()
        if isinstance(body, str):
            body = body.encode()
        if self.size is not None:
            if len(body) < self.size:
                need = self.size - len(body)
                body = body + (_FILLER * (need // len(_FILLER) + 1))[:need]
            body = body[: self.size]
        return body

    def render(self, request: Request) -> tuple[int, list[tuple[str, str]], bytes]:
        if callable(self.body):
            body = self._raw_body(request)
            zipped = gzip_module.compress(body, mtime=0) if self.gzip else None
        else:
            if self._cache is None:
                raw = self._raw_body(request)
                self._cache = (raw, gzip_module.compress(raw, mtime=0) if self.gzip else None)
            body, zipped = self._cache
        status = self.status
        headers = [("Content-Type", self.content_type)]
        headers += list(self.headers.items() if isinstance(self.headers, dict) else self.headers)
        if self.redirect is not None:
            if not 300 <= status < 400:
                status = 301
            headers.append(("Location", self.redirect))
        if zipped is not None:
            headers.append(("Content-Encoding", "gzip"))
            body = zipped
        return status, headers, body


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


async def write_response(
    writer: asyncio.StreamWriter,
    status: int,
    headers: list[tuple[str, str]],
    body: bytes,
    *,
    head_only: bool = False,
    rate: float | None = None,
) -> None:
    lines = [f"HTTP/1.1 {status} {_reason(status)}"]
    lines += [f"{k}: {v}" for k, v in headers]
    lines += [f"Content-Length: {len(body)}", "Connection: close", "", ""]
    head = "\r\n".join(lines).encode("latin-1")
    if head_only or not body or (not rate and len(body) <= 64 * 1024):
        # One write: over TLS, head and body in separate records cost the client a
        # delayed-ACK round (~40 ms) on loopback.
        writer.write(head if head_only else head + body)
        await writer.drain()
        return
    writer.write(head)
    if rate:  # slow body: a chunk every 50 ms
        chunk = max(1, int(rate * 0.05))
        for i in range(0, len(body), chunk):
            writer.write(body[i : i + chunk])
            await writer.drain()
            if i + chunk < len(body):
                await asyncio.sleep(0.05)
        return
    view = memoryview(body)
    for i in range(0, len(body), 256 * 1024):
        writer.write(view[i : i + 256 * 1024])
        await writer.drain()
