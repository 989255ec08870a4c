"""Store what changed, not every repetition: the observable outcome of a measurement, and the
rule that decides whether it extends the open run of its (URL, vantage) instead of adding a row.

The outcome is what a reader of the evidence would compare: the verdict, the DNS answers (as
sets: round-robin order is not a change), rcodes, failures, bogons and injected replies; the TCP
and TLS results per address with the certificate chain's fingerprints; the HTTP status, final
URL, title, failure and fingerprints of the final response. Timings, TTLs and body hashes are
not (a page's body changes with every ad); the body's length is compared separately, within the
proportion the analysis uses to call two bodies alike (AnalysisSettings.body_proportion).

Pure functions: no I/O."""

from __future__ import annotations

import functools
import hashlib
import json
import json.encoder
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from blockwatch.analysis.verdict import AnalysisSettings

BODY_PROPORTION = AnalysisSettings().body_proportion


@dataclass(frozen=True, slots=True)
class Outcome:
    key: str  # SHA-256 of the observable outcome (hex)
    body_length: int | None


def outcome(evidence: dict[str, Any] | None, verdict: str) -> Outcome | None:
    """The observable outcome of a measurement's evidence (WebMeasurement.to_json), or None
    when the evidence is not ours (an OONI item, an empty record): such rows are never
    compacted. The key is stored (runs.outcome) and compared with later ones: its text must
    never change (tests/test_runs_outcome.py holds it to the first implementation)."""
    if not isinstance(evidence, dict) or "dns" not in evidence:
        return None
    try:
        # every measurement is keyed (the collector's hot path): empty lists are not sorted
        dns = sorted([
            (q.get("qname"), q.get("qtype"), q.get("resolver"), q.get("rcode"),
             sorted(a) if (a := q.get("answers")) else [],
             sorted(c) if (c := q.get("cnames")) else [],
             sorted(b) if (b := q.get("bogons")) else [],
             sorted([sorted(r) for r in x]) if (x := q.get("extra_replies")) else [],
             q.get("failure"))
            for q in evidence.get("dns") or ()])
        tcp = sorted([(c.get("address"), c.get("port"), c.get("status"), c.get("failure"))
                      for c in evidence.get("tcp") or ()])
        tls = sorted([(t.get("address"), t.get("port"), t.get("sni"), t.get("failure"),
                       t.get("verify_error"), [c.get("sha256") for c in ch]
                       if (ch := t.get("chain")) else [])
                      for t in evidence.get("tls") or ()])
        h = evidence.get("http")
        http = None
        length = None
        if isinstance(h, dict):
            http = (h.get("status"), h.get("final_url"), h.get("title"), h.get("failure"),
                    sorted(f) if (f := h.get("fingerprints")) else [],
                    bool(h.get("body_truncated")),
                    [(x.get("url"), x.get("status"), x.get("failure"), x.get("step"))
                     for x in h.get("hops") or () if isinstance(x, dict)])
            length = int(h.get("body_length") or 0)
        text = _KEY_JSON([verdict, evidence.get("url"), dns, tcp, tls, http])
    except (AttributeError, TypeError, ValueError):
        return None  # not the shape we write: kept whole
    return Outcome(hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest(), length)


def _c_encoder(ensure_ascii: bool, allow_nan: bool, default: Callable[[Any], Any]
               ) -> Callable[[Any, int], Any] | None:
    """CPython's C encoder with these settings, or None where there is none (another Python,
    another signature)."""
    make = getattr(json.encoder, "c_make_encoder", None)
    esc = getattr(json.encoder, "c_encode_basestring_ascii" if ensure_ascii
                  else "c_encode_basestring", None)
    try:
        return make(None, default, esc, None, ":", ",", False, False,  # type: ignore[misc]
                    allow_nan)
    except TypeError:
        return None


@functools.cache
def _c_encoder_ok(ensure_ascii: bool, allow_nan: bool) -> bool:
    """Whether the C encoder writes what json.dumps writes with these settings: checked once
    per setting (the probe's data never reaches `default`, so it does not matter here): key
    order kept (no sort), a non-str key, NaN as the slow one treats it."""
    enc = _c_encoder(ensure_ascii, allow_nan, json.JSONEncoder().default)
    if enc is None:
        return False
    slow = json.JSONEncoder(separators=(",", ":"), ensure_ascii=ensure_ascii,
                            allow_nan=allow_nan).encode

    def fast(v: Any) -> str:
        return "".join(enc(v, 0))

    def refused(f: Callable[[Any], str], v: Any) -> str | None:
        try:
            return f(v)
        except ValueError:
            return None

    probe = [{"b": [1, 2.5, None, True], "a": 1, 3: 0}, "\u00e4\"\\", ("t",)]
    nan = [float("nan")]
    return refused(fast, probe) == refused(slow, probe) is not None and \
        refused(fast, nan) == refused(slow, nan)


def compact_json(*, ensure_ascii: bool, allow_nan: bool,
                 default: Callable[[Any], Any] | None) -> Callable[[Any], str]:
    """json.dumps(v, separators=(",", ":"), ensure_ascii=..., allow_nan=..., default=...),
    the same text, for data without reference cycles (JSON read back never has any): CPython's
    C encoder made once instead of on every call (a microsecond each, many per measurement)."""
    enc = _c_encoder(ensure_ascii, allow_nan, default or json.JSONEncoder().default) \
        if _c_encoder_ok(ensure_ascii, allow_nan) else None
    if enc is None:  # the same text, made as json.dumps does
        return json.JSONEncoder(separators=(",", ":"), ensure_ascii=ensure_ascii,
                                allow_nan=allow_nan, default=default).encode

    def fast(v: Any) -> str:
        return "".join(enc(v, 0))

    return fast


_KEY_JSON = compact_json(ensure_ascii=False, allow_nan=True, default=str)


def bodies_alike(a: int | None, b: int | None) -> bool:
    if a is None or b is None:
        return a is b
    big, small = max(a, b), min(a, b)
    return big == 0 or small / big >= BODY_PROPORTION


def extends(run: dict[str, Any] | None, o: Outcome | None, at: datetime) -> bool:
    """Whether a measurement at `at` with outcome `o` extends the open run `run` (a `runs` row):
    the same outcome, a body alike, later than the run's last measurement and on the same UTC day
    as the run's full row (one full sample per (URL, vantage) per day)."""
    if run is None or o is None:
        return False
    return (run["outcome"] == o.key and bodies_alike(run["body_length"], o.body_length)
            and at > run["last_at"] and at.date() == run["started_at"].date())
