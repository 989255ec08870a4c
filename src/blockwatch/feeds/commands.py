"""`blockwatch feeds`, `blockwatch incidents` and the poll the daemon schedules.

Wiring (cli.py): COMMANDS["feeds"] = cmd_feeds; COMMANDS["incidents"] = cmd_incidents.
Daemon: `await poll_feeds(cfg, db)` every `feeds.interval` (a source's own `interval` is honoured
through its next attempt time); `link_cases(cfg, db)` after a probe round links new events.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from blockwatch import aio
from blockwatch.config import Config, FeedSearch, FeedSource, Person
from blockwatch.feeds import rferl, store
from blockwatch.feeds.extract import Matcher
from blockwatch.feeds.fetch import (
    FetchResult,
    Resolve,
    fetch_feed,
    make_client,
    next_attempt,
    system_resolve,
)
from blockwatch.feeds.parse import parse_feed
from blockwatch.feeds.search import (
    Pacer,
    Stopped,
    build_queries,
    pacer_key,
    run_search,
    unless_stopped,
)
from blockwatch.storage import Database, open_database, repo

log = logging.getLogger(__name__)

# A poll that starts a little before a feed's next attempt time still takes it: the daemon's
# tick and the time stored at the end of the previous fetch differ by the fetch's duration.
DUE_SLACK = timedelta(seconds=60)


def iso(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    return dt.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class FeedResult:
    feed: str
    url: str
    status: str  # ok | not_modified | failed | skipped
    new_entries: int = 0
    new_incidents: int = 0
    new_cases: int = 0
    entries: int = 0  # entries in the document
    error: str | None = None
    note: str | None = None  # cut at the size cap, ill-formed but recovered, not due yet
    next_attempt_at: datetime | None = None
    incident_ids: list[int] = field(default_factory=list, repr=False)
    kind: str = "feed"  # feed | rferl | gdelt | google_news
    failures: int = 0  # consecutive failures, this one included
    stopped: bool = False  # cut short by a stop request: the rest is fetched at the next poll

    def to_json(self) -> dict[str, Any]:
        return {"feed": self.feed, "kind": self.kind, "url": self.url, "status": self.status,
                "consecutive_failures": self.failures,
                "new_entries": self.new_entries, "new_incidents": self.new_incidents,
                "new_cases": self.new_cases, "entries": self.entries, "error": self.error,
                "note": self.note, "next_attempt_at": iso(self.next_attempt_at)}


@dataclass
class PollSummary:
    feeds: list[FeedResult]
    new_cases: list[tuple[int, int]]

    @property
    def failed(self) -> list[FeedResult]:
        return [f for f in self.feeds if f.status == "failed"]

    @property
    def new_incidents(self) -> int:
        return sum(f.new_incidents for f in self.feeds)

    def __str__(self) -> str:
        # one log line for the daemon: counts, and the failures with their reasons
        by_status: dict[str, int] = {}
        for f in self.feeds:
            by_status[f.status] = by_status.get(f.status, 0) + 1
        states = ", ".join(f"{n} {k}" for k, n in sorted(by_status.items())) or "none"
        failed = "; ".join(f"{f.feed}: {f.error}" for f in self.failed)
        stopped = ", ".join(f.feed for f in self.feeds if f.stopped)
        return (f"{len(self.feeds)} feeds ({states}); {sum(f.new_entries for f in self.feeds)} new "
                f"entries, {self.new_incidents} new incidents, {len(self.new_cases)} new cases"
                + (f"; failed: {failed}" if failed else "")
                + (f"; stopped before the end (the rest at the next poll): {stopped}"
                   if stopped else ""))


def watched(cfg: Config) -> tuple[list[Any], list[Person]]:
    """The targets and the people (`[[feeds.person]]`, then the people lists)."""
    from blockwatch.feeds.people import load_people, merge
    from blockwatch.targets import load_targets

    return (load_targets(cfg.target_files),
            merge(cfg.settings.feeds.person, load_people(cfg.people_files)))


def build_matcher(cfg: Config) -> Matcher:
    targets, people = watched(cfg)
    return Matcher(targets, people)


def feed_specs(cfg: Config) -> list[tuple[store.FeedSpec, FeedSource | FeedSearch]]:
    """Every enabled feed, RFE/RL site and search, as a row of the feeds table."""
    fc = cfg.settings.feeds
    out: list[tuple[store.FeedSpec, FeedSource | FeedSearch]] = []
    for src in fc.source:
        if src.enabled:
            out.append((store.FeedSpec(src.name, src.address, src.language, src.kind), src))
    for se in fc.search:
        if se.enabled:
            out.append((store.FeedSpec(se.name, se.setting("api_url"), se.language, se.kind), se))
    return out


@dataclass
class _Got:
    """What one feed's fetch produced, before storing."""

    status: str  # ok | not_modified | failed
    entries: list[Any] = field(default_factory=list)
    query_of: dict[str, str] | None = None
    etag: str | None = None
    last_modified: str | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    documents: int = 0
    after: Any = None  # more to write in the transaction that stores the entries
    stopped: bool = False  # a stop request cut it short: due again at the next poll


def _not_a_feed(content: bytes, content_type: str | None) -> str:
    ctype = (content_type or "no content type").split(";")[0]
    return f"not a feed ({ctype}, {len(content)} bytes)"


async def poll_feeds(cfg: Config, db: Database, *, force: bool = False,
                     client: httpx.AsyncClient | None = None, now: datetime | None = None,
                     matcher: Matcher | None = None, resolve: Resolve | None = None,
                     pacers: dict[str, Pacer] | None = None,
                     stop: asyncio.Event | None = None) -> PollSummary:
    """Fetch every due feed, RFE/RL site and search (every one with `force`), store new
    entries and incidents, link cases. A failing feed is a result (FeedResult.status "failed",
    its error stored on its row), never an exception. `resolve` and `pacers` are for tests
    (host lookup for the redirect check; the search services' clocks).

    `stop` (the daemon's stop request) ends the poll promptly: a search stores what its
    answered queries found and remembers the first query not answered, so the next poll asks
    from there (and only the rest); a fetch in flight is abandoned with nothing recorded, so
    the next poll takes that feed again."""
    fc = cfg.settings.feeds
    specs = feed_specs(cfg)
    if not specs:
        return PollSummary([], [])
    targets, people = watched(cfg)
    matcher = matcher or Matcher(targets, people)
    resolve = resolve or system_resolve
    pacers = pacers if pacers is not None else {}
    started = now or datetime.now(UTC)
    states = await asyncio.to_thread(_sync, db, [sp for sp, _ in specs])
    timeout = fc.timeout.total_seconds()
    own_client = client is None
    client = client or make_client(concurrency=fc.concurrency, timeout=timeout)
    sem = asyncio.Semaphore(fc.concurrency)
    write_lock = asyncio.Lock()  # one writer at a time: SQLite has one write lock anyway

    async def fetch_one(url: str, etag: str | None = None, lm: str | None = None) -> FetchResult:
        async with sem:
            return await unless_stopped(fetch_feed(client, url, etag=etag, last_modified=lm,
                                                   max_bytes=fc.max_bytes, timeout=timeout,
                                                   resolve=resolve), stop)

    async def plain(src: FeedSource, st: store.FeedState) -> _Got:
        res = await fetch_one(src.address, st.etag, st.last_modified)
        if res.status == "not_modified":
            return _Got("not_modified", etag=res.etag, last_modified=res.last_modified)
        if res.status != "ok":
            return _Got("failed", error=res.error or "failed")
        parsed = await asyncio.to_thread(parse_feed, res.content, res.content_type,
                                         drop_last=res.truncated)
        if not parsed.entries and not parsed.version:
            return _Got("failed", error=_not_a_feed(res.content, res.content_type))
        notes = []
        if res.truncated:
            notes.append(f"cut at {fc.max_bytes} bytes (feeds.max_bytes); the last entry was dropped")
        if parsed.bozo:
            notes.append(f"ill-formed, {len(parsed.entries)} entries recovered ({parsed.bozo})")
        return _Got("ok", list(parsed.entries), None, res.etag, res.last_modified, notes=notes,
                    documents=len(parsed.entries))

    async def rferl_site(src: FeedSource, st: store.FeedState, at: datetime) -> _Got:
        page = await fetch_one(src.address)
        notes: list[str] = []
        found: list[rferl.DiscoveredFeed] = []
        if page.status == "ok":
            found = rferl.parse_rssfeeds(page.content, src.address, page.content_type)
        why = (page.error or page.status) if page.status != "ok" else (
            None if found else "no /api/ feed links on the page")
        if why is None:
            async with write_lock:
                await asyncio.to_thread(_write, db, store.save_discovered, st.id, found, at)
        else:
            cached, checked = await asyncio.to_thread(_read, db, store.load_discovered, st.id)
            if not cached:
                return _Got("failed", error=f"feed list {src.address}: {why}; no earlier list "
                                            "to fall back on")
            found = cached
            notes.append(f"feed list {src.address}: {why}; using the list of {iso(checked)}")
        chosen, missing = rferl.choose(found, src.sections)
        if missing:
            notes.append("no feed for section(s) " + ", ".join(repr(m) for m in missing)
                         + " on the feed list")
        if not chosen:
            return _Got("failed", error="; ".join(notes) or "no feed chosen")
        entries: dict[str, Any] = {}
        errors: list[str] = []
        documents = 0
        old = await asyncio.to_thread(_read, db, store.load_validators, st.id)
        validators: dict[str, list[str | None]] = {}
        for f in chosen:
            etag, lm = old.get(f.url, (None, None))
            res = await fetch_one(f.url, etag, lm)
            if res.status == "not_modified":
                documents += 1
                validators[f.url] = [res.etag, res.last_modified]
                continue
            if res.status != "ok":
                errors.append(f"{f.title} ({f.url}): {res.error or res.status}")
                continue
            if res.truncated:
                notes.append(f"{f.title}: cut at {fc.max_bytes} bytes (feeds.max_bytes)")
            parsed = await asyncio.to_thread(parse_feed, res.content, res.content_type,
                                             drop_last=res.truncated)
            if not parsed.entries and not parsed.version:
                errors.append(f"{f.title} ({f.url}): {_not_a_feed(res.content, res.content_type)}")
                continue
            documents += 1
            validators[f.url] = [res.etag, res.last_modified]
            for e in parsed.entries:
                entries.setdefault(e.key, e)
        if not documents:
            return _Got("failed", error="; ".join(errors + notes))
        notes = [f"feeds: {', '.join(f.title for f in chosen)}", *errors, *notes]
        # the validators are written with the entries (one transaction): an ETag stored alone
        # could hide entries that never were
        return _Got("ok", list(entries.values()), notes=notes, documents=len(entries),
                    after=lambda s: store.save_validators(s, st.id, validators, at))

    async def searching(se: FeedSearch, st: store.FeedState) -> _Got:
        key = pacer_key(se)
        pacer = pacers.setdefault(key, Pacer(se.setting("min_gap").total_seconds()))
        queries = build_queries(se, targets, people)
        if not queries:
            return _Got("failed", error="no names to search for (no targets, people or terms)")
        resume_key = _resume_key(st.id)
        resume = await asyncio.to_thread(_read, db, repo.get_kv, resume_key)
        # a poll cut short by a stop goes on where it stopped; a query list changed since
        # (names added, removed or edited anywhere in it) starts from the beginning
        start = _resume_start(resume, [q.text for q in queries])
        out = await run_search(client, se, queries, pacer, max_bytes=fc.max_bytes,
                               timeout=timeout, resolve=resolve, stop=stop, start=start)
        if out.resume_at is not None and out.answered == 0:
            return _Got("failed", stopped=True)  # nothing answered: nothing to record
        if out.failed:
            return _Got("failed", error="; ".join(out.errors)[:2000])
        notes = [f"{out.answered} of {out.queries} queries answered", *out.errors]
        if start:
            notes.insert(0, f"went on from query {start + 1} of {len(queries)}")
        after: Any = None
        if out.resume_at is not None:
            left = _resume_value([q.text for q in queries], out.resume_at)
            notes.append(f"stopped: queries {out.resume_at + 1} to {len(queries)} are asked "
                         "at the next poll")
            after = lambda s: repo.set_kv(s, resume_key, left)  # noqa: E731
        elif resume is not None:
            after = lambda s: repo.set_kv(s, resume_key, None)  # noqa: E731
        return _Got("ok", out.entries, out.query_of, notes=notes, documents=out.documents,
                    after=after, stopped=out.resume_at is not None)

    async def one(spec: store.FeedSpec, conf: FeedSource | FeedSearch) -> FeedResult:
        st = states[spec.name]
        interval = conf.interval or fc.interval
        if not force and st.next_attempt_at and st.next_attempt_at > started + DUE_SLACK:
            why = (f"backing off after {st.consecutive_failures} failures ({st.last_error})"
                   if st.consecutive_failures else "not due yet")
            return FeedResult(spec.name, spec.url, "skipped", note=why,
                              next_attempt_at=st.next_attempt_at, kind=spec.kind)
        at = now or datetime.now(UTC)
        try:
            if isinstance(conf, FeedSearch):
                got = await searching(conf, st)
            elif conf.kind == "rferl":
                got = await rferl_site(conf, st, at)
            else:
                got = await plain(conf, st)
        except Stopped:
            got = _Got("failed", stopped=True)
        if got.stopped and got.status == "failed":  # nothing fetched: nothing recorded
            return FeedResult(spec.name, spec.url, "skipped", note="stopped before it was fetched",
                              next_attempt_at=st.next_attempt_at, kind=spec.kind, stopped=True)
        if got.status == "not_modified":
            nxt = next_attempt(at, interval, 0)
            async with write_lock:
                await asyncio.to_thread(_write, db, store.record_success, st.id, at=at,
                                        etag=got.etag, last_modified=got.last_modified,
                                        next_attempt_at=nxt)
            return FeedResult(spec.name, spec.url, "not_modified", note="not modified since last poll",
                              next_attempt_at=nxt, kind=spec.kind)
        if got.status == "failed":
            error = got.error or "failed"
            nxt = next_attempt(at, interval, st.consecutive_failures + 1)
            async with write_lock:
                await asyncio.to_thread(_write, db, store.record_failure, st.id, at=at, error=error,
                                        next_attempt_at=nxt)
            log.warning("feed %s (%s): %s", spec.name, spec.url, error)
            return FeedResult(spec.name, spec.url, "failed", error=error, next_attempt_at=nxt,
                              kind=spec.kind, failures=st.consecutive_failures + 1)
        # a search cut short is due again at once: the next poll asks the rest
        nxt = at if got.stopped else next_attempt(at, interval, 0)
        async with write_lock:
            stored = await asyncio.to_thread(_store_ok, db, st.id, got.entries, matcher, at,
                                             got.etag, got.last_modified, nxt, got.query_of,
                                             conf.country or None, got.after)
        return FeedResult(spec.name, spec.url, "ok", stored.new_entries, len(stored.incident_ids),
                          entries=got.documents, note="; ".join(got.notes) or None,
                          next_attempt_at=nxt, incident_ids=stored.incident_ids, kind=spec.kind,
                          stopped=got.stopped)

    try:
        results = await asyncio.gather(*(one(sp, conf) for sp, conf in specs))
    finally:
        if own_client:
            await client.aclose()
    new_cases = await asyncio.to_thread(_link, db, fc.correlation_window, now or datetime.now(UTC))
    by_incident = {i: r for r in results for i in r.incident_ids}
    for inc_id, _ in new_cases:
        if inc_id in by_incident:
            by_incident[inc_id].new_cases += 1
    return PollSummary(list(results), new_cases)


def _resume_key(feed_id: int) -> str:
    """kv: where a search cut short by a stop goes on (`_resume_value`)."""
    return f"feeds.search_resume.{feed_id}"


def _query_list_hash(texts: list[str]) -> str:
    return hashlib.sha256("\n".join(texts).encode("utf-8")).hexdigest()


def _resume_value(texts: list[str], at: int) -> str:
    """The first query not asked, with a hash of the whole list it belongs to."""
    return json.dumps({"queries": _query_list_hash(texts), "next": texts[at]}, ensure_ascii=False)


def _resume_start(value: str | None, texts: list[str]) -> int:
    """Where the next poll starts: at the stored query when the list is the one it was cut
    from, else at the beginning (a query only matched by text could skip names added before
    it)."""
    if not value:
        return 0
    try:
        saved = json.loads(value)
    except ValueError:
        return 0
    if not isinstance(saved, dict) or saved.get("queries") != _query_list_hash(texts):
        return 0
    return next((i for i, t in enumerate(texts) if t == saved.get("next")), 0)


def _sync(db: Database, sources: list[store.FeedSpec]) -> dict[str, store.FeedState]:
    with db.write() as s:
        return store.sync_feeds(s, sources)


def _write(db: Database, fn: Any, *args: Any, **kwargs: Any) -> Any:
    with db.write() as s:
        return fn(s, *args, **kwargs)


def _read(db: Database, fn: Any, *args: Any, **kwargs: Any) -> Any:
    with db.read() as s:
        return fn(s, *args, **kwargs)


def _store_ok(db: Database, feed_id: int, entries: Any, matcher: Matcher, at: datetime,
              etag: str | None, last_modified: str | None, nxt: datetime,
              query_of: dict[str, str] | None = None, country: str | None = None,
              after: Any = None) -> store.Stored:
    # entries and the feed's new validators in one transaction: a crash between them must not
    # leave an ETag that would hide entries never stored
    with db.write() as s:
        stored = store.store_entries(s, feed_id, entries, matcher, now=at, query_of=query_of,
                                     country=country)
        if after is not None:
            after(s)
        store.record_success(s, feed_id, at=at, etag=etag, last_modified=last_modified,
                             next_attempt_at=nxt)
        return stored


def _link(db: Database, window: timedelta, now: datetime) -> list[tuple[int, int]]:
    with db.write() as s:
        return store.link_cases(s, window=window, now=now)


def link_cases(cfg: Config, db: Database, *, now: datetime | None = None) -> list[tuple[int, int]]:
    """Link incidents with blocking events (for the daemon, after a probe round found events)."""
    return _link(db, cfg.settings.feeds.correlation_window, now or datetime.now(UTC))


# --- commands ------------------------------------------------------------------------------------

def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")


def _table(rows: list[list[str]], headers: list[str]) -> None:
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers) - 1)]
    for r in [headers, *rows]:
        print("  ".join([c.ljust(w) for c, w in zip(r, widths, strict=False)] + [r[-1]]).rstrip())


def cmd_feeds(cfg: Config, args: argparse.Namespace) -> int:
    """Pull every configured feed now (backoff is ignored: a person asked). Exit 0 even when
    feeds failed: a failing feed is a result, reported with its reason."""
    if not cfg.settings.feeds.active:
        print(f"no feeds configured: add [[feeds.source]] tables (name, url, language) or "
              f"[[feeds.search]] tables to {cfg.source}; config/blockwatch.toml lists them",
              file=sys.stderr)
        return 0
    db = open_database(cfg.database_url)
    try:
        summary = aio.run(poll_feeds(cfg, db, force=True))
    finally:
        db.close()
    if getattr(args, "json", False):
        for f in summary.feeds:
            _emit(f.to_json())
        return 0
    rows = []
    for f in summary.feeds:
        what = f.error if f.status == "failed" else (f.note or "")
        rows.append([f.feed, f.status, str(f.new_entries), str(f.new_incidents), str(f.new_cases),
                     what])
    _table(rows, ["FEED", "STATUS", "NEW", "INCIDENTS", "CASES", "NOTE"])
    failed = summary.failed
    print(f"\n{sum(f.new_entries for f in summary.feeds)} new entries, {summary.new_incidents} new "
          f"incidents, {len(summary.new_cases)} new cases; "
          f"{len(failed)} of {len(summary.feeds)} feeds failed"
          + (": " + ", ".join(f.feed for f in failed) if failed else ""))
    return 0


def incident_json(r: store.IncidentRow) -> dict[str, Any]:
    return {
        "id": r.id, "entry": r.entry_id,  # `blockwatch review mark ENTRY` corrects it
        "title": r.title, "url": r.url, "published": iso(r.published),
        "first_seen": iso(r.first_seen), "occurred_at": iso(r.occurred_at), "feed": r.feed,
        "feed_kind": r.feed_kind,  # feed | rferl | gdelt | google_news
        "query": r.query,  # the search query that found it (searches only)
        "publisher_url": r.source_url,  # the publisher site an aggregator's item names
        "country": r.country, "status": r.status,
        "evidence": r.evidence,  # the words that made it an incident, as the extractor gives them
        "outlets": list(r.outlets), "people": list(r.people), "types": list(r.types),
        "linked_events": [{"id": e.id, "target": e.target, "vantage": e.vantage, "state": e.state,
                           "started_at": iso(e.started_at)} for e in r.linked_events],
        # a person's review decided what this says (null: the extractor's reading)
        "review": ({"reviewed_at": iso(r.reviewed_at), "note": r.review_note}
                   if r.reviewed_at else None),
    }


def cmd_incidents(cfg: Config, args: argparse.Namespace) -> int:
    """Incidents, newest first: a table, or JSON lines with `--json`."""
    db = open_database(cfg.database_url)
    try:
        with db.read() as s:
            rows = store.list_incidents(s, limit=getattr(args, "limit", None),
                                        country=getattr(args, "country", None))
    finally:
        db.close()
    if getattr(args, "json", False):
        for r in rows:
            _emit(incident_json(r))
        return 0
    if not rows:
        print("no incidents yet: run `blockwatch feeds` (or `blockwatch run`) with feeds configured",
              file=sys.stderr)
        return 0
    table = []
    for r in rows:
        about = ", ".join([*r.outlets, *r.people]) or "-"
        linked = ", ".join(f"{e.target} {e.state}@{e.vantage}" for e in r.linked_events) or "-"
        when = (iso(r.occurred_at) or "")[:16].replace("T", " ") + "Z"
        entry = f"{r.entry_id}" + ("*" if r.reviewed_at else "")
        table.append([when, entry, r.feed, r.country or "-", ",".join(r.types), about, linked,
                      r.title])
    _table(table, ["DATE (UTC)", "ENTRY", "FEED", "CC", "TYPES", "ABOUT", "BLOCKING", "TITLE"])
    print("\nENTRY: the feed entry's id (* reviewed); `blockwatch review mark ENTRY ...` "
          "corrects a reading", file=sys.stderr)
    return 0
