"""Judging on arrival: the control for each reported URL, the verdict, and one transaction per
upload that stores measurements, verdicts and the event state machine in bulk.

The bulk store mirrors `repo.record_verdict` row for row (tests/test_collector_store.py holds the
two to the same results); it exists because the per-row ORM path costs ~3 round trips and a
unit-of-work flush per measurement, which caps ingest far below what 50 agents post at once."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, bindparam, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from blockwatch.analysis import events as ev
from blockwatch.analysis.verdict import Judgement, judge
from blockwatch.collector.schema import MeasurementBatch
from blockwatch.collector.state import CollectorState, Snapshot
from blockwatch.config import AgentVantage
from blockwatch.probe.records import WebMeasurement
from blockwatch.probe.runner import measure
from blockwatch.round import CONTROL
from blockwatch.storage import Database, repo
from blockwatch.storage.models import Event, Measurement, UrlState, Vantage, Verdict

log = logging.getLogger(__name__)

HEALTH_TTL = 300.0  # seconds between checks of the collector's own canaries
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
    control_ok: bool = True  # the collector's own connection worked (its canaries answered)
    judgement: Judgement | None = None
    evidence: dict[str, Any] | None = None  # m.to_json(), when the caller already has it


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
        self._health: tuple[float, bool] | None = None
        self._health_lock = asyncio.Lock()

    async def healthy(self, snap: Snapshot) -> bool:
        """Whether the collector's own network works (any canary answers), checked at most every
        few minutes: when it does not, its controls say nothing and agents' failures must not be
        called "down"."""
        canaries = list(snap.cfg.settings.probe.canaries)
        if not canaries:
            return True
        async with self._health_lock:
            now = time.monotonic()
            if self._health is not None and now - self._health[0] < HEALTH_TTL:
                return self._health[1]
            ms = await asyncio.gather(*(measure(u, snap.control, snap.settings) for u in canaries),
                                      return_exceptions=True)
            ok = any(not isinstance(m, BaseException) and m.http is not None
                     and m.http.status is not None for m in ms)
            if not ok:
                log.warning("every canary failed from the collector: agents' verdicts are "
                            "inconclusive until its connection works")
            self._health = (now, ok)
            return ok

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
            evidence=m.to_json(), failure=m.failure())
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
            # `data` has exactly to_json()'s shape (the models mirror the records), without
            # rebuilding it from the dataclasses
            items.append(Item(m, uid, repo.parse_time(m.measured_at), snap.url_targets[mi.url],
                              mi.vantage_ok, mi.round_id, evidence=data))
        known = await asyncio.to_thread(_known_uids, self.state.db, [it.uid for it in items]) \
            if items else set()
        fresh = [it for it in items if it.uid not in known]
        if fresh:
            await self.controls.for_items(snap, fresh)
            if not await self.controls.healthy(snap):
                for it in fresh:
                    it.control_ok = False
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
                             control_ok=c is not None and it.control_ok, settings=snap.analysis,
                             interception=snap.interception, asn=snap.asn)


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
        evidence = it.evidence if it.evidence is not None else it.m.to_json()
        j = it.judgement
        assert j is not None
        # canonical JSON once: hashed here, and reused as the stored text on PostgreSQL
        ev_text = repo.canonical_json(evidence)
        rows.append({"uid": it.uid, "target_id": it.target_id, "vantage_id": vantage_id,
                     "url": it.m.url, "role": "vantage", "round_id": it.round_id,
                     "measured_at": it.at, "failure": it.m.failure(), "evidence": evidence,
                     "evidence_sha256": hashlib.sha256(ev_text.encode("utf-8")).hexdigest(),
                     "keep": j.verdict != "ok", "_evidence_text": ev_text})
    new_ids = _insert_measurements(db, s, rows)
    # the state machine reads verdicts in time order, whatever order the batch came in
    fresh = sorted((it for it in items if it.uid in new_ids), key=lambda it: it.at)
    if not fresh:
        return StoreResult(0, len(items), [])

    vrows = [{"measurement_id": new_ids[it.uid], "control_id": it.control.id if it.control else None,
              "target_id": it.target_id, "vantage_id": vantage_id, "url": it.m.url,
              "verdict": it.judgement.verdict, "confirmed": it.judgement.confirmed,  # type: ignore[union-attr]
              "reason": it.judgement.reason, "measured_at": it.at}  # type: ignore[union-attr]
             for it in fresh]
    vids = _insert_verdicts(db, s, vrows)
    states = _lock_states(db, s, vantage_id, sorted({it.m.url for it in fresh}), now)

    events: list[repo.NewEvent] = []
    keep_ids: list[int] = []
    new_events: list[dict[str, Any]] = []
    made: list[tuple[Item, Any]] = []
    opened: dict[str, int] = {}  # URL -> index in new_events of its newest event
    closes: list[dict[str, Any]] = []
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
        # events are inserted together after the loop (one statement, not one round trip each)
        if it.m.url in opened:
            new_events[opened[it.m.url]]["ended_at"] = tr.started_at
        elif st["event_id"] is not None:
            closes.append({"eid": st["event_id"], "ended": tr.started_at})
        opened[it.m.url] = len(new_events)
        new_events.append({
            "target_id": it.target_id, "vantage_id": vantage_id, "url": it.m.url,
            "state": tr.state, "previous": tr.previous, "confirmed": j.confirmed,
            "reason": j.reason, "started_at": tr.started_at, "detected_at": tr.detected_at,
            "ended_at": None, "verdict_id": verdict_id})
        made.append((it, tr))
        keep_ids.append(new_ids[it.uid])
        if j.verdict != "ok" and it.control is not None:
            keep_ids.append(it.control.id)  # the evidence an event rests on is never pruned
    if closes:
        s.execute(update(E).where(E.c.id == bindparam("eid"), E.c.ended_at.is_(None))
                  .values(ended_at=bindparam("ended")), closes)
    if new_events:
        eids = list(s.scalars(E.insert().returning(E.c.id, sort_by_parameter_order=True),
                              new_events))
        for (it, tr), eid in zip(made, eids, strict=True):
            events.append(repo.NewEvent(eid, it.target_id, vantage_id, it.m.url, tr.state,
                                        tr.previous))
        for url, idx in opened.items():
            states[url]["event_id"] = eids[idx]
    if keep_ids:
        s.execute(update(M).where(M.c.id.in_(keep_ids)).values(keep=True))
    _update_states(db, s, vantage_id, states)
    return StoreResult(len(fresh), len(items) - len(fresh), events)


# --- the four bulk statements: portable SQLAlchemy, and PostgreSQL with one JSON parameter ----
# SQLAlchemy's multi-row VALUES for 100 measurements carries ~1,100 parameters; psycopg parses
# such a statement anew on every call (not cached), which cost more than the inserts did.
# jsonb_to_recordset takes the whole batch as one parameter of a short, prepared statement.

STATE_COLS = ("state", "since", "pending", "pending_count", "pending_since", "target_id",
              "last_verdict_id", "last_seen_at", "updated_at", "event_id")


def _json_default(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.isoformat()
    raise TypeError(type(v).__name__)


def _rows_param(rows: list[dict[str, Any]]) -> str:
    return json.dumps(rows, default=_json_default, separators=(",", ":"))


_PG_MEASUREMENTS = text("""
INSERT INTO measurements (uid, target_id, vantage_id, url, role, round_id, measured_at, failure,
                          evidence, evidence_sha256, keep)
SELECT x.uid, x.target_id, x.vantage_id, x.url, x.role, x.round_id, x.measured_at, x.failure,
       x.evidence, x.evidence_sha256, x.keep
FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS x(
    uid text, target_id int, vantage_id int, url text, role text, round_id text,
    measured_at timestamptz, failure text, evidence jsonb, evidence_sha256 text, keep boolean)
ON CONFLICT (uid) DO NOTHING
RETURNING id, uid""")

_PG_VERDICTS = text("""
INSERT INTO verdicts (measurement_id, control_id, target_id, vantage_id, url, verdict, confirmed,
                      reason, measured_at)
SELECT x.measurement_id, x.control_id, x.target_id, x.vantage_id, x.url, x.verdict, x.confirmed,
       x.reason, x.measured_at
FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS x(
    measurement_id bigint, control_id bigint, target_id int, vantage_id int, url text,
    verdict text, confirmed boolean, reason text, measured_at timestamptz)
RETURNING id, measurement_id""")

_PG_STATES_NEW = text("""
INSERT INTO url_states (url, vantage_id, pending_count, updated_at)
SELECT u, :vid, 0, :now FROM unnest(CAST(:urls AS text[])) AS u
ON CONFLICT (url, vantage_id) DO NOTHING""")

_PG_STATES_LOCK = text("""
SELECT * FROM url_states WHERE vantage_id = :vid AND url = ANY(CAST(:urls AS text[]))
ORDER BY url FOR UPDATE""")

_PG_STATES_UPDATE = text("""
UPDATE url_states AS s SET state = x.state, since = x.since, pending = x.pending,
    pending_count = x.pending_count, pending_since = x.pending_since, target_id = x.target_id,
    last_verdict_id = x.last_verdict_id, last_seen_at = x.last_seen_at,
    updated_at = x.updated_at, event_id = x.event_id
FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS x(
    url text, state text, since timestamptz, pending text, pending_count int,
    pending_since timestamptz, target_id int, last_verdict_id bigint, last_seen_at timestamptz,
    updated_at timestamptz, event_id bigint)
WHERE s.url = x.url AND s.vantage_id = :vid""")


def _insert_measurements(db: Database, s: Session, rows: list[dict[str, Any]]) -> dict[str, int]:
    if db.dialect == "postgresql":
        parts = []
        for r in rows:
            plain = {k: v for k, v in r.items() if k not in ("evidence", "_evidence_text")}
            parts.append(json.dumps(plain, default=_json_default, separators=(",", ":"))[:-1]
                         + ',"evidence":' + r["_evidence_text"] + "}")
        param = "[" + ",".join(parts) + "]"
        return {r.uid: r.id for r in s.execute(_PG_MEASUREMENTS, {"rows": param})}
    ins = (_insert(db, M).on_conflict_do_nothing(index_elements=["uid"])
           .returning(M.c.id, M.c.uid))
    return {r.uid: r.id for r in s.execute(
        ins, [{k: v for k, v in r.items() if k != "_evidence_text"} for r in rows])}


def _insert_verdicts(db: Database, s: Session, rows: list[dict[str, Any]]) -> list[int]:
    """Verdict ids in the order of `rows`."""
    if db.dialect == "postgresql":
        by_m = {r.measurement_id: r.id for r in s.execute(_PG_VERDICTS, {"rows": _rows_param(rows)})}
        return [by_m[r["measurement_id"]] for r in rows]
    return list(s.scalars(V.insert().returning(V.c.id, sort_by_parameter_order=True), rows))


def _lock_states(db: Database, s: Session, vantage_id: int, urls: list[str],
                 now: datetime) -> dict[str, dict[str, Any]]:
    """The state rows of these URLs, created when missing, then locked: two uploads touching one
    (URL, vantage) take turns instead of overwriting each other's step."""
    if db.dialect == "postgresql":
        s.execute(_PG_STATES_NEW, {"vid": vantage_id, "now": now, "urls": urls})
        rows = s.execute(_PG_STATES_LOCK, {"vid": vantage_id, "urls": urls})
        return {r.url: {c: getattr(r, c) for c in ("url", *STATE_COLS)} for r in rows}
    s.execute(_insert(db, S).on_conflict_do_nothing(index_elements=["url", "vantage_id"]),
              [{"url": u, "vantage_id": vantage_id, "pending_count": 0, "updated_at": now} for u in urls])
    q = select(S).where(S.c.vantage_id == vantage_id, S.c.url.in_(urls)).order_by(S.c.url)
    return {r.url: dict(r._mapping) for r in s.execute(q)}


def _update_states(db: Database, s: Session, vantage_id: int, states: dict[str, dict[str, Any]]) -> None:
    if db.dialect == "postgresql":
        rows = [{"url": url, **{c: st[c] for c in STATE_COLS}} for url, st in states.items()]
        s.execute(_PG_STATES_UPDATE, {"rows": _rows_param(rows), "vid": vantage_id})
        return
    s.connection().execute(
        update(S).where(S.c.url == bindparam("k_url"), S.c.vantage_id == bindparam("k_vid"))
        .values({c: bindparam("v_" + c) for c in STATE_COLS}),
        [{**{"v_" + c: st[c] for c in STATE_COLS}, "k_url": url, "k_vid": vantage_id}
         for url, st in states.items()])
