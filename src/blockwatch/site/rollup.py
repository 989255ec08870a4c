"""Daily rollups: worst confirmed state and minutes affected per target, vantage and UTC day.

Definitions (also in the README's status page section):
- The confirmed-state timeline of one (URL, vantage) is its events: each Event holds its `state`
  from `started_at` until `ended_at` (an open event holds until "now"). Raw verdicts are not used
  for the state, so one lost packet never paints a day red (the same rule as alerts).
- A target's state at a vantage at a moment is the worst of its URLs' confirmed states.
- `worst` of a day: the worst state that held at any moment of that day.
- `minutes_affected`: the minutes of that day (up to "now" for today) during which at least one
  of the target's URLs was confirmed in a BLOCKING state or `down` at that vantage (the union of
  those intervals, so two URLs blocked at the same time count once). A state counts from its
  first measurement to the measurement that replaced it (the next state's start) or, while it
  still holds, to its last measurement that showed it: nothing is counted past what was
  measured, so a vantage that went silent or whose checks are inconclusive adds no minutes (the
  outlet page's "since ... (for N)" counts to its newest check, the same rule).
- `measurements`: the verdicts recorded that day for the target at that vantage.
- A day gets a row only if it has at least one verdict: a silent vantage (an agent offline) shows
  "no data", not an inherited "reachable". A day with verdicts but no confirmed state yet (the
  first rounds, or flapping) is "inconclusive", and so is a day whose every verdict was
  inconclusive (the vantage or the control could not look): "not measured", never an inherited
  state, and no minutes affected.

The computation is pure (`rollup_day`); `rollup`/`rollup_range` load, compute and upsert, so they
are idempotent. Raw verdicts are pruned after `retention.raw`; roll a day up before then (the
daemon's nightly job does yesterday; the site build does today, yesterday and missing days).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from blockwatch.analysis.verdict import BLOCKING, SEVERITY
from blockwatch.storage import Database
from blockwatch.storage.models import DailyRollup, Event, Vantage, Verdict

AFFECTED = BLOCKING | {"down"}
DAY = timedelta(days=1)


@dataclass(frozen=True)
class Span:
    """One confirmed state of one URL at one vantage."""

    target_id: int
    vantage_id: int
    state: str
    start: datetime
    end: datetime | None  # None: still holds
    # still holding: its last measurement that showed it (None: unknown, counted to "now")
    seen_until: datetime | None = None


@dataclass(frozen=True)
class RollupRow:
    target_id: int
    vantage_id: int
    day: date
    worst: str
    minutes_affected: int
    measurements: int


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tzinfo=UTC)
    return start, start + DAY


def _union_seconds(intervals: list[tuple[datetime, datetime]]) -> float:
    total = 0.0
    cur_s: datetime | None = None
    cur_e: datetime | None = None
    for s, e in sorted(intervals):
        if cur_e is None or s > cur_e:
            if cur_s is not None and cur_e is not None:
                total += (cur_e - cur_s).total_seconds()
            cur_s, cur_e = s, e
        elif e > cur_e:
            cur_e = e
    if cur_s is not None and cur_e is not None:
        total += (cur_e - cur_s).total_seconds()
    return total


def rollup_day(spans: Iterable[Span], counts: Mapping[tuple[int, int], int], day: date,
               now: datetime, usable: Mapping[tuple[int, int], int] | None = None
               ) -> list[RollupRow]:
    """Pure: the rows of one UTC day from confirmed spans and per-(target, vantage) verdict
    counts of that day (`usable`: of those, the ones not inconclusive; None: all were). Only
    pairs with verdicts that day get a row."""
    start, end = day_bounds(day)
    end = min(end, max(now, start))
    worst: dict[tuple[int, int], str] = {}
    hit: dict[tuple[int, int], list[tuple[datetime, datetime]]] = {}
    for sp in spans:
        key = (sp.target_id, sp.vantage_id)
        if key not in counts:
            continue
        s = max(sp.start, start)
        e = min(sp.end or end, end)
        # a state that began exactly at the day's end (or ended at its start) is not of this day;
        # a zero-length span inside the day (confirmed and replaced at once) still counts
        if s > e or s >= end or (sp.end is not None and sp.end <= start):
            continue
        if key not in worst or SEVERITY.get(sp.state, 0) > SEVERITY.get(worst[key], 0):
            worst[key] = sp.state
        if sp.end is None and sp.seen_until is not None:
            e = max(s, min(e, sp.seen_until))  # not past its last measurement
        if sp.state in AFFECTED and e > s:
            hit.setdefault(key, []).append((s, e))
    rows = []
    for key, n in sorted(counts.items()):
        if usable is not None and not usable.get(key):
            rows.append(RollupRow(key[0], key[1], day, "inconclusive", 0, n))
            continue
        # whole minutes, rounded down as every duration on the pages is (i18n.fmt_duration)
        minutes = int(_union_seconds(hit.get(key, [])) // 60)
        rows.append(RollupRow(key[0], key[1], day, worst.get(key, "inconclusive"),
                              min(minutes, 1440), n))
    return rows


# --- I/O ---------------------------------------------------------------------------------------

def _spans(s: Session, since: datetime, until: datetime) -> list[Span]:
    # an open event's last measurement that showed its state (a run's last repetition included)
    seen = (select(func.max(func.coalesce(Verdict.repeated_until, Verdict.measured_at)))
            .where(Verdict.url == Event.url, Verdict.vantage_id == Event.vantage_id,
                   Verdict.verdict == Event.state, Verdict.measured_at >= Event.started_at)
            .correlate(Event).scalar_subquery())
    q = (
        select(Event.target_id, Event.vantage_id, Event.state, Event.started_at, Event.ended_at,
               case((Event.ended_at.is_(None), seen), else_=None))
        .join(Vantage, Vantage.id == Event.vantage_id)
        .where(Vantage.kind != "control", Event.target_id.is_not(None),
               Event.started_at < until,
               or_(Event.ended_at.is_(None), Event.ended_at >= since))
    )
    return [Span(t, v, st, a, b, _aware(u)) for t, v, st, a, b, u in s.execute(q)]


def _aware(dt: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes (stored as UTC)."""
    return dt.replace(tzinfo=UTC) if dt is not None and dt.tzinfo is None else dt


def _counts(s: Session, start: datetime, end: datetime
            ) -> tuple[dict[tuple[int, int], int], dict[tuple[int, int], int]]:
    """Verdicts per (target, vantage) that day, and how many of them were usable (a row counts
    for itself and the repetitions of its run, which never crosses a UTC day)."""
    n = 1 + Verdict.repeats
    usable = func.sum(case((Verdict.verdict != "inconclusive", n), else_=0))
    q = (
        select(Verdict.target_id, Verdict.vantage_id, func.sum(n), usable)
        .join(Vantage, Vantage.id == Verdict.vantage_id)
        .where(Vantage.kind != "control", Verdict.target_id.is_not(None),
               and_(Verdict.measured_at >= start, Verdict.measured_at < end))
        .group_by(Verdict.target_id, Verdict.vantage_id)
    )
    counts: dict[tuple[int, int], int] = {}
    good: dict[tuple[int, int], int] = {}
    for t, v, n, u in s.execute(q):
        counts[(t, v)] = int(n or 0)
        good[(t, v)] = int(u or 0)
    return counts, good


def upsert_rollups(s: Session, rows: list[RollupRow]) -> None:
    if not rows:
        return
    values = [{"target_id": r.target_id, "vantage_id": r.vantage_id, "day": r.day,
               "worst": r.worst, "minutes_affected": r.minutes_affected,
               "measurements": r.measurements} for r in rows]
    dialect = s.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt = pg_insert(DailyRollup)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(DailyRollup)  # type: ignore[assignment]
    stmt = stmt.on_conflict_do_update(
        index_elements=["target_id", "vantage_id", "day"],
        set_={"worst": stmt.excluded.worst, "minutes_affected": stmt.excluded.minutes_affected,
              "measurements": stmt.excluded.measurements},
    )
    for i in range(0, len(values), 500):  # keep under SQLite's bound-parameter limit
        s.execute(stmt, values[i:i + 500])


def _changed(s: Session, day: date, rows: list[RollupRow]) -> list[RollupRow]:
    """The rows that differ from those stored: the site build rolls up today and yesterday
    before every build, and most of yesterday's rows (and today's, between rounds) are the
    same; an upsert of the same values would still be a write."""
    have = {(t, v): (w, m, n) for t, v, w, m, n in s.connection().execute(
        select(DailyRollup.target_id, DailyRollup.vantage_id, DailyRollup.worst,
               DailyRollup.minutes_affected, DailyRollup.measurements)
        .where(DailyRollup.day == day))}
    return [r for r in rows if have.get((r.target_id, r.vantage_id))
            != (r.worst, r.minutes_affected, r.measurements)]


def rollup_range(db: Database, since: date, until: date, *, now: datetime | None = None) -> int:
    """Roll up every UTC day from `since` to `until` inclusive; returns the rows written.
    Days without verdicts write nothing (existing rows, e.g. older than raw retention, stay)."""
    now = now or datetime.now(UTC)
    if until < since:
        return 0
    first, _ = day_bounds(since)
    _, last = day_bounds(until)
    written = 0
    with db.write() as s:
        spans = _spans(s, first, last)
        day = since
        while day <= until:
            start, end = day_bounds(day)
            counts, usable = _counts(s, start, end)
            if counts:
                day_spans = [sp for sp in spans
                             if sp.start < end and (sp.end is None or sp.end >= start)]
                rows = rollup_day(day_spans, counts, day, now, usable)
                upsert_rollups(s, _changed(s, day, rows))
                written += len(rows)
            day += DAY
    return written


def rollup(db: Database, day: date, *, now: datetime | None = None) -> int:
    """Roll up one UTC day (idempotent)."""
    return rollup_range(db, day, day, now=now)


def days_to_roll_up(db: Database, now: datetime, lookback_days: int = 90) -> list[date]:
    """Today, yesterday (its late events may have been confirmed after midnight) and any day of
    the lookback that has verdicts but no rollup rows."""
    today = now.astimezone(UTC).date()
    with db.read() as s:
        first = s.scalar(select(func.min(Verdict.measured_at)))
        if first is None:
            return []
        start = max(first.astimezone(UTC).date(), today - timedelta(days=lookback_days))
        have = set(s.scalars(select(DailyRollup.day).where(DailyRollup.day >= start)
                             .group_by(DailyRollup.day)))
    days = []
    d = start
    while d <= today:
        if d not in have or d >= today - DAY:
            days.append(d)
        d += DAY
    return days


def rollup_due(db: Database, now: datetime | None = None) -> int:
    """What the site build runs before rendering: the days `days_to_roll_up` names."""
    now = now or datetime.now(UTC)
    days = days_to_roll_up(db, now)
    if not days:
        return 0
    written = 0
    # contiguous runs share one span query
    run_start = prev = days[0]
    for d in [*days[1:], None]:
        if d is not None and d == prev + DAY:
            prev = d
            continue
        written += rollup_range(db, run_start, prev, now=now)
        if d is not None:
            run_start = prev = d
    return written
