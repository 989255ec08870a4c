"""OONI list items -> validated records and blockwatch verdicts. Pure: no I/O.

An item is one row of `GET /api/v1/measurements` (see tests/fixtures/ooni/): OONI's fastpath
has already judged the raw measurement; we translate that judgement into our vocabulary and keep
the item itself as the evidence.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from blockwatch.analysis.reasons import OONI_CONFIRMED_EN, OONI_EN
from blockwatch.analysis.verdict import Judgement

# OONI's web_connectivity `blocking` values (hyphenated) -> our verdicts. The underscore spellings
# are accepted too: OONI's own data uses both over the years, and accepting them costs nothing.
BLOCKING_TYPES: dict[str, str] = {
    "dns": "dns",
    "tcp_ip": "tcp_ip",
    "tcp-ip": "tcp_ip",
    "http-failure": "http_failure",
    "http_failure": "http_failure",
    "http-diff": "http_diff",
    "http_diff": "http_diff",
}

# What each verdict means in OONI's terms, for the one-line reason: analysis/reasons.py holds
# the English (and reads it back into every language), so the two cannot drift apart.
_MEANING = OONI_EN

_ASN = re.compile(r"^AS\d{1,10}$")
_UID_MAX = 128  # Measurement.uid is String(128)


class ItemError(ValueError):
    """An item that cannot be imported; the message says which field and what was wrong."""


@dataclass(frozen=True)
class OoniItem:
    uid: str  # our Measurement.uid ("ooni:<measurement_uid>")
    input: str
    host: str
    probe_asn: str
    probe_cc: str
    measured_at: datetime
    anomaly: bool
    confirmed: bool
    failure: bool
    blocking_type: str | None  # OONI's raw value, None when absent
    accuracy: float | None
    measurement_url: str
    raw: dict[str, Any]


def parse_time(v: str) -> datetime:
    """"2024-05-01T10:00:00Z" (list items) or "2024-05-01 10:00:00" (raw measurements) -> UTC."""
    dt = datetime.fromisoformat(v.strip().replace(" ", "T", 1))
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def make_uid(raw: dict[str, Any]) -> str:
    """OONI's measurement_uid when present; else a hash of report_id + input + start time (what
    identified a measurement before measurement_uid existed)."""
    muid = raw.get("measurement_uid")
    if isinstance(muid, str) and muid.strip():
        uid = f"ooni:{muid.strip()}"
        if len(uid) <= _UID_MAX:
            return uid
    key = "\x00".join(str(raw.get(k) or "") for k in ("report_id", "input", "measurement_start_time"))
    return "ooni:r:" + hashlib.sha256(key.encode("utf-8")).hexdigest()


def _str(raw: dict[str, Any], key: str) -> str:
    v = raw.get(key)
    if not isinstance(v, str) or not v.strip():
        raise ItemError(f"{key!r} is missing or not a non-empty string (got {v!r})")
    return v.strip()


def _bool(raw: dict[str, Any], key: str) -> bool:
    v = raw.get(key)
    if not isinstance(v, bool):
        raise ItemError(f"{key!r} is missing or not true/false (got {v!r})")
    return v


def parse_item(raw: Any, *, test_name: str = "web_connectivity") -> OoniItem:
    """Validate one list item. Raises ItemError naming the field when it cannot be used."""
    if not isinstance(raw, dict):
        raise ItemError(f"expected a JSON object, got {type(raw).__name__}")
    if not (isinstance(raw.get("measurement_uid"), str) and raw["measurement_uid"].strip()) \
            and not (isinstance(raw.get("report_id"), str) and raw["report_id"].strip()):
        raise ItemError("neither 'measurement_uid' nor 'report_id' is present: cannot deduplicate")
    tn = raw.get("test_name")
    if tn is not None and tn != test_name:
        raise ItemError(f"'test_name' is {tn!r}, not {test_name!r}")
    url = _str(raw, "input")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ItemError(f"'input' {url!r} is not an http:// or https:// URL")
    asn = _str(raw, "probe_asn")
    if not _ASN.match(asn):
        raise ItemError(f"'probe_asn' {asn!r} is not like \"AS9198\"")
    cc = _str(raw, "probe_cc")
    start = _str(raw, "measurement_start_time")
    try:
        measured_at = parse_time(start)
    except ValueError:
        raise ItemError(f"'measurement_start_time' {start!r} is not a date and time") from None
    scores = raw.get("scores")
    if scores is not None and not isinstance(scores, dict):
        raise ItemError(f"'scores' is not an object (got {type(scores).__name__})")
    analysis = (scores or {}).get("analysis")
    btype = analysis.get("blocking_type") if isinstance(analysis, dict) else None
    acc = (scores or {}).get("accuracy")
    mu = raw.get("measurement_url")
    return OoniItem(
        uid=make_uid(raw), input=url, host=parts.hostname.lower(), probe_asn=asn, probe_cc=cc,
        measured_at=measured_at, anomaly=_bool(raw, "anomaly"),
        confirmed=_bool(raw, "confirmed"), failure=_bool(raw, "failure"),
        blocking_type=btype if isinstance(btype, str) and btype else None,
        accuracy=float(acc) if isinstance(acc, int | float) and not isinstance(acc, bool) else None,
        measurement_url=mu if isinstance(mu, str) else "", raw=raw,
    )


def map_verdict(it: OoniItem) -> Judgement:
    """OONI's judgement in our vocabulary, with a reason that says whose judgement it is.

    Order: a failed or unreliable measurement says nothing (inconclusive) whatever its flags; no
    anomaly is `ok`; an anomaly takes OONI's blocking type; a confirmed anomaly is a matched
    fingerprint, so confirmed HTTP-level anomalies are `http_blockpage`. An anomaly whose type is
    missing or unknown is `inconclusive`, not `http_diff`: OONI's scoring writes one of the four
    known types whenever it concludes, so anything else is a judgement we cannot read, and
    blockwatch never reports a block it cannot explain (an inconclusive verdict neither confirms
    nor resets a pending change, so it cannot end a real event either).
    """
    who = f"OONI's verdict from {it.probe_asn}"
    link = f"; {it.measurement_url}" if it.measurement_url else ""
    if it.failure:
        return Judgement("inconclusive", False, f"{who}: {_MEANING['failed']}{link}")
    if it.accuracy is not None and it.accuracy <= 0.0:
        return Judgement("inconclusive", False, f"{who}: {_MEANING['unreliable']}{link}")
    if not it.anomaly:
        # OONI never sets confirmed without anomaly; if it did, no anomaly is the safer reading.
        return Judgement("ok", False, f"{who}: {_MEANING['ok']}{link}")
    mapped = BLOCKING_TYPES.get(it.blocking_type) if it.blocking_type else None
    if it.confirmed and mapped in (None, "http_diff"):
        return Judgement("http_blockpage", True, f"{who}: {_MEANING['http_blockpage']}{link}")
    if mapped is None:
        what = f"of unknown type {it.blocking_type!r}" if it.blocking_type else "without a type"
        return Judgement("inconclusive", False,
                         f"{who}: an anomaly {what}, which blockwatch cannot interpret{link}")
    confirmed = OONI_CONFIRMED_EN if it.confirmed else ""
    return Judgement(mapped, it.confirmed, f"{who}: {_MEANING[mapped]}{confirmed}{link}")


def vantage_name(vantage: str, probe_asn: str) -> str:
    """The output contract: an OONI vantage's measurements are `<name>:<probe_asn>`, e.g. ooni-kz:AS9198."""
    return f"{vantage}:{probe_asn}"


def failure_label(it: OoniItem) -> str | None:
    """What goes in Measurement.failure (the list item carries no failure string of its own)."""
    return "ooni_measurement_failed" if it.failure else None
