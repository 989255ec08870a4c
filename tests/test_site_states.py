"""Measured versus not known on the status site, built from rows stored through the real state
machine (SQLite and PostgreSQL): reachable, blocked, down, not measured, stale and no data, per
vantage and per outlet, in the HTML pages and in status.json; and the shipped config on a host
that cannot reach anything (every verdict inconclusive)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from blockwatch.analysis import display as D
from blockwatch.analysis.display import Schedule
from blockwatch.config import load
from blockwatch.site import build_site
from blockwatch.site.build import build_site_from_db, site_info
from blockwatch.storage import Database, open_database, repo
from blockwatch.storage.models import Target
from blockwatch.targets import load_targets
from test_site_build import Page

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
INFO = site_info("KZ press status", "", ["en", "ru", "kk"])
SCHED = Schedule(probe=timedelta(minutes=15))
AGENT = "almaty-volunteer-b"


def record(s, tid: int | None, vid: int, url: str, at: datetime, verdict: str,  # type: ignore[no-untyped-def]
           reason: str = "") -> None:
    m = repo.add_measurement(s, uid=f"{vid}/{url}/{at.isoformat()}", target_id=tid,
                             vantage_id=vid, url=url, role="vantage", measured_at=at,
                             evidence={"url": url, "v": verdict})
    repo.record_verdict(s, measurement=m, control_id=None, verdict=verdict, confirmed=False,
                        reason=reason or f"{verdict} at {at:%H:%M}", confirm_after=2)


def rounds(start: datetime, end: datetime) -> list[datetime]:
    out, at = [], start
    while at <= end:
        out.append(at)
        at += timedelta(minutes=15)
    return out


def states_world(db: Database) -> dict[str, int]:
    """One outlet per state, from an in-country agent and a vps abroad, every 15 minutes."""
    ids: dict[str, int] = {}
    with db.write() as s:
        for name in ("Reachable.kz", "Blocked.kz", "Down.kz", "Dark.kz", "Stale.kz", "Never.kz"):
            t = Target(name=name, country="KZ", category="NEWS",
                       urls=[f"https://{name.lower()}/"], aliases=[], active=True)
            s.add(t)
            s.flush()
            ids[name] = t.id
        agent = repo.ensure_vantage(s, AGENT, "agent", "KZ", "AS9198")
        vps = repo.ensure_vantage(s, "vps", "local")
        repo.ensure_vantage(s, "control", "control")
        recent = rounds(NOW - timedelta(hours=1), NOW - timedelta(minutes=5))
        early = rounds(NOW - timedelta(hours=4), NOW - timedelta(hours=3))
        for name, tid in ids.items():
            url = f"https://{name.lower()}/"
            if name == "Never.kz":
                continue
            for at in early:  # everything was reachable from everywhere earlier in the day
                record(s, tid, agent, url, at, "ok")
                record(s, tid, vps, url, at, "ok")
            for at in recent:
                if name == "Stale.kz":
                    continue  # nobody has measured it since
                agent_v = {"Reachable.kz": "ok", "Blocked.kz": "tls", "Down.kz": "down",
                           "Dark.kz": "inconclusive"}[name]
                record(s, tid, agent, url, at, agent_v)
                record(s, tid, vps, url, at, "down" if name == "Down.kz" else "ok")
    return ids


def build(db: Database, out: Path, now: datetime = NOW) -> dict:  # type: ignore[type-arg]
    build_site_from_db(db, out, INFO, now=now, schedule=SCHED)
    return json.loads((out / "status.json").read_text(encoding="utf-8"))


def row(html: str, slug: str) -> str:
    m = re.search(rf'<tr id="{re.escape(slug)}">(.*?)</tr>', html, re.S)
    assert m, slug
    return Page(m.group(1)).all_text


def test_each_state_from_stored_rows(any_db: Database, tmp_path: Path) -> None:
    states_world(any_db)
    out = tmp_path / "site"
    data = build(any_db, out)
    by = {t["name"]: t for t in data["targets"]}
    assert {n: t["display"] for n, t in by.items()} == {
        "Reachable.kz": "reachable", "Blocked.kz": "blocked", "Down.kz": "down",
        "Dark.kz": "not_measured", "Stale.kz": "stale", "Never.kz": "no_data"}
    assert data["counts"] == {"blocked": 1, "down": 1, "reachable": 1, "reachable_abroad": 0,
                              "not_measured": 1, "stale": 1, "no_data": 1}
    assert data["measured"] is True
    agent = "Kazakhstan, AS9198 (agent)"
    cells = {n: {v["vantage"]: v for v in t["vantages"]} for n, t in by.items()}
    # blocked, by kind, with since when and the time of the measurement that says so
    b = cells["Blocked.kz"][agent]
    assert b["display"] == "blocked" and b["state"] == "tls"
    assert b["measured_at"] == "2026-03-15T11:45:00Z" and b["display_since"] == "2026-03-15T11:00:00Z"
    assert by["Blocked.kz"]["state"] == "tls" and by["Blocked.kz"]["in_country"] is True
    # not measured: the agent's latest verdicts are inconclusive; since its last usable one;
    # the confirmed "ok" from hours ago is no state to show, and the vps abroad does not count
    d = cells["Dark.kz"][agent]
    assert d["display"] == "not_measured" and d["state"] is None
    assert d["last_confirmed_state"] == "ok" and d["measured_at"] == "2026-03-15T09:00:00Z"
    assert d["display_since"] == "2026-03-15T09:00:00Z" and d["reason"] == ""
    assert cells["Dark.kz"]["Abroad"]["display"] == "reachable"
    assert by["Dark.kz"]["state"] is None
    # stale: no attempt at all for more than two intervals
    st = cells["Stale.kz"][agent]
    assert st["display"] == "stale" and st["stale"] is True and st["state"] is None
    assert by["Never.kz"]["vantages"] == [] and by["Never.kz"]["state"] is None
    # per vantage: how many outlets in each state, and its newest usable measurement
    vs = {v["vantage"]: v for v in data["vantages"]}
    assert vs[agent]["counts"] == {"blocked": 1, "down": 1, "reachable": 1, "not_measured": 1,
                                   "stale": 1}
    assert vs[agent]["measured_at"] == "2026-03-15T11:45:00Z"
    assert by["Dark.kz"]["counts"] == {"reachable": 1, "not_measured": 1}

    html = (out / "en" / "index.html").read_text(encoding="utf-8")
    text = Page(html).all_text
    assert ("6 outlets now: 1 blocked, 1 down everywhere, 1 reachable, 1 not measured, "
            "1 no recent data, 1 no data yet.") in text
    assert "all " not in text.lower().split("how to read")[0]  # no "all reachable" anywhere
    assert "✕ blocked" in row(html, "blocked-kz")
    assert "? not measured" in row(html, "dark-kz") and "reachable" not in row(html, "dark-kz")
    assert "… no recent data" in row(html, "stale-kz") and "✓" not in row(html, "stale-kz")
    assert "– no data" in row(html, "never-kz")
    assert "✓" in row(html, "reachable-kz") and "not measured" not in row(html, "reachable-kz")
    dark = Page((out / "en" / "t" / "dark-kz.html").read_text(encoding="utf-8")).all_text
    assert "? not measured · not measured since 15 Mar 2026 09:00 UTC" in dark
    assert "✓ reachable" in dark  # the vps abroad, on its own card
    stale = Page((out / "en" / "t" / "stale-kz.html").read_text(encoding="utf-8")).all_text
    assert "no measurement since 15 Mar 2026 09:00 UTC" in stale
    ru = Page((out / "ru" / "index.html").read_text(encoding="utf-8")).all_text
    assert "заблокированы: 1" in ru and "не измерены: 1" in ru and "нет свежих данных: 1" in ru
    kk = Page((out / "kk" / "t" / "dark-kz.html").read_text(encoding="utf-8")).all_text
    assert "бері өлшенбеді" in kk
    badge = (out / "en" / "badge" / "dark-kz.svg").read_text(encoding="utf-8")
    assert "? not measured" in badge and "reachable" not in badge


def test_everything_goes_stale_when_nothing_measures(any_db: Database, tmp_path: Path) -> None:
    states_world(any_db)
    later = NOW + timedelta(hours=2)
    data = build(any_db, tmp_path / "site", later)
    assert data["measured"] is False
    assert {t["display"] for t in data["targets"]} == {"stale", "no_data"}
    assert data["last_usable_measurement"] == "2026-03-15T11:45:00Z"
    text = Page((tmp_path / "site" / "en" / "index.html").read_text(encoding="utf-8")).all_text
    assert "No fresh measurements since 15 Mar 2026 11:45 UTC: what is shown is out of date." in text
    assert "reachable," not in text and "1 blocked" not in text


def test_history_bar_shows_days_without_usable_data_as_not_measured(db: Database,
                                                                    tmp_path: Path) -> None:
    """Yesterday every verdict was inconclusive: not a fine day, and "no problems in the last
    90 days" is not claimed for days nobody measured."""
    with db.write() as s:
        t = Target(name="Ratel.kz", country="KZ", category="NEWS", urls=["https://ratel.kz/"],
                   aliases=[], active=True)
        s.add(t)
        s.flush()
        agent = repo.ensure_vantage(s, AGENT, "agent", "KZ", "AS9198")
        two_days = NOW - timedelta(days=2)
        for at in rounds(two_days, two_days + timedelta(hours=1)):
            record(s, t.id, agent, "https://ratel.kz/", at, "ok")
        yesterday = NOW - timedelta(days=1)
        for at in rounds(yesterday, yesterday + timedelta(hours=1)):
            record(s, t.id, agent, "https://ratel.kz/", at, "inconclusive")
        for at in rounds(NOW - timedelta(minutes=30), NOW):
            record(s, t.id, agent, "https://ratel.kz/", at, "ok")
    out = tmp_path / "site"
    build(db, out)
    html = (out / "en" / "t" / "ratel-kz.html").read_text(encoding="utf-8")
    bar = re.search(r'<div class="bar" role="img" aria-label="([^"]+)"', html)
    assert bar and "1 days not measured" in bar.group(1) and "2 days reachable" in bar.group(1)
    assert "87 days no data" in bar.group(1)
    assert "No problems in the last 90 days" not in Page(html).all_text
    assert ("No problems seen on the 2 days with usable measurements; 88 of the last 90 days "
            "were not measured.") in Page(html).all_text


def test_shipped_config_on_a_host_that_cannot_reach_anything(tmp_path: Path) -> None:
    """The quick start on a machine without connectivity: every verdict inconclusive. Nothing
    may read as reachable, in any language, nor in status.json."""
    text = (ROOT / "config" / "blockwatch.toml").read_text(encoding="utf-8")
    # swap only where things live: the database and the (relative) target list paths
    text, n = re.subn(r'(?m)^url = "sqlite:///[^"]*"', f'url = "sqlite:///{tmp_path / "bw.db"}"',
                      text, count=1)
    assert n == 1
    text = text.replace('"../probes/', f'"{ROOT / "probes"}/')
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "blockwatch.toml").write_text(text, encoding="utf-8")
    cfg = load(tmp_path / "config" / "blockwatch.toml")
    targets = load_targets(cfg.target_files)
    db = open_database(cfg.database_url)
    now = datetime.now(UTC).replace(microsecond=0)
    try:
        with db.write() as s:
            ids = repo.sync_targets(s, targets)
            vps = repo.ensure_vantage(s, "vps", "local")
            for at in (now - timedelta(minutes=16), now - timedelta(minutes=1)):
                for t in targets:
                    for url in t.urls:
                        record(s, ids[t.name], vps, url, at, "inconclusive",
                               "every canary failed at this vantage: it cannot measure")
        build_site(cfg, db, now=now)
    finally:
        db.close()
    out = tmp_path / "reports" / "site"
    data = json.loads((out / "status.json").read_text(encoding="utf-8"))
    n = len(targets)
    assert n >= 30 and data["measured"] is False and data["last_usable_measurement"] is None
    assert data["counts"]["not_measured"] == n and data["counts"]["reachable"] == 0
    assert all(t["state"] is None and t["display"] == "not_measured" for t in data["targets"])
    for lang, nothing, reachable in (("en", "No usable measurements yet", "reachable"),
                                     ("ru", "Пригодных измерений пока нет", "доступн")):
        page = Page((out / lang / "index.html").read_text(encoding="utf-8")).all_text
        assert nothing in page
        head = page.split("How to read" if lang == "en" else "Как читать")[0]
        assert reachable not in head
    html = (out / "en" / "index.html").read_text(encoding="utf-8")
    assert f"{n} outlets now: {n} not measured." in Page(html).all_text
    table = Page(html.split("<tbody>")[1].split("</tbody>")[0]).all_text
    assert "✓" not in table and "reachable" not in table
    assert table.count("? not measured") == 2 * n  # the outlet's word and the vps cell
    outlet = Page(next((out / "en" / "t").glob("*.html")).read_text(encoding="utf-8")).all_text
    assert "No problems in the last 90 days" not in outlet
    assert "No usable measurements in the last 90 days." in outlet
    assert "no usable measurement yet" in outlet


def test_reachable_from_abroad_only_is_said_plainly(db: Database, tmp_path: Path) -> None:
    """No vantage in the outlet's country: "reachable" would be a claim about censorship that
    nothing measured."""
    with db.write() as s:
        t = Target(name="Vlast.kz", country="KZ", category="NEWS", urls=["https://vlast.kz/"],
                   aliases=[], active=True)
        s.add(t)
        s.flush()
        vps = repo.ensure_vantage(s, "vps", "local")
        for at in rounds(NOW - timedelta(minutes=30), NOW):
            record(s, t.id, vps, "https://vlast.kz/", at, "ok")
    out = tmp_path / "site"
    data = build(db, out)
    (v,) = data["targets"]
    assert v["display"] == "reachable_abroad" and v["in_country"] is False
    assert data["counts"]["reachable"] == 0 and data["counts"]["reachable_abroad"] == 1
    text = Page((out / "en" / "index.html").read_text(encoding="utf-8")).all_text
    assert "1 outlets now: 1 reachable from abroad only." in text
    assert "No network inside the country measures 1 of these outlets" in text
    page = Page((out / "en" / "t" / "vlast-kz.html").read_text(encoding="utf-8")).all_text
    assert "reachable from abroad" in page and "measured from abroad only" in page


def test_outlet_rule_needs_a_fresh_ok_from_inside() -> None:
    now = NOW
    ok = D.classify("ok", "ok", now, now, now, SCHED.probe, now - timedelta(hours=1))
    dark = D.classify("ok", "inconclusive", now, now - timedelta(hours=2), now, SCHED.probe)
    assert ok.display == D.REACHABLE and dark.display == D.NOT_MEASURED
    assert D.outlet([(dark, True), (ok, False)]).display == D.NOT_MEASURED
    assert D.outlet([(ok, False)]).display == D.REACHABLE_ABROAD
    assert D.outlet([(ok, True), (dark, True)]).display == D.REACHABLE
    blocked = D.classify("dns", "dns", now, now, now, SCHED.probe)
    assert D.outlet([(blocked, False), (ok, True)]).display == D.BLOCKED
    # a URL that could not be looked at keeps the cell from reading "reachable"
    assert D.combine([ok, dark]).display == D.NOT_MEASURED
    # OONI: a day-old measurement of one URL is still fresh; a probe vantage's is stale
    assert SCHED.interval("ooni-kz:AS9198", "ooni") == timedelta(days=1)
    old = now - timedelta(hours=20)
    assert D.classify("ok", "ok", old, old, now, SCHED.interval("x:AS1", "ooni")).display == \
        D.REACHABLE
    assert D.classify("ok", "ok", old, old, now, SCHED.probe).display == D.STALE


def test_every_new_phrase_exists_in_english_russian_and_kazakh() -> None:
    from blockwatch.site import i18n

    new = {"counts_line", "count_item", "blocked_list", "abroad_note", "no_usable", "stale_page",
           "stale_page_never", "not_measured_page", "not_measured_since", "not_measured_never",
           "stale_since", "last_measured", "abroad_only", "no_affected_partial",
           "no_usable_days", "legend_unknown"}
    for lang in ("en", "ru", "kk"):
        assert new <= set(i18n.STRINGS[lang]), lang
        assert set(i18n.DISPLAY_WORDS[lang]) == set(i18n.DISPLAY_WORDS["en"]), lang
        # the headline counts the display states with "blocked" split as the filters split it
        assert set(i18n.COUNT_WORDS[lang]) == set(D.OUTLET_ORDER) | {"interfered"}, lang
        # Kazakh in Cyrillic, not Latin transliteration
        if lang == "kk":
            words = {k: re.sub(r"\{\w+\}", "", i18n.STRINGS["kk"][k]) for k in new}
            assert all(re.search("[а-яәғқңөұүһі]", w) for w in words.values()
                       if re.search(r"[^\W\d_]", w)), words
