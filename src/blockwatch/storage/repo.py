"""The queries that matter, as small functions over a Session."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from blockwatch.analysis import events as ev
from blockwatch.storage.models import (
    Event,
    KeyValue,
    Measurement,
    Target,
    UrlState,
    Vantage,
    Verdict,
)
from blockwatch.targets import Target as TargetSpec
from blockwatch.textsafe import canonical_json as canonical_json  # the one spelling of evidence
from blockwatch.textsafe import storable, storable_evidence


def utcnow() -> datetime:
    return datetime.now(UTC)


def parse_time(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00")).astimezone(UTC)


def iso(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    return dt.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def evidence_hash(data: Any) -> str:
    return hashlib.sha256(canonical_json(data).encode("utf-8")).hexdigest()


def sync_targets(s: Session, targets: Iterable[TargetSpec], *, retire_others: bool = True
                 ) -> dict[str, int]:
    """Make the targets table match the target files; a removed target is kept, inactive.
    With `retire_others=False` (a round of only some targets: `check --target`) the others are
    left as they are."""
    rows = {t.name: t for t in s.scalars(select(Target))}
    seen = set()
    for t in targets:
        seen.add(t.name)
        row = rows.get(t.name)
        if row is None:
            row = Target(name=t.name)
            s.add(row)
            rows[t.name] = row
        row.country, row.category = t.country, t.category
        row.urls, row.aliases, row.active = list(t.urls), list(t.aliases), True
    for name, row in rows.items():
        if retire_others and name not in seen:
            row.active = False
    s.flush()
    return {name: row.id for name, row in rows.items()}


def ensure_vantage(s: Session, name: str, kind: str, country: str = "", asn: str = "") -> int:
    # OONI vantages are named from the API's answers: text from outside
    name, country, asn = storable(name), storable(country), storable(asn)
    row = s.scalar(select(Vantage).where(Vantage.name == name))
    if row is None:
        row = Vantage(name=name, kind=kind, country=country, asn=asn, created_at=utcnow())
        s.add(row)
        s.flush()
    else:
        if country and row.country != country:
            row.country = country
        if asn and row.asn != asn:
            row.asn = asn
        if row.kind != kind:
            row.kind = kind
    return row.id


def add_measurement(s: Session, *, uid: str, target_id: int | None, vantage_id: int, url: str,
                    role: str, measured_at: datetime, evidence: dict[str, Any],
                    failure: str | None = None, round_id: str | None = None,
                    keep: bool = False) -> Measurement:
    """One measurement through the ORM (rounds and the collector store in bulk: storage/bulk.py).
    Text is made storable as bulk.py does (textsafe)."""
    data, text = storable_evidence(evidence)
    m = Measurement(uid=storable(uid), target_id=target_id, vantage_id=vantage_id,
                    url=storable(url), role=role,
                    round_id=storable(round_id) if round_id else round_id, measured_at=measured_at,
                    failure=storable(failure)[:64] if failure else failure, evidence=data,
                    evidence_sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(), keep=keep)
    s.add(m)
    s.flush()
    return m


def measurement_exists(s: Session, uid: str) -> bool:
    return s.scalar(select(Measurement.id).where(Measurement.uid == uid)) is not None


@dataclass(frozen=True)
class NewEvent:
    id: int
    target_id: int | None
    vantage_id: int
    url: str
    state: str
    previous: str | None


def record_verdict(s: Session, *, measurement: Measurement, control_id: int | None, verdict: str,
                   confirmed: bool, reason: str, confirm_after: int) -> tuple[Verdict, NewEvent | None]:
    """Store a verdict and advance the (URL, vantage) state machine; returns the new event, if
    this verdict confirmed one. A measurement older than the newest one judged for its (URL,
    vantage) is stored with its verdict but steps nothing. Kept only as the test oracle of the
    one store path (storage/bulk.py), which must give the same rows; nothing in the product
    stores through it."""
    m = measurement
    reason = storable(reason)
    v = Verdict(measurement_id=m.id, control_id=control_id, target_id=m.target_id,
                vantage_id=m.vantage_id, url=m.url, verdict=verdict, confirmed=confirmed,
                reason=reason, measured_at=m.measured_at)
    s.add(v)
    s.flush()
    now = utcnow()
    st = s.get(UrlState, (m.url, m.vantage_id))
    if st is None:
        st = UrlState(url=m.url, vantage_id=m.vantage_id, target_id=m.target_id, pending_count=0,
                      updated_at=now)
        s.add(st)
    _touch_vantage(s, m.vantage_id, m.measured_at)
    if verdict != "ok":
        m.keep = True
    if st.last_seen_at is not None and m.measured_at < st.last_seen_at:
        # late (an agent's queue, a back-dated upload): evidence, but history is not rewritten
        return v, None
    cur = ev.UrlState(st.state, st.since, st.pending, st.pending_count or 0, st.pending_since)
    nxt, tr = ev.step(cur, verdict, m.measured_at, confirm_after)
    st.state, st.since, st.pending = nxt.state, nxt.since, nxt.pending
    st.pending_count, st.pending_since = nxt.pending_count, nxt.pending_since
    st.target_id = m.target_id
    st.last_verdict_id = v.id
    if st.last_seen_at is None or st.last_seen_at <= m.measured_at:
        st.last_seen_at = m.measured_at
    st.updated_at = now
    e = None
    if tr is not None:
        old = s.get(Event, st.event_id) if st.event_id else None
        if old is not None and old.ended_at is None:
            old.ended_at = tr.started_at
        e = Event(target_id=m.target_id, vantage_id=m.vantage_id, url=m.url, state=tr.state,
                  previous=tr.previous, confirmed=confirmed, reason=reason,
                  started_at=tr.started_at, detected_at=tr.detected_at, verdict_id=v.id)
        s.add(e)
        s.flush()
        st.event_id = e.id
        m.keep = True
    return v, (NewEvent(e.id, e.target_id, e.vantage_id, e.url, e.state, e.previous)
               if e is not None else None)


def _touch_vantage(s: Session, vantage_id: int, at: datetime) -> None:
    row = s.get(Vantage, vantage_id)  # identity map: one SELECT per vantage per transaction
    if row is not None and (row.last_seen_at is None or row.last_seen_at < at):
        row.last_seen_at = at


@dataclass(frozen=True)
class VerdictRow:
    target: str
    url: str
    vantage: str
    verdict: str
    confirmed: bool
    reason: str
    measured_at: datetime
    state: str | None
    since: datetime | None
    country: str
    kind: str

    def to_json(self) -> dict[str, Any]:
        return {"target": self.target, "url": self.url, "vantage": self.vantage,
                "verdict": self.verdict, "confirmed": self.confirmed, "reason": self.reason,
                "measured_at": iso(self.measured_at), "state": self.state,
                "since": iso(self.since), "country": self.country, "vantage_kind": self.kind}


def latest_verdicts(s: Session, *, target: str | None = None) -> list[VerdictRow]:
    """The newest verdict per (URL, vantage), with the confirmed state and since when."""
    q = (
        select(Verdict, Target.name, Vantage.name, Vantage.country, Vantage.kind, UrlState)
        .select_from(UrlState)
        .join(Verdict, Verdict.id == UrlState.last_verdict_id)
        .join(Vantage, Vantage.id == Verdict.vantage_id)
        .outerjoin(Target, Target.id == Verdict.target_id)
        .where(Vantage.kind != "control")
        .order_by(Target.name, Verdict.url, Vantage.name)
    )
    if target is not None:
        q = q.where(Target.name == target)
    out = []
    for v, tname, vname, country, kind, st in s.execute(q):
        out.append(VerdictRow(tname or "", v.url, vname, v.verdict, v.confirmed, v.reason,
                              v.repeated_until or v.measured_at, st.state if st else None,
                              st.since if st else None, country, kind))
    return out


def set_kv(s: Session, key: str, value: Any) -> None:
    row = s.get(KeyValue, key)
    if row is None:
        s.add(KeyValue(key=key, value=value, updated_at=utcnow()))
    else:
        row.value, row.updated_at = value, utcnow()


def get_kv(s: Session, key: str, default: Any = None) -> Any:
    row = s.get(KeyValue, key)
    return default if row is None else row.value
