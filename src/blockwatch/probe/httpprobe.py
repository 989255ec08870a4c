"""HTTP(S) step: GET through at most 10 redirects, connecting to addresses chosen by the
vantage's own DNS (so a lying resolver's address is what gets fetched), with a body cap that
also bounds decompression."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import html
import re
import ssl
import time
import zlib
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx

from blockwatch.probe import failures as F
from blockwatch.probe.records import HttpHop, HttpResult

MAX_REDIRECTS = 10
EXCERPT_BYTES = 2048
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title\s*>", re.I | re.S)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset=["']?([A-Za-z0-9_\-]+)""", re.I)
_REDIRECTS = {301, 302, 303, 307, 308}

Resolve = Callable[[str], Awaitable[str | None]]
Matcher = Callable[[bytes, dict[str, str], int | None], list[str]]


class NoAddress(httpcore.ConnectError):
    pass


class OpenedStream(httpcore.AsyncNetworkStream):
    """An asyncio connection the TCP/TLS step already opened (and, for https, already shook
    hands on, with the same trust store and SNI), handed to httpcore so the HTTP request does
    not pay for a second connection and handshake."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self._reader, self._writer = reader, writer
        # httpcore re-wraps our exceptions and the errno is lost on the way: keep the original
        self.error: BaseException | None = None

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            async with asyncio.timeout(timeout):
                return await self._reader.read(max_bytes)
        except TimeoutError as exc:
            self.error = exc
            raise httpcore.ReadTimeout("timed out reading") from None
        except OSError as exc:
            self.error = exc
            raise httpcore.ReadError(str(exc)) from exc

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        try:
            async with asyncio.timeout(timeout):
                self._writer.write(buffer)
                await self._writer.drain()
        except TimeoutError as exc:
            self.error = exc
            raise httpcore.WriteTimeout("timed out writing") from None
        except OSError as exc:
            self.error = exc
            raise httpcore.WriteError(str(exc)) from exc

    async def aclose(self) -> None:
        self._writer.close()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1):
                await self._writer.wait_closed()

    async def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                        timeout: float | None = None) -> httpcore.AsyncNetworkStream:
        return self  # the handshake happened in the TLS step

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            return self._reader.at_eof() or bool(self._reader._buffer)
        return self._writer.get_extra_info(info)


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """Connects to the address our own DNS step chose for a host, not the system resolver's."""

    def __init__(self, resolve: Resolve):
        self._inner = httpcore.AnyIOBackend()
        self._resolve = resolve
        self.last_address: str | None = None
        # (host, port) -> (address, an already opened connection) for the first request
        self.opened: dict[tuple[str, int], tuple[str, OpenedStream]] = {}
        self.used: list[OpenedStream] = []

    def classify(self, exc: BaseException) -> str:
        for stream in self.used:
            if stream.error is not None:
                return F.classify(stream.error)
        return F.classify(exc)

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Any = None) -> httpcore.AsyncNetworkStream:
        ready = self.opened.pop((host, port), None)
        if ready is not None:
            self.last_address = ready[0]
            self.used.append(ready[1])
            return ready[1]
        address = await self._resolve(host)
        if address is None:
            raise NoAddress(f"no address for {host}")
        self.last_address = address
        if local_address and (":" in local_address) != (":" in address):
            local_address = None
        return await self._inner.connect_tcp(address, port, timeout, local_address, socket_options)

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Any = None) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not used by probes")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def make_client(resolve: Resolve, *, ssl_context: ssl.SSLContext, source: str | None,
                timeout: float, user_agent: str) -> tuple[httpx.AsyncClient, PinnedBackend]:
    """A fresh client per probe: pooled connections would carry one SNI to another name
    (PITFALLS.md) and blur per-step timings."""
    backend = PinnedBackend(resolve)
    transport = httpx.AsyncHTTPTransport(verify=ssl_context, retries=0)
    # httpx has no public hook for the network backend; the pool is built the same way it
    # builds it, plus our backend.
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=ssl_context, max_keepalive_connections=0, http1=True, http2=False,
        local_address=source, network_backend=backend, retries=0,
    )
    client = httpx.AsyncClient(
        transport=transport, trust_env=False, follow_redirects=False,
        timeout=httpx.Timeout(timeout),
        headers={"user-agent": user_agent, "accept": "text/html,application/xhtml+xml,*/*;q=0.8",
                 "accept-language": "ru,kk;q=0.9,en;q=0.8", "accept-encoding": "gzip, deflate"},
    )
    return client, backend


def extract_title(body: bytes) -> str:
    m = _TITLE.search(body[:65536])
    if not m:
        return ""
    raw = m.group(1)
    text = raw.decode(_charset(body), errors="replace")
    return " ".join(html.unescape(text).split())[:300]


def _charset(body: bytes, header: str | None = None) -> str:
    if header:
        m = re.search(r"charset=([A-Za-z0-9_\-]+)", header)
        if m:
            return _known(m.group(1))
    m = _META_CHARSET.search(body[:4096])
    return _known(m.group(1).decode("ascii", "replace")) if m else "utf-8"


def _known(name: str) -> str:
    import codecs

    try:
        return codecs.lookup(name).name
    except LookupError:
        return "utf-8"


class _Decoder:
    """Incremental gzip/deflate decoding with a hard output cap (decompression bombs)."""

    def __init__(self, encoding: str):
        enc = encoding.strip().lower()
        if enc in ("gzip", "x-gzip"):
            self._z: Any = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        elif enc == "deflate":
            self._z = zlib.decompressobj()
            self._raw_deflate_tried = False
        else:
            self._z = None

    def feed(self, data: bytes, room: int) -> bytes:
        if self._z is None:
            return data[:room]
        try:
            return self._z.decompress(self._z.unconsumed_tail + data, room) if room > 0 else b""
        except zlib.error:
            if getattr(self, "_raw_deflate_tried", True):
                raise
            self._raw_deflate_tried = True
            self._z = zlib.decompressobj(-zlib.MAX_WBITS)  # "deflate" without the zlib header
            return self._z.decompress(data, room)


async def fetch(client: httpx.AsyncClient, backend: PinnedBackend, url: str, *,
                body_limit: int, match: Matcher | None = None) -> HttpResult:
    res = HttpResult()
    t0 = time.perf_counter()
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        hop = HttpHop(url=current)
        res.hops.append(hop)
        h0 = time.perf_counter()
        try:
            req = client.build_request("GET", current)
            resp = await client.send(req, stream=True)
        except (httpx.HTTPError, OSError, ssl.SSLError) as exc:
            hop.failure = res.failure = (
                F.DNS_NO_ANSWER if isinstance(exc.__cause__ or exc.__context__, NoAddress)
                or "no address for" in str(exc) else backend.classify(exc)
            )
            hop.address = backend.last_address
            hop.t_ms = _ms(h0)
            break
        hop.address = backend.last_address
        hop.status = resp.status_code
        hop.headers = [[k, v] for k, v in resp.headers.multi_items()]
        ttfb = _ms(h0)
        if resp.status_code in _REDIRECTS and "location" in resp.headers:
            await resp.aclose()
            hop.location = urljoin(current, resp.headers["location"])
            hop.t_ms = _ms(h0)
            if urlsplit(hop.location).scheme not in ("http", "https"):
                res.failure = F.HTTP_PROTOCOL_ERROR
                break
            current = hop.location
            continue
        # final response: read the body under the cap
        res.final_url = current
        res.status = resp.status_code
        res.headers = {k.lower(): v for k, v in resp.headers.items()}
        res.ttfb_ms = ttfb
        b0 = time.perf_counter()
        body, truncated, failure = await _read_body(resp, body_limit, backend)
        res.transfer_ms = _ms(b0)
        hop.t_ms = _ms(h0)
        res.body_truncated = truncated
        res.failure = failure
        res.body_length = len(body)
        res.body_sha256 = hashlib.sha256(body).hexdigest()
        res.title = extract_title(body)
        if match is not None:
            res.fingerprints = match(body, res.headers, res.status)
            if res.fingerprints:
                res.body_excerpt = body[:EXCERPT_BYTES].decode(
                    _charset(body, res.headers.get("content-type")), errors="replace")
        break
    else:
        res.failure = F.HTTP_TOO_MANY_REDIRECTS
    res.t_ms = _ms(t0)
    return res


async def _read_body(resp: httpx.Response, limit: int, backend: PinnedBackend | None = None
                     ) -> tuple[bytes, bool, str | None]:
    decoder = _Decoder(resp.headers.get("content-encoding", ""))
    parts: list[bytes] = []
    size = 0
    wire = 0
    truncated = False
    failure = None
    try:
        async for chunk in resp.aiter_raw():
            wire += len(chunk)
            out = decoder.feed(chunk, limit - size)
            parts.append(out)
            size += len(out)
            if size >= limit or wire > limit * 4:
                truncated = True
                break
    except (httpx.HTTPError, OSError, ssl.SSLError) as exc:
        failure = backend.classify(exc) if backend else F.classify(exc)
    except zlib.error:
        failure = F.HTTP_PROTOCOL_ERROR
    finally:
        await resp.aclose()
    return b"".join(parts), truncated, failure


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 2)
