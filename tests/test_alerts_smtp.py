"""Alerts end to end against a real SMTP server (aiosmtpd in this process, on 127.0.0.1)."""

from __future__ import annotations

import ssl
from datetime import timedelta

import pytest
from sqlalchemy import select

import test_alerts_support as support
from blockwatch.alerts import deliver_outbox, outbox, queue_alerts
from blockwatch.alerts.deliver import deliver
from blockwatch.config import SecretError
from blockwatch.storage import Database, open_database
from blockwatch.storage.models import Outbox
from test_alerts_support import (
    HOSTILE_TITLE,
    T0,
    add_event,
    add_incident,
    add_target,
    add_vantage,
    cfg_for,
    parts,
)

# the shared fixtures, by name (pytest finds fixtures in the test module)
smtp = support.smtp
smtp_starttls = support.smtp_starttls

URL = "https://ratel.kz/"


def rows(db: Database) -> list[Outbox]:
    with db.read() as s:
        return list(s.scalars(select(Outbox).order_by(Outbox.id)))


def blocked_scenario(db: Database) -> tuple[int, int, int]:
    t = add_target(db, "Ratel.kz", URL)
    v = add_vantage(db, "almaty-1", last_seen_at=T0)
    e = add_event(db, t, v, URL, "dns", "ok", T0,
                  reason='the ISP resolver answered 10.0.0.1 "><img src=x onerror=alert(1)>',
                  confirmed=True)
    return t, v, e


async def test_alert_email_structure_both_parts_and_hostile_text(db, smtp, write_config) -> None:
    cfg = cfg_for(write_config, smtp)
    _, _, e = blocked_scenario(db)
    add_incident(db, title=HOSTILE_TITLE, link="javascript:alert(1)", outlets=["Ratel.kz"],
                 at=T0, event_id=e)
    n = await queue_alerts(cfg, db, now=T0 + timedelta(minutes=6))
    assert n == 2  # desk (all) and ru (Ratel.kz only): one grouped message each
    rep = await deliver_outbox(cfg, db, now=T0 + timedelta(minutes=6))
    assert len(rep.sent) == 2 and not rep.retry
    by_to = {str(m["To"]): m for m in smtp.handler.messages}
    assert set(by_to) == {"desk@example.org", "ru@example.org"}

    en = by_to["desk@example.org"]
    assert en["From"] == "blockwatch@example.org"
    assert en["Auto-Submitted"] == "auto-generated"
    assert en["Message-ID"].startswith("<") and en["Message-ID"].endswith("@example.org>")
    subject = str(en["Subject"])
    assert subject.startswith("blockwatch: 2 changes: Ratel.kz blocked")
    assert "\n" not in subject and all(ord(c) < 0x2000 for c in subject)  # no emoji
    text, html = parts(en)
    assert "Ratel.kz: blocked (DNS tampering)" in text
    assert "Vantage: almaty-1 (KZ)" in text
    assert "08:00" in text  # T0 in Asia/Almaty (UTC+5)
    assert "&gt;" not in text and "&lt;" not in text  # plain text is not HTML-escaped
    # hostile feed and site text: escaped in HTML, the javascript: link is not a link anywhere
    assert "<script>" not in html and "<img" not in html and "onerror=alert(1)>" not in html
    assert "&lt;script&gt;" in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "javascript:" not in html and "javascript:" not in text
    assert "Ratel blocked <script>" in text  # plain text shows it as text

    ru = by_to["ru@example.org"]
    assert str(ru["Subject"]).startswith("blockwatch: изменений 2: Ratel.kz заблокирован")
    text_ru, _ = parts(ru)
    assert "подмена DNS" in text_ru and "Точка наблюдения: almaty-1" in text_ru
    assert ru["Content-Language"] == "ru"


async def test_grouping_window_and_per_recipient_filters(db, smtp, write_config) -> None:
    cfg = cfg_for(write_config, smtp)
    ratel = add_target(db, "Ratel.kz", URL)
    vlast = add_target(db, "Vlast.kz", "https://vlast.kz/")
    v = add_vantage(db, "almaty-1", last_seen_at=T0)
    add_event(db, ratel, v, URL, "tls", "ok", T0)
    add_event(db, vlast, v, "https://vlast.kz/", "ok", "dns", T0 + timedelta(minutes=2))
    # within the window: held so that what happens together goes out together
    assert await queue_alerts(cfg, db, now=T0 + timedelta(minutes=3)) == 0
    assert rows(db) == []
    assert await queue_alerts(cfg, db, now=T0 + timedelta(minutes=5, seconds=1)) == 2
    await deliver_outbox(cfg, db, now=T0 + timedelta(minutes=6))
    by_to = {str(m["To"]): m for m in smtp.handler.messages}
    text, _ = parts(by_to["desk@example.org"])
    assert "Ratel.kz: blocked (TLS interference)" in text and "Vlast.kz: reachable again" in text
    ru_text, _ = parts(by_to["ru@example.org"])
    assert "Ratel.kz" in ru_text and "Vlast.kz" not in ru_text  # targets filter
    # a later event is a new message; nothing already sent is queued again
    add_event(db, vlast, v, "https://vlast.kz/", "dns", "ok", T0 + timedelta(hours=1))
    assert await queue_alerts(cfg, db, now=T0 + timedelta(hours=1, minutes=6)) == 1
    await deliver_outbox(cfg, db, now=T0 + timedelta(hours=1, minutes=6))
    assert len(smtp.handler.messages) == 3
    assert str(smtp.handler.messages[-1]["Subject"]) == (
        "blockwatch: Vlast.kz blocked (DNS tampering), almaty-1")


async def test_first_observation_ok_is_not_alerted(db, smtp, write_config) -> None:
    cfg = cfg_for(write_config, smtp)
    t = add_target(db, "Ratel.kz", URL)
    v = add_vantage(db, "almaty-1", last_seen_at=T0)
    add_event(db, t, v, URL, "ok", None, T0)
    assert await queue_alerts(cfg, db, now=T0 + timedelta(minutes=10)) == 0
    add_event(db, t, v, URL, "dns", "ok", T0 + timedelta(minutes=30))
    assert await queue_alerts(cfg, db, now=T0 + timedelta(minutes=40)) == 2
    assert all("e2" in r.key and "e1" not in r.key for r in rows(db))


async def test_retry_after_the_server_refused(db, smtp, write_config) -> None:
    cfg = cfg_for(write_config, smtp, recipients='[[alerts.recipient]]\nemail = "desk@example.org"\n')
    blocked_scenario(db)
    await queue_alerts(cfg, db, now=T0 + timedelta(minutes=6))
    smtp.handler.replies = ["451 4.3.0 try again later"]
    now = T0 + timedelta(minutes=6)
    rep = await deliver(cfg, db, now=now)
    assert rep.retry and not rep.sent and smtp.handler.messages == []
    (row,) = rows(db)
    assert row.status == "pending" and row.attempts == 1 and "451" in (row.last_error or "")
    assert row.next_attempt_at == now + timedelta(seconds=30)
    rep = await deliver(cfg, db, now=now + timedelta(seconds=10))  # not due yet
    assert not rep.sent and not rep.retry
    rep = await deliver(cfg, db, now=now + timedelta(seconds=31))
    assert len(rep.sent) == 1 and len(smtp.handler.messages) == 1
    (row,) = rows(db)
    assert row.status == "sent" and row.attempts == 2 and row.last_error is None


async def test_permanent_refusal_is_not_retried(db, smtp, write_config) -> None:
    cfg = cfg_for(write_config, smtp, recipients='[[alerts.recipient]]\nemail = "desk@example.org"\n')
    blocked_scenario(db)
    await queue_alerts(cfg, db, now=T0 + timedelta(minutes=6))
    smtp.handler.replies = ["550 5.7.1 rejected"]
    rep = await deliver(cfg, db, now=T0 + timedelta(minutes=6))
    assert rep.failed and rows(db)[0].status == "failed"


async def test_no_duplicate_after_restart(sqlite_url, smtp, write_config) -> None:
    cfg = cfg_for(write_config, smtp)
    db = open_database(sqlite_url)
    blocked_scenario(db)
    now = T0 + timedelta(minutes=6)
    await queue_alerts(cfg, db, now=now)
    await deliver_outbox(cfg, db, now=now)
    assert len(smtp.handler.messages) == 2
    db.close()
    # a restart: a new process, the same database file, every job run again
    db2 = open_database(sqlite_url)
    try:
        assert await queue_alerts(cfg, db2, now=now + timedelta(minutes=1)) == 0
        rep = await deliver_outbox(cfg, db2, now=now + timedelta(hours=3))
        assert rep.sent == []
        assert len(smtp.handler.messages) == 2
    finally:
        db2.close()


async def test_crash_before_the_final_dot_is_retried_and_the_server_got_nothing(
        db, smtp, write_config, monkeypatch) -> None:
    cfg = cfg_for(write_config, smtp, recipients='[[alerts.recipient]]\nemail = "desk@example.org"\n')
    blocked_scenario(db)
    now = T0 + timedelta(minutes=6)
    await queue_alerts(cfg, db, now=now)

    def crash(*a, **k) -> None:
        raise KeyboardInterrupt  # the process is stopped right before the point of no return

    with monkeypatch.context() as m:
        m.setattr(outbox, "mark_sending", crash)
        with pytest.raises(KeyboardInterrupt):
            await deliver(cfg, db, now=now)
    assert smtp.handler.messages == []  # no final ".": the server discarded the message
    (row,) = rows(db)
    assert row.status == "pending"  # still claimed under its lease...
    rep = await deliver(cfg, db, now=now + outbox.LEASE + timedelta(seconds=1))
    assert len(rep.sent) == 1 and len(smtp.handler.messages) == 1  # ...then retried


async def test_crash_after_acceptance_is_not_resent(sqlite_url, smtp, write_config,
                                                    monkeypatch) -> None:
    cfg = cfg_for(write_config, smtp, recipients='[[alerts.recipient]]\nemail = "desk@example.org"\n')
    db = open_database(sqlite_url)
    blocked_scenario(db)
    now = T0 + timedelta(minutes=6)
    await queue_alerts(cfg, db, now=now)

    def crash(*a, **k) -> None:
        raise KeyboardInterrupt  # the remaining window: accepted, not yet recorded

    with monkeypatch.context() as m:
        m.setattr(outbox, "mark_sent", crash)
        with pytest.raises(KeyboardInterrupt):
            await deliver(cfg, db, now=now)
    db.close()
    assert len(smtp.handler.messages) == 1
    db2 = open_database(sqlite_url)
    try:
        (row,) = rows(db2)
        assert row.status == "sending"
        await deliver(cfg, db2, now=now + timedelta(minutes=1))  # lease not over: left alone
        rep = await deliver(cfg, db2, now=now + outbox.LEASE + timedelta(seconds=1))
        assert rep.sent == []
        (row,) = rows(db2)
        assert row.status == "uncertain" and "may or may not" in (row.last_error or "")
        assert len(smtp.handler.messages) == 1  # at most once
    finally:
        db2.close()


async def test_starttls_and_login_with_credentials_from_the_environment(
        db, smtp_starttls, write_config, monkeypatch) -> None:
    monkeypatch.setenv("BW_TEST_SMTP_USER", "bw-user")
    monkeypatch.setenv("BW_TEST_SMTP_PASSWORD", "s3cret")
    cfg = cfg_for(write_config, smtp_starttls, security="starttls",
                  extra='smtp_username_env = "BW_TEST_SMTP_USER"\n'
                        'smtp_password_env = "BW_TEST_SMTP_PASSWORD"',
                  recipients='[[alerts.recipient]]\nemail = "desk@example.org"\n')
    blocked_scenario(db)
    now = T0 + timedelta(minutes=6)
    await queue_alerts(cfg, db, now=now)
    ctx = ssl.create_default_context(cafile=str(smtp_starttls.ca_pem))
    rep = await deliver_outbox(cfg, db, now=now, ssl_context=ctx)
    assert len(rep.sent) == 1 and len(smtp_starttls.handler.messages) == 1
    # a wrong password is configuration the operator fixes: kept for retry, not dropped
    monkeypatch.setenv("BW_TEST_SMTP_PASSWORD", "wrong")
    add_event(db, 1, 1, URL, "ok", "dns", now)
    await queue_alerts(cfg, db, now=now + timedelta(minutes=6))
    rep = await deliver(cfg, db, now=now + timedelta(minutes=6), ssl_context=ctx)
    assert rep.retry and "login refused" in rep.retry[0][1]
    # and without a trusted certificate nothing is sent in the clear
    rep = await deliver(cfg, db, now=now + timedelta(hours=1))
    assert rep.retry and "CERTIFICATE_VERIFY_FAILED" in rep.retry[0][1]


async def test_missing_secret_names_the_variable_and_keeps_the_row(
        db, smtp, write_config, monkeypatch) -> None:
    monkeypatch.delenv("BW_TEST_NOT_SET", raising=False)
    cfg = cfg_for(write_config, smtp, extra='smtp_password_env = "BW_TEST_NOT_SET"',
                  recipients='[[alerts.recipient]]\nemail = "desk@example.org"\n')
    blocked_scenario(db)
    now = T0 + timedelta(minutes=6)
    await queue_alerts(cfg, db, now=now)
    with pytest.raises(SecretError, match="BW_TEST_NOT_SET"):
        await deliver_outbox(cfg, db, now=now)
    (row,) = rows(db)
    assert row.status == "pending" and row.attempts == 0 and "BW_TEST_NOT_SET" in row.last_error
    assert smtp.handler.messages == []


async def test_unreachable_server_is_retried_with_backoff(db, write_config) -> None:
    from test_alerts_support import config_text, free_port

    cfg = write_config(config_text(free_port(),
                                   recipients='[[alerts.recipient]]\nemail = "desk@example.org"\n'))
    blocked_scenario(db)
    now = T0 + timedelta(minutes=6)
    await queue_alerts(cfg, db, now=now)
    for i in range(3):
        rep = await deliver(cfg, db, now=now)
        assert rep.retry and "cannot reach" in rep.retry[0][1]
        (row,) = rows(db)
        assert row.next_attempt_at == now + timedelta(seconds=30 * 2**i)
        now = row.next_attempt_at
