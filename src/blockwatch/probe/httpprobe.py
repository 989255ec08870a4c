"""HTTP(S) step: GET through at most 10 redirects, over connections our TCP/TLS step opened to
addresses chosen by the vantage's own DNS (so a lying resolver's address is what gets fetched),
with a body cap that also bounds decompression."""

from __future__ import annotations

import asyncio
import hashlib
import html
import re
import time
import zlib
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import SplitResult, quote, urljoin, urlsplit

import dns.exception
import dns.name
import h11

from blockwatch.probe import failures as F
from blockwatch.probe.records import HttpHop, HttpResult

MAX_REDIRECTS = 10
# One hop's request, response and body together end after this many read timeouts: a censor
# that drips bytes just faster than the read timeout would otherwise hold the probe for hours.
EXCHANGE_TIMEOUTS = 3
EXCERPT_BYTES = 2048
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title\s*>", re.I | re.S)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset=["']?([A-Za-z0-9_\-]+)""", re.I)
_REDIRECTS = {301, 302, 303, 307, 308}

Matcher = Callable[[bytes, dict[str, str], int | None], list[str]]


Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]
# Opens a connection to (host, port), with TLS when asked: (address, stream or None, failure),
# optionally followed by the step that failed (dns | tcp | tls)
Connect = Callable[[str, int, bool], Awaitable[tuple[Any, ...]]]


class _Failed(Exception):
    def __init__(self, failure: str):
        super().__init__(failure)
        self.failure = failure


class _Exchange:
    """One HTTP/1.1 request and response on an open connection, spoken with h11 (the protocol
    engine under httpx). httpx itself is not used here: its client, pool and URL machinery cost
    more CPU per probe than the request did, and every connection comes from our own TCP/TLS
    step anyway (pinned to the vantage's DNS answer, same SNI and trust store)."""

    def __init__(self, stream: Stream, timeout: float, deadline: float | None = None):
        self.reader, self.writer = stream
        self.timeout = timeout
        self.deadline = deadline  # loop time at which the whole exchange ends
        self.deadline_hit = False  # ended by the deadline, not by a silent read timeout
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=64 * 1024)
        self.eof = False

    def send(self, target: str, headers: list[tuple[str, str]]) -> None:
        try:
            data = self.h11.send(h11.Request(method="GET", target=target, headers=headers))
            data += self.h11.send(h11.EndOfMessage())  # type: ignore[operator]
        except h11.LocalProtocolError as exc:  # a URL h11 will not put on the wire
            raise _Failed(F.HTTP_PROTOCOL_ERROR) from exc
        # the connection waited while other addresses were tried: the peer may have reset it
        # (uvloop then refuses the write with RuntimeError; asyncio drops it silently)
        if self.writer.transport.is_closing():
            raise _Failed(self._lost())
        try:
            self.writer.write(data)  # type: ignore[arg-type]
        except (RuntimeError, OSError) as exc:
            raise _Failed(self._lost()) from exc

    def _lost(self) -> str:
        exc = self.reader.exception()
        return F.classify(exc) if exc is not None else F.EOF_ERROR

    async def next(self) -> Any:
        while True:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as exc:
                raise _Failed(F.EOF_ERROR if self.eof else F.HTTP_PROTOCOL_ERROR) from exc
            if event is not h11.NEED_DATA:
                if isinstance(event, h11.ConnectionClosed):
                    raise _Failed(F.EOF_ERROR)
                return event
            wait = self.timeout
            if self.deadline is not None:
                wait = min(wait, self.deadline - asyncio.get_running_loop().time())
                if wait <= 0:
                    self.deadline_hit = True
                    raise _Failed(F.GENERIC_TIMEOUT)
            try:
                async with asyncio.timeout(wait):
                    data = await self.reader.read(65536)
            except TimeoutError as exc:
                self.deadline_hit = wait < self.timeout
                raise _Failed(F.GENERIC_TIMEOUT) from exc
            except (OSError, EOFError) as exc:
                raise _Failed(F.classify(exc)) from exc
            self.eof = not data
            self.h11.receive_data(data)

    async def response(self) -> h11.Response:
        while True:
            event = await self.next()
            if isinstance(event, h11.Response):
                return event
            if not isinstance(event, h11.InformationalResponse):  # 1xx: wait for the real one
                raise _Failed(F.HTTP_PROTOCOL_ERROR)

    async def body(self, limit: int, encoding: str) -> tuple[bytes, bool, str | None, int]:
        """The decoded body under the cap (the wire is capped too: a body that decodes to
        nothing must still end), whether it was cut, the failure that ended it, and the bytes
        received on the wire (also of a body a failure or the deadline cut short)."""
        decoder = _Decoder(encoding)
        parts: list[bytes] = []
        size = wire = 0
        truncated = False
        failure = None
        while True:
            try:
                event = await self.next()
            except _Failed as exc:
                failure = exc.failure
                break
            if not isinstance(event, h11.Data):
                break  # EndOfMessage
            wire += len(event.data)
            try:
                out = decoder.feed(bytes(event.data), limit - size)
            except zlib.error:
                failure = F.HTTP_PROTOCOL_ERROR
                break
            parts.append(out)
            size += len(out)
            if size >= limit or wire > limit * 4:
                truncated = True
                break
        return b"".join(parts), truncated, failure, wire

    def close(self) -> None:
        self.writer.close()


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


_SAFE = "/%:@!$&'()*+,;=-._~?#[]"


def _target(parts: SplitResult) -> str:
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return quote(target, safe=_SAFE)  # non-ASCII and spaces percent-encoded, as browsers do


def _host_header(host: str, port: int, https: bool) -> str:
    try:
        host.encode("ascii")
    except UnicodeEncodeError:
        host = host.encode("idna").decode("ascii")
    if ":" in host:
        host = f"[{host}]"
    return host if port == (443 if https else 80) else f"{host}:{port}"


def request_headers(host: str, user_agent: str) -> list[tuple[str, str]]:
    return [("host", host), ("user-agent", user_agent),
            ("accept", "text/html,application/xhtml+xml,*/*;q=0.8"),
            ("accept-language", "ru,kk;q=0.9,en;q=0.8"), ("accept-encoding", "gzip, deflate"),
            ("connection", "close")]


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


async def fetch(url: str, *, opened: dict[tuple[str, int], tuple[str, Stream]], connect: Connect,
                body_limit: int, user_agent: str, timeout: float, match: Matcher | None = None
                ) -> HttpResult:
    """GET `url`, following redirects. A connection in `opened` (the TCP/TLS step's) is used for
    its (host, port) first; other hops get theirs from `connect`."""
    res = HttpResult()
    t0 = time.perf_counter()
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        hop = HttpHop(url=current)
        res.hops.append(hop)
        h0 = time.perf_counter()
        try:  # a Location header can hold anything: a URL we cannot request is the server's error
            parts = urlsplit(current)
            https = parts.scheme == "https"
            host = parts.hostname or ""
            port = parts.port or (443 if https else 80)
            host_header = _host_header(host, port, https)
            if (host, port) not in opened:  # a redirect: what DNS will be asked must be a name
                dns.name.from_text(host)
        except (ValueError, UnicodeError, dns.exception.DNSException):
            hop.failure = res.failure = F.HTTP_PROTOCOL_ERROR
            hop.step = "http"
            hop.t_ms = _ms(h0)
            break
        ready = opened.pop((host, port), None)
        if ready is not None:
            hop.address, stream = ready
        else:
            got = await connect(host, port, https)
            hop.address, stream, failure = got[:3]
            if stream is None:
                hop.failure = res.failure = failure or F.UNKNOWN
                hop.step = got[3] if len(got) > 3 else _step_of(hop.address, hop.failure, https)
                hop.t_ms = _ms(h0)
                break
        ex = _Exchange(stream, timeout,
                       asyncio.get_running_loop().time() + timeout * EXCHANGE_TIMEOUTS)
        try:
            try:
                ex.send(_target(parts), request_headers(host_header, user_agent))
                resp = await ex.response()
            except _Failed as exc:
                hop.failure = res.failure = exc.failure
                hop.step = "http"
                hop.t_ms = _ms(h0)
                break
            pairs = [(_text(k), _text(v)) for k, v in resp.headers]
            headers: dict[str, str] = {}
            for k, v in pairs:
                headers[k] = f"{headers[k]}, {v}" if k in headers else v
            hop.status = resp.status_code
            hop.headers = [[k, v] for k, v in pairs]
            ttfb = _ms(h0)
            if resp.status_code in _REDIRECTS and "location" in headers:
                hop.t_ms = _ms(h0)
                try:
                    hop.location = urljoin(current, headers["location"].strip())
                    scheme = urlsplit(hop.location).scheme
                except ValueError:  # e.g. "http://[::1" or a netloc NFKC normalisation rejects
                    scheme = ""
                if scheme not in ("http", "https"):
                    res.failure = F.HTTP_PROTOCOL_ERROR
                    break
                current = hop.location
                continue
            # final response: read the body under the cap
            res.final_url = current
            res.status = resp.status_code
            res.headers = headers
            res.ttfb_ms = ttfb
            b0 = time.perf_counter()
            body, truncated, failure, wire = await ex.body(body_limit,
                                                           headers.get("content-encoding", ""))
        finally:
            ex.close()
        res.transfer_ms = _ms(b0)
        res.received_bytes = wire
        res.deadline_exceeded = ex.deadline_hit
        hop.t_ms = _ms(h0)
        res.body_truncated = truncated
        res.failure = failure
        if failure is not None:
            hop.failure, hop.step = failure, "http"
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


def _step_of(address: str | None, failure: str | None, https: bool) -> str:
    """The failed step of a connection whose opener did not say (an older Connect)."""
    if address is None:
        return "dns"
    if https and failure is not None and failure.startswith("ssl_"):
        return "tls"
    return "tcp"


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 2)
