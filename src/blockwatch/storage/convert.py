"""`blockwatch db compact`: history stored before runs (or with them off) converted in place into
runs by the rule new measurements follow (storage/runs.py), in short transactions of a few
hundred (URL, vantage) pairs, resumable: the position is saved with each transaction, so a killed
conversion goes on where it stopped (a half-done pair rolls back whole).

Per (URL, vantage), in time order, a verdict row extends the run before it when its observable
outcome is the same, on the same UTC day, and no event names it; its measurement and verdict
go, the run's row counts them. Then per URL at the control: a control measurement no verdict
names extends the run before it on the same terms. States that named a folded verdict name the
run's; an open run whose row was folded goes with it (the next measurement opens a new one).
A row already in the hash chain of kept rows (storage/chain.py) is never folded.

Last, rows whose evidence is still stored whole (before evidence pieces) are rewritten as pieces
and a compressed rest (storage/evidence.py), a few hundred rows per transaction in id order, the
position saved with each: only when the stored text joins back to the very text its
evidence_sha256 was computed from (a row whose JSON the database has re-spelled, such as
PostgreSQL's jsonb turning 1e16 into an integer, is left whole: what export prints of it stays
what it was)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.orm import Session

from blockwatch.storage import bulk, chain, repo
from blockwatch.storage import evidence as E
from blockwatch.storage import runs as R
from blockwatch.storage.db import Database
from blockwatch.storage.models import Event, Measurement, UrlState, Vantage, Verdict

BATCH = 200  # (URL, vantage) pairs per transaction
PIECES_BATCH = 500  # rows per transaction when evidence is rewritten as pieces
CURSORS = {"vantage": "compact:vantage_cursor", "control": "compact:control_cursor",
           "pieces": "compact:pieces_cursor"}


@dataclass
class Converted:
    pairs: int = 0
    folded: int = 0  # measurement rows that became repeats of the run before them
    batches: int = 0
    pieced: int = 0  # rows whose whole evidence was rewritten as pieces
    left_whole: int = 0  # rows whose stored JSON no longer spells their hashed text


def compact_history(db: Database, *, batch: int = BATCH,
                    after_batch: Callable[[int], None] | None = None) -> Converted:
    """Convert every (URL, vantage), the control's last; `after_batch(n)` is called after each
    committed transaction (progress lines; tests stop it there)."""
    out = Converted()
    for role in ("vantage", "control"):
        while True:
            with db.write() as s:
                # a row linked meanwhile must not be folded away (a gap in its chain for good):
                # the chain's linkers wait for this transaction (SQLite: its write lock already)
                chain.lock(db, s)
                cur = repo.get_kv(s, CURSORS[role])
                keys = _next_keys(s, role, cur, batch)
                if not keys:
                    break
                for vid, url in keys:
                    out.folded += (_fold_vantage if role == "vantage" else _fold_control)(s, vid, url)
                out.pairs += len(keys)
                repo.set_kv(s, CURSORS[role], list(keys[-1]))
            out.batches += 1
            if after_batch is not None:
                after_batch(out.batches)
    while _piece_batch(db, out):
        out.batches += 1
        if after_batch is not None:
            after_batch(out.batches)
    with db.write() as s:  # done: a later run starts over (and finds only what came since)
        for key in CURSORS.values():
            repo.set_kv(s, key, None)
    from blockwatch.retention import sweep_pieces

    sweep_pieces(db)  # the folded rows' pieces
    chain.link(db)
    return out


def _piece_batch(db: Database, out: Converted) -> bool:
    """One transaction of the evidence conversion; False when there is nothing left."""
    with db.write() as s:
        cur = repo.get_kv(s, CURSORS["pieces"]) or 0
        rows = s.execute(select(Measurement.id, Measurement.evidence_json,
                                Measurement.evidence_sha256)
                         .where(Measurement.id > cur, Measurement.evidence_z.is_(None))
                         .order_by(Measurement.id).limit(PIECES_BATCH)).all()
        if not rows:
            return False
        texts = E.texts(s, [(ev, None, None) for _, ev, _ in rows])
        todo: list[tuple[int, E.Split]] = []
        need: dict[str, E.Piece] = {}
        for (mid, _, sha), text in zip(rows, texts, strict=True):
            if hashlib.sha256(text.encode("utf-8")).hexdigest() != sha:
                out.left_whole += 1
                continue
            sp = E.split(text)
            todo.append((mid, sp))
            for p in sp.pieces:
                need.setdefault(p.sha256, p)
        bulk.store_pieces(db, s, need)
        if todo:
            s.execute(update(Measurement).execution_options(synchronize_session=False),
                      [{"id": mid, "evidence_json": None, "evidence_z": sp.blob,
                        "evidence_refs": sp.refs} for mid, sp in todo])
        out.pieced += len(todo)
        repo.set_kv(s, CURSORS["pieces"], rows[-1][0])
    return True


def _next_keys(s: Session, role: str, cur: list[Any] | None, n: int) -> list[tuple[int, str]]:
    if role == "vantage":
        vid, url = Verdict.vantage_id, Verdict.url
        q = select(vid, url).distinct()
    else:
        vid, url = Measurement.vantage_id, Measurement.url
        q = (select(vid, url).distinct().join(Vantage, Vantage.id == vid)
             .where(Measurement.role == "control"))
    if cur:
        q = q.where(or_(vid > cur[0], and_(vid == cur[0], url > cur[1])))
    return [(a, b) for a, b in s.execute(q.order_by(vid, url).limit(n))]


def _same_run(head: dict[str, Any], o: R.Outcome | None, start: Any) -> bool:
    return (o is not None and head["key"] == o.key and R.bodies_alike(head["length"], o.body_length)
            and start.date() == head["start"].date() and start > head["last"])


def _fold_vantage(s: Session, vid: int, url: str) -> int:
    rows = s.execute(
        select(Verdict.id, Verdict.measurement_id, Verdict.verdict, Verdict.measured_at,
               Verdict.repeats, Verdict.repeated_until, Measurement.chain_seq, *E.columns())
        .join(Measurement, Measurement.id == Verdict.measurement_id)
        .where(Verdict.vantage_id == vid, Verdict.url == url)
        .order_by(Verdict.measured_at, Verdict.id)).all()
    data = E.loads(s, [r[7:] for r in rows])
    named = set(s.scalars(select(Event.verdict_id).where(Event.vantage_id == vid,
                                                         Event.url == url)))
    heads: list[dict[str, Any]] = []
    head: dict[str, Any] | None = None
    moved: dict[int, int] = {}  # folded verdict id -> its run's verdict id
    gone: list[int] = []
    for (v_id, m_id, verdict, at, reps, until, chained, *_), evidence in zip(rows, data,
                                                                           strict=True):
        o = R.outcome(evidence, verdict)
        if head is not None and v_id not in named and chained is None and _same_run(head, o, at):
            head["repeats"] += 1 + (reps or 0)
            head["last"] = until or at
            moved[v_id] = head["vid"]
            gone.append(m_id)
            continue
        head = None if o is None else {"vid": v_id, "mid": m_id, "key": o.key,
                                       "length": o.body_length, "start": at,
                                       "last": until or at, "repeats": reps or 0, "was": reps or 0}
        if head is not None:
            heads.append(head)
    if not gone:
        return 0
    for h in heads:
        if h["repeats"] != h["was"]:
            for model, key in ((Verdict, h["vid"]), (Measurement, h["mid"])):
                s.execute(update(model).where(model.id == key)
                          .values(repeats=h["repeats"], repeated_until=h["last"]))
    for old, new in moved.items():
        s.execute(update(UrlState).where(UrlState.last_verdict_id == old)
                  .values(last_verdict_id=new))
    for lo in range(0, len(gone), 500):  # their verdicts go with them (ON DELETE CASCADE)
        s.execute(delete(Measurement).where(Measurement.id.in_(gone[lo:lo + 500])))
    return len(gone)


def _fold_control(s: Session, vid: int, url: str) -> int:
    rows = s.execute(
        select(Measurement.id, Measurement.measured_at, Measurement.repeats,
               Measurement.repeated_until, Measurement.chain_seq, *E.columns())
        .where(Measurement.vantage_id == vid, Measurement.url == url,
               Measurement.role == "control")
        .order_by(Measurement.measured_at, Measurement.id)).all()
    data = E.loads(s, [r[5:] for r in rows])
    ids = [r[0] for r in rows]
    named: set[int] = set()
    for lo in range(0, len(ids), 500):
        named |= set(s.scalars(select(Verdict.control_id).where(
            Verdict.control_id.in_(ids[lo:lo + 500]))))
    head: dict[str, Any] | None = None
    heads: list[dict[str, Any]] = []
    moved: dict[int, int] = {}
    for (m_id, at, reps, until, chained, *_), evidence in zip(rows, data, strict=True):
        o = R.outcome(evidence, "control")
        if head is not None and m_id not in named and chained is None and _same_run(head, o, at):
            head["repeats"] += 1 + (reps or 0)
            head["last"] = until or at
            moved[m_id] = head["mid"]
            continue
        head = None if o is None else {"mid": m_id, "key": o.key, "length": o.body_length,
                                       "start": at, "last": until or at, "repeats": reps or 0,
                                       "was": reps or 0}
        if head is not None:
            heads.append(head)
    if not moved:
        return 0
    for h in heads:
        if h["repeats"] != h["was"]:
            s.execute(update(Measurement).where(Measurement.id == h["mid"])
                      .values(repeats=h["repeats"], repeated_until=h["last"]))
    gone = list(moved)
    for lo in range(0, len(gone), 500):
        s.execute(delete(Measurement).where(Measurement.id.in_(gone[lo:lo + 500])))
    return len(gone)
