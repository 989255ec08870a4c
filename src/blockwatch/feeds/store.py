"""The database edge of the feeds: small functions over a Session (SQLite and PostgreSQL)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from blockwatch.feeds.correlate import BLOCKING_STATES, EventRef, IncidentRef, match_cases
from blockwatch.feeds.extract import Matcher
from blockwatch.feeds.parse import ParsedEntry
from blockwatch.feeds.rferl import DiscoveredFeed
from blockwatch.storage.models import (
    Case,
    Event,
    Feed,
    FeedEntry,
    Incident,
    IncidentReview,
    KeyValue,
    Target,
    Vantage,
)
from blockwatch.textsafe import storable, storable_data, storable_opt

# A published time further ahead than this is a broken clock or a typo in the feed: such an
# entry is dated when it was first seen, so it cannot be linked to events that never happen.
FUTURE_SLACK = timedelta(days=1)


def occurred_at(published: datetime | None, first_seen: datetime) -> datetime:
    """When an incident happened: the entry's published time, else (none, or one past the slack)
    when it was first seen."""
    return published if published and published <= first_seen + FUTURE_SLACK else first_seen


def _insert(s: Session, model: Any) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING for the session's dialect: two pollers (two processes on
    PostgreSQL) may store the same entry; the second one must not fail."""
    dialect = s.get_bind().dialect.name
    return (postgresql.insert(model) if dialect == "postgresql" else sqlite.insert(model)
            ).on_conflict_do_nothing()


@dataclass(frozen=True)
class FeedSpec:
    """A row of the feeds table as configured: a feed, an RFE/RL site or a search."""

    name: str
    url: str
    language: str
    kind: str = "feed"


@dataclass
class FeedState:
    id: int
    name: str
    url: str
    etag: str | None
    last_modified: str | None
    consecutive_failures: int
    next_attempt_at: datetime | None
    last_error: str | None


def sync_feeds(s: Session, sources: Sequence[FeedSpec]) -> dict[str, FeedState]:
    """A Feed row per configured source (matched by name). A changed URL starts afresh: the old
    validators and failures belong to the old address."""
    rows = {f.name: f for f in s.scalars(select(Feed).where(Feed.name.in_([x.name for x in sources])))}
    out: dict[str, FeedState] = {}
    for src in sources:
        row = rows.get(src.name)
        if row is None:
            row = Feed(name=src.name, url=src.url, language=src.language, consecutive_failures=0,
                       kind=src.kind)
            s.add(row)
        elif row.url != src.url or row.kind != src.kind:
            row.url = src.url
            row.etag = row.last_modified = row.last_error = row.next_attempt_at = None
            row.consecutive_failures = 0
        row.language = src.language
        row.kind = src.kind
        s.flush()
        out[src.name] = FeedState(row.id, row.name, row.url, row.etag, row.last_modified,
                                  row.consecutive_failures or 0, row.next_attempt_at, row.last_error)
    return out


def record_failure(s: Session, feed_id: int, *, at: datetime, error: str,
                   next_attempt_at: datetime) -> None:
    row = s.get(Feed, feed_id)
    assert row is not None
    row.last_attempt_at = at
    row.consecutive_failures = (row.consecutive_failures or 0) + 1
    row.last_error = storable(error[:2000])
    row.next_attempt_at = next_attempt_at


def failures(s: Session, feed_id: int) -> int:
    row = s.get(Feed, feed_id)
    return (row.consecutive_failures or 0) if row else 0


def record_success(s: Session, feed_id: int, *, at: datetime, etag: str | None,
                   last_modified: str | None, next_attempt_at: datetime) -> None:
    row = s.get(Feed, feed_id)
    assert row is not None
    row.last_attempt_at = row.last_success_at = at
    row.consecutive_failures = 0
    row.last_error = None
    row.next_attempt_at = next_attempt_at
    # validators are server-chosen text; bound them so a hostile header cannot bloat the row
    row.etag = etag[:1000] if etag else None
    row.last_modified = last_modified[:200] if last_modified else None


def _discovered_key(feed_id: int) -> str:
    return f"feeds.rferl.{feed_id}"


def save_discovered(s: Session, feed_id: int, feeds: Sequence[DiscoveredFeed], at: datetime) -> None:
    """Remember an RFE/RL site's feed list: the fallback when its /rssfeeds page fails."""
    value = {"checked_at": at.isoformat(), "feeds": [[f.title, f.url] for f in feeds]}
    row = s.get(KeyValue, _discovered_key(feed_id))
    if row is None:
        s.add(KeyValue(key=_discovered_key(feed_id), value=value, updated_at=at))
    else:
        row.value, row.updated_at = value, at


def load_discovered(s: Session, feed_id: int) -> tuple[list[DiscoveredFeed], datetime | None]:
    row = s.get(KeyValue, _discovered_key(feed_id))
    if row is None or not isinstance(row.value, dict):
        return [], None
    feeds = [DiscoveredFeed(str(t), str(u)) for t, u in row.value.get("feeds", [])]
    try:
        checked = datetime.fromisoformat(row.value.get("checked_at", ""))
    except ValueError:
        checked = None
    return feeds, checked


def save_validators(s: Session, feed_id: int, validators: Mapping[str, Sequence[str | None]],
                    at: datetime) -> None:
    """The conditional-GET validators of an RFE/RL site's feeds, by feed address."""
    key = _discovered_key(feed_id) + ".validators"
    value = {u: [(v[0] or "")[:1000] or None, (v[1] or "")[:200] or None]
             for u, v in validators.items()}
    row = s.get(KeyValue, key)
    if row is None:
        s.add(KeyValue(key=key, value=value, updated_at=at))
    else:
        row.value, row.updated_at = value, at


def load_validators(s: Session, feed_id: int) -> dict[str, tuple[str | None, str | None]]:
    row = s.get(KeyValue, _discovered_key(feed_id) + ".validators")
    if row is None or not isinstance(row.value, dict):
        return {}
    return {str(u): (v[0], v[1]) for u, v in row.value.items()
            if isinstance(v, list) and len(v) == 2}


@dataclass
class Stored:
    new_entries: int = 0
    incident_ids: list[int] = field(default_factory=list)


def jsonable(v: Any) -> Any:
    """The extractor's evidence as JSON (it may be a dataclass, tuples, or plain strings)."""
    if v is None or isinstance(v, str | int | float | bool):
        return v
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return jsonable(dataclasses.asdict(v))
    if isinstance(v, Mapping):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple | set | frozenset):
        return [jsonable(x) for x in v]
    return str(v)


def store_entries(s: Session, feed_id: int, entries: Iterable[ParsedEntry], matcher: Matcher, *,
                  now: datetime, query_of: Mapping[str, str] | None = None,
                  country: str | None = None) -> Stored:
    """Insert the entries this feed has not stored yet (by entry key) and an Incident for each
    new one that is an incident, with the country, status and evidence the extractor gives.
    `query_of`: for a search, the query that found each entry. Entries already stored are left
    as they are. Every incident is kept, old or foreign: reading filters, storing does not.
    `country`: the feed's country, for entries whose text names none."""
    entries = list(entries)
    keys = [storable(e.key) for e in entries]  # as stored (textsafe)
    known: set[str] = set()
    for i in range(0, len(keys), 500):  # bounded IN lists
        known.update(s.scalars(select(FeedEntry.entry_key).where(
            FeedEntry.feed_id == feed_id, FeedEntry.entry_key.in_(keys[i:i + 500]))))
    out = Stored()
    for e, key in zip(entries, keys, strict=True):
        if key in known:
            continue
        known.add(key)
        entry_id = s.execute(
            _insert(s, FeedEntry).values(
                # feed text is text from outside: storable as every stored text (textsafe)
                feed_id=feed_id, entry_key=key, title=storable(e.title),
                link=storable(e.link), summary=storable(e.summary),
                published_at=e.published_at, first_seen_at=now, content_sha256=e.content_sha256,
                query=storable_opt((query_of or {}).get(e.key)),
                source_url=storable(e.source_url) or None,
            ).returning(FeedEntry.id)
        ).scalar()
        if entry_id is None:
            continue  # another poller stored it a moment ago
        out.new_entries += 1
        x = matcher.extract(e.title, e.summary, country=country or None)
        if not x.is_incident:
            continue
        occurred = occurred_at(e.published_at, now)
        incident_id = s.execute(
            _insert(s, Incident).values(
                entry_id=entry_id, types=list(x.types), outlets=list(x.outlets),
                people=list(x.people), occurred_at=occurred, created_at=now,
                country=x.country or None,
                status=x.status or None,
                evidence=storable_data(jsonable(x.evidence)) or None,
            ).returning(Incident.id)
        ).scalar()
        if incident_id is not None:
            out.incident_ids.append(incident_id)
    return out


# PostgreSQL advisory lock ("bwCs") held by whoever writes cases or the incidents they are made
# from after storing (link_cases, a review): a review that moves an incident's outlets or
# deletes it must not interleave with a linker that read it before (SQLite's write lock is it)
CASES_LOCK = 0x62774373


def lock_cases(s: Session) -> None:
    if s.get_bind().dialect.name == "postgresql":
        s.execute(select(func.pg_advisory_xact_lock(CASES_LOCK)))


def link_cases(s: Session, *, window: timedelta, now: datetime,
               since: datetime | None = None, only: int | None = None) -> list[tuple[int, int]]:
    """Create the missing Case rows for incidents (occurred since `since`, or all; `only`: this
    incident alone) and blocking events of the same outlet within `window`. Returns the new
    (incident id, event id) pairs; running it again creates nothing."""
    lock_cases(s)
    q = select(Incident.id, Incident.outlets, Incident.occurred_at)
    if since is not None:
        q = q.where(Incident.occurred_at >= since)
    if only is not None:
        q = q.where(Incident.id == only)
    incidents = [IncidentRef(i, tuple(o or ()), t) for i, o, t in s.execute(q) if o]
    if not incidents:
        return []
    names = sorted({o for inc in incidents for o in inc.outlets})
    targets = dict(s.execute(select(Target.id, Target.name).where(Target.name.in_(names))).all())
    if not targets:
        return []
    lo = min(i.occurred_at for i in incidents) - window
    hi = max(i.occurred_at for i in incidents) + window
    events = [
        EventRef(eid, targets[tid], state, started)
        for eid, tid, state, started in s.execute(
            select(Event.id, Event.target_id, Event.state, Event.started_at).where(
                Event.target_id.in_(list(targets)), Event.state.in_(sorted(BLOCKING_STATES)),
                Event.started_at >= lo, Event.started_at <= hi))
    ]
    pairs = match_cases(incidents, events, window)
    if not pairs:
        return []
    ids = sorted({p[0] for p in pairs})
    existing: set[tuple[int, int]] = set()
    for i in range(0, len(ids), 500):
        existing.update(s.execute(select(Case.incident_id, Case.event_id).where(
            Case.incident_id.in_(ids[i:i + 500]))))
    new = []
    for inc_id, ev_id in pairs:
        if (inc_id, ev_id) in existing:
            continue
        r = s.execute(_insert(s, Case).values(incident_id=inc_id, event_id=ev_id, created_at=now)
                      .returning(Case.id)).scalar()
        if r is not None:
            new.append((inc_id, ev_id))
    return new


# --- reading -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LinkedEvent:
    id: int
    target: str
    vantage: str
    state: str
    started_at: datetime


@dataclass(frozen=True)
class IncidentRow:
    id: int
    title: str
    url: str
    published: datetime | None
    first_seen: datetime
    occurred_at: datetime
    feed: str
    outlets: tuple[str, ...]
    people: tuple[str, ...]
    types: tuple[str, ...]
    linked_events: tuple[LinkedEvent, ...]
    feed_kind: str = "feed"
    query: str | None = None
    source_url: str | None = None
    country: str | None = None
    status: str | None = None
    evidence: Any = None
    entry_id: int = 0
    reviewed_at: datetime | None = None  # a person's review decided it (blockwatch review)
    review_note: str | None = None


def list_incidents(s: Session, *, limit: int | None = None,
                   country: str | None = None) -> list[IncidentRow]:
    """Incidents, newest first, with the blocking events linked to them. `country`: those the
    extractor tagged with it, and those it could not tag that name an outlet of that country."""
    q = (select(Incident, FeedEntry, Feed.name, Feed.kind, IncidentReview.reviewed_at,
                IncidentReview.note)
         .join(FeedEntry, FeedEntry.id == Incident.entry_id)
         .join(Feed, Feed.id == FeedEntry.feed_id)
         .outerjoin(IncidentReview, IncidentReview.entry_id == Incident.entry_id)
         .order_by(Incident.occurred_at.desc(), Incident.id.desc()))
    if country:
        cc = country.upper()
        q = q.where(or_(Incident.country == cc, Incident.country.is_(None)))
        outlets = set(s.scalars(select(Target.name).where(Target.country == cc)))
        rows = [r for r in s.execute(q)
                if r[0].country == cc or set(r[0].outlets or ()) & outlets][:limit or None]
    else:
        rows = list(s.execute(q.limit(limit) if limit else q))
    ids = [r[0].id for r in rows]
    links: dict[int, list[LinkedEvent]] = {}
    for i in range(0, len(ids), 500):
        for inc_id, ev, tname, vname in s.execute(
            select(Case.incident_id, Event, Target.name, Vantage.name)
            .join(Event, Event.id == Case.event_id)
            .join(Vantage, Vantage.id == Event.vantage_id)
            .outerjoin(Target, Target.id == Event.target_id)
            .where(Case.incident_id.in_(ids[i:i + 500]))
            .order_by(Event.started_at, Event.id)
        ):
            links.setdefault(inc_id, []).append(
                LinkedEvent(ev.id, tname or "", vname, ev.state, ev.started_at))
    return [
        IncidentRow(inc.id, entry.title, entry.link, entry.published_at, entry.first_seen_at,
                    inc.occurred_at, feed, tuple(inc.outlets or ()), tuple(inc.people or ()),
                    tuple(inc.types or ()), tuple(links.get(inc.id, ())), kind or "feed",
                    entry.query, entry.source_url, inc.country, inc.status, inc.evidence,
                    entry.id, reviewed_at, note)
        for inc, entry, feed, kind, reviewed_at, note in rows
    ]
