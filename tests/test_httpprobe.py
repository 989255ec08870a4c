"""The HTTP step on raw servers that misbehave in ways a real site or middlebox can: garbage
instead of HTTP, a close in the middle of a body, a gzip bomb, odd URLs."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from blockwatch.probe import failures as F
from blockwatch.probe import httpprobe

Handler = Callable[[bytes], bytes]


@asynccontextmanager
async def raw_server(reply: Handler) -> AsyncIterator[tuple[int, list[bytes]]]:
    """Answers each request (its head) with `reply(head)` and closes."""
    seen: list[bytes] = []

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        head = await r.readuntil(b"\r\n\r\n")
        seen.append(head)
        w.write(reply(head))
        await w.drain()
        w.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1], seen


def connector(calls: list[tuple[str, int]]) -> Callable[[str, int, bool], Awaitable[tuple]]:  # type: ignore[type-arg]
    async def connect(host: str, port: int, tls: bool) -> tuple:  # type: ignore[type-arg]
        calls.append((host, port))
        return "127.0.0.1", await asyncio.open_connection("127.0.0.1", port), None
    return connect


async def get(url: str, calls: list[tuple[str, int]] | None = None, limit: int = 1 << 20):  # type: ignore[no-untyped-def]
    return await httpprobe.fetch(url, opened={}, connect=connector(calls if calls is not None else []),
                                 body_limit=limit, user_agent="test", timeout=5)


async def test_garbage_instead_of_http_is_a_protocol_error() -> None:
    async with raw_server(lambda _: b"SSH-2.0-OpenSSH_9.6\r\n\r\n") as (port, _):
        res = await get(f"http://site.test:{port}/")
    assert res.failure == F.HTTP_PROTOCOL_ERROR and res.status is None


async def test_close_in_the_middle_of_a_body_is_eof() -> None:
    async with raw_server(lambda _: b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nhalf") as (port, _):
        res = await get(f"http://site.test:{port}/")
    assert res.status == 200 and res.failure == F.EOF_ERROR and res.body_length == 4


async def test_gzip_bomb_is_cut_at_the_cap() -> None:
    bomb = gzip.compress(b"\0" * 20_000_000)
    head = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(bomb)
    async with raw_server(lambda _: head + bomb) as (port, _):
        res = await get(f"http://site.test:{port}/", limit=64 * 1024)
    assert res.body_truncated and res.body_length == 64 * 1024 and res.failure is None


async def test_odd_urls_go_on_the_wire_encoded_and_redirects_are_followed() -> None:
    def reply(head: bytes) -> bytes:
        if head.startswith(b"GET /first"):
            return b"HTTP/1.1 302 Found\r\nLocation: /second page\r\nContent-Length: 0\r\n\r\n"
        return (b"HTTP/1.1 200 OK\r\nX-Dup: 1\r\nX-Dup: 2\r\nContent-Length: 32\r\n\r\n"
                b"<title>\xd0\x92\xd0\xbb\xd0\xb0\xd1\x81\xd1\x82\xd1\x8c</title>hello")
    calls: list[tuple[str, int]] = []
    async with raw_server(reply) as (port, seen):
        res = await get(f"http://сайт.test:{port}/first/новости?q=a b", calls)
    assert seen[0].startswith(b"GET /first/%D0%BD%D0%BE%D0%B2%D0%BE%D1%81%D1%82%D0%B8?q=a%20b HTTP/1.1")
    assert f"host: xn--80aswg.test:{port}".encode() in seen[0].lower()
    assert seen[1].startswith(b"GET /second%20page HTTP/1.1")
    assert [h.status for h in res.hops] == [302, 200] and len(calls) == 2
    assert res.status == 200 and res.title == "Власть" and res.headers["x-dup"] == "1, 2"
    assert res.hops[1].headers[:2] == [["x-dup", "1"], ["x-dup", "2"]]


async def test_a_redirect_to_a_host_without_address_is_reported() -> None:
    async def connect(host: str, port: int, tls: bool) -> tuple:  # type: ignore[type-arg]
        if host == "gone.test":
            return None, None, F.DNS_NO_ANSWER
        return "127.0.0.1", await asyncio.open_connection("127.0.0.1", port), None

    async with raw_server(lambda _: b"HTTP/1.1 301 Moved\r\nLocation: https://gone.test/\r\n"
                          b"Content-Length: 0\r\n\r\n") as (port, _):
        res = await httpprobe.fetch(f"http://site.test:{port}/", opened={}, connect=connect,
                                    body_limit=1024, user_agent="t", timeout=5)
    assert res.failure == F.DNS_NO_ANSWER and res.hops[-1].url == "https://gone.test/"


async def test_unusable_redirect_targets_are_the_servers_protocol_error() -> None:
    for location in (b"http://[::1", "http://\u00e4..test/".encode(), b"http://" + b"a" * 70 + b".test/"):
        calls: list[tuple[str, int]] = []
        async with raw_server(lambda _, loc=location: b"HTTP/1.1 302 Found\r\nLocation: " + loc
                              + b"\r\nContent-Length: 0\r\n\r\n") as (port, _):
            res = await get(f"http://site.test:{port}/", calls)
        assert res.failure == F.HTTP_PROTOCOL_ERROR, location
        assert res.hops[0].status == 302 and len(calls) == 1


async def test_connection_reset_while_waiting_for_the_request_is_connection_reset() -> None:
    import socket
    import struct

    async def reset(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        sock = w.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        w.transport.abort()

    server = await asyncio.start_server(reset, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:  # the TCP step's connection, reset by the peer before the HTTP step uses it
            await reader.read(1)
        except ConnectionResetError:
            pass
        res = await httpprobe.fetch(f"http://site.test:{port}/",
                                    opened={("site.test", port): ("127.0.0.1", (reader, writer))},
                                    connect=connector([]), body_limit=1024, user_agent="t", timeout=5)
    assert res.failure == F.CONNECTION_RESET and res.status is None


@asynccontextmanager
async def drip_server(interval: float, stop_after: int | None = None
                      ) -> AsyncIterator[int]:
    """Sends a response head for a 1 MB body, then one byte every `interval` s (after
    `stop_after` bytes: nothing more, the connection left open)."""
    done = asyncio.Event()

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await r.readuntil(b"\r\n\r\n")
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n")
        sent = 0
        try:
            while not done.is_set() and (stop_after is None or sent < stop_after):
                w.write(b"x")
                await w.drain()
                sent += 1
                await asyncio.sleep(interval)
            await done.wait()
        except (ConnectionError, OSError):
            pass
        finally:
            w.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with server:
        try:
            yield server.sockets[0].getsockname()[1]
        finally:
            done.set()


async def test_a_drip_faster_than_the_read_timeout_ends_at_the_deadline() -> None:
    async with drip_server(0.02) as port:
        res = await httpprobe.fetch(f"http://site.test:{port}/", opened={},
                                    connect=connector([]), body_limit=1 << 20,
                                    user_agent="test", timeout=0.2)
    assert res.status == 200 and res.failure == F.GENERIC_TIMEOUT
    assert res.deadline_exceeded and 0 < res.received_bytes == res.body_length  # type: ignore[operator]
    assert (res.hops[-1].failure, res.hops[-1].step) == (F.GENERIC_TIMEOUT, "http")


async def test_bytes_that_stop_end_at_the_read_timeout_not_the_deadline() -> None:
    async with drip_server(0.0, stop_after=3) as port:
        res = await httpprobe.fetch(f"http://site.test:{port}/", opened={},
                                    connect=connector([]), body_limit=1 << 20,
                                    user_agent="test", timeout=0.2)
    assert res.failure == F.GENERIC_TIMEOUT and res.received_bytes == 3
    assert not res.deadline_exceeded


async def test_a_failed_hop_records_its_step() -> None:
    async def connect(host: str, port: int, tls: bool) -> tuple:  # type: ignore[type-arg]
        if host == "gone.test":  # an opener that does not say which step failed
            return None, None, F.DNS_NXDOMAIN
        if host == "mitm.test":
            return "192.0.2.7", None, F.SSL_UNKNOWN_AUTHORITY
        return "192.0.2.8", None, F.CONNECTION_RESET, "tls"

    for url, step in (("http://gone.test/", "dns"), ("https://mitm.test/", "tls"),
                      ("https://sni.test/", "tls")):
        res = await httpprobe.fetch(url, opened={}, connect=connect, body_limit=1024,
                                    user_agent="test", timeout=1)
        assert res.hops[-1].step == step, url
