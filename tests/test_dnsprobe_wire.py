"""Replies are matched to queries on the wire (no parse for a stranger's datagram): the check
must agree with dnspython's own `Message.is_response`."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rrset
import pytest

from blockwatch.probe import dnsprobe


def _reply(query: dns.message.Message, **change: object) -> dns.message.Message:
    r = dns.message.make_response(query)
    r.answer.append(dns.rrset.from_text(query.question[0].name, 60, "IN", "A", "192.0.2.1"))
    if "qname" in change:
        r.question = [dns.rrset.RRset(dns.name.from_text(str(change["qname"])), 1, query.question[0].rdtype)]
    if "qtype" in change:
        r.question = [dns.rrset.RRset(query.question[0].name, 1, change["qtype"])]  # type: ignore[arg-type]
    if change.get("no_question"):
        r.question = []
    if "rcode" in change:
        r.set_rcode(change["rcode"])  # type: ignore[arg-type]
    if change.get("not_response"):
        r.flags &= ~dns.flags.QR
    if "opcode" in change:
        r.set_opcode(change["opcode"])  # type: ignore[arg-type]
    return r


CASES = [
    {}, {"qname": "RATEL.Test."}, {"qname": "other.test."}, {"qtype": 28}, {"not_response": True},
    {"opcode": dns.opcode.NOTIFY}, {"no_question": True},
    {"no_question": True, "rcode": dns.rcode.FORMERR}, {"no_question": True, "rcode": dns.rcode.REFUSED},
    {"no_question": True, "rcode": dns.rcode.NXDOMAIN}, {"rcode": dns.rcode.SERVFAIL},
]


@pytest.mark.parametrize("change", CASES)
def test_wire_match_agrees_with_dnspython(change: dict[str, object]) -> None:
    [q] = dnsprobe._queries("ratel.test", ("A",))
    msg = q.message()
    reply = _reply(msg, **change)
    assert q.answered_by(reply.to_wire()) == msg.is_response(reply)


def test_queries_of_one_name_have_distinct_ids_and_share_the_rest() -> None:
    a, aaaa = dnsprobe._queries("ratel.test", ("A", "AAAA"))
    assert a.id != aaaa.id
    again = dnsprobe._queries("ratel.test", ("A",))[0]
    assert again.wire[2:] == a.wire[2:] and again.message().question == a.message().question
    assert a.message().flags & dns.flags.RD and a.message().edns == 0


async def test_a_cancelled_query_leaves_no_unread_errors() -> None:
    import asyncio
    import gc
    import socket

    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # a resolver that never answers
    silent.bind(("127.0.0.1", 0))
    silent.setblocking(False)
    spec = dnsprobe.ResolverSpec.parse(f"127.0.0.1:{silent.getsockname()[1]}")
    loop = asyncio.get_running_loop()
    errors: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _loop, ctx: errors.append(ctx))
    try:
        task = asyncio.ensure_future(dnsprobe.resolve_all([spec], "ratel.test", timeout=30,
                                                          source=None, http=None))
        await loop.sock_recv(silent, 512)  # the query went out: the exchange is under way
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(3):  # let the closed socket's connection_lost callback run (call_soon)
            await asyncio.sleep(0)
        gc.collect()
        assert errors == []
    finally:
        loop.set_exception_handler(None)
        silent.close()


@pytest.mark.parametrize("rdclass", [3, 254, 255])  # CH, NONE, ANY
async def test_an_address_record_of_another_class_is_not_an_answer(rdclass: int) -> None:
    """An injected reply whose A record is not of class IN (dnspython leaves its data unparsed)
    is recorded like any reply without an address, not an exception that loses the URL's round."""
    import asyncio
    import struct

    def reply(query: bytes) -> bytes:
        end = 12
        while query[end]:
            end += query[end] + 1
        end += 5
        return (query[:2] + struct.pack("!5H", 0x8180, 1, 1, 0, 0) + query[12:end]
                + b"\xc0\x0c" + struct.pack("!HHIH", 1, rdclass, 60, 4) + bytes([192, 0, 2, 1]))

    class Server(asyncio.DatagramProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            self.transport.sendto(reply(data), addr)  # type: ignore[attr-defined]

    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(Server, local_addr=("127.0.0.1", 0))
    try:
        port = transport.get_extra_info("sockname")[1]
        spec = dnsprobe.ResolverSpec.parse(f"127.0.0.1:{port}")
        got = await dnsprobe.query(spec, "site.test", "A", timeout=5, http=None, linger=0.2)
    finally:
        transport.close()
    # no address (CH's data does not even parse as one: a bogus reply), never an exception
    assert got.answers == [] and got.failure in ("dns_no_answer", "dns_bogus_reply")
    assert "192.0.2.1" not in repr(got)  # nor in a second reply (linger)


def _answer(query: bytes, address: str) -> bytes:
    msg = dns.message.make_response(dns.message.from_wire(query))
    msg.answer.append(dns.rrset.from_text(msg.question[0].name, 60, "IN", "A", address))
    return msg.to_wire()


@pytest.mark.parametrize("resolver", ["127.0.0.1", "localhost"])  # an address, a name
async def test_udp_queries_leave_from_the_source_on_a_socket_connected_to_the_resolver(
        resolver: str) -> None:
    """From the view's source address; a reply from any other address (here sent first, with
    another answer) is not read, whatever the resolver is named by."""
    import asyncio

    sources: list[str] = []
    spoofer: list[asyncio.DatagramTransport] = []

    class Server(asyncio.DatagramProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            sources.append(addr[0])
            spoofer[0].sendto(_answer(data, "192.0.2.66"), addr)
            self.transport.sendto(_answer(data, "192.0.2.1"), addr)  # type: ignore[attr-defined]

    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(Server, local_addr=("127.0.0.1", 0))
    other, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                                   local_addr=("127.0.0.2", 0))
    spoofer.append(other)
    try:
        port = transport.get_extra_info("sockname")[1]
        spec = dnsprobe.ResolverSpec.parse(f"{resolver}:{port}")
        got = await dnsprobe.query(spec, "site.test", "A", timeout=5, http=None,
                                   source="127.0.0.9", linger=0.2)
    finally:
        transport.close()
        other.close()
    assert sources == ["127.0.0.9"]
    assert (got.failure, got.answers, got.extra_replies) == (None, ["192.0.2.1"], [])


async def test_a_source_address_not_on_this_host_fails_alike_for_an_address_and_a_name() -> None:
    got = [await dnsprobe.query(dnsprobe.ResolverSpec.parse(f"{host}:53"), "site.test", "A",
                                timeout=2, http=None, source="192.0.2.55")
           for host in ("127.0.0.1", "localhost")]
    assert got[0].failure is not None and got[0].failure == got[1].failure
    assert got[0].answers == got[1].answers == []
