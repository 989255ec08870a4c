"""DNS step: one exchange per resolver and type, no cache, no rotation (dnspython low level).

DoH is done here with httpx (POST application/dns-message), not with dnspython's own DoH, which
needs another HTTP package (PITFALLS.md)."""

from __future__ import annotations

import asyncio
import ipaddress
import time
from dataclasses import dataclass

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.resolver
import httpx

from blockwatch.hostport import split_hostport
from blockwatch.probe import failures as F
from blockwatch.probe.records import DnsQuery


def is_bogon(address: str, allow: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
             ) -> bool:
    """Addresses no public site lives at: private, loopback, link-local, reserved, unspecified
    (unless inside an explicitly allowed network: an intranet, a test lab)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return True
    if any(ip in net for net in allow if net.version == ip.version):
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_unspecified
        or ip.is_multicast
        or (isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED)
    )


_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT


@dataclass(frozen=True)
class ResolverSpec:
    """Where to send queries: UDP (falling back to TCP on truncation), TCP, or DoH."""

    label: str
    transport: str  # udp | tcp | doh
    host: str = ""
    port: int = 53
    url: str = ""

    @classmethod
    def parse(cls, text: str) -> ResolverSpec:
        if text.startswith("https://"):
            return cls(text, "doh", url=text)
        if text.startswith("tcp://"):
            host, port = split_hostport(text[6:], 53)
            return cls(text, "tcp", host, port)
        host, port = split_hostport(text, 53)
        return cls(text, "udp", host, port)


def system_resolvers() -> list[ResolverSpec]:
    """The host's configured resolvers (/etc/resolv.conf), asked directly so rcodes are seen."""
    try:
        ns = dns.resolver.Resolver(configure=True).nameservers
    except (dns.resolver.NoResolverConfiguration, OSError):
        return []
    out = []
    for n in ns:
        s = str(n)
        out.append(ResolverSpec(f"system ({s})", "udp", s, 53))
    return out


async def query(
    spec: ResolverSpec,
    qname: str,
    qtype: str,
    *,
    timeout: float,
    source: str | None = None,
    http: httpx.AsyncClient | None = None,
    linger: float = 0.0,
) -> DnsQuery:
    """One query. With `linger` > 0 on UDP, keep listening after the first reply to catch a
    second one (on-path injection answers twice)."""
    rec = DnsQuery(resolver=spec.label, transport=spec.transport, qname=qname, qtype=qtype)
    msg = dns.message.make_query(qname, qtype, use_edns=True)
    msg.flags |= dns.flags.RD
    t0 = time.perf_counter()
    try:
        if spec.transport == "doh":
            if http is None:
                raise RuntimeError("DoH needs an httpx client")
            reply = await _doh(http, spec.url, msg, timeout)
        elif spec.transport == "tcp":
            reply = await dns.asyncquery.tcp(msg, spec.host, timeout=timeout, port=spec.port,
                                             source=source)
        else:
            reply, extra = await _udp(msg, spec.host, spec.port, timeout, source, linger)
            rec.extra_replies = [_addresses(r, qtype)[0] for r in extra]
            if reply.flags & dns.flags.TC:
                reply = await dns.asyncquery.tcp(msg, spec.host, timeout=timeout, port=spec.port,
                                                 source=source)
    except dns.exception.Timeout:
        rec.failure = F.DNS_TIMEOUT
    except (dns.exception.DNSException, ValueError):
        rec.failure = F.DNS_BOGUS  # a malformed or unusable reply
    except httpx.TimeoutException:
        rec.failure = F.DNS_TIMEOUT
    except (httpx.HTTPError, OSError) as exc:
        rec.failure = F.classify(exc)
    else:
        _fill(rec, reply, qtype)
    rec.t_ms = round((time.perf_counter() - t0) * 1000, 2)
    return rec


def _fill(rec: DnsQuery, reply: dns.message.Message, qtype: str) -> None:
    rc = reply.rcode()
    rec.rcode = dns.rcode.to_text(rc)
    addrs, ttls, cnames = _addresses(reply, qtype)
    rec.answers, rec.ttls, rec.cnames = addrs, ttls, cnames
    rec.bogons = [a for a in addrs if is_bogon(a)]
    if rc == dns.rcode.NXDOMAIN:
        rec.failure = F.DNS_NXDOMAIN
    elif rc == dns.rcode.SERVFAIL:
        rec.failure = F.DNS_SERVFAIL
    elif rc == dns.rcode.REFUSED:
        rec.failure = F.DNS_REFUSED
    elif rc != dns.rcode.NOERROR:
        rec.failure = F.DNS_BOGUS
    elif not addrs:
        rec.failure = F.DNS_NO_ANSWER


def _addresses(reply: dns.message.Message, qtype: str) -> tuple[list[str], list[int], list[str]]:
    want = dns.rdatatype.from_text(qtype)
    addrs: list[str] = []
    ttls: list[int] = []
    cnames: list[str] = []
    for rrset in reply.answer:
        if rrset.rdtype == want:
            for rd in rrset:
                addrs.append(rd.address)
                ttls.append(rrset.ttl)
        elif rrset.rdtype == dns.rdatatype.CNAME:
            cnames.extend(str(rd.target).rstrip(".") for rd in rrset)
    return addrs, ttls, cnames


async def _udp(
    msg: dns.message.Message, host: str, port: int, timeout: float, source: str | None,
    linger: float,
) -> tuple[dns.message.Message, list[dns.message.Message]]:
    import socket

    import dns.asyncbackend

    backend = dns.asyncbackend.get_default_backend()
    af = socket.AF_INET6 if ":" in host else socket.AF_INET
    src = (source, 0) if source else None
    sock = await backend.make_socket(af, socket.SOCK_DGRAM, 0, src, None)
    async with sock:
        expiration = time.time() + timeout
        await dns.asyncquery.send_udp(sock, msg, (host, port), expiration)
        first = await _receive(sock, msg, host, port, expiration)
        extra: list[dns.message.Message] = []
        if linger > 0:
            until = min(time.time() + linger, expiration)
            while True:
                try:
                    extra.append(await _receive(sock, msg, host, port, until))
                except dns.exception.Timeout:
                    break
        return first, extra


async def _receive(sock, msg, host, port, expiration):  # type: ignore[no-untyped-def]
    # ignore_unexpected: replies from elsewhere or for another id are dropped, not errors
    reply, _, _ = await dns.asyncquery.receive_udp(
        sock, (host, port), expiration, ignore_unexpected=True, query=msg, ignore_trailing=True,
    )
    return reply


async def _doh(
    client: httpx.AsyncClient, url: str, msg: dns.message.Message, timeout: float
) -> dns.message.Message:
    msg.id = 0  # RFC 8484: use 0 for cache friendliness
    r = await client.post(
        url,
        content=msg.to_wire(),
        headers={"content-type": "application/dns-message", "accept": "application/dns-message"},
        timeout=timeout,
    )
    if r.status_code != 200:
        raise dns.exception.DNSException(f"DoH server answered HTTP {r.status_code}")
    return dns.message.from_wire(r.content, ignore_trailing=True)


async def resolve_all(
    specs: list[ResolverSpec], host: str, *, timeout: float, source: str | None,
    http: httpx.AsyncClient | None, qtypes: tuple[str, ...] = ("A", "AAAA"),
) -> list[DnsQuery]:
    """A and AAAA through every resolver, concurrently; an IP-literal host needs no DNS."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return []
    jobs = [query(s, host, t, timeout=timeout, source=source, http=http)
            for s in specs for t in qtypes]
    return list(await asyncio.gather(*jobs))
