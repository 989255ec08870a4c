"""The UDP exchange's own socket (made for a resolver given as an address) against the loop's
path: a zoned source address binds as before, and a query cancelled while its endpoint is made
leaves no socket open (uvloop does not close the transport it made then; asyncio does)."""
from __future__ import annotations

import asyncio
import os
import socket

import dns.message
import dns.rrset
import pytest

from blockwatch.probe import dnsprobe


def _link_local() -> str | None:
    """A link-local address of this host with its zone ("fe80::1%eth0"), if it has one."""
    try:
        lines = open("/proc/net/if_inet6").read().split()
    except OSError:
        return None
    rows = [lines[i:i + 6] for i in range(0, len(lines), 6)]
    for hexaddr, _, _, scope, _, name in rows:
        if scope == "20":  # link scope
            addr = socket.inet_ntop(socket.AF_INET6, bytes.fromhex(hexaddr))
            return f"{addr}%{name}"
    return None


class Answering(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = transport

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        msg = dns.message.make_response(dns.message.from_wire(data))
        msg.answer.append(dns.rrset.from_text(msg.question[0].name, 60, "IN", "A", "192.0.2.1"))
        self.t.sendto(msg.to_wire(), addr)  # type: ignore[attr-defined]


@pytest.mark.skipif(_link_local() is None, reason="this host has no link-local IPv6 address")
async def test_a_zoned_source_address_binds_for_an_address_resolver_as_for_a_name() -> None:
    """A vantage whose source is a zoned (link-local) IPv6 address: the loop's path resolves
    the zone and binds; `_connected_udp` hands "fe80::..%eth0" to socket.bind, which drops the
    zone (EINVAL). The same query then ends as a bind failure, not as before."""
    src = _link_local()
    assert src is not None
    loop = asyncio.get_running_loop()
    got = {}
    orig = dnsprobe._ip_literal
    for path, literal in (("own socket", orig), ("loop's endpoint", lambda h: False)):
        dnsprobe._ip_literal = literal  # type: ignore[assignment]
        t, _ = await loop.create_datagram_endpoint(Answering, local_addr=("::1", 0))
        try:
            spec = dnsprobe.ResolverSpec.parse(f"[::1]:{t.get_extra_info('sockname')[1]}")
            got[path] = (await dnsprobe.query(spec, "site.test", "A", timeout=0.5, http=None,
                                              source=src)).failure
        finally:
            t.close()
            dnsprobe._ip_literal = orig  # type: ignore[assignment]
    # the loop's path binds (here a link-local source cannot reach ::1: a timeout; on a link
    # with the resolver on it, an answer); ours fails at bind: 'unknown_failure'
    assert got["own socket"] == got["loop's endpoint"], got


async def test_a_udp_query_cancelled_as_its_endpoint_is_made_leaves_no_socket_open() -> None:
    """Cancelled at its first suspension (the endpoint's waiter): asyncio closes the transport
    it made, uvloop's create_datagram_endpoint does not (no cleanup around `await waiter`), and
    the socket `_connected_udp` made stays open, its transport reading, for the process's life."""
    loop = asyncio.get_running_loop()
    t, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                               local_addr=("127.0.0.1", 0))
    port = t.get_extra_info("sockname")[1]
    spec = dnsprobe.ResolverSpec.parse(f"127.0.0.1:{port}")
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        task = asyncio.ensure_future(dnsprobe.query_types(
            spec, "site.test", ("A", "AAAA"), timeout=5, http=None, source="127.0.0.9"))
        await asyncio.sleep(0)  # the task runs to its first suspension
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    t.close()
    for _ in range(10):  # a transport's close completes in the loop's next iterations
        await asyncio.sleep(0)
    assert len(os.listdir("/proc/self/fd")) < before  # the server's socket closed, none left
