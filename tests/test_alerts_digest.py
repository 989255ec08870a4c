"""The daily digest (content, schedule, files) and the two commands, against aiosmtpd/respx."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import respx
from sqlalchemy import delete, select

import test_alerts_support as support
from blockwatch.alerts import compose as C
from blockwatch.alerts.commands import cmd_alerts_test, cmd_digest, default_out, parse_since
from blockwatch.alerts.digest import collect, queue_digest
from blockwatch.storage import repo
from blockwatch.storage.models import Feed, KeyValue, Outbox
from blockwatch.targets import Target as TargetSpec
from test_alerts_support import (
    HOSTILE_TITLE,
    T0,
    add_event,
    add_incident,
    add_target,
    add_vantage,
    cfg_for,
    config_text,
    free_port,
    parts,
    still_measured,
)

# the shared fixtures, by name (pytest finds fixtures in the test module)
smtp = support.smtp

RATEL, VLAST = "https://ratel.kz/", "https://vlast.kz/"


def busy_day(db, now: datetime) -> None:  # type: ignore[no-untyped-def]
    """Ratel blocked since yesterday (still), Vlast blocked and unblocked today, an incident, a
    failing feed, a silent agent."""
    ratel = add_target(db, "Ratel.kz", RATEL)
    vlast = add_target(db, "Vlast.kz", VLAST)
    vps = add_vantage(db, "vps", kind="local", country="", last_seen_at=now)
    agent = add_vantage(db, "almaty-1", last_seen_at=now - timedelta(hours=5))
    e = add_event(db, ratel, vps, RATEL, "http_blockpage", "ok", now - timedelta(hours=30),
                  reason="the response is a known blockpage (kz-mic)", confirmed=True)
    still_measured(db, vps, RATEL, now - timedelta(minutes=10))  # and still, this round
    add_event(db, vlast, vps, VLAST, "tls", "ok", now - timedelta(hours=6),
              reason="connection reset after the TLS ClientHello")
    add_event(db, vlast, vps, VLAST, "ok", "tls", now - timedelta(hours=2))
    add_incident(db, title=HOSTILE_TITLE, link="https://adilet.example/case?a=1&b=2",
                 outlets=["Ratel.kz"], at=now - timedelta(hours=3), event_id=e)
    with db.write() as s:
        s.add(Feed(name="Broken feed", url="https://example.org/x", consecutive_failures=4,
                   last_error="HTTP 503 from example.org", last_success_at=None))
    del agent


def test_collect_and_compose(db, write_config) -> None:
    cfg = write_config(config_text(2525))
    now = T0
    busy_day(db, now)
    with db.read() as s:
        d = collect(s, cfg, now - timedelta(hours=24), now)
    assert [b.target for b in d.blocked] == ["Ratel.kz"]
    (row,) = d.blocked[0].rows
    assert row.vantage == "vps" and row.state == "http_blockpage" and row.confirmed
    assert row.since == now - timedelta(hours=30, minutes=15)
    assert [(i.target, i.kind) for i in d.began] == [("Vlast.kz", "blocked")]
    assert [(i.target, i.kind) for i in d.ended] == [("Vlast.kz", "unblocked")]
    (inc,) = d.incidents
    assert inc.linked and inc.outlets == ("Ratel.kz",) and inc.source == "Adil Soz"
    assert [f.name for f in d.feeds] == ["Broken feed"]
    assert [v.name for v in d.silent] == ["almaty-1"]
    assert not d.quiet

    m = C.compose_digest(d, "en", "Asia/Almaty")
    assert m.subject == "blockwatch digest 2026-11-27: 1 outlet(s) blocked"
    assert "== Still blocked ==" in m.text and "* Ratel.kz\n" in m.text
    assert "  - blockpage, since 2026-11-26 01:45\n    Networks: vps\n" in m.text
    assert "the response is a known blockpage (kz-mic)" in m.text
    assert "* Vlast.kz\n  - reachable again (was: TLS interference), ended 2026-11-27 05:45" in m.text
    assert "HTTP 503 from example.org" in m.text and "almaty-1 (agent, KZ)" in m.text
    assert "<script>" not in m.html and "&lt;script&gt;" in m.html
    assert 'href="https://adilet.example/case?a=1&amp;b=2"' in m.html
    ru = C.compose_digest(d, "ru", "Asia/Almaty")
    assert ru.subject == "blockwatch, сводка за 27.11.2026: заблокировано изданий: 1"
    assert "Всё ещё заблокировано" in ru.text
    # a recipient who only follows Vlast.kz sees no Ratel block, but still the system's health
    view = C.filter_digest(d, C.Filter.of(targets=["Vlast.kz"]))
    assert view.blocked == () and view.incidents == () and view.feeds == d.feeds


async def test_queue_digest_schedule_and_idempotency(db, write_config) -> None:
    cfg = write_config(config_text(2525))  # digest_at 07:00 Asia/Almaty = 02:00 UTC
    busy_day(db, T0)
    day = datetime(2026, 11, 27, tzinfo=UTC)
    assert await queue_digest(cfg, db, day + timedelta(hours=1, minutes=59)) == 0  # not yet
    assert await queue_digest(cfg, db, day + timedelta(hours=2)) == 2
    assert await queue_digest(cfg, db, day + timedelta(hours=9)) == 0  # once a day
    with db.read() as s:
        keys = sorted(s.scalars(select(Outbox.key)))
    assert keys == ["digest:2026-11-27:email:desk@example.org",
                    "digest:2026-11-27:email:ru@example.org"]
    # the next day's covers the time since this one; started late, it still goes out
    assert await queue_digest(cfg, db, day + timedelta(days=1, hours=5)) == 2


def measure(db, cfg, now: datetime, verdicts: dict[str, str], *,  # type: ignore[no-untyped-def]
            at: tuple[timedelta, ...] = (timedelta(minutes=20), timedelta(minutes=5))) -> None:
    """Rounds stored through the real state machine: {vantage name: verdict} for Ratel.kz."""
    with db.write() as s:
        tid = repo.sync_targets(s, [TargetSpec(name="Ratel.kz", urls=(RATEL,), country="KZ")],
                                retire_others=False)["Ratel.kz"]
        for name, verdict in verdicts.items():
            kind = next(v.kind for v in cfg.settings.vantage if v.name == name)
            vid = repo.ensure_vantage(s, name, kind, "KZ" if kind == "agent" else "")
            for back in at:
                m = repo.add_measurement(s, uid=f"{name}{now - back}", target_id=tid,
                                         vantage_id=vid, url=RATEL, role="vantage",
                                         measured_at=now - back, evidence={})
                repo.record_verdict(s, measurement=m, control_id=None, verdict=verdict,
                                    confirmed=False, reason="", confirm_after=2)


FEED = '\n[feeds]\n[[feeds.source]]\nname = "Adil Soz"\nurl = "https://adilet.example/rss"\n'


async def test_quiet_day_all_clear_is_optional(db, write_config) -> None:
    day = datetime(2026, 11, 27, 2, tzinfo=UTC)
    quiet = write_config(config_text(2525) + FEED)
    # nothing measured, the feed never fetched: not an all-clear, so it is sent anyway
    assert await queue_digest(quiet, db, day) == 2
    with db.read() as s:
        texts = [o.payload["text"] for o in s.scalars(select(Outbox))]
    assert all("Not an all-clear" in t or "Это не «всё спокойно»" in t for t in texts)
    assert any("* Adil Soz: 0 failure(s) in a row, last success never" in t for t in texts)
    # a real all-clear: every vantage freshly measured every URL, the feed works
    nxt = day + timedelta(days=1)
    measure(db, quiet, nxt, {"vps": "ok", "almaty-1": "ok"})
    with db.write() as s:
        s.add(Feed(name="Adil Soz", url="https://adilet.example/rss", consecutive_failures=0,
                   last_success_at=nxt - timedelta(minutes=10)))
    with db.read() as s:
        d = collect(s, quiet, nxt - timedelta(hours=24), nxt)
    assert d.all_clear and d.complete and d.unmeasured == ()
    assert await queue_digest(quiet, db, nxt) == 0  # quiet and complete: skipped
    loud = write_config(config_text(2525, extra="all_clear = true") + FEED, name="b.toml")
    assert await queue_digest(loud, db, nxt + timedelta(days=1, minutes=-30)) == 0  # stale by then
    with db.read() as s:
        subjects = set(s.scalars(select(Outbox.subject)))
    assert "blockwatch digest 2026-11-28: all clear" not in subjects
    with db.write() as s:
        s.execute(delete(KeyValue))
    assert await queue_digest(loud, db, nxt) == 2
    with db.read() as s:
        subjects = set(s.scalars(select(Outbox.subject)))
    assert "blockwatch digest 2026-11-28: all clear" in subjects


def test_digest_says_what_could_not_be_checked(any_db, write_config) -> None:
    """Nothing blocked is not all clear when a vantage could not look (every verdict
    inconclusive), another stopped (stale) and no feed is configured."""
    db = any_db
    cfg = write_config(config_text(2525))
    now = T0
    # the agent's last round 40 minutes ago: stale (two 15-minute rounds), not yet "silent"
    measure(db, cfg, now, {"almaty-1": "ok"}, at=(timedelta(minutes=55), timedelta(minutes=40)))
    measure(db, cfg, now, {"vps": "ok"}, at=(timedelta(hours=5), timedelta(hours=4, minutes=45)))
    measure(db, cfg, now, {"vps": "inconclusive"})
    with db.read() as s:
        d = collect(s, cfg, now - timedelta(hours=24), now)
    cov = {v.name: v for v in d.coverage}
    assert cov["vps"].display == "not_measured" and cov["vps"].unmeasured == 1
    assert cov["vps"].last_usable_at == now - timedelta(hours=4, minutes=45)
    assert cov["almaty-1"].display == "stale"
    assert d.quiet and not d.complete and not d.all_clear and d.feeds_configured == 0
    for lang, want in (
        ("en", ["nothing seen, but not everything was checked", "Not an all-clear",
                "No block seen where blockwatch could measure",
                "* vps (local): not measured since 2026-11-27 03:15: 1 of 1 URLs inconclusive",
                "* almaty-1 (agent, KZ): no measurement since 2026-11-27 07:20 (stale)",
                "No incident feed is configured"]),
        ("ru", ["проверено не всё", "Что не удалось проверить", "не измерено с 27.11.2026 03:15",
                "vps (наш зонд)",
                "Ни одна лента инцидентов не настроена"]),
        ("kk", ["бәрі тексерілмеді", "Не тексерілмеді", "27.11.2026 03:15, содан бері өлшенбеді",
                "vps (біздің зонд)",
                "Бірде-бір оқиға арнасы бапталмаған"]),
    ):
        m = C.compose_digest(d, lang, "Asia/Almaty")
        body = m.subject + "\n" + m.text
        for w in want:
            assert w in body, (lang, w)
        assert "All clear" not in body and "Всё спокойно" not in body and "Бәрі тыныш" not in body
        assert "Nothing is blocked at the moment" not in body
        if lang == "en":  # the HTML part says the same
            assert "Not an all-clear" in m.html and "No incident feed is configured" in m.html
            assert ("vps (local): not measured since 2026-11-27 03:15: 1 of 1 URLs "
                    "inconclusive") in m.html
            assert "almaty-1 (agent, KZ): no measurement since 2026-11-27 07:20 (stale)" in m.html
    # the same day with every vantage measuring and a working feed: all clear
    measure(db, cfg, now, {"vps": "ok", "almaty-1": "ok"},
            at=(timedelta(minutes=12), timedelta(minutes=2)))
    with db.read() as s:
        d2 = collect(s, cfg, now - timedelta(hours=24), now)
    assert d2.unmeasured == () and not d2.all_clear  # still no feed configured
    assert "No incident feed is configured" in C.compose_digest(d2, "en", "UTC").text


def test_parse_since() -> None:
    now = datetime(2026, 11, 27, 12, tzinfo=UTC)
    assert parse_since("48h", now, "UTC") == now - timedelta(hours=48)
    assert parse_since("2026-11-26T07:00", now, "Asia/Almaty") == datetime(2026, 11, 26, 2,
                                                                            tzinfo=UTC)
    assert parse_since("2026-11-26T07:00Z", now, "Asia/Almaty").hour == 7
    with pytest.raises(ValueError, match="48h"):
        parse_since("yesterday", now, "UTC")


def _args(**kw: object) -> argparse.Namespace:
    return argparse.Namespace(**{"send": False, "out": None, "since": None, **kw})


def test_cmd_digest_writes_files_per_language(db, write_config, tmp_path, capsys) -> None:
    cfg = write_config(config_text(2525))
    busy_day(db, datetime.now(UTC))
    out = tmp_path / "digests"
    assert cmd_digest(cfg, _args(out=str(out), since="48h")) == 0
    names = sorted(p.name for p in out.iterdir())
    date = names[0][:10]
    assert names == [f"{date}.html", f"{date}.ru.html", f"{date}.ru.txt", f"{date}.txt"]
    assert "Still blocked" in (out / f"{date}.txt").read_text()  # the first language in use
    assert "Всё ещё заблокировано" in (out / f"{date}.ru.html").read_text()
    assert str(out / f"{date}.html") in capsys.readouterr().out
    assert cmd_digest(cfg, _args(out=str(out), since="tomorrow")) == 2
    assert default_out(cfg) == tmp_path / "reports" / "digests"  # beside reports/site



def test_cmd_digest_send_without_recipients_does_nothing_first(db, write_config, tmp_path,
                                                               capsys) -> None:
    cfg = write_config(config_text(2525, recipients='[[alerts.recipient]]\nemail = "a@example.org"\n'
                                   'digest = false\n'))
    out = tmp_path / "nothing"
    assert cmd_digest(cfg, _args(out=str(out), send=True)) == 2
    assert "no [[alerts.recipient]] or [[alerts.telegram]] with digest = true" in \
        capsys.readouterr().err
    assert not out.exists()  # a usage error: no files written first


def test_cmd_digest_send(db, smtp, write_config, tmp_path) -> None:
    cfg = cfg_for(write_config, smtp)
    assert cmd_digest(cfg, _args(out=str(tmp_path / "d"), send=True)) == 0
    assert sorted(str(m["To"]) for m in smtp.handler.messages) == ["desk@example.org",
                                                                   "ru@example.org"]
    text, _ = parts(smtp.handler.messages[0])
    # an explicit --send sends quiet days; with nothing measured it says so, no "all clear"
    assert "Not an all-clear" in text or "Это не «всё спокойно»" in text
    assert "All clear" not in text and "Всё спокойно:" not in text
    smtp.handler.replies = ["451 busy", "451 busy"]
    assert cmd_digest(cfg, _args(out=str(tmp_path / "d"), send=True)) == 75
    with db.read() as s:
        assert len(s.scalars(select(Outbox).where(Outbox.status == "pending")).all()) == 2


@respx.mock
def test_cmd_alerts_test(db, smtp, write_config, monkeypatch, capsys) -> None:
    hook = respx.post("https://chat.example.org/hook").mock(return_value=httpx.Response(200))
    cfg = cfg_for(write_config, smtp,
                  webhooks='[[alerts.webhook]]\nurl = "https://chat.example.org/hook"\n')
    assert cmd_alerts_test(cfg, argparse.Namespace()) == 0
    assert len(smtp.handler.messages) == 2 and hook.call_count == 1
    assert {str(m["Subject"]) for m in smtp.handler.messages} == {
        "blockwatch: test message", "blockwatch: тестовое сообщение"}
    out = capsys.readouterr().out
    assert "email desk@example.org: delivered" in out and "webhook https://chat" in out
    # the server is down: queued for retry
    down = write_config(config_text(free_port()), name="down.toml")
    assert cmd_alerts_test(down, argparse.Namespace()) == 75
    # a missing secret: a configuration error naming it
    monkeypatch.delenv("BW_TEST_NOT_SET", raising=False)
    nosecret = write_config(config_text(smtp.port, extra='smtp_password_env = "BW_TEST_NOT_SET"'),
                            name="nosecret.toml")
    assert cmd_alerts_test(nosecret, argparse.Namespace()) == 2
    assert "BW_TEST_NOT_SET" in capsys.readouterr().err
    empty = write_config(config_text(2525, recipients=""), name="empty.toml")
    assert cmd_alerts_test(empty, argparse.Namespace()) == 2


def test_a_days_old_block_is_stale_not_blocked_now(db, write_config, tmp_path) -> None:
    """The only Kazakh agent went silent three days ago while seeing Ratel.kz blocked: the
    status page says stale, and so does the digest; it is not counted as blocked now."""
    import json

    from blockwatch.site.commands import build_site

    cfg = write_config(config_text(2525))
    at = T0 - timedelta(minutes=10)
    t = add_target(db, "Ratel.kz", RATEL)
    v = add_vantage(db, "almaty-1", last_seen_at=at)
    add_event(db, t, v, RATEL, "tls", "ok", at)
    later = T0 + timedelta(days=3)
    build_site(cfg, db, tmp_path / "site", now=later)
    st = json.loads((tmp_path / "site" / "status.json").read_text())["targets"][0]
    assert st["display"] == "stale"
    with db.read() as s:
        d = collect(s, cfg, later - timedelta(hours=24), later)
    assert d.blocked == () and d.agreed_blocked == ()
    assert [b.target for b in d.stale_blocked] == ["Ratel.kz"]
    assert not d.quiet and not d.all_clear
    m = C.compose_digest(d, "en", "Asia/Almaty")
    assert "outlet(s) blocked" not in m.subject
    assert "Last known blocked, no fresh measurement" in m.text
    assert "last measured 2026-11-27" in m.text
    assert "Last known blocked, no fresh measurement" in m.html
    ru = C.compose_digest(d, "ru", "Asia/Almaty")
    assert "свежих измерений нет" in ru.text
    # a recipient's filter keeps or drops it like a blocked outlet
    only_vlast = C.filter_digest(d, C.Filter.of(["Vlast.kz"], [], []))
    assert only_vlast.stale_blocked == ()


def test_a_block_measured_this_round_is_blocked_now(db, write_config) -> None:
    cfg = write_config(config_text(2525))
    at = T0 - timedelta(minutes=10)
    t = add_target(db, "Ratel.kz", RATEL)
    v = add_vantage(db, "almaty-1", last_seen_at=at)
    add_event(db, t, v, RATEL, "tls", "ok", at - timedelta(days=3))
    still_measured(db, v, RATEL, at)  # blocked for three days, and still this round
    with db.read() as s:
        d = collect(s, cfg, T0 - timedelta(hours=24), T0)
    assert [b.target for b in d.agreed_blocked] == ["Ratel.kz"] and d.stale_blocked == ()


def test_an_outlet_never_measured_is_not_all_clear(db, write_config) -> None:
    """Vlast.kz was added and nobody has measured it yet: every vantage that is to measure
    every outlet (the daemon's own, agents) has not measured one URL, so no all-clear."""
    cfg = write_config(config_text(2525) + FEED)
    nxt = datetime(2026, 11, 28, 2, tzinfo=UTC)
    measure(db, cfg, nxt, {"vps": "ok", "almaty-1": "ok"})
    with db.write() as s:
        repo.sync_targets(s, [TargetSpec(name="Vlast.kz", urls=(VLAST,), country="KZ")],
                          retire_others=False)
        s.add(Feed(name="Adil Soz", url="https://adilet.example/rss", consecutive_failures=0,
                   last_success_at=nxt - timedelta(minutes=10)))
    with db.read() as s:
        d = collect(s, cfg, nxt - timedelta(hours=24), nxt)
    cov = {v.name: v for v in d.coverage}
    assert (cov["vps"].display, cov["vps"].urls, cov["vps"].unmeasured) == ("partial", 2, 1)
    assert (cov["almaty-1"].display, cov["almaty-1"].unmeasured) == ("partial", 1)
    assert not d.complete and not d.all_clear
    m = C.compose_digest(d, "en", "Asia/Almaty")
    assert m.subject == "blockwatch digest 2026-11-28: nothing seen, but not everything was checked"
    assert "1 of 2 URLs not measured lately" in m.text
    # once both are measured it is an all-clear again; a retired outlet is not waited for
    with db.write() as s:
        repo.sync_targets(s, [TargetSpec(name="Ratel.kz", urls=(RATEL,), country="KZ")],
                          retire_others=True)
    with db.read() as s:
        assert collect(s, cfg, nxt - timedelta(hours=24), nxt).all_clear


def test_a_failing_feed_is_named_where_the_digest_says_to_look(db, write_config) -> None:
    """Every network measured, a feed failing: "not an all-clear (see What could not be
    checked)" must find the feed there, not an empty section."""
    cfg = write_config(config_text(2525) + FEED)
    now = T0
    measure(db, cfg, now, {"vps": "ok", "almaty-1": "ok"},
            at=(timedelta(minutes=12), timedelta(minutes=2)))
    with db.write() as s:
        s.add(Feed(name="Adil Soz", url="https://adilet.example/rss", consecutive_failures=3,
                   last_error="HTTP 503", last_success_at=now - timedelta(days=2)))
    with db.read() as s:
        d = collect(s, cfg, now - timedelta(hours=24), now)
    assert d.unmeasured == () and d.feeds and not d.complete
    for lang, coverage, want, feeds in (
            ("en", "What could not be checked", "Incident feeds that could not be read: 1",
             "Feeds that failed"),
            ("ru", "Что не удалось проверить",
             "Ленты инцидентов, которые не удалось прочитать: 1", "Ленты с ошибками"),
            ("kk", "Не тексерілмеді", "Оқылмаған оқиға арналары: 1",
             "Қатемен жұмыс істеген арналар")):
        m = C.compose_digest(d, lang, "UTC")
        section = m.text.split(f"== {coverage} ==")[1].split(f"== {feeds} ==")[0]
        assert want in section, (lang, section)
        assert want in m.html
