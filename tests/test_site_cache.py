"""The daemon's site cache (site/cache.py): rollup rows read again only where a trigger-kept
counter moved, page parts kept in memory across builds, all of it dropped when anything site-wide
changes; every build byte for byte what a cold full build writes, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text, update

from blockwatch.site import incremental as inc
from blockwatch.site import render
from blockwatch.site.build import build_site_from_db, site_info
from blockwatch.site.cache import SiteCache
from blockwatch.site.load import rollup_gens
from blockwatch.storage import Database
from blockwatch.storage.models import DailyRollup, UrlState
from test_site_build import INFO, NOW, SCHED, _record, populate
from test_site_incremental import _same_as_full


def _window_rows(db: Database, tid: int, at: datetime) -> int:
    with db.read() as s:
        return int(s.scalar(select(func.count()).select_from(DailyRollup).where(
            DailyRollup.target_id == tid, DailyRollup.day >= at.date() - timedelta(days=89))) or 0)


def test_rollup_counters_move_on_what_pages_show(any_db: Database) -> None:
    """Triggers (migration 0007), whoever writes: an insert, a delete, a change of the worst
    state or the minutes move the target's counter; the measurement count alone does not (every
    round moves today's)."""
    w = populate(any_db)
    vlast, ratel = w.targets["Vlast.kz"], w.targets["Ratel.kz"]
    day = NOW.date() - timedelta(days=40)

    def gens() -> dict[int, int]:
        with any_db.read() as s:
            return rollup_gens(s)

    g0 = gens()
    assert set(g0) == set(w.targets.values())  # populate's rows all counted
    with any_db.write() as s:  # raw SQL, as a hand fix would be
        s.execute(text("UPDATE daily_rollups SET measurements = measurements + 5 "
                       "WHERE target_id = :t"), {"t": vlast})
    assert gens() == g0
    with any_db.write() as s:
        s.execute(text("UPDATE daily_rollups SET minutes_affected = 77 "
                       "WHERE target_id = :t AND day = :d"), {"t": vlast, "d": day})
    g1 = gens()
    assert g1[vlast] != g0[vlast] and g1[ratel] == g0[ratel]
    with any_db.write() as s:
        s.execute(update(DailyRollup).where(DailyRollup.target_id == ratel,
                                            DailyRollup.day == day).values(worst="dns"))
    g2 = gens()
    assert g2[ratel] != g1[ratel] and g2[vlast] == g1[vlast]
    with any_db.write() as s:
        s.execute(text("DELETE FROM daily_rollups WHERE target_id = :t AND day = :d"),
                  {"t": vlast, "d": day})
    g3 = gens()
    assert g3[vlast] != g2[vlast] and g3[ratel] == g2[ratel]


def test_the_cache_across_rounds_in_one_process(any_db: Database, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Rounds of checks, a block, a hand fix of an older day: each build equals a cold full
    build; parts of pages that did not change are not made again."""
    w = populate(any_db)
    vlast = w.targets["Vlast.kz"]
    out = tmp_path / "site"
    cache = SiteCache()
    made: list[int] = []
    real = render._event_text

    def counted(L, m, e, now):  # type: ignore[no-untyped-def]
        made.append(e.id)
        return real(L, m, e, now)

    monkeypatch.setattr(render, "_event_text", counted)
    first = _same_as_full(any_db, out, tmp_path, NOW, "first", cache=cache)
    assert first.full and cache.reads > 0
    made.clear()

    at = NOW
    for n in range(3):  # local rounds: every URL checked again, nothing else new
        at += timedelta(minutes=15)
        with any_db.write() as s:
            s.execute(update(UrlState).values(last_seen_at=at))
        r = _same_as_full(any_db, out, tmp_path, at, f"round {n}", cache=cache)
        assert r.rendered == r.outlets and not r.full
        made.clear()
        build_site_from_db(any_db, out, INFO, now=at, schedule=SCHED, cache=cache)
        # every page rendered (each shows its networks' last check), no timeline entry made
        # again and no rollup row read: both kept from the builds before
        assert made == [] and cache.reads == 0, n

    # a check that changes what one outlet's network says: its events, not the others'
    at += timedelta(minutes=15)
    with any_db.write() as s:
        _record(s, vlast, w.vantages["vps"], "https://vlast.kz/", at, "down", "timed out")
        _record(s, vlast, w.vantages["vps"], "https://vlast.kz/", at + timedelta(seconds=1),
                "down", "timed out")
    made.clear()
    _same_as_full(any_db, out, tmp_path, at + timedelta(seconds=2), "vlast down", cache=cache)

    # an older day rewritten by hand under the running daemon: that outlet's rows read again
    with any_db.write() as s:
        s.execute(text("UPDATE daily_rollups SET worst = 'dns', minutes_affected = 600 "
                       "WHERE target_id = :t AND day = :d"),
                  {"t": vlast, "d": NOW.date() - timedelta(days=33)})
    r = _same_as_full(any_db, out, tmp_path, at + timedelta(seconds=2), "hand fix", cache=cache)
    assert r.rendered == 1 and cache.reads == _window_rows(any_db, vlast, at)


def test_the_cache_is_dropped_when_the_site_changes(db: Database, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Configuration (a reload), languages, title, templates, the date: nothing kept is used."""
    populate(db)
    out = tmp_path / "site"
    cache = SiteCache()
    _same_as_full(db, out, tmp_path, NOW, "first", cache=cache)
    kept = cache.memo
    assert kept
    r = _same_as_full(db, out, tmp_path, NOW + timedelta(minutes=1), "same", cache=cache)
    assert cache.memo is kept and cache.reads == 0 and not r.full

    def dropped(name: str, **kw: object) -> None:
        nonlocal kept
        r = _same_as_full(db, out, tmp_path, kw.pop("now", NOW), name, cache=cache,  # type: ignore[arg-type]
                          **kw)
        assert r.full, name
        assert cache.memo is not kept and cache.reads > 0, name
        kept = cache.memo

    dropped("configuration", config="reloaded")
    dropped("date", now=NOW + timedelta(days=1), config="reloaded")
    monkeypatch.setattr(inc, "template_stamp", lambda: (("target.html", 1, 2),))
    dropped("template", now=NOW + timedelta(days=1), config="reloaded")

    two = site_info(INFO.title, INFO.base_url, ["ru", "en"])
    r = build_site_from_db(db, out, two, now=NOW + timedelta(days=1), schedule=SCHED,
                           config="reloaded", cache=cache)
    assert r.full and cache.memo is not kept
    full = build_site_from_db(db, tmp_path / "two", two, now=NOW + timedelta(days=1),
                              schedule=SCHED, config="reloaded", full=True)
    assert full.files == r.files
    for p in (tmp_path / "two").rglob("*.html"):
        assert (out / p.relative_to(tmp_path / "two")).read_bytes() == p.read_bytes(), p


def test_full_with_a_cache_renders_from_scratch(db: Database, tmp_path: Path) -> None:
    populate(db)
    out = tmp_path / "site"
    cache = SiteCache()
    build_site_from_db(db, out, INFO, now=NOW, schedule=SCHED, cache=cache)
    kept = cache.memo
    r = build_site_from_db(db, out, INFO, now=NOW, schedule=SCHED, cache=cache, full=True)
    assert r.full == "asked for (--full)" and cache.memo is not kept and cache.reads > 0


@pytest.mark.parametrize("cached", [True, False], ids=["daemon", "cold"])
def test_two_networks_changing_in_step_are_seen(any_db: Database, tmp_path: Path,
                                                cached: bool) -> None:
    """An older day blocked at two networks at once (a late import, a hand fix): with a linear
    row checksum (CRC-32) the two changes cancelled out and the day stayed 'reachable' on the
    page until midnight. Daemon (cache) and cold incremental builds both see it."""
    from datetime import date

    w = populate(any_db)
    out = tmp_path / "site"
    cache = SiteCache() if cached else None
    _same_as_full(any_db, out, tmp_path, NOW, "first", cache=cache)
    with any_db.write() as s:
        n = s.execute(text("UPDATE daily_rollups SET worst='http_blockpage', minutes_affected=580 "
                           "WHERE target_id=:t AND day=:d AND vantage_id IN (:a, :b)"),
                      {"t": w.targets["Vlast.kz"], "d": date(2026, 3, 8),
                       "a": w.vantages["vps"], "b": w.vantages["kz-isp-dns"]}).rowcount
    assert n == 2
    r = _same_as_full(any_db, out, tmp_path, NOW + timedelta(minutes=5), "after", cache=cache)
    assert r.rendered >= 1


def test_postgresql_counters_follow_the_install_not_the_writers_search_path(
        pg_url: str) -> None:
    """One install per schema: a hand fix of this install's rollups made with another
    search_path (schema-qualified) still moves this install's counter; a TRUNCATE, which fires
    no row trigger, moves every counter."""
    from sqlalchemy import create_engine

    from blockwatch.storage import open_database

    db = open_database(pg_url)
    try:
        w = populate(db)
        tid = w.targets["Vlast.kz"]
        with db.read() as s:
            schema = s.execute(text("SELECT current_schema()")).scalar_one()
            before = rollup_gens(s)
        plain = create_engine(pg_url.split("?")[0])  # search_path: the server's default
        try:
            with plain.begin() as conn:
                conn.execute(text(f'UPDATE "{schema}".daily_rollups SET minutes_affected = 7 '
                                  "WHERE target_id = :t AND minutes_affected <> 7"), {"t": tid})
            with db.read() as s:
                after = rollup_gens(s)
            assert after[tid] != before.get(tid)
            assert {t: g for t, g in after.items() if t != tid} == \
                {t: g for t, g in before.items() if t != tid}
            with plain.begin() as conn:
                conn.execute(text(f'TRUNCATE "{schema}".daily_rollups'))
            with db.read() as s:
                truncated = rollup_gens(s)
            assert set(w.targets.values()) <= set(truncated)
            assert all(truncated[t] != after.get(t) for t in w.targets.values())
        finally:
            plain.dispose()
    finally:
        db.close()
