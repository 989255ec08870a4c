"""Retention: raw measurements older than `retention.raw` go, except the evidence of every
anomaly and every state change (`keep`); daily rollups are kept for good. `prunable` is the one
rule: `prune` deletes by it and `blockwatch db stats` counts by it. Then the evidence pieces no
row refers to any more go (`sweep_pieces`), and kept rows are linked into their hash chain."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, select

from blockwatch.storage import Database, chain
from blockwatch.storage import evidence as E
from blockwatch.storage.bulk import PIECES_LOCK
from blockwatch.storage.models import EvidencePiece, Measurement

BATCH = 5000  # short write transactions: the prober keeps writing meanwhile


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
            total += len(ids)
    if total:
        sweep_pieces(db)
    return total


def sweep_pieces(db: Database) -> int:
    """Delete the evidence pieces no measurement refers to; returns how many. Under the write
    lock (SQLite) or the pieces' advisory lock taken alone (PostgreSQL: writers take it shared
    before they find a piece stored), so a piece a writer is about to refer to is never
    deleted."""
    with db.write() as s:
        if db.dialect == "postgresql":
            s.execute(select(func.pg_advisory_xact_lock(PIECES_LOCK)))
        used: set[str] = set()
        for refs in s.scalars(select(Measurement.evidence_refs)
                              .where(Measurement.evidence_refs.is_not(None))).yield_per(5000):
            used.update(E.ref_hashes(refs))
        gone = [h for h in s.scalars(select(EvidencePiece.sha256)) if h not in used]
        for lo in range(0, len(gone), 500):
            s.execute(delete(EvidencePiece).where(EvidencePiece.sha256.in_(gone[lo:lo + 500])))
        return len(gone)
