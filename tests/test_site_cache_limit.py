"""The daemon's site cache under a memory limit (`[site] cache_limit`): whole outlets evicted,
the least recently rendered first, every build still byte for byte a cold full build on SQLite
and PostgreSQL; parts no page uses any more dropped at each build; the setting read, checked
and passed on by the daemon."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, text, update

from blockwatch import config as C
from blockwatch.site import model as model_mod
from blockwatch.site.build import build_site_from_db
from blockwatch.site.cache import DEFAULT_LIMIT, SiteCache
from blockwatch.storage import Database
from blockwatch.storage.models import UrlState
from test_site_build import INFO, NOW, SCHED, _record, populate
from test_site_incremental import _same_as_full


def _need(db: Database, tmp_path: Path) -> int:
    """What the cache holds of the first build with no limit."""
    cache = SiteCache(limit=None)
    build_site_from_db(db, tmp_path / "measure", INFO, now=NOW, schedule=SCHED, cache=cache)
    assert cache.size > 0
    return cache.size


@pytest.mark.parametrize("share", [0.0, 0.35, 0.7, 0.999])
def test_any_limit_gives_the_bytes_of_a_cold_build(any_db: Database, tmp_path: Path,
                                                   share: float) -> None:
    """Rounds of checks, a block, a hand fix of an older day, with a limit that keeps nothing,
    about a third, two thirds or all but a byte of what the cache would hold: outlets are
    evicted and rendered again from the database, and every build equals a cold full one."""
    w = populate(any_db)
    vlast = w.targets["Vlast.kz"]
    need = _need(any_db, tmp_path)
    limit = max(1, int(need * share))
    cache = SiteCache(limit=limit)
    out = tmp_path / "site"

    def build(at, name):  # type: ignore[no-untyped-def]
        r = _same_as_full(any_db, out, tmp_path, at, name, cache=cache)
        assert cache.size <= limit, name
        if r.rendered == r.outlets:  # not all of them fit
            assert len(cache.memo.outlets) < r.outlets, name
        return r

    build(NOW, "first")
    at = NOW
    for n in range(3):
        at += timedelta(minutes=15)
        with any_db.write() as s:
            s.execute(update(UrlState).values(last_seen_at=at))
        r = build(at, f"round {n}")
        assert r.rendered == r.outlets
    at += timedelta(minutes=15)
    with any_db.write() as s:
        _record(s, vlast, w.vantages["vps"], "https://vlast.kz/", at, "down", "timed out")
        _record(s, vlast, w.vantages["vps"], "https://vlast.kz/", at + timedelta(seconds=1),
                "down", "timed out")
    build(at + timedelta(seconds=2), "vlast down")
    with any_db.write() as s:
        s.execute(text("UPDATE daily_rollups SET worst = 'dns', minutes_affected = 600 "
                       "WHERE target_id = :t AND day = :d"),
                  {"t": vlast, "d": NOW.date() - timedelta(days=33)})
    r = build(at + timedelta(seconds=3), "hand fix")
    assert r.rendered >= 1
    if share:
        assert cache.memo.evicted > 0  # what did not fit went, and came back when rendered


def test_the_outlets_kept_are_the_last_rendered_and_stay(db: Database, tmp_path: Path) -> None:
    """Room for about two of three outlets: builds that render every outlet keep the same ones
    (no churn: the one that does not fit is the one let in last); a build that renders only
    the third makes room for it by evicting one the build did not render."""
    w = populate(db)
    need = _need(db, tmp_path)
    cache = SiteCache(limit=int(need * 0.7))
    out = tmp_path / "site"
    build_site_from_db(db, out, INFO, now=NOW, schedule=SCHED, cache=cache)
    kept = set(cache.memo.outlets)
    assert 0 < len(kept) < 3
    at = NOW
    for _ in range(3):
        at += timedelta(minutes=15)
        with db.write() as s:
            s.execute(update(UrlState).values(last_seen_at=at))
        r = build_site_from_db(db, out, INFO, now=at, schedule=SCHED, cache=cache)
        assert r.rendered == 3 and set(cache.memo.outlets) == kept
    urls = {"Ratel.kz": "https://ratel.kz/", "Vlast.kz": "https://vlast.kz/",
            "Azattyq": "https://rus.azattyq.org/"}
    name, left_out = next((n, t) for n, t in w.targets.items() if t not in kept)
    url = urls[name]
    at += timedelta(minutes=1)
    with db.write() as s:
        _record(s, left_out, w.vantages["vps"], url, at, "ok")
    r = build_site_from_db(db, out, INFO, now=at, schedule=SCHED, cache=cache)
    assert r.rendered == 1
    assert left_out in cache.memo.outlets and cache.size <= cache.limit  # type: ignore[operator]
    assert set(cache.memo.outlets) != kept


def _page_ids(out: Path, slug: str, pattern: str) -> dict[str, set[str]]:
    return {lang: set(re.findall(pattern, (out / lang / "t" / f"{slug}.html").read_text()))
            for lang in INFO.languages}


def test_parts_no_page_uses_are_dropped(any_db: Database, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A timeline entry of an event that fell off the outlet's timeline (its newest events
    only) and the card of a network that no longer measures the outlet leave the cache at the
    build that stops showing them, not at midnight."""
    monkeypatch.setattr(model_mod, "MAX_EVENTS_PER_TARGET", 2)
    w = populate(any_db)
    vlast, azattyq = w.targets["Vlast.kz"], w.targets["Azattyq"]
    cache = SiteCache(limit=None)
    out = tmp_path / "site"

    def kept(kind: str, tid: int) -> dict[str, set[str]]:
        got: dict[str, set[str]] = {lang: set() for lang in INFO.languages}
        for k, v in cache.memo.items():
            if k[0] == kind == "event" and v[0].target_id == tid:
                got[k[-1]].add(f"event-{v[0].id}")
            elif k[0] == kind == "card" and k[1] == tid:
                got[k[-1]].add(k[2])
        return got

    _same_as_full(any_db, out, tmp_path, NOW, "first", cache=cache)
    slug = {tid: model_mod.slugify(name) for name, tid in w.targets.items()}
    before = _page_ids(out, slug[vlast], r'<li id="(event-\d+)">')
    assert kept("event", vlast) == before and len(before["en"]) == 2

    at = NOW + timedelta(minutes=5)
    with any_db.write() as s:  # a new event: the oldest of the two leaves the timeline
        _record(s, vlast, w.vantages["vps"], "https://vlast.kz/", at, "down", "timed out")
        _record(s, vlast, w.vantages["vps"], "https://vlast.kz/", at + timedelta(seconds=1),
                "down", "timed out")
    _same_as_full(any_db, out, tmp_path, at + timedelta(seconds=2), "new event", cache=cache)
    after = _page_ids(out, slug[vlast], r'<li id="(event-\d+)">')
    assert after != before and len(after["en"]) == 2
    assert kept("event", vlast) == after

    cards = _page_ids(out, slug[azattyq], r'<li id="(n\d+)">')
    assert kept("card", azattyq) == cards and len(cards["en"]) >= 2
    with any_db.write() as s:  # one network no longer measures Azattyq
        s.execute(delete(UrlState).where(UrlState.target_id == azattyq,
                                         UrlState.vantage_id == w.vantages["vps"]))
    _same_as_full(any_db, out, tmp_path, at + timedelta(seconds=3), "card gone", cache=cache)
    fewer = _page_ids(out, slug[azattyq], r'<li id="(n\d+)">')
    assert len(fewer["en"]) == len(cards["en"]) - 1
    assert kept("card", azattyq) == fewer


def test_a_build_that_fails_halfway_leaves_a_usable_cache(db: Database, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A build that raises while rendering (after some parts went in and some outlets were
    evicted) never ends its bookkeeping: the next build starts it afresh and equals a cold one."""
    from blockwatch.site import build as build_mod

    populate(db)
    cache = SiteCache(limit=int(_need(db, tmp_path) * 0.5))
    out = tmp_path / "site"
    build_site_from_db(db, out, INFO, now=NOW, schedule=SCHED, cache=cache)
    real, calls = build_mod.render_target, []

    def fails(*a, **kw):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 4:
            raise RuntimeError("disk on fire")
        return real(*a, **kw)

    monkeypatch.setattr(build_mod, "render_target", fails)
    at = NOW + timedelta(minutes=15)
    with db.write() as s:
        s.execute(update(UrlState).values(last_seen_at=at))
    with pytest.raises(RuntimeError):
        build_site_from_db(db, out, INFO, now=at, schedule=SCHED, cache=cache)
    monkeypatch.setattr(build_mod, "render_target", real)
    r = _same_as_full(db, out, tmp_path, at, "after the failure", cache=cache)
    assert r.outlets == 3 and cache.size <= cache.limit  # type: ignore[operator]


def test_a_lower_limit_applies_at_the_next_build(db: Database, tmp_path: Path) -> None:
    populate(db)
    cache = SiteCache(limit=None)
    out = tmp_path / "site"
    build_site_from_db(db, out, INFO, now=NOW, schedule=SCHED, cache=cache)
    need = cache.size
    cache.set_limit(need // 2)
    r = _same_as_full(db, out, tmp_path, NOW + timedelta(minutes=1), "lowered", cache=cache)
    assert r.rendered == 0 and 0 < cache.size <= need // 2


def test_limit_zero_builds_without_a_cache(db: Database, tmp_path: Path) -> None:
    populate(db)
    cache = SiteCache(limit=None)
    out = tmp_path / "site"
    build_site_from_db(db, out, INFO, now=NOW, schedule=SCHED, cache=cache)
    cache.set_limit(0)
    _same_as_full(db, out, tmp_path, NOW + timedelta(minutes=1), "off", cache=cache)
    assert cache.size == 0 and not cache.memo and cache.scope is None


# --- the setting -------------------------------------------------------------------------------

def test_the_setting_defaults_parses_and_says_what_is_wrong(tmp_path: Path) -> None:
    def load(body: str) -> C.Config:
        p = tmp_path / "blockwatch.toml"
        p.write_text(body, encoding="utf-8")
        return C.load(p)

    assert load("").settings.site.cache_limit == DEFAULT_LIMIT == C.SiteConfig().cache_limit
    assert load('[site]\ncache_limit = "64MiB"\n').settings.site.cache_limit == 64 * 2**20
    assert load('[site]\ncache_limit = "0"\n').settings.site.cache_limit == 0
    assert load("[site]\ncache_limit = 0\n").settings.site.cache_limit == 0
    for bad in ['"lots"', '"-5MB"', "-1", '"1.5GB"']:
        with pytest.raises(C.ConfigError) as ei:
            load(f'[site]\ntitle = "x"\ncache_limit = {bad}\n')
        e = ei.value
        assert e.key == "site.cache_limit" and e.line == 3, bad
        assert str(e).startswith(f"{tmp_path / 'blockwatch.toml'}:3: site.cache_limit"), bad


def test_the_shipped_config_has_the_default() -> None:
    root = Path(__file__).resolve().parent.parent
    cfg = C.load(root / "config" / "blockwatch.toml")
    assert cfg.settings.site.cache_limit == DEFAULT_LIMIT


def test_the_daemon_passes_the_limit_and_zero_turns_the_cache_off(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from blockwatch.daemon import Daemon
    from blockwatch.site import commands

    seen: list[SiteCache | None] = []
    monkeypatch.setattr(commands, "build_site",
                        lambda cfg, db, cache=None: seen.append(cache))

    def cfg(limit: str) -> C.Config:
        p = tmp_path / "blockwatch.toml"
        p.write_text(f'[site]\ncache_limit = "{limit}"\n', encoding="utf-8")
        return C.load(p)

    d = Daemon(cfg("10MB"), None)  # type: ignore[arg-type]
    asyncio.run(d.site())
    first = seen[-1]
    assert first is not None and first.limit == first.memo.limit == 10**7
    d.cfg = cfg("5MB")  # a reload
    asyncio.run(d.site())
    assert seen[-1] is first and first.limit == first.memo.limit == 5 * 10**6
    d.cfg = cfg("0")
    asyncio.run(d.site())
    assert seen[-1] is None and d.site_cache is None
