"""One URL measured from one network view (a vantage or the control): DNS, then TCP and TLS
to every address, then HTTP. Plain records out; judging is analysis's job."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

from blockwatch.probe import dnsprobe, httpprobe, netsteps
from blockwatch.probe import failures as F
from blockwatch.probe.dnsprobe import ResolverSpec
from blockwatch.probe.records import HttpHop, HttpResult, TcpConnect, WebMeasurement
from blockwatch.probe.resolvers import ResolverSet

MAX_ADDRESSES = 4  # per family: enough to see load balancing, bounded for huge RRsets


@dataclass(frozen=True)
class NetworkView:
    """Where a measurement is taken from: which resolvers it asks and which source address
    its connections leave from. Its resolvers are asked through a `ResolverSet` built from it
    (`ResolverSet.for_view`), opened once per round and closed after."""

    name: str
    role: str = "vantage"  # vantage | control
    resolvers: tuple[ResolverSpec, ...] = ()
    source_address: str | None = None


@dataclass
class ProbeSettings:
    timeout: float = 10.0
    body_limit: int = 512 * 1024
    user_agent: str = "Mozilla/5.0"
    ca_bundle: str | None = None
    ipv6: bool | None = None  # None: detect once
    # Private/loopback networks that may be connected to (an intranet, a test lab). Other bogon
    # answers are evidence of DNS tampering and are never connected to: from a VPS they would
    # reach the provider's internal network.
    allow_networks: dnsprobe.Networks = ()
    matcher: httpprobe.Matcher | None = None
    _contexts: dict[str, object] = field(default_factory=dict)

    def ssl_contexts(self):  # type: ignore[no-untyped-def]
        if not self._contexts:
            self._contexts["v"] = netsteps.make_ssl_context(self.ca_bundle or None)
            self._contexts["u"] = netsteps.make_ssl_context(verify=False)
        return self._contexts["v"], self._contexts["u"]

    def has_ipv6(self) -> bool:
        if self.ipv6 is None:
            self.ipv6 = netsteps.has_ipv6_route()
        return self.ipv6


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def measure(url: str, view: NetworkView, settings: ProbeSettings,
                  resolvers: ResolverSet) -> WebMeasurement:
    """`resolvers`: the view's resolvers (`ResolverSet.for_view(view, settings)`)."""
    t0 = time.perf_counter()
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    m = WebMeasurement(
        url=url, vantage=view.name, role=view.role, measured_at=now_iso(),
        uid=uuid.uuid4().hex, resolvers=resolvers.labels,
        ipv6=settings.has_ipv6(), source_address=view.source_address,
    )
    m.dns = await resolvers.resolve(host)
    bogons = {a for q in m.dns for a in q.bogons}
    addresses = m.addresses() if m.dns else [host]
    v4 = [a for a in addresses if not netsteps.is_ipv6(a) and a not in bogons][:MAX_ADDRESSES]
    v6 = [a for a in addresses if netsteps.is_ipv6(a) and a not in bogons][:MAX_ADDRESSES]
    reachable = v4 + (v6 if m.ipv6 else [])
    m.tcp = [TcpConnect(address=a, port=port, status="skipped", failure="bogon_address")
             for a in addresses if a in bogons]
    m.tcp += [TcpConnect(address=a, port=port, status="skipped", failure="no_ipv6_route")
              for a in (v6 if not m.ipv6 else [])]
    verified, unverified = settings.ssl_contexts()
    https = parts.scheme == "https"
    steps = [netsteps.connect(a, port, host if https else None, timeout=settings.timeout,
                              source=view.source_address, verified=verified,
                              unverified=unverified, keep=True)
             for a in reachable]
    # one address (the common case): no task to gather it in
    results = [await steps[0]] if len(steps) == 1 else await asyncio.gather(*steps)
    opened: list[tuple[str, httpprobe.Stream]] = []
    for tcp, tls, conn in results:
        m.tcp.append(tcp)
        if tls is not None:
            m.tls.append(tls)
        if conn is not None:
            opened.append((tcp.address, conn))

    # HTTP goes to an address that completed the connection (TLS for https), else the first one
    # the vantage's DNS gave, so a lying resolver's address is what gets fetched. The first
    # request reuses that connection; the others are closed.
    preferred = [t.address for t in m.tls if t.ok] or [t.address for t in m.tcp if t.status == "ok"]
    cache: dict[str, str | None] = {host: next(iter(preferred + reachable), None)}
    dns_failures: dict[str, str] = {}  # a redirect host's DNS failure, for its hop's record

    async def resolve(name: str) -> str | None:
        """The address a redirect's host is fetched at (the first usable answer)."""
        if name not in cache:
            found = await resolvers.resolve(name, ("A",) if not m.ipv6 else ("A", "AAAA"))
            usable = [a for q in found for a in q.answers if a not in q.bogons]
            if found and not usable:
                dns_failures[name] = next((q.failure for q in found if q.failure), F.DNS_NO_ANSWER)
            cache[name] = next(iter(usable), None) if found else name  # an IP literal: no DNS
        return cache[name]

    async def connect(name: str, port: int, tls: bool
                      ) -> tuple[str | None, httpprobe.Stream | None, str | None, str | None]:
        """(address, stream, failure, the step that failed: dns | tcp | tls)"""
        address = await resolve(name)
        if address is None:
            return None, None, dns_failures.get(name, F.DNS_NO_ANSWER), "dns"
        tcp, hs, conn = await netsteps.connect(
            address, port, name if tls else None, timeout=settings.timeout,
            source=view.source_address, verified=verified, unverified=unverified, keep=True)
        if hs is not None and hs.failure:
            return address, conn, hs.failure, "tls"
        return address, conn, tcp.failure, ("tcp" if tcp.failure else None)

    opened_for_http: dict[tuple[str, int], tuple[str, httpprobe.Stream]] = {}
    for address, conn in opened:
        if preferred and address == preferred[0] and (host, port) not in opened_for_http:
            opened_for_http[(host, port)] = (address, conn)
        else:
            conn[1].close()
    # When every address was tried and none completed the connection (TCP, or TLS for https),
    # an HTTP request can only fail the same way after another full timeout: record that
    # instead of waiting for it.
    tried_tcp = [t for t in m.tcp if t.status != "skipped"]
    dead = (m.dns and tried_tcp and not any(t.status == "ok" for t in tried_tcp)) or (
        https and m.tls and not any(t.ok for t in m.tls))
    if dead:
        first = next((t.failure for t in m.tls if t.failure), None) or next(
            (t.failure for t in tried_tcp if t.failure), None)
        m.http = HttpResult(failure=first, hops=[HttpHop(url=url, failure=first)],
                            not_attempted=True)
    else:
        try:
            m.http = await httpprobe.fetch(url, opened=opened_for_http, connect=connect,
                                           body_limit=settings.body_limit,
                                           user_agent=settings.user_agent,
                                           timeout=settings.timeout, match=settings.matcher)
        finally:
            for _, (_, writer) in opened_for_http.values():  # unused: the request never went out
                writer.close()
    m.t_ms = round((time.perf_counter() - t0) * 1000, 2)
    return m

