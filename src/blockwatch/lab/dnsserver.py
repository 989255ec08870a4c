"""A small authoritative-looking resolver for the lab: one zone table per resolver, UDP + TCP."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import ipaddress
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

from .net import TaskSet, recv_exactly


def normalize(name: str) -> str:
    return name.lower().rstrip(".")


@dataclass(frozen=True)
class DNSReply:
    """What a resolver does for a name. Build with the `DNS` factory."""

    kind: str  # answer | cname | nxdomain | servfail | refused | noanswer | drop | inject
    addresses: tuple[str, ...] = ()
    ttl: int = 300
    delay: float = 0.0
    target: str | None = None  # cname
    forged: DNSReply | None = None  # inject
    real: DNSReply | None = None  # inject (None: the name's genuine records)
    gap: float = 0.01  # inject: seconds between the forged and the real reply


class DNS:
    """Factory of resolver behaviours for `Zone.set(name, ...)`."""

    @staticmethod
    def answer(addresses: Iterable[str] = (), *, ttl: int = 300, delay: float = 0.0) -> DNSReply:
        """A and/or AAAA records (split by address family); other qtypes get NOERROR/no data."""
        addrs = tuple(addresses) if not isinstance(addresses, str) else (addresses,)
        for a in addrs:
            ipaddress.ip_address(a)
        return DNSReply("answer", addrs, ttl, delay)

    @staticmethod
    def cname(target: str, *, ttl: int = 300, delay: float = 0.0) -> DNSReply:
        """A CNAME to `target`, followed inside the same zone."""
        return DNSReply("cname", ttl=ttl, delay=delay, target=normalize(target))

    @staticmethod
    def nxdomain(*, delay: float = 0.0) -> DNSReply:
        return DNSReply("nxdomain", delay=delay)

    @staticmethod
    def servfail(*, delay: float = 0.0) -> DNSReply:
        return DNSReply("servfail", delay=delay)

    @staticmethod
    def refused(*, delay: float = 0.0) -> DNSReply:
        return DNSReply("refused", delay=delay)

    @staticmethod
    def noanswer(*, delay: float = 0.0) -> DNSReply:
        """NOERROR with an empty answer section."""
        return DNSReply("noanswer", delay=delay)

    @staticmethod
    def drop() -> DNSReply:
        """No reply at all: the client times out."""
        return DNSReply("drop")

    @staticmethod
    def inject(
        forged: DNSReply | Iterable[str],
        *,
        real: DNSReply | None = None,
        gap: float = 0.01,
        delay: float = 0.0,
    ) -> DNSReply:
        """On-path injection: a forged reply at once, then the real one `gap` seconds later.

        `forged` is a DNSReply or a list of addresses. `real` defaults to the name's genuine
        records (what the lab published for the site), or NXDOMAIN if it has none.
        """
        if not isinstance(forged, DNSReply):
            forged = DNS.answer(forged)
        return DNSReply("inject", delay=delay, forged=forged, real=real, gap=gap)


@dataclass
class Query:
    source: str
    qname: str
    qtype: str
    transport: str  # "udp" | "tcp" | "doh"
    time: float = field(default_factory=time.monotonic)


class Zone:
    """The name table of one resolver. Names not in the table get NXDOMAIN."""

    def __init__(self, label: str, genuine: Callable[[str], DNSReply | None] = lambda name: None) -> None:
        self.label = label
        self.records: dict[str, DNSReply] = {}
        self.delay = 0.0  # added to every reply of this resolver
        self.queries: list[Query] = []
        self.malformed = 0
        self._genuine = genuine

    def set(self, name: str, reply: DNSReply) -> None:
        if not isinstance(reply, DNSReply):
            raise TypeError("use DNS.answer(...), DNS.nxdomain(), ...")
        self.records[normalize(name)] = reply

    def get(self, name: str) -> DNSReply | None:
        return self.records.get(normalize(name))

    def remove(self, name: str) -> None:
        self.records.pop(normalize(name), None)

    def lookup(self, name: str) -> DNSReply:
        return self.records.get(normalize(name)) or DNSReply("nxdomain")

    def queried(self, name: str, source: str | None = None) -> list[Query]:
        name = normalize(name)
        return [q for q in self.queries if q.qname == name and source in (None, q.source)]

    # -- answering ----------------------------------------------------------------------
    def plan(
        self, query: dns.message.Message, source: str, transport: str
    ) -> list[tuple[float, dns.message.Message]]:
        """The replies to send for `query`, each with its delay (seconds from now)."""
        if not query.question:
            resp = dns.message.make_response(query)
            resp.set_rcode(dns.rcode.FORMERR)
            return [(self.delay, resp)]
        question = query.question[0]
        name = normalize(question.name.to_text())
        self.queries.append(Query(source, name, dns.rdatatype.to_text(question.rdtype), transport))
        reply = self.lookup(name)
        base = self.delay + reply.delay
        if reply.kind == "drop":
            return []
        if reply.kind == "inject":
            assert reply.forged is not None
            real = reply.real or self._genuine(name) or DNSReply("nxdomain")
            return [
                (base, self._build(query, reply.forged)),
                (base + reply.gap, self._build(query, real)),
            ]
        return [(base, self._build(query, reply))]

    def _build(self, query: dns.message.Message, reply: DNSReply) -> dns.message.Message:
        resp = dns.message.make_response(query)
        resp.flags |= dns.flags.RA
        question = query.question[0]
        if reply.kind == "inject":  # nested injection makes no sense: use the forged part
            assert reply.forged is not None
            reply = reply.forged
        owner = question.name
        for _ in range(8):  # follow CNAMEs inside the zone
            if reply.kind == "answer":
                self._add_addresses(resp, owner, question.rdtype, reply)
                return resp
            if reply.kind == "cname":
                assert reply.target is not None
                target = dns.name.from_text(reply.target)
                resp.answer.append(
                    dns.rrset.from_text_list(owner, reply.ttl, "IN", "CNAME", [target.to_text()])
                )
                if question.rdtype == dns.rdatatype.CNAME:
                    return resp
                owner, reply = target, self.lookup(reply.target)
                continue
            rcode = {
                "nxdomain": dns.rcode.NXDOMAIN,
                "servfail": dns.rcode.SERVFAIL,
                "refused": dns.rcode.REFUSED,
            }.get(reply.kind, dns.rcode.NOERROR)
            resp.set_rcode(rcode)
            return resp
        resp.set_rcode(dns.rcode.SERVFAIL)  # CNAME loop
        return resp

    @staticmethod
    def _add_addresses(resp: dns.message.Message, owner: dns.name.Name, rdtype: int, reply: DNSReply) -> None:
        v4 = [a for a in reply.addresses if ipaddress.ip_address(a).version == 4]
        v6 = [a for a in reply.addresses if ipaddress.ip_address(a).version == 6]
        if rdtype in (dns.rdatatype.A, dns.rdatatype.ANY) and v4:
            resp.answer.append(dns.rrset.from_text_list(owner, reply.ttl, "IN", "A", v4))
        if rdtype in (dns.rdatatype.AAAA, dns.rdatatype.ANY) and v6:
            resp.answer.append(dns.rrset.from_text_list(owner, reply.ttl, "IN", "AAAA", v6))


def doh_exchange(zone: Zone, method: str, path: str, body: bytes, source: str) -> tuple[float, bytes] | None:
    """RFC 8484 over the lab's HTTP server: (delay, wire reply), None for `drop`.

    Raises ValueError for a request that carries no parseable DNS query.
    """
    if method == "GET":
        values = parse_qs(urlsplit(path).query).get("dns")
        if not values:
            raise ValueError("no dns parameter")
        encoded = values[0]
        try:
            data = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except (ValueError, binascii.Error) as exc:
            raise ValueError("bad base64url") from exc
    else:
        data = body
    query = parse_query(data)
    if query is None:
        zone.malformed += 1
        raise ValueError("malformed DNS query")
    plan = zone.plan(query, source, "doh")
    if not plan:
        return None
    delay, msg = plan[0]  # no on-path injection inside TLS: the first reply only
    return delay, msg.to_wire()


def parse_query(data: bytes) -> dns.message.Message | None:
    try:
        msg = dns.message.from_wire(data)
    except Exception:
        return None
    if msg.flags & dns.flags.QR:  # a response, not a query
        return None
    return msg


class _UDPProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DNSServer) -> None:
        self.server = server

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            self.server.on_datagram(data, addr)
        except Exception as exc:  # never let one query kill the endpoint
            self.server.tasks.errors.append(exc)

    def error_received(self, exc: Exception) -> None:
        pass


class DNSServer:
    """Serves one Zone on (address, port) over UDP and TCP."""

    def __init__(
        self,
        zone: Zone,
        udp_sock: socket.socket,
        tcp_sock: socket.socket,
        tasks: TaskSet,
        latency: Callable[[], float],
    ) -> None:
        self.zone = zone
        self.udp_sock = udp_sock
        self.tcp_sock = tcp_sock
        self.tasks = tasks
        self.latency = latency
        self.address, self.port = udp_sock.getsockname()
        self._udp: asyncio.DatagramTransport | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._udp, _ = await loop.create_datagram_endpoint(lambda: _UDPProtocol(self), sock=self.udp_sock)
        self.tcp_sock.listen(128)
        self.tcp_sock.setblocking(False)
        self.tasks.spawn(self._accept_loop())

    def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
        self.tcp_sock.close()

    # -- UDP ----------------------------------------------------------------------------
    def on_datagram(self, data: bytes, addr: tuple[str, int]) -> None:
        query = parse_query(data)
        if query is None:
            self.zone.malformed += 1
            return
        for delay, msg in self.zone.plan(query, addr[0], "udp"):
            wire = msg.to_wire()
            total = delay + self.latency()
            if total <= 0:
                self._sendto(wire, addr)
            else:
                self.tasks.spawn(self._send_later(total, wire, addr))

    def _sendto(self, wire: bytes, addr: tuple[str, int]) -> None:
        if self._udp is not None and not self._udp.is_closing():
            self._udp.sendto(wire, addr)

    async def _send_later(self, delay: float, wire: bytes, addr: tuple[str, int]) -> None:
        await asyncio.sleep(delay)
        self._sendto(wire, addr)

    # -- TCP ----------------------------------------------------------------------------
    async def _accept_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, peer = await loop.sock_accept(self.tcp_sock)
            except OSError:
                if self.tcp_sock.fileno() < 0:
                    return
                await asyncio.sleep(0.01)
                continue
            conn.setblocking(False)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.tasks.spawn(self._tcp_connection(conn, peer))

    async def _tcp_connection(self, sock: socket.socket, peer: tuple[str, int]) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                header = await recv_exactly(sock, 2)
                if header is None:
                    return
                data = await recv_exactly(sock, int.from_bytes(header, "big"))
                if data is None:
                    return
                query = parse_query(data)
                if query is None:
                    self.zone.malformed += 1
                    return
                start = loop.time()
                for delay, msg in self.zone.plan(query, peer[0], "tcp"):
                    wait = start + delay + self.latency() - loop.time()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    wire = msg.to_wire()
                    await loop.sock_sendall(sock, len(wire).to_bytes(2, "big") + wire)
        except OSError:
            return
        finally:
            with contextlib.suppress(OSError):
                sock.close()
