"""The storage layer on SQLite and on the real PostgreSQL server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from blockwatch.storage import open_database, repo
from blockwatch.storage.db import current_revision, head_revision, upgrade
from blockwatch.storage.models import Event, Measurement, UrlState
from blockwatch.targets import Target

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
TABLES = {"targets", "vantages", "measurements", "verdicts", "events", "url_states", "feeds",
          "feed_entries", "incidents", "incident_reviews", "cases", "outbox", "daily_rollups", "job_runs",
          "kv"}


def test_schema_is_created_and_upgrade_is_idempotent(any_db_url: str) -> None:
    db = open_database(any_db_url)
    try:
        assert TABLES <= set(db.table_names())
        assert current_revision(db.engine) == head_revision()
        before, after = upgrade(db.engine)
        assert before == after == head_revision()
    finally:
        db.close()


def test_sqlite_runs_in_wal_mode_with_busy_timeout(db) -> None:  # type: ignore[no-untyped-def]
    with db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() >= 5000
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_times_round_trip_as_utc(any_db) -> None:  # type: ignore[no-untyped-def]
    almaty = datetime(2026, 11, 1, 17, 0, tzinfo=UTC).astimezone(
        __import__("zoneinfo").ZoneInfo("Asia/Almaty"))
    with any_db.write() as s:
        vid = repo.ensure_vantage(s, "vps", "local")
        repo.add_measurement(s, uid="u1", target_id=None, vantage_id=vid, url="https://a.kz/",
                             role="vantage", measured_at=almaty, evidence={"x": 1})
    with any_db.read() as s:
        m = s.scalar(select(Measurement).where(Measurement.uid == "u1"))
        assert m is not None
        assert m.measured_at == datetime(2026, 11, 1, 17, 0, tzinfo=UTC)
        assert m.measured_at.tzinfo is not None
        assert m.evidence == {"x": 1}
        assert m.evidence_sha256 == repo.evidence_hash({"x": 1})


def test_naive_datetimes_are_refused(db) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(Exception, match="naive datetime"), db.write() as s:
        vid = repo.ensure_vantage(s, "vps", "local")
        repo.add_measurement(s, uid="u", target_id=None, vantage_id=vid, url="u", role="vantage",
                             measured_at=datetime(2026, 1, 1), evidence={})


def test_duplicate_measurement_uid_is_rejected_and_rolls_back(any_db) -> None:  # type: ignore[no-untyped-def]
    with any_db.write() as s:
        vid = repo.ensure_vantage(s, "vps", "local")
        repo.add_measurement(s, uid="same", target_id=None, vantage_id=vid, url="u", role="vantage",
                             measured_at=T0, evidence={})
    with pytest.raises(Exception), any_db.write() as s:  # noqa: B017 (driver-specific class)
        repo.add_measurement(s, uid="other", target_id=None, vantage_id=vid, url="u",
                             role="vantage", measured_at=T0, evidence={})
        repo.add_measurement(s, uid="same", target_id=None, vantage_id=vid, url="u",
                             role="vantage", measured_at=T0, evidence={})
    with any_db.read() as s:
        # nothing of the failed transaction was kept, nothing stored before was lost
        assert [m.uid for m in s.scalars(select(Measurement))] == ["same"]


def _round(s, tid, vid, url, verdict, at, confirm_after=2):  # type: ignore[no-untyped-def]
    m = repo.add_measurement(s, uid=f"{url}-{at.isoformat()}", target_id=tid, vantage_id=vid,
                             url=url, role="vantage", measured_at=at, evidence={"v": verdict})
    return repo.record_verdict(s, measurement=m, control_id=None, verdict=verdict,
                               confirmed=False, reason=f"because {verdict}",
                               confirm_after=confirm_after)


def test_events_need_confirmation_and_survive_reopening(any_db_url: str) -> None:
    db = open_database(any_db_url)
    url = "https://ratel.kz/"
    with db.write() as s:
        tid = repo.sync_targets(s, [Target("Ratel.kz", (url,), ("Ратель",), "KZ", "NEWS")])["Ratel.kz"]
        vid = repo.ensure_vantage(s, "vps", "local", "KZ")
        seq = ["ok", "ok", "tls", "inconclusive", "tls", "tls"]
        news = [_round(s, tid, vid, url, v, T0 + timedelta(minutes=15 * i))[1]
                for i, v in enumerate(seq)]
    assert [(e.previous, e.state) if e else None for e in news] == [
        None, (None, "ok"), None, None, ("ok", "tls"), None]
    db.close()
    db = open_database(any_db_url)  # a restart: the state machine continues from the database
    with db.write() as s:
        _, e1 = _round(s, tid, vid, url, "ok", T0 + timedelta(minutes=90))
        _, e2 = _round(s, tid, vid, url, "ok", T0 + timedelta(minutes=105))
    assert e1 is None and e2 is not None and (e2.previous, e2.state) == ("tls", "ok")
    with db.read() as s:
        events = s.scalars(select(Event).order_by(Event.id)).all()
        assert [(e.state, e.started_at, e.ended_at) for e in events] == [
            ("ok", T0, T0 + timedelta(minutes=30)),
            # the block began when first seen (round 3), not when confirmed
            ("tls", T0 + timedelta(minutes=30), T0 + timedelta(minutes=90)),
            ("ok", T0 + timedelta(minutes=90), None),
        ]
        st = s.get(UrlState, (url, vid))
        assert st is not None and st.state == "ok" and st.event_id == events[-1].id
        rows = repo.latest_verdicts(s)
        assert [(r.target, r.vantage, r.verdict, r.state) for r in rows] == [
            ("Ratel.kz", "vps", "ok", "ok")]
        # anomalies and state changes are kept through retention
        kept = {m.evidence["v"] for m in s.scalars(select(Measurement).where(Measurement.keep))}
        assert "tls" in kept and "inconclusive" in kept
    db.close()


def test_targets_sync_marks_removed_targets_inactive(any_db) -> None:  # type: ignore[no-untyped-def]
    a = Target("A", ("https://a.kz/",))
    b = Target("B", ("https://b.kz/",))
    with any_db.write() as s:
        ids = repo.sync_targets(s, [a, b])
    with any_db.write() as s:
        ids2 = repo.sync_targets(s, [b])
    assert ids2["B"] == ids["B"]
    with any_db.read() as s:
        from blockwatch.storage.models import Target as T

        assert {t.name: t.active for t in s.scalars(select(T))} == {"A": False, "B": True}


def test_sqlite_writers_wait_for_each_other(sqlite_url: str) -> None:
    """Two processes' worth of writers: BEGIN IMMEDIATE + busy timeout, no 'database is locked'."""
    import threading

    db1, db2 = open_database(sqlite_url), open_database(sqlite_url)
    errors: list[BaseException] = []

    def writer(db, prefix: str) -> None:  # type: ignore[no-untyped-def]
        try:
            for i in range(50):
                with db.write() as s:
                    vid = repo.ensure_vantage(s, "vps", "local")
                    repo.add_measurement(s, uid=f"{prefix}{i}", target_id=None, vantage_id=vid,
                                         url="u", role="vantage", measured_at=T0, evidence={})
        except BaseException as exc:  # pragma: no cover - the failure we look for
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(d, p)) for d, p in ((db1, "a"), (db2, "b"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with db1.read() as s:
        assert len(s.scalars(select(Measurement)).all()) == 100
    db1.close()
    db2.close()


def test_upgrade_from_an_older_revision_keeps_data(any_db_url: str) -> None:
    from alembic import command

    from blockwatch.storage.db import _alembic_config, make_engine

    engine = make_engine(any_db_url)
    cfg = _alembic_config(engine)
    command.upgrade(cfg, "0001")
    assert current_revision(engine) == "0001"
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO vantages (name, kind, country, asn, created_at) "
                          "VALUES ('vps', 'local', '', '', :t)"), {"t": T0.replace(tzinfo=None)})
    engine.dispose()
    db = open_database(any_db_url)  # any command brings the schema up to date by itself
    try:
        assert current_revision(db.engine) == head_revision() != "0001"
        with db.read() as s:
            assert s.execute(text("SELECT name FROM vantages")).scalars().all() == ["vps"]
        from sqlalchemy import inspect

        assert "ix_daily_rollups_day" in {i["name"] for i in inspect(db.engine).get_indexes("daily_rollups")}
    finally:
        db.close()
