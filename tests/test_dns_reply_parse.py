"""The DNS step's own reader of plain replies gives what dnspython's `from_wire` gives, for all
the DNS step reads (rcode, TC flag, addresses, their TTLs, CNAMEs), and leaves every reply it
does not fully understand, malformed ones included, to dnspython."""

from __future__ import annotations

import random
import struct
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.rcode
from hypothesis import given, settings
from hypothesis import strategies as st

from blockwatch.probe.dnsprobe import _addresses, _plain_reply, parse_reply


def text(rd: Any) -> str:
    if hasattr(rd, "address"):
        return str(rd.address)
    return str(rd.target) if hasattr(rd, "target") else str(rd.to_text())


def summary(reply: Any) -> tuple[object, ...]:
    """What the DNS step reads, and the answer's sets record by record."""
    sets = [(int(s.rdtype), s.ttl, [text(rd) for rd in s]) for s in reply.answer]
    return (int(reply.rcode()), reply.flags & dns.flags.TC, _addresses(reply, "A"),
            _addresses(reply, "AAAA"), sets)


def check(wire: bytes) -> bool:
    """True when the module read it itself (then dnspython must agree)."""
    fast = _plain_reply(wire)
    if fast is None:
        return False
    ref = dns.message.from_wire(wire, ignore_trailing=True)  # must not raise
    assert summary(fast) == summary(ref), wire.hex()
    assert summary(parse_reply(wire)) == summary(ref)
    return True


def name(text: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode() for p in text.split(".") if p) + b"\0"


def rr(owner: bytes, rdtype: int, ttl: int, rdata: bytes, rdclass: int = 1) -> bytes:
    return owner + struct.pack("!HHIH", rdtype, rdclass, ttl, len(rdata)) + rdata


def message(answers: list[bytes], *, flags: int = 0x8180, qname: str | bytes = "site.test",
            qtype: int = 1, opt: bytes | None = b"\0" + struct.pack("!HHIH", 41, 1232, 0, 0),
            authority: list[bytes] = (), trailing: bytes = b"") -> bytes:  # type: ignore[assignment]
    """`qname`: a name's text, or its wire form."""
    head = struct.pack("!6H", 0x1234, flags, 1, len(answers), len(authority), 1 if opt else 0)
    qwire = qname if isinstance(qname, bytes) else name(qname)
    return (head + qwire + struct.pack("!HH", qtype, 1) + b"".join(answers)
            + b"".join(authority) + (opt or b"") + trailing)


def sized(n: int, letter: bytes = b"a") -> bytes:
    """A name's wire form exactly `n` bytes long (labels of 63 bytes, then the rest)."""
    out, left = b"", n - 1
    while left:
        size = min(63, left - 1) if left - 1 != 64 else 62  # never a last label of 0 bytes
        out += bytes([size]) + letter * size
        left -= size + 1
    return out + b"\0"


PTR = b"\xc0\x0c"  # the question's name


def random_reply(rng: random.Random) -> bytes:
    # names near the 255-byte limit, whole or behind labels that point at the question's
    qname = rng.choice([name("site.test")] * 4 + [sized(200), sized(253), sized(254), sized(255)])
    owners = [PTR, name("site.test"), name("SITE.Test"), name("cdn.example"), name("CDN.example"),
              b"\1x" + PTR, b"\x37" + b"y" * 55 + PTR, sized(255), sized(256), sized(300)]
    answers = []
    for _ in range(rng.randrange(0, 7)):
        owner = rng.choice(owners)
        kind = rng.random()
        ttl = rng.choice([0, 1, 60, 300, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF])
        if kind < 0.45:
            answers.append(rr(owner, 1, ttl, bytes(rng.choice([[192, 0, 2, 1], [192, 0, 2, 2],
                                                               [10, 0, 0, 1], [127, 0, 0, 1]]))))
        elif kind < 0.75:
            addr = rng.choice([bytes(16), bytes(15) + b"\1", b"\x20\x01\x0d\xb8" + bytes(11) + b"\1",
                               bytes(10) + b"\xff\xff\xc0\0\2\1"])
            answers.append(rr(owner, 28, ttl, addr))
        else:
            target = rng.choice([name("cdn.example"), name("Edge.CDN.example"), PTR,
                                 b"\4edge\xc0\x0c", name("we\\ird.example")])
            answers.append(rr(owner, 5, ttl, target))
    rcode = rng.choice([0, 0, 0, 2, 3, 5, 4, 11])
    flags = 0x8180 | rcode | (0x0200 if rng.random() < 0.1 else 0)
    opt = rng.choice([None, b"\0" + struct.pack("!HHIH", 41, 1232, 0, 0),
                      b"\0" + struct.pack("!HHIH", 41, 4096, 0x8000, 0)])
    return message(answers, flags=flags, opt=opt, qname=qname,
                   trailing=rng.choice([b"", b"junk"]))


def test_plain_replies_are_read_alike() -> None:
    rng = random.Random(4)
    read_here = sum(check(random_reply(rng)) for _ in range(3000))
    assert read_here > 1000  # the plain ones are read here, not passed on


def test_replies_it_does_not_read_go_to_dnspython() -> None:
    a = rr(PTR, 1, 60, bytes([192, 0, 2, 1]))
    soa = rr(name("test"), 6, 60, name("ns.test") + name("h.test") + bytes(20))
    padded = b"\0" + struct.pack("!HHIH", 41, 1232, 0, 6) + struct.pack("!HH", 12, 2) + b"\0\0"
    ext_rcode = b"\0" + struct.pack("!HHIH", 41, 1232, 0x01000000, 0)  # BADVERS
    for wire in [message([a], authority=[soa]), message([a], opt=padded),
                 message([a], opt=ext_rcode), message([rr(PTR, 16, 60, b"\3txt")]),
                 message([rr(PTR, 1, 60, bytes(5))]), message([a], flags=0x8180 | 0x2800),
                 message([rr(PTR, 1, 60, bytes(4), rdclass=3)]), message([a])[:-3]]:
        assert _plain_reply(wire) is None, wire.hex()
        try:
            ref = dns.message.from_wire(wire, ignore_trailing=True)
        except Exception as exc:  # whatever dnspython raises, parse_reply raises
            try:
                parse_reply(wire)
            except type(exc):
                continue
            raise AssertionError(f"parse_reply accepted {wire.hex()}") from None
        assert summary(parse_reply(wire)) == summary(ref)
    assert int(parse_reply(message([a], opt=ext_rcode)).rcode()) == dns.rcode.BADVERS


def test_mutated_replies_are_read_alike_or_left_to_dnspython() -> None:
    rng = random.Random(5)
    for _ in range(4000):
        wire = bytearray(random_reply(rng))
        for _ in range(rng.randrange(1, 4)):
            if not wire:
                break
            i = rng.randrange(len(wire))
            r = rng.random()
            if r < 0.6:
                wire[i] = rng.choice([0, 1, 4, 16, 63, 64, 0xC0, 0xC0 | (wire[i] & 0x3F), 0xFF,
                                      rng.randrange(256)])
            elif r < 0.8:
                del wire[i:]
            else:
                target = rng.randrange(len(wire))  # a pointer to anywhere before the end
                wire[i:i] = bytes([0xC0 | target >> 8, target & 0xFF])
        check(bytes(wire))


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=120), st.integers(min_value=0, max_value=3))
def test_random_bytes_after_a_header(body: bytes, ancount: int) -> None:
    check(struct.pack("!6H", 1, 0x8180, 1, ancount, 0, 0) + body)


def test_compression_pointer_rules() -> None:
    a = bytes([192, 0, 2, 1])
    ok = message([rr(PTR, 1, 60, a), rr(b"\3www\xc0\x0c", 5, 60, b"\xc0\x0c")], opt=None)
    assert check(ok)
    forward = message([rr(b"\xc0\x30", 1, 60, a)], opt=None)  # points ahead: BadPointer
    self_loop = message([rr(b"\xc0\x1b", 1, 60, a)], opt=None)  # points at itself
    for wire in (forward, self_loop):
        assert _plain_reply(wire) is None
        try:
            dns.message.from_wire(wire, ignore_trailing=True)
        except dns.name.BadPointer:
            pass


def rejected_by_both(wire: bytes) -> None:
    assert _plain_reply(wire) is None, wire.hex()
    try:
        dns.message.from_wire(wire, ignore_trailing=True)
    except dns.exception.DNSException:
        return
    raise AssertionError("dnspython accepted it")


def test_a_pointer_target_must_end_before_the_pointer() -> None:
    first = rr(PTR, 1, 60, bytes([192, 0, 3, 7]))  # its last two bytes: 3, 7
    s = 12 + len(name("site.test")) + 4 + len(first)
    # a pointer to two bytes back: the label (3 bytes) read there runs over the pointer itself
    crossing = rr(bytes([0xC0, s - 2]), 1, 60, bytes([192, 0, 2, 1]))
    rejected_by_both(message([first, crossing], opt=None))


def test_at_most_16_pointers_in_a_row() -> None:
    a = bytes([192, 0, 2, 1])
    start = 12 + len(name("site.test")) + 4
    answers, where = [], start
    for i in range(17):  # each owner points at the previous one's: the i-th takes i+1 hops
        prev = where - len(answers[-1]) if answers else 0
        owner = PTR if i == 0 else bytes([0xC0 | prev >> 8, prev & 0xFF])
        answers.append(rr(owner, 1, 60, a))
        where += len(answers[-1])
    assert check(message(answers[:16], opt=None))  # 16 pointers in a row: fine
    rejected_by_both(message(answers, opt=None))


def test_a_name_is_at_most_255_bytes() -> None:
    a = bytes([192, 0, 2, 1])
    long_owner = (b"\x3f" + b"a" * 63) * 3 + b"\x3d" + b"b" * 61 + b"\0"  # 255 bytes
    assert check(message([rr(long_owner, 1, 60, a)], opt=None))
    rejected_by_both(message([rr(b"\x01c" + long_owner, 1, 60, a)], opt=None))


def test_names_at_the_limit_with_compression() -> None:
    a = bytes([192, 0, 2, 1])
    for qlen in (199, 200, 253, 254, 255):
        for prefix in (b"", b"\1x", b"\x37" + b"y" * 55):
            wire = message([rr(prefix + PTR, 1, 60, a)], qname=sized(qlen), opt=None)
            if qlen + len(prefix) <= 255:
                assert check(wire), (qlen, prefix)
            else:
                rejected_by_both(wire)


class Reads(bytes):
    """A reply that counts how often its bytes are read (by index or slice)."""

    def __getitem__(self, i):  # type: ignore[no-untyped-def, override]
        self.reads = getattr(self, "reads", 0) + 1
        return super().__getitem__(i)


def test_an_over_long_name_is_given_up_as_it_is_read() -> None:
    """A crafted 60 KB reply whose owner name runs on for thousands of labels (directly or
    through a pointer) is refused after its first 255 bytes, not read whole first."""
    a = struct.pack("!HHIH", 1, 1, 60, 4) + bytes([192, 0, 2, 1])
    one_byte_labels = b"\1a" * 30_000 + b"\0"
    start = 12 + len(name("site.test")) + 4
    crafted = [
        message([(b"\x3f" + b"a" * 63) * 940 + b"\0" + a], opt=None),
        message([one_byte_labels + a], opt=None),
        # a short owner first, pointing into the long name of the one after it
        message([b"\1b\xc0" + bytes([start + 2 + 2 + 10 + 4]) + a, one_byte_labels + a],
                opt=None),
        message([], qname=one_byte_labels, opt=None),
    ]
    for wire in crafted:
        assert len(wire) > 60_000
        rejected_by_both(wire)
        counted = Reads(wire)
        assert _plain_reply(counted) is None
        assert counted.reads < 400, counted.reads  # thousands when read whole first
