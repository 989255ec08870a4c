"""Retention: raw measurements older than `retention.raw` go, except the evidence of every
anomaly and every state change (`keep`); daily rollups are kept for good. `prunable` is the one
rule: `prune` deletes by it and `blockwatch db stats` counts by it. Then the evidence pieces no
row refers to any more go (`sweep_pieces`), and kept rows are linked into their hash chain."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, select
from sqlalchemy.orm import Session

from blockwatch.storage import Database, chain, repo
from blockwatch.storage import evidence as E
from blockwatch.storage.bulk import PIECES_LOCK
from blockwatch.storage.convert import CURSORS as COMPACT_CURSORS
from blockwatch.storage.models import EvidencePiece, KeyValue, Measurement

log = logging.getLogger(__name__)

BATCH = 5000  # short write transactions: the prober keeps writing meanwhile
SWEEP_BATCH = 1000  # evidence pieces looked at, and at most deleted, per sweep transaction
SCAN_BATCH = 10_000  # measurement rows read per read transaction of the sweep's scan
SWEEP_PENDING = "retention:sweep_pending"  # kv: the token of the last sweep begun, until it ends
PRUNED = "retention:pruned"  # kv: measurements pruned, ever (a sweep on SQLite watches it)


def prunable(cutoff: datetime) -> Any:
    """The measurements retention removes at `cutoff` (now minus `retention.raw`)."""
    return and_(Measurement.measured_at < cutoff, Measurement.keep.is_(False))


def prune(db: Database, keep_for: timedelta, now: datetime) -> int:
    cutoff = now - keep_for
    total = 0
    chain.link(db)
    while True:
        with db.write() as s:
            ids = s.scalars(select(Measurement.id).where(prunable(cutoff)).limit(BATCH)).all()
            if not ids:
                break
            # verdicts go with their measurement (ON DELETE CASCADE)
            s.execute(delete(Measurement).where(Measurement.id.in_(ids)))
            if db.dialect == "sqlite":  # only a SQLite sweep reads it (see _deletions)
                repo.set_kv(s, PRUNED, (repo.get_kv(s, PRUNED) or 0) + len(ids))
            total += len(ids)
    if total or _sweep_pending(db):  # a sweep cut short (killed, or stopped) goes on now
        sweep_pieces(db)
    return total


# --- the sweep of unreferenced evidence pieces -------------------------------------------------
#
# Which pieces are referred to is only known by reading every row's references, and that read
# is long on a large database: it runs in read transactions of SCAN_BATCH rows (no lock; on
# SQLite a reader does not stop the writer). The deletes then go in write transactions of at
# most SWEEP_BATCH pieces. Rows can come to refer to a piece after the read saw none do:
#   - a writer stores a measurement (bulk.py): it looks up which of its pieces are stored and
#     stores only the others, all in one transaction under the pieces' lock (SQLite: the write
#     lock; PostgreSQL: PIECES_LOCK, shared);
#   - `db compact` rewrites whole evidence as pieces in older rows, in place.
# Each delete transaction therefore first takes the pieces' lock itself (alone on PostgreSQL:
# no writer is between finding a piece and committing) and reads what changed since the read:
# the rows from the highest id it covered (`top`) on. What was stored during the long scan is
# read once before, without the lock held (only the new `top` is taken under it), so the
# catch-ups under the lock read only what came since. Ids only grow for new rows on
# PostgreSQL (and a writer that refers to pieces takes the lock before its ids, so under the
# lock none below the highest is still to commit);
# SQLite gives a new row the highest id + 1, so an id below `top` is reused only once row `top`
# is gone (seen as another uid there, or as prune or compact's folding having deleted rows: the
# same measurement delivered again takes id `top` back): then, as when `db compact` moved its
# cursor (rows rewritten in place, anywhere), the sweep stops there, having deleted nothing it
# was not sure of, and goes on at the next prune
# (compact sweeps by itself when it is done; its cursor is also looked at by every read of the
# scan, which stops reading then). A writer that comes after a delete finds the piece gone and
# stores it again. All this relies on READ COMMITTED on PostgreSQL (storage/db.py pins it):
# each statement after the lock is granted sees what committed before.


@dataclass
class _Mark:
    """How far the sweep's knowledge of references reaches."""

    top: int  # every row with id <= top has its references in the sweep's set
    top_uid: str | None  # row `top`'s uid (SQLite: ids below are not reused while it stands)
    compact: tuple[Any, Any] | None  # db compact's evidence cursor: (value, updated_at)
    token: str  # this sweep's value of SWEEP_PENDING
    deletions: tuple[Any, ...] = ()  # SQLite: _deletions when the sweep began


def _lock(db: Database, s: Session) -> None:
    """The pieces' lock, alone (SQLite: the write transaction holds the write lock already)."""
    if db.dialect == "postgresql":
        s.execute(select(func.pg_advisory_xact_lock(PIECES_LOCK)))


def _compact_cursor(s: Session, kind: str = "pieces") -> tuple[Any, Any] | None:
    row = s.execute(select(KeyValue.value, KeyValue.updated_at)
                    .where(KeyValue.key == COMPACT_CURSORS[kind])).one_or_none()
    return None if row is None else (row[0], row[1])


def _deletions(db: Database, s: Session) -> tuple[Any, ...]:
    """SQLite: what moves when measurements are deleted (prune's count, db compact's folding
    cursors): after a delete SQLite may give a new row an id at or below `top`, and the same
    uid on row `top` again does not show that rows below it were replaced."""
    if db.dialect != "sqlite":
        return ()
    return repo.get_kv(s, PRUNED), _compact_cursor(s, "vantage"), _compact_cursor(s, "control")


def _digests(refs: bytes | None) -> Iterable[bytes]:
    if refs:
        refs = bytes(refs)  # PostgreSQL hands back a memoryview
        for i in range(0, len(refs), E.DIGEST):
            yield refs[i:i + E.DIGEST]


def _sweep_pending(db: Database) -> bool:
    with db.read() as s:
        return bool(repo.get_kv(s, SWEEP_PENDING))


def _any_piece(s: Session) -> bool:
    return s.scalar(select(EvidencePiece.sha256).limit(1)) is not None


def _nothing_to_sweep(db: Database) -> bool:
    """No piece is stored (pieces off, or all swept): no scan. A pending sweep is done then."""
    with db.read() as s:
        if _any_piece(s):
            return False
        pending = repo.get_kv(s, SWEEP_PENDING)
    if pending:
        with db.write() as s:
            _lock(db, s)  # a writer storing pieces now has them when this looks
            if _any_piece(s):
                return False
            repo.set_kv(s, SWEEP_PENDING, None)
    return True


def _newest(s: Session) -> tuple[int, str | None]:
    """The highest measurement id and its uid, (0, None) with no measurement."""
    row = s.execute(select(Measurement.id, Measurement.uid)
                    .order_by(Measurement.id.desc()).limit(1)).first()
    return (row[0], row[1]) if row else (0, None)


def _begin(db: Database) -> _Mark:
    """The starting mark, under the lock: every row that refers to pieces at or below `top`
    has committed (none is between finding a piece stored and committing)."""
    with db.write() as s:
        _lock(db, s)
        top, uid = _newest(s)
        token = uuid.uuid4().hex
        repo.set_kv(s, SWEEP_PENDING, token)
        return _Mark(top, uid, _compact_cursor(s), token, _deletions(db, s))


def _read_refs(db: Database, lo: int, top: int, used: set[bytes],
               compact: tuple[Any, Any] | None) -> None:
    """The references of the rows lo < id <= top, in short read transactions of at most
    SCAN_BATCH rows each: each range ends at the SCAN_BATCH-th id found (an index walk), so ids
    left sparse by retention cost no more transactions than dense ones. Cut short once db
    compact's cursor is no longer `compact` (the sweep stops then: see _unchanged)."""
    while lo < top:
        with db.read() as s:
            if _compact_cursor(s) != compact:
                return
            hi = s.scalar(select(Measurement.id).where(Measurement.id > lo)
                          .order_by(Measurement.id).limit(1).offset(SCAN_BATCH - 1))
            hi = top if hi is None or hi > top else hi
            for refs in s.scalars(select(Measurement.evidence_refs)
                                  .where(Measurement.id > lo, Measurement.id <= hi,
                                         Measurement.evidence_refs.is_not(None))):
                used.update(_digests(refs))
        lo = hi


def _scan(db: Database, mark: _Mark, used: set[bytes]) -> None:
    """The references of the rows up to `mark.top`."""
    _read_refs(db, 0, mark.top, used, mark.compact)


def _unchanged(db: Database, s: Session, mark: _Mark) -> bool:
    """Under the lock: False (logged) when rows may have come to refer to pieces where reading
    the rows after `mark` cannot tell (see above)."""
    if _compact_cursor(s) != mark.compact:
        log.info("evidence sweep stopped: db compact is rewriting evidence as pieces (it sweeps "
                 "when done; else the next prune goes on)")
        return False
    if _deletions(db, s) != mark.deletions:
        log.info("evidence sweep stopped: measurements were pruned or folded meanwhile (SQLite "
                 "may reuse their ids); the next prune goes on")
        return False
    if db.dialect == "sqlite" and mark.top and s.scalar(
            select(Measurement.uid).where(Measurement.id == mark.top)) != mark.top_uid:
        log.info("evidence sweep stopped: the newest row it knew was deleted (SQLite may reuse "
                 "ids below it); the next prune goes on")
        return False
    return True


def _catch_up_unlocked(db: Database, mark: _Mark, used: set[bytes]) -> bool:
    """What was stored during the scan, read without the lock held: under it only the new top
    is taken (no row at or below it that refers to pieces is uncommitted then: writers take
    the lock before their ids), and the rows up to it are read after in short read
    transactions, so the locked catch-ups read only what came since. False as _unchanged."""
    with db.write() as s:
        _lock(db, s)
        if not _unchanged(db, s, mark):
            return False
        top, uid = _newest(s)
    if top > mark.top:
        _read_refs(db, max(mark.top - 1, 0), top, used, mark.compact)  # row `top` again
        mark.top, mark.top_uid = top, uid
    return True


def _catch_up(db: Database, s: Session, mark: _Mark, used: set[bytes]) -> bool:
    """Under the lock: add the references of rows stored since `mark` and move it; False as
    _unchanged."""
    if not _unchanged(db, s, mark):
        return False
    for mid, uid, refs in s.execute(select(Measurement.id, Measurement.uid,
                                           Measurement.evidence_refs)
                                    # row `top` again: the same uid stored again on SQLite
                                    # takes the same id (row gone, re-delivered) and passes
                                    # the check above
                                    .where(Measurement.id >= mark.top)
                                    .order_by(Measurement.id)):
        used.update(_digests(refs))
        mark.top, mark.top_uid = mid, uid
    return True


def sweep_pieces(db: Database, *, batch: int | None = None,
                 after_batch: Callable[[int], None] | None = None) -> int:
    """Delete the evidence pieces no measurement refers to; returns how many. In short
    transactions (at most `batch` pieces each, default SWEEP_BATCH), never deleting a piece a
    row stored or rewritten meanwhile refers to (see above); `after_batch(n)` is called after
    each batch of pieces looked at (tests store rows there). A sweep cut short leaves the kv
    mark `retention:sweep_pending`, and the next prune sweeps even with nothing to prune.
    With no piece stored it reads nothing more."""
    size = batch or SWEEP_BATCH
    if _nothing_to_sweep(db):
        return 0
    mark = _begin(db)
    used: set[bytes] = set()
    _scan(db, mark, used)
    if not _catch_up_unlocked(db, mark, used):
        return 0
    deleted = 0
    after = ""
    n = 0
    while True:
        with db.read() as s:
            page = list(s.scalars(select(EvidencePiece.sha256).where(EvidencePiece.sha256 > after)
                                  .order_by(EvidencePiece.sha256).limit(size)))
        if not page:
            break
        after = page[-1]
        maybe = [(h, d) for h in page if (d := bytes.fromhex(h)) not in used]
        if maybe:
            with db.write() as s:
                _lock(db, s)
                if not _catch_up(db, s, mark, used):
                    return deleted
                gone = [h for h, d in maybe if d not in used]
                for lo in range(0, len(gone), 500):
                    s.execute(delete(EvidencePiece).where(EvidencePiece.sha256.in_(gone[lo:lo + 500])))
            deleted += len(gone)
        n += 1
        if after_batch is not None:
            after_batch(n)
    with db.write() as s:
        # only if no sweep began since: one that is cut short must stay pending (one that ends
        # clears it for this one too: it began later and looked at every piece)
        if repo.get_kv(s, SWEEP_PENDING) == mark.token:
            repo.set_kv(s, SWEEP_PENDING, None)
    return deleted
