"""Judging on arrival: the control for each reported URL, the verdict, and one transaction per
upload that stores measurements, verdicts and the event state machine in bulk.

The bulk store mirrors `repo.record_verdict` row for row (tests/test_collector_store.py holds the
two to the same results); it exists because the per-row ORM path costs ~3 round trips and a
unit-of-work flush per measurement, which caps ingest far below what 50 agents post at once."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from blockwatch.analysis import events as ev
from blockwatch.analysis.verdict import Judgement, judge
from blockwatch.collector.schema import MeasurementBatch
from blockwatch.collector.state import CollectorState, Snapshot
from blockwatch.config import AgentVantage
from blockwatch.probe.records import WebMeasurement
from blockwatch.probe.runner import measure
from blockwatch.round import CONTROL, _failure
from blockwatch.storage import Database, repo
from blockwatch.storage.models import Event, Measurement, UrlState, Vantage, Verdict

log = logging.getLogger(__name__)

CONTROL_WINDOW = timedelta(minutes=10)  # a control this close in time to the agent's is reused
CACHE_URLS = 5000  # URLs whose recent controls stay in memory

M: Table = Measurement.__table__  # type: ignore[assignment]
V: Table = Verdict.__table__  # type: ignore[assignment]
S: Table = UrlState.__table__  # type: ignore[assignment]
E: Table = Event.__table__  # type: ignore[assignment]


@dataclass
class Control:
    id: int
    at: datetime
    m: WebMeasurement


@dataclass
class Item:
    """One agent measurement on its way into the store."""

    m: WebMeasurement
    uid: str  # stored uid: "<agent>/<agent's uid>", so one agent can never shadow another's
    at: datetime
    target_id: int | None
    vantage_ok: bool
    round_id: str | None
    control: Control | None = None
    judgement: Judgement | None = None


@dataclass
class StoreResult:
    accepted: int
    duplicates: int
    events: list[repo.NewEvent]


def _insert(db: Database, table: Table):  # type: ignore[no-untyped-def]
    return (postgresql.insert(table) if db.dialect == "postgresql" else sqlite.insert(table))


class Controls:
    """Recent control measurements per URL: memory first, then the database (a local round of
    `blockwatch run` stores one every interval), else measured now, once per URL however many
    agents ask at the same moment."""

    def __init__(self, state: CollectorState):
        self.state = state
        self._recent: OrderedDict[str, list[Control]] = OrderedDict()
        self._loaded: dict[str, float] = {}  # URL -> monotonic time its DB rows were read
        self._inflight: dict[str, asyncio.Future[Control]] = {}

    def _pick(self, url: str, at: datetime) -> Control | None:
        best = None
        for c in self._recent.get(url, ()):
            d = abs(c.at - at)
            if d <= CONTROL_WINDOW and (best is None or d < abs(best.at - at)):
                best = c
        return best

    def remember(self, url: str, c: Control) -> None:
        items = self._recent.setdefault(url, [])
        if all(x.id != c.id for x in items):
            items.append(c)
            items.sort(key=lambda x: x.at)
            del items[:-8]  # enough to cover a backlog of queued rounds
        self._recent.move_to_end(url)
        while len(self._recent) > CACHE_URLS:
            old, _ = self._recent.popitem(last=False)
            self._loaded.pop(old, None)

    async def for_items(self, snap: Snapshot, items: Sequence[Item]) -> None:
        """Give every item a control: one DB read for what memory lacks, one probe per URL
        for what the DB lacks too."""
        need = [it for it in items if self._pick(it.m.url, it.at) is None]
        now = time.monotonic()
        unread = sorted({it.m.url for it in need
                         if now - self._loaded.get(it.m.url, -1e9) > CONTROL_WINDOW.total_seconds() / 4})
        if unread:
            lo = min(it.at for it in need) - CONTROL_WINDOW
            hi = max(it.at for it in need) + CONTROL_WINDOW
            rows = await asyncio.to_thread(_load_controls, self.state.db,
                                           snap.vantage_ids[CONTROL], unread, lo, hi)
            for url, c in rows:
                self.remember(url, c)
            for url in unread:
                self._loaded[url] = now
        for it in items:
            it.control = self._pick(it.m.url, it.at)
        missing = sorted({it.m.url for it in items if it.control is None})
        if missing:
            got = await asyncio.gather(*(self._measure(snap, u) for u in missing),
                                       return_exceptions=True)
            fresh = {}
            for u, c in zip(missing, got, strict=True):
                if isinstance(c, BaseException):
                    log.error("control measurement of %s failed: %s", u, c)
                else:
                    fresh[u] = c
            for it in items:
                if it.control is None:
                    # An old queued measurement with no control near its time: today's control
                    # is the best evidence left (the site may have been down then; a rare case).
                    it.control = fresh.get(it.m.url)

    async def _measure(self, snap: Snapshot, url: str) -> Control:
        fut = self._inflight.get(url)
        if fut is not None:
            return await asyncio.shield(fut)
        fut = asyncio.get_running_loop().create_future()
        self._inflight[url] = fut
        try:
            m = await measure(url, snap.control, snap.settings)
            cid = await asyncio.to_thread(_store_control, self.state.db, snap, url, m)
            c = Control(cid, repo.parse_time(m.measured_at), m)
            self.remember(url, c)
            fut.set_result(c)
            return c
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # retrieved: nobody else may be waiting
            raise
        finally:
            del self._inflight[url]


def _load_controls(db: Database, control_id: int, urls: list[str], lo: datetime,
                   hi: datetime) -> list[tuple[str, Control]]:
    q = (select(M.c.id, M.c.url, M.c.measured_at, M.c.evidence)
         .where(M.c.vantage_id == control_id, M.c.role == "control",
                M.c.measured_at >= lo, M.c.measured_at <= hi, M.c.url.in_(urls))
         .order_by(M.c.measured_at))
    with db.read() as s:
        return [(r.url, Control(r.id, r.measured_at, WebMeasurement.from_json(r.evidence)))
                for r in s.execute(q)]


def _store_control(db: Database, snap: Snapshot, url: str, m: WebMeasurement) -> int:
    with db.write() as s:
        row = repo.add_measurement(
            s, uid=m.uid, target_id=snap.url_targets.get(url), vantage_id=snap.vantage_ids[CONTROL],
            url=url, role="control", measured_at=repo.parse_time(m.measured_at),
            evidence=m.to_json(), failure=_failure(m))
        return row.id


class Ingestor:
    def __init__(self, state: CollectorState):
        self.state = state
        self.controls = Controls(state)

    async def ingest(self, agent: AgentVantage, batch: MeasurementBatch) -> dict[str, object]:
        snap = self.state.snapshot
        if agent.name not in snap.vantage_ids:  # revoked between authentication and here
            raise PermissionError(agent.name)
        vid = snap.vantage_ids[agent.name]
        items: list[Item] = []
        rejected: list[dict[str, str]] = []
        seen: set[str] = set()
        dup_in_batch = 0
        for mi in batch.measurements:
            if mi.url not in snap.url_targets:
                # Never probe what an agent names: a seized token must not turn the collector
                # into a fetcher of arbitrary (internal) URLs. Rejected, not retried.
                rejected.append({"uid": mi.uid, "error": f"{mi.url} is not a target URL of this collector"})
                continue
            uid = f"{agent.name}/{mi.uid}"
            if uid in seen:
                dup_in_batch += 1
                continue
            seen.add(uid)
            data = mi.model_dump(exclude={"vantage_ok", "round_id"})
            data.update(vantage=agent.name, role="vantage", source_address=None)
            m = WebMeasurement.from_json(data)
            items.append(Item(m, uid, repo.parse_time(m.measured_at), snap.url_targets[mi.url],
                              mi.vantage_ok, mi.round_id))
        known = await asyncio.to_thread(_known_uids, self.state.db, [it.uid for it in items]) \
            if items else set()
        fresh = [it for it in items if it.uid not in known]
        if fresh:
            await self.controls.for_items(snap, fresh)
        asn = agent.asn or batch.asn or ""
        result = await asyncio.to_thread(store_batch, self.state.db, snap, vid, fresh, asn)
        if result.events:
            log.info("agent %s: %d new events", agent.name, len(result.events))
        return {"accepted": result.accepted,
                "duplicates": result.duplicates + len(known) + dup_in_batch,
                "rejected": rejected}


def _known_uids(db: Database, uids: list[str]) -> set[str]:
    with db.read() as s:
        return set(s.scalars(select(M.c.uid).where(M.c.uid.in_(uids))))


def judge_items(snap: Snapshot, items: Sequence[Item]) -> None:
    for it in items:
        c = it.control
        it.judgement = judge(it.m, c.m if c else None, vantage_ok=it.vantage_ok,
                             control_ok=c is not None, settings=snap.analysis,
                             interception=snap.interception)


def store_batch(db: Database, snap: Snapshot, vantage_id: int, items: Sequence[Item],
                asn: str = "") -> StoreResult:
    """Judge and store one upload in one transaction. Safe against concurrent uploads of the
    same uids (ON CONFLICT DO NOTHING: the later one counts them as duplicates) and of the same
    (URL, vantage) (its state rows are locked before they are read)."""
    judge_items(snap, items)
    now = repo.utcnow()
    with db.write() as s:
        s.execute(update(Vantage).where(Vantage.id == vantage_id)
                  .values(last_seen_at=now, **({"asn": asn} if asn else {})))
        if not items:
            return StoreResult(0, 0, [])
        res = bulk_record(db, s, vantage_id, items, snap.confirm_after, now)
    return res


def bulk_record(db: Database, s: Session, vantage_id: int, items: Sequence[Item],
                confirm_after: int, now: datetime) -> StoreResult:
    """`repo.add_measurement` + `repo.record_verdict` for many measurements of one vantage."""
    rows = []
    for it in items:
        evidence = it.m.to_json()
        j = it.judgement
        assert j is not None
        rows.append({"uid": it.uid, "target_id": it.target_id, "vantage_id": vantage_id,
                     "url": it.m.url, "role": "vantage", "round_id": it.round_id,
                     "measured_at": it.at, "failure": _failure(it.m), "evidence": evidence,
                     "evidence_sha256": repo.evidence_hash(evidence), "keep": j.verdict != "ok"})
    ins = (_insert(db, M).on_conflict_do_nothing(index_elements=["uid"])
           .returning(M.c.id, M.c.uid))
    new_ids = {r.uid: r.id for r in s.execute(ins, rows)}
    # the state machine reads verdicts in time order, whatever order the batch came in
    fresh = sorted((it for it in items if it.uid in new_ids), key=lambda it: it.at)
    if not fresh:
        return StoreResult(0, len(items), [])

    vrows = [{"measurement_id": new_ids[it.uid], "control_id": it.control.id if it.control else None,
              "target_id": it.target_id, "vantage_id": vantage_id, "url": it.m.url,
              "verdict": it.judgement.verdict, "confirmed": it.judgement.confirmed,  # type: ignore[union-attr]
              "reason": it.judgement.reason, "measured_at": it.at}  # type: ignore[union-attr]
             for it in fresh]
    vids = list(s.scalars(V.insert().returning(V.c.id, sort_by_parameter_order=True), vrows))

    urls = sorted({it.m.url for it in fresh})
    # Create missing state rows first, then lock them all: two uploads touching one
    # (URL, vantage) then take turns instead of overwriting each other's step.
    s.execute(_insert(db, S).on_conflict_do_nothing(index_elements=["url", "vantage_id"]),
              [{"url": u, "vantage_id": vantage_id, "pending_count": 0, "updated_at": now} for u in urls])
    q = select(S).where(S.c.vantage_id == vantage_id, S.c.url.in_(urls)).order_by(S.c.url)
    if db.dialect == "postgresql":
        q = q.with_for_update()
    states = {r.url: dict(r._mapping) for r in s.execute(q)}

    events: list[repo.NewEvent] = []
    keep_ids: list[int] = []
    for it, verdict_id in zip(fresh, vids, strict=True):
        j = it.judgement
        assert j is not None
        st = states[it.m.url]
        cur = ev.UrlState(st["state"], st["since"], st["pending"], st["pending_count"] or 0,
                          st["pending_since"])
        nxt, tr = ev.step(cur, j.verdict, it.at, confirm_after)
        st.update(state=nxt.state, since=nxt.since, pending=nxt.pending,
                  pending_count=nxt.pending_count, pending_since=nxt.pending_since,
                  target_id=it.target_id, last_verdict_id=verdict_id, last_seen_at=it.at,
                  updated_at=now)
        if tr is None:
            continue
        if st["event_id"] is not None:
            s.execute(update(E).where(E.c.id == st["event_id"], E.c.ended_at.is_(None))
                      .values(ended_at=tr.started_at))
        eid = s.scalar(E.insert().returning(E.c.id).values(
            target_id=it.target_id, vantage_id=vantage_id, url=it.m.url, state=tr.state,
            previous=tr.previous, confirmed=j.confirmed, reason=j.reason,
            started_at=tr.started_at, detected_at=tr.detected_at, verdict_id=verdict_id))
        assert eid is not None
        st["event_id"] = eid
        keep_ids.append(new_ids[it.uid])
        if j.verdict != "ok" and it.control is not None:
            keep_ids.append(it.control.id)  # the evidence an event rests on is never pruned
        events.append(repo.NewEvent(eid, it.target_id, vantage_id, it.m.url, tr.state, tr.previous))
    if keep_ids:
        s.execute(update(M).where(M.c.id.in_(keep_ids)).values(keep=True))
    cols = ("state", "since", "pending", "pending_count", "pending_since", "target_id",
            "last_verdict_id", "last_seen_at", "updated_at", "event_id")
    s.connection().execute(
        update(S).where(S.c.url == bindparam("k_url"), S.c.vantage_id == bindparam("k_vid"))
        .values({c: bindparam("v_" + c) for c in cols}),
        [{**{"v_" + c: st[c] for c in cols}, "k_url": url, "k_vid": vantage_id}
         for url, st in states.items()])
    return StoreResult(len(fresh), len(items) - len(fresh), events)
