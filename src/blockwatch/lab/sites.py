"""Sites, hosts (one address serving one or many sites) and the per-connection handler."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import certs
from .behaviour import ACCEPT_KINDS, SERVE, Behaviour
from .dnsserver import Zone, doh_exchange
from .net import discard_until_eof, peek_first_record, rst_close
from .tlsinfo import parse_client_hello
from .web import Page, Request, read_request, write_response

if TYPE_CHECKING:
    from .core import Lab


@dataclass
class Connection:
    """One accepted TCP connection, filled in as the server learns more."""

    peer: tuple[str, int]
    local: tuple[str, int]
    scheme: str  # "http" | "https" (which lab port was hit)
    time: float = field(default_factory=time.monotonic)
    site: str | None = None  # site name, once known
    tls: bool | None = None  # https port: did the client send a TLS record?
    sni: str | None = None
    alpn: list[str] = field(default_factory=list)
    tls_version: str | None = None
    method: str | None = None
    path: str | None = None
    host: str | None = None  # Host header (without port)
    headers: dict[str, str] = field(default_factory=dict)
    action: str | None = None  # the behaviour kind applied
    status: int | None = None  # HTTP status sent
    error: str | None = None

    @property
    def source(self) -> str:
        return self.peer[0]


class Site:
    """A website: names, content, and behaviour per client source. Create with Lab.add_site."""

    def __init__(
        self,
        lab: Lab,
        name: str,
        aliases: tuple[str, ...],
        page: Page,
        default: list[Behaviour],
        by_source: dict[str, list[Behaviour]],
        http_to_https: bool,
    ) -> None:
        self.lab = lab
        self.name = name
        self.names = (name, *aliases)
        self.page = page
        self.pages: dict[str, Page] = {}
        self.default = default
        self.by_source = by_source
        self.http_to_https = http_to_https
        self.host: Host | None = None
        self.address = ""  # the primary address (what the control resolver answers)
        self.addresses: dict[str, str] = {}  # source ip -> address its resolver answers
        self.twins: dict[tuple[str, str], Host] = {}  # listener modes -> extra address
        self.ttl = 300
        self.dns = True  # publish A records in the lab resolvers
        self.auto_dns: dict[str, Any] = {}  # source -> the DNSReply the lab published
        self.doh: tuple[Zone, str] | None = None  # (zone, path) when this is a DoH server
        self.connections: list[Connection] = []
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    def __repr__(self) -> str:
        return f"<Site {self.name} at {self.address}>"

    # -- content --------------------------------------------------------------------------
    def add_page(self, path: str, page: Page | None = None, **kwargs: Any) -> Page:
        """Content for one path (exact match, query string included if given)."""
        page = page or Page(**kwargs)
        self.pages[path] = page
        return page

    def page_for(self, path: str) -> Page:
        return self.pages.get(path) or self.pages.get(path.split("?", 1)[0]) or self.page

    # -- behaviour ------------------------------------------------------------------------
    def behaviours_for(self, source: str) -> list[Behaviour]:
        return self.by_source.get(source, self.default)

    def pick(self, source: str, scheme: str, name: str | None, known: bool) -> Behaviour | None:
        """The behaviour for this source/port/name; None when it depends on a name not known yet."""
        for b in self.behaviours_for(source):
            if scheme not in b.scope:
                continue
            if b.match is not None and b.kind not in ("refuse", "blackhole_connect"):
                if not known:
                    return None
                if not b.matches(name):
                    continue
            return b
        return SERVE

    async def set_behaviour(self, **roles: Behaviour | list[Behaviour] | None) -> None:
        """Change behaviours: keywords behaviour= (default), vantage=, control=, vantage2=."""
        await self.lab._rebehave(self, roles)

    # -- log ------------------------------------------------------------------------------
    def _record(self, conn: Connection) -> None:
        conn.site = self.name
        self.connections.append(conn)
        for n, fut in list(self._waiters):
            if len(self.connections) >= n and not fut.done():
                fut.set_result(None)

    def connections_from(self, source: str) -> list[Connection]:
        return [c for c in self.connections if c.source == source]

    @property
    def requests(self) -> list[Connection]:
        """Connections on which an HTTP request was read."""
        return [c for c in self.connections if c.path is not None]

    async def wait_for_connections(self, n: int = 1, timeout: float = 2.0) -> list[Connection]:
        if len(self.connections) < n:
            fut = asyncio.get_running_loop().create_future()
            entry = (n, fut)
            self._waiters.append(entry)
            try:
                await asyncio.wait_for(fut, timeout)
            finally:
                self._waiters.remove(entry)
        return self.connections


class Host:
    """One address with, per lab port, a mode: accept (served), refuse, or blackhole."""

    def __init__(self, address: str, modes: tuple[str, str], primary: bool) -> None:
        self.address = address
        self.modes = modes  # (http mode, https mode)
        self.primary = primary
        self.sites: list[Site] = []
        self.by_name: dict[str, Site] = {}
        self.sockets: list[socket.socket] = []

    def __repr__(self) -> str:
        return f"<Host {self.address} {self.modes} {len(self.sites)} sites>"

    def add(self, site: Site) -> None:
        self.sites.append(site)
        for name in site.names:
            self.by_name.setdefault(name, site)

    def site_for(self, name: str | None) -> Site:
        if name:
            site = self.by_name.get(name.lower().rstrip("."))
            if site is not None:
                return site
        return self.sites[0]

    def context(self) -> ssl.SSLContext:
        """One certificate for every name served on this address (cached)."""
        names: list[str] = []
        for site in self.sites:
            names.extend(site.names)
        return certs.server_context(names)


def _tls_context(host: Host, site: Site, b: Behaviour, sni: str | None) -> ssl.SSLContext:
    if b.kind == "mitm":
        return certs.server_context([sni or site.name], issuer=b.issuer)
    if b.kind in ("wrong_name", "blockpage"):
        return certs.server_context([b.cert_name])
    if b.kind == "expired":
        return certs.server_context(site.names, expired=True)
    return host.context()


async def _server_stream(
    sock: socket.socket, ctx: ssl.SSLContext | None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=64 * 1024)
    protocol = asyncio.StreamReaderProtocol(reader)
    transport, _ = await loop.connect_accepted_socket(
        lambda: protocol, sock, ssl=ctx, ssl_handshake_timeout=10.0 if ctx else None
    )
    return reader, asyncio.StreamWriter(transport, protocol, reader, loop)


async def _discard_stream(reader: asyncio.StreamReader) -> None:
    with contextlib.suppress(OSError, ssl.SSLError):
        while await reader.read(65536):
            pass


def _rst_writer(writer: asyncio.StreamWriter) -> None:
    raw = writer.get_extra_info("socket")
    if raw is not None:
        rst_close(raw)
    writer.transport.abort()


async def handle_connection(
    lab: Lab, host: Host, port: int, sock: socket.socket, peer: tuple[str, int]
) -> None:
    scheme = "https" if port == lab.https_port else "http"
    source = peer[0]
    conn = Connection(peer=(peer[0], peer[1]), local=(host.address, port), scheme=scheme)
    lab.connections.append(conn)
    writer: asyncio.StreamWriter | None = None
    graceful = False
    try:
        site: Site | None = host.sites[0] if len(host.sites) == 1 else None
        if site is not None:
            site._record(conn)
            b = site.pick(source, scheme, None, known=False)
            if b is not None and b.kind in ACCEPT_KINDS:
                await _accept_level(lab, conn, b, sock)
                return

        if scheme == "https":
            data = await peek_first_record(sock)
            if not data:
                conn.action = "closed_by_peer"
                return
            hello = parse_client_hello(data)
            conn.tls, conn.sni, conn.alpn = hello.is_tls, hello.sni, hello.alpn
            if site is None:
                site = host.site_for(hello.sni)
                site._record(conn)
            b = site.pick(source, scheme, hello.sni, known=True) or SERVE
            if b.kind in ACCEPT_KINDS:
                await _accept_level(lab, conn, b, sock)
                return
            if b.kind == "tls_reset_after_hello":
                conn.action = b.kind
                rst_close(sock)
                return
            if b.kind == "tls_stall_after_hello":
                conn.action = b.kind
                await discard_until_eof(sock)
                return
            ctx = _tls_context(host, site, b, hello.sni)
            wait = lab.latency + (b.seconds if b.kind == "delay" else 0.0)
            wait += b.handshake_delay if b.kind == "throttle" else 0.0
            if wait > 0:
                await asyncio.sleep(wait)
            conn.action = b.kind  # provisional: the handshake may fail
            reader, writer = await _server_stream(sock, ctx)
            ssl_object = writer.get_extra_info("ssl_object")
            conn.tls_version = ssl_object.version() if ssl_object else None
        else:
            reader, writer = await _server_stream(sock, None)

        request = await read_request(reader)
        if request is None:
            conn.action = conn.action or "no_request"
            return
        conn.method, conn.path, conn.host = request.method, request.path, request.host
        conn.headers = request.headers
        if site is None:
            site = host.site_for(request.host)
            site._record(conn)
        name = conn.sni if scheme == "https" else request.host
        b = site.pick(source, scheme, name, known=True) or SERVE
        conn.action = b.kind
        if b.kind in ("reset", "refuse", "http_reset_after_request"):
            _rst_writer(writer)
            return
        if b.kind in ("blackhole_accept", "blackhole_connect", "http_stall_after_request"):
            await _discard_stream(reader)
            return
        if site.doh is not None and request.path.split("?", 1)[0] == site.doh[1]:
            graceful = await _respond_doh(lab, site.doh[0], request, reader, writer, conn)
            return
        await _respond(lab, site, b, scheme, request, writer, conn)
        graceful = True
    except (OSError, ssl.SSLError, asyncio.IncompleteReadError, EOFError) as exc:
        conn.error = f"{type(exc).__name__}: {exc}"
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a lab bug: keep it for lab.errors, never crash the server
        conn.error = f"{type(exc).__name__}: {exc}"
        lab.tasks.errors.append(exc)
    finally:
        if writer is None:
            with contextlib.suppress(OSError):
                sock.close()
        elif not graceful:
            writer.transport.abort()
        else:
            writer.close()
            try:
                await asyncio.wait_for(writer.wait_closed(), 1.0)
            except asyncio.CancelledError:
                writer.transport.abort()
                raise
            except Exception:
                writer.transport.abort()


async def _respond_doh(
    lab: Lab,
    zone: Zone,
    request: Request,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    conn: Connection,
) -> bool:
    try:
        result = doh_exchange(zone, request.method, request.path, request.body, conn.source)
    except ValueError as exc:
        conn.status = 400
        await write_response(writer, 400, [("Content-Type", "text/plain")], str(exc).encode())
        return True
    if result is None:  # drop: never answer
        conn.action = "doh_drop"
        await _discard_stream(reader)
        return False
    delay, wire = result
    if delay + lab.latency > 0:
        await asyncio.sleep(delay + lab.latency)
    conn.status = 200
    await write_response(writer, 200, [("Content-Type", "application/dns-message")], wire)
    return True


async def _accept_level(lab: Lab, conn: Connection, b: Behaviour, sock: socket.socket) -> None:
    conn.action = b.kind
    if b.kind in ("reset", "refuse"):  # refuse here: the closest emulation on a live address
        rst_close(sock)
    else:  # blackhole_accept, blackhole_connect
        await discard_until_eof(sock)


async def _respond(
    lab: Lab,
    site: Site,
    b: Behaviour,
    scheme: str,
    request: Request,
    writer: asyncio.StreamWriter,
    conn: Connection,
) -> None:
    wait = lab.latency + (b.seconds if b.kind == "delay" else 0.0)
    if wait > 0:
        await asyncio.sleep(wait)
    if b.kind == "blockpage":
        status = b.status
        headers = [("Content-Type", "text/html; charset=utf-8")]
        body = b.html
    elif scheme == "http" and site.http_to_https:
        host = request.host or site.name
        location = f"https://{host}:{lab.https_port}{request.path}"
        status, headers, body = 301, [("Location", location)], b""
    else:
        status, headers, body = site.page_for(request.path).render(request)
    conn.status = status
    await write_response(
        writer,
        status,
        headers,
        body,
        head_only=request.method == "HEAD",
        rate=b.rate if b.kind == "throttle" else None,
    )
