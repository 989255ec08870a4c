"""DoH connections through a ResolverSet: kept alive and reused, replaced when a server closes
them, and every way a DoH server can fail ends in the DNS step's failure string. The servers are
real TLS servers on 127/8 with lab-CA certificates: the lab's own DoH servers, a lab DoH site
(one answer per connection) and a scripted server below for the HTTP-level failures."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import AsyncIterator

import dns.message
import dns.rrset
from lab.certs import server_context
from lab.web import read_request

from blockwatch.probe import failures as F
from blockwatch.probe.dnsprobe import ResolverSpec
from blockwatch.probe.resolvers import ResolverSet
from blockwatch.probe.runner import ProbeSettings
from lab import CONTROL, DNS, Behaviour, Lab
from test_tls_step_close import after_hello

ANSWER = "192.0.2.7"


def settings(lab: Lab, timeout: float = 2.0) -> ProbeSettings:
    return ProbeSettings(timeout=timeout, ca_bundle=lab.ca_pem_path,
                         allow_networks=(ipaddress.ip_network("127.0.0.0/8"),))


async def ask(lab: Lab, url: str, names: list[str], timeout: float = 2.0
              ) -> list[tuple[str | None, list[str]]]:
    """(failure, answers) of an A query for each name, one after another, on one set."""
    out = []
    async with ResolverSet([ResolverSpec.parse(url)], settings(lab, timeout),
                           source=CONTROL) as resolvers:
        for name in names:
            [q] = await resolvers.resolve(name, ("A",))
            assert q.transport == "doh"
            out.append((q.failure, q.answers))
    return out


def reply_to(query: bytes) -> bytes:
    msg = dns.message.make_response(dns.message.from_wire(query))
    msg.answer.append(dns.rrset.from_text(msg.question[0].name, 60, "IN", "A", ANSWER))
    return msg.to_wire()


def head(status: int, ctype: str, length: int, *extra: str) -> bytes:
    lines = [f"HTTP/1.1 {status} X", f"Content-Type: {ctype}", f"Content-Length: {length}",
             *extra, "", ""]
    return "\r\n".join(lines).encode()


class Scripted:
    """A DoH server answering its n-th request as `steps[n]` says (then "ok" for the rest):

    ok        a DNS answer, the connection kept open
    ok_close  a DNS answer, then the connection closed without saying so in the answer
    swallow   the connection closed without any answer
    status    HTTP 503
    html      HTML under text/html
    ctype     the DNS answer, labelled text/plain
    garbage   bytes that are not HTTP
    cut       a DNS answer's head and half its body, then the connection closed
    huge      a DNS answer padded past what a DNS message can hold
    silent    no answer, the connection left open
    twice     the DNS answer sent twice (one HTTP response more than asked for)
    html_close  a 200 that is not DNS, saying Connection: close, the connection left open
    other     an answer to another question (other.test)
    id        the DNS answer with an id other than the 0 asked with
    chunked   the DNS answer in chunks (Transfer-Encoding: chunked)
    continue  "100 Continue", then the DNS answer
    said_close  the DNS answer saying Connection: close, the connection left open
    """

    def __init__(self, steps: list[str]):
        self.steps = steps
        self.connections = 0
        self.requests: list[tuple[int, str, str, dict[str, str]]] = []  # connection, method..

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        conn = self.connections
        try:
            while (request := await read_request(reader)) is not None:
                self.requests.append((conn, request.method, request.path, request.headers))
                step = self.steps.pop(0) if self.steps else "ok"
                wire = reply_to(request.body)
                other = reply_to(b"\0\0" + dns.message.make_query("other.test", "A").to_wire()[2:])
                if step == "swallow":
                    return
                if step == "silent":
                    while await reader.read(65536):
                        pass
                    return
                data = {
                    "ok": head(200, "application/dns-message", len(wire)) + wire,
                    "ok_close": head(200, "application/dns-message", len(wire)) + wire,
                    "twice": (head(200, "application/dns-message", len(wire)) + wire) * 2,
                    "other": head(200, "application/dns-message", len(other)) + other,
                    "id": head(200, "application/dns-message", len(wire)) + b"\x12\x34" + wire[2:],
                    "status": head(503, "text/plain", 4) + b"busy",
                    "html": head(200, "text/html", 13) + b"<html></html>",
                    "html_close": head(200, "text/html", 4, "Connection: close") + b"nope",
                    "ctype": head(200, "text/plain", len(wire)) + wire,
                    "chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                    + b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (5, wire[:5], len(wire) - 5, wire[5:]),
                    "continue": b"HTTP/1.1 100 Continue\r\n\r\n"
                    + head(200, "application/dns-message", len(wire)) + wire,
                    "said_close": head(200, "application/dns-message", len(wire),
                                       "Connection: close") + wire,
                    "garbage": b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
                    "cut": head(200, "application/dns-message", len(wire)) + wire[:len(wire) // 2],
                    "huge": head(200, "application/dns-message", len(wire) + 70_000) + wire
                    + b"\0" * 70_000,
                }[step]
                writer.write(data)
                await writer.drain()
                if step in ("ok_close", "cut"):
                    return
        except (OSError, EOFError):
            return
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


@contextlib.asynccontextmanager
async def scripted(steps: list[str], host: str = "127.0.9.53") -> AsyncIterator[tuple[Scripted, str]]:
    server = Scripted(steps)
    listener = await asyncio.start_server(server._serve, host if host != "localhost" else "127.0.0.1",
                                          0, ssl=server_context([host]))
    port = listener.sockets[0].getsockname()[1]
    try:
        yield server, f"https://{host}:{port}/dns-query"
    finally:
        listener.close()


async def test_one_kept_alive_connection_carries_every_query(lab: Lab) -> None:
    names = [f"k{i}.test" for i in range(20)]
    for name in names:
        lab.control_dns.set(name, DNS.answer([ANSWER]))
    server = lab.doh_servers[lab.doh_url("control").split("/")[2].split(":")[0]]
    before = server.connections
    assert await ask(lab, lab.doh_url("control"), names) == [(None, [ANSWER])] * len(names)
    assert server.connections - before == 1


async def test_the_request_is_an_rfc8484_post(lab: Lab) -> None:
    async with scripted([]) as (server, url):
        assert await ask(lab, url, ["a.test", "b.test"]) == [(None, [ANSWER])] * 2
    assert [r[:3] for r in server.requests] == [(1, "POST", "/dns-query")] * 2
    headers = server.requests[0][3]
    assert headers["content-type"] == headers["accept"] == "application/dns-message"
    assert headers["host"] == url.split("/")[2]
    assert headers["user-agent"] == ProbeSettings().user_agent


async def test_a_server_closing_after_each_answer_still_answers_every_query(lab: Lab) -> None:
    # a lab DoH site serves one request per connection ("Connection: close")
    site = await lab.add_doh("127.0.9.54", address="127.0.9.54")
    lab.control_dns.set("c.test", DNS.answer([ANSWER]))
    url = f"https://{site.address}:{lab.https_port}/dns-query"
    assert await ask(lab, url, ["c.test"] * 4) == [(None, [ANSWER])] * 4
    # ... and one that closes without saying so: the closed connection is not reused
    async with scripted(["ok_close"] * 4) as (server, url):
        assert await ask(lab, url, ["d.test"] * 4) == [(None, [ANSWER])] * 4
    assert server.connections == 4


async def test_a_kept_connection_closed_as_it_is_reused_is_replaced_once(lab: Lab) -> None:
    # the second query's connection ends before any byte of an answer: asked again on a new one
    async with scripted(["ok", "swallow"]) as (server, url):
        assert await ask(lab, url, ["a.test", "b.test", "c.test"]) == [(None, [ANSWER])] * 3
    assert [r[0] for r in server.requests] == [1, 1, 2, 2]
    # a new connection that ends without an answer is the query's failure, not asked again
    async with scripted(["swallow", "ok"]) as (server, url):
        assert await ask(lab, url, ["a.test", "b.test"]) == [(F.EOF_ERROR, []), (None, [ANSWER])]
    assert [r[0] for r in server.requests] == [1, 2]
    # an answer cut short on a reused connection is not asked again either
    async with scripted(["ok", "cut"]) as (server, url):
        assert await ask(lab, url, ["a.test", "b.test"]) == [(None, [ANSWER]), (F.EOF_ERROR, [])]
    assert len(server.requests) == 2


async def test_answers_the_plain_reader_leaves_to_h11(lab: Lab) -> None:
    # read by h11 from their first byte, and so is every later answer on their connection
    for step in ("chunked", "continue"):
        async with scripted(["ok", step, "ok", step]) as (server, url):
            names = ["a.test", "b.test", "c.test", "d.test", "e.test"]
            assert await ask(lab, url, names) == [(None, [ANSWER])] * 5, step
        assert [r[0] for r in server.requests] == [1] * 5, step  # one connection, kept
    # an answer that says the connection closes is the last one asked on it
    async with scripted(["ok", "said_close", "ok"]) as (server, url):
        assert await ask(lab, url, ["a.test", "b.test", "c.test"]) == [(None, [ANSWER])] * 3
    assert [r[0] for r in server.requests] == [1, 1, 2]


async def test_http_failures_of_a_doh_server(lab: Lab) -> None:
    cases = [
        ("status", F.DNS_BOGUS),  # not 200
        ("html", F.DNS_BOGUS),  # not a DNS message
        ("garbage", F.HTTP_PROTOCOL_ERROR),  # not HTTP
        ("cut", F.EOF_ERROR),  # closed mid-body
        ("huge", F.DNS_BOGUS),  # more than a DNS message can hold
        ("swallow", F.EOF_ERROR),  # closed without an answer
        ("silent", F.DNS_TIMEOUT),
    ]
    for step, failure in cases:
        async with scripted([step]) as (server, url):
            got = await ask(lab, url, ["a.test", "b.test"], timeout=0.5)
        assert got == [(failure, []), (None, [ANSWER])], step
        # a connection whose HTTP exchange failed is dropped (the next query got a fresh one);
        # a whole HTTP answer that is not DNS leaves it usable
        assert server.connections == (1 if step == "html" else 2), step
    # the content type is not checked: a DNS answer labelled otherwise is still read
    async with scripted(["ctype"]) as (server, url):
        assert await ask(lab, url, ["a.test"]) == [(None, [ANSWER])]


async def test_an_answer_to_another_query_is_bogus_and_ends_its_connection(lab: Lab) -> None:
    # one HTTP response too many must not shift later answers onto later queries: the extra
    # one waiting on the kept connection gets it dropped before reuse
    async with scripted(["twice"]) as (server, url):
        assert await ask(lab, url, ["a.test", "b.test", "c.test"]) == [(None, [ANSWER])] * 3
    assert [r[0] for r in server.requests] == [1, 2, 2]
    # an answer to another question, or with another id, answers nothing we asked
    for step in ("other", "id"):
        async with scripted([step]) as (server, url):
            assert await ask(lab, url, ["a.test", "b.test"]) == [
                (F.DNS_BOGUS, []), (None, [ANSWER])], step
        assert [r[0] for r in server.requests] == [1, 2], step
    # a server that said it closes is done with, even when its answer was not DNS
    async with scripted(["html_close"]) as (server, url):
        assert await ask(lab, url, ["a.test", "b.test"]) == [(F.DNS_BOGUS, []), (None, [ANSWER])]
    assert [r[0] for r in server.requests] == [1, 2]


async def test_connection_and_tls_failures_of_a_doh_server(lab: Lab) -> None:
    port = lab.https_port
    cases = [
        ("127.0.9.60", Behaviour.tls_reset_after_hello, F.CONNECTION_RESET),
        ("127.0.9.61", Behaviour.tls_stall_after_hello, F.DNS_TIMEOUT),
        ("127.0.9.62", Behaviour.expired, F.SSL_INVALID_CERTIFICATE),
        ("127.0.9.63", Behaviour.mitm, F.SSL_UNKNOWN_AUTHORITY),
        ("127.0.9.64", Behaviour.wrong_name, F.SSL_INVALID_HOSTNAME),
        ("127.0.9.65", Behaviour.reset, F.CONNECTION_RESET),
        (None, Behaviour.blackhole_connect, F.DNS_TIMEOUT),  # on an address of its own
    ]
    for address, behaviour, failure in cases:
        site = await lab.add_doh(address or "blackhole.doh.test", address=address,
                                 control=behaviour)
        url = f"https://{site.address}:{port}/dns-query"
        assert await ask(lab, url, ["a.test"], timeout=0.5) == [(failure, [])], behaviour
    # nothing listening
    assert await ask(lab, f"https://127.0.9.67:{port}/dns-query", ["a.test"]) == [
        (F.CONNECTION_REFUSED, [])]


@contextlib.asynccontextmanager
async def closing_after_hello(host: str, rst: bool) -> AsyncIterator[str]:
    """A DoH URL of a server that reads the start of the ClientHello, then sends a FIN (and
    waits for the client to close) or resets the connection."""
    async with after_hello(host, rst) as port:
        yield f"https://{host}:{port}/dns-query"


async def test_a_server_closing_during_the_handshake(lab: Lab) -> None:
    # the loop's TLS reports a FIN during the handshake as a reset without an errno: it is an
    # end of stream (as it was through httpx); a real reset stays one
    async with closing_after_hello("127.0.9.68", rst=False) as url:
        assert await ask(lab, url, ["a.test"]) == [(F.EOF_ERROR, [])]
    async with closing_after_hello("127.0.9.69", rst=True) as url:
        assert await ask(lab, url, ["a.test"]) == [(F.CONNECTION_RESET, [])]


async def test_a_doh_server_named_by_a_host_name(lab: Lab) -> None:
    # the name is looked up (here in /etc/hosts), the certificate checked against it
    async with scripted([], host="localhost") as (server, url):
        assert await ask(lab, url, ["a.test"]) == [(None, [ANSWER])]
    assert server.requests[0][3]["host"] == url.split("/")[2]
