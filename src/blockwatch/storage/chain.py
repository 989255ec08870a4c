"""The hash chain of kept evidence: per vantage, every kept measurement row (`keep`: an anomaly, a
state change, or the control of either, which retention never removes) gets a position
(`chain_seq` 1, 2, ...) in the order it is linked, and `chain`, the SHA-256 of the previous row's
`chain` and this row's link. A row's link names its target, its time and the digest of what an
export prints of it (uid, target, URL, role, time, evidence SHA-256), so an export's records and
the chain's entries beside them (export.py) prove that no kept record of the period was removed
or changed, offline, against the head hash.

Rows are linked after they are stored, not while (a control becomes kept when an anomaly is
judged against it, possibly by a later upload): `link` chains every kept row not chained yet,
under one lock (SQLite's write lock; a PostgreSQL advisory lock), called by `export`, retention
and `db compact`. The order of a vantage's chain is the order its rows were linked; a late
measurement is appended. Nothing in a row's link changes after it is stored (runs' counters are
not in it)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from blockwatch.storage import repo
from blockwatch.storage.db import Database
from blockwatch.storage.models import Measurement, Target
from blockwatch.textsafe import canonical_json, printable, storable_data

GENESIS = "0" * 64  # the `chain` before a vantage's first link
BATCH = 2000
CHAIN_LOCK = 0x62774368  # "bwCh": PostgreSQL advisory lock of linkers
DIGEST_FIELDS = ("uid", "target", "url", "role", "measured_at", "evidence_sha256")


def digest(rec: Mapping[str, Any]) -> str:
    """The digest of an exported record's fields the chain covers (as the export prints them)."""
    return hashlib.sha256(canonical_json({k: rec.get(k) for k in DIGEST_FIELDS})
                          .encode("utf-8")).hexdigest()


def step(prev: str, target: str | None, measured_at: str | None, dig: str) -> str:
    """The chain value after `prev` of a link (its target, time and record digest)."""
    return hashlib.sha256((prev + "\n" + canonical_json([target, measured_at, dig]))
                          .encode("utf-8")).hexdigest()


def lock(db: Database, s: Session) -> None:
    """Hold the linkers' lock until `s` ends: taken first in a transaction that reads rows'
    chain places and acts on them (link; db compact's folds). SQLite's write lock is it."""
    if db.dialect == "postgresql":
        s.execute(select(func.pg_advisory_xact_lock(CHAIN_LOCK)))


def link(db: Database, *, batch: int = BATCH) -> int:
    """Chain every kept row not chained yet; returns how many were linked."""
    total = 0
    while True:
        with db.write() as s:
            lock(db, s)
            rows = s.execute(
                select(Measurement.id, Measurement.vantage_id, Measurement.uid, Measurement.url,
                       Measurement.role, Measurement.measured_at, Measurement.evidence_sha256,
                       Target.name)
                .outerjoin(Target, Target.id == Measurement.target_id)
                # spelled as the partial index ix_measurements_unchained is, so SQLite uses it
                .where(text("keep AND chain_seq IS NULL"))
                .order_by(Measurement.id).limit(batch)).all()
            if not rows:
                return total
            heads: dict[int, tuple[int, str]] = {}
            for vid in sorted({r.vantage_id for r in rows}):
                last = s.execute(select(Measurement.chain_seq, Measurement.chain)
                                 .where(Measurement.vantage_id == vid,
                                        Measurement.chain_seq.is_not(None))
                                 .order_by(Measurement.chain_seq.desc()).limit(1)).first()
                heads[vid] = (last[0], last[1]) if last else (0, GENESIS)
            changes = []
            for r in rows:
                seq, prev = heads[r.vantage_id]
                rec = storable_data({"uid": r.uid, "target": r.name, "url": r.url, "role": r.role,
                                     "measured_at": repo.iso(r.measured_at),
                                     "evidence_sha256": r.evidence_sha256}, printable)
                value = step(prev, rec["target"], rec["measured_at"], digest(rec))
                heads[r.vantage_id] = (seq + 1, value)
                changes.append({"id": r.id, "chain_seq": seq + 1, "chain": value})
            s.execute(update(Measurement).execution_options(synchronize_session=False), changes)
            total += len(rows)
