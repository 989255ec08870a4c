"""Fetching: conditional GET, the size cap while streaming (plain and gzip), errors in plain
words, the backoff rule. The feeds' HTTP is mocked with respx (nothing leaves the process)."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import respx

from blockwatch.feeds.fetch import USER_AGENT, fetch_feed, make_client, next_attempt
from blockwatch.feeds.parse import parse_feed

FIXTURES = Path(__file__).parent / "fixtures" / "feeds"
URL = "https://feeds.example.org/adilsoz/feed/"
MB = 10**6


def huge_feed(total: int, served: list[int], chunk: int = 64 * 1024) -> AsyncIterator[bytes]:
    """A feed of `total` bytes, made on the fly: 20 real items, then one item whose description
    never ends. `served` counts the bytes handed to the client."""
    head = ['<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>big</title>']
    head += [f"<item><guid>g{i}</guid><title>Item {i}</title><description>Текст {i}</description>"
             "</item>" for i in range(20)]
    head.append("<item><guid>last</guid><title>Cut</title><description>")
    prefix = "".join(head).encode()

    async def gen() -> AsyncIterator[bytes]:
        sent = 0
        first = prefix
        while sent < total:
            block = first or b"x" * chunk
            first = b""
            served[0] += len(block)
            sent += len(block)
            yield block

    return gen()


def lazy(data: bytes) -> AsyncIterator[bytes]:
    """A body httpx does not read (and decode) when the mock response is built."""

    async def gen() -> AsyncIterator[bytes]:
        yield data

    return gen()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    c = make_client(concurrency=4, timeout=10)
    yield c
    await c.aclose()


@respx.mock
async def test_ok_then_conditional_get(client: httpx.AsyncClient) -> None:
    body = (FIXTURES / "rss20_adilsoz.xml").read_bytes()
    route = respx.get(URL).mock(side_effect=[
        httpx.Response(200, content=body, headers={
            "ETag": '"abc123"', "Last-Modified": "Tue, 10 Nov 2026 09:12:44 GMT",
            "Content-Type": "application/rss+xml; charset=UTF-8"}),
        httpx.Response(304, headers={"ETag": '"abc123"'}),
    ])
    r1 = await fetch_feed(client, URL)
    assert r1.status == "ok" and r1.content == body and not r1.truncated
    assert r1.etag == '"abc123"' and r1.last_modified == "Tue, 10 Nov 2026 09:12:44 GMT"
    first = route.calls[0].request
    assert first.headers["user-agent"] == USER_AGENT
    assert "if-none-match" not in first.headers

    r2 = await fetch_feed(client, URL, etag=r1.etag, last_modified=r1.last_modified)
    assert r2.status == "not_modified" and r2.content == b""
    second = route.calls[1].request
    assert second.headers["if-none-match"] == '"abc123"'
    assert second.headers["if-modified-since"] == "Tue, 10 Nov 2026 09:12:44 GMT"
    assert r2.etag == '"abc123"' and r2.last_modified == r1.last_modified  # kept when not resent


@respx.mock
async def test_a_50_mb_feed_is_cut_at_the_cap_while_streaming(client: httpx.AsyncClient) -> None:
    served = [0]
    respx.get(URL).mock(return_value=httpx.Response(
        200, content=huge_feed(50 * MB, served), headers={"Content-Type": "application/rss+xml"}))
    r = await fetch_feed(client, URL, max_bytes=5 * MB)
    assert r.status == "ok" and r.truncated
    assert len(r.content) == 5 * MB
    assert served[0] < 5 * MB + 2 * 64 * 1024  # the rest was never read
    f = parse_feed(r.content, r.content_type, drop_last=True)
    # the 20 complete items are kept; the one cut in the middle is dropped
    assert [e.key for e in f.entries] == [f"g{i}" for i in range(20)]


@respx.mock
async def test_gzip_bomb_is_cut_on_the_decompressed_size(client: httpx.AsyncClient) -> None:
    doc = (b'<?xml version="1.0"?><rss version="2.0"><channel><item><guid>a</guid><title>A</title>'
           b"<description>" + b"0" * (50 * MB) + b"</description></item></channel></rss>")
    packed = gzip.compress(doc, compresslevel=9)
    assert len(packed) < MB // 10  # ~50 KB on the wire
    respx.get(URL).mock(return_value=httpx.Response(
        200, content=lazy(packed), headers={"Content-Encoding": "gzip"}))
    r = await fetch_feed(client, URL, max_bytes=2 * MB)
    assert r.status == "ok" and r.truncated and len(r.content) == 2 * MB
    assert r.content.startswith(b'<?xml version="1.0"?><rss')


@respx.mock
async def test_gzip_small_feed_decodes(client: httpx.AsyncClient) -> None:
    body = (FIXTURES / "atom_hrw.xml").read_bytes()
    respx.get(URL).mock(return_value=httpx.Response(
        200, content=lazy(gzip.compress(body)), headers={"Content-Encoding": "gzip"}))
    r = await fetch_feed(client, URL)
    assert r.status == "ok" and r.content == body and not r.truncated


@respx.mock
async def test_exactly_the_cap_is_not_truncated(client: httpx.AsyncClient) -> None:
    respx.get(URL).mock(return_value=httpx.Response(200, content=b"a" * 1000))
    r = await fetch_feed(client, URL, max_bytes=1000)
    assert r.status == "ok" and not r.truncated and len(r.content) == 1000


@pytest.mark.parametrize(("mock", "message"), [
    (httpx.Response(404), "HTTP 404 Not Found"),
    (httpx.Response(503), "HTTP 503 Service Unavailable"),
    (httpx.ConnectError("[Errno 111] Connection refused"), "cannot connect: [Errno 111] Connection refused"),
    (httpx.ReadTimeout("read timed out"), "timed out after 10s"),
    (httpx.RemoteProtocolError("peer closed connection"),
     "the server broke the HTTP protocol: peer closed connection"),
    (httpx.Response(200, content=b"x", headers={"Content-Encoding": "br"}),
     "unsupported Content-Encoding 'br'"),
    (httpx.Response(200, content=lazy(b"not gzip at all"), headers={"Content-Encoding": "gzip"}),
     "corrupt compressed body: Error -3 while decompressing data: incorrect header check"),
])
@respx.mock
async def test_errors_in_plain_words(client: httpx.AsyncClient, mock: object, message: str) -> None:
    respx.get(URL).mock(side_effect=[mock] if isinstance(mock, Exception) else None,
                        return_value=mock if isinstance(mock, httpx.Response) else None)
    r = await fetch_feed(client, URL, timeout=10)
    assert r.status == "error" and r.error == message


@respx.mock
async def test_redirects_are_followed(client: httpx.AsyncClient) -> None:
    respx.get(URL).mock(return_value=httpx.Response(301, headers={"Location": URL + "v2"}))
    respx.get(URL + "v2").mock(return_value=httpx.Response(200, content=b"<rss/>"))
    r = await fetch_feed(client, URL)
    assert r.status == "ok" and r.content == b"<rss/>"


async def test_client_ignores_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    c = make_client(concurrency=2, timeout=5)
    try:
        assert c.trust_env is False
        with respx.mock:
            respx.get(URL).mock(return_value=httpx.Response(200, content=b"<rss/>"))
            assert (await fetch_feed(c, URL)).status == "ok"
    finally:
        await c.aclose()


def test_backoff_doubles_and_is_capped() -> None:
    now = datetime(2026, 11, 10, tzinfo=UTC)
    iv = timedelta(minutes=30)
    assert next_attempt(now, iv, 0) == now + iv
    assert [next_attempt(now, iv, n) - now for n in (1, 2, 3, 4, 5, 6)] == [
        timedelta(hours=1), timedelta(hours=2), timedelta(hours=4), timedelta(hours=8),
        timedelta(hours=16), timedelta(hours=24)]
    assert next_attempt(now, iv, 50) - now == timedelta(hours=24)
    assert next_attempt(now, timedelta(days=2), 3) - now == timedelta(days=2)


@respx.mock
async def test_a_dripping_server_hits_the_whole_fetch_deadline(client: httpx.AsyncClient) -> None:
    async def drip() -> AsyncIterator[bytes]:
        yield b"<rss>"
        await asyncio.Event().wait()  # never sends the rest; no per-read timeout fires in a mock
        yield b""

    respx.get(URL).mock(return_value=httpx.Response(200, content=drip()))
    r = await fetch_feed(client, URL, timeout=0.2)
    assert r.status == "error" and r.error == "timed out after 0.2s"
