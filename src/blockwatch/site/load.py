"""Read what the site shows out of the database into plain records (the only I/O of a build
besides writing files). Core selects, not ORM objects: 500 targets x 4 vantages x 90 days is
180k rollup rows, and ORM identity-map overhead would dominate the build."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import column, func, or_, select, table
from sqlalchemy.orm import Session, aliased

from blockwatch.analysis import reasons
from blockwatch.analysis.display import Schedule
from blockwatch.storage.models import (
    Case,
    DailyRollup,
    Event,
    Feed,
    FeedEntry,
    Incident,
    IncidentReview,
    Measurement,
    Target,
    UrlState,
    Vantage,
    Verdict,
)

HISTORY_DAYS = 90
EVENT_DAYS = 365  # closed events older than this are left off the pages and the feed
MAX_INCIDENTS = 300


@dataclass(frozen=True)
class TargetRec:
    id: int
    name: str
    urls: tuple[str, ...]
    country: str
    category: str


@dataclass(frozen=True)
class VantageRec:
    id: int
    name: str  # never rendered for an agent: see model.public_vantages
    kind: str
    country: str
    asn: str
    interval: timedelta = Schedule().probe  # how often it is expected to measure


@dataclass(frozen=True)
class UrlStateRec:
    target_id: int
    vantage_id: int
    url: str
    state: str | None
    since: datetime | None
    last_seen_at: datetime | None
    verdict: str | None  # the latest verdict (may differ from the confirmed state: pending)
    verdict_confirmed: bool
    verdict_reason: str
    event_confirmed: bool
    event_reason: str
    usable_at: datetime | None = None  # the latest measurement that was not inconclusive
    verdict_keys: dict[str, Any] | None = None  # the latest verdict's reason keys (any language)
    event_keys: dict[str, Any] | None = None  # those of the verdict that opened the event


@dataclass(frozen=True)
class RollupRec:
    target_id: int
    vantage_id: int
    day: date
    worst: str
    minutes: int
    measurements: int


@dataclass(frozen=True)
class EventRec:
    id: int
    target_id: int
    vantage_id: int
    url: str
    state: str
    previous: str | None
    confirmed: bool
    reason: str
    started_at: datetime
    detected_at: datetime
    ended_at: datetime | None
    measured_at: datetime | None
    evidence_sha256: str | None
    reason_keys: dict[str, Any] | None = None  # of the verdict that opened it (any language)

    @property
    def updated(self) -> datetime:
        return max(self.detected_at, self.ended_at) if self.ended_at else self.detected_at

    def said(self, lang: str) -> tuple[str, str]:
        """(the reason in `lang`, the language it is in): "en" for an old row without keys."""
        return reasons.said(self.reason_keys, self.reason, lang)


@dataclass(frozen=True)
class IncidentRec:
    id: int
    title: str
    link: str
    source: str
    types: tuple[str, ...]
    outlets: tuple[str, ...]
    people: tuple[str, ...]
    occurred_at: datetime  # published, else when a feed first showed it
    status: str | None = None  # released, sentenced... as the report says
    publisher: str = ""  # the site an aggregator (a news search) names, else the feed
    reviewed: bool = False  # a person confirmed or corrected it (blockwatch review)


@dataclass(frozen=True)
class CaseRec:
    id: int
    incident_id: int
    event_id: int
    created_at: datetime


@dataclass
class Snapshot:
    now: datetime
    targets: list[TargetRec] = field(default_factory=list)
    vantages: dict[int, VantageRec] = field(default_factory=dict)
    states: list[UrlStateRec] = field(default_factory=list)
    rollups: list[RollupRec] = field(default_factory=list)
    events: list[EventRec] = field(default_factory=list)
    incidents: list[IncidentRec] = field(default_factory=list)
    cases: list[CaseRec] = field(default_factory=list)
    quorum: int = 0  # [alerts] quorum: networks of a country that must agree it is blocked


def _aware(dt: datetime | None) -> datetime | None:
    # a scalar subquery's value can bypass the column's UTC type on SQLite
    if isinstance(dt, str):
        dt = datetime.fromisoformat(dt)
    return dt.replace(tzinfo=UTC) if dt is not None and dt.tzinfo is None else dt


def _publisher(source_url: str | None, feed: str) -> str:
    try:
        host = urlsplit(source_url).hostname if source_url else None
    except ValueError:  # stored as found: a hostile feed's URL need not parse
        host = None
    return host.removeprefix("www.") if host else feed


# rollup_marks (migration 0007): per target, a counter that triggers on daily_rollups move on
# any change of what the pages show; not an ORM model, nothing but the site reads it
ROLLUP_MARKS = table("rollup_marks", column("target_id"), column("gen"))


def rollup_gens(s: Session) -> dict[int, int]:
    """Each target's rollup counter: read before its rows, so a change made meanwhile is seen
    (its counter read here differs from the one the rows were read with at the next build)."""
    return {int(t): int(g) for t, g in s.connection().execute(
        select(ROLLUP_MARKS.c.target_id, ROLLUP_MARKS.c.gen))}


def load_rollups(s: Session, now: datetime, tids: Collection[int], vids: Collection[int],
                 only: Collection[int] | None = None) -> list[RollupRec]:
    """The window's rollup rows of active targets at public vantages; `only`: of these targets
    (None: of all)."""
    first_day = now.date() - timedelta(days=HISTORY_DAYS - 1)
    q = (select(DailyRollup.target_id, DailyRollup.vantage_id, DailyRollup.day,
                DailyRollup.worst, DailyRollup.minutes_affected, DailyRollup.measurements)
         .where(DailyRollup.day >= first_day, DailyRollup.day <= now.date()))
    if only is None:
        queries = [q]
    else:  # in chunks: SQLite's bound-parameter limit
        ids = sorted(only)
        queries = [q.where(DailyRollup.target_id.in_(ids[i:i + 500]))
                   for i in range(0, len(ids), 500)]
    out = []
    for qq in queries:
        # the Core connection: the ORM's row machinery costs seconds over 180k rollup rows
        for t, v, d, w, m, n in s.connection().execute(qq):
            if t in tids and v in vids:
                out.append(RollupRec(t, v, d, w, m or 0, n or 0))
    return out


def load_snapshot(s: Session, now: datetime, schedule: Schedule | None = None,
                  quorum: int = 0, *, rollups: bool = True, reviewed_only: bool = False) -> Snapshot:
    """`rollups`: also read the window's rollup rows (the daemon's cache reads them itself).
    `reviewed_only`: only incidents a person reviewed (`[site] incidents = "reviewed"`)."""
    schedule = schedule or Schedule()
    snap = Snapshot(now=now, quorum=quorum)
    snap.targets = [
        TargetRec(i, n, tuple(u or ()), c or "", cat or "")
        for i, n, u, c, cat in s.execute(
            select(Target.id, Target.name, Target.urls, Target.country, Target.category)
            .where(Target.active.is_(True)).order_by(Target.name))
    ]
    tids = {t.id for t in snap.targets}
    # the control is never a vantage on the public page: dropped here, before anything renders
    snap.vantages = {
        i: VantageRec(i, n, k, c or "", a or "", schedule.interval(n, k))
        for i, n, k, c, a in s.execute(
            select(Vantage.id, Vantage.name, Vantage.kind, Vantage.country, Vantage.asn)
            .where(Vantage.kind != "control").order_by(Vantage.id))
    }
    vids = set(snap.vantages)
    ev = aliased(Event)
    ev_verdict = aliased(Verdict)
    uv = aliased(Verdict)
    # the newest usable verdict of each (URL, vantage): one backward step along the
    # (url, vantage_id, measured_at) index when the latest one is usable, which it usually is
    usable = (select(func.coalesce(uv.repeated_until, uv.measured_at))  # a run's last
              .where(uv.url == UrlState.url, uv.vantage_id == UrlState.vantage_id,
                     uv.verdict != "inconclusive")
              .order_by(uv.measured_at.desc()).limit(1)
              .correlate(UrlState).scalar_subquery())
    q = (
        select(UrlState.target_id, UrlState.vantage_id, UrlState.url, UrlState.state,
               UrlState.since, UrlState.last_seen_at, Verdict.verdict, Verdict.confirmed,
               Verdict.reason, ev.confirmed, ev.reason, usable, Verdict.reason_keys,
               ev_verdict.reason_keys)
        .outerjoin(Verdict, Verdict.id == UrlState.last_verdict_id)
        .outerjoin(ev, ev.id == UrlState.event_id)
        .outerjoin(ev_verdict, ev_verdict.id == ev.verdict_id)
        .order_by(UrlState.target_id, UrlState.vantage_id, UrlState.url)
    )
    for row in s.execute(q):
        if row[0] in tids and row[1] in vids:
            snap.states.append(UrlStateRec(row[0], row[1], row[2], row[3], row[4], row[5], row[6],
                                           bool(row[7]), row[8] or "", bool(row[9]), row[10] or "",
                                           _aware(row[11]), row[12], row[13]))
    if rollups:
        snap.rollups = load_rollups(s, now, tids, vids)
    since = now - timedelta(days=EVENT_DAYS)
    q = (
        select(Event.id, Event.target_id, Event.vantage_id, Event.url, Event.state, Event.previous,
               Event.confirmed, Event.reason, Event.started_at, Event.detected_at, Event.ended_at,
               Verdict.measured_at, Measurement.evidence_sha256, Verdict.reason_keys)
        .outerjoin(Verdict, Verdict.id == Event.verdict_id)
        .outerjoin(Measurement, Measurement.id == Verdict.measurement_id)
        .where(or_(Event.ended_at.is_(None), Event.ended_at >= since))
        .order_by(Event.started_at.desc(), Event.id.desc())
    )
    for r in s.execute(q):
        if r[1] in tids and r[2] in vids:
            snap.events.append(EventRec(r[0], r[1], r[2], r[3], r[4], r[5], bool(r[6]), r[7] or "",
                                        r[8], r[9], r[10], r[11], r[12], r[13]))
    q = (
        select(Incident.id, FeedEntry.title, FeedEntry.link, Feed.name, Incident.types,
               Incident.outlets, Incident.people, Incident.occurred_at, Incident.status,
               FeedEntry.source_url, IncidentReview.id)
        .join(FeedEntry, FeedEntry.id == Incident.entry_id)
        .join(Feed, Feed.id == FeedEntry.feed_id)
        .outerjoin(IncidentReview, IncidentReview.entry_id == Incident.entry_id)
        .order_by(Incident.occurred_at.desc(), Incident.id.desc())
        .limit(MAX_INCIDENTS)
    )
    if reviewed_only:
        q = q.where(IncidentReview.id.is_not(None))
    snap.incidents = [
        IncidentRec(i, ti or "", li or "", src or "", tuple(ty or ()), tuple(o or ()),
                    tuple(p or ()), at, st, _publisher(su, src or ""), rid is not None)
        for i, ti, li, src, ty, o, p, at, st, su, rid in s.execute(q)
    ]
    iids = {i.id for i in snap.incidents}
    eids = {e.id for e in snap.events}
    snap.cases = [
        CaseRec(i, inc, e, at)
        for i, inc, e, at in s.execute(
            select(Case.id, Case.incident_id, Case.event_id, Case.created_at).order_by(Case.id))
        if inc in iids and e in eids
    ]
    return snap
