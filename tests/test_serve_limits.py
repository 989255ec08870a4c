"""`serve` against slow clients: a request's headers (and each piece of its body) must arrive
within `[server] request_timeout`, one client address holds at most
`max_connections_per_client` connections, and everyone else is still answered meanwhile.
Real uvicorn on loopback; clients from distinct 127.0.0.0/8 source addresses. Synchronised on
the server's answers and on EOF, never on sleeps (the bench: benchmarks/bench_slowloris.py)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from blockwatch.collector.limits import client_key
from lab import Lab
from test_collector_support import running_collector, tokens, write_collector_config

PARTIAL = b"GET /api/v1/health HTTP/1.1\r\nHost: collector\r\nX-Slow: "


async def connect(port: int, source: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


async def health(port: int, source: str) -> bytes:
    r, w = await connect(port, source)
    w.write(b"GET /api/v1/health HTTP/1.1\r\nHost: collector\r\nConnection: close\r\n\r\n")
    try:
        return await asyncio.wait_for(r.read(), 20)  # a bound for a broken server, not a sync
    finally:
        w.close()


async def eof(r: asyncio.StreamReader) -> bytes:
    """Everything the server sent until it closed (a bound only against a hang)."""
    return await asyncio.wait_for(r.read(), 20)


async def test_slow_clients_are_capped_and_others_answered(lab: Lab, tmp_path: Path,
                                                           sqlite_url: str) -> None:
    cfg = write_collector_config(tmp_path, lab, sqlite_url, agents=tokens("a1"), urls=[],
                                 server='request_timeout = "60s"\nmax_connections_per_client = 50')
    async with running_collector(cfg) as c:
        slow = []
        for _ in range(300):
            r, w = await connect(c.port, "127.0.0.2")
            w.write(PARTIAL)
            slow.append((r, w))
        # another address is answered while 300 connections from 127.0.0.2 hang mid-headers
        got = await health(c.port, "127.0.0.3")
        assert got.startswith(b"HTTP/1.1 200") and b'"status":"ok"' in got
        # connections are accepted in order: the first 50 are held, the other 250 were closed
        # at once, before any byte of an answer
        assert [await eof(r) for r, _ in slow[50:]] == [b""] * 250
        # the held ones are live connections: finishing their request gets an answer
        for _, w in slow[:50]:
            w.write(b"1\r\nConnection: close\r\n\r\n")
        answers = await asyncio.gather(*(eof(r) for r, _ in slow[:50]))
        assert all(a.startswith(b"HTTP/1.1 200") for a in answers)
        for _, w in slow:
            w.close()
        # room again for that address
        assert (await health(c.port, "127.0.0.2")).startswith(b"HTTP/1.1 200")


async def test_requests_that_stall_are_closed_after_the_deadline(lab: Lab, tmp_path: Path,
                                                                 sqlite_url: str) -> None:
    tok = tokens("a1")
    cfg = write_collector_config(tmp_path, lab, sqlite_url, agents=tok, urls=[],
                                 server='request_timeout = "0.5s"')
    async with running_collector(cfg) as c:
        t0 = time.monotonic()
        silent = await connect(c.port, "127.0.0.4")  # connects, sends nothing
        headers = await connect(c.port, "127.0.0.4")  # half a request's headers
        headers[1].write(PARTIAL)
        body = await connect(c.port, "127.0.0.4")  # an agent's headers, then part of the body
        body[1].write(b"POST /api/v1/measurements HTTP/1.1\r\nHost: collector\r\n"
                      b"Authorization: Bearer " + tok["a1"].encode() + b"\r\n"
                      b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"mea")
        # a well-behaved client on a kept-alive connection, meanwhile: answered every time
        r, w = await connect(c.port, "127.0.0.4")
        for _ in range(3):
            w.write(b"GET /api/v1/health HTTP/1.1\r\nHost: collector\r\n\r\n")
            head = await r.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200")
            length = next(int(x.split(b":")[1]) for x in head.split(b"\r\n")
                          if x.lower().startswith(b"content-length:"))
            assert b'"status":"ok"' in await r.readexactly(length)
        for conn in (silent, headers, body):
            assert await eof(conn[0]) == b""  # closed without an answer
            conn[1].close()
        assert time.monotonic() - t0 >= 0.5  # not before the deadline
        w.close()


def test_client_key_groups_ipv6_by_64() -> None:
    assert client_key("2001:db8:1:2:3:4:5:6") == client_key("2001:db8:1:2::9") == "2001:db8:1:2::/64"
    assert client_key("::ffff:192.0.2.1") == "192.0.2.1" == client_key("192.0.2.1")
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
