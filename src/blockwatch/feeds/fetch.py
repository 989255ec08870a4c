"""Fetch one feed with httpx: conditional GET, a size cap enforced while streaming (on the
decompressed bytes too), a deadline for the whole fetch, and a plain-words error. Also the
backoff rule, a pure function."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from urllib.parse import urljoin, urlsplit

import httpx

from blockwatch import __version__

USER_AGENT = f"blockwatch/{__version__} (press-freedom monitor; feed reader)"
ACCEPT = ("application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
          "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5")
MAX_BACKOFF = timedelta(hours=24)
MAX_REDIRECTS = 5
REDIRECTS = (301, 302, 303, 307, 308)

# host name -> its addresses (tests inject their own: no real DNS there)
Resolve = Callable[[str], Awaitable[list[str]]]


@dataclass(frozen=True)
class FetchResult:
    status: Literal["ok", "not_modified", "error"]
    content: bytes = b""
    content_type: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    truncated: bool = False  # the body was cut at max_bytes
    http_status: int | None = None
    error: str | None = None


def make_client(*, concurrency: int, timeout: float) -> httpx.AsyncClient:
    # trust_env=False: proxy or CA variables of the host must not change what is fetched.
    # Only gzip and deflate are offered because we decompress ourselves, with a bound.
    # Redirects are followed by fetch_feed itself, each hop checked (see `redirect_refused`).
    return httpx.AsyncClient(
        trust_env=False, follow_redirects=False, timeout=httpx.Timeout(timeout),
        headers={"User-Agent": USER_AGENT, "Accept": ACCEPT, "Accept-Encoding": "gzip, deflate"},
        limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
    )


class _Identity:
    def feed(self, data: bytes, limit: int) -> bytes:
        return data[:limit]

    def flush(self) -> bytes:
        return b""


class _Inflate:
    """gzip or zlib, output bounded per call: a 50 KB gzip of zeros can inflate to 50 MB, and
    httpx's own decoder would inflate a whole chunk at once before we could count it."""

    def __init__(self) -> None:
        self.d = zlib.decompressobj(zlib.MAX_WBITS | 32)  # 32: detect the gzip or zlib header

    def feed(self, data: bytes, limit: int) -> bytes:
        return self.d.decompress(data, limit)

    def flush(self) -> bytes:
        return self.d.flush()


def _decoder(content_encoding: str) -> _Identity | _Inflate:
    enc = content_encoding.strip().lower()
    if enc in ("", "identity"):
        return _Identity()
    if enc in ("gzip", "x-gzip", "deflate"):
        return _Inflate()
    raise ValueError(f"unsupported Content-Encoding {content_encoding!r}")


def describe_error(exc: BaseException, timeout: float) -> str:
    """An error a person can act on, without a traceback."""
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return f"timed out after {timeout:g}s"
    if isinstance(exc, httpx.TooManyRedirects):
        return "too many redirects"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect: {exc}" if str(exc) else "cannot connect"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"the server broke the HTTP protocol: {exc}"
    if isinstance(exc, zlib.error):
        return f"corrupt compressed body: {exc}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


async def system_resolve(host: str) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return [str(i[4][0]) for i in infos]


def _internal(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        # an IPv4 address wrapped in IPv6 (mapped, 6to4) is judged as that address
        inner = ip.ipv4_mapped or ip.sixtofour
        if inner is not None:
            ip = inner
    # not is_global: also carrier-grade NAT (100.64/10, where some clouds keep metadata services)
    return not ip.is_global or ip.is_multicast


async def _internal_host(host: str, resolve: Resolve) -> str | None:
    """The internal address `host` is or resolves to, else None. A name that does not resolve
    is let through: the request then fails on its own."""
    host = host.strip("[]").rstrip(".").lower()
    try:
        ip = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        if host == "localhost" or host.endswith(".localhost"):
            return host
        try:
            addrs = await resolve(host)
        except (OSError, UnicodeError):
            return None
        for a in addrs:
            try:
                if _internal(ipaddress.ip_address(a.split("%")[0])):
                    return a
            except ValueError:
                continue
        return None
    return host if _internal(ip) else None


async def redirect_refused(origin: str, target: str, resolve: Resolve) -> str | None:
    """Why a redirect from the configured feed address `origin` to `target` is refused, or None.
    A public feed must not be able to point the fetcher at this machine or its private network
    (loopback, link-local such as cloud metadata, RFC 1918); a feed configured on such an
    address (an intranet feed) may redirect within it."""
    parts = urlsplit(target)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"redirect to a non-web address refused: {target[:200]}"
    if parts.hostname == urlsplit(origin).hostname:
        return None  # the configured host itself
    internal = await _internal_host(parts.hostname, resolve)
    if internal is None:
        return None
    if await _internal_host(urlsplit(origin).hostname or "", resolve) is not None:
        return None
    return (f"redirect to an internal address refused: {parts.hostname}"
            + (f" ({internal})" if internal != parts.hostname else ""))


async def fetch_feed(client: httpx.AsyncClient, url: str, *, etag: str | None = None,
                     last_modified: str | None = None, max_bytes: int = 5 * 10**6,
                     timeout: float = 30.0, resolve: Resolve = system_resolve) -> FetchResult:
    headers = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    try:
        # a deadline for the whole fetch: a server that drips one byte per read never trips the
        # per-read timeout
        async with asyncio.timeout(timeout):
            current = url
            for _hop in range(MAX_REDIRECTS + 1):
                async with client.stream("GET", current, headers=headers) as r:
                    if r.status_code in REDIRECTS and r.headers.get("location"):
                        nxt = urljoin(current, r.headers["location"])
                        if (why := await redirect_refused(url, nxt, resolve)) is not None:
                            return FetchResult("error", http_status=r.status_code, error=why)
                        current = nxt
                        continue
                    return await _read(r, etag, last_modified, max_bytes)
            return FetchResult("error", error="too many redirects")
    except (TimeoutError, httpx.HTTPError, zlib.error) as exc:
        return FetchResult("error", error=describe_error(exc, timeout))


async def _read(r: httpx.Response, etag: str | None, last_modified: str | None,
                max_bytes: int) -> FetchResult:
    new_etag = r.headers.get("etag") or etag
    new_lm = r.headers.get("last-modified") or last_modified
    if r.status_code == 304:
        return FetchResult("not_modified", http_status=304, etag=new_etag, last_modified=new_lm)
    if r.status_code != 200:
        return FetchResult("error", http_status=r.status_code,
                           error=f"HTTP {r.status_code} {r.reason_phrase}".strip())
    try:
        dec = _decoder(r.headers.get("content-encoding", ""))
    except ValueError as exc:
        return FetchResult("error", http_status=200, error=str(exc))
    body = bytearray()
    wire = 0
    truncated = False
    async for chunk in r.aiter_raw():
        wire += len(chunk)
        body += dec.feed(chunk, max_bytes - len(body) + 1)
        if len(body) > max_bytes or wire > max_bytes:
            truncated = True
            break  # leaving the block closes the connection: the rest is never read
    if not truncated:
        body += dec.flush()
        truncated = len(body) > max_bytes
    return FetchResult("ok", bytes(body[:max_bytes]), r.headers.get("content-type"),
                       new_etag, new_lm, truncated, 200)


def next_attempt(now: datetime, interval: timedelta, failures: int) -> datetime:
    """When to try a feed again: after `interval` when it worked; after a failure, twice the
    interval per consecutive failure, at most a day (or the interval, if that is longer)."""
    if failures <= 0:
        return now + interval
    delay = interval * (2 ** min(failures, 16))
    return now + min(delay, max(MAX_BACKOFF, interval))
