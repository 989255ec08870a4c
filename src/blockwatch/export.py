"""`blockwatch export`: the evidence of one target for a period, for lawyers and researchers.
Every record carries its raw measurement, the SHA-256 stored with it, and a SHA-256 of the
record itself; a manifest carries the SHA-256 of the whole file; a kept record (an anomaly, a
state change, their controls) its place in its vantage's hash chain (storage/chain.py), whose
entries for the period and head are written beside the records (`<file>.chain.json`), so
`blockwatch export --verify FILE` (exportverify.py) checks offline that no kept record was
removed or changed."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, or_, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, aliased

from blockwatch import __version__
from blockwatch.storage import Database, chain, repo
from blockwatch.storage import evidence as E
from blockwatch.storage.models import Measurement, Target, Vantage, Verdict
from blockwatch.textsafe import dumps, printable, storable_data

log = logging.getLogger(__name__)

CSV_FIELDS = ["uid", "target", "url", "vantage", "vantage_kind", "country", "asn", "role",
              "measured_at", "verdict", "confirmed", "reason", "control_uid", "evidence_sha256",
              "repeats", "repeated_until", "chain_seq", "chain", "record_sha256", "evidence"]


def public_vantage(name: str, kind: str, country: str, asn: str, *, reveal: bool) -> str:
    """Agents are people: their names stay out of exports unless asked for."""
    if kind == "agent" and not reveal:
        return f"agent:{country or '??'}:{asn or 'AS?'}"
    return name


def public_uid(uid: str | None, name: str | None, kind: str | None, country: str, asn: str, *,
               reveal: bool) -> str | None:
    """An agent's measurement uid is "<agent name>/<its own uid>" (collector/ingest.py): with
    names withheld the name becomes the public label, so the record still names its row."""
    if uid is None or name is None or kind != "agent" or reveal:
        return uid
    label = public_vantage(name, kind, country, asn, reveal=False)
    if uid.startswith(name + "/"):
        return label + uid[len(name):]
    return uid.replace(name, label) if name else uid


def _in_period(m: Any, since: datetime | None, until: datetime | None) -> list[Any]:
    out = []
    if since is not None:
        out.append(m.measured_at >= since)
    if until is not None:
        out.append(m.measured_at < until)
    return out


def named_controls_outside(s: Session, target_id: int, since: datetime | None,
                           until: datetime | None) -> list[int]:
    """The control rows that verdicts of the period name but the period does not hold: a
    verdict judged against an earlier round's control (round.py, control_reuse) names that
    control's row, which can be from an earlier day. They are exported with the period."""
    ctl = aliased(Measurement)
    outside = [ctl.target_id.is_(None), ctl.target_id != target_id]
    if since is not None:
        outside.append(ctl.measured_at < since)
    if until is not None:
        outside.append(ctl.measured_at >= until)
    return sorted(s.scalars(
        select(ctl.id).distinct()
        .join(Verdict, Verdict.control_id == ctl.id)
        .join(Measurement, Measurement.id == Verdict.measurement_id)
        .where(Measurement.target_id == target_id, *_in_period(Measurement, since, until),
               or_(*outside))))


@contextmanager
def snapshot(db: Database) -> Iterator[Session]:
    """One read transaction that sees the database as of its first query: the records and the
    chain entries written beside them must agree though rows are linked meanwhile (SQLite's
    read transaction is one already; PostgreSQL's READ COMMITTED is not)."""
    with db.read() as s:
        if db.dialect == "postgresql":
            s.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
        yield s


def records(db: Database, target: str, since: datetime | None, until: datetime | None, *,
            reveal_agents: bool = False) -> Iterator[dict[str, Any]]:
    """The target's records of the period in time order, then the controls its verdicts name
    from outside it (`named_controls_outside`), so every `control_uid` has its record."""
    with snapshot(db) as s:
        yield from _records(s, target, since, until, reveal_agents=reveal_agents)


def _records(s: Session, target: str, since: datetime | None, until: datetime | None, *,
             reveal_agents: bool = False) -> Iterator[dict[str, Any]]:
    ctl = aliased(Measurement)
    ctlv = aliased(Vantage)  # a control is the control vantage's row; masked if ever an agent's
    t = s.scalar(select(Target).where(Target.name == target))
    if t is None:
        raise LookupError(target)
    q = (select(Measurement, Vantage, Verdict, ctl.uid, ctlv.name, ctlv.kind, ctlv.country,
                ctlv.asn)
         .join(Vantage, Vantage.id == Measurement.vantage_id)
         .outerjoin(Verdict, Verdict.measurement_id == Measurement.id)
         .outerjoin(ctl, ctl.id == Verdict.control_id)
         .outerjoin(ctlv, ctlv.id == ctl.vantage_id)
         .order_by(Measurement.measured_at, Measurement.id))
    outside = named_controls_outside(s, t.id, since, until)
    queries = [q.where(Measurement.target_id == t.id, *_in_period(Measurement, since, until))]
    queries += [q.where(Measurement.id.in_(outside[i:i + 500]))
                for i in range(0, len(outside), 500)]
    for query in queries:
        for part in s.execute(query).yield_per(500).partitions():
            data = E.loads(s, [(m.evidence_json, m.evidence_z, m.evidence_refs)
                               for m, *_ in part])
            for (m, v, verdict, control_uid, *cv), ev in zip(part, data, strict=True):
                control_uid = public_uid(control_uid, *cv, reveal=reveal_agents)
                yield _record(t, m, v, verdict, control_uid, ev, reveal_agents)


def _record(t: Target, m: Measurement, v: Vantage, verdict: Verdict | None,
            control_uid: str | None, ev: Any, reveal_agents: bool) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "uid": public_uid(m.uid, v.name, v.kind, v.country, v.asn, reveal=reveal_agents),
        "target": t.name, "url": m.url,
        "vantage": public_vantage(v.name, v.kind, v.country, v.asn, reveal=reveal_agents),
        "vantage_kind": v.kind, "country": v.country, "asn": v.asn, "role": m.role,
        "measured_at": repo.iso(m.measured_at),
        "verdict": verdict.verdict if verdict else None,
        "confirmed": verdict.confirmed if verdict else None,
        "reason": verdict.reason if verdict else None,
        "control_uid": control_uid,
        "evidence_sha256": m.evidence_sha256,
        "evidence": ev,
    }
    if m.repeats:  # the same observable outcome measured again, up to repeated_until
        rec["repeats"], rec["repeated_until"] = m.repeats, repo.iso(m.repeated_until)
    if m.chain_seq is not None:  # a kept row: its place in its vantage's hash chain
        rec["chain_seq"], rec["chain"] = m.chain_seq, m.chain
    if v.kind == "agent" and not reveal_agents:
        rec["evidence"] = _strip_agent(rec["evidence"])
    # rows stored before text was made storable may hold controls or NaN: strict JSON
    rec = storable_data(rec, printable)
    rec["record_sha256"] = repo.evidence_hash({k: rec[k] for k in rec if k != "record_sha256"})
    return rec


def _strip_agent(evidence: Any) -> Any:
    if isinstance(evidence, dict) and "vantage" in evidence:
        evidence = {**evidence, "vantage": "agent", "source_address": None}
    return evidence


def chain_entries(db: Database, target: str, since: datetime | None, until: datetime | None, *,
                  reveal_agents: bool = False) -> list[dict[str, Any]]:
    """Per vantage with a kept record of `target` in the period: its chain from the first link
    measured in the period (any target's) to its head, each entry's target, time, record digest
    and chain value, and the chain value before the first."""
    with snapshot(db) as s:
        return _chain_entries(s, target, since, until, reveal_agents=reveal_agents)


def _chain_entries(s: Session, target: str, since: datetime | None, until: datetime | None, *,
                   reveal_agents: bool = False) -> list[dict[str, Any]]:
    t = s.scalar(select(Target).where(Target.name == target))
    if t is None:
        raise LookupError(target)
    period = [Measurement.chain_seq.is_not(None), *_in_period(Measurement, since, until)]
    vids = set(s.scalars(select(Measurement.vantage_id).distinct()
                         .where(Measurement.target_id == t.id, *period)))
    # the kept controls exported from outside the period: their chain from them on
    earlier: dict[int, int] = {}
    outside = named_controls_outside(s, t.id, since, until)
    for i in range(0, len(outside), 500):
        for vid, seq in s.execute(
                select(Measurement.vantage_id, func.min(Measurement.chain_seq))
                .where(Measurement.id.in_(outside[i:i + 500]),
                       Measurement.chain_seq.is_not(None))
                .group_by(Measurement.vantage_id)):
            earlier[vid] = min(seq, earlier.get(vid, seq))
    out = []
    v2_from = chain.v2_from(s)
    for vid in sorted(vids | set(earlier)):
        v = s.get(Vantage, vid)
        assert v is not None
        starts = [s.scalar(select(func.min(Measurement.chain_seq))
                           .where(Measurement.vantage_id == vid, *period)), earlier.get(vid)]
        first = min(x for x in starts if x is not None)
        prev = s.scalar(select(Measurement.chain).where(
            Measurement.vantage_id == vid, Measurement.chain_seq == first - 1))
        links = []
        for r in s.execute(chain.columns(s)
                           .where(Measurement.vantage_id == vid, Measurement.chain_seq >= first)
                           .order_by(Measurement.chain_seq)):
            rec = chain.fields(r)
            fmt = chain.version(v2_from, vid, r.chain_seq)
            links.append({"seq": r.chain_seq, "v": fmt, "target": rec["target"],
                          "measured_at": rec["measured_at"], "digest": chain.digest(rec, fmt),
                          "chain": r.chain})
        out.append({"vantage": public_vantage(v.name, v.kind, v.country, v.asn,
                                              reveal=reveal_agents),
                    "prev": prev or chain.GENESIS, "links": links,
                    "head": {"seq": links[-1]["seq"], "chain": links[-1]["chain"]}})
    return out


@dataclass
class ExportResult:
    path: Path
    manifest: Path
    records: int
    sha256: str
    size: int
    chain: Path | None = None


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "target"


def write_export(db: Database, target: str, out: Path, *, fmt: str, since: datetime | None,
                 until: datetime | None, reveal_agents: bool = False) -> ExportResult:
    out.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        chain.link(db)  # every kept row in its chain before it is read
    except DBAPIError as exc:  # a read-only database still exports what is chained already
        log.warning("export: kept rows not linked into the hash chain now (%s)",
                    type(exc.orig).__name__ if exc.orig is not None else exc)
    paths = [out, out.with_name(out.name + ".chain.json"),
             out.with_name(out.name + ".manifest.json")]
    parts = [p.with_name(p.name + ".part") for p in paths]
    try:
        res = _write(db, target, out, parts, fmt=fmt, since=since, until=until,
                     reveal_agents=reveal_agents)
        for part, path in zip(parts, paths, strict=True):  # the manifest last: all is there
            part.replace(path)
    except BaseException:  # a failed export leaves no half-written file behind
        for part in parts:
            part.unlink(missing_ok=True)
        raise
    return res


def _write(db: Database, target: str, out: Path, parts: list[Path], *, fmt: str,
           since: datetime | None, until: datetime | None,
           reveal_agents: bool) -> ExportResult:
    """The records, chain file and manifest of `out` written to `parts`."""
    tmp, chain_tmp, manifest_tmp = parts
    h = hashlib.sha256()
    n = 0
    # evidence names vantages and networks: the owner's only, as the database is
    with snapshot(db) as s, _private(tmp).open("wb") as f:
        if fmt == "csv":
            buf = io.StringIO()
            w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
            w.writeheader()
            for rec in _records(s, target, since, until, reveal_agents=reveal_agents):
                row = dict(rec)
                row["evidence"] = repo.canonical_json(rec["evidence"])
                w.writerow(row)
                n += 1
                if buf.tell() > 1 << 20:
                    _flush(buf, f, h)
            _flush(buf, f, h)
        else:
            for rec in _records(s, target, since, until, reveal_agents=reveal_agents):
                data = (dumps(rec, sort_keys=True) + "\n").encode()  # one record a line
                f.write(data)
                h.update(data)
                n += 1
        # in the same snapshot: a row linked meanwhile is in neither
        entries = _chain_entries(s, target, since, until, reveal_agents=reveal_agents)
    digest = h.hexdigest()
    size = tmp.stat().st_size
    _private(chain_tmp).write_text(dumps({
        "file": out.name, "target": target, "since": repo.iso(since), "until": repo.iso(until),
        "genesis": chain.GENESIS, "vantages": entries,
        "verify": f"blockwatch export --verify {out.name}",
    }, indent=1) + "\n", encoding="utf-8")
    _private(manifest_tmp).write_text(json.dumps({
        "file": out.name, "sha256": digest, "size": size, "records": n,
        "format": fmt, "target": target, "since": repo.iso(since), "until": repo.iso(until),
        "generated_at": repo.iso(datetime.now(UTC)), "generator": f"blockwatch {__version__}",
        "agent_names": "included" if reveal_agents else "withheld",
        "verify": f"sha256sum {out.name}  # must print {digest}",
    }, indent=2, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8")
    return ExportResult(out, out.with_name(out.name + ".manifest.json"), n, digest, size,
                        out.with_name(out.name + ".chain.json"))


def _private(path: Path) -> Path:
    """`path` created empty with mode 0600 (or made 0600), ready to be written."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
    os.chmod(path, 0o600)
    return path


def _flush(buf: io.StringIO, f: Any, h: Any) -> None:
    data = buf.getvalue().encode("utf-8")
    f.write(data)
    h.update(data)
    buf.seek(0)
    buf.truncate()
