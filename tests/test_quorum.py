"""Quorum before alerting: networks of one country must agree an outlet is blocked before an
alert goes out or the status page's headline says "blocked"; the rule itself, then the alert
scan, the digest, the outlet page and status.json from stored rows (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from blockwatch.alerts import compose as C
from blockwatch.alerts import queue_alerts
from blockwatch.alerts.digest import collect
from blockwatch.analysis import quorum as Q
from blockwatch.site.commands import build_site
from blockwatch.storage.models import Outbox
from test_alerts_support import RECIPIENTS_3, SITE_3, T0, add_event, add_target, add_vantage, config_text

RATEL = "https://ratel.kz/"
AT = T0 - timedelta(minutes=10)  # every network's latest round
NOW = T0  # the scan: the group window (5m) has passed


# --- the rule ----------------------------------------------------------------------------------

def test_default_quorum_is_one_for_a_single_network_and_two_otherwise() -> None:
    one = Q.agreement("KZ", ["blocked"])
    assert (one.blocked, one.measured, one.needed, one.agreed) == (1, 1, 1, True)
    dissent = Q.agreement("KZ", ["blocked", "reachable", "reachable"])
    assert dissent.needed == 2 and not dissent.agreed and dissent.dissent
    two = Q.agreement("KZ", ["blocked", "blocked", "reachable"])
    assert two.agreed and (two.blocked, two.measured) == (2, 3)


def test_quorum_never_needs_more_than_measured() -> None:
    # three configured, two measured (the third could not look): two suffice
    a = Q.agreement("KZ", ["blocked", "blocked", "not_measured"], quorum=3)
    assert (a.needed, a.measured, a.agreed) == (2, 2, True)
    # only one of three measured: its word suffices ("1 of 1 network")
    b = Q.agreement("KZ", ["blocked", "stale", "no_data"])
    assert (b.needed, b.measured, b.agreed) == (1, 1, True)
    # quorum 3 with three measuring and two blocked: not enough
    c = Q.agreement("KZ", ["blocked", "blocked", "reachable"], quorum=3)
    assert c.needed == 3 and not c.agreed
    # nothing blocked is never "agreed", whatever the quorum
    assert not Q.agreement("KZ", ["reachable", "reachable"]).agreed
    assert not Q.agreement("KZ", []).agreed


def test_agreement_in_words() -> None:
    assert C.agreement_text(2, 3, "KZ", "en") == "blocked on 2 of 3 networks in Kazakhstan"
    assert C.agreement_text(1, 1, "KZ", "en") == "blocked on 1 of 1 network in Kazakhstan"
    assert C.agreement_text(2, 3, "KZ", "ru") == "заблокирован в 2 из 3 сетей в Казахстане"
    assert C.agreement_text(1, 1, "KZ", "ru") == "заблокирован в 1 из 1 сети в Казахстане"
    assert C.agreement_text(2, 3, "KZ", "kk") == "Қазақстанда бұғатталған желілер: 2 / 3"
    assert C.agreement_text(1, 1, "", "en") == "blocked on 1 of 1 network"
    assert C.agreement_text(2, 2, "XX", "en") == "blocked on 2 of 2 networks in XX"
    # alerts and the digest say it as the page does: interference, and networks that measured
    assert C.agreement_text(1, 1, "KZ", "en", interfered=True) == \
        "interfered with on 1 of 1 network in Kazakhstan"
    assert C.agreement_text(1, 1, "KZ", "en", total=2) == \
        "blocked on 1 of 1 network that measured (2 in Kazakhstan)"
    assert C.agreement_text(2, 2, "KZ", "en", total=2) == "blocked on 2 of 2 networks in Kazakhstan"


def test_a_dns_only_vantage_measures_only_its_dns_block() -> None:
    from blockwatch.analysis import display as D

    ok = D.Shown(D.REACHABLE, "ok", AT, AT)
    tls = D.Shown(D.BLOCKED, "tls", AT, AT)
    dns = D.Shown(D.BLOCKED, "dns", AT, AT)
    a = Q.of_vantages([("KZ", "agent", tls), ("KZ", "resolver", ok)])["KZ"]
    assert (a.blocked, a.measured, a.vantages, a.agreed) == (1, 1, 2, True)
    a = Q.of_vantages([("KZ", "local", ok), ("KZ", "resolver", dns)])["KZ"]
    assert (a.blocked, a.measured, a.needed, a.agreed) == (1, 2, 2, False)
    assert D.for_outlet(ok, "resolver").display == D.NOT_MEASURED
    assert D.for_outlet(ok, "agent") == ok and D.for_outlet(dns, "resolver") == dns


# --- from stored rows --------------------------------------------------------------------------

def networks(db, verdicts: dict[str, str]) -> tuple[int, dict[str, int]]:  # type: ignore[no-untyped-def]
    """Ratel.kz measured at AT by Kazakh agents: {agent name: state} (a blocked state comes from
    "ok", as the state machine would have it)."""
    t = add_target(db, "Ratel.kz", RATEL)
    vids = {}
    for name, state in verdicts.items():
        vids[name] = add_vantage(db, name, last_seen_at=AT)
        add_event(db, t, vids[name], RATEL, state, "ok" if state != "ok" else None, AT,
                  reason="connection reset after the TLS ClientHello" if state == "tls" else "")
    return t, vids


def alerts(db) -> dict[str, Outbox]:  # type: ignore[no-untyped-def]
    with db.read() as s:
        return {o.destination: o for o in s.scalars(select(Outbox))}


def site(cfg, db, tmp_path: Path) -> tuple[dict[str, str], dict]:  # type: ignore[no-untyped-def,type-arg]
    out = tmp_path / "site"
    build_site(cfg, db, out, now=NOW)
    pages = {lang: (out / lang / "t" / "ratel-kz.html").read_text(encoding="utf-8")
             for lang in ("en", "ru", "kk")}
    status = json.loads((out / "status.json").read_text(encoding="utf-8"))
    return pages, next(t for t in status["targets"] if t["name"] == "Ratel.kz")


async def test_one_network_country_alerts_on_its_word(any_db, write_config, tmp_path) -> None:
    cfg = write_config(config_text(2525, recipients=RECIPIENTS_3) + SITE_3)
    networks(any_db, {"almaty-1": "tls"})
    assert await queue_alerts(cfg, any_db, now=NOW) == 3
    sent = alerts(any_db)
    assert "blocked on 1 of 1 network in Kazakhstan" in sent["desk@example.org"].payload["text"]
    assert "blocked on 1 of 1 network in Kazakhstan" in sent["desk@example.org"].payload["html"]
    assert "заблокирован в 1 из 1 сети в Казахстане" in sent["ru@example.org"].payload["text"]
    assert "Қазақстанда бұғатталған желілер: 1 / 1" in sent["kk@example.org"].payload["text"]
    pages, st = site(cfg, any_db, tmp_path)
    assert st["display"] == "blocked"
    assert st["agreement"] == [{"country": "KZ", "blocked": 1, "measured": 1, "vantages": 1,
                                "needed": 1, "agreed": True}]
    assert "blocked on 1 of 1 network in Kazakhstan" in pages["en"]


async def test_one_dissenter_of_three_pages_no_one_but_is_shown(any_db, write_config,
                                                                tmp_path) -> None:
    cfg = write_config(config_text(2525, recipients=RECIPIENTS_3) + SITE_3)
    networks(any_db, {"almaty-1": "tls", "almaty-2": "ok", "astana-1": "ok"})
    assert await queue_alerts(cfg, any_db, now=NOW) == 0
    assert alerts(any_db) == {}
    # the scan moved on: the dissenter's event is not alerted later either
    assert await queue_alerts(cfg, any_db, now=NOW + timedelta(minutes=10)) == 0
    pages, st = site(cfg, any_db, tmp_path)
    assert st["display"] == "reachable"  # the headline follows the networks that agree
    assert st["agreement"][0] == {"country": "KZ", "blocked": 1, "measured": 3, "vantages": 3,
                                  "needed": 2, "agreed": False}
    # ... while the dissenting network's own card still says blocked
    assert sorted(v["display"] for v in st["vantages"]) == ["blocked", "reachable", "reachable"]
    assert ("blocked on 1 of 3 networks in Kazakhstan · not enough networks agree to call it "
            "blocked (2 needed)") in pages["en"]
    assert "заблокирован в 1 из 3 сетей в Казахстане" in pages["ru"]
    assert "Қазақстанда бұғатталған желілер: 1 / 3" in pages["kk"]
    # the digest lists it with the count, but its subject counts no blocked outlet
    with any_db.read() as s:
        d = collect(s, cfg, NOW - timedelta(hours=24), NOW)
    assert [b.target for b in d.blocked] == ["Ratel.kz"] and d.agreed_blocked == ()
    m = C.compose_digest(d, "en", "Asia/Almaty")
    assert m.subject == "blockwatch digest 2026-11-27"  # not "1 outlet(s) blocked"
    assert "blocked on 1 of 3 networks in Kazakhstan (not enough networks agree" in m.text
    assert "blocked on 1 of 3 networks in Kazakhstan" in m.html


async def test_two_of_three_agreeing_alert_and_say_so(any_db, write_config, tmp_path) -> None:
    cfg = write_config(config_text(2525, recipients=RECIPIENTS_3) + SITE_3)
    networks(any_db, {"almaty-1": "tls", "almaty-2": "tls", "astana-1": "ok"})
    assert await queue_alerts(cfg, any_db, now=NOW) == 3
    text = alerts(any_db)["desk@example.org"].payload["text"]
    assert text.count("blocked on 2 of 3 networks in Kazakhstan") == 2  # each network's item
    assert "заблокирован в 2 из 3 сетей в Казахстане" in alerts(any_db)["ru@example.org"].payload[
        "text"]
    pages, st = site(cfg, any_db, tmp_path)
    assert st["display"] == "blocked" and st["agreement"][0]["agreed"] is True
    assert "blocked on 2 of 3 networks in Kazakhstan" in pages["en"]
    assert "not enough networks agree" not in pages["en"]
    with any_db.read() as s:
        d = collect(s, cfg, NOW - timedelta(hours=24), NOW)
    m = C.compose_digest(d, "en", "Asia/Almaty")
    assert m.subject == "blockwatch digest 2026-11-27: 1 outlet(s) blocked"
    assert [b.target for b in d.agreed_blocked] == ["Ratel.kz"]
    assert "blocked on 2 of 3 networks in Kazakhstan" in m.text


async def test_quorum_three_with_two_measured_two_suffice(any_db, write_config,
                                                          tmp_path) -> None:
    cfg = write_config(config_text(2525, extra="quorum = 3", recipients=RECIPIENTS_3) + SITE_3)
    assert cfg.settings.alerts.quorum == 3
    # the third network could not look (every check inconclusive)
    networks(any_db, {"almaty-1": "tls", "almaty-2": "tls", "astana-1": "inconclusive"})
    assert await queue_alerts(cfg, any_db, now=NOW) == 3
    text = alerts(any_db)["desk@example.org"].payload["text"]
    # the alert says it as the page does: how many measured, of how many the country has
    assert "blocked on 2 of 2 networks that measured (3 in Kazakhstan)" in text
    pages, st = site(cfg, any_db, tmp_path)
    assert st["agreement"][0] == {"country": "KZ", "blocked": 2, "measured": 2, "vantages": 3,
                                  "needed": 2, "agreed": True}
    # the page says how many could measure of how many the country has
    assert st["display"] == "blocked" and ("blocked on 2 of 2 networks that measured "
                                           "(3 in Kazakhstan)") in pages["en"]


async def test_quorum_three_with_three_measured_needs_three(any_db, write_config) -> None:
    cfg = write_config(config_text(2525, extra="quorum = 3", recipients=RECIPIENTS_3))
    networks(any_db, {"almaty-1": "tls", "almaty-2": "tls", "astana-1": "ok"})
    assert await queue_alerts(cfg, any_db, now=NOW) == 0


async def test_an_unblock_is_told_only_of_an_agreed_block(any_db, write_config) -> None:
    cfg = write_config(config_text(2525, recipients=RECIPIENTS_3))
    t, v = networks(any_db, {"almaty-1": "tls", "almaty-2": "ok", "astana-1": "ok"})
    assert await queue_alerts(cfg, any_db, now=NOW) == 0
    # the dissenter comes back: nobody heard of its block, nobody hears of its end
    add_event(any_db, t, v["almaty-1"], RATEL, "ok", "tls", NOW + timedelta(minutes=15))
    assert await queue_alerts(cfg, any_db, now=NOW + timedelta(minutes=25)) == 0
    # now two networks block together (alerted), then both come back (told)
    add_event(any_db, t, v["almaty-1"], RATEL, "dns", "ok", NOW + timedelta(hours=1))
    add_event(any_db, t, v["almaty-2"], RATEL, "dns", "ok", NOW + timedelta(hours=1))
    assert await queue_alerts(cfg, any_db, now=NOW + timedelta(hours=1, minutes=6)) == 3
    add_event(any_db, t, v["almaty-1"], RATEL, "ok", "dns", NOW + timedelta(hours=2))
    add_event(any_db, t, v["almaty-2"], RATEL, "ok", "dns", NOW + timedelta(hours=2))
    assert await queue_alerts(cfg, any_db, now=NOW + timedelta(hours=2, minutes=6)) == 3
    with any_db.read() as s:
        last = s.scalars(select(Outbox).where(Outbox.destination == "desk@example.org")
                         .order_by(Outbox.id.desc())).first()
    assert last is not None and last.payload["text"].count("reachable again") >= 2


# --- a DNS-only resolver vantage ---------------------------------------------------------------

RESOLVER = ('\n[[vantage]]\nname = "kz-isp-dns"\nkind = "resolver"\naddress = "192.0.2.53:53"\n'
            'country = "KZ"\n')


def with_resolver(text: str) -> str:
    return text.replace("[alerts]", RESOLVER + "\n[alerts]")


async def test_a_resolvers_correct_answer_does_not_outvote_a_tls_block(any_db, write_config,
                                                                       tmp_path) -> None:
    """A resolver vantage checks DNS only: its "ok" says nothing about the TLS reset the agent
    sees, so it is not a network that measured the outlet reachable."""
    cfg = write_config(with_resolver(config_text(2525, recipients=RECIPIENTS_3)) + SITE_3)
    t, _ = networks(any_db, {"almaty-1": "tls"})
    r = add_vantage(any_db, "kz-isp-dns", kind="resolver", last_seen_at=AT)
    add_event(any_db, t, r, RATEL, "ok", None, AT)
    assert await queue_alerts(cfg, any_db, now=NOW) == 3
    assert ("blocked on 1 of 1 network that measured (2 in Kazakhstan)"
            in alerts(any_db)["desk@example.org"].payload["text"])
    _pages, st = site(cfg, any_db, tmp_path)
    assert st["display"] == "blocked"
    assert st["agreement"] == [{"country": "KZ", "blocked": 1, "measured": 1, "vantages": 2,
                                "needed": 1, "agreed": True}]
    # the resolver's own card still says its DNS answer was correct
    assert sorted(v["display"] for v in st["vantages"]) == ["blocked", "reachable"]


async def test_a_resolver_alone_does_not_make_an_outlet_reachable(any_db, write_config,
                                                                  tmp_path) -> None:
    cfg = write_config(with_resolver(config_text(2525, recipients=RECIPIENTS_3)) + SITE_3)
    t = add_target(any_db, "Ratel.kz", RATEL)
    r = add_vantage(any_db, "kz-isp-dns", kind="resolver", last_seen_at=AT)
    add_event(any_db, t, r, RATEL, "ok", None, AT)
    _pages, st = site(cfg, any_db, tmp_path)
    assert st["display"] == "not_measured"
    assert st["agreement"][0]["measured"] == 0


async def test_a_resolvers_dns_block_still_counts(any_db, write_config, tmp_path) -> None:
    cfg = write_config(with_resolver(config_text(2525, recipients=RECIPIENTS_3)) + SITE_3)
    t = add_target(any_db, "Ratel.kz", RATEL)
    r = add_vantage(any_db, "kz-isp-dns", kind="resolver", last_seen_at=AT)
    add_event(any_db, t, r, RATEL, "dns", "ok", AT)
    assert await queue_alerts(cfg, any_db, now=NOW) == 3
    _pages, st = site(cfg, any_db, tmp_path)
    assert st["display"] == "blocked" and st["agreement"][0]["agreed"] is True
