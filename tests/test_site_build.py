"""The status site built from a database populated directly: content, links, privacy, escaping,
status.json, the Atom feed, the size budget, rollups and the static server."""

from __future__ import annotations

import json
import logging
import re
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from argparse import Namespace
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.message import Message
from html.parser import HTMLParser
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from blockwatch.analysis.display import Schedule
from blockwatch.site import build_site, cmd_site, rollup, rollup_range
from blockwatch.site.build import build_site_from_db, site_info
from blockwatch.site.rollup import Span, rollup_day
from blockwatch.site.serve import serve_in_thread
from blockwatch.storage import Database, repo
from blockwatch.storage.models import (
    Case,
    DailyRollup,
    Event,
    Feed,
    FeedEntry,
    Incident,
    Target,
)

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
AGENT_NAME = "almaty-volunteer-anna"
XSS_SCRIPT = "<script>alert(1)</script>"
XSS_IMG = '"><img src=x onerror=alert(1)>'
ATOM = "{http://www.w3.org/2005/Atom}"
INFO = site_info("KZ press status", "https://status.example.org/", ["en", "ru", "kk"])
SCHED = Schedule(probe=timedelta(hours=6))  # populate() measures every 6 hours


# --- data --------------------------------------------------------------------------------------

@dataclass
class World:
    targets: dict[str, int] = field(default_factory=dict)
    vantages: dict[str, int] = field(default_factory=dict)


def _vantage(s, name: str, kind: str, country: str = "", asn: str = "") -> int:  # type: ignore[no-untyped-def]
    return repo.ensure_vantage(s, name, kind, country, asn)


def _record(s, tid: int, vid: int, url: str, when: datetime, verdict: str, reason: str = "",  # type: ignore[no-untyped-def]
            confirmed: bool = False) -> None:
    m = repo.add_measurement(s, uid=f"{tid}/{vid}/{url}/{when.isoformat()}", target_id=tid,
                             vantage_id=vid, url=url, role="vantage", measured_at=when,
                             evidence={"url": url, "at": when.isoformat(), "v": verdict})
    repo.record_verdict(s, measurement=m, control_id=None, verdict=verdict, confirmed=confirmed,
                        reason=reason, confirm_after=2)


def populate(db: Database, now: datetime = NOW) -> World:
    """Three outlets over six days of 6-hourly rounds, through the real state machine."""
    w = World()
    with db.write() as s:
        for name, urls in [("Ratel.kz", ["https://ratel.kz/", "https://www.ratel.kz/news"]),
                           ("Vlast.kz", ["https://vlast.kz/"]),
                           ("Azattyq", ["https://rus.azattyq.org/"])]:
            t = Target(name=name, country="KZ", category="NEWS", urls=urls, aliases=[], active=True)
            s.add(t)
            s.flush()
            w.targets[name] = t.id
        w.vantages = {
            "vps": _vantage(s, "vps", "local"),
            "kz-isp-dns": _vantage(s, "kz-isp-dns", "resolver", "KZ"),
            "ooni-kz:AS9198": _vantage(s, "ooni-kz:AS9198", "ooni", "KZ", "AS9198"),
            AGENT_NAME: _vantage(s, AGENT_NAME, "agent", "KZ", "AS9198"),
            "control": _vantage(s, "control", "control"),
        }
    tls_from = now - timedelta(days=3)
    dns_from = now - timedelta(days=2)
    vlast_block = (now - timedelta(days=4), now - timedelta(days=3))
    rounds = [now - timedelta(days=6) + timedelta(hours=6 * i) for i in range(24)]
    agent, resolver = w.vantages[AGENT_NAME], w.vantages["kz-isp-dns"]
    with db.write() as s:
        for at in rounds:
            for tname, tid in w.targets.items():
                urls = s.get(Target, tid).urls  # type: ignore[union-attr]
                for vname, vid in w.vantages.items():
                    if vname == "ooni-kz:AS9198" and at < now - timedelta(days=1):
                        continue  # OONI data arrives late and sparse
                    for url in urls:
                        verdict, reason, conf = "ok", "reachable: HTTP 200", False
                        if tname == "Ratel.kz" and vid == agent and at >= tls_from:
                            verdict, reason = "tls", f"the TLS handshake was reset {XSS_SCRIPT}"
                        elif tname == "Ratel.kz" and vid == resolver and at >= dns_from \
                                and url.startswith("https://ratel.kz"):
                            verdict, conf = "dns", True
                            reason = "DNS answered 10.0.0.1, a known block address"
                        elif tname == "Vlast.kz" and vid == agent and \
                                vlast_block[0] <= at < vlast_block[1]:
                            verdict, reason = "dns", f"DNS answered NXDOMAIN {XSS_IMG}"
                        elif tname == "Azattyq" and at >= now - timedelta(days=1):
                            verdict, reason = "down", "the site is down everywhere"
                        elif tname == "Vlast.kz" and vname == "control":
                            verdict, reason = "dns", "control vantage must never show"
                        _record(s, tid, vid, url, at, verdict, reason, conf)
        # older history straight into the rollups (days before the raw data)
        for back in range(7, 90):
            day = now.date() - timedelta(days=back)
            for tid in w.targets.values():
                for vname in ("vps", "kz-isp-dns", AGENT_NAME):
                    worst, mins = "ok", 0
                    if tid == w.targets["Ratel.kz"] and vname == AGENT_NAME and 25 <= back <= 30:
                        worst, mins = "tls", 1440 if back < 30 else 300
                    s.add(DailyRollup(target_id=tid, vantage_id=w.vantages[vname], day=day,
                                      worst=worst, minutes_affected=mins, measurements=8))
        feed = Feed(name=f"Adil Soz {XSS_IMG}", url="https://example.org/feed", language="ru")
        s.add(feed)
        s.flush()
        entries = [
            (f"{XSS_SCRIPT} journalist detained", "javascript:alert(1)", ["Ratel.kz"],
             ["Иван <b>Петров</b>"]),
            (f"Site blocked {XSS_IMG}", "https://example.org/news?a=1&b=2", ["Ratel.kz", "Nope"], []),
            ("Raid at Vlast.kz", "https://example.org/raid", ["Vlast.kz"], []),
        ]
        for i, (title, link, outlets, people) in enumerate(entries):
            fe = FeedEntry(feed_id=feed.id, entry_key=f"k{i}", title=title, link=link,
                           summary="", published_at=now - timedelta(days=2, hours=i),
                           first_seen_at=now - timedelta(days=2), content_sha256="0" * 64)
            s.add(fe)
            s.flush()
            s.add(Incident(entry_id=fe.id, types=["blocking" if i != 2 else "raid"],
                           outlets=outlets, people=people,
                           occurred_at=now - timedelta(days=2, hours=i), created_at=now))
        s.flush()
        inc = s.scalars(select(Incident).order_by(Incident.id)).first()
        ev = s.scalars(select(Event).where(Event.vantage_id == agent,
                                           Event.target_id == w.targets["Ratel.kz"],
                                           Event.state == "tls")).first()
        assert inc is not None and ev is not None
        s.add(Case(incident_id=inc.id, event_id=ev.id, created_at=now - timedelta(days=1)))
    return w


# --- helpers -----------------------------------------------------------------------------------

class Page(HTMLParser):
    """Tags with attributes, text, and the text inside each element with an id."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    @property
    def all_text(self) -> str:
        return re.sub(r"\s+", " ", " ".join(self.text))

    def find(self, tag: str) -> list[dict[str, str]]:
        return [a for t, a in self.tags if t == tag]


def _row_text(html: str, row_id: str) -> str:
    m = re.search(rf'<tr id="{re.escape(row_id)}">(.*?)</tr>', html, re.S)
    assert m, f"no row {row_id}"
    return Page(m.group(1)).all_text


@pytest.fixture
def site(db: Database, tmp_path: Path) -> tuple[Path, World, Database]:
    """A site of its own, for tests that change the database or the folder."""
    w = populate(db)
    out = tmp_path / "site"
    build_site_from_db(db, out, INFO, now=NOW, schedule=SCHED)
    return out, w, db


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, World, Database]]:
    """One site shared by the read-only tests (populating takes seconds)."""
    from blockwatch.storage import open_database

    d = tmp_path_factory.mktemp("site")
    db = open_database(f"sqlite:///{d / 'blockwatch.db'}")
    w = populate(db)
    build_site_from_db(db, d / "site", INFO, now=NOW, schedule=SCHED)
    yield d / "site", w, db
    db.close()


# --- rollups -----------------------------------------------------------------------------------

def test_rollup_day_minutes_are_the_union_of_affected_time_within_the_day() -> None:
    day = date(2026, 3, 10)
    t0 = datetime(2026, 3, 10, tzinfo=UTC)
    spans = [
        Span(1, 1, "ok", t0 - timedelta(days=1), t0 + timedelta(hours=6)),
        Span(1, 1, "dns", t0 + timedelta(hours=6), t0 + timedelta(hours=8)),  # URL a
        Span(1, 1, "tls", t0 + timedelta(hours=7), None),  # URL b, overlapping and still open
        Span(2, 1, "down", t0 + timedelta(hours=23, minutes=30), None),
        Span(3, 1, "ok", t0 - timedelta(days=3), None),
        Span(4, 1, "dns", t0 - timedelta(days=3), t0),  # ended exactly at midnight
    ]
    counts = {(1, 1): 8, (2, 1): 3, (3, 1): 8, (4, 1): 2, (5, 1): 1}
    rows = {(r.target_id, r.vantage_id): r for r in rollup_day(spans, counts, day, NOW)}
    assert rows[(1, 1)].worst == "dns" and rows[(1, 1)].minutes_affected == 18 * 60  # SEVERITY
    assert rows[(2, 1)].worst == "down" and rows[(2, 1)].minutes_affected == 30
    assert rows[(3, 1)].worst == "ok" and rows[(3, 1)].minutes_affected == 0
    assert rows[(4, 1)].worst == "inconclusive"  # verdicts, but no confirmed state that day
    assert rows[(5, 1)].worst == "inconclusive" and rows[(5, 1)].measurements == 1
    # a pair without verdicts that day gets no row: "no data", not an inherited state
    assert set(rows) == set(counts)


def test_rollup_of_today_counts_only_up_to_now() -> None:
    now = datetime(2026, 3, 10, 6, 0, tzinfo=UTC)
    spans = [Span(1, 1, "dns", datetime(2026, 3, 9, tzinfo=UTC), None)]
    (row,) = rollup_day(spans, {(1, 1): 4}, now.date(), now)
    assert row.minutes_affected == 6 * 60


def test_rollup_from_the_state_machine_is_idempotent(any_db: Database) -> None:
    w = populate(any_db)
    day = (NOW - timedelta(days=2)).date()
    first = rollup(any_db, day, now=NOW)
    again = rollup(any_db, day, now=NOW)
    assert first == again > 0
    with any_db.read() as s:
        rows = {(r.target_id, r.vantage_id): r for r in s.scalars(
            select(DailyRollup).where(DailyRollup.day == day))}
    ratel_agent = rows[(w.targets["Ratel.kz"], w.vantages[AGENT_NAME])]
    assert ratel_agent.worst == "tls" and ratel_agent.minutes_affected == 1440
    assert ratel_agent.measurements == 4 * 2  # 4 rounds x 2 URLs
    resolver = rows[(w.targets["Ratel.kz"], w.vantages["kz-isp-dns"])]
    # the DNS block began at 12:00 that day: confirmed after two rounds, counted from the first
    assert resolver.worst == "dns" and resolver.minutes_affected == 12 * 60
    assert rows[(w.targets["Vlast.kz"], w.vantages["vps"])].worst == "ok"
    assert all(v != w.vantages["control"] for _, v in rows)
    # a range rolls every day up, and again gives the same rows
    n = rollup_range(any_db, NOW.date() - timedelta(days=6), NOW.date(), now=NOW)
    assert n == rollup_range(any_db, NOW.date() - timedelta(days=6), NOW.date(), now=NOW)


# --- pages -------------------------------------------------------------------------------------

def test_index_shows_state_per_vantage_since_when_and_history(built) -> None:  # type: ignore[no-untyped-def]
    out, _w, _db = built
    html = (out / "en" / "index.html").read_text(encoding="utf-8")
    page = Page(html)
    assert page.find("html")[0]["lang"] == "en"
    for landmark in ("header", "main", "nav", "footer"):
        assert page.find(landmark), landmark
    heads = [Page(h).all_text.strip() for h in re.findall(r'<th scope="col"[^>]*>(.*?)</th>', html)]
    assert heads[1:] == ["Kazakhstan, AS9198 (agent)", "Kazakhstan, OONI volunteers AS9198",
        "Kazakhstan, ISP resolver", "Abroad"]
    ratel = _row_text(html, "ratel-kz")
    # worst overall, each vantage with a symbol and a word, since when
    assert "✕ blocked" in ratel and "12 Mar" in ratel and "13 Mar" in ratel
    assert ratel.count("✓") == 2
    assert "Ratel.kz" in Page(html).all_text
    assert "✓" in _row_text(html, "vlast-kz") and "blocked" not in _row_text(html, "vlast-kz")
    assert "↓ site down" in _row_text(html, "azattyq")
    # the 90-day bar: a text alternative counting the days, segments with per-day detail
    bars = [a for a in page.find("div") if a.get("class") == "bar"]
    assert len(bars) == 3 and all(b["role"] == "img" for b in bars)
    ratel_bar = re.search(r'<tr id="ratel-kz">.*?<div class="bar" role="img" aria-label="([^"]+)"',
                          html, re.S)
    assert ratel_bar and "days blocked" in ratel_bar.group(1) and "days reachable" in ratel_bar.group(1)
    assert sum(int(n) for n in re.findall(r"(\d+) days", ratel_bar.group(1).split(":", 1)[1])) == 90
    titles = [a["title"] for a in page.find("i") if "title" in a]
    assert "13 Feb–18 Feb: blocked, 5 d 5 h" in titles
    # the index merges TLS (12 Mar, from noon) and DNS (13-15 Mar) days into one blocked run
    # (until the last round that measured it, 06:00 on the 15th: minutes stop at what was measured)
    assert "12 Mar–15 Mar: blocked, 2 d 18 h" in titles
    # the outlet's page keeps them apart, with how; Mar 13-15: DNS at the resolver is worse
    # than TLS at the agent, and the minutes are those of the most affected network
    target = Page((out / "en" / "t" / "ratel-kz.html").read_text(encoding="utf-8"))
    titles = [a["title"] for a in target.find("i") if "title" in a]
    assert "12 Mar: blocked (TLS (SNI) interference), 12 h affected" in titles
    # to the last DNS measurement (06:00 on the 15th), not to the end of the day or the build
    assert "13 Mar – 15 Mar: blocked (DNS tampering), 1 d 18 h affected" in titles
    # each class counted; Azattyq is down, not blocked
    assert "3 outlets now: 1 blocked, 1 down everywhere, 1 reachable." in page.all_text


def test_every_internal_link_resolves_to_a_built_file(built) -> None:  # type: ignore[no-untyped-def]
    out, _w, _db = built
    pages = sorted(out.rglob("*.html"))
    # root + per language: index, incidents, 3 outlets, 5 state filters, 4 network filters
    assert len(pages) == 1 + 3 * (2 + 3 + 5 + 4)
    for p in pages:
        page = Page(p.read_text(encoding="utf-8"))
        ids = {a["id"] for _, a in page.tags if "id" in a}
        for tag, attr in (("a", "href"), ("img", "src"), ("link", "href")):
            for a in page.find(tag):
                ref = a.get(attr, "")
                if not ref or ref.startswith(("https://", "http://", "data:")):
                    continue
                path, _, frag = ref.partition("#")
                target = (p.parent / path).resolve() if path else p
                assert target.is_file(), f"{p.relative_to(out)} links to missing {ref}"
                if frag and target == p:
                    assert frag in ids, f"{p.relative_to(out)}: no #{frag}"
                elif frag:
                    assert f'id="{frag}"' in target.read_text(encoding="utf-8"), ref


def test_target_page_timeline_evidence_incidents_and_history(built) -> None:  # type: ignore[no-untyped-def]
    out, w, db = built
    html = (out / "en" / "t" / "ratel-kz.html").read_text(encoding="utf-8")
    text = Page(html).all_text
    assert "blocked TLS (SNI) interference" in text
    assert "Kazakhstan, AS9198 (agent)" in text and "Kazakhstan, ISP resolver" in text
    # timeline: the open TLS event, the DNS event confirmed by a known block address
    with db.read() as s:
        evs = s.scalars(select(Event).where(Event.target_id == w.targets["Ratel.kz"])).all()
    for e in evs:
        if e.vantage_id != w.vantages["control"]:
            assert f'id="event-{e.id}"' in html
    assert "ongoing" in text and "DNS answered 10.0.0.1, a known block address" in text
    assert "confirmed: matched a known block page" in text
    assert "inferred: compared with a measurement from abroad" in text
    assert re.search(r"evidence SHA-256 [0-9a-f]{16}", text)
    # linked incident via the case, and one that only mentions the outlet
    assert "journalist detained" in text and "(mentions this outlet)" in text
    assert "History per network" in text and "Days with problems" in text
    m = re.search(r'<details><summary>Days with problems \((\d+)\)', html)
    assert m and int(m.group(1)) >= 6 + 3  # the rolled-up TLS days and the recent ones
    assert "1440" not in text and "1 d" in text  # minutes read as a duration
    assert (out / "en" / "badge" / "ratel-kz.svg").is_file()


def test_incidents_page_links_outlets_and_events(built) -> None:  # type: ignore[no-untyped-def]
    out, _w, _db = built
    html = (out / "en" / "incidents.html").read_text(encoding="utf-8")
    page = Page(html)
    hrefs = [a["href"] for a in page.find("a")]
    assert "https://example.org/news?a=1&b=2" in hrefs  # & escaped in the source, intact here
    assert "../en/t/ratel-kz.html" in hrefs
    assert any(h.startswith("../en/t/ratel-kz.html#event-") for h in hrefs)
    assert "Nope" in page.all_text  # an outlet we don't watch: named, not linked
    assert "Иван <b>Петров</b>" in page.all_text


def test_russian_and_kazakh_pages(built) -> None:  # type: ignore[no-untyped-def]
    out, _w, _db = built
    ru = (out / "ru" / "index.html").read_text(encoding="utf-8")
    assert Page(ru).find("html")[0]["lang"] == "ru"
    assert "✕ заблокирован" in _row_text(ru, "ratel-kz")
    assert "Казахстан, AS9198 (агент)" in ru
    kk = (out / "kk" / "index.html").read_text(encoding="utf-8")
    assert Page(kk).find("html")[0]["lang"] == "kk" and "бұғатталған" in kk
    root = (out / "index.html").read_text(encoding="utf-8")
    assert Page(root).find("html")[0]["lang"] == "en"
    assert 'href="en/t/ratel-kz.html"' in root and 'href="ru/index.html"' in root


def test_agent_name_never_appears_anywhere(built) -> None:  # type: ignore[no-untyped-def]
    out, _w, _db = built
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) > 20
    for p in files:
        data = p.read_bytes().decode("utf-8").lower()
        assert AGENT_NAME not in data, p
        assert "anna" not in data, p
        assert "control vantage must never show" not in data, p


def test_everything_from_feeds_and_probed_sites_is_escaped(built) -> None:  # type: ignore[no-untyped-def]
    out, _w, _db = built
    for p in out.rglob("*"):
        if p.suffix not in (".html", ".svg", ".xml"):
            continue
        raw = p.read_text(encoding="utf-8")
        assert XSS_SCRIPT not in raw and XSS_IMG not in raw, p
        assert "<script" not in raw.lower() and "javascript:" not in raw, p
        if p.suffix == ".html":
            page = Page(raw)
            assert not page.find("script")
            assert [t for t, a in page.tags if any(k.startswith("on") for k in a)] == []
            assert all(t in ("img",) or a.get("src") is None for t, a in page.tags)
            assert not [a for a in page.find("a") if a.get("href", "").startswith("javascript")]
        else:
            ET.fromstring(raw)  # well-formed XML despite the hostile text
    html = (out / "en" / "incidents.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt; journalist detained" in html
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in html
    target = (out / "en" / "t" / "ratel-kz.html").read_text(encoding="utf-8")
    assert "reset &lt;script&gt;alert(1)&lt;/script&gt;" in target
    # the incident with a javascript: link is shown, without the link
    assert "javascript:" not in html


def test_status_json_is_the_current_state(built) -> None:  # type: ignore[no-untyped-def]
    out, _w, _db = built
    data = json.loads((out / "status.json").read_text(encoding="utf-8"))
    assert data["generated_at"] == "2026-03-15T12:00:00Z"
    assert [v["vantage"] for v in data["vantages"]] == [
        "Kazakhstan, AS9198 (agent)", "Kazakhstan, OONI volunteers AS9198",
        "Kazakhstan, ISP resolver", "Abroad"]
    ratel = next(t for t in data["targets"] if t["name"] == "Ratel.kz")
    # the worst over vantages: DNS at the resolver (SEVERITY ranks it above TLS at the agent)
    assert ratel["state"] == "dns" and ratel["status"] == "blocked"
    assert ratel["since"] == "2026-03-13T12:00:00Z" and ratel["page"] == "en/t/ratel-kz.html"
    by_v = {v["vantage"]: v for v in ratel["vantages"]}
    resolver = by_v["Kazakhstan, ISP resolver"]
    assert resolver["state"] == "dns" and resolver["confirmed"] is True
    assert resolver["name"] == "kz-isp-dns"  # a configuration name, never an agent's
    assert by_v["Kazakhstan, AS9198 (agent)"]["asn"] == "AS9198"
    assert by_v["Abroad"]["state"] == "ok"
    assert by_v["Kazakhstan, AS9198 (agent)"]["state"] == "tls"
    assert by_v["Kazakhstan, AS9198 (agent)"]["since"] == "2026-03-12T12:00:00Z"
    assert (out / ratel["page"]).is_file() and (out / ratel["badge"]).is_file()
    assert set(by_v["Abroad"]) >= {"state", "since", "last_checked", "reason", "urls"}


def _feed(out: Path) -> dict[str, tuple[str, str]]:
    root = ET.parse(out / "feed.xml").getroot()
    assert root.tag == f"{ATOM}feed"
    assert root.find(f"{ATOM}title") is not None and root.find(f"{ATOM}updated") is not None
    entries = {}
    for e in root.findall(f"{ATOM}entry"):
        entries[e.findtext(f"{ATOM}id") or ""] = (e.findtext(f"{ATOM}updated") or "",
                                                  e.findtext(f"{ATOM}title") or "")
        link = e.find(f"{ATOM}link")
        assert link is not None and link.get("href", "").startswith("https://status.example.org/en/")
    return entries


def test_atom_feed_has_stable_ids_and_updated_changes_when_an_event_ends(site) -> None:  # type: ignore[no-untyped-def]
    out, w, db = site
    first = _feed(out)
    assert first and all(re.fullmatch(r"tag:status\.example\.org,2026:(event|case)/\d+", i)
                         for i in first)
    assert any(i.endswith(":case/1") for i in first)
    assert any("Kazakhstan, AS9198 (agent)" in t for _, t in first.values())
    build_site_from_db(db, out, INFO, now=NOW + timedelta(minutes=15), schedule=SCHED)
    assert _feed(out) == first  # nothing changed: same ids, same updated
    with db.write() as s:
        ev = s.scalars(select(Event).where(Event.target_id == w.targets["Ratel.kz"],
                                           Event.vantage_id == w.vantages[AGENT_NAME],
                                           Event.ended_at.is_(None)).order_by(Event.id)).first()
        assert ev is not None
        ev.ended_at = NOW + timedelta(minutes=20)
        ev_id = f"tag:status.example.org,2026:event/{ev.id}"
    build_site_from_db(db, out, INFO, now=NOW + timedelta(minutes=30), schedule=SCHED)
    after = _feed(out)
    assert set(after) == set(first)
    assert after[ev_id][0] == "2026-03-15T12:20:00Z" != first[ev_id][0]
    assert "ended" in after[ev_id][1]
    assert {k: v for k, v in after.items() if k != ev_id} == {
        k: v for k, v in first.items() if k != ev_id}


def test_badges_are_svg_with_a_word(built) -> None:  # type: ignore[no-untyped-def]
    out, _w, _db = built
    svg = ET.parse(out / "en" / "badge" / "ratel-kz.svg").getroot()
    assert svg.tag == "{http://www.w3.org/2000/svg}svg"
    assert svg.get("aria-label") == "Ratel.kz: ✕ blocked"
    assert "заблокирован" in (out / "ru" / "badge" / "ratel-kz.svg").read_text(encoding="utf-8")


def test_rebuild_rewrites_only_changes_and_removes_pages_of_dropped_outlets(site) -> None:  # type: ignore[no-untyped-def]
    out, w, db = site
    (out / "CNAME").write_text("status.example.org")  # the operator's own file: left alone
    report = build_site_from_db(db, out, INFO, now=NOW, schedule=SCHED)
    assert report.written == 0 and report.removed == 0
    with db.write() as s:
        s.get(Target, w.targets["Azattyq"]).active = False  # type: ignore[union-attr]
    report = build_site_from_db(db, out, INFO, now=NOW, schedule=SCHED)
    assert not (out / "en" / "t" / "azattyq.html").exists()
    assert report.removed == 3 * 2  # page and badge, three languages
    assert (out / "CNAME").exists()


def test_index_for_50_outlets_is_at_most_100_kb(db: Database, tmp_path: Path) -> None:
    """Size is the functional limit for a phone on a slow link (the page's budget)."""
    now = NOW
    with db.write() as s:
        vids = [_vantage(s, "vps", "local"), _vantage(s, "kz-isp-dns", "resolver", "KZ"),
                _vantage(s, "ooni-kz:AS9198", "ooni", "KZ", "AS9198"),
                _vantage(s, "agent-1", "agent", "KZ", "AS9198")]
        for i in range(50):
            t = Target(name=f"Outlet number {i} Қазақстан", country="KZ", category="NEWS",
                       urls=[f"https://outlet{i}.kz/"], aliases=[], active=True)
            s.add(t)
            s.flush()
            for vid in vids:
                for url in t.urls:
                    blocked = i % 5 == 0 and vid == vids[3]
                    for k in range(2):
                        _record(s, t.id, vid, url, now - timedelta(hours=4 - k),
                                "tls" if blocked else "ok", "x" * 120)
                # a worst case for the bar: the state changes every week, at every outlet
                s.execute(insert(DailyRollup), [
                    {"target_id": t.id, "vantage_id": vid, "day": now.date() - timedelta(days=back),
                     "worst": "dns" if (i + back) % 7 == 0 else "ok",
                     "minutes_affected": 300 if (i + back) % 7 == 0 else 0, "measurements": 96}
                    for back in range(1, 90)])
    out = tmp_path / "site"
    report = build_site_from_db(db, out, INFO, now=now, schedule=SCHED)
    for lang in ("en", "ru", "kk"):
        size = (out / lang / "index.html").stat().st_size
        assert size <= 100_000, f"{lang}/index.html is {size} bytes"
    assert (out / "index.html").stat().st_size <= 100_000
    assert report.index_bytes <= 100_000
    assert len(re.findall(r"<tr id=", (out / "en" / "index.html").read_text())) == 50


# --- command and server ------------------------------------------------------------------------

def test_cmd_site_builds_into_the_configured_folder(write_config, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config('[storage]\nurl = "sqlite:///bw.db"\n[site]\nout = "public"\n'
                       'base_url = "https://s.example.org"\nlanguages = ["ru", "en"]\n')
    from blockwatch.storage import open_database

    db = open_database(cfg.database_url)
    try:
        populate(db, datetime.now(UTC))
    finally:
        db.close()
    assert cmd_site(cfg, Namespace(out=None)) == 0
    printed = capsys.readouterr().out
    assert str(tmp_path / "public") in printed and "pages" in printed and "KiB" in printed
    root = (tmp_path / "public" / "index.html").read_text(encoding="utf-8")
    assert '<html lang="ru">' in root
    assert (tmp_path / "public" / "status.json").is_file()
    assert (tmp_path / "public" / "feed.xml").read_text().count("tag:s.example.org,2026:") > 3
    other = tmp_path / "elsewhere"
    assert cmd_site(cfg, Namespace(out=str(other))) == 0
    assert (other / "en" / "index.html").is_file()
    db = open_database(cfg.database_url)
    try:
        report = build_site(cfg, db, other)
        # 21 files, and per language 5 state and 4 network filter pages
        assert report.files == 21 + 2 * 9 and report.written < report.files  # unchanged stay
    finally:
        db.close()


def _get(url: str) -> tuple[int, bytes, Message]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read(), r.headers
    except urllib.error.HTTPError as e:
        return e.code, b"", e.headers


def test_server_serves_only_the_site_folder(built, tmp_path: Path,  # type: ignore[no-untyped-def]
                                            caplog: pytest.LogCaptureFixture) -> None:
    out, _w, _db = built
    (tmp_path / "secret.txt").write_text("secret")
    (out / "en" / "link").symlink_to(tmp_path / "secret.txt")
    caplog.set_level(logging.INFO, logger="blockwatch.site.serve")
    server, thread = serve_in_thread(out)
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        status, body, headers = _get(base + "/")
        assert status == 200 and b"Ratel.kz" in body
        assert headers["Content-Type"] == "text/html; charset=utf-8"
        assert "default-src 'none'" in headers["Content-Security-Policy"]
        assert _get(base + "/en/")[0] == 200
        assert _get(base + "/status.json")[2]["Content-Type"] == "application/json"
        assert _get(base + "/en/badge/ratel-kz.svg")[2]["Content-Type"] == "image/svg+xml"
        for bad in ("/../secret.txt", "/%2e%2e/secret.txt", "/en/..%2f..%2fsecret.txt",
                    "/en/link", "/.blockwatch-site", "/en/t/", "/nope.html"):
            assert _get(base + bad)[0] == 404, bad
    finally:
        (out / "en" / "link").unlink()
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert ("GET", "/", 200) in server.request_log  # type: ignore[attr-defined]
    assert "127.0.0.1" not in caplog.text
