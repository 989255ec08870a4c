"""`blockwatch db stats`: how big the database is, what it holds, how fast it grows and what
retention removes next, so an operator can size a disk and a `[retention]` setting.

Growth is measured, not guessed: measurements per day over the last 7 days (by measured_at;
over the time since the first measurement when the database is younger, at least an hour)
times the database's bytes per measurement now (its size over its measurements: verdicts,
indexes and events included). A measurement row stands for itself and the repetitions of its run
(storage/runs.py): rows and measurements are counted apart."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from blockwatch.retention import prunable
from blockwatch.storage import Database
from blockwatch.storage import models as m
from blockwatch.storage.db import sqlite_path
from blockwatch.storage.repo import iso

GROWTH_DAYS = 7
MIN_GROWTH_WINDOW = timedelta(hours=1)  # a younger database: rates over an hour, not minutes

# rows by kind: what an operator asks about (measurements are split into kept and prunable)
COUNTED = (("verdicts", m.Verdict), ("events", m.Event), ("url_states", m.UrlState),
           ("incidents", m.Incident), ("feed_entries", m.FeedEntry), ("cases", m.Case),
           ("outbox", m.Outbox), ("daily_rollups", m.DailyRollup), ("runs", m.Run),
           ("evidence_pieces", m.EvidencePiece))


@dataclass
class Stats:
    dialect: str
    size_bytes: int  # the database as stored (SQLite: file + WAL; PostgreSQL: its tables)
    table_bytes: dict[str, int]  # per table with its indexes, where the database says
    measurements: int  # rows
    measured: int  # measurements they stand for (each row: itself and its run's repeats)
    measurements_kept: int  # anomalies, changes and their controls: retention never removes them
    measurements_prunable: int  # past retention now: removed by the next maintenance run
    rows: dict[str, int]
    per_day: float  # measurements per day, over `growth_window_days`
    rows_per_day: float  # measurement rows added per day, over the same days
    bytes_per_measurement: float | None
    retention_raw_days: float
    next_prune: dict[str, Any] = field(default_factory=dict)  # count and date range, now / in a day
    # GROWTH_DAYS, or the time since the first measurement when the database is younger
    growth_window_days: float = GROWTH_DAYS

    @property
    def growth_bytes_per_day(self) -> float | None:
        if self.bytes_per_measurement is None:
            return None
        return self.per_day * self.bytes_per_measurement

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "growth_bytes_per_day": self.growth_bytes_per_day}


def collect(db: Database, keep_for: timedelta, now: datetime) -> Stats:
    cutoff = now - keep_for
    with db.read() as s:
        size, tables = _size(db, s)
        total, measured = _rows_and_measured(s)
        kept = _count(s, select(func.count()).select_from(m.Measurement)
                      .where(m.Measurement.keep.is_(True)))
        due = _window(s, prunable(cutoff))
        soon = _window(s, prunable(cutoff + timedelta(days=1)))
        recent_rows, recent = _rows_and_measured(
            s, m.Measurement.measured_at >= now - timedelta(days=GROWTH_DAYS),
            m.Measurement.measured_at <= now)
        rows = {name: _count(s, select(func.count()).select_from(model)) for name, model in COUNTED}
        days = _window_days(s, now)
    return Stats(
        dialect=db.dialect, size_bytes=size, table_bytes=tables, measurements=total,
        measured=measured, measurements_kept=kept, measurements_prunable=due["count"], rows=rows,
        per_day=recent / days, rows_per_day=recent_rows / days, growth_window_days=days,
        bytes_per_measurement=size / measured if measured else None,
        retention_raw_days=keep_for.total_seconds() / 86400,
        next_prune={"cutoff": iso(cutoff), "now": due, "within_a_day": soon})


def _rows_and_measured(s: Session, *where: Any) -> tuple[int, int]:
    n, measured = s.execute(select(func.count(), func.sum(1 + m.Measurement.repeats))
                            .where(*where)).one()
    return int(n or 0), int(measured or 0)


def _count(s: Session, q: Any) -> int:
    return int(s.scalar(q) or 0)


def _window(s: Session, where: Any) -> dict[str, Any]:
    n, lo, hi = s.execute(select(func.count(), func.min(m.Measurement.measured_at),
                                 func.max(m.Measurement.measured_at)).where(where)).one()
    if isinstance(lo, str):  # SQLite aggregates return the stored text, not the column's type
        lo, hi = (m.UTCDateTime().process_result_value(datetime.fromisoformat(v), None)
                  for v in (lo, hi))
    return {"count": int(n or 0), "oldest": iso(lo), "newest": iso(hi)}


def _size(db: Database, s: Session) -> tuple[int, dict[str, int]]:
    if db.dialect == "postgresql":
        rows = s.execute(text(
            "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = current_schema() AND c.relkind = 'r'")).all()
        tables = {name: int(b) for name, b in rows}
        return sum(tables.values()), tables
    page = int(s.execute(text("PRAGMA page_size")).scalar() or 0)
    pages = int(s.execute(text("PRAGMA page_count")).scalar() or 0)
    size = page * pages
    path = sqlite_path(str(db.engine.url))
    if path is not None:
        wal = path.with_name(path.name + "-wal")
        if wal.exists():
            size += os.path.getsize(wal)
    return size, _sqlite_tables(s)


def _sqlite_tables(s: Session) -> dict[str, int]:
    """Bytes per table with its indexes from SQLite's dbstat table, when it is compiled in."""
    try:
        got = s.execute(text("SELECT name, tbl_name FROM sqlite_master"
                             " WHERE type IN ('table', 'index')")).all()
        owner = dict(got)
        sizes = s.execute(text("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name")).all()
    except Exception:  # no dbstat in this build: the total alone
        return {}
    out: dict[str, int] = {}
    for name, b in sizes:
        t = owner.get(name, name)
        out[t] = out.get(t, 0) + int(b or 0)
    return out


def human_bytes(n: float | None) -> str:
    if n is None:
        return "unknown"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def lines(st: Stats) -> list[str]:
    """`blockwatch db stats` as text."""
    out = [f"database: {human_bytes(st.size_bytes)} ({st.dialect})"]
    bpm = st.bytes_per_measurement
    out.append(f"measurements: {st.measurements:,} ({st.measurements_kept:,} kept for good, "
               f"{st.measurements_prunable:,} past retention now)")
    out.append(f"  standing for {st.measured:,} measured (a row and the repetitions of its run)"
               + (f", {bpm:,.0f} bytes each with everything that goes with them" if bpm else ""))
    for name, n in st.rows.items():
        out.append(f"  {name}: {n:,}")
    out.append(f"growth: {st.per_day:,.0f} measurements/day ({st.rows_per_day:,.0f} rows) over "
               f"{_window_said(st.growth_window_days)}, about "
               f"{human_bytes(st.growth_bytes_per_day)}/day"
               if st.measured else "growth: no measurements yet")
    nxt = st.next_prune
    out.append(f"retention: raw measurements kept {st.retention_raw_days:g} days "
               f"(cutoff {nxt['cutoff']}); anomalies, changes and their controls kept for good")
    for label, key in (("next run removes", "now"), ("within a day", "within_a_day")):
        w = nxt[key]
        rng = f" measured {w['oldest']} .. {w['newest']}" if w["count"] else ""
        out.append(f"  {label}: {w['count']:,} measurements{rng}")
    if st.table_bytes:
        out.append("by table (with its indexes):")
        for name, b in sorted(st.table_bytes.items(), key=lambda x: -x[1])[:12]:
            out.append(f"  {name}: {human_bytes(b)}")
    return out


def brief(db: Database, now: datetime) -> dict[str, Any]:
    """Size and growth only (health runs often: no full counts)."""
    with db.read() as s:
        size, _ = _size(db, s)
        _, total = _rows_and_measured(s)
        _, recent = _rows_and_measured(
            s, m.Measurement.measured_at >= now - timedelta(days=GROWTH_DAYS),
            m.Measurement.measured_at <= now)
        days = _window_days(s, now)
    per_day = recent / days
    growth = per_day * size / total if total else None
    line = (f"database: {human_bytes(size)}, growing "
            + (f"{human_bytes(growth)}/day ({per_day:,.0f} measurements/day over "
               f"{_window_said(days)})" if total else "- (no measurements yet)"))
    return {"size_bytes": size, "measurements_per_day": per_day,
            "growth_bytes_per_day": growth, "line": line}


def _window_days(s: Session, now: datetime) -> float:
    """The days growth is averaged over: GROWTH_DAYS, or since the first measurement when the
    database is younger (a database an hour old did not grow for a week)."""
    first = s.scalar(select(func.min(m.Measurement.measured_at)))
    if first is None:
        return float(GROWTH_DAYS)
    if first.tzinfo is None:  # SQLite hands back naive UTC
        first = first.replace(tzinfo=now.tzinfo)
    span = max(now - first, MIN_GROWTH_WINDOW)
    return min(span, timedelta(days=GROWTH_DAYS)).total_seconds() / 86400


def _window_said(days: float) -> str:
    from blockwatch.durations import format_duration

    if days >= GROWTH_DAYS:
        return f"the last {GROWTH_DAYS} days"
    return f"the {format_duration(timedelta(days=days))} since the first measurement"
