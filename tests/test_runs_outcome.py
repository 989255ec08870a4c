"""runs.outcome's key is stored (runs.outcome) and compared with the keys of later measurements:
a faster way of computing it must give the very same key for any evidence, or every open run
would be cut once after an upgrade. Held here to the first implementation, on random evidence
of our shape and of odd shapes."""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any

from blockwatch.storage import runs


def _first(evidence: Any, verdict: str) -> runs.Outcome | None:
    """The first implementation, as it was written."""
    if not isinstance(evidence, dict) or "dns" not in evidence:
        return None
    try:
        dns = sorted(
            (q.get("qname"), q.get("qtype"), q.get("resolver"), q.get("rcode"),
             sorted(q.get("answers") or []), sorted(q.get("cnames") or []),
             sorted(q.get("bogons") or []), sorted(sorted(r) for r in q.get("extra_replies") or []),
             q.get("failure"))
            for q in evidence.get("dns") or [])
        tcp = sorted((c.get("address"), c.get("port"), c.get("status"), c.get("failure"))
                     for c in evidence.get("tcp") or [])
        tls = sorted((t.get("address"), t.get("port"), t.get("sni"), t.get("failure"),
                      t.get("verify_error"), [c.get("sha256") for c in t.get("chain") or []])
                     for t in evidence.get("tls") or [])
        h = evidence.get("http")
        http = None
        length = None
        if isinstance(h, dict):
            http = (h.get("status"), h.get("final_url"), h.get("title"), h.get("failure"),
                    sorted(h.get("fingerprints") or []), bool(h.get("body_truncated")),
                    [(x.get("url"), x.get("status"), x.get("failure"), x.get("step"))
                     for x in h.get("hops") or [] if isinstance(x, dict)])
            length = int(h.get("body_length") or 0)
        text = json.dumps([verdict, evidence.get("url"), dns, tcp, tls, http],
                          separators=(",", ":"), ensure_ascii=False, default=str)
    except (AttributeError, TypeError, ValueError):
        return None
    return runs.Outcome(hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest(), length)


def _pick(rng: random.Random, *choices: Any) -> Any:
    return choices[rng.randrange(len(choices))]


def _strs(rng: random.Random, n: int) -> list[str]:
    return [_pick(rng, "198.51.100.7", "2001:db8::1", "b", "a", "ünï", "\ud800", "x" * 40)
            for _ in range(rng.randrange(n))]


def _evidence(rng: random.Random) -> Any:
    """Our shape mostly, with missing keys, empty and odd values now and then."""
    def maybe(v: Any) -> Any:
        return _pick(rng, v, v, v, None, [], "", 0, {"k": 1}, "str", [None], 1.5)

    dns = [{"qname": _pick(rng, "a.test", "b.test", None), "qtype": _pick(rng, "A", "AAAA"),
            "resolver": "system", "rcode": _pick(rng, "NOERROR", None, "NXDOMAIN"),
            "answers": maybe(_strs(rng, 4)), "cnames": maybe(_strs(rng, 2)),
            "bogons": maybe(_strs(rng, 2)),
            "extra_replies": maybe([_strs(rng, 3) for _ in range(rng.randrange(3))]),
            "failure": _pick(rng, None, "dns_timeout"), "t_ms": rng.random()}
           for _ in range(rng.randrange(4))]
    tcp = [{"address": _pick(rng, "198.51.100.7", "2001:db8::1"), "port": _pick(rng, 443, 80),
            "status": _pick(rng, "ok", "failed"), "failure": _pick(rng, None, "refused")}
           for _ in range(rng.randrange(3))]
    tls = [{"address": "198.51.100.7", "port": 443, "sni": _pick(rng, "a.test", None),
            "failure": _pick(rng, None, "connection_reset"), "verify_error": None,
            "chain": maybe([{"sha256": _pick(rng, "ab" * 32, "cd" * 32)}
                            for _ in range(rng.randrange(3))])}
           for _ in range(rng.randrange(3))]
    http = {"status": _pick(rng, 200, 403, None), "final_url": "https://a.test/",
            "title": _pick(rng, "", "t\u202e", "\x00"), "failure": None,
            "fingerprints": maybe(_strs(rng, 3)), "body_truncated": _pick(rng, True, False, None),
            "hops": maybe([{"url": "https://a.test/", "status": 301, "step": None}, "odd"]),
            "body_length": _pick(rng, 0, 84211, None, "12")}
    ev: dict[str, Any] = {"url": "https://a.test/", "dns": maybe(dns), "tcp": maybe(tcp),
                          "tls": maybe(tls), "http": _pick(rng, http, http, None, "x")}
    for k in list(ev):
        if k != "dns" and rng.random() < 0.1:
            del ev[k]
    return _pick(rng, ev, ev, ev, ev, ev, ev, ev, ev, {"test_keys": {}}, None)


def test_the_outcome_key_is_the_first_implementations() -> None:
    rng = random.Random(20261204)
    kinds = set()
    for _ in range(5000):
        ev = _evidence(rng)
        verdict = _pick(rng, "ok", "dns", "tls")
        got, want = runs.outcome(ev, verdict), _first(ev, verdict)
        assert got == want, ev
        kinds.add(got is None)
    assert kinds == {True, False}  # both kinds met


def test_a_known_outcome_key() -> None:
    ev = {"url": "https://a.test/",
          "dns": [{"qname": "a.test", "qtype": "A", "resolver": "system", "rcode": "NOERROR",
                   "answers": ["198.51.100.7", "198.51.100.2"], "t_ms": 3.0}],
          "tcp": [{"address": "198.51.100.7", "port": 443, "status": "ok"}],
          "tls": [{"address": "198.51.100.7", "port": 443, "sni": "a.test",
                   "chain": [{"sha256": "ab" * 32}]}],
          "http": {"status": 200, "final_url": "https://a.test/", "title": "Ä",
                   "body_length": 100, "hops": [{"url": "https://a.test/", "status": 200}]}}
    o = runs.outcome(ev, "ok")
    assert o == _first(ev, "ok")
    assert o is not None and o.body_length == 100
    assert o.key == "b8e007c3e98e34748d2a624a3857785a6a4b94acb1bb28c5fc332eb1ade6429a"


def test_compact_json_writes_what_json_dumps_writes() -> None:
    from datetime import UTC, datetime

    def iso(v: Any) -> Any:
        if isinstance(v, datetime):
            return v.isoformat()
        raise TypeError(type(v).__name__)

    data = [{"a": 1, "b": [1.5, -0.0, 1e300, True, None], "ü\u2028": "\ud800\x00\"\\/"},
            (1, 2), datetime(2025, 1, 2, 3, 4, 5, 6, tzinfo=UTC), "", {}, []]
    for ascii_ in (True, False):
        for nan in (True, False):
            dumps = runs.compact_json(ensure_ascii=ascii_, allow_nan=nan, default=iso)
            assert dumps(data) == json.dumps(data, separators=(",", ":"), ensure_ascii=ascii_,
                                             allow_nan=nan, default=iso)
            for bad in (float("nan"), {"x": float("inf")}, object()):
                try:
                    want = json.dumps(bad, separators=(",", ":"), ensure_ascii=ascii_,
                                      allow_nan=nan, default=iso)
                except (TypeError, ValueError) as exc:
                    try:
                        dumps(bad)
                    except type(exc):
                        continue
                    raise AssertionError(f"{bad!r}: no {type(exc).__name__}") from None
                assert dumps(bad) == want
    plain = runs.compact_json(ensure_ascii=False, allow_nan=True, default=None)
    assert plain({"k": [1, "ä"]}) == '{"k":[1,"ä"]}'
