"""The hash chain of kept evidence: per vantage, every kept measurement row (`keep`: an anomaly, a
state change, or the control of either, which retention never removes) gets a position
(`chain_seq` 1, 2, ...) in the order it is linked, and `chain`, the SHA-256 of the previous row's
`chain` and this row's link. A row's link names its target, its time and the digest of what an
export prints of it, so an export's records and the chain's entries beside them (export.py) can
be checked offline (exportverify.py); against a head hash kept apart (an earlier export's, the
database's), no kept record of the segment up to it can be removed or changed unseen. There is no
signature: with the export alone, whoever rewrites it can recompute every hash.

Link formats (the version is part of the chain value, so a link cannot be passed off as the
other): v1 (`DIGEST_V1`: uid, target, URL, role, time, evidence SHA-256), the links stored before
v2; v2 adds the vantage's kind, the verdict, whether it was confirmed and the uid of the control
it was judged against (all fixed when the row is stored). A run's counters (`repeats`,
`repeated_until`) grow after linking and are in neither. Which links of a vantage are v2 is kept
in `kv` (`V2_KEY`: the first v2 position per vantage id).

Rows are linked after they are stored, not while (a control becomes kept when an anomaly is
judged against it, possibly by a later upload): `link` chains every kept row not chained yet,
under one lock (`lock`: SQLite's write lock; a PostgreSQL advisory lock), called by `export`,
retention and `db compact`. The order of a vantage's chain is the order its rows were linked; a
late measurement is appended."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session, aliased

from blockwatch.storage import repo
from blockwatch.storage.db import Database
from blockwatch.storage.models import Measurement, Target, Vantage, Verdict
from blockwatch.textsafe import canonical_json, printable, storable_data

GENESIS = "0" * 64  # the `chain` before a vantage's first link
BATCH = 2000
CHAIN_LOCK = 0x62774368  # "bwCh": PostgreSQL advisory lock of linkers
DIGEST_V1 = ("uid", "target", "url", "role", "measured_at", "evidence_sha256")
DIGEST_V2 = (*DIGEST_V1, "vantage_kind", "verdict", "confirmed", "control_uid")
DIGEST_FIELDS = {1: DIGEST_V1, 2: DIGEST_V2}
VERSION = 2  # of the links made now
V2_KEY = "chain:v2_from"  # kv: {vantage id: its first v2 position}


def digest(rec: Mapping[str, Any], v: int = 1) -> str:
    """The digest of an exported record's fields a version-`v` link covers (as printed)."""
    return hashlib.sha256(canonical_json({k: rec.get(k) for k in DIGEST_FIELDS[v]})
                          .encode("utf-8")).hexdigest()


def step(prev: str, target: str | None, measured_at: str | None, dig: str, v: int = 1) -> str:
    """The chain value after `prev` of a version-`v` link (its target, time and digest)."""
    link = [target, measured_at, dig] if v == 1 else [v, target, measured_at, dig]
    return hashlib.sha256((prev + "\n" + canonical_json(link)).encode("utf-8")).hexdigest()


def version(v2_from: Mapping[str, int], vantage_id: int, seq: int) -> int:
    first = v2_from.get(str(vantage_id))
    return 2 if first is not None and seq >= first else 1


def v2_from(s: Session) -> dict[str, int]:
    return dict(repo.get_kv(s, V2_KEY) or {})


def columns(s: Session) -> Any:
    """A select of what a link digests, joined from a measurement row (`Measurement`)."""
    ctl = aliased(Measurement)
    return (select(Measurement.id, Measurement.vantage_id, Measurement.chain_seq,
                   Measurement.chain, Measurement.uid, Measurement.url, Measurement.role,
                   Measurement.measured_at, Measurement.evidence_sha256,
                   Target.name.label("target"), Vantage.kind, Verdict.verdict, Verdict.confirmed,
                   ctl.uid.label("control_uid"))
            .join(Vantage, Vantage.id == Measurement.vantage_id)
            .outerjoin(Target, Target.id == Measurement.target_id)
            .outerjoin(Verdict, Verdict.measurement_id == Measurement.id)
            .outerjoin(ctl, ctl.id == Verdict.control_id))


def fields(r: Any) -> dict[str, Any]:
    """A row of `columns` as an export prints those fields."""
    return storable_data({"uid": r.uid, "target": r.target, "url": r.url, "role": r.role,
                          "measured_at": repo.iso(r.measured_at),
                          "evidence_sha256": r.evidence_sha256, "vantage_kind": r.kind,
                          "verdict": r.verdict, "confirmed": r.confirmed,
                          "control_uid": r.control_uid}, printable)


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
                columns(s)
                # spelled as the partial index ix_measurements_unchained is, so SQLite uses it
                .where(text("measurements.keep AND measurements.chain_seq IS NULL"))
                .order_by(Measurement.id).limit(batch)).all()
            if not rows:
                return total
            starts = v2_from(s)
            heads: dict[int, tuple[int, str]] = {}
            for vid in sorted({r.vantage_id for r in rows}):
                last = s.execute(select(Measurement.chain_seq, Measurement.chain)
                                 .where(Measurement.vantage_id == vid,
                                        Measurement.chain_seq.is_not(None))
                                 .order_by(Measurement.chain_seq.desc()).limit(1)).first()
                heads[vid] = (last[0], last[1]) if last else (0, GENESIS)
                if str(vid) not in starts:  # this vantage's first link in this format
                    starts[str(vid)] = heads[vid][0] + 1
            changes = []
            for r in rows:
                seq, prev = heads[r.vantage_id]
                v = version(starts, r.vantage_id, seq + 1)
                rec = fields(r)
                value = step(prev, rec["target"], rec["measured_at"], digest(rec, v), v)
                heads[r.vantage_id] = (seq + 1, value)
                changes.append({"id": r.id, "chain_seq": seq + 1, "chain": value})
            s.execute(update(Measurement).execution_options(synchronize_session=False), changes)
            if starts != v2_from(s):
                repo.set_kv(s, V2_KEY, starts)
            total += len(rows)
