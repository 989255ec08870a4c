"""Polling into the database (SQLite and PostgreSQL): entries stored once, conditional GET,
backoff, incidents, cases with blocking events, and the two commands' output."""

from __future__ import annotations

import argparse
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import respx
from sqlalchemy import func, select

from blockwatch.config import Config
from blockwatch.feeds import store
from blockwatch.feeds.commands import cmd_feeds, cmd_incidents, link_cases, poll_feeds
from blockwatch.feeds.correlate import EventRef, IncidentRef, match_cases
from blockwatch.storage import Database, repo
from blockwatch.storage.models import Case, Event, Feed, FeedEntry, Incident
from blockwatch.targets import load_targets

FIXTURES = Path(__file__).parent / "fixtures" / "feeds"
ADIL = "https://feeds.example.org/adilsoz/feed/"
HRW = "https://feeds.example.org/hrw/kazakhstan.atom"
KK = "https://feeds.example.org/kk/rss"
NOW = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)

CONFIG = f"""
[storage]
url = "sqlite:///bw.db"
[probe]
targets = ["targets.toml"]
[feeds]
interval = "30m"
[[feeds.source]]
name = "Adil Soz"
url = "{ADIL}"
language = "ru"
[[feeds.source]]
name = "HRW"
url = "{HRW}"
[[feeds.source]]
name = "KK news"
url = "{KK}"
language = "kk"
interval = "2h"
[[feeds.person]]
name = "Aigul Saparova"
aliases = ["Айгуль Сапарова"]
"""


@pytest.fixture
def cfg(write_config, tmp_path: Path) -> Config:  # type: ignore[no-untyped-def]
    shutil.copy(FIXTURES / "targets.toml", tmp_path / "targets.toml")
    return write_config(CONFIG)


def body(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def mock_feeds(router: respx.MockRouter, *, adil: httpx.Response | None = None) -> dict[str, respx.Route]:
    return {
        "adil": router.get(ADIL).mock(return_value=adil or httpx.Response(
            200, content=body("rss20_adilsoz.xml"), headers={"ETag": '"v1"'})),
        "hrw": router.get(HRW).mock(return_value=httpx.Response(
            200, content=body("atom_hrw.xml"), headers={"Last-Modified": "Tue, 10 Nov 2026 08:00:00 GMT"})),
        "kk": router.get(KK).mock(return_value=httpx.Response(200, content=body("rdf_kk.rdf"))),
    }


def count(db: Database, model: type) -> int:
    with db.read() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


async def test_poll_stores_entries_once_and_uses_conditional_get(cfg: Config, any_db: Database) -> None:
    with respx.mock as router:
        routes = mock_feeds(router)
        s1 = await poll_feeds(cfg, any_db, now=NOW)
    by = {f.feed: f for f in s1.feeds}
    assert {f.status for f in s1.feeds} == {"ok"}
    assert by["Adil Soz"].new_entries == 6  # 7 items: one repeats a guid
    assert by["HRW"].new_entries == 3 and by["KK news"].new_entries == 2
    # incidents: Ratel detention, Vlast blocking, Uralskaya Nedelya fine (Adil Soz); Vlast.kz
    # detention, Azattyq fine (HRW); Azattyq detention (KK). Not: "Власти объявили..."
    assert [by[n].new_incidents for n in ("Adil Soz", "HRW", "KK news")] == [3, 2, 1]
    assert count(any_db, FeedEntry) == 11 and count(any_db, Incident) == 6
    assert routes["adil"].calls[0].request.headers.get("if-none-match") is None

    # the same documents again (servers that ignore validators): nothing new
    with respx.mock as router:
        routes = mock_feeds(router)
        s2 = await poll_feeds(cfg, any_db, now=NOW + timedelta(hours=3))
    assert [f.new_entries for f in s2.feeds] == [0, 0, 0]
    assert count(any_db, FeedEntry) == 11 and count(any_db, Incident) == 6
    assert routes["adil"].calls[0].request.headers["if-none-match"] == '"v1"'
    assert routes["hrw"].calls[0].request.headers["if-modified-since"] == "Tue, 10 Nov 2026 08:00:00 GMT"

    # a 304 is "not modified", not a failure
    with respx.mock as router:
        mock_feeds(router, adil=httpx.Response(304))
        s3 = await poll_feeds(cfg, any_db, force=True, now=NOW + timedelta(hours=6))
    assert {f.feed: f.status for f in s3.feeds}["Adil Soz"] == "not_modified"
    with any_db.read() as s:
        feed = s.scalar(select(Feed).where(Feed.name == "Adil Soz"))
        assert feed is not None and feed.etag == '"v1"' and feed.consecutive_failures == 0
        assert feed.last_success_at == NOW + timedelta(hours=6)


async def test_incident_fields(cfg: Config, any_db: Database) -> None:
    with respx.mock as router:
        mock_feeds(router)
        await poll_feeds(cfg, any_db, now=NOW)
    with any_db.read() as s:
        rows = {r.title: r for r in store.list_incidents(s)}
    r = rows["В Алматы задержан журналист Ratel.kz"]
    assert r.outlets == ("Ratel.kz",) and r.types == ("detention",) and r.feed == "Adil Soz"
    assert r.published == r.occurred_at == datetime(2026, 11, 10, 9, 5, tzinfo=UTC)
    assert r.first_seen == NOW
    vlast = rows["Сайт издания «Власть» заблокирован на территории Казахстана"]
    assert vlast.outlets == ("Vlast.kz",) and vlast.types == ("blocking",)
    assert "Власти объявили о новых правилах аккредитации" not in rows
    kk = rows["Азаттық радиосының тілшісі Астанада ұсталды"]
    assert kk.outlets == ("Azattyq",) and kk.types == ("detention",)


async def test_undated_entry_is_dated_when_first_seen(cfg: Config, any_db: Database) -> None:
    doc = (b'<rss version="2.0"><channel><item><guid>u1</guid>'
           b"<title>\xd0\x96\xd1\x83\xd1\x80\xd0\xbd\xd0\xb0\xd0\xbb\xd0\xb8\xd1\x81\xd1\x82 Ratel.kz "
           b"detained</title></item><item><guid>u2</guid><title>Ratel.kz editor detained</title>"
           b"<pubDate>Wed, 01 Jan 2098 00:00:00 GMT</pubDate></item></channel></rss>")
    with respx.mock as router:
        mock_feeds(router, adil=httpx.Response(200, content=doc))
        await poll_feeds(cfg, any_db, now=NOW)
    with any_db.read() as s:
        rows = {r.title: r for r in store.list_incidents(s) if r.feed == "Adil Soz"}
    assert rows["Журналист Ratel.kz detained"].published is None
    assert rows["Журналист Ratel.kz detained"].occurred_at == NOW
    # a date far in the future is not trusted for the incident's time
    assert rows["Ratel.kz editor detained"].occurred_at == NOW


async def test_backoff_after_failures(cfg: Config, any_db: Database) -> None:
    t = NOW
    with respx.mock as router:
        routes = mock_feeds(router, adil=httpx.Response(503))
        s1 = await poll_feeds(cfg, any_db, now=t)
        adil = {f.feed: f for f in s1.feeds}["Adil Soz"]
        assert adil.status == "failed" and adil.error == "HTTP 503 Service Unavailable"
        assert adil.next_attempt_at == t + timedelta(hours=1)
        assert {f.status for f in s1.feeds if f.feed != "Adil Soz"} == {"ok"}
        assert str(s1) == ("3 feeds (1 failed, 2 ok); 5 new entries, 3 new incidents, 0 new cases; "
                           "failed: Adil Soz: HTTP 503 Service Unavailable")

        # 31 minutes later: the healthy feeds are due again, the failing one is backing off
        s2 = await poll_feeds(cfg, any_db, now=t + timedelta(minutes=31))
        st = {f.feed: f for f in s2.feeds}
        assert st["Adil Soz"].status == "skipped"
        assert "backing off after 1 failures" in (st["Adil Soz"].note or "")
        assert st["HRW"].status == "ok"
        assert st["KK news"].status == "skipped"  # its own interval is 2h
        assert routes["adil"].call_count == 1

        s3 = await poll_feeds(cfg, any_db, now=t + timedelta(hours=1))
        assert {f.feed: f for f in s3.feeds}["Adil Soz"].next_attempt_at == t + timedelta(hours=3)
        assert routes["adil"].call_count == 2
    with any_db.read() as s:
        feed = s.scalar(select(Feed).where(Feed.name == "Adil Soz"))
        assert feed is not None and feed.consecutive_failures == 2
        assert feed.last_error == "HTTP 503 Service Unavailable"

    # recovery resets the count
    with respx.mock as router:
        mock_feeds(router)
        s4 = await poll_feeds(cfg, any_db, now=t + timedelta(hours=3))
    assert {f.feed: f for f in s4.feeds}["Adil Soz"].status == "ok"
    with any_db.read() as s:
        feed = s.scalar(select(Feed).where(Feed.name == "Adil Soz"))
        assert feed is not None and feed.consecutive_failures == 0 and feed.last_error is None


async def test_html_page_is_a_failure_not_an_empty_feed(cfg: Config, any_db: Database) -> None:
    with respx.mock as router:
        mock_feeds(router, adil=httpx.Response(
            200, content=b"<html><body><h1>Access denied</h1></body></html>",
            headers={"Content-Type": "text/html; charset=utf-8"}))
        s = await poll_feeds(cfg, any_db, now=NOW)
    adil = {f.feed: f for f in s.feeds}["Adil Soz"]
    assert adil.status == "failed" and adil.error == "not a feed (text/html, 48 bytes)"


# --- correlation ---------------------------------------------------------------------------------

def test_match_cases_pure() -> None:
    w = timedelta(hours=72)
    inc = [IncidentRef(1, ("Ratel.kz",), NOW), IncidentRef(2, ("Vlast.kz", "Ratel.kz"), NOW),
           IncidentRef(3, (), NOW)]
    ev = [EventRef(10, "Ratel.kz", "dns", NOW - timedelta(hours=72)),  # exactly at the edge
          EventRef(11, "Ratel.kz", "tls", NOW + timedelta(hours=72, seconds=1)),  # just outside
          EventRef(12, "Ratel.kz", "ok", NOW),  # not blocking
          EventRef(13, "Ratel.kz", "down", NOW),  # not censorship
          EventRef(14, "Vlast.kz", "http_blockpage", NOW + timedelta(hours=5)),
          EventRef(15, "KazTAG", "dns", NOW)]
    assert match_cases(inc, ev, w) == [(1, 10), (2, 10), (2, 14)]


def _event(s, target_id: int, vantage_id: int, state: str, started: datetime) -> int:  # type: ignore[no-untyped-def]
    e = Event(target_id=target_id, vantage_id=vantage_id, url="https://ratel.kz/", state=state,
              previous="ok", confirmed=False, reason="", started_at=started, detected_at=started)
    s.add(e)
    s.flush()
    return e.id


async def test_cases_link_incidents_and_blocking_events(cfg: Config, any_db: Database) -> None:
    with any_db.write() as s:
        ids = repo.sync_targets(s, load_targets(cfg.target_files))
        v = repo.ensure_vantage(s, "almaty-1", "agent", "KZ")
        near = _event(s, ids["Ratel.kz"], v, "dns", datetime(2026, 11, 9, 20, 0, tzinfo=UTC))
        _event(s, ids["Ratel.kz"], v, "ok", datetime(2026, 11, 10, 0, 0, tzinfo=UTC))
        _event(s, ids["Ratel.kz"], v, "tls", datetime(2026, 10, 1, tzinfo=UTC))  # weeks before
        _event(s, ids["KazTAG"], v, "dns", datetime(2026, 11, 10, tzinfo=UTC))  # another outlet
    with respx.mock as router:
        mock_feeds(router)
        summary = await poll_feeds(cfg, any_db, now=NOW)
    assert len(summary.new_cases) == 1
    assert {f.feed: f.new_cases for f in summary.feeds} == {"Adil Soz": 1, "HRW": 0, "KK news": 0}
    # an event found later (a probe round) is linked by link_cases, once
    with any_db.write() as s:
        late = _event(s, ids["Vlast.kz"], v, "http_blockpage", datetime(2026, 11, 11, tzinfo=UTC))
    # both Vlast incidents (Nov 9 08:30 and Nov 10 01:00) are within 72 h of it
    assert len(link_cases(cfg, any_db, now=NOW)) == 2
    assert link_cases(cfg, any_db, now=NOW) == []  # idempotent
    assert count(any_db, Case) == 3
    with any_db.read() as s:
        rows = {r.title: r for r in store.list_incidents(s)}
    ratel = rows["В Алматы задержан журналист Ratel.kz"]
    assert [(e.id, e.target, e.vantage, e.state) for e in ratel.linked_events] == [
        (near, "Ratel.kz", "almaty-1", "dns")]
    vlast = rows["Сайт издания «Власть» заблокирован на территории Казахстана"]
    assert [e.id for e in vlast.linked_events] == [late]


# --- commands ------------------------------------------------------------------------------------

def test_cmd_feeds_and_incidents_json(cfg: Config, capsys: pytest.CaptureFixture[str]) -> None:
    with respx.mock as router:
        mock_feeds(router, adil=httpx.Response(500))
        assert cmd_feeds(cfg, argparse.Namespace(json=True)) == 0  # a failed feed is a result
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["feed"] for x in lines] == ["Adil Soz", "HRW", "KK news"]
    assert lines[0]["status"] == "failed" and lines[0]["error"] == "HTTP 500 Internal Server Error"
    assert lines[1] | {"next_attempt_at": None} == {
        "feed": "HRW", "kind": "feed", "url": HRW, "status": "ok", "consecutive_failures": 0,
        "new_entries": 3, "new_incidents": 2, "new_cases": 0, "entries": 3, "error": None,
        "note": None, "next_attempt_at": None}

    assert cmd_incidents(cfg, argparse.Namespace(json=True)) == 0
    out = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert len(out) == 3
    first = out[0]
    assert set(first) == {"id", "entry", "title", "url", "published", "first_seen", "occurred_at",
                          "feed", "feed_kind", "query", "publisher_url", "country", "status",
                          "evidence", "outlets", "people", "types", "linked_events", "review"}
    assert first["review"] is None and isinstance(first["entry"], int)
    assert [x["title"] for x in out] == [
        "Азаттық радиосының тілшісі Астанада ұсталды",  # 05:15Z
        "Kazakhstan: Journalist Detained After Reporting on Protests",  # 01:00Z
        "Azattyq Correspondent Fined Over Coverage of Rally"]
    assert out[1]["published"] == "2026-11-10T01:00:00Z" and out[1]["outlets"] == ["Vlast.kz"]
    assert out[1]["types"] == ["detention"] and out[1]["linked_events"] == []
    assert out[1]["url"] == "https://feeds.example.org/hrw/news/2026/11/10/kazakhstan-journalist-detained"


def test_cmd_feeds_table(cfg: Config, capsys: pytest.CaptureFixture[str]) -> None:
    with respx.mock as router:
        mock_feeds(router, adil=httpx.Response(200, content=body("illformed.xml")))
        assert cmd_feeds(cfg, argparse.Namespace(json=False)) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["FEED", "STATUS", "NEW", "INCIDENTS", "CASES", "NOTE"]
    assert "ill-formed, 2 entries recovered" in out
    assert "0 of 3 feeds failed" in out
    assert cmd_incidents(cfg, argparse.Namespace(json=False)) == 0
    table = capsys.readouterr().out
    assert "KazTAG journalist detained in Shymkent" in table and "detention,raid" in table


def test_no_feeds_configured(write_config, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    cfg = write_config('[storage]\nurl = "sqlite:///bw.db"\n')
    assert cmd_feeds(cfg, argparse.Namespace(json=True)) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and "no feeds configured" in captured.err
    assert cmd_incidents(cfg, argparse.Namespace(json=False)) == 0
    assert "no incidents yet" in capsys.readouterr().err
