"""Retention: raw measurements older than `retention.raw` go, except the evidence of every
anomaly and every state change (`keep`); daily rollups are kept for good. `prunable` is the one
rule: `prune` deletes by it and `blockwatch db stats` counts by it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, select

from blockwatch.storage import Database
from blockwatch.storage.models import Measurement

BATCH = 5000  # short write transactions: the prober keeps writing meanwhile


def prunable(cutoff: datetime) -> Any:
    """The measurements retention removes at `cutoff` (now minus `retention.raw`)."""
    return and_(Measurement.measured_at < cutoff, Measurement.keep.is_(False))


def prune(db: Database, keep_for: timedelta, now: datetime) -> int:
    cutoff = now - keep_for
    total = 0
    while True:
        with db.write() as s:
            ids = s.scalars(select(Measurement.id).where(prunable(cutoff)).limit(BATCH)).all()
            if not ids:
                return total
            # verdicts go with their measurement (ON DELETE CASCADE)
            s.execute(delete(Measurement).where(Measurement.id.in_(ids)))
            total += len(ids)
