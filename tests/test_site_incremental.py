"""Incremental site builds (site/incremental.py): only outlets whose data or freshness changed are
rendered again, and what is left on disk is byte for byte what a full build writes, on SQLite and
PostgreSQL, step by step through data changes, the passing of time and staleness."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from blockwatch.cli import build_parser
from blockwatch.site import build as build_mod
from blockwatch.site import incremental as inc
from blockwatch.site import render
from blockwatch.site.build import BuildReport, build_site_from_db, site_info
from blockwatch.site.cache import SiteCache
from blockwatch.site.load import RollupRec
from blockwatch.storage import Database
from blockwatch.storage.models import (
    Case,
    DailyRollup,
    Event,
    Feed,
    FeedEntry,
    Incident,
    Target,
    UrlState,
    Vantage,
    Verdict,
)
from test_site_build import AGENT_NAME, INFO, NOW, SCHED, _record, populate


def _tree(root: Path) -> dict[str, bytes]:
    """Every file a reader can fetch (the build's own dot-files left out)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)}


def _mtimes(root: Path) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): p.stat().st_mtime_ns for p in root.rglob("*")
            if p.is_file()}


class Spy:
    """The outlets whose pages a build renders (render_target as build.py calls it).
    `incremental`: what `_same_as_full`'s incremental build rendered, taken before its full
    build (whose renders would otherwise be mixed in and hide any extra or missing one)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.ids: set[int] = set()
        self.incremental: set[int] = set()
        real = build_mod.render_target

        def spy(m, info, lang, target_id, as_of=None, **kw):  # type: ignore[no-untyped-def]
            self.ids.add(target_id)
            return real(m, info, lang, target_id, as_of, **kw)

        monkeypatch.setattr(build_mod, "render_target", spy)

    def take(self) -> set[int]:
        ids, self.ids = self.ids, set()
        return ids


def _same_as_full(db: Database, out: Path, tmp: Path, now: datetime, name: str,
                  spy: Spy | None = None, **kw: object) -> BuildReport:
    """An incremental build into `out`, then a full one into a new folder at the same time:
    every file must be the same, byte for byte."""
    if spy is not None:
        spy.take()
    report = build_site_from_db(db, out, INFO, now=now, schedule=SCHED, **kw)  # type: ignore[arg-type]
    if spy is not None:
        spy.incremental = spy.take()
    full = tmp / f"full-{name}"
    kw.pop("cache", None)  # the full build a cold process makes: nothing kept
    full_report = build_site_from_db(db, full, INFO, now=now, schedule=SCHED, full=True,
                                     **kw)  # type: ignore[arg-type]
    assert full_report.full == "asked for (--full)"
    if spy is not None:
        spy.take()  # the full build's renders: every outlet
    a, b = _tree(out), _tree(full)
    assert sorted(a) == sorted(b)
    differ = [p for p in a if a[p] != b[p]]
    assert not differ, f"{name}: incremental and full builds differ in {differ[:5]}"
    return report


@pytest.fixture(params=["cold", "daemon"])
def cache(request: pytest.FixtureRequest) -> SiteCache | None:
    """Each build as `blockwatch site` makes it (a cold process) or as the daemon does (one
    SiteCache kept across the test's builds)."""
    return SiteCache() if request.param == "daemon" else None


def test_incremental_equals_full_step_by_step(any_db: Database, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch,
                                              cache: SiteCache | None) -> None:
    w = populate(any_db)
    _ratel, vlast, _azattyq = (w.targets[n] for n in ("Ratel.kz", "Vlast.kz", "Azattyq"))
    out = tmp_path / "site"
    spy = Spy(monkeypatch)

    first = _same_as_full(any_db, out, tmp_path, NOW, "first", cache=cache)
    assert first.full == "no earlier build state" and first.rendered == first.outlets == 3
    spy.take()

    # nothing new, same time: nothing rendered, nothing written but the build state
    before = _mtimes(out)
    again = build_site_from_db(any_db, out, INFO, now=NOW, schedule=SCHED, cache=cache)
    assert (again.full, again.rendered, again.written) == ("", 0, 0)
    assert spy.take() == set()
    assert {p for p, t in _mtimes(out).items() if before.get(p) != t} == {inc.STATE}

    # one outlet's data changes: only its pages are rendered, only it and aggregates written
    with any_db.write() as s:
        _record(s, vlast, w.vantages["vps"], "https://vlast.kz/", NOW - timedelta(minutes=1),
                "ok", "reachable: HTTP 200")
    before = _mtimes(out)
    r = _same_as_full(any_db, out, tmp_path, NOW, "one-outlet", spy, cache=cache)
    assert spy.incremental == {vlast}
    assert (r.full, r.rendered) == ("", 1)
    changed = {p for p, t in _mtimes(out).items() if before.get(p) != t}
    outlet_pages = {p for p in changed if "/t/" in p or "/badge/" in p}
    assert outlet_pages and all("vlast" in p for p in outlet_pages), changed
    assert any("/t/vlast-kz.html" in p for p in changed)  # "checked" moved on its page

    # time passes, nothing new, still fresh: nothing was measured, so the block and the outage
    # gain no minutes (they stop at their last measurement) and no outlet is rendered again
    later = NOW + timedelta(minutes=20)
    r = build_site_from_db(any_db, out, INFO, now=later, schedule=SCHED, cache=cache)
    assert spy.take() == set() and r.rendered == 0
    _same_as_full(any_db, out, tmp_path, later, "later", cache=cache)
    spy.take()

    # a new incident names one outlet: its page lists it
    with any_db.write() as s:
        feed = s.scalars(select(Feed)).first()
        assert feed is not None
        fe = FeedEntry(feed_id=feed.id, entry_key="k-new", title="Vlast.kz editor questioned",
                       link="https://example.org/q", summary="", published_at=later,
                       first_seen_at=later, content_sha256="1" * 64)
        s.add(fe)
        s.flush()
        # reported late: older than the page's time, so only the outlet's key can tell
        s.add(Incident(entry_id=fe.id, types=["interrogation"], outlets=["Vlast.kz"], people=[],
                       occurred_at=NOW - timedelta(days=3), created_at=later))
    r = _same_as_full(any_db, out, tmp_path, later, "incident", spy, cache=cache)
    assert spy.incremental == {vlast} and r.rendered == 1
    assert "Vlast.kz editor questioned" in (out / "en/t/vlast-kz.html").read_text()

    # a day of history filled in late (an older day without rows): that outlet's bars change
    with any_db.write() as s:
        s.add(DailyRollup(target_id=vlast, vantage_id=w.vantages["ooni-kz:AS9198"],
                          day=NOW.date() - timedelta(days=40), worst="dns",
                          minutes_affected=600, measurements=1))
    r = _same_as_full(any_db, out, tmp_path, later, "history", spy, cache=cache)
    assert spy.incremental == {vlast} and r.rendered == 1


def test_stale_by_time_alone_is_rendered_again(any_db: Database, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """No new data at all: once the last check is older than two intervals, every page must
    say "stale" and none may still claim a fresh measurement."""
    w = populate(any_db)
    vlast = w.targets["Vlast.kz"]
    out = tmp_path / "site"
    build_site_from_db(any_db, out, INFO, now=NOW, schedule=SCHED)
    page = out / "en/t/vlast-kz.html"
    assert "no measurement since" not in page.read_text()
    spy = Spy(monkeypatch)
    # the last round was at NOW - 6 h; the probe interval 6 h: stale 12 h after it
    r = build_site_from_db(any_db, out, INFO, now=NOW + timedelta(hours=6, minutes=1),
                           schedule=SCHED)
    assert vlast in spy.take() and r.full == ""
    assert "no measurement since" in page.read_text()  # (OONI's daily data still counts)
    _same_as_full(any_db, out, tmp_path, NOW + timedelta(hours=6, minutes=1), "stale")


def test_site_wide_changes_render_everything(db: Database, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    w = populate(db)
    out = tmp_path / "site"
    build_site_from_db(db, out, INFO, now=NOW, schedule=SCHED, config="a")
    assert build_site_from_db(db, out, INFO, now=NOW, schedule=SCHED, config="a").rendered == 0

    r = build_site_from_db(db, out, INFO, now=NOW, schedule=SCHED, config="b")
    assert r.full and r.rendered == 3  # the configuration the pages are made from

    two = site_info(INFO.title, INFO.base_url, ["en", "ru"])
    r = build_site_from_db(db, out, two, now=NOW, schedule=SCHED, config="b")
    assert r.full and r.rendered == 3 and not [p for p in (out / "kk").rglob("*") if p.is_file()]

    retitled = site_info("Another title", INFO.base_url, ["en", "ru"])
    r = build_site_from_db(db, out, retitled, now=NOW, schedule=SCHED, config="b")
    assert r.full and "Another title" in (out / "ru/t/vlast-kz.html").read_text()

    r = build_site_from_db(db, out, two, now=NOW + timedelta(days=1), schedule=SCHED,
                           config="b")
    assert r.full  # a new day (and the title back): the bars' window moved

    monkeypatch.setattr(inc, "code_version", lambda: "another blockwatch")
    r = build_site_from_db(db, out, two, now=NOW + timedelta(days=1), schedule=SCHED,
                           config="b")
    assert r.full

    with db.write() as s:  # a target taken off the list: its pages go, everything else renders
        t = s.get(Target, w.targets["Azattyq"])
        assert t is not None
        t.active = False
    r = build_site_from_db(db, out, two, now=NOW + timedelta(days=1), schedule=SCHED,
                           config="b")
    assert r.full and r.rendered == 2 and r.removed == 4
    assert not (out / "en/t/azattyq.html").exists()
    assert not (out / "ru/badge/azattyq.svg").exists()

    r = build_site_from_db(db, out, two, now=NOW + timedelta(days=1), schedule=SCHED,
                           config="b", full=True)
    assert r.full == "asked for (--full)" and r.rendered == 2
    assert "full build: asked for (--full)" in r.summary()
    assert build_parser().parse_args(["site", "--full"]).full is True


def test_missing_page_or_damaged_state(db: Database, tmp_path: Path) -> None:
    populate(db)
    out = tmp_path / "site"
    build_site_from_db(db, out, INFO, now=NOW, schedule=SCHED)
    (out / "ru/t/ratel-kz.html").unlink()  # someone cleaned the folder
    r = build_site_from_db(db, out, INFO, now=NOW, schedule=SCHED)
    assert r.rendered == 1 and (out / "ru/t/ratel-kz.html").is_file()

    (out / inc.STATE).write_text("{not json", encoding="utf-8")
    r = build_site_from_db(db, out, INFO, now=NOW, schedule=SCHED)
    assert r.full == "no earlier build state" and r.rendered == 3


def test_a_build_that_dies_leaves_no_state(db: Database, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages half written and the old state kept would let the next build skip them."""
    populate(db)
    out = tmp_path / "site"
    build_site_from_db(db, out, INFO, now=NOW, schedule=SCHED)
    assert (out / inc.STATE).is_file()

    def dies(*a: object, **k: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(build_mod, "write_site", dies)
    with pytest.raises(OSError):
        build_site_from_db(db, out, INFO, now=NOW + timedelta(minutes=5), schedule=SCHED)
    assert not (out / inc.STATE).exists()
    monkeypatch.undo()
    r = build_site_from_db(db, out, INFO, now=NOW + timedelta(minutes=5), schedule=SCHED)
    assert r.full == "no earlier build state"


def test_outlet_page_is_written_as_of_its_data(db: Database, tmp_path: Path) -> None:
    """The footer's time and "for ..." of an outlet page come from its newest data, not the
    clock: the index says when the site was built."""
    populate(db)
    out = tmp_path / "site"
    build_site_from_db(db, out, INFO, now=NOW + timedelta(minutes=7), schedule=SCHED)
    last_round = NOW - timedelta(hours=6)
    page = (out / "en/t/vlast-kz.html").read_text()
    assert f'<time datetime="{last_round.strftime("%Y-%m-%dT%H:%M:%SZ")}"' in page.split(
        "<footer>")[1]
    index = (out / "en/index.html").read_text()
    assert '<time datetime="2026-03-15T12:07:00Z"' in index.split("<footer>")[1]
    assert os.path.getsize(out / inc.STATE) > 0


def test_outlet_without_data_is_rendered_every_time(db: Database, tmp_path: Path) -> None:
    """Nothing to date its page by: it is written as of the build (and costs little)."""
    populate(db)
    with db.write() as s:
        s.add(Target(name="New.kz", country="KZ", category="NEWS", urls=["https://new.kz/"],
                     aliases=[], active=True))
    out = tmp_path / "site"
    build_site_from_db(db, out, INFO, now=NOW, schedule=SCHED)
    r = _same_as_full(db, out, tmp_path, NOW + timedelta(minutes=1), "no-data")
    assert r.rendered == 1  # it only: the block and the outage gain no minutes unmeasured
    assert "2026-03-15T12:01:00Z" in (out / "en/t/new-kz.html").read_text().split("<footer>")[1]


def test_changes_an_incremental_build_must_see(any_db: Database, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               cache: SiteCache | None) -> None:
    """Each change below, then an incremental build and a full one at the same time: the same
    files byte for byte, and the incremental build rendered exactly the outlets it touched."""
    w = populate(any_db)
    ratel, vlast, azattyq = (w.targets[n] for n in ("Ratel.kz", "Vlast.kz", "Azattyq"))
    everyone = {ratel, vlast, azattyq}
    out = tmp_path / "site"
    t = NOW + timedelta(minutes=30)
    build_site_from_db(any_db, out, INFO, now=t, schedule=SCHED, cache=cache)
    spy = Spy(monkeypatch)

    def same(name: str, rendered: set[int], now: datetime = t) -> None:
        r = _same_as_full(any_db, out, tmp_path, now, name, spy, cache=cache)
        assert spy.incremental == rendered, name
        assert r.rendered == len(rendered), name
        if cache is not None and name in read_again:  # the rows of those outlets only
            assert cache.reads == read_again[name], name

    # the daemon reads again the rollup rows of a target whose counter moved, no others
    with any_db.read() as s:
        per_target = dict(s.execute(select(DailyRollup.target_id, func.count())
                                    .where(DailyRollup.day >= t.date() - timedelta(days=89))
                                    .group_by(DailyRollup.target_id)).all())
    read_again = {"case linked": 0, "older rollup rewritten": per_target[vlast],
                  "rollup removed and another added": per_target[ratel]}

    with any_db.write() as s:  # a case linking the raid at Vlast.kz to one of its events
        raid = s.scalars(select(Incident).where(Incident.types == ["raid"])).one()
        ev = s.scalars(select(Event).where(Event.target_id == vlast)).first()
        assert ev is not None
        s.add(Case(incident_id=raid.id, event_id=ev.id, created_at=t))
    same("case linked", {vlast})

    with any_db.write() as s:  # the feed corrected the headline of that report
        entry = s.get(FeedEntry, raid.entry_id)
        assert entry is not None
        entry.title = "Raid at Vlast.kz (corrected)"
    same("incident title edited", {vlast})

    with any_db.write() as s:  # an event ends, the URL's state untouched
        ev = s.scalars(select(Event).where(Event.target_id == ratel,
                                           Event.ended_at.is_(None))).first()
        assert ev is not None
        ev.ended_at = t - timedelta(minutes=5)
    same("event ended", {ratel})

    with any_db.write() as s:  # a vantage renamed, an agent's network changed: labels move
        s.execute(update(Vantage).where(Vantage.name == "vps").values(name="vps-renamed"))
        s.execute(update(Vantage).where(Vantage.name == AGENT_NAME).values(asn="AS9199"))
    same("vantages relabelled", everyone)

    with any_db.write() as s:
        target = s.get(Target, azattyq)
        assert target is not None
        target.urls = [*target.urls, "https://azattyq.org/"]
    same("target URL added", {azattyq})

    with any_db.write() as s:  # the reason's keys of a verdict shown now (read per language)
        vid = s.scalars(select(Verdict.id).join(UrlState, UrlState.last_verdict_id == Verdict.id)
                        .where(UrlState.target_id == ratel, UrlState.state == "tls")).first()
        s.execute(update(Verdict).where(Verdict.id == vid).values(
            reason_keys={"why": "tls_reset", "step": "tls"}))
    same("reason keys changed", {ratel})

    with any_db.write() as s:  # a rollup of 10 days ago rewritten in place, count unchanged
        s.execute(update(DailyRollup).where(
            DailyRollup.target_id == vlast,
            DailyRollup.day == NOW.date() - timedelta(days=10)).values(
                worst="dns", minutes_affected=300))
    same("older rollup rewritten", {vlast})

    with any_db.write() as s:  # one old row removed and another day added: the same count
        old = s.scalars(select(DailyRollup).where(
            DailyRollup.target_id == ratel,
            DailyRollup.day == NOW.date() - timedelta(days=20))).first()
        assert old is not None
        s.delete(old)
        s.add(DailyRollup(target_id=ratel, vantage_id=w.vantages["ooni-kz:AS9198"],
                          day=NOW.date() - timedelta(days=50), worst="tls",
                          minutes_affected=99, measurements=1))
    same("rollup removed and another added", {ratel})

    # freshness at its boundary: the last round at NOW - 6 h, stale two 6-hour intervals later
    # (the blocked and down outlets also gain minutes today on every build)
    stale_at = NOW + timedelta(hours=6)
    for when in (stale_at - timedelta(seconds=1), stale_at, stale_at + timedelta(seconds=1)):
        r = _same_as_full(any_db, out, tmp_path, when, f"boundary {when.isoformat()}", spy,
                          cache=cache)
        assert r.full == ""
    assert "no measurement since" in (out / "en/t/vlast-kz.html").read_text()

    # a local round with nothing new but the checks: every outlet's page shows each
    # network's last check, so every measured outlet is rendered again
    checked = stale_at + timedelta(minutes=1)
    with any_db.write() as s:
        s.execute(update(UrlState).values(last_seen_at=checked))
    same("every URL checked again", everyone, checked)
    assert "no measurement since" not in (out / "en/t/vlast-kz.html").read_text()


def test_history_marks_are_a_checksum_of_every_row() -> None:
    """Order-free (databases return rows in any order) and the same in every process (a
    pinned value: no salted `hash`); of what the pages show."""
    rows = [RollupRec(1, v, date(2026, 3, 1) - timedelta(days=d), w, m, 8)
            for v, d, w, m in [(1, 0, "ok", 0), (2, 30, "dns", 300), (2, 31, "novel", 5)]]
    marks = inc.history_marks(rows)
    assert marks == inc.history_marks(list(reversed(rows)))
    assert marks == {1: (3, 6877178182127011418)}
    changed = [*rows[:2], RollupRec(1, 2, rows[2].day, "novel", 6, 8)]
    assert inc.history_marks(changed) != marks
    # the count of measurements is on no page: every round moves today's
    counted = [*rows[:2], RollupRec(1, 2, rows[2].day, "novel", 5, 9)]
    assert inc.history_marks(counted) == marks


def test_the_build_time_is_read_once_the_folder_is_locked(db: Database, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A build that waited for another one must not judge freshness or date its pages as of
    before it waited."""
    populate(db, now=NOW)
    seen: list[str] = []
    real_lock = inc.folder_lock

    @contextmanager
    def lock(out_dir: Path) -> Iterator[None]:
        seen.append("waits")
        with real_lock(out_dir):
            seen.append("locked")
            yield

    def clock() -> datetime:
        seen.append("clock")
        return NOW

    monkeypatch.setattr(inc, "folder_lock", lock)
    monkeypatch.setattr(build_mod, "_clock", clock)
    build_site_from_db(db, tmp_path / "site", INFO, schedule=SCHED)
    assert seen == ["waits", "locked", "clock"]


def test_old_data_and_a_fresh_news_item(db: Database, tmp_path: Path) -> None:
    """An outlet page's time is its newest check or event, labelled as the data's time: a
    fresh report about it must not make three-day-old measurements look current."""
    populate(db)
    later = NOW + timedelta(days=3)  # no round for three days
    with db.write() as s:
        feed = s.scalars(select(Feed)).first()
        assert feed is not None
        fe = FeedEntry(feed_id=feed.id, entry_key="fresh", title="Vlast.kz editor questioned",
                       link="https://example.org/q", summary="",
                       published_at=later - timedelta(minutes=5), first_seen_at=later,
                       content_sha256="1" * 64)
        s.add(fe)
        s.flush()
        s.add(Incident(entry_id=fe.id, types=["interrogation"], outlets=["Vlast.kz"], people=[],
                       occurred_at=later - timedelta(minutes=5), created_at=later))
    out = tmp_path / "site"
    build_site_from_db(db, out, INFO, now=later, schedule=SCHED)
    last_round = (NOW - timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for lang, label in (("en", "Data as of"), ("ru", "Последние данные"),
                        ("kk", "Соңғы деректер")):
        page = (out / f"{lang}/t/vlast-kz.html").read_text()
        footer = page.split("<footer>")[1]
        assert f'{label}: <time datetime="{last_round}"' in footer, lang
        assert "Vlast.kz editor questioned" in page
    page = (out / "en/t/vlast-kz.html").read_text()
    assert "no recent data" in page.split("<footer>")[0]
    index = (out / "en/index.html").read_text().split("<footer>")[1]
    assert 'Updated: <time datetime="2026-03-18T12:00:00Z"' in index  # the build's time


@pytest.mark.parametrize("row", [
    '<tr id="vlast-kz"><th scope="row"><script>alert(1)</script></th></tr>\n',
    '<tr id="vlast-kz" onmouseover="alert(1)"><th>x</th></tr>\n',
    '<tr id="vlast-kz"><th><a href="javascript:alert(1)">x</a></th></tr>\n',
    '<tr id="vlast-kz"><th><img src=x onerror=alert(1)></th></tr>\n',
    '<tr id="vlast-kz"><th title="a" onclick="b">x</th></tr>\n',
    '<tr id="ratel-kz"><th scope="row">someone else\'s row</th></tr>\n',
    '<tr id="vlast-kz"></tr></table><table><tr><td>x</td></tr>\n',
])
def test_an_edited_state_file_never_injects_html(db: Database, tmp_path: Path,
                                                 row: str) -> None:
    populate(db)
    out = tmp_path / "site"
    build_site_from_db(db, out, INFO, now=NOW, schedule=SCHED)
    raw = json.loads((out / inc.STATE).read_text(encoding="utf-8"))
    vlast = next(k for k, v in raw["rows"]["en"].items() if 'id="vlast-kz"' in v)
    raw["rows"]["en"][vlast] = row
    (out / inc.STATE).write_text(json.dumps(raw), encoding="utf-8")
    r = _same_as_full(db, out, tmp_path, NOW, "edited-state")
    assert r.rendered == 1
    assert row.strip() not in (out / "en/index.html").read_text()


def test_every_row_we_render_has_the_shape_the_state_check_accepts(db: Database,
                                                                   tmp_path: Path) -> None:
    """Rows with hostile text from feeds and probed sites included (populate's XSS strings):
    a row refused here would be rendered again on every build."""
    populate(db)
    out = tmp_path / "site"
    build_site_from_db(db, out, INFO, now=NOW, schedule=SCHED)
    raw = json.loads((out / inc.STATE).read_text(encoding="utf-8"))
    rows = [v for lang in raw["rows"].values() for v in lang.values()]
    assert len(rows) == 9 and all(inc.row_ok(v, v.split('"')[1]) for v in rows)


def test_a_kept_page_edited_by_hand_is_rendered_again(db: Database, tmp_path: Path) -> None:
    populate(db)
    out = tmp_path / "site"
    build_site_from_db(db, out, INFO, now=NOW, schedule=SCHED)
    page = out / "kk/t/ratel-kz.html"
    page.write_bytes(page.read_bytes().replace(b"</main>", b"<p>edited</p></main>"))
    r = _same_as_full(db, out, tmp_path, NOW, "edited-page")
    assert r.rendered == 1 and b"edited" not in page.read_bytes()
    # the same size, and the old mtime put back: what a copy with the same length leaves
    st = page.stat()
    data = page.read_bytes()
    page.write_bytes(data.replace(b"<main", b"<MAIN", 1))
    os.utime(page, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    r = _same_as_full(db, out, tmp_path, NOW, "edited-page-2")
    assert r.rendered == 1 and page.read_bytes() == data


def test_a_kept_file_removed_during_the_build(db: Database, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The build that had already written its pages succeeds; the next one renders it."""
    w = populate(db)
    out = tmp_path / "site"
    build_site_from_db(db, out, INFO, now=NOW, schedule=SCHED)
    with db.write() as s:
        _record(s, w.targets["Vlast.kz"], w.vantages["vps"], "https://vlast.kz/",
                NOW - timedelta(minutes=1), "ok", "reachable: HTTP 200")
    real = build_mod.write_site

    def write_then_lose_one(out_dir: Path, files: dict[str, bytes],
                            kept: Collection[str] = ()) -> tuple[int, int]:
        done = real(out_dir, files, kept)
        assert "ru/t/ratel-kz.html" in kept
        (out_dir / "ru/t/ratel-kz.html").unlink()  # an operator's clean-up, an rsync
        return done

    whole = build_site_from_db(db, tmp_path / "whole", INFO, now=NOW, schedule=SCHED)
    monkeypatch.setattr(build_mod, "write_site", write_then_lose_one)
    r = build_site_from_db(db, out, INFO, now=NOW, schedule=SCHED)
    assert r.rendered == 1 and r.files == whole.files - 1  # the one that vanished
    monkeypatch.undo()
    r = _same_as_full(db, out, tmp_path, NOW, "vanished")
    assert r.rendered == 1 and (out / "ru/t/ratel-kz.html").is_file()


def test_a_template_edited_under_a_running_daemon(db: Database, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Jinja reloads an edited template; the build must then render every page with it, not
    only the outlets whose data changed."""
    templates = tmp_path / "templates"
    shutil.copytree(render.TEMPLATES, templates)
    monkeypatch.setattr(render, "TEMPLATES", templates)
    render.environment.cache_clear()
    render._css.cache_clear()
    try:
        populate(db)
        out = tmp_path / "site"
        build_site_from_db(db, out, INFO, now=NOW, schedule=SCHED)
        base = templates / "base.html"
        st = base.stat()
        base.write_text(base.read_text(encoding="utf-8").replace(
            "{{ L.t('footer') }}", "{{ L.t('footer') }} Edited."), encoding="utf-8")
        os.utime(base, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        r = build_site_from_db(db, out, INFO, now=NOW, schedule=SCHED)
        assert r.full and r.rendered == 3
        pages = [p for p in out.rglob("*.html")]
        assert pages and all("Edited." in p.read_text(encoding="utf-8") for p in pages)
    finally:
        render.environment.cache_clear()
        render._css.cache_clear()
