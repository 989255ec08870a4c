"""A stop request during a feeds poll (the daemon's SIGTERM): a search paced minutes apart ends
at once, what its answered queries found is stored, and the next poll asks only the queries the
stopped one did not (SQLite and PostgreSQL). HTTP is mocked with respx; the pacing is real
(an hour between requests), so only the stop can end the poll."""

from __future__ import annotations

import asyncio
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import respx
from sqlalchemy import func, select

from blockwatch.config import Config
from blockwatch.daemon import Daemon
from blockwatch.feeds.commands import _resume_key, poll_feeds
from blockwatch.feeds.search import Pacer
from blockwatch.storage import Database, repo
from blockwatch.storage.models import Feed, FeedEntry, JobRun

FIXTURES = Path(__file__).parent / "fixtures" / "feeds"
API = "https://gdelt.example.org/api/v2/doc/doc"
NOW = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)
TERMS = ", ".join(f'"Termname{i:02d}"' for i in range(8))
CONFIG = f"""
[storage]
url = "sqlite:///bw.db"
[probe]
targets = ["targets.toml"]
[[feeds.search]]
name = "GDELT"
kind = "gdelt"
api_url = "{API}"
outlets = false
people = false
terms = [{TERMS}]
max_query_length = 40
min_gap = "1h"
"""


@pytest.fixture
def cfg(write_config, tmp_path: Path) -> Config:  # type: ignore[no-untyped-def]
    shutil.copy(FIXTURES / "targets.toml", tmp_path / "targets.toml")
    return write_config(CONFIG)


class Service:
    """The search API: answers every query with the same three articles and remembers what
    was asked; `first` is set when the first query arrives."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.first = asyncio.Event()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.asked.append(parse_qs(urlsplit(str(request.url)).query)["query"][0])
        self.first.set()
        return httpx.Response(200, content=(FIXTURES / "gdelt_artlist.rss").read_bytes(),
                              headers={"Content-Type": "application/rss+xml"})


def queries_of(cfg: Config) -> list[str]:
    from blockwatch.feeds.search import build_queries

    return [q.text for q in build_queries(cfg.settings.feeds.search[0], [], [])]


def feed_row(db: Database) -> tuple[int, datetime | None, str | None]:
    with db.read() as s:
        f = s.scalars(select(Feed)).one()
        nxt = f.next_attempt_at
        return f.id, nxt.replace(tzinfo=UTC) if nxt and nxt.tzinfo is None else nxt, \
            repo.get_kv(s, _resume_key(f.id))


def entries(db: Database) -> int:
    with db.read() as s:
        return s.scalar(select(func.count()).select_from(FeedEntry)) or 0


async def test_a_stop_ends_the_search_stores_what_it_found_and_the_next_poll_goes_on(
        cfg: Config, any_db: Database) -> None:
    queries = queries_of(cfg)
    assert len(queries) == 4  # two names a query
    service, stop = Service(), asyncio.Event()
    with respx.mock:
        respx.get(url__startswith=API).mock(side_effect=service)
        poll = asyncio.create_task(poll_feeds(cfg, any_db, now=NOW, stop=stop))
        await service.first.wait()
        stop.set()  # the pacer now waits an hour before the second query: the stop ends that
        summary = await asyncio.wait_for(poll, 60)
    assert service.asked == queries[:1]
    [res] = summary.feeds
    assert res.status == "ok" and res.new_entries == 3
    assert "stopped: queries 2 to 4 are asked at the next poll" in (res.note or "")
    assert str(summary).endswith("; stopped before the end (the rest at the next poll): GDELT")
    assert entries(any_db) == 3
    _, nxt, resume = feed_row(any_db)
    assert nxt == NOW and resume is not None  # due at once, from the second query
    assert json.loads(resume)["next"] == queries[1]

    # the next poll (no stop, a pacer that does not really sleep) asks only the rest
    later = NOW + timedelta(minutes=1)
    nosleep = Pacer(3600, clock=lambda: 0.0, sleep=lambda s: asyncio.sleep(0))
    service2 = Service()
    with respx.mock:
        respx.get(url__startswith=API).mock(side_effect=service2)
        summary = await poll_feeds(cfg, any_db, now=later,
                                   pacers={"gdelt.example.org": nosleep})
    assert service2.asked == queries[1:]
    [res] = summary.feeds
    assert res.status == "ok" and res.new_entries == 0  # the same articles: stored once
    assert not res.stopped and "stopped" not in str(summary)
    assert (res.note or "").startswith("went on from query 2 of 4; 3 of 3 queries answered")
    _, nxt, resume = feed_row(any_db)
    assert resume is None and nxt is not None and nxt > later


async def test_names_added_after_a_stop_are_asked_at_the_next_poll(
        cfg: Config, any_db: Database, write_config) -> None:  # type: ignore[no-untyped-def]
    """The stopped poll's point is kept with its query list: names added before that point (an
    edited list) must not be skipped, so the next poll starts from the beginning."""
    service, stop = Service(), asyncio.Event()
    with respx.mock:
        respx.get(url__startswith=API).mock(side_effect=service)
        poll = asyncio.create_task(poll_feeds(cfg, any_db, now=NOW, stop=stop))
        await service.first.wait()
        stop.set()
        await asyncio.wait_for(poll, 60)
    assert feed_row(any_db)[2] is not None
    edited = write_config(CONFIG.replace("terms = [", 'terms = ["Newname000", "Newname001", '))
    queries = queries_of(edited)
    assert "Newname000" in queries[0]
    nosleep = Pacer(3600, clock=lambda: 0.0, sleep=lambda s: asyncio.sleep(0))
    service2 = Service()
    with respx.mock:
        respx.get(url__startswith=API).mock(side_effect=service2)
        summary = await poll_feeds(edited, any_db, now=NOW + timedelta(minutes=1),
                                   pacers={"gdelt.example.org": nosleep})
    assert service2.asked == queries  # every query, the new names' first
    [res] = summary.feeds
    assert "went on" not in (res.note or "")
    assert feed_row(any_db)[2] is None


async def test_a_stop_before_any_answer_records_nothing(cfg: Config, any_db: Database) -> None:
    stop = asyncio.Event()
    stop.set()
    with respx.mock:
        route = respx.get(url__startswith=API).mock(side_effect=Service())
        summary = await poll_feeds(cfg, any_db, now=NOW, stop=stop)
    assert route.call_count == 0
    [res] = summary.feeds
    assert res.status == "skipped" and res.note == "stopped before it was fetched"
    assert entries(any_db) == 0
    _, nxt, resume = feed_row(any_db)
    assert nxt is None and resume is None  # no failure, no backoff: due at the next poll


async def test_the_daemon_stop_ends_a_paced_feeds_job_without_cancelling_it(
        cfg: Config, any_db: Database) -> None:
    """Before: the job slept out the pacing until the stop's grace (20 s) ran out and was then
    cancelled, losing what it had fetched."""
    d = Daemon(cfg, any_db)
    spec = next(j for j in d.jobs() if j.name == "feeds")
    service = Service()
    with respx.mock:
        respx.get(url__startswith=API).mock(side_effect=service)
        job = asyncio.create_task(d.wrap(spec)())
        await service.first.wait()
        d.stopping.set()
        await d._drain()
        await job
    assert len(service.asked) == 1 and entries(any_db) == 3
    with any_db.read() as s:
        row = s.get(JobRun, "feeds")
        assert row is not None and row.last_error is None and row.last_ok_at is not None
