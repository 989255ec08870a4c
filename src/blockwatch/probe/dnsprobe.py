"""DNS step: one exchange per resolver and type, no cache, no rotation (dnspython low level).

DoH (POST application/dns-message) is spoken here over kept-alive HTTP/1.1 connections of our
own (asyncio streams with the loop's TLS, h11 for the framing, a plain answer read without it as
h11 would read it), not with dnspython's own DoH, which needs another HTTP package, nor through
httpx, whose layers cost more CPU than the query."""

from __future__ import annotations

import array
import asyncio
import contextlib
import functools
import ipaddress
import os
import re
import socket
import ssl
import struct
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

import dns.asyncquery
import dns.exception
import dns.flags
import dns.ipv4
import dns.ipv6
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.resolver
import h11

from blockwatch.hostport import check_doh_url, split_hostport
from blockwatch.probe import failures as F
from blockwatch.probe.httpprobe import _host_header, _target
from blockwatch.probe.records import DnsQuery

T = TypeVar("T")
Networks = tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]


# a round meets the same addresses again and again (CDNs, one site's A records from every
# resolver); `ipaddress`'s checks cost more than the rest of reading a reply
@functools.lru_cache(maxsize=8192)
def is_bogon(address: str, allow: Networks = ()) -> bool:
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
            return cls(text, "doh", url=check_doh_url(text))
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
    http: DoHClient | None,
    linger: float = 0.0,
    allow: Networks = (),
) -> DnsQuery:
    """One query. With `linger` > 0 on UDP, keep listening after the first reply to catch a
    second one (on-path injection answers twice). `http` is a DoH resolver's client: probes
    ask through `probe.resolvers.ResolverSet`, which always has one for them."""
    return (await query_types(spec, qname, (qtype,), timeout=timeout, source=source, http=http,
                              linger=linger, allow=allow))[0]


async def query_types(
    spec: ResolverSpec,
    qname: str,
    qtypes: tuple[str, ...],
    *,
    timeout: float,
    source: str | None = None,
    http: DoHClient | None,
    linger: float = 0.0,
    allow: Networks = (),
) -> list[DnsQuery]:
    """One query per type to one resolver, concurrently (over UDP: from one socket). Answers
    are marked bogons unless inside `allow` (see `is_bogon`)."""
    recs = [DnsQuery(resolver=spec.label, transport=spec.transport, qname=qname, qtype=t)
            for t in qtypes]
    try:
        queries = _queries(qname, qtypes)
    except (dns.exception.DNSException, ValueError, UnicodeError):
        for rec in recs:  # not a name DNS can carry (an empty or over-long label)
            rec.failure = F.UNKNOWN
        return recs
    t0 = time.perf_counter()
    if spec.transport == "doh" and http is None:
        raise ValueError(f"{spec.label}: a DoH resolver is asked through a ResolverSet "
                         "(probe/resolvers.py), which owns its HTTP client")
    if spec.transport == "udp":
        outcomes = await _udp(queries, spec.host, spec.port, timeout, source, linger)
    else:
        outcomes = await asyncio.gather(*(_stream(spec, q, timeout, source, http)
                                          for q in queries))
    for rec, query, (reply, extra, done) in zip(recs, queries, outcomes, strict=True):
        if not isinstance(reply, BaseException) and reply.flags & _TC:
            # truncated over UDP: ask again over TCP, as a stub resolver would
            reply, _, done = await _stream(spec, query, timeout, source, http)
        rec.extra_replies = [_addresses(r, rec.qtype)[0] for r in extra]
        if isinstance(reply, BaseException):
            rec.failure = _failure(reply)
        else:
            _fill(rec, reply, rec.qtype, allow)
        rec.t_ms = round((done - t0) * 1000, 2)
    return recs


@dataclass(frozen=True)
class _Query:
    id: int
    wire: bytes
    question: bytes  # the question section, its name lower-cased: what a reply must echo

    def message(self) -> dns.message.Message:
        return dns.message.from_wire(self.wire)

    def answered_by(self, reply: bytes) -> bool:
        """What dnspython's `is_response` checks, on the wire: QR set, opcode QUERY, the same
        question (names compare without case), or none on an error rcode."""
        if len(reply) < 12 or not reply[2] & 0x80 or reply[2] & 0x78:
            return False
        if reply[4:6] == b"\0\0":
            return reply[3] & 0x0F in (1, 2, 4, 5)  # FORMERR SERVFAIL NOTIMP REFUSED
        n = len(self.question)
        q = reply[12:12 + n]
        return reply[4:6] == b"\0\1" and q[:-4].lower() == self.question[:-4] and q[-4:] == self.question[-4:]


@functools.lru_cache(maxsize=4096)
def _template(qname: str, qtype: str) -> tuple[bytes, bytes]:
    """A query's wire form after its id, and its question section. Built by dnspython once per
    name and type (the vantage and the control ask the same): building one cost more CPU than
    sending it."""
    msg = dns.message.make_query(qname, qtype, use_edns=True)
    msg.flags |= dns.flags.RD
    wire = msg.to_wire()
    end = 12 + len(msg.question[0].name.to_wire()) + 4
    return wire[2:], wire[12:end - 4].lower() + wire[end - 4:end]


_ids: list[int] = []
os.register_at_fork(after_in_child=_ids.clear)  # a forked worker draws its own


def _random_id() -> int:
    """An unpredictable query id (off-path spoofing must guess it), from the OS's random source
    4,096 at a time: one system call per id cost more than the rest of building the query."""
    if not _ids:
        _ids.extend(array.array("H", os.urandom(2 * 4096)))
    return _ids.pop()


def _queries(qname: str, qtypes: tuple[str, ...]) -> list[_Query]:
    out: list[_Query] = []
    for t in qtypes:
        rest, question = _template(qname, t)
        qid = _random_id()
        while any(q.id == qid for q in out):  # replies are told apart by id
            qid = _random_id()
        out.append(_Query(qid, qid.to_bytes(2, "big") + rest, question))
    return out


def _failure(exc: BaseException) -> str:
    if isinstance(exc, dns.exception.Timeout | TimeoutError):
        return F.DNS_TIMEOUT
    if isinstance(exc, OSError | EOFError):
        # before ValueError: a failed certificate check is both an SSLError and a ValueError
        return F.classify(exc)  # EOFError: a TCP or DoH server closed without answering
    if isinstance(exc, dns.exception.DNSException | ValueError):
        return F.DNS_BOGUS  # a malformed or unusable reply
    if isinstance(exc, DoHProtocolError):
        return F.HTTP_PROTOCOL_ERROR
    raise exc


Outcome = tuple["Reply | BaseException", list["Reply"], float]


async def _stream(spec: ResolverSpec, query: _Query, timeout: float, source: str | None,
                  http: DoHClient | None) -> Outcome:
    """DoH, else TCP (also a UDP resolver's, after a truncated reply): (reply or the
    exception, no extras, when it ended)."""
    reply: dns.message.Message | BaseException
    try:
        if spec.transport == "doh":
            assert http is not None  # checked in query_types
            reply = await http.exchange(spec.url, query, timeout)
        else:
            reply = await dns.asyncquery.tcp(query.message(), spec.host, timeout=timeout, port=spec.port,
                                             source=source)
    except (dns.exception.DNSException, ValueError, DoHProtocolError, OSError, EOFError) as exc:
        reply = exc
    return reply, [], time.perf_counter()


_TC = int(dns.flags.TC)  # a plain int: `&` with the enum member costs a Python call
_rcode_text = functools.lru_cache(maxsize=64)(dns.rcode.to_text)


def _fill(rec: DnsQuery, reply: Reply, qtype: str, allow: Networks = ()) -> None:
    rc = reply.rcode()
    rec.rcode = _rcode_text(rc)
    addrs, ttls, cnames = _addresses(reply, qtype)
    rec.answers, rec.ttls, rec.cnames = addrs, ttls, cnames
    rec.bogons = [a for a in addrs if is_bogon(a, allow)]
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


_rdtype = functools.lru_cache(maxsize=64)(dns.rdatatype.from_text)


def _addresses(reply: Reply, qtype: str) -> tuple[list[str], list[int], list[str]]:
    want = _rdtype(qtype)
    addrs: list[str] = []
    ttls: list[int] = []
    cnames: list[str] = []
    for rrset in reply.answer:
        # an address record of another class (CH, ANY, NONE) answers nothing we asked, and
        # dnspython leaves its data unparsed (no .address): skipped, not a crash of the query
        if getattr(rrset, "rdclass", dns.rdataclass.IN) != dns.rdataclass.IN:
            continue
        if rrset.rdtype == want:
            for rd in rrset:
                addrs.append(rd.address)
                ttls.append(rrset.ttl)
        elif rrset.rdtype == dns.rdatatype.CNAME:
            cnames.extend(str(rd.target).rstrip(".") for rd in rrset)
    return addrs, ttls, cnames


class _Address:
    __slots__ = ("address",)

    def __init__(self, address: str):
        self.address = address


class _Target:
    __slots__ = ("target",)

    def __init__(self, target: dns.name.Name):
        self.target = target


class _RRset:
    """What `_addresses` reads of a dnspython RRset: its type, TTL and records."""

    __slots__ = ("items", "rdtype", "ttl")

    def __init__(self, rdtype: int, ttl: int):
        self.rdtype = rdtype
        self.ttl = ttl
        self.items: dict[bytes | None, _Address | _Target] = {}

    def __iter__(self) -> Iterator[Any]:
        return iter(self.items.values())


class _Reply:
    """What `_fill` and `_addresses` read of a dnspython Message: flags, rcode, answer."""

    __slots__ = ("_rcode", "answer", "flags")

    def __init__(self, flags: int, answer: list[_RRset]):
        self.flags = flags
        self._rcode = _rcode_of(flags & 0x000F)
        self.answer = answer

    def rcode(self) -> dns.rcode.Rcode:
        return self._rcode


Reply = dns.message.Message | _Reply


@functools.lru_cache(maxsize=16)
def _rcode_of(low_bits: int) -> dns.rcode.Rcode:
    """A reply's rcode from its flags' low 4 bits (no EDNS extended bits: a plain reply's OPT
    record has none)."""
    return dns.rcode.from_flags(low_bits, 0)
_A, _AAAA, _CNAME, _OPT = 1, 28, 5, 41


def parse_reply(wire: bytes) -> Reply:
    """A reply as dnspython's `from_wire(wire, ignore_trailing=True)` reads it, for what this
    module uses of it. The plain replies a round gets by the thousand (one question, A, AAAA and
    CNAME records of class IN, no authority, at most an option-less EDNS record) are read
    here, at a fraction of dnspython's CPU; anything else, malformed ones included, goes to
    dnspython, which accepts or rejects it as always."""
    return _plain_reply(wire) or dns.message.from_wire(wire, ignore_trailing=True)


def _plain_reply(wire: bytes) -> _Reply | None:
    """A plain reply read as dnspython reads it (records of one owner and type merged into one
    set in the order first seen, their TTL the smallest, a repeated record once, a CNAME set
    holding the last one); None for anything else."""
    n = len(wire)
    if n < 12:
        return None
    _, flags, qdcount, ancount, nscount, arcount = struct.unpack_from("!6H", wire)
    if flags & 0x7800 or qdcount != 1 or nscount or arcount > 1:  # opcode QUERY only
        return None
    question = _wire_name(wire, 12, n)
    if question is None or question[1] + 4 > n:
        return None
    pos = question[1] + 4
    sets: dict[tuple[tuple[bytes, ...], int], _RRset] = {}
    for _ in range(ancount):
        owner = _wire_name(wire, pos, n)
        if owner is None or owner[1] + 10 > n:
            return None
        rdtype, rdclass, ttl, rdlen = struct.unpack_from("!HHIH", wire, owner[1])
        pos = owner[1] + 10
        end = pos + rdlen
        if rdclass != 1 or end > n:
            return None
        key: bytes | None
        item: _Address | _Target
        if rdtype == _A and rdlen == 4:
            key = wire[pos:end]
            item = _Address(dns.ipv4.inet_ntoa(key))
        elif rdtype == _AAAA and rdlen == 16:
            key = wire[pos:end]
            item = _Address(dns.ipv6.inet_ntoa(key))
        elif rdtype == _CNAME:
            target = _wire_name(wire, pos, end)
            if target is None or target[1] != end:
                return None
            key, item = None, _Target(dns.name.Name(target[0]))
        else:
            return None
        ttl = 0 if ttl > 0x7FFFFFFF else ttl
        group = (tuple(label.lower() for label in owner[0]), rdtype)
        rrset = sets.get(group)
        if rrset is None:
            rrset = sets[group] = _RRset(rdtype, ttl)
        else:
            rrset.ttl = min(rrset.ttl, ttl)
        if rdtype == _CNAME:
            rrset.items = {key: item}  # a singleton type: the last one replaces the others
        else:
            rrset.items.setdefault(key, item)
        pos = end
    if arcount:  # EDNS: the root name, no options, no extended rcode bits
        if pos + 11 > n or wire[pos] != 0:
            return None
        rdtype, _, ttl, rdlen = struct.unpack_from("!HHIH", wire, pos + 1)
        if rdtype != _OPT or rdlen or ttl >> 24:
            return None
    return _Reply(flags, list(sets.values()))


def _wire_name(wire: bytes, pos: int, end: int) -> tuple[list[bytes], int] | None:
    """(labels, where the name ends) of the name at `pos`, read within `end` with dnspython's
    rules (compression pointers point backwards, at most 16 of them, each target ends before
    the part that pointed to it, 255 bytes at most); None where dnspython would object. The
    length is checked label by label: a crafted name of thousands of labels is given up after
    255 bytes, not read whole first (dnspython, which then reads it, refuses it as before)."""
    labels: list[bytes] = []
    biggest = start = pos
    after: int | None = None
    hops = 0
    length = 1
    while True:
        if pos >= end:
            return None
        count = wire[pos]
        pos += 1
        if count == 0:
            break
        if count < 64:
            if pos + count > end:
                return None
            length += count + 1
            if length > 255:
                return None
            labels.append(wire[pos:pos + count])
            pos += count
        elif count >= 192:
            if pos >= end:
                return None
            target = (count & 0x3F) * 256 + wire[pos]
            pos += 1
            hops += 1
            if target >= biggest or hops > 16:
                return None
            if after is None:
                after = pos
            end, start, biggest, pos = start, target, target, target  # the target ends before
        else:
            return None
    labels.append(b"")
    return labels, after if after is not None else pos


class _Replies(asyncio.DatagramProtocol):
    """The replies to some queries on one connected UDP socket, told apart by id and question.
    A datagram for another id, or for another question, is dropped (as dnspython's
    `ignore_unexpected` does); once a query has its reply, later ones are kept as extras."""

    def __init__(self, queries: list[_Query]):
        loop = asyncio.get_running_loop()
        self.waiting: dict[int, tuple[_Query, asyncio.Future[dns.message.Message],
                                      list[dns.message.Message]]] = {
            q.id: (q, loop.create_future(), []) for q in queries}
        self.done: dict[int, float] = {}  # id -> when its first reply came
        # set once every query has its first reply (or error): one future to wait on, not
        # asyncio.wait's per-future callbacks
        self.settled = loop.create_future()
        self.unsettled = len(self.waiting)
        if not self.unsettled:
            self.settled.set_result(None)

    transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def _settle(self) -> None:
        self.unsettled -= 1
        if not self.unsettled and not self.settled.done():
            self.settled.set_result(None)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        entry = self.waiting.get(int.from_bytes(data[:2], "big")) if len(data) >= 2 else None
        if entry is None:
            return
        q, first, extra = entry
        if not q.answered_by(data):
            return
        try:
            reply = parse_reply(data)
        except (dns.exception.DNSException, ValueError) as exc:
            if not first.done():
                first.set_exception(exc)
                self._settle()
            return
        if first.done():
            extra.append(reply)
        else:
            self.done[q.id] = time.perf_counter()
            first.set_result(reply)
            self._settle()

    def error_received(self, exc: Exception) -> None:
        # An ICMP error on the connected socket. Ignored, as an unconnected socket would: one
        # spoofed on-path must not end a query whose real answer may still come; a resolver
        # that is really unreachable times out, as before.
        pass

    def connection_lost(self, exc: Exception | None) -> None:
        for _, first, _ in self.waiting.values():
            if not first.done():
                first.set_exception(exc or ConnectionAbortedError("socket closed"))
                self._settle()


@functools.lru_cache(maxsize=256)
def _ip_literal(host: str) -> bool:
    """An address without a zone (a scoped one is left to the loop's look-up)."""
    if "%" in host:
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _connected_udp(host: str, port: int, family: int,
                   src: tuple[str, int] | None) -> socket.socket:
    """A non-blocking UDP socket bound to `src` (else to any port) and connected to the
    resolver, as the loop's `create_datagram_endpoint(local_addr=, remote_addr=)` makes it: that
    path looks the address up first and cost three to four times the CPU of making it here."""
    sock = socket.socket(family, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK)  # no fcntl calls
    try:
        if src is not None:
            sock.bind(src)
        sock.connect((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


async def _udp(msgs: list[_Query], host: str, port: int, timeout: float,
               source: str | None, linger: float) -> list[Outcome]:
    """Send every query from one socket; wait for each first reply until the timeout, then (with
    `linger`) a little longer for second ones. Our own protocol rather than dnspython's socket
    wrappers: one socket for A and AAAA, and a tenth of the event-loop work per query."""
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    src = (source, 0) if source and (":" in source) == (family == socket.AF_INET6) else None
    out: list[Outcome] = []
    sock: socket.socket | None = None
    made: list[_Replies] = []

    def factory() -> _Replies:
        made.append(_Replies(msgs))
        return made[-1]
    try:
        # no look-up to wait for: the socket made here, connected; a zoned (link-local) source
        # goes the loop's way, whose look-up keeps the zone that a plain bind() drops
        if _ip_literal(host) and (src is None or "%" not in src[0]):
            sock = _connected_udp(host, port, family, src)
            transport, proto = await loop.create_datagram_endpoint(factory, sock=sock)
        else:
            async with asyncio.timeout(timeout):
                transport, proto = await loop.create_datagram_endpoint(
                    factory, local_addr=src, remote_addr=(host, port), family=family)
    except BaseException as exc:
        # a creation cut short (cancelled): uvloop leaves the transport it made open, asyncio
        # closes it; close it (and so its socket) either way
        if made and made[0].transport is not None:
            made[0].transport.close()
            sock = None
        if sock is not None:
            sock.close()
        if not isinstance(exc, (OSError, TimeoutError)):
            raise
        return [(exc, [], time.perf_counter()) for _ in msgs]
    try:
        for m in msgs:
            transport.sendto(m.wire)
        futures = [proto.waiting[m.id][1] for m in msgs]
        deadline = loop.time() + timeout
        timer = loop.call_at(deadline, _set_if_pending, proto.settled)
        try:
            await proto.settled
        finally:
            timer.cancel()
        if linger > 0 and all(f.done() for f in futures):
            await asyncio.sleep(max(0.0, min(linger, deadline - loop.time())))
        now = time.perf_counter()
        for m, f in zip(msgs, futures, strict=True):
            if not f.done():
                f.cancel()
                out.append((dns.exception.Timeout(), [], now))
            elif f.exception() is not None:
                out.append((f.exception(), [], now))  # type: ignore[arg-type]
            else:
                out.append((f.result(), proto.waiting[m.id][2], proto.done[m.id]))
    finally:
        for _, first, _ in proto.waiting.values():
            first.cancel()  # cancelled from outside: nobody will read these any more
        transport.close()
    return out


def _set_if_pending(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class DoHProtocolError(Exception):
    """A DoH server's answer that is not HTTP/1.1."""


class DoHMismatch(dns.exception.DNSException):
    """A DoH answer that does not answer the query it came after (another question, an id
    other than 0, no QR bit): the connection is out of step with its queries."""


class _Stale(Exception):
    """A kept-alive connection ended before any byte of the answer: the server had closed it
    while it was idle (the query may be asked again on a new one)."""


@dataclass(frozen=True)
class _Origin:
    """A DoH URL taken apart once: where to connect and the request's fixed part."""

    host: str
    port: int
    target: str
    headers: tuple[tuple[str, str], ...]
    # request heads by body length, as h11 writes them (a query is at most 64 KiB, and its
    # length varies only with its name's: a few hundred heads at most)
    _heads: dict[int, bytes] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, url: str, user_agent: str) -> _Origin:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port or 443
        return cls(host, port, _target(parts), (
            ("host", _host_header(host, port, True)), ("accept", "application/dns-message"),
            ("user-agent", user_agent), ("content-type", "application/dns-message")))

    def request(self, conn: h11.Connection, wire: bytes) -> bytes:
        """The POST of `wire` on `conn`, h11's bytes for it (a URL h11 will not put on the wire
        is `DoHProtocolError`)."""
        try:
            data = conn.send(h11.Request(method="POST", target=self.target, headers=[
                *self.headers, ("content-length", str(len(wire)))]))
            data += conn.send(h11.Data(data=wire))  # type: ignore[operator]
            data += conn.send(h11.EndOfMessage())  # type: ignore[operator]
        except h11.LocalProtocolError as exc:
            raise DoHProtocolError(str(exc)) from exc
        return data  # type: ignore[return-value]

    def plain_request(self, wire: bytes) -> bytes:
        """The same bytes without an h11 connection: its head made by h11 once per length
        (building and validating an h11 request cost a fifth of a DoH query's CPU)."""
        head = self._heads.get(len(wire))
        if head is None:
            data = self.request(h11.Connection(h11.CLIENT), wire)
            head = self._heads[len(wire)] = data[:len(data) - len(wire)]
        return head + wire


# what `_plain_response` reads itself: a strict subset of what h11 accepts, read as h11 reads it
_FIELD = re.compile(rb"([-!#$%&'*+.^_`|~0-9A-Za-z]+):[ \t]*([\x21-\x7e]+(?:[ \t]+[\x21-\x7e]+)*)?[ \t]*")
_REASON = re.compile(rb"[ \t\x21-\x7e]*")


def _plain_response(data: bytes) -> tuple[bytes, bool] | None:
    """(body, kept alive) when `data` is exactly one plain DoH answer, read as h11 reads it:
    "HTTP/1.1 200", header lines of printable ASCII ended by CRLF, one Content-Length (no
    Transfer-Encoding) and that many body bytes, no more; kept alive unless Connection says
    close. None for anything else, which h11 then reads from its start: a short or
    unusual answer, a 1xx, an error status, bytes after the answer."""
    end = data.find(b"\r\n\r\n")
    if end < 0 or not data.startswith(b"HTTP/1.1 200"):
        return None
    lines = data[:end].split(b"\r\n")
    status = lines[0]
    if len(status) > 12 and (status[12] != 0x20 or not _REASON.fullmatch(status, 13)):
        return None
    length = -1
    keep = True
    for line in lines[1:]:
        m = _FIELD.fullmatch(line)
        if m is None:
            return None
        name = m[1].lower()
        if name == b"content-length":
            value = m[2]
            if length >= 0 or value is None or not value.isdigit() or len(value) > 5:
                return None
            length = int(value)
        elif name == b"transfer-encoding":
            return None
        elif name == b"connection" and m[2] is not None and b"close" in [
                v.strip() for v in m[2].lower().split(b",")]:
            keep = False
    body = data[end + 4:]
    if length != len(body) or length > DOH_MAX:
        return None
    return body, keep


class _Connection:
    """One kept-alive HTTP/1.1 connection to a DoH server: one exchange at a time."""

    def __init__(self, origin: _Origin, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter):
        self.server = (origin.host, origin.port)
        self.reader, self.writer = reader, writer
        # made at the first answer `_plain_response` leaves to h11, which then reads every
        # later one on this connection too
        self.h11: h11.Connection | None = None
        self.used = False  # an exchange was completed on it
        self._keep = True  # the last plain answer did not say Connection: close

    def idle_closed(self) -> bool:
        """The server closed or reset it while it was idle (what httpx checked before reuse),
        or sent bytes nobody asked for: an answer read from it now could be theirs."""
        return (self.writer.transport.is_closing() or self.reader.at_eof()
                or self.reader.exception() is not None
                # no public way to ask a StreamReader whether bytes wait in it
                or bool(self.reader._buffer)  # type: ignore[attr-defined]
                or (self.h11 is not None and bool(self.h11.trailing_data[0])))

    async def _read(self, got: bool) -> bytes:
        """The next bytes of an answer (b"" at its end); `_Stale` when a kept connection ends
        before any byte of it (`got`: some came already)."""
        try:
            chunk = await self.reader.read(65536)
        except OSError as exc:
            if self.used and not got:
                raise _Stale from exc
            raise
        if not chunk and self.used and not got:
            raise _Stale
        return chunk

    async def ask(self, origin: _Origin, wire: bytes) -> bytes:
        """POST one query and read its answer; the connection stays usable only when this
        returns and `keep` is true. An answer that arrives whole and plain in the first read
        (`_plain_response`) is read without h11; anything else is read by h11 from its first
        byte, so it ends as it would have with h11 alone."""
        if self.h11 is not None:
            return await self._ask_h11(origin, wire, None)
        self.writer.write(origin.plain_request(wire))  # one TLS record, one send
        chunk = await self._read(got=False)
        plain = _plain_response(chunk)
        if plain is not None:
            body, self._keep = plain
            self.used = True
            return body
        self.h11 = h11.Connection(h11.CLIENT)
        origin.request(self.h11, wire)  # sent already: h11 only learns what it was
        return await self._ask_h11(origin, wire, chunk)

    async def _ask_h11(self, origin: _Origin, wire: bytes, first: bytes | None) -> bytes:
        """`ask` through h11; `first`: what the first read gave, the request sent already."""
        conn = self.h11
        assert conn is not None
        got = False  # any byte of the answer
        eof = False
        if first is None:
            if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
                conn.start_next_cycle()
            self.writer.write(origin.request(conn, wire))  # one TLS record, one send
        else:
            got = True
            eof = not first
            conn.receive_data(first)
        status = 0
        body = b""
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                if eof:
                    raise EOFError("DoH server closed the connection mid-answer") from exc
                raise DoHProtocolError(str(exc)) from exc
            if event is h11.NEED_DATA:
                chunk = await self._read(got)
                eof = eof or not chunk
                got = True
                conn.receive_data(chunk)
            elif isinstance(event, h11.Response):
                status = event.status_code
                if status != 200:
                    raise dns.exception.DNSException(f"DoH server answered HTTP {status}")
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > DOH_MAX:  # a DNS message fits in 64 KiB
                    raise dns.exception.DNSException("DoH reply larger than a DNS message")
            elif isinstance(event, h11.EndOfMessage):
                self.used = True
                return body
            elif isinstance(event, h11.ConnectionClosed):
                raise EOFError("DoH server closed the connection without answering")
            # an informational (1xx) response: the real one follows

    @property
    def keep(self) -> bool:
        if self.h11 is None:
            return self._keep
        return self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE

    def close(self) -> None:
        self.writer.transport.abort()  # nothing is owed to a server we stop asking


class _Slot:
    """One of the client's `slots`: the URL it last asked and its connection, if open."""

    __slots__ = ("conn", "url")

    def __init__(self) -> None:
        self.url = ""
        self.conn: _Connection | None = None


STAGGER = 0.25  # Happy Eyeballs: the next address is tried after this long (RFC 8305)


async def _addrinfo(host: str, port: int, source: str | None) -> list[tuple[int, Any]]:
    """(family, address) to try for a host; with a source address only its family's."""
    family = socket.AF_UNSPEC
    if source:
        family = socket.AF_INET6 if ":" in source else socket.AF_INET
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, family=family, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return interleave([(fam, addr) for fam, _, _, _, addr in infos])


def interleave(addrs: list[tuple[int, Any]]) -> list[tuple[int, Any]]:
    """Addresses once each, families alternating from the first one's (RFC 8305): a dead
    IPv6 path delays the first IPv4 address by one stagger, not by every IPv6 address."""
    by_family: dict[int, list[tuple[int, Any]]] = {}
    for fam, addr in dict.fromkeys(addrs):
        by_family.setdefault(fam, []).append((fam, addr))
    out: list[tuple[int, Any]] = []
    queues = list(by_family.values())
    while any(queues):
        for q in queues:
            if q:
                out.append(q.pop(0))
    return out


Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _tcp(family: int, addr: Any, source: str | None) -> Stream:
    # the loop's own connect (not sock_connect on a socket of ours): the transport owns its
    # socket from the start, closing it is never left to two owners
    return await asyncio.open_connection(addr[0], addr[1], family=family,
                                         local_addr=(source, 0) if source else None)


def _abort(stream: Stream) -> None:
    stream[1].transport.abort()


async def first_connected(attempts: list[Callable[[], Awaitable[T]]],
                          close: Callable[[T], None], delay: float = STAGGER) -> T:
    """Race connection attempts, each started `delay` after the one before (or as soon as
    one fails): the first connection wins, the others are cancelled or `close`d. When all
    fail: the error, or asyncio's "Multiple exceptions" error when they differ (what
    `asyncio.open_connection` raised for several addresses)."""
    todo = list(attempts)
    pending: set[asyncio.Future[T]] = set()
    errors: list[BaseException] = []
    winner: T | None = None
    try:
        while todo or pending:
            if todo:
                pending.add(asyncio.ensure_future(todo.pop(0)()))
            done, pending = await asyncio.wait(pending, timeout=delay if todo else None,
                                               return_when=asyncio.FIRST_COMPLETED)
            won = [t.result() for t in done if t.exception() is None]
            errors.extend(e for t in done if (e := t.exception()) is not None)
            if won:
                for extra in won[1:]:
                    close(extra)
                winner = won[0]
                return winner
    finally:
        # a loser that connected as it was cancelled is closed by its callback, whenever it
        # ends; the wait only lets the cancellations land before we return. Should the query's
        # timeout cancel that wait, the winner is closed too (it would never be returned)
        for t in pending:
            t.cancel()
            t.add_done_callback(functools.partial(_close_connected, close))
        if pending:
            try:
                await asyncio.wait(pending)
            except BaseException:
                if winner is not None:
                    close(winner)
                raise
    if not errors:
        raise OSError("no address to connect to")
    if len(errors) == 1 or len({str(e) for e in errors}) == 1:
        raise errors[0]
    raise OSError("Multiple exceptions: {}".format(", ".join(str(e) for e in errors)))


def _close_connected(close: Callable[[T], None], task: asyncio.Future[T]) -> None:
    """A losing attempt that connected just as it was cancelled is closed (and a failed one's
    error retrieved, so asyncio does not log it)."""
    if not task.cancelled() and task.exception() is None:
        close(task.result())


async def happy_connect(host: str, port: int, source: str | None) -> Stream:
    """A TCP connection to a host name's addresses, Happy Eyeballs style: a dead first address
    (a blackholed IPv6 path) costs `STAGGER`, not the query's whole timeout."""
    addrs = await _addrinfo(host, port, source)
    return await first_connected([functools.partial(_tcp, fam, addr, source)
                                  for fam, addr in addrs], _abort)


class DoHClient:
    """DoH exchanges (RFC 8484 POST), at most `slots` at once, each over one of up to `slots`
    kept-alive HTTP/1.1 connections. A query waits for a free slot before its timeout starts:
    a timeout means a slow resolver, not our queue.

    Each connection is asyncio's own TLS stream with h11 framing: httpx (through httpcore and
    anyio, TLS in Python memory buffers) cost 0.6-0.7 ms more CPU per query (measured with
    `bench_check.py --steady --shipped-control`, two DoH queries per URL). The request's bytes
    are h11's, made once per length, and an answer that comes whole and plain in one read is
    read without h11 (`_plain_response`): h11's events cost 0.1-0.15 ms of a query's 0.35.
    A connection the server closed while idle (or sent unasked-for bytes on) is replaced before
    use, and one that ends before any byte of the answer (closed just as it was reused) is
    replaced once for that query. A host name's addresses are raced (`happy_connect`), and an
    answer must answer its query as over UDP (`_Query.answered_by`, id 0)."""

    def __init__(self, ctx: ssl.SSLContext, slots: int, *, user_agent: str,
                 source: str | None = None):
        self.ctx = ctx  # verified: the system trust store plus the probe's CA bundle
        self.user_agent = user_agent
        self.source = source
        self.slots = asyncio.Semaphore(slots)
        self._idle: list[_Slot] = []
        self._all: list[_Slot] = []
        self._origins: dict[str, _Origin] = {}

    def _take(self, url: str) -> _Slot:
        """An idle slot, the latest one used for this URL first (its connection is open to
        that resolver), else the latest one used, else a new one."""
        for i in range(len(self._idle) - 1, -1, -1):
            if self._idle[i].url == url:
                return self._idle.pop(i)
        if self._idle:
            return self._idle.pop()
        slot = _Slot()
        self._all.append(slot)
        return slot

    async def exchange(self, url: str, query: _Query, timeout: float) -> Reply:
        """Ask one query (its id is sent as 0, as RFC 8484 asks for cache friendliness). An
        answer to another question (or id) is `DoHMismatch`, and its connection is dropped."""
        origin = self._origins.get(url)
        if origin is None:
            origin = self._origins[url] = _Origin.of(url, self.user_agent)
        async with self.slots:
            slot = self._take(url)
            try:
                async with asyncio.timeout(timeout):
                    body = await self._exchange(slot, origin, query)
            finally:
                slot.url = url
                self._idle.append(slot)
        return parse_reply(body)

    async def _exchange(self, slot: _Slot, origin: _Origin, query: _Query) -> bytes:
        wire = b"\0\0" + query.wire[2:]
        conn = slot.conn
        if conn is not None and (conn.server != (origin.host, origin.port) or conn.idle_closed()):
            conn.close()  # another resolver's, or closed by its server while idle
            conn = slot.conn = None
        for _ in range(2):
            if conn is None:
                conn = slot.conn = await self._connect(origin)
            try:
                body = await conn.ask(origin, wire)
            except _Stale:
                conn.close()
                conn = slot.conn = None
                continue  # a fresh connection (which is not `used`: never stale) asks again
            except BaseException:
                conn.close()  # mid-exchange: its state is unknown
                slot.conn = None
                raise
            mismatch = body[:2] != b"\0\0" or not query.answered_by(body)
            # a DNS answer to another query puts the connection out of step (every later
            # answer on it could be for the query before); a server that said it closes
            # (Connection: close, HTTP/1.0) is done either way
            if not conn.keep or (mismatch and len(body) >= 12 and body[2] & 0x80):
                conn.close()
                slot.conn = None
            if mismatch:
                raise DoHMismatch("DoH answer to another query")
            return body
        raise AssertionError("unreachable: a fresh connection is never stale")

    async def _connect(self, origin: _Origin) -> _Connection:
        reader, writer = await happy_connect(origin.host, origin.port, self.source)
        try:
            # server_hostname: SNI and the name checked; an IP literal is checked as an
            # address and sent without SNI (the ssl module leaves it out)
            await writer.start_tls(self.ctx, server_hostname=origin.host)
        except ConnectionResetError as exc:
            writer.transport.abort()
            if not F.fin_in_handshake(exc):
                raise
            # a FIN, raised as EOF outside the handler so that the reset is not in its
            # context for `failures.classify`
        except BaseException:
            writer.transport.abort()
            raise
        else:
            return _Connection(origin, reader, writer)
        raise EOFError("DoH server closed the connection during the handshake")

    async def aclose(self) -> None:
        """Close every connection (TLS close_notify), waiting at most a second for servers."""
        slots, self._all, self._idle = self._all, [], []
        writers = [slot.conn.writer for slot in slots if slot.conn is not None]
        for writer in writers:
            writer.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):
                await asyncio.gather(*(w.wait_closed() for w in writers), return_exceptions=True)
        for writer in writers:
            writer.transport.abort()  # a server that did not answer the close


DOH_MAX = 65535


async def resolve_all(
    specs: list[ResolverSpec], host: str, *, timeout: float, source: str | None,
    http: DoHClient | None, qtypes: tuple[str, ...] = ("A", "AAAA"), allow: Networks = (),
) -> list[DnsQuery]:
    """A and AAAA through every resolver, concurrently; an IP-literal host needs no DNS."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return []
    if len(specs) == 1:  # no task to gather one resolver's queries in
        return await query_types(specs[0], host, qtypes, timeout=timeout, source=source,
                                 http=http, allow=allow)
    per = await asyncio.gather(*(query_types(s, host, qtypes, timeout=timeout, source=source,
                                             http=http, allow=allow) for s in specs))
    return [q for qs in per for q in qs]
