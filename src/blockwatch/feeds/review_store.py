"""The database edge of reviews: a person's reading of a feed entry, stored and applied.

A review overrides the extractor in the one place every reader looks: the incidents table. An
entry reviewed as an incident has an incident row with the reviewed types, status, outlets,
people and country (added if the extractor missed it); one reviewed as no incident has none, and
its cases go with it (ON DELETE CASCADE). The site, status.json, the digest, alerts and
`incidents` then show what the person decided without knowing reviews exist. Entries are stored
once (store.store_entries skips keys it has), so a later poll never brings a dismissed incident
back; the extractor's reading before the first review is kept in the review row.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from blockwatch.feeds import store
from blockwatch.feeds.review import Labels, ReviewError
from blockwatch.storage.models import Case, Event, Feed, FeedEntry, Incident, IncidentReview, Target
from blockwatch.textsafe import storable


def _labels_of(inc: Incident | None) -> Labels:
    if inc is None:
        return Labels(False)
    return Labels(True, tuple(inc.types or ()), inc.status, tuple(inc.outlets or ()),
                  tuple(inc.people or ()), inc.country)


def _review_labels(r: IncidentReview) -> Labels:
    return Labels(bool(r.incident), tuple(r.types or ()), r.status, tuple(r.outlets or ()),
                  tuple(r.people or ()), r.country)


@dataclass(frozen=True)
class Applied:
    entry_id: int
    action: str  # dismissed | added | corrected | confirmed | confirmed no incident
    before: Labels
    after: Labels
    incident_id: int | None
    cases_removed: int
    cases_added: int


def _load(s: Session, entry_id: int) -> tuple[FeedEntry, Incident | None, IncidentReview | None]:
    entry = s.get(FeedEntry, entry_id)
    if entry is None:
        raise ReviewError(f"entry {entry_id}: no such feed entry (`blockwatch review entries` "
                          "lists them; `blockwatch incidents` shows each incident's entry)")
    inc = s.scalar(select(Incident).where(Incident.entry_id == entry_id))
    rev = s.scalar(select(IncidentReview).where(IncidentReview.entry_id == entry_id))
    return entry, inc, rev


def _reading(inc: Incident | None, rev: IncidentReview | None) -> Labels:
    # the review's, if any (it also keeps the outlets, people and country of "no incident")
    return _review_labels(rev) if rev is not None else _labels_of(inc)


def current(s: Session, entry_id: int) -> tuple[FeedEntry, Labels]:
    """The entry and its reading as stored now: the last review's, else the extractor's. Takes
    the cases' lock, so the reading stays the stored one until the transaction's review."""
    store.lock_cases(s)
    entry, inc, rev = _load(s, entry_id)
    return entry, _reading(inc, rev)


def apply(s: Session, entry_id: int, labels: Labels, *, note: str, now: datetime,
          window: timedelta) -> Applied:
    """Store a person's reading of an entry and make its incident row say it. Under the cases'
    lock (store.lock_cases), so two reviews of one entry, or a review and the daemon's linking,
    take turns on PostgreSQL too."""
    store.lock_cases(s)
    entry, inc, rev = _load(s, entry_id)
    before = _reading(inc, rev)
    if rev is None:
        rev = IncidentReview(entry_id=entry_id, extracted=before.to_json())
        s.add(rev)
    rev.incident, rev.types, rev.status = labels.incident, list(labels.types), labels.status
    rev.outlets, rev.people = list(labels.outlets), [storable(p) for p in labels.people]
    rev.country, rev.reviewed_at = labels.country, now
    if note or not rev.note:  # a confirmation without a note keeps the earlier review's
        rev.note = storable(note)
    removed = added = 0
    if not labels.incident:
        if inc is not None:
            removed = s.scalar(select(func.count()).select_from(Case)
                               .where(Case.incident_id == inc.id)) or 0
            s.execute(delete(Incident).where(Incident.id == inc.id))  # its cases cascade
        s.flush()
        action = "dismissed" if before.incident else "confirmed no incident"
        return Applied(entry_id, action, before, labels, None, removed, 0)
    if inc is None:
        inc = Incident(entry_id=entry_id, created_at=now, evidence=None,
                       occurred_at=store.occurred_at(entry.published_at, entry.first_seen_at))
        s.add(inc)
    inc.types, inc.outlets = list(labels.types), list(labels.outlets)
    inc.people, inc.status, inc.country = list(rev.people), labels.status, labels.country
    s.flush()
    # cases of outlets the person took away go; those of outlets added are linked now
    keep = set(labels.outlets)
    stale = [cid for cid, name in s.execute(
        select(Case.id, Target.name).join(Event, Event.id == Case.event_id)
        .outerjoin(Target, Target.id == Event.target_id).where(Case.incident_id == inc.id))
        if name not in keep]
    if stale:
        s.execute(delete(Case).where(Case.id.in_(stale)))
        removed = len(stale)
    added = len(store.link_cases(s, window=window, now=now, only=inc.id))
    if not before.incident:
        action = "added"
    else:
        action = "confirmed" if before == labels else "corrected"
    return Applied(entry_id, action, before, labels, inc.id, removed, added)


@dataclass(frozen=True)
class EntryRow:
    id: int
    feed: str
    language: str
    title: str
    summary: str
    url: str
    published: datetime | None
    first_seen: datetime
    incident: Labels
    reviewed: bool


def _rows(s: Session, q: object) -> Iterator[EntryRow]:
    for entry, feed, lang, inc, rev in s.execute(q):  # type: ignore[call-overload]
        yield EntryRow(entry.id, feed, lang, entry.title, entry.summary, entry.link,
                       entry.published_at, entry.first_seen_at, _labels_of(inc), rev is not None)


def _entries_query():  # type: ignore[no-untyped-def]
    return (select(FeedEntry, Feed.name, Feed.language, Incident, IncidentReview.id)
            .join(Feed, Feed.id == FeedEntry.feed_id)
            .outerjoin(Incident, Incident.entry_id == FeedEntry.id)
            .outerjoin(IncidentReview, IncidentReview.entry_id == FeedEntry.id))


def entries(s: Session, *, search: str | None = None, no_incident: bool = False,
            incident: bool = False, unreviewed: bool = False, sample: int | None = None,
            limit: int = 50) -> list[EntryRow]:
    """Stored entries, newest first (or `sample` drawn at random): those matching `search` in
    title or summary (any case, any script), those with (or with no) incident, those not yet
    reviewed."""
    q = _entries_query()
    if no_incident:
        q = q.where(Incident.id.is_(None))
    if incident:
        q = q.where(Incident.id.is_not(None))
    if unreviewed:
        q = q.where(IncidentReview.id.is_(None))
    if sample and not search:
        return list(_rows(s, q.order_by(func.random()).limit(sample)))
    q = q.order_by(FeedEntry.first_seen_at.desc(), FeedEntry.id.desc())
    if not search:
        return list(_rows(s, q.limit(limit)))
    # SQLite's LIKE and lower() fold ASCII only: Cyrillic and Kazakh text is matched here
    needle = search.casefold()
    out: list[EntryRow] = []
    for row in _rows(s, q.execution_options(yield_per=1000)):
        if needle in row.title.casefold() or needle in row.summary.casefold():
            out.append(row)
            if not sample and len(out) >= limit:
                break
    return random.sample(out, min(sample, len(out))) if sample else out


@dataclass(frozen=True)
class ReviewRow:
    entry: EntryRow
    labels: Labels
    extracted: Labels | None
    note: str
    reviewed_at: datetime


def reviews(s: Session) -> list[ReviewRow]:
    """Every review, oldest first, with its entry."""
    q = (_entries_query().add_columns(IncidentReview)
         .where(IncidentReview.id.is_not(None))
         .order_by(IncidentReview.reviewed_at, IncidentReview.id))
    out = []
    for entry, feed, lang, inc, _rid, rev in s.execute(q):
        row = EntryRow(entry.id, feed, lang, entry.title, entry.summary, entry.link,
                       entry.published_at, entry.first_seen_at, _labels_of(inc), True)
        out.append(ReviewRow(row, _review_labels(rev), Labels.from_json(rev.extracted),
                             rev.note or "", rev.reviewed_at))
    return out
