"""The outbox and the alert cursor on both databases (SQLite and the real PostgreSQL server)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from blockwatch.alerts import outbox, queue_alerts
from blockwatch.alerts.scan import CURSOR_KEY, GAP_TTL, advance
from blockwatch.storage.models import KeyValue, Outbox
from test_alerts_support import T0, add_event, add_incident, add_target, add_vantage, config_text


def _enqueue(db, key: str, now=T0) -> bool:  # type: ignore[no-untyped-def]
    with db.write() as s:
        return outbox.enqueue(s, key=key, channel="email", destination="desk@example.org",
                              kind="alert", subject="s", payload={"text": "t"}, now=now)


def test_enqueue_is_idempotent(any_db) -> None:
    assert _enqueue(any_db, "alert:email:desk@example.org:e1") is True
    assert _enqueue(any_db, "alert:email:desk@example.org:e1") is False
    with any_db.read() as s:
        assert len(s.scalars(select(Outbox)).all()) == 1


def test_claim_lease_backoff_and_give_up(any_db) -> None:
    _enqueue(any_db, "k1")
    (row,) = outbox.claim(any_db, T0)
    assert row.attempts == 1
    assert outbox.claim(any_db, T0) == []  # leased: another worker does not take it
    assert outbox.mark_failed(any_db, row, "451", T0, permanent=False) == "pending"
    assert outbox.claim(any_db, T0 + timedelta(seconds=29)) == []
    (row,) = outbox.claim(any_db, T0 + timedelta(seconds=30))
    assert row.attempts == 2
    assert [outbox.backoff(n).total_seconds() for n in (1, 2, 3, 8, 20)] == [30, 60, 120, 3600, 3600]
    # still failing two days after it was written: given up, and said so
    late = T0 + outbox.MAX_AGE
    assert outbox.mark_failed(any_db, row, "451", late, permanent=False) == "failed"
    with any_db.read() as s:
        r = s.scalars(select(Outbox)).one()
    assert r.status == "failed" and r.last_error == "451"


def test_crashed_worker_lease_runs_out(any_db) -> None:
    _enqueue(any_db, "k1")
    _enqueue(any_db, "k2")
    _, b = outbox.claim(any_db, T0)
    outbox.mark_sending(any_db, b.id, T0)  # crashed after handing the message over
    # nothing happened to `a` past the point of no return: retried after the lease
    assert outbox.expire_sending(any_db, T0 + timedelta(minutes=1)) == []
    later = T0 + outbox.LEASE + timedelta(seconds=1)
    assert outbox.expire_sending(any_db, later) == ["k2"]
    assert [r.key for r in outbox.claim(any_db, later)] == ["k1"]
    with any_db.read() as s:
        assert s.scalars(select(Outbox.status).where(Outbox.key == "k2")).one() == "uncertain"
        assert outbox.backlog(s, later) == {"pending": 1, "overdue": 0, "failed": 0,
                                            "uncertain": 1}


def test_claim_only_given_ids(any_db) -> None:
    _enqueue(any_db, "k1")
    _enqueue(any_db, "k2")
    with any_db.read() as s:
        ids = dict(s.execute(select(Outbox.key, Outbox.id)).all())
    assert [r.key for r in outbox.claim(any_db, T0, ids=[ids["k2"]])] == ["k2"]


async def test_cursor_survives_restart_and_moves_with_the_rows(any_db, write_config) -> None:
    cfg = write_config(config_text(2525))
    t = add_target(any_db, "Ratel.kz", "https://ratel.kz/")
    v = add_vantage(any_db, "almaty-1", last_seen_at=T0)
    e = add_event(any_db, t, v, "https://ratel.kz/", "dns", "ok", T0)
    add_incident(any_db, title="Ratel.kz blocked by court order", link="https://example.org/1",
                 outlets=["Ratel.kz"], at=T0, event_id=e)
    now = T0 + timedelta(minutes=6)
    assert await queue_alerts(cfg, any_db, now=now) == 2
    assert await queue_alerts(cfg, any_db, now=now) == 0  # the cursor moved with the rows
    with any_db.read() as s:
        cur = s.get(KeyValue, CURSOR_KEY)
        assert cur is not None and cur.value["event"] == e and cur.value["case"] == 1
        keys = sorted(s.scalars(select(Outbox.key)))
    assert keys == ["alert:email:desk@example.org:c1,e1", "alert:email:ru@example.org:c1,e1"]


async def test_first_run_skips_history(any_db, write_config) -> None:
    cfg = write_config(config_text(2525))
    t = add_target(any_db, "Ratel.kz", "https://ratel.kz/")
    v = add_vantage(any_db, "almaty-1", last_seen_at=T0)
    add_event(any_db, t, v, "https://ratel.kz/", "dns", "ok", T0 - timedelta(days=3))
    add_event(any_db, t, v, "https://ratel.kz/", "ok", "dns", T0)
    assert await queue_alerts(cfg, any_db, now=T0 + timedelta(minutes=6)) == 2
    with any_db.read() as s:
        assert all(k.endswith(":e2") for k in s.scalars(select(Outbox.key)))


def test_advance_remembers_gaps_for_late_commits() -> None:
    # ids 11 and 13 were taken by transactions not committed yet when 12 and 14 were read
    cur, gaps = advance(10, {}, {12, 14}, T0)
    assert cur == 14 and set(gaps) == {11, 13}
    cur, gaps = advance(cur, gaps, {13}, T0 + timedelta(minutes=1))  # 13 showed up
    assert cur == 14 and set(gaps) == {11}
    cur, gaps = advance(cur, gaps, set(), T0 + GAP_TTL)  # 11 was a rollback after all
    assert cur == 14 and gaps == {}


async def test_vantage_silent_then_back_is_alerted_once_each(any_db, write_config) -> None:
    cfg = write_config(config_text(2525))
    add_vantage(any_db, "vps", kind="local", country="", last_seen_at=T0 - timedelta(hours=3))
    v = add_vantage(any_db, "almaty-1", last_seen_at=T0 - timedelta(hours=2))
    # both recipients: a silent vantage concerns no outlet, so ru's targets filter lets it pass
    assert await queue_alerts(cfg, any_db, now=T0) == 2
    assert await queue_alerts(cfg, any_db, now=T0 + timedelta(minutes=10)) == 0  # once
    with any_db.read() as s:
        row = s.scalars(select(Outbox).where(Outbox.destination == "desk@example.org")).one()
    assert row.subject == "blockwatch: vantage silent: almaty-1"
    assert "Last heard from: 2026-11-27 06:00" in row.payload["text"]  # the local "vps" is not
    t = add_target(any_db, "Ratel.kz", "https://ratel.kz/")
    add_event(any_db, t, v, "https://ratel.kz/", "ok", None, T0 + timedelta(hours=1))
    assert await queue_alerts(cfg, any_db, now=T0 + timedelta(hours=1, minutes=6)) == 2
    with any_db.read() as s:
        subjects = [r.subject for r in s.scalars(select(Outbox).order_by(Outbox.id))]
    assert "blockwatch: vantage reporting again: almaty-1" in subjects[-2:]
