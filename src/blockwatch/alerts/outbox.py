"""The outbox: every notification is a row first, then a delivery.

Row life cycle (`status`):
  pending  -- due at `next_attempt_at`. A worker *claims* a row by bumping `attempts` and moving
              `next_attempt_at` a lease ahead, in its own committed transaction; a worker that
              dies mid-delivery therefore leaves a row that is simply retried when the lease ends.
              The claim is the pair (`attempts`, `next_attempt_at`) it wrote: every later change
              by that worker (`renew` just before the row's delivery, `mark_sending`, a retry)
              applies only while the row still holds it, so a worker whose lease ran out (a slow
              batch) skips a row another worker has claimed since instead of sending it again.
  sending  -- (email, Telegram) committed just before the SMTP end-of-data mark is written or
              the Bot API request is sent: past this point it may have been accepted. Nothing
              can tell a crash here apart from a crash after acceptance, so a `sending` row
              whose lease ran out becomes
              `uncertain` and is never resent (at most once; see README).
  sent     -- the server accepted it (SMTP 250 after the data / HTTP 2xx); committed at once.
  failed   -- refused for good (SMTP 5xx, HTTP 4xx) or still failing after MAX_AGE.
  uncertain-- see `sending`.

Every state change is its own short transaction: a slow SMTP server never holds a database lock.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from blockwatch.storage import Database
from blockwatch.storage.models import Outbox

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=15)  # far longer than one delivery (SMTP/HTTP timeouts are 60 s)
FIRST_RETRY = timedelta(seconds=30)
MAX_RETRY = timedelta(hours=1)
MAX_AGE = timedelta(days=2)  # an alert older than this is news no more: give up, say so
PENDING, SENDING, SENT, FAILED, UNCERTAIN = "pending", "sending", "sent", "failed", "uncertain"


@dataclass(frozen=True)
class Row:
    """A claimed outbox row, detached from its session (deliveries run outside transactions)."""

    id: int
    key: str
    channel: str
    destination: str
    kind: str
    subject: str
    payload: dict[str, Any]
    attempts: int
    created_at: datetime
    lease: datetime  # the claim's `next_attempt_at`: with `attempts`, what makes it this claim's


class ClaimLost(Exception):
    """The row was claimed by another worker after this one's lease ran out: not ours to send."""


def enqueue(s: Session, *, key: str, channel: str, destination: str, kind: str, subject: str,
            payload: dict[str, Any], now: datetime) -> bool:
    """Insert unless the key exists (then nothing changes); True when a row was added.

    ON CONFLICT DO NOTHING rather than check-then-insert: two processes on one PostgreSQL
    database may queue the same notification at the same moment.
    """
    values = dict(key=key, channel=channel, destination=destination, kind=kind,
                  subject=subject, payload=payload, status=PENDING, attempts=0, created_at=now,
                  next_attempt_at=now)
    dialect = s.get_bind().dialect.name
    ins = pg_insert(Outbox) if dialect == "postgresql" else sqlite_insert(Outbox)
    stmt = ins.values(**values).on_conflict_do_nothing(index_elements=["key"]).returning(Outbox.id)
    # RETURNING, not rowcount: psycopg reports -1 for a skipped row
    return s.execute(stmt).scalar() is not None


def backoff(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min, ... at most 1 h between attempts."""
    return min(FIRST_RETRY * (2 ** max(0, attempts - 1)), MAX_RETRY)


def expire_sending(db: Database, now: datetime) -> list[str]:
    """`sending` rows whose lease ran out (their worker crashed after the point of no return)
    become `uncertain`; returns their keys for the log."""
    with db.write() as s:
        rows = list(s.scalars(select(Outbox).where(Outbox.status == SENDING,
                                                   Outbox.next_attempt_at <= now)))
        for r in rows:
            r.status = UNCERTAIN
            r.last_error = ((r.last_error + "; ") if r.last_error else "") + (
                "delivery was interrupted after the message was handed to the server; "
                "not resent, it may or may not have arrived")
            log.warning("outbox %s: interrupted after hand-over; marked uncertain, not resent",
                        r.key)
        return [r.key for r in rows]


def claim(db: Database, now: datetime, *, ids: Iterable[int] | None = None,
          limit: int = 100, channels: Iterable[str] | None = None,
          other_than: Iterable[str] | None = None) -> list[Row]:
    """Take due rows for delivery (one committed transaction), oldest first; only those of
    `channels`, or of channels not in `other_than`, when given (each channel is claimed and
    delivered on its own, so a stuck one never holds back another)."""
    with db.write() as s:
        q = (select(Outbox).where(Outbox.status == PENDING, Outbox.next_attempt_at <= now)
             .order_by(Outbox.next_attempt_at, Outbox.id).limit(limit)
             # two delivering processes on PostgreSQL skip each other's rows instead of waiting
             .with_for_update(skip_locked=True))
        if ids is not None:
            q = q.where(Outbox.id.in_(list(ids)))
        if channels is not None:
            q = q.where(Outbox.channel.in_(list(channels)))
        if other_than is not None:
            q = q.where(Outbox.channel.not_in(list(other_than)))
        out = []
        for r in s.scalars(q):
            r.attempts = (r.attempts or 0) + 1
            r.next_attempt_at = now + LEASE
            out.append(Row(r.id, r.key, r.channel, r.destination, r.kind, r.subject,
                           dict(r.payload), r.attempts, r.created_at, now + LEASE))
        return out


def _held(row: Row) -> ColumnElement[bool]:
    """The row is still pending under this claim (no other worker claimed it since)."""
    return and_(Outbox.id == row.id, Outbox.status == PENDING, Outbox.attempts == row.attempts,
                Outbox.next_attempt_at == row.lease)


def _ours(row: Row) -> ColumnElement[bool]:
    """Held by this claim, or marked `sending` by it (nobody claims a `sending` row)."""
    return or_(_held(row), and_(Outbox.id == row.id, Outbox.status == SENDING,
                                Outbox.attempts == row.attempts))


def _changed(db: Database, row: Row, where: ColumnElement[bool], **values: Any) -> bool:
    with db.write() as s:
        done = s.execute(update(Outbox).where(where).values(**values)
                         .returning(Outbox.id)).scalar() is not None
    if not done:
        log.info("outbox %s: claimed by another delivery since this one's lease ran out; "
                 "left to it", row.key)
    return done


def renew(db: Database, row: Row, now: datetime) -> Row | None:
    """The lease from now on, just before the row is delivered (a batch of slow deliveries
    must not outlast it); None when another worker claimed the row meanwhile: skip it."""
    if _changed(db, row, _held(row), next_attempt_at=now + LEASE):
        return replace(row, lease=now + LEASE)
    return None


def mark_sending(db: Database, row: Row, now: datetime) -> bool:
    """The point of no return, recorded only while the row still holds this claim; False:
    another worker claimed it meanwhile, so this one must not send it."""
    return _changed(db, row, _held(row), status=SENDING, next_attempt_at=now + LEASE)


def mark_sent(db: Database, row_id: int, now: datetime) -> None:
    with db.write() as s:
        s.execute(update(Outbox).where(Outbox.id == row_id)
                  .values(status=SENT, sent_at=now, last_error=None))


def mark_uncertain(db: Database, row_id: int, error: str) -> None:
    with db.write() as s:
        s.execute(update(Outbox).where(Outbox.id == row_id)
                  .values(status=UNCERTAIN, last_error=error[:2000]))


def mark_failed(db: Database, row: Row, error: str, now: datetime, *, permanent: bool) -> str:
    """Record a failed attempt: a retry after backoff, or `failed` for good. Returns the status."""
    give_up = permanent or now + backoff(row.attempts) - row.created_at > MAX_AGE
    status = FAILED if give_up else PENDING
    _changed(db, row, _ours(row), status=status, last_error=error[:2000],
             next_attempt_at=now if give_up else now + backoff(row.attempts))
    return status


def retry_at(db: Database, row: Row, error: str, at: datetime) -> str:
    """A failed attempt to retry at a time the receiver named (Telegram's `retry_after`), or
    `failed` when that is past MAX_AGE. Returns the status."""
    give_up = at - row.created_at > MAX_AGE
    status = FAILED if give_up else PENDING
    _changed(db, row, _ours(row), status=status, last_error=error[:2000], next_attempt_at=at)
    return status


def defer(db: Database, row: Row, until: datetime, note: str) -> None:
    """Give back a claimed row that was not tried (it waits for an earlier part, or its chat
    asked to slow down): due at `until`, the attempt not counted."""
    _changed(db, row, _held(row), attempts=max(0, row.attempts - 1), last_error=note[:2000],
             next_attempt_at=until)


def state(db: Database, key: str) -> tuple[str, datetime] | None:
    """A row's status and next attempt time, by key."""
    with db.read() as s:
        r = s.execute(select(Outbox.status, Outbox.next_attempt_at)
                      .where(Outbox.key == key)).first()
        return (r[0], r[1]) if r else None


def release(db: Database, rows: Iterable[Row], error: str, now: datetime) -> None:
    """Give back claimed rows that were not tried (e.g. a missing secret): due again after backoff,
    the attempt not counted against them."""
    for r in rows:
        _changed(db, r, _held(r), attempts=max(0, r.attempts - 1), last_error=error[:2000],
                 next_attempt_at=now + backoff(r.attempts))


def statuses(db: Database, ids: Iterable[int]) -> dict[int, tuple[str, str | None]]:
    with db.read() as s:
        return {r.id: (r.status, r.last_error)
                for r in s.scalars(select(Outbox).where(Outbox.id.in_(list(ids))))}


def backlog(s: Session, now: datetime) -> dict[str, int]:
    """For `blockwatch health`: rows waiting, overdue (> 10 min), failed and uncertain."""
    rows = s.execute(select(Outbox.status, Outbox.next_attempt_at).where(
        or_(Outbox.status.in_([PENDING, SENDING, FAILED, UNCERTAIN])))).all()
    out = {"pending": 0, "overdue": 0, "failed": 0, "uncertain": 0}
    for status, due in rows:
        if status in (PENDING, SENDING):
            out["pending"] += 1
            if due < now - timedelta(minutes=10):
                out["overdue"] += 1
        else:
            out[status] += 1
    return out
