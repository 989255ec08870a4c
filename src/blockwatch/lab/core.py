"""The Lab: ports, resolvers, site placement and cleanup."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import trustme

from . import certs
from .behaviour import Behaviour
from .config import probe_config
from .dnsserver import DNS, DNSReply, DNSServer, Zone, normalize
from .doh import DoHServer
from .net import (
    ANCHOR,
    CONTROL,
    CONTROL_RESOLVER,
    CONTROL_RESOLVER2,
    VANTAGE,
    VANTAGE2,
    VANTAGE2_RESOLVER,
    VANTAGE_RESOLVER,
    TaskSet,
    blackhole_socket,
    bound_socket,
    is_addr_in_use,
    listening_socket,
    site_addresses,
)
from .sites import Connection, Host, Site, handle_connection
from .web import BodySource, Page

ROLES = {"vantage": VANTAGE, "control": CONTROL, "vantage2": VANTAGE2}
RESOLVERS = {VANTAGE: VANTAGE_RESOLVER, CONTROL: CONTROL_RESOLVER, VANTAGE2: VANTAGE2_RESOLVER}
# (address, whose zone it answers): every resolver serves UDP and TCP on the lab's DNS port and
# DoH on its https port; the control has a second one, as the shipped control list does
SERVERS = [*((a, s) for s, a in RESOLVERS.items()), (CONTROL_RESOLVER2, CONTROL)]
ACCEPT_MODES = ("accept", "accept")

BehaviourArg = Behaviour | Sequence[Behaviour] | None


def default_body(name: str) -> bytes:
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{name}</title></head>"
        f"<body><h1>{name}</h1><p>Independent news from {name}.</p></body></html>"
    ).encode()


def _as_list(value: BehaviourArg) -> list[Behaviour] | None:
    if value is None:
        return None
    items = [value] if isinstance(value, Behaviour) else list(value)
    for item in items:
        if not isinstance(item, Behaviour):
            raise TypeError(f"expected a Behaviour, got {item!r}")
    return items


def _modes(behaviours: list[Behaviour]) -> tuple[str, str]:
    """Listener mode per port (http, https), from the first behaviour in scope for it."""
    modes = []
    for scheme in ("http", "https"):
        first = next((b for b in behaviours if scheme in b.scope), None)
        kind = first.kind if first else "serve"
        modes.append({"refuse": "refuse", "blackhole_connect": "blackhole"}.get(kind, "accept"))
    return modes[0], modes[1]


class Lab:
    """An in-process network: sites on 127.0.1.x, three resolvers, per-source behaviours."""

    VANTAGE = VANTAGE
    CONTROL = CONTROL
    VANTAGE2 = VANTAGE2

    def __init__(self, *, latency: float = 0.0) -> None:
        self.latency = latency  # added to every DNS reply and server step (read at run time)
        self.http_port = 0
        self.https_port = 0
        self.dns_port = 0
        self.tasks = TaskSet()
        self.sites: dict[str, Site] = {}  # every name (aliases too) -> site
        self.hosts: list[Host] = []
        self.connections: list[Connection] = []  # every connection on every site address
        self._genuine: dict[str, DNSReply] = {}
        self.vantage_dns = Zone("vantage", self._genuine.get)
        self.control_dns = Zone("control", self._genuine.get)
        self.vantage2_dns = Zone("vantage2", self._genuine.get)
        self.zones = {VANTAGE: self.vantage_dns, CONTROL: self.control_dns}
        self.zones[VANTAGE2] = self.vantage2_dns
        self._hosts_by_address: dict[str, Host] = {}
        self._addresses = site_addresses()
        self._sockets: list[socket.socket] = []
        self._dns_servers: list[DNSServer] = []
        self.doh_servers: dict[str, DoHServer] = {}  # resolver address -> its DoH server
        self._tmpdir: Path | None = None
        self.ca_pem_path = ""
        self.started = False
        self.closed = False

    # -- lifecycle ------------------------------------------------------------------------
    async def __aenter__(self) -> Lab:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> Lab:
        if self.started:
            return self
        self.started = True
        try:
            for attr in ("http_port", "https_port"):
                anchor = bound_socket(ANCHOR, 0)
                self._sockets.append(anchor)
                setattr(self, attr, anchor.getsockname()[1])
            self.dns_port, pairs = self._bind_dns_sockets()
            for source, udp, tcp in pairs:
                server = DNSServer(self.zones[source], udp, tcp, self.tasks, lambda: self.latency)
                self._dns_servers.append(server)
                await server.start()
            for address, source in SERVERS:
                doh = DoHServer(self.zones[source], listening_socket(address, self.https_port),
                                self.tasks, lambda: self.latency)
                self.doh_servers[address] = doh
                await doh.start()
            self._tmpdir = Path(tempfile.mkdtemp(prefix="blockwatch-lab-"))
            pem = self._tmpdir / "lab-ca.pem"
            self.ca.cert_pem.write_to_path(str(pem))
            self.ca_pem_path = str(pem)
        except BaseException:
            await self.close()
            raise
        return self

    def _bind_dns_sockets(self) -> tuple[int, list[tuple[str, socket.socket, socket.socket]]]:
        for _ in range(50):
            opened: list[socket.socket] = []
            try:
                first = bound_socket(VANTAGE_RESOLVER, 0, socket.SOCK_DGRAM)
                opened.append(first)
                port = first.getsockname()[1]
                pairs = []
                for address, source in SERVERS:
                    udp = first if address == VANTAGE_RESOLVER else None
                    if udp is None:
                        udp = bound_socket(address, port, socket.SOCK_DGRAM)
                        opened.append(udp)
                    tcp = bound_socket(address, port, reuse=True)
                    opened.append(tcp)
                    pairs.append((source, udp, tcp))
                return port, pairs
            except OSError as exc:
                for sock in opened:
                    sock.close()
                if not is_addr_in_use(exc):
                    raise
        raise RuntimeError("no free DNS port for the lab resolvers")

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        await self.tasks.close()
        for server in self._dns_servers:
            server.close()
        for doh in self.doh_servers.values():
            doh.close()
        for host in self.hosts:
            for sock in host.sockets:
                sock.close()
        for sock in self._sockets:
            sock.close()
        # Let aborted transports run their connection_lost callbacks (they close sockets).
        for _ in range(3):
            await asyncio.sleep(0)
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)

    # -- facts for clients ----------------------------------------------------------------
    @property
    def ca(self) -> trustme.CA:
        return certs.lab_ca()

    @property
    def errors(self) -> list[BaseException]:
        """Unexpected exceptions inside lab servers (should stay empty)."""
        return self.tasks.errors

    def ssl_context(self) -> Any:
        """A fresh client ssl.SSLContext trusting only the lab CA."""
        return certs.client_context()

    def resolver(self, role: str = "vantage") -> tuple[str, int]:
        """(ip, port) of a resolver: role is vantage, control, vantage2 or a source ip."""
        return RESOLVERS[ROLES.get(role, role)], self.dns_port

    @property
    def vantage_resolver(self) -> str:
        return f"{VANTAGE_RESOLVER}:{self.dns_port}"

    @property
    def control_resolver(self) -> str:
        return f"{CONTROL_RESOLVER}:{self.dns_port}"

    @property
    def vantage2_resolver(self) -> str:
        return f"{VANTAGE2_RESOLVER}:{self.dns_port}"

    def doh_url(self, role: str = "control") -> str:
        """The DoH URL of a resolver (role: vantage, control, vantage2 or a source ip)."""
        return self.doh_servers[RESOLVERS[ROLES.get(role, role)]].url

    @property
    def control_resolvers(self) -> list[str]:
        """The control's resolvers shaped like the shipped `[control] resolvers`: two UDP
        resolvers (lab ports are never 53, so both carry one) and a DoH URL."""
        return [self.control_resolver, f"{CONTROL_RESOLVER2}:{self.dns_port}", self.doh_url()]

    def probe_config(self, targets: str, *, probe: str = "", country: str = "") -> str:
        """`config.probe_config` for this lab: [probe], [control] and the local vantage "kz"."""
        return probe_config(targets=targets, ca=self.ca_pem_path, probe=probe, country=country,
                            vantage_resolver=self.vantage_resolver,
                            control_resolvers=self.control_resolvers)

    def dns(self, role: str) -> Zone:
        """The zone of a resolver, by role (vantage, control, vantage2) or source ip."""
        return self.zones[ROLES.get(role, role)]

    def url(self, name: str, path: str = "/", scheme: str = "https") -> str:
        port = self.https_port if scheme == "https" else self.http_port
        return f"{scheme}://{name}:{port}{path}"

    def site(self, name: str) -> Site:
        return self.sites[normalize(name)]

    @property
    def all_sites(self) -> list[Site]:
        """Each site once (`sites` maps every name, aliases included)."""
        return list({id(s): s for s in self.sites.values()}.values())

    # -- sites ----------------------------------------------------------------------------
    async def add_site(
        self,
        name: str,
        *,
        aliases: Iterable[str] = (),
        body: BodySource | None = None,
        status: int = 200,
        headers: dict[str, str] | list[tuple[str, str]] | None = None,
        content_type: str = "text/html; charset=utf-8",
        gzip: bool = False,
        size: int | None = None,
        redirect: str | None = None,
        http_to_https: bool = False,
        behaviour: BehaviourArg = None,
        vantage: BehaviourArg = None,
        control: BehaviourArg = None,
        vantage2: BehaviourArg = None,
        address: str | Site | None = None,
        dns: bool = True,
        ttl: int = 300,
    ) -> Site:
        """Add a site. Behaviours: `behaviour` for every source not named, then per role.

        Each site gets its own address unless `address` names an existing one (or a Site to
        share with: virtual hosting by SNI/Host). DNS A records for all its names go into the
        three resolvers (each source's resolver answers the address meant for that source).
        """
        if not self.started or self.closed:
            raise RuntimeError("start the lab first (async with Lab() as lab)")
        name = normalize(name)
        names = (name, *(normalize(a) for a in aliases))
        for n in names:
            if n in self.sites:
                raise ValueError(f"site {n!r} exists")
        page = Page(
            body=default_body(name) if body is None else body,
            status=status,
            headers=headers or {},
            content_type=content_type,
            gzip=gzip,
            size=size,
            redirect=redirect,
        )
        by_source = {}
        for role, value in (("vantage", vantage), ("control", control), ("vantage2", vantage2)):
            items = _as_list(value)
            if items is not None:
                by_source[ROLES[role]] = items
        site = Site(self, name, names[1:], page, _as_list(behaviour) or [], by_source, http_to_https)
        site.ttl, site.dns = ttl, dns
        await self._place(site, address)
        for n in names:
            self.sites[n] = site
        return site

    async def add_doh(
        self,
        name: str = "dns.lab.test",
        *,
        zone: str | Zone = "control",
        path: str = "/dns-query",
        **kwargs: Any,
    ) -> Site:
        """A DNS-over-HTTPS server (RFC 8484, GET and POST) answering from `zone` (a Zone or a
        role: vantage, control, vantage2) at https://{name}:{https_port}{path}. Other add_site
        options apply (e.g. vantage=Behaviour.tls_reset_after_hello to block DoH itself)."""
        site = await self.add_site(name, **kwargs)
        site.doh = (zone if isinstance(zone, Zone) else self.dns(zone), path)
        return site

    async def add_sites(
        self, names: Iterable[str], *, sites_per_address: int = 50, **kwargs: Any
    ) -> list[Site]:
        """Many sites cheaply: `sites_per_address` names share one address (and one cert)."""
        sites: list[Site] = []
        for i, name in enumerate(names):
            share = sites[i - i % sites_per_address] if i % sites_per_address else None
            sites.append(await self.add_site(name, address=share, **kwargs))
        return sites

    async def _place(self, site: Site, address: str | Site | None) -> None:
        modes = {src: _modes(site.behaviours_for(src)) for src in (CONTROL, VANTAGE, VANTAGE2)}
        primary_modes = modes[CONTROL]
        if address is not None:
            addr = address.address if isinstance(address, Site) else address
            host = self._hosts_by_address.get(addr) or await self._new_host(
                ACCEPT_MODES, primary=True, address=addr
            )
            if host.modes != primary_modes or not host.primary:
                raise ValueError(
                    f"cannot share {addr}: the control's behaviour of {site.name} needs "
                    f"listener modes {primary_modes}, the address has {host.modes}"
                )
        else:
            host = await self._new_host(primary_modes, primary=True)
        host.add(site)
        site.host, site.address = host, host.address
        await self._assign_addresses(site, modes)

    async def _assign_addresses(self, site: Site, modes: dict[str, tuple[str, str]]) -> None:
        assert site.host is not None
        for src, mode in modes.items():
            if mode == site.host.modes:
                site.addresses[src] = site.address
                continue
            twin = site.twins.get(mode)
            if twin is None:
                twin = await self._new_host(mode, primary=False)
                twin.add(site)
                site.twins[mode] = twin
            site.addresses[src] = twin.address
        if not site.dns:
            return
        genuine = DNS.answer([site.address], ttl=site.ttl)
        for n in site.names:
            self._genuine[n] = genuine
        for src, zone in self.zones.items():
            reply = DNS.answer([site.addresses[src]], ttl=site.ttl)
            old = site.auto_dns.get(src)
            for n in site.names:
                if old is None or zone.get(n) == old:  # never undo a test's own override
                    zone.set(n, reply)
            site.auto_dns[src] = reply

    async def _rebehave(self, site: Site, roles: dict[str, BehaviourArg]) -> None:
        for role, value in roles.items():
            items = _as_list(value)
            if role == "behaviour":
                site.default = items or []
            elif role in ROLES:
                if items is None:
                    site.by_source.pop(ROLES[role], None)
                else:
                    site.by_source[ROLES[role]] = items
            else:
                raise TypeError(f"unknown role {role!r}")
        modes = {src: _modes(site.behaviours_for(src)) for src in (CONTROL, VANTAGE, VANTAGE2)}
        assert site.host is not None
        if modes[CONTROL] != site.host.modes:
            raise ValueError("the control's refuse/blackhole_connect setting cannot change")
        await self._assign_addresses(site, modes)

    async def _new_host(self, modes: tuple[str, str], *, primary: bool, address: str | None = None) -> Host:
        candidates: Iterable[str] = [address] if address else self._addresses
        for addr in candidates:
            if addr in self._hosts_by_address:
                continue
            try:
                sockets, listeners = self._open_ports(addr, modes)
            except OSError as exc:
                if address is None and is_addr_in_use(exc):
                    continue  # someone else holds our port there: take the next address
                raise
            host = Host(addr, modes, primary)
            host.sockets = sockets
            self.hosts.append(host)
            self._hosts_by_address[addr] = host
            for port, lsock in listeners:
                self.tasks.spawn(self._accept_loop(host, lsock, port))
            return host
        raise RuntimeError("the lab ran out of addresses")

    def _open_ports(
        self, address: str, modes: tuple[str, str]
    ) -> tuple[list[socket.socket], list[tuple[int, socket.socket]]]:
        opened: list[socket.socket] = []
        listeners: list[tuple[int, socket.socket]] = []
        try:
            for port, mode in zip((self.http_port, self.https_port), modes, strict=True):
                if mode == "accept":
                    lsock = listening_socket(address, port)
                    opened.append(lsock)
                    listeners.append((port, lsock))
                elif mode == "refuse":  # bound, not listening: SYNs get a RST
                    opened.append(bound_socket(address, port))
                else:
                    opened.extend(blackhole_socket(address, port))
        except BaseException:
            for sock in opened:
                sock.close()
            raise
        return opened, listeners

    async def _accept_loop(self, host: Host, lsock: socket.socket, port: int) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, peer = await loop.sock_accept(lsock)
            except OSError:
                if lsock.fileno() < 0:
                    return
                await asyncio.sleep(0.01)  # e.g. EMFILE: back off a little
                continue
            conn.setblocking(False)
            # asyncio only sets TCP_NODELAY when sock.proto is IPPROTO_TCP (ours is 0): without
            # it, Nagle + delayed ACK stall multi-write responses by ~40 ms on loopback.
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                self.tasks.spawn(handle_connection(self, host, port, conn, peer))
            except RuntimeError:
                with contextlib.suppress(OSError):
                    conn.close()
                return
