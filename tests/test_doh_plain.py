"""The DoH client's own reader of plain HTTP answers (`dnsprobe._plain_response`) against h11:
whatever it reads, h11 reads the same way (the same body, the connection kept alive or not, no
byte left over); everything else it leaves to h11. And the request bytes it sends without h11
are h11's."""

from __future__ import annotations

import random

import h11

from blockwatch.probe import dnsprobe
from blockwatch.probe.dnsprobe import _Origin, _plain_response

WIRE = bytes(range(40))  # a body: its bytes do not matter to HTTP


def h11_reads(data: bytes) -> object:
    """What h11 makes of `data` received in one piece after a DoH POST: (body, kept alive,
    bytes left over), or why not."""
    conn = h11.Connection(h11.CLIENT)
    _Origin.of("https://dns.test/dns-query", "ua").request(conn, WIRE)
    conn.receive_data(data)
    body = b""
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError:
            return "error"
        if event is h11.NEED_DATA:
            return "incomplete"
        if isinstance(event, h11.Response) and event.status_code != 200:
            return "status"
        if isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            keep = conn.our_state is h11.DONE and conn.their_state is h11.DONE
            return body, keep, conn.trailing_data[0]


STATUS = [b"HTTP/1.1 200 OK", b"HTTP/1.1 200", b"HTTP/1.1 200 ", b"HTTP/1.1 200  OK \t",
          b"HTTP/1.1 200 \x80", b"HTTP/1.0 200 OK", b"HTTP/1.1 204 No Content",
          b"HTTP/1.1 100 Continue", b"HTTP/1.1 2000", b"HTTP/1.1 200OK", b"HTTP/2 200",
          b"http/1.1 200 OK", b" HTTP/1.1 200 OK", b"HTTP/1.1 200 O\x00K"]
HEADERS = [b"Content-Type: application/dns-message", b"content-type:application/dns-message",
           b"Connection: close", b"Connection: keep-alive", b"connection: Keep-Alive, CLOSE",
           b"Connection: closed", b"Connection:", b"Connection: ,close ,", b"X-Empty:",
           b"X-Spaces:   a  b \t", b"Transfer-Encoding: chunked", b" folded", b"\tfolded",
           b"Bad Name: x", b"X: \x80", b"X: a\rb", b"X: a\nb", b"X : y", b":x", b"X: \x7f",
           b"Server: cloudflare", b"Cache-Control: max-age=300"]
LENGTHS = [b"Content-Length: {n}", b"content-length:{n}", b"CONTENT-LENGTH: \t{n} ",
           b"Content-Length: 0{n}", b"Content-Length: {n}, {n}", b"Content-Length: +{n}",
           b"Content-Length: {n}0", b"Content-Length: 0000000000000000000000{n}",
           b"Content-Length: {n}\x00", b"Content-Length:"]


def responses(rng: random.Random) -> bytes:
    body = rng.randbytes(rng.choice([0, 1, 12, 45, 512]))
    lines = [rng.choice(STATUS[:3]) if rng.random() < 0.6 else rng.choice(STATUS)]
    lines += rng.sample(HEADERS, rng.randrange(4))
    for _ in range(rng.choice([1, 1, 1, 0, 2])):
        lines.insert(rng.randrange(1, len(lines) + 1),
                     rng.choice(LENGTHS).replace(b"{n}", str(len(body)).encode()))
    head = b"\r\n".join(lines) + b"\r\n\r\n"
    if rng.random() < 0.1:
        head = head.replace(b"\r\n", b"\n", rng.randrange(1, 4))
    data = head + body
    tail = rng.random()
    if tail < 0.05:
        data += b"HTTP/1.1 200 OK\r\n"  # more than one answer
    elif tail < 0.1:
        data = data[:-1]  # not all of it
    for _ in range(rng.choice([0, 0, 0, 1, 2])):  # a mutated byte
        i = rng.randrange(len(data))
        data = data[:i] + bytes([rng.randrange(256)]) + data[i + 1:]
    return data


def test_what_the_plain_reader_reads_h11_reads_the_same() -> None:
    rng = random.Random(8484)
    plain = 0
    for _ in range(20_000):
        data = responses(rng)
        got = _plain_response(data)
        if got is not None:
            plain += 1
            assert h11_reads(data) == (*got, b""), data
    assert plain > 500  # the common answers are read plainly, not all left to h11


def test_common_answers_are_read_plainly() -> None:
    body = b"\0\0\x81\x80" + bytes(30)
    for head, keep in [
        (b"HTTP/1.1 200 OK\r\nServer: cloudflare\r\nDate: Fri, 04 Dec 2026 19:00:00 GMT\r\n"
         b"Content-Type: application/dns-message\r\nConnection: keep-alive\r\n"
         b"Access-Control-Allow-Origin: *\r\nContent-Length: 34\r\n\r\n", True),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 34\r\nConnection: close\r\n\r\n", False),
        (b"HTTP/1.1 200\r\ncontent-length:34\r\n\r\n", True),
    ]:
        assert _plain_response(head + body) == (body, keep)
        assert h11_reads(head + body) == (body, keep, b"")


def test_answers_left_to_h11() -> None:
    body = bytes(34)
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 34\r\n\r\n"
    for data in [
        ok + body[:-1],  # not all of it yet
        ok + body + b"H",  # more than one answer
        ok.replace(b"34", b"34, 34") + body,  # read the same by h11, but not plain
        b"HTTP/1.1 100 Continue\r\n\r\n" + ok + body,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n22\r\n" + body + b"\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 70000\r\n\r\n" + bytes(70000),
        b"HTTP/1.1 503 Busy\r\nContent-Length: 34\r\n\r\n" + body,
        b"HTTP/1.0 200 OK\r\nContent-Length: 34\r\n\r\n" + body,
        b"HTTP/1.1 200 OK\nContent-Length: 34\n\n" + body,
        b"",
    ]:
        assert _plain_response(data) is None, data


def test_a_request_sent_without_h11_is_h11s_bytes() -> None:
    origin = _Origin.of("https://dns.test:8443/dns-query?x=1", "Mozilla/5.0")
    for n in (33, 40, 33, 0, 300):  # a head made once per length, never another length's
        wire = bytes(i % 251 for i in range(n))
        conn = h11.Connection(h11.CLIENT)
        assert origin.plain_request(wire) == origin.request(conn, wire)
    assert sorted(origin._heads) == [0, 33, 40, 300]


def test_a_url_h11_will_not_send_is_a_protocol_error_either_way() -> None:
    origin = _Origin.of("https://dns.test/dns-query", "bad\nagent")
    for call in (lambda: origin.plain_request(WIRE),
                 lambda: origin.request(h11.Connection(h11.CLIENT), WIRE)):
        try:
            call()
        except dnsprobe.DoHProtocolError:
            pass
        else:
            raise AssertionError("sent")
