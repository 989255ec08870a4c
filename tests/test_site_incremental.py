"""Incremental site builds (site/incremental.py): only outlets whose data or freshness changed are
rendered again, and what is left on disk is byte for byte what a full build writes, on SQLite and
PostgreSQL, step by step through data changes, the passing of time and staleness."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from blockwatch.cli import build_parser
from blockwatch.site import build as build_mod
from blockwatch.site import incremental as inc
from blockwatch.site.build import BuildReport, build_site_from_db, site_info
from blockwatch.storage import Database
from blockwatch.storage.models import DailyRollup, Feed, FeedEntry, Incident, Target
from test_site_build import INFO, NOW, SCHED, _record, populate


def _tree(root: Path) -> dict[str, bytes]:
    """Every file a reader can fetch (the build's own dot-files left out)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)}


def _mtimes(root: Path) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): p.stat().st_mtime_ns for p in root.rglob("*")
            if p.is_file()}


class Spy:
    """The outlets whose pages a build renders (render_target as build.py calls it)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.ids: set[int] = set()
        real = build_mod.render_target

        def spy(m, info, lang, target_id, as_of=None):  # type: ignore[no-untyped-def]
            self.ids.add(target_id)
            return real(m, info, lang, target_id, as_of)

        monkeypatch.setattr(build_mod, "render_target", spy)

    def take(self) -> set[int]:
        ids, self.ids = self.ids, set()
        return ids


def _same_as_full(db: Database, out: Path, tmp: Path, now: datetime, name: str,
                  **kw: object) -> BuildReport:
    """An incremental build into `out`, then a full one into a new folder at the same time:
    every file must be the same, byte for byte."""
    report = build_site_from_db(db, out, INFO, now=now, schedule=SCHED, **kw)  # type: ignore[arg-type]
    full = tmp / f"full-{name}"
    full_report = build_site_from_db(db, full, INFO, now=now, schedule=SCHED, full=True,
                                     **kw)  # type: ignore[arg-type]
    assert full_report.full == "asked for (--full)"
    a, b = _tree(out), _tree(full)
    assert sorted(a) == sorted(b)
    differ = [p for p in a if a[p] != b[p]]
    assert not differ, f"{name}: incremental and full builds differ in {differ[:5]}"
    return report


def test_incremental_equals_full_step_by_step(any_db: Database, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    w = populate(any_db)
    ratel, vlast, azattyq = (w.targets[n] for n in ("Ratel.kz", "Vlast.kz", "Azattyq"))
    out = tmp_path / "site"
    spy = Spy(monkeypatch)

    first = _same_as_full(any_db, out, tmp_path, NOW, "first")
    assert first.full == "no earlier build state" and first.rendered == first.outlets == 3
    spy.take()

    # nothing new, same time: nothing rendered, nothing written but the build state
    before = _mtimes(out)
    again = build_site_from_db(any_db, out, INFO, now=NOW, schedule=SCHED)
    assert (again.full, again.rendered, again.written) == ("", 0, 0)
    assert spy.take() == set()
    assert {p for p, t in _mtimes(out).items() if before.get(p) != t} == {inc.STATE}

    # one outlet's data changes: only its pages are rendered, only it and aggregates written
    with any_db.write() as s:
        _record(s, vlast, w.vantages["vps"], "https://vlast.kz/", NOW - timedelta(minutes=1),
                "ok", "reachable: HTTP 200")
    before = _mtimes(out)
    r = _same_as_full(any_db, out, tmp_path, NOW, "one-outlet")
    assert spy.take() - {ratel, azattyq} == {vlast}  # the full build's renders mixed in
    assert (r.full, r.rendered) == ("", 1)
    changed = {p for p, t in _mtimes(out).items() if before.get(p) != t}
    outlet_pages = {p for p in changed if "/t/" in p or "/badge/" in p}
    assert outlet_pages and all("vlast" in p for p in outlet_pages), changed
    assert any("/t/vlast-kz.html" in p for p in changed)  # "checked" moved on its page

    # time passes, nothing new, still fresh: the block and the outage gain minutes today
    # (their pages change), the reachable outlet stays as it was
    later = NOW + timedelta(minutes=20)
    r = build_site_from_db(any_db, out, INFO, now=later, schedule=SCHED)
    assert spy.take() == {ratel, azattyq} and r.rendered == 2
    _same_as_full(any_db, out, tmp_path, later, "later")
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
    r = _same_as_full(any_db, out, tmp_path, later, "incident")
    assert vlast in spy.take() and r.rendered == 1
    assert "Vlast.kz editor questioned" in (out / "en/t/vlast-kz.html").read_text()

    # a day of history filled in late (an older day without rows): that outlet's bars change
    with any_db.write() as s:
        s.add(DailyRollup(target_id=vlast, vantage_id=w.vantages["ooni-kz:AS9198"],
                          day=NOW.date() - timedelta(days=40), worst="dns",
                          minutes_affected=600, measurements=1))
    r = _same_as_full(any_db, out, tmp_path, later, "history")
    assert vlast in spy.take() and r.rendered == 1


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
    assert r.rendered == 1 + 2  # it, and the block and the outage that gained a minute today
    assert "2026-03-15T12:01:00Z" in (out / "en/t/new-kz.html").read_text().split("<footer>")[1]
