"""Telegram: alerts and the digest through the Bot API (respx with recorded-looking answers; no
network), the outbox's ordering of parts, escaping, secrets, and channels that never hold each
other back (a real SMTP port that stalls or refuses, a real aiosmtpd server)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import socket
import xml.etree.ElementTree as ET
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import respx
from sqlalchemy import select

import test_alerts_support as support
from blockwatch import logs
from blockwatch.alerts import compose as C
from blockwatch.alerts import deliver_outbox, outbox, queue_alerts, queue_digest
from blockwatch.alerts import telegram as tg
from blockwatch.alerts.commands import cmd_alerts_test
from blockwatch.alerts.deliver import deliver
from blockwatch.config import ConfigError, SecretError
from blockwatch.storage.models import Outbox
from test_alerts_support import (
    HOSTILE_TITLE,
    T0,
    add_event,
    add_incident,
    add_target,
    add_vantage,
    config_text,
    free_port,
)

smtp = support.smtp

TOKEN = "7012345678:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
CHAT = "-1001234567890"
API = f"https://api.telegram.org/bot{TOKEN}/sendMessage"
TELEGRAM = f"""
[[alerts.telegram]]
chat_id = "{CHAT}"
bot_token_env = "BW_TEST_TELEGRAM_TOKEN"
language = "ru"
"""
NOW = T0 + timedelta(minutes=6)
ALLOWED = {"b", "i", "u", "s", "a", "code", "pre", "blockquote"}


def ok(n: int = 1, text: str = "") -> httpx.Response:
    """A `sendMessage` answer as Telegram gives it."""
    return httpx.Response(200, json={"ok": True, "result": {
        "message_id": 100 + n, "sender_chat": {"id": int(CHAT), "title": "Press freedom desk",
                                               "type": "channel"},
        "chat": {"id": int(CHAT), "title": "Press freedom desk", "type": "channel"},
        "date": 1795749960, "text": text or "blockwatch"}})


def too_many(after: int = 5) -> httpx.Response:
    return httpx.Response(429, json={"ok": False, "error_code": 429,
                                     "description": f"Too Many Requests: retry after {after}",
                                     "parameters": {"retry_after": after}})


KICKED = httpx.Response(403, json={"ok": False, "error_code": 403,
                                   "description": "Forbidden: bot was kicked from the channel chat"})


@pytest.fixture
def cfg(write_config, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("BW_TEST_TELEGRAM_TOKEN", TOKEN)
    return write_config(config_text(free_port(), recipients="", webhooks=TELEGRAM))


def scenario(db, reason: str = "connection reset after the TLS ClientHello",  # type: ignore[no-untyped-def]
             name: str = "Ratel.kz") -> None:
    t = add_target(db, name, "https://ratel.kz/")
    v = add_vantage(db, "almaty-1", last_seen_at=T0)
    add_event(db, t, v, "https://ratel.kz/", "tls", "ok", T0, reason=reason)


def rows(db) -> list[Outbox]:  # type: ignore[no-untyped-def]
    with db.read() as s:
        return list(s.scalars(select(Outbox).order_by(Outbox.id)))


def sent_texts(route: respx.Route) -> list[str]:
    return [json.loads(c.request.content)["text"] for c in route.calls]


def well_formed(part: str) -> ET.Element:
    """A part parses on its own, uses only Telegram's tags and at most the four named entities
    Telegram knows."""
    assert tg.units(part) <= tg.LIMIT
    names = set(re.findall(r"&([a-zA-Z]+);", part))
    assert names <= {"lt", "gt", "amp", "quot"}, names
    root = ET.fromstring(f"<m>{part}</m>")
    assert {e.tag for e in root.iter()} - {"m"} <= ALLOWED
    return root


def plain(part: str) -> str:
    return "".join(well_formed(part).itertext())


@respx.mock
async def test_an_alert_is_posted_to_the_chat_in_its_language(db, cfg) -> None:
    route = respx.post(API).mock(return_value=ok())
    scenario(db)
    assert await queue_alerts(cfg, db, now=NOW) == 1
    rep = await deliver_outbox(cfg, db, now=NOW)
    assert len(rep.sent) == 1 and route.call_count == 1
    body = json.loads(route.calls.last.request.content)
    assert body["chat_id"] == CHAT and body["parse_mode"] == "HTML"
    assert body["disable_web_page_preview"] is True
    text = body["text"]
    assert text.startswith("<b>blockwatch: Ratel.kz заблокирован (вмешательство в TLS)")
    # a chat may be a public channel: the agent by its public label, never its configured name
    assert "Точка наблюдения: Казахстан, сеть неизвестна (агент)" in plain(text)
    assert "almaty-1" not in text
    (row,) = rows(db)
    assert row.status == "sent" and row.channel == "telegram" and row.destination == CHAT
    assert row.key == f"alert:telegram:{CHAT}:e1"
    # the outbox never holds the token: it is read from the environment when sending
    assert TOKEN not in row.key + row.destination + json.dumps(row.payload)


@respx.mock
async def test_429_is_retried_at_the_time_telegram_named(db, cfg) -> None:
    route = respx.post(API).mock(side_effect=[too_many(5), ok()])
    scenario(db)
    await queue_alerts(cfg, db, now=NOW)
    rep = await deliver(cfg, db, now=NOW)
    assert rep.retry and "429" in rep.retry[0][1]
    (row,) = rows(db)
    assert row.status == "pending" and row.next_attempt_at == NOW + timedelta(seconds=5)
    assert "retry after 5" in row.last_error
    rep = await deliver(cfg, db, now=NOW + timedelta(seconds=4))  # not yet due: nobody waits
    assert route.call_count == 1 and not rep.sent
    rep = await deliver(cfg, db, now=NOW + timedelta(seconds=5))
    assert len(rep.sent) == 1 and route.call_count == 2
    assert sent_texts(route)[0] == sent_texts(route)[1]


def many_changes(db, n: int = 40) -> None:  # type: ignore[no-untyped-def]
    v = add_vantage(db, "almaty-1", last_seen_at=T0)
    for i in range(n):
        t = add_target(db, f"Outlet-{i:02d}.kz", f"https://outlet{i:02d}.kz/")
        add_event(db, t, v, f"https://outlet{i:02d}.kz/", "dns", "ok", T0,
                  reason=f"outlet {i:02d}: " + "the resolver answered with a bogon & more " * 10)


@respx.mock
async def test_a_long_message_is_split_into_well_formed_parts_in_order(db, cfg) -> None:
    route = respx.post(API).mock(side_effect=lambda req: ok(len(route.calls)))
    many_changes(db)
    await queue_alerts(cfg, db, now=NOW)
    parts = rows(db)
    n = len(parts)
    assert n >= 3
    assert [r.payload["part"] for r in parts] == list(range(1, n + 1))
    assert all(r.key.endswith(f":part{i}of{n}") for i, r in enumerate(parts, 1))
    assert [r.payload["prev"] for r in parts] == [None, *[r.key for r in parts[:-1]]]
    rep = await deliver_outbox(cfg, db, now=NOW)
    assert len(rep.sent) == n
    texts = sent_texts(route)
    assert len(texts) == n
    for i, t in enumerate(texts, 1):
        assert t.startswith(f"<i>({i}/{n})</i>\n")
        well_formed(t)
    whole = "\n".join(plain(t) for t in texts)
    # every outlet, in the composed order, nothing cut inside an entity ("&amp;" whole)
    found = re.findall(r"Outlet-(\d\d)\.kz: заблокирован", whole)
    assert found == [f"{i:02d}" for i in range(40)]
    assert whole.count("bogon & more") == 400


@respx.mock
async def test_a_later_part_waits_for_an_earlier_one(any_db, cfg) -> None:
    db = any_db  # on SQLite and on the real PostgreSQL server
    route = respx.post(API).mock(side_effect=[ok(1), too_many(7), ok(2), ok(3), ok(4), ok(5),
                                              ok(6), ok(7), ok(8), ok(9), ok(10)])
    many_changes(db)
    await queue_alerts(cfg, db, now=NOW)
    n = len(rows(db))
    rep = await deliver(cfg, db, now=NOW)
    assert len(rep.sent) == 1 and route.call_count == 2  # part 2 got 429; the rest waited
    later = {r.payload["part"]: r for r in rows(db)}
    assert all(later[p].status == "pending" and later[p].attempts == 0 for p in range(3, n + 1))
    assert later[2].next_attempt_at == NOW + timedelta(seconds=7)
    await deliver_outbox(cfg, db, now=NOW + timedelta(seconds=7))
    marks = [re.match(r"<i>\((\d+)/", t).group(1) for t in sent_texts(route)]  # type: ignore[union-attr]
    assert marks == ["1", "2", *[str(i) for i in range(2, n + 1)]]
    assert {r.status for r in rows(db)} == {"sent"}


def test_splitting_never_cuts_an_entity_or_a_tag() -> None:
    # one line of 3000 "&" (15,000 characters escaped), a bold one, and astral characters
    # (two UTF-16 units each, as Telegram counts)
    lines = [tg.Line("&" * 3000), tg.Line("<b>" * 900 + "x", "b"), tg.Line("𝕏" * 2500)]
    parts = tg.split(lines)
    assert len(parts) > 4
    text = "".join(plain(p).split("\n", 1)[1].replace("\n", "") for p in parts)
    assert text == "&" * 3000 + "<b>" * 900 + "x" + "𝕏" * 2500


@respx.mock
async def test_hostile_text_is_escaped(db, cfg) -> None:
    route = respx.post(API).mock(return_value=ok())
    reason = 'reset <script>alert("x")</script> & \'quoted\' "twice"'
    scenario(db, reason=reason, name="Ratel</b><a href='javascript:x'>kz")
    await queue_alerts(cfg, db, now=NOW)
    add_incident(db, title=HOSTILE_TITLE, link="javascript:alert(1)", outlets=["Ratel.kz"],
                 at=NOW, event_id=1)
    await queue_alerts(cfg, db, now=NOW + timedelta(minutes=6))
    await deliver_outbox(cfg, db, now=NOW + timedelta(minutes=6))
    first, second = sent_texts(route)
    for t in (first, second):
        root = well_formed(t)
        assert not any(e.tag in ("script", "img") for e in root.iter())
        assert not [e for e in root.iter("a")]  # no link is made from feed or site text
    assert "Ratel</b><a href='javascript:x'>kz" in plain(first)
    assert reason in plain(first)
    assert "&lt;/b&gt;&lt;a href='javascript:x'&gt;" in first
    assert HOSTILE_TITLE in plain(second)


@respx.mock
async def test_403_is_permanent_and_said_clearly(db, cfg, caplog) -> None:
    route = respx.post(API).mock(return_value=KICKED)
    scenario(db)
    await queue_alerts(cfg, db, now=NOW)
    with caplog.at_level(logging.WARNING):
        rep = await deliver_outbox(cfg, db, now=NOW)
    assert rep.failed and "bot was kicked" in rep.failed[0][1]
    (row,) = rows(db)
    assert row.status == "failed" and "403" in row.last_error
    assert any(r.levelno == logging.ERROR and "bot was kicked" in r.getMessage()
               and "admin" in r.getMessage() for r in caplog.records)
    await deliver_outbox(cfg, db, now=NOW + timedelta(hours=3))
    assert route.call_count == 1


@respx.mock
async def test_5xx_and_network_errors_are_retried_with_backoff(db, cfg) -> None:
    route = respx.post(API).mock(side_effect=[
        httpx.Response(502, text="<html>Bad Gateway</html>"),
        httpx.ConnectError("[Errno 111] Connection refused"), ok()])
    scenario(db)
    await queue_alerts(cfg, db, now=NOW)
    assert (await deliver(cfg, db, now=NOW)).retry
    (row,) = rows(db)
    assert row.next_attempt_at == NOW + outbox.backoff(1) and "502" in row.last_error
    assert (await deliver(cfg, db, now=NOW + timedelta(seconds=30))).retry
    (row,) = rows(db)
    assert row.next_attempt_at == NOW + timedelta(seconds=30) + outbox.backoff(2)
    rep = await deliver(cfg, db, now=NOW + timedelta(seconds=90))
    assert len(rep.sent) == 1 and route.call_count == 3


@respx.mock
async def test_restart_after_sending_is_not_a_second_post(any_db, cfg, monkeypatch) -> None:
    """A row recorded `sending` whose worker died is `uncertain` after its lease: not posted
    again (the email rule). A lost answer is the same. A crash before `sending` is retried."""
    db = any_db  # on SQLite and on the real PostgreSQL server
    route = respx.post(API).mock(return_value=ok())
    scenario(db)
    await queue_alerts(cfg, db, now=NOW)

    async def died(*a, **k) -> None:
        raise KeyboardInterrupt  # the process is stopped while the request is in flight

    with monkeypatch.context() as m:
        m.setattr(tg, "send", died)
        with pytest.raises(KeyboardInterrupt):
            await deliver(cfg, db, now=NOW)
    (row,) = rows(db)
    assert row.status == "sending"
    rep = await deliver(cfg, db, now=NOW + timedelta(minutes=1))  # lease still running
    assert not rep.sent and route.call_count == 0
    rep = await deliver_outbox(cfg, db, now=NOW + outbox.LEASE + timedelta(seconds=1))
    (row,) = rows(db)
    assert row.status == "uncertain" and route.call_count == 0

    # the answer lost after the request went out: uncertain at once, not resent
    route.side_effect = [httpx.ReadTimeout("timed out")]
    add_event(db, 1, 1, "https://ratel.kz/", "ok", "tls", NOW + timedelta(hours=1))
    later = NOW + timedelta(hours=1, minutes=6)
    await queue_alerts(cfg, db, now=later)
    rep = await deliver(cfg, db, now=later)
    assert rep.uncertain and "no answer after the message was sent" in rep.uncertain[0][1]
    await deliver_outbox(cfg, db, now=later + timedelta(hours=1))
    assert route.call_count == 1 and rows(db)[-1].status == "uncertain"

    # a crash after the claim but before `sending`: nothing went out, retried after the lease
    route.side_effect = None
    route.return_value = ok()
    add_event(db, 1, 1, "https://ratel.kz/", "tls", "ok", NOW + timedelta(hours=3))
    t3 = NOW + timedelta(hours=3, minutes=6)
    await queue_alerts(cfg, db, now=t3)
    with monkeypatch.context() as m:
        m.setattr(outbox, "mark_sending", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
        with pytest.raises(KeyboardInterrupt):
            await deliver(cfg, db, now=t3)
    assert rows(db)[-1].status == "pending" and route.call_count == 1
    await deliver_outbox(cfg, db, now=t3 + outbox.LEASE + timedelta(seconds=1))
    assert rows(db)[-1].status == "sent" and route.call_count == 2


@respx.mock
async def test_the_digest_goes_to_telegram(db, write_config, monkeypatch) -> None:
    monkeypatch.setenv("BW_TEST_TELEGRAM_TOKEN", TOKEN)
    chats = TELEGRAM + """
[[alerts.telegram]]
chat_id = "@kz_desk"
bot_token_env = "BW_TEST_TELEGRAM_TOKEN"
language = "kk"
targets = ["Vlast.kz"]
alerts = false
"""
    cfg = write_config(config_text(free_port(), recipients="", webhooks=chats))
    route = respx.post(API).mock(side_effect=lambda req: ok(len(route.calls)))
    ratel = add_target(db, "Ratel.kz", "https://ratel.kz/")
    vps = add_vantage(db, "vps", kind="local", country="", last_seen_at=T0)
    add_event(db, ratel, vps, "https://ratel.kz/", "http_blockpage", "ok",
              T0 - timedelta(hours=30), reason="the response is a known blockpage (kz-mic)",
              confirmed=True)
    add_incident(db, title=HOSTILE_TITLE, link="https://adilet.example/case?a=1&b=2",
                 outlets=["Ratel.kz"], at=T0 - timedelta(hours=3))
    assert await queue_digest(cfg, db, now=T0) == 2
    assert await queue_digest(cfg, db, now=T0 + timedelta(minutes=5)) == 0  # once a day
    await deliver_outbox(cfg, db, now=T0)
    by_chat = {json.loads(c.request.content)["chat_id"]: json.loads(c.request.content)["text"]
               for c in route.calls}
    assert set(by_chat) == {CHAT, "@kz_desk"}
    ru, kk = plain(by_chat[CHAT]), plain(by_chat["@kz_desk"])
    assert C.catalog("ru")["text"]["digest_title"] in ru and "Ratel.kz" in ru
    assert HOSTILE_TITLE in ru
    assert C.catalog("kk")["text"]["digest_title"] in kk
    assert "Ratel.kz" not in kk  # its filter: Vlast.kz only
    assert f"<b>{C.catalog('ru')['text']['blocked_now']}</b>" in by_chat[CHAT]
    assert {r.kind for r in rows(db)} == {"digest"}


@respx.mock
async def test_a_missing_token_is_named_and_the_row_waits(db, write_config, monkeypatch) -> None:
    monkeypatch.delenv("BW_TEST_TELEGRAM_TOKEN", raising=False)
    cfg = write_config(config_text(free_port(), recipients="", webhooks=TELEGRAM))
    route = respx.post(API).mock(return_value=ok())
    scenario(db)
    await queue_alerts(cfg, db, now=NOW)
    with pytest.raises(SecretError, match="BW_TEST_TELEGRAM_TOKEN"):
        await deliver_outbox(cfg, db, now=NOW)
    (row,) = rows(db)
    assert row.status == "pending" and row.attempts == 0 and route.call_count == 0
    monkeypatch.setenv("BW_TEST_TELEGRAM_TOKEN", TOKEN[:-20])  # half pasted
    with pytest.raises(SecretError, match="does not hold a bot token") as info:
        await deliver_outbox(cfg, db, now=NOW + timedelta(minutes=1))
    assert TOKEN[:-20] not in str(info.value)
    monkeypatch.setenv("BW_TEST_TELEGRAM_TOKEN", TOKEN)
    rep = await deliver_outbox(cfg, db, now=NOW + timedelta(minutes=2))
    assert len(rep.sent) == 1


@respx.mock
def test_alerts_test_posts_to_every_chat_and_never_shows_the_token(
        write_config, monkeypatch, capsys, tmp_path: Path) -> None:
    monkeypatch.setenv("BW_TEST_TELEGRAM_TOKEN", TOKEN)
    other = "8012345678:AAGsecondTokenSecondTokenSecondTo"
    monkeypatch.setenv("BW_TEST_TELEGRAM_TOKEN_2", other)
    (tmp_path / "token2").write_text(other + "\n", encoding="utf-8")
    chats = TELEGRAM + """
[[alerts.telegram]]
chat_id = "-1009999"
bot_token_file = "token2"
api_url = "https://tg-proxy.example.org/"
"""
    cfg = write_config(config_text(free_port(), recipients="", webhooks=chats))
    good = respx.post(API).mock(return_value=ok())
    kicked = respx.post(f"https://tg-proxy.example.org/bot{other}/sendMessage").mock(
        return_value=KICKED)
    logs.setup(logging.DEBUG)
    logging.getLogger("httpx").setLevel(logging.DEBUG)  # it logs each request URL
    try:
        code = cmd_alerts_test(cfg, argparse.Namespace())
    finally:
        logging.getLogger("httpx").setLevel(logging.WARNING)
    out, err = capsys.readouterr()
    assert code == 1  # one chat refused the message for good
    assert f"telegram chat {CHAT}: delivered" in out
    assert "telegram chat -1009999 via tg-proxy.example.org: failed: " in err
    assert "bot was kicked" in err
    assert good.call_count == 1 and kicked.call_count == 1
    text = json.loads(good.calls.last.request.content)["text"]
    assert C.catalog("ru")["text"]["test_body"] in plain(text)
    # the secret-grep: the tokens are nowhere a person reads, even where httpx logged the URL
    assert "HTTP Request: POST" in err
    for secret in (TOKEN, other, TOKEN.split(":")[1], other.split(":")[1]):
        assert secret not in out + err


@respx.mock
async def test_a_token_in_an_error_message_is_scrubbed(db, cfg, capsys) -> None:
    respx.post(API).mock(side_effect=[httpx.ConnectError(f"cannot connect to {API}"),
                                      httpx.Response(500, text=f"proxy error for {API}")])
    scenario(db)
    await queue_alerts(cfg, db, now=NOW)
    logs.setup(logging.INFO)
    rep1 = await deliver(cfg, db, now=NOW)
    rep2 = await deliver(cfg, db, now=NOW + timedelta(minutes=1))
    err = capsys.readouterr().err
    assert "will retry" in err
    texts = [e for _, e in rep1.retry + rep2.retry] + [rows(db)[0].last_error, err]
    for t in texts:
        assert TOKEN not in t and TOKEN.split(":")[1] not in t
    assert tg.TOKEN_MASK in rep1.retry[0][1]


# --- channels never hold each other back -------------------------------------------------------

def both(port: int) -> str:
    return config_text(port, recipients='[[alerts.recipient]]\nemail = "desk@example.org"\n',
                       webhooks=TELEGRAM)


@respx.mock
async def test_a_stalled_smtp_server_does_not_hold_back_telegram(db, write_config,
                                                                 monkeypatch) -> None:
    """The SMTP port accepts connections and never says a word (a real socket that never
    accepts): Telegram is posted while the email is still waiting for the greeting."""
    monkeypatch.setenv("BW_TEST_TELEGRAM_TOKEN", TOKEN)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    cfg = write_config(both(listener.getsockname()[1]))
    posted = asyncio.Event()

    def answer(request: httpx.Request) -> httpx.Response:
        posted.set()
        return ok()

    route = respx.post(API).mock(side_effect=answer)
    scenario(db)
    assert await queue_alerts(cfg, db, now=NOW) == 2
    task = asyncio.create_task(deliver_outbox(cfg, db, now=NOW))
    try:
        # sequential delivery would wait out the 60 s SMTP timeout first
        await asyncio.wait_for(posted.wait(), timeout=30)
        assert not task.done()  # the email is still waiting for the server's greeting
    finally:
        listener.close()  # the server resets the connection it never accepted
    rep = await task
    assert route.call_count == 1
    status = {r.channel: r.status for r in rows(db)}
    assert status == {"telegram": "sent", "email": "pending"}
    assert len(rep.retry) == 1 and "SMTP" in rep.retry[0][1]


@respx.mock
async def test_a_refused_smtp_port_and_a_stalled_telegram_hold_back_nothing(
        db, write_config, monkeypatch, smtp) -> None:
    monkeypatch.setenv("BW_TEST_TELEGRAM_TOKEN", TOKEN)
    # an SMTP port nobody listens on: email retried, Telegram posted
    cfg = write_config(both(free_port()))
    route = respx.post(API).mock(return_value=ok())
    scenario(db)
    await queue_alerts(cfg, db, now=NOW)
    rep = await deliver_outbox(cfg, db, now=NOW)
    assert route.call_count == 1 and len(rep.sent) == 1
    assert "cannot reach the SMTP server" in rep.retry[0][1]
    # and the other way round: Telegram's answer hangs until the email has been accepted by
    # the real SMTP server; with one loop for both, this would never finish
    cfg = write_config(both(smtp.port))
    mailed = asyncio.Event()
    real = smtp.handler.handle_DATA
    loop = asyncio.get_running_loop()

    async def handle(*a):  # type: ignore[no-untyped-def]
        reply = await real(*a)
        loop.call_soon_threadsafe(mailed.set)
        return reply

    smtp.handler.handle_DATA = handle  # type: ignore[method-assign]

    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.wait_for(mailed.wait(), timeout=30)
        return ok(2)

    route.side_effect = slow
    add_event(db, 1, 1, "https://ratel.kz/", "ok", "tls", NOW + timedelta(hours=1))
    later = NOW + timedelta(hours=1, minutes=6)
    await queue_alerts(cfg, db, now=later)
    rep = await deliver_outbox(cfg, db, now=later + timedelta(minutes=1))
    assert len(smtp.handler.messages) == 2  # the retried one and the new one
    assert route.call_count == 2 and {r.status for r in rows(db)} == {"sent"}


# --- configuration ----------------------------------------------------------------------------

def test_the_shipped_config_documents_the_telegram_block(tmp_path: Path) -> None:
    """The commented block in config/blockwatch.toml, uncommented, is a valid configuration."""
    from blockwatch.config import load

    root = Path(__file__).resolve().parent.parent
    text = (root / "config" / "blockwatch.toml").read_text(encoding="utf-8")
    start = text.index("# [[alerts.telegram]]")
    block = []
    for line in text[start:].splitlines():
        if not line.startswith("# ") or (block and line.startswith("# [")):
            break
        block.append(line[2:])
    assert any(b.startswith("bot_token_env") for b in block)
    body = text.replace(text[start:start + len("\n".join(f"# {b}" for b in block))],
                        "\n".join(block))
    (tmp_path / "blockwatch.toml").write_text(body, encoding="utf-8")
    (tmp_path / "probes").mkdir()
    cfg = load(tmp_path / "blockwatch.toml")
    (chat,) = cfg.settings.alerts.telegram
    assert chat.chat_id == "-1001234567890" and chat.language == "ru"
    assert chat.bot_token_env == "BLOCKWATCH_TELEGRAM_TOKEN"
    assert chat.api_url == "https://api.telegram.org"


def test_configuration_errors_are_named(write_config) -> None:
    for chats, match in [
        ('chat_id = "my channel"\nbot_token_env = "X"\n', "not a Telegram chat id"),
        ('chat_id = "-100"\n', "exactly one of bot_token_env"),
        ('chat_id = "-100"\nbot_token_env = "X"\nbot_token = "1:a"\n', "unknown key"),
        ('chat_id = "-100"\nbot_token_env = "X"\nverdicts = ["blokced"]\n', "not a verdict"),
    ]:
        with pytest.raises(ConfigError, match=match):
            write_config(config_text(free_port(), recipients="",
                                     webhooks=f"[[alerts.telegram]]\n{chats}"))
    twice = TELEGRAM + TELEGRAM
    with pytest.raises(ConfigError, match="used twice"):
        write_config(config_text(free_port(), recipients="", webhooks=twice))
    cfg = write_config(config_text(free_port(), recipients="", webhooks=(
        "[[alerts.telegram]]\nchat_id = -1001234567890\nbot_token_env = \"X\"\n")))
    assert cfg.settings.alerts.telegram[0].chat_id == "-1001234567890"


@respx.mock
async def test_the_daemon_runs_alerts_for_telegram_alone(db, cfg) -> None:
    from datetime import UTC, datetime

    from blockwatch.daemon import Daemon

    route = respx.post(API).mock(return_value=ok())
    d = Daemon(cfg, db)
    assert "alerts" in {j.name for j in d.jobs()}
    t = add_target(db, "Vlast.kz", "https://vlast.kz/")
    v = add_vantage(db, "almaty-1", last_seen_at=T0)
    # the job runs on the real clock: a change detected ten minutes ago is due now
    add_event(db, t, v, "https://vlast.kz/", "dns", "ok", datetime.now(UTC) - timedelta(minutes=10))
    await d.alerts()
    # the alert, and today's digest (07:00 in Almaty has passed on any clock after 02:00 UTC;
    # before that, only the alert)
    kinds = {r.kind: r.status for r in rows(db)}
    assert kinds.get("alert") == "sent" and set(kinds.values()) == {"sent"}
    assert route.call_count == len(kinds)
    alert = next(r.payload["text"] for r in rows(db) if r.kind == "alert")
    assert alert == sent_texts(route)[0] and "Vlast.kz" in plain(alert)


@respx.mock
async def test_400_answers_say_what_to_fix() -> None:
    from blockwatch.config import Telegram

    chat = Telegram(chat_id=CHAT, bot_token_env="X")
    respx.post(API).mock(side_effect=[
        httpx.Response(400, json={"ok": False, "error_code": 400,
                                  "description": "Bad Request: chat not found"}),
        httpx.Response(400, json={"ok": False, "error_code": 400,
                                  "description": "Bad Request: group chat was upgraded to a "
                                                 "supergroup chat",
                                  "parameters": {"migrate_to_chat_id": -1009876543210}}),
        httpx.Response(401, json={"ok": False, "error_code": 401,
                                  "description": "Unauthorized"})])
    async with tg.client() as http:
        errors = []
        for _ in range(3):
            with pytest.raises(tg.TelegramError) as info:
                await tg.send(http, chat, TOKEN, "x")
            errors.append(info.value)
    assert errors[0].permanent and "is chat_id right" in str(errors[0])
    assert errors[1].permanent and 'chat_id = "-1009876543210"' in str(errors[1])
    assert not errors[2].permanent and "check the bot token" in str(errors[2])
    assert all(TOKEN not in str(e) for e in errors)


STAFF = '\n[[alerts.recipient]]\nemail = "desk@example.org"\nlanguage = "en"\n'


@respx.mock
async def test_agent_names_stay_in_staff_email_never_in_a_chat(db, write_config,
                                                              monkeypatch) -> None:
    """The agent "almaty-1" (a volunteer's home connection) blocked, and later silent: the
    alerts and the digest in the chat name it as the status page does; staff email keeps it."""
    monkeypatch.setenv("BW_TEST_TELEGRAM_TOKEN", TOKEN)
    cfg = write_config(config_text(free_port(), recipients=STAFF, webhooks=TELEGRAM))
    route = respx.post(API).mock(side_effect=lambda req: ok(len(route.calls)))
    scenario(db)
    assert await queue_alerts(cfg, db, now=NOW) == 2  # the email and the chat
    later = NOW + timedelta(days=1)  # the agent has been silent since T0
    assert await queue_alerts(cfg, db, now=later) == 2
    assert await queue_digest(cfg, db, now=later) == 2
    by_channel: dict[str, list[str]] = {}
    for r in rows(db):
        by_channel.setdefault(r.channel, []).append(r.subject + r.payload["text"]
                                                    + r.payload.get("html", ""))
    assert len(by_channel["telegram"]) == 3 and len(by_channel["email"]) == 3
    chat = "\n".join(by_channel["telegram"])
    assert "almaty-1" not in chat
    assert "Казахстан, сеть неизвестна (агент)" in chat
    assert C.catalog("ru")["kind"]["silent"] in chat
    await deliver_outbox(cfg, db, now=later)
    assert route.call_count == 3 and not any("almaty-1" in t for t in sent_texts(route))
    # the staff's email keeps the configured name in the alert, the silent alert and the digest
    assert all("almaty-1" in t for t in by_channel["email"])
