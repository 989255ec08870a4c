"""The outbox and the alert cursor on both databases (SQLite and the real PostgreSQL server)."""

from __future__ import annotations

from datetime import timedelta

import respx
from sqlalchemy import select

import test_alerts_support as support
from blockwatch.alerts import outbox, queue_alerts
from blockwatch.alerts.deliver import DeliveryReport, _email_rows, _telegram_rows, deliver
from blockwatch.alerts.scan import CURSOR_KEY, GAP_TTL, advance
from blockwatch.storage.models import KeyValue, Outbox
from test_alerts_support import (
    T0,
    add_event,
    add_incident,
    add_target,
    add_vantage,
    cfg_for,
    config_text,
    free_port,
)

smtp = support.smtp  # the shared fixture, by name


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
    assert outbox.mark_sending(any_db, b, T0)  # crashed after handing the message over
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


def test_late_worker_skips_a_row_claimed_since(any_db) -> None:
    """A's lease on a batch ran out (slow deliveries); B claimed the rows again: A's renewal,
    point of no return and retry all leave B's claim alone, also after B gave a row back."""
    _enqueue(any_db, "k1")
    _enqueue(any_db, "k2")
    a1, a2 = outbox.claim(any_db, T0)
    later = T0 + outbox.LEASE + timedelta(minutes=1)
    b1, b2 = outbox.claim(any_db, later)
    assert (b1.id, b2.id) == (a1.id, a2.id) and b1.attempts == 2
    assert outbox.renew(any_db, a1, later) is None
    assert outbox.mark_sending(any_db, a1, later) is False
    outbox.mark_failed(any_db, a1, "timeout", later, permanent=True)
    outbox.release(any_db, [a1], "no secret", later)
    # B waits for something and gives k2 back (its attempt not counted): A's attempt count
    # matches again, its lease does not
    outbox.defer(any_db, b2, later + timedelta(minutes=1), "waiting")
    assert outbox.mark_sending(any_db, a2, later) is False
    with any_db.read() as s:
        got = {r.key: (r.status, r.attempts, r.next_attempt_at)
               for r in s.scalars(select(Outbox))}
    assert got == {"k1": ("pending", 2, b1.lease),
                   "k2": ("pending", 1, later + timedelta(minutes=1))}
    renewed = outbox.renew(any_db, b1, later + timedelta(minutes=2))  # B's own: still B's
    assert renewed is not None and renewed.lease == later + timedelta(minutes=2) + outbox.LEASE
    assert outbox.mark_sending(any_db, b1, later) is False  # the renewal made it a new lease
    assert outbox.mark_sending(any_db, renewed, later) is True


def _enqueue_test_mail(db, key: str) -> None:  # type: ignore[no-untyped-def]
    with db.write() as s:
        outbox.enqueue(s, key=key, channel="email", destination="desk@example.org", kind="test",
                       subject="s", payload={"text": "t", "html": "<p>t</p>",
                                             "message_id": f"<{key}@blockwatch.test>"}, now=T0)


async def test_batch_past_its_lease_sends_nothing_twice(any_db, smtp, write_config,
                                                        monkeypatch) -> None:
    """Process A claimed a batch and is slow; its lease runs out and process B delivers the
    batch. What is left of A's batch is not sent again; a row B claims while A is already in its
    SMTP conversation is dropped before the final "." (the server discards it)."""
    cfg = cfg_for(write_config, smtp)
    for key in ("m1", "m2"):
        _enqueue_test_mail(any_db, key)
    batch_a = outbox.claim(any_db, T0)
    later = T0 + outbox.LEASE + timedelta(minutes=1)
    rep_b = await deliver(cfg, any_db, now=later)
    assert sorted(rep_b.sent) == ["m1", "m2"] and len(smtp.handler.messages) == 2
    rep_a = DeliveryReport()
    await _email_rows(cfg, any_db, batch_a, rep_a, lambda: later, None)
    assert rep_a == DeliveryReport() and len(smtp.handler.messages) == 2

    _enqueue_test_mail(any_db, "m3")
    (row_a,) = outbox.claim(any_db, later)
    real = outbox.mark_sending
    claimed_b: list[outbox.Row] = []

    def b_claims_first(db, row, now):  # type: ignore[no-untyped-def]
        # A's SMTP server took longer than the lease: B claims the row just before A's point
        # of no return
        claimed_b.extend(outbox.claim(db, later + 2 * outbox.LEASE))
        return real(db, row, now)

    monkeypatch.setattr(outbox, "mark_sending", b_claims_first)
    rep_a = DeliveryReport()
    await _email_rows(cfg, any_db, [row_a], rep_a, lambda: later, None)
    assert [r.key for r in claimed_b] == ["m3"]
    assert rep_a == DeliveryReport() and len(smtp.handler.messages) == 2
    assert outbox.state(any_db, "m3") == ("pending", claimed_b[0].lease)


@respx.mock
async def test_telegram_batch_past_its_lease_posts_nothing_twice(any_db, write_config,
                                                                 monkeypatch) -> None:
    """The same for Telegram (no idempotency key: a second post is seen by every reader)."""
    from test_alerts_telegram import API, CHAT, TELEGRAM, TOKEN, ok

    monkeypatch.setenv("BW_TEST_TELEGRAM_TOKEN", TOKEN)
    cfg = write_config(config_text(free_port(), recipients="", webhooks=TELEGRAM))
    route = respx.post(API).mock(return_value=ok())
    for key in ("t1", "t2"):
        with any_db.write() as s:
            outbox.enqueue(s, key=key, channel="telegram", destination=CHAT, kind="alert",
                           subject="s", payload={"text": f"<b>{key}</b>"}, now=T0)
    batch_a = outbox.claim(any_db, T0)
    later = T0 + outbox.LEASE + timedelta(minutes=1)
    rep_b = await deliver(cfg, any_db, now=later)
    assert sorted(rep_b.sent) == ["t1", "t2"] and route.call_count == 2
    rep_a = DeliveryReport()
    await _telegram_rows(cfg, any_db, batch_a, rep_a, lambda: later, None)
    assert rep_a == DeliveryReport() and route.call_count == 2

    with any_db.write() as s:
        outbox.enqueue(s, key="t3", channel="telegram", destination=CHAT, kind="alert",
                       subject="s", payload={"text": "<b>t3</b>"}, now=later)
    (row_a,) = outbox.claim(any_db, later)
    real = outbox.mark_sending
    claimed_b: list[outbox.Row] = []

    def b_claims_first(db, row, now):  # type: ignore[no-untyped-def]
        claimed_b.extend(outbox.claim(db, later + 2 * outbox.LEASE))
        return real(db, row, now)

    monkeypatch.setattr(outbox, "mark_sending", b_claims_first)
    rep_a = DeliveryReport()
    await _telegram_rows(cfg, any_db, [row_a], rep_a, lambda: later, None)
    assert [r.key for r in claimed_b] == ["t3"]
    assert rep_a == DeliveryReport() and route.call_count == 2
    assert outbox.state(any_db, "t3") == ("pending", claimed_b[0].lease)
