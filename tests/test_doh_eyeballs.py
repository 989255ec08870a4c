"""DoH connections to a host name with several addresses race them Happy Eyeballs style: a dead
first address costs the stagger, not the query's timeout. The racing is tested with scripted
connect attempts; the whole path with real TLS servers on 127/8 behind a real connect stall
(the lab's blackhole: a listener whose accept queue is full drops every SYN) and a refusal."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from lab.certs import server_context
from lab.net import blackhole_socket

from blockwatch.probe import dnsprobe
from blockwatch.probe.dnsprobe import STAGGER, first_connected, interleave
from lab import Lab
from test_doh_connections import ANSWER, Scripted, ask

Attempt = Callable[[], Awaitable[socket.socket]]


def close(sock: socket.socket) -> None:
    sock.close()


class Attempts:
    """Connect attempts that succeed, fail or hang as told, recording when each started and
    whether it was cancelled."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}
        self.cancelled: set[str] = set()
        self.made: list[socket.socket] = []

    def ok(self, name: str) -> Attempt:
        async def attempt() -> socket.socket:
            self.started[name] = asyncio.get_running_loop().time()
            a, b = socket.socketpair()
            b.close()
            self.made.append(a)
            return a
        return attempt

    def fail(self, name: str, exc: OSError) -> Attempt:
        async def attempt() -> socket.socket:
            self.started[name] = asyncio.get_running_loop().time()
            raise exc
        return attempt

    def hang(self, name: str) -> Attempt:
        async def attempt() -> socket.socket:
            self.started[name] = asyncio.get_running_loop().time()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled.add(name)
                raise
            raise AssertionError("unreachable")
        return attempt


async def test_a_hanging_first_address_costs_one_stagger() -> None:
    a = Attempts()
    sock = await first_connected([a.hang("dead"), a.ok("live"), a.ok("unused")], close)
    assert sock is a.made[0]
    sock.close()
    assert STAGGER <= a.started["live"] - a.started["dead"] < STAGGER + 0.5
    assert a.cancelled == {"dead"}  # the loser is not left connecting
    assert "unused" not in a.started


async def test_a_failed_attempt_starts_the_next_at_once() -> None:
    a = Attempts()
    sock = await first_connected([a.fail("refused", ConnectionRefusedError(111, "refused")),
                                  a.ok("live")], close)
    sock.close()
    assert a.started["live"] - a.started["refused"] < STAGGER


async def test_when_every_attempt_fails() -> None:
    a = Attempts()
    same = [a.fail(str(i), ConnectionRefusedError(111, "Connection refused")) for i in range(2)]
    with pytest.raises(ConnectionRefusedError):
        await first_connected(same, close)
    # different errors: one error naming them all, as asyncio.open_connection raised
    with pytest.raises(OSError, match="Multiple exceptions") as info:
        await first_connected([a.fail("x", ConnectionRefusedError(111, "refused")),
                               a.fail("y", OSError(113, "No route to host"))], close)
    assert "refused" in str(info.value) and "No route to host" in str(info.value)


async def test_cancelled_while_racing_cancels_every_attempt() -> None:
    a = Attempts()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(STAGGER * 1.5):
            await first_connected([a.hang("one"), a.hang("two")], close)
    assert a.cancelled == {"one", "two"}


def test_families_alternate_and_repeats_go() -> None:
    v6 = [(socket.AF_INET6, (f"2001:db8::{i}", 443, 0, 0)) for i in range(3)]
    v4 = [(socket.AF_INET, (f"192.0.2.{i}", 443)) for i in range(2)]
    assert interleave([*v6, *v4, v6[0]]) == [v6[0], v4[0], v6[1], v4[1], v6[2]]


@contextlib.asynccontextmanager
async def named_server(monkeypatch: pytest.MonkeyPatch, name: str, first: str, live: str,
                       dead: str) -> AsyncIterator[tuple[Scripted, str]]:
    """A DoH server for `name` on `live`, the name resolving to `first` then `live`: `dead`
    says what is at `first` (a blackhole, or nothing: refused)."""
    server = Scripted([])
    listener = await asyncio.start_server(server._serve, live, 0, ssl=server_context([name]))
    port = listener.sockets[0].getsockname()[1]
    held = blackhole_socket(first, port) if dead == "blackhole" else []

    async def addrinfo(host: str, p: int, source: str | None) -> list[tuple[int, Any]]:
        assert (host, p) == (name, port)
        return [(socket.AF_INET, (first, port)), (socket.AF_INET, (live, port))]

    # the name is resolved by the loop (uvloop's resolver cannot be patched): its answer is
    monkeypatch.setattr(dnsprobe, "_addrinfo", addrinfo)
    try:
        yield server, f"https://{name}:{port}/dns-query"
    finally:
        listener.close()
        for sock in held:
            sock.close()


async def test_a_blackholed_first_address_is_passed_over(lab: Lab,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # one address after the other (the connect to the first one never ends) timed out here
    loop = asyncio.get_running_loop()
    async with named_server(monkeypatch, "eyeballs.doh.test", "127.0.9.80", "127.0.9.81",
                            "blackhole") as (server, url):
        t0 = loop.time()
        assert await ask(lab, url, ["a.test", "b.test"], timeout=2.0) == [(None, [ANSWER])] * 2
        assert loop.time() - t0 < 2.0
    assert server.connections == 1  # and kept for the second query


async def test_a_refused_first_address_is_passed_over(lab: Lab,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    async with named_server(monkeypatch, "eyeballs.doh.test", "127.0.9.82", "127.0.9.83",
                            "refused") as (server, url):
        assert await ask(lab, url, ["a.test"]) == [(None, [ANSWER])]
    assert server.connections == 1


async def test_a_source_address_keeps_to_its_family() -> None:
    # "localhost" has ::1 too where IPv6 is on: an IPv4 source asks for IPv4 addresses only
    got = await dnsprobe._addrinfo("localhost", 443, "127.0.0.1")
    assert got and all(fam == socket.AF_INET for fam, _ in got)
