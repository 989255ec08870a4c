"""Test what ships: config/blockwatch.toml as it is, with only the addresses swapped (feeds to
respx fixtures, the database to a test database). At least eight feeds and a GDELT search are
on; a poll stores entries and incidents from every kind (plain feeds, the RFE/RL discovery, the
searches); a dead default feed is recorded and reported by `feeds`, `health` and the digest
without stopping the others. Also RFE/RL discovery on its own and the redirect checks."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import respx
from sqlalchemy import select

from blockwatch.config import Config, FeedSource
from blockwatch.config import load as load_config
from blockwatch.feeds import rferl, store
from blockwatch.feeds.commands import cmd_incidents, feed_specs, poll_feeds
from blockwatch.feeds.fetch import fetch_feed, make_client
from blockwatch.feeds.search import Pacer
from blockwatch.storage import Database, open_database
from blockwatch.storage.models import Feed, FeedEntry, Incident

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures" / "feeds"
NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s


def shipped(db_url: str, swap: dict[str, str]) -> Config:
    """config/blockwatch.toml with its storage URL and the named addresses swapped."""
    cfg = load_config(ROOT / "config" / "blockwatch.toml")
    s = cfg.settings
    sources = []
    for src in s.feeds.source:
        if src.name in swap:
            key = "site" if src.kind == "rferl" else "url"
            src = src.model_copy(update={key: swap[src.name]})
        sources.append(src)
    searches = [se.model_copy(update={"api_url": swap[se.name]}) if se.name in swap else se
                for se in s.feeds.search]
    feeds = s.feeds.model_copy(update={"source": sources, "search": searches})
    storage = s.storage.model_copy(update={"url": db_url})
    return Config(s.model_copy(update={"feeds": feeds, "storage": storage}), cfg.path, cfg.base_dir)


def test_the_shipped_config_turns_feeds_on() -> None:
    cfg = load_config(ROOT / "config" / "blockwatch.toml")
    fc = cfg.settings.feeds
    on = [s for s in fc.source if s.enabled]
    assert len(on) >= 8
    assert {"CPJ", "Human Rights Watch", "ARTICLE 19", "Vlast.kz", "RFE/RL"} <= {s.name for s in on}
    assert any(s.kind == "rferl" for s in on)
    assert any(s.kind == "gdelt" and s.enabled for s in fc.search)
    assert cfg.people_files == [ROOT / "probes" / "people.toml"]
    # nothing in the shipped file points at a test or lab address
    assert all("example" not in s.address and "127.0.0." not in s.address for s in on)


async def test_a_poll_of_the_shipped_feeds_end_to_end(any_db_url: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    base = "https://feeds.example.org"
    gdelt_api = "https://gdelt.example.org/api/v2/doc/doc"
    gnews_api = "https://gnews.example.org/rss/search"
    cfg0 = load_config(ROOT / "config" / "blockwatch.toml")
    swap = {s.name: f"{base}/{i}/feed" for i, s in enumerate(cfg0.settings.feeds.source)
            if s.enabled and s.kind == "feed"}
    swap["Azattyq (Russian)"] = "https://azattyq-ru.example.org"
    swap["Azattyq (Kazakh)"] = "https://azattyq-kk.example.org"
    swap["GDELT"] = gdelt_api
    swap["Google News (KZ, ru)"] = gnews_api
    cfg = shipped(any_db_url, swap)
    db = open_database(cfg.database_url)
    clock = Clock()
    pacers = {"gdelt.example.org": Pacer(5.0, clock=clock.clock, sleep=clock.sleep),
              "gnews.example.org": Pacer(2.0, clock=clock.clock, sleep=clock.sleep)}
    dead = swap["Human Rights Watch"]
    try:
        with respx.mock(assert_all_called=False) as router:
            for url in swap.values():
                if url.startswith(base):
                    router.get(url).mock(return_value=httpx.Response(
                        200, content=fixture("rss20_adilsoz.xml")))
            router.get(dead).mock(return_value=httpx.Response(404))  # a default feed that died
            router.get("https://azattyq-ru.example.org/rssfeeds").mock(return_value=httpx.Response(
                200, content=fixture("rferl_rssfeeds.html"),
                headers={"Content-Type": "text/html; charset=utf-8"}))
            router.get("https://azattyq-ru.example.org/api/zrqiteuuir").mock(
                return_value=httpx.Response(200, content=fixture("rferl_section.rss")))
            router.get("https://azattyq-kk.example.org/rssfeeds").mock(return_value=httpx.Response(503))
            gd = router.get(url__startswith=gdelt_api).mock(
                return_value=httpx.Response(200, content=fixture("gdelt_artlist.rss")))
            gn = router.get(url__startswith=gnews_api).mock(
                return_value=httpx.Response(200, content=fixture("google_news_search.rss")))
            summary = await poll_feeds(cfg, db, force=True, now=NOW, pacers=pacers,
                                       resolve=_no_dns)
        by = {f.feed: f for f in summary.feeds}
        assert len(by) == len(feed_specs(cfg)) >= 10
        # the dead feed is a failure with its reason; everything else went on
        assert by["Human Rights Watch"].status == "failed"
        assert by["Human Rights Watch"].error == "HTTP 404 Not Found"
        assert by["Azattyq (Kazakh)"].status == "failed"
        assert "no earlier list" in (by["Azattyq (Kazakh)"].error or "")
        ok = [f for f in summary.feeds if f.status == "ok"]
        assert len(ok) == len(summary.feeds) - 2
        assert by["Azattyq (Russian)"].new_incidents == 1
        assert by["GDELT"].new_entries == 3 and by["GDELT"].new_incidents == 2
        assert by["Google News (KZ, ru)"].new_incidents == 2
        # all 25 people and the target names, in batches, paced
        assert gd.call_count >= 10 and gn.call_count >= 5
        assert clock.sleeps and min(clock.sleeps) > 0
        # GDELT queries are at most one per 5 s on the injected clock
        assert clock.now >= 5 * (gd.call_count - 1)

        with db.read() as s:
            hrw = s.scalars(select(Feed).where(Feed.name == "Human Rights Watch")).one()
            assert (hrw.consecutive_failures, hrw.last_error) == (1, "HTTP 404 Not Found")
            kinds = dict(s.execute(select(Feed.name, Feed.kind)).all())
            assert kinds["GDELT"] == "gdelt" and kinds["Azattyq (Russian)"] == "rferl"
            q = s.execute(select(FeedEntry.query, FeedEntry.source_url)
                          .join(Feed, Feed.id == FeedEntry.feed_id)
                          .where(Feed.name == "Google News (KZ, ru)")).all()
            assert all(qq and qq.endswith("when:7d") for qq, _ in q)
            assert {u for _, u in q} == {"https://vlast.kz", "https://orda.kz"}
            people = {p for (ps,) in s.execute(select(Incident.people)) for p in ps}
            assert "Gulnara Bazhkenova" in people  # from the shipped people list

        # incidents --json says which feed and which query; --country filters when reading
        assert cmd_incidents(cfg, argparse.Namespace(json=True, limit=None, country=None)) == 0
        rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
        from_gdelt = [r for r in rows if r["feed"] == "GDELT"]
        assert from_gdelt and all(r["feed_kind"] == "gdelt" and r["query"] for r in from_gdelt)
        assert cmd_incidents(cfg, argparse.Namespace(json=True, limit=None, country="KZ")) == 0
        kz = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
        assert kz and all(r["country"] == "KZ" or r["outlets"] for r in kz)

        # health shows the failing feed without calling the whole service unhealthy for it
        from blockwatch.health import check_health

        h = check_health(cfg, db, NOW + timedelta(minutes=1))
        failing = {f["feed"]: f for f in h.feeds if f["status"] == "failing"}
        assert {f["status"] for f in h.feeds if f["feed"] not in failing} == {"ok"}
        assert len(h.feeds) == len(feed_specs(cfg))
        assert set(failing) == {"Human Rights Watch", "Azattyq (Kazakh)"}
        assert failing["Human Rights Watch"]["error"] == "HTTP 404 Not Found"
        assert not any("Human Rights Watch" in p for p in h.problems)

        # and the digest lists it
        from blockwatch.alerts.digest import collect

        with db.read() as s:
            data = collect(s, cfg, NOW - timedelta(days=1), NOW + timedelta(hours=1))
        assert {f.name for f in data.feeds} == {"Human Rights Watch", "Azattyq (Kazakh)"}
    finally:
        db.close()


async def _no_dns(host: str) -> list[str]:
    raise AssertionError(f"no DNS lookups in tests ({host})")


# --- RFE/RL discovery ------------------------------------------------------------------------------

def test_rssfeeds_page_links_are_parsed() -> None:
    feeds = rferl.parse_rssfeeds(fixture("rferl_rssfeeds.html"), "https://rus.azattyq.org/rssfeeds")
    assert [(f.title, f.url) for f in feeds] == [
        ("Все материалы", "https://rus.azattyq.org/api/zrqiteuuir"),
        ("Главные новости", "https://rus.azattyq.org/api/zmoqpe_poq"),
        ("Казахстан", "https://rus.azattyq.org/api/zgroqe_uoq"),
        ("Политика", "https://rus.azattyq.org/api/z_roperuom"),
        ("Центральная Азия", "https://rus.azattyq.org/api/zjrooeyuoo"),
        ("Мир & регион", "https://rus.azattyq.org/api/zrqomeuuo_"),
    ]  # other hosts' /api/, podcasts, javascript: links are not feeds of this site


def test_sections_are_chosen_by_title() -> None:
    feeds = rferl.parse_rssfeeds(fixture("rferl_rssfeeds.html"), "https://rus.azattyq.org/rssfeeds")
    main, missing = rferl.choose(feeds, [])
    assert [f.title for f in main] == ["Все материалы"] and missing == []
    chosen, missing = rferl.choose(feeds, ["казахстан", "Азия", "Спорт"])
    assert [f.title for f in chosen] == ["Казахстан", "Центральная Азия"]
    assert missing == ["Спорт"]


async def test_discovered_feeds_are_cached_and_used_when_the_page_fails(any_db: Database,
                                                                       write_config) -> None:  # type: ignore[no-untyped-def]
    site = "https://azattyq.example.org"
    cfg = write_config(f"""
[storage]
url = "sqlite:///unused.db"
[probe]
targets = ["{FIXTURES / 'targets.toml'}"]
[[feeds.source]]
name = "Azattyq"
kind = "rferl"
site = "{site}"
sections = ["Казахстан"]
language = "ru"
""")
    section = f"{site}/api/zgroqe_uoq"
    with respx.mock:
        respx.get(f"{site}/rssfeeds").mock(
            return_value=httpx.Response(200, content=fixture("rferl_rssfeeds.html")))
        respx.get(section).mock(return_value=httpx.Response(
            200, content=fixture("rferl_section.rss"), headers={"ETag": '"s1"'}))
        first = await poll_feeds(cfg, any_db, force=True, now=NOW)
    assert first.feeds[0].status == "ok" and first.feeds[0].new_entries == 2
    assert "feeds: Казахстан" in (first.feeds[0].note or "")
    with any_db.read() as s:
        feed_id = s.scalars(select(Feed.id)).one()
        cached, checked = store.load_discovered(s, feed_id)
    assert len(cached) == 5 and checked == NOW  # the absolute link names another host here

    # the page is down now: the last list is used, and the note says so
    later = NOW + timedelta(hours=1)
    with respx.mock:
        respx.get(f"{site}/rssfeeds").mock(return_value=httpx.Response(502))
        route = respx.get(section, headers={"If-None-Match": '"s1"'}).mock(
            return_value=httpx.Response(304))  # conditional GET of the discovered feed
        second = await poll_feeds(cfg, any_db, force=True, now=later)
    r = second.feeds[0]
    assert r.status == "ok" and route.called and r.new_entries == 0
    assert "HTTP 502 Bad Gateway; using the list of 2026-12-01T10:00:00Z" in (r.note or "")

    # a page without feed links is a failure only when nothing is cached
    with respx.mock:
        respx.get(f"{site}/rssfeeds").mock(
            return_value=httpx.Response(200, content=b"<html>maintenance</html>"))
        respx.get(section).mock(return_value=httpx.Response(200, content=fixture("rferl_section.rss")))
        third = await poll_feeds(cfg, any_db, force=True, now=later)
    assert third.feeds[0].status == "ok" and "no /api/ feed links" in (third.feeds[0].note or "")


def test_rferl_source_needs_a_site() -> None:
    with pytest.raises(ValueError, match="needs site"):
        FeedSource(name="x", kind="rferl")
    assert FeedSource(name="x", kind="rferl", site="https://www.rferl.org/").address == \
        "https://www.rferl.org/rssfeeds"


# --- redirect checks -----------------------------------------------------------------------------

def resolver(table: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    async def resolve(host: str) -> list[str]:
        return table[host]
    return resolve


@pytest.mark.parametrize("target, why", [
    ("http://127.0.0.1:8080/admin", "redirect to an internal address refused: 127.0.0.1"),
    ("http://169.254.169.254/latest/meta-data/",
     "redirect to an internal address refused: 169.254.169.254"),
    ("http://[::1]/", "redirect to an internal address refused: ::1"),
    ("http://[::ffff:10.0.0.5]/", "redirect to an internal address refused: ::ffff:10.0.0.5"),
    ("http://localhost/", "redirect to an internal address refused: localhost"),
    # carrier-grade NAT (a cloud metadata service lives there) and 6to4 around link-local
    ("http://100.100.100.200/", "redirect to an internal address refused: 100.100.100.200"),
    ("http://[2002:a9fe:a9fe::]/", "redirect to an internal address refused: 2002:a9fe:a9fe::"),
    ("http://intranet.example.org/",
     "redirect to an internal address refused: intranet.example.org (192.168.1.10)"),
    ("file:///etc/passwd", "redirect to a non-web address refused: file:///etc/passwd"),
])
async def test_public_feeds_cannot_redirect_inside(target: str, why: str) -> None:
    url = "https://feeds.example.org/feed/"
    c = make_client(concurrency=1, timeout=5)
    try:
        with respx.mock:
            respx.get(url).mock(return_value=httpx.Response(302, headers={"Location": target}))
            inner = respx.get(url__startswith=target.split("/")[0] + "//" + target.split("/")[2]).mock(
                return_value=httpx.Response(200, content=b"<rss/>"))
            r = await fetch_feed(c, url, resolve=resolver({
                "feeds.example.org": ["93.184.215.14"], "intranet.example.org": ["192.168.1.10"]}))
        assert (r.status, r.error) == ("error", why)
        assert not inner.called
    finally:
        await c.aclose()


async def test_redirects_to_public_hosts_and_within_a_private_feed_are_followed() -> None:
    c = make_client(concurrency=1, timeout=5)
    try:
        with respx.mock:
            respx.get("https://feeds.example.org/old").mock(
                return_value=httpx.Response(301, headers={"Location": "https://cdn.example.net/feed"}))
            respx.get("https://cdn.example.net/feed").mock(
                return_value=httpx.Response(200, content=b"<rss/>"))
            r = await fetch_feed(c, "https://feeds.example.org/old",
                                 resolve=resolver({"cdn.example.net": ["151.101.1.1"]}))
            assert (r.status, r.content) == ("ok", b"<rss/>")
            # a feed configured on a loopback address (a test feed, an intranet) may redirect
            # within the internal network
            respx.get("http://127.0.0.5:8081/feed").mock(
                return_value=httpx.Response(302, headers={"Location": "http://127.0.0.6:8082/feed.xml"}))
            respx.get("http://127.0.0.6:8082/feed.xml").mock(
                return_value=httpx.Response(200, content=b"<rss/>"))
            r = await fetch_feed(c, "http://127.0.0.5:8081/feed", resolve=_no_dns)
            assert (r.status, r.content) == ("ok", b"<rss/>")
    finally:
        await c.aclose()


async def test_too_many_redirects() -> None:
    c = make_client(concurrency=1, timeout=5)
    try:
        with respx.mock:
            respx.get("https://feeds.example.org/loop").mock(
                return_value=httpx.Response(302, headers={"Location": "/loop"}))
            r = await fetch_feed(c, "https://feeds.example.org/loop", resolve=_no_dns)
        assert (r.status, r.error) == ("error", "too many redirects")
    finally:
        await c.aclose()


# --- schema ------------------------------------------------------------------------------------

def test_upgrade_from_0002_keeps_feeds_and_adds_the_new_columns(any_db_url: str) -> None:
    from alembic import command
    from sqlalchemy import inspect, text

    from blockwatch.storage.db import _alembic_config, make_engine

    engine = make_engine(any_db_url)
    command.upgrade(_alembic_config(engine), "0002")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO feeds (name, url, language, consecutive_failures) "
                          "VALUES ('CPJ', 'https://cpj.org/feed/', 'en', 2)"))
    engine.dispose()
    db = open_database(any_db_url)
    try:
        cols = {t: {c["name"] for c in inspect(db.engine).get_columns(t)}
                for t in ("feeds", "feed_entries", "incidents")}
        assert "kind" in cols["feeds"]
        assert {"query", "source_url"} <= cols["feed_entries"]
        assert {"country", "status", "evidence"} <= cols["incidents"]
        with db.read() as s:
            row = s.scalars(select(Feed)).one()
            assert (row.name, row.kind, row.consecutive_failures) == ("CPJ", "feed", 2)
        command.downgrade(_alembic_config(db.engine), "0002")  # and back, on both databases
        assert "kind" not in {c["name"] for c in inspect(db.engine).get_columns("feeds")}
    finally:
        db.close()
