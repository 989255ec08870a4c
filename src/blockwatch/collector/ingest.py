"""Judging on arrival: the control for each reported URL, the verdict, and one transaction per
upload that stores measurements, verdicts and the event state machine in bulk (storage/bulk.py:
the per-row ORM path costs ~3 round trips and a unit-of-work flush per measurement, which caps
ingest far below what 50 agents post at once).

A URL's control is, in this order: one measured within CONTROL_WINDOW of the agent's measurement
(or of now, for an old queued one); the control's last measurement of the URL (its open run,
storage/controls.py) younger than `[probe] control_reuse`, when every measurement of that URL in
the upload came over verified TLS, is plainly fine and matches it (analysis/reuse.py, with the
control resolvers asked now) with an "ok" verdict against it, as a local round reuses one; else
one fetched now. The verdict names the control row it was judged against, never one it did not
have."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit

from sqlalchemy import Table, select
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session

from blockwatch.analysis.reuse import plainly_fine
from blockwatch.analysis.verdict import Judgement, judge
from blockwatch.collector.state import CollectorState, Snapshot
from blockwatch.config import AgentVantage
from blockwatch.context import CONTROL
from blockwatch.probe.records import DnsQuery, WebMeasurement
from blockwatch.probe.resolvers import ResolverSet
from blockwatch.probe.runner import measure
from blockwatch.storage import Database, bulk, evidence, repo
from blockwatch.storage.controls import CachedControl, recent_controls
from blockwatch.storage.models import Measurement
from blockwatch.textsafe import printable

log = logging.getLogger(__name__)

HEALTH_TTL = 300.0  # seconds between checks of the collector's own canaries
CONTROL_WINDOW = timedelta(minutes=10)  # a control this close in time to the agent's is reused
CACHE_URLS = 5000  # URLs whose recent controls stay in memory
# Control measurements one upload may cause (more than an agent's batch of 100 URLs): the rest
# of its URLs are judged without a control (inconclusive) rather than making the collector a
# prober on an uploader's command.
MAX_CONTROLS_PER_UPLOAD = 128
# How long the control resolvers' answer for a host stands for "asked now" when a stored control
# is reused: 50 agents uploading the same URLs within a minute ask them once, not 50 times.
DNS_FRESH = 60.0
T = TypeVar("T")

M: Table = Measurement.__table__  # type: ignore[assignment]


@dataclass
class Control:
    id: int
    at: datetime  # when the row `id` was measured
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
    rejected: list[tuple[Item, str]] = field(default_factory=list)  # with why


# What the database says about the data itself (not about its connection): one item's fault.
# bulk.py talks to the DB-API connection, whose errors SQLAlchemy does not wrap.
try:  # the [postgres] extra is optional: a collector on SQLite has no psycopg
    import psycopg
    _PG_ERRORS: tuple[type[BaseException], ...] = (psycopg.DataError, psycopg.IntegrityError)
except ImportError:
    _PG_ERRORS = ()

DATA_ERRORS: tuple[type[BaseException], ...] = (
    DataError, IntegrityError, sqlite3.DataError, sqlite3.IntegrityError, *_PG_ERRORS,
    ValueError, UnicodeError)


class Controls:
    """Control measurements per URL: one near the agent's time from memory, then from the
    database (a local round of `blockwatch run` stores one every interval), then the control's
    last measurement where the agents' results allow (control_reuse), else measured now, once
    per URL however many agents ask at the same moment."""

    def __init__(self, state: CollectorState):
        self.state = state
        self._recent: OrderedDict[str, list[Control]] = OrderedDict()
        self._loaded: dict[str, float] = {}  # URL -> monotonic time its DB rows were read
        self._inflight: dict[str, asyncio.Future[Control]] = {}
        self._dns: dict[str, tuple[float, list[DnsQuery]]] = {}  # host -> (monotonic, answers)
        self._dns_inflight: dict[str, asyncio.Future[list[DnsQuery]]] = {}
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
            async with ResolverSet.for_view(snap.control, snap.settings) as dns:
                ms = await asyncio.gather(*(measure(u, snap.control, snap.settings, dns)
                                            for u in canaries), return_exceptions=True)
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

    def in_memory(self, items: Sequence[Item]) -> bool:
        """Whether every item has a control in memory (for_items would read or fetch none)."""
        return all(self._pick(it.m.url, it.at) is not None for it in items)

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

    async def for_items(self, snap: Snapshot, items: Sequence[Item], *,
                        healthy: bool = True) -> None:
        """Give every item a control: one DB read for what memory lacks, then the control's
        last measurement where it may stand (`healthy`: the collector's canaries answered), one
        probe per URL for the rest. Items judged against a reused control get their judgement
        here."""
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
        wall = repo.utcnow()
        for it in items:
            it.control = self._pick(it.m.url, it.at)
            if it.control is None and wall - it.at > CONTROL_WINDOW:
                # An old queued measurement with no control near its time: today's control is
                # the best evidence left, measured once per URL and window, not per upload.
                it.control = self._pick(it.m.url, wall)
        if all(it.control is not None for it in items):
            return
        async with ResolverSet.for_view(snap.control, snap.settings) as dns:
            reuse = snap.cfg.settings.probe.control_reuse
            if healthy and reuse > timedelta(0):
                # a control whose network fails says nothing: fetched (and judged) as before
                await self._reuse(snap, [it for it in items if it.control is None],
                                  wall - reuse, dns)
            missing = sorted({it.m.url for it in items if it.control is None})
            if len(missing) > MAX_CONTROLS_PER_UPLOAD:
                log.warning("an upload needs %d control measurements; measuring %d, the rest are "
                            "judged without one", len(missing), MAX_CONTROLS_PER_UPLOAD)
                missing = missing[:MAX_CONTROLS_PER_UPLOAD]
            if not missing:
                return
            got = await asyncio.gather(*(self._measure(snap, u, dns) for u in missing),
                                       return_exceptions=True)
        fresh = {}
        for u, c in zip(missing, got, strict=True):
            if isinstance(c, BaseException):
                log.error("control measurement of %s failed: %s", u, c)
            else:
                fresh[u] = c
        for it in items:
            if it.control is None:
                # as above: today's control (the site may have been down then; rare)
                it.control = fresh.get(it.m.url)

    async def _reuse(self, snap: Snapshot, need: Sequence[Item], since: datetime,
                     dns: ResolverSet) -> None:
        """The control's last measurement of a URL (its open run, last seen at `since` or later)
        for the items of that URL, when every one of them may be judged against it
        (`reuse_judgements`); the others keep no control, and get one fetched now."""
        by_url: dict[str, list[Item]] = {}
        for it in need:
            by_url.setdefault(it.m.url, []).append(it)
        priors = await asyncio.to_thread(recent_controls, self.state.db,
                                         snap.vantage_ids[CONTROL], sorted(by_url), since)
        # the control resolvers are asked only where a result could pass (nothing failed)
        asks = sorted(u for u, its in by_url.items()
                      if u in priors and all(it.m.failure() is None for it in its))
        answers = await asyncio.gather(*(self._control_dns(u, dns) for u in asks),
                                       return_exceptions=True)
        reused = 0
        for u, now_dns in zip(asks, answers, strict=True):
            if isinstance(now_dns, BaseException):
                log.warning("the control resolvers' answer for %s failed: %s", u, now_dns)
                continue
            prior = priors[u]
            try:
                js = reuse_judgements(snap, prior, now_dns, by_url[u])
            except Exception:  # odd evidence met by a bug: a control fetched now, judged later
                log.exception("checking %s against the control's last measurement failed", u)
                continue
            if js is None:
                continue
            c = Control(prior.id, prior.measured_at, prior.m)  # named as measured then
            for it, j in zip(by_url[u], js, strict=True):
                it.control, it.judgement = c, j
            reused += 1
        if by_url:
            log.debug("an upload's %d URLs without a recent control: %d judged against the "
                      "control's last measurement", len(by_url), reused)

    async def _control_dns(self, url: str, dns: ResolverSet) -> list[DnsQuery]:
        """The control resolvers' answers for the URL's host, asked now (or at most DNS_FRESH
        seconds ago, by another upload)."""
        host = urlsplit(url).hostname or ""
        hit = self._dns.get(host)
        if hit is not None and time.monotonic() - hit[0] < DNS_FRESH:
            return hit[1]

        async def ask() -> list[DnsQuery]:
            got = await dns.resolve(host)
            if len(self._dns) >= CACHE_URLS:
                self._dns.clear()
            self._dns[host] = (time.monotonic(), got)
            return got

        return await _once(self._dns_inflight, host, ask)

    async def _measure(self, snap: Snapshot, url: str, dns: ResolverSet) -> Control:
        async def fetch() -> Control:
            m = await measure(url, snap.control, snap.settings, dns)
            cid = await asyncio.to_thread(_store_control, self.state.db, snap, url, m)
            c = Control(cid, repo.parse_time(m.measured_at), m)
            self.remember(url, c)
            return c

        return await _once(self._inflight, url, fetch)


async def _once(inflight: dict[str, asyncio.Future[T]], key: str,
                work: Callable[[], Awaitable[T]]) -> T:
    """`work()` for `key`, once however many callers ask for it at the same moment."""
    fut = inflight.get(key)
    if fut is not None:
        return await asyncio.shield(fut)
    fut = asyncio.get_running_loop().create_future()
    inflight[key] = fut
    try:
        result = await work()
        fut.set_result(result)
        return result
    except BaseException as exc:
        fut.set_exception(exc)
        fut.exception()  # retrieved: nobody else may be waiting
        raise
    finally:
        del inflight[key]


def reuse_judgements(snap: Snapshot, prior: CachedControl, now_dns: list[DnsQuery],
                     items: Sequence[Item]) -> list[Judgement] | None:
    """Each item's judgement against the control's last measurement `prior`, or None when any
    of them needs a control measured now: every one must be plainly fine against it
    (analysis/reuse.py; `now_dns`: the control resolvers' answers now) and judged "ok"."""
    if not all(plainly_fine(it.m, prior.m, now_dns, settings=snap.analysis, asn=snap.asn)
               for it in items):
        return None
    out = []
    for it in items:
        j = judge(it.m, prior.m, vantage_ok=it.vantage_ok, control_ok=True,
                  settings=snap.analysis, interception=snap.interception, asn=snap.asn)
        if j.verdict != "ok":
            return None
        out.append(j)
    return out


def _load_controls(db: Database, control_id: int, urls: list[str], lo: datetime,
                   hi: datetime) -> list[tuple[str, Control]]:
    q = (select(M.c.id, M.c.url, M.c.measured_at, *evidence.columns())
         .where(M.c.vantage_id == control_id, M.c.role == "control",
                M.c.measured_at >= lo, M.c.measured_at <= hi, M.c.url.in_(urls))
         .order_by(M.c.measured_at))
    with db.read() as s:
        rows = s.execute(q).all()
        return [(r.url, Control(r.id, r.measured_at, WebMeasurement.from_json(e)))
                for r, e in zip(rows, evidence.loads(s, [r[3:] for r in rows]), strict=True)]


def _store_control(db: Database, snap: Snapshot, url: str, m: WebMeasurement) -> int:
    """Stored whole (verdicts judged against it name it) and as the control's open run of the
    URL, so that later uploads and local rounds find it as its last measurement."""
    with db.write() as s:
        return bulk.store_controls(db, s, snap.vantage_ids[CONTROL], [bulk.Row(
            m.uid, snap.url_targets.get(url), url, repo.parse_time(m.measured_at), m.to_json(),
            failure=m.failure())], [True])[m.uid]


class Ingestor:
    def __init__(self, state: CollectorState):
        self.state = state
        self.controls = Controls(state)

    async def ingest(self, agent: AgentVantage, batch: dict[str, Any]) -> dict[str, object]:
        """One upload, as schema.UPLOAD reads it (MeasurementBatch's model_dump())."""
        snap = self.state.snapshot
        if agent.name not in snap.vantage_ids:  # revoked between authentication and here
            raise PermissionError(agent.name)
        vid = snap.vantage_ids[agent.name]
        items: list[Item] = []
        rejected: list[dict[str, str]] = []
        seen: set[str] = set()
        dup_in_batch = 0
        for data in batch["measurements"]:
            url, auid = data["url"], data["uid"]
            if url not in snap.url_targets:
                # Never probe what an agent names: a seized token must not turn the collector
                # into a fetcher of arbitrary (internal) URLs. Rejected, not retried.
                rejected.append(_rejected(auid, f"{printable(url)} is not a target URL of "
                                          "this collector"))
                continue
            uid = f"{agent.name}/{auid}"
            if uid in seen:
                dup_in_batch += 1
                continue
            seen.add(uid)
            vantage_ok, round_id = data.pop("vantage_ok"), data.pop("round_id")
            data.update(vantage=agent.name, role="vantage", source_address=None)
            try:
                m = WebMeasurement.from_json(data)
            except (TypeError, ValueError) as exc:  # the schema and the records disagree: a bug
                log.error("agent %s: measurement %s not readable: %s", agent.name, auid, exc)
                rejected.append(_rejected(auid, "not a measurement this collector can read"))
                continue
            # `data` has exactly to_json()'s shape (the models mirror the records), without
            # rebuilding it from the dataclasses
            items.append(Item(m, uid, repo.parse_time(m.measured_at), snap.url_targets[url],
                              vantage_ok, round_id, evidence=data))
        # Already stored uids (a re-delivery) must not make the collector fetch controls: when
        # some item has no control in memory, they are left out first (a read of its own);
        # else store_batch leaves them out in its transaction, before judging.
        known: set[str] = set()
        if items and not self.controls.in_memory(items):
            known = await asyncio.to_thread(_known_uids, self.state.db, [it.uid for it in items])
        fresh = [it for it in items if it.uid not in known]
        if fresh:
            healthy = await self.controls.healthy(snap)
            await self.controls.for_items(snap, fresh, healthy=healthy)
            if not healthy:
                for it in fresh:
                    it.control_ok = False
        asn = agent.asn or batch.get("asn") or ""
        result = await asyncio.to_thread(store_batch, self.state.db, snap, vid, fresh, asn)
        if result.events:
            log.info("agent %s: %d new events", agent.name, len(result.events))
        for it, why in result.rejected:
            rejected.append(_rejected(it.uid.partition("/")[2], why))
        return {"accepted": result.accepted,
                "duplicates": result.duplicates + len(known) + dup_in_batch,
                "rejected": rejected}


def _known_uids(db: Database, uids: list[str]) -> set[str]:
    with db.read() as s:
        return bulk.known_uids(db, s, uids)


def _rejected(uid: str, error: str) -> dict[str, Any]:
    return {"uid": uid, "error": error, "index": None, "status": 422}


def judge_items(snap: Snapshot, items: Sequence[Item]) -> list[tuple[Item, str]]:
    """Judge each item not judged yet; those judge() fails on (a bug met by odd evidence) are
    returned."""
    failed = []
    for it in items:
        c = it.control
        if it.judgement is not None:
            continue  # judged against a reused control when it was chosen (the same inputs)
        try:
            it.judgement = judge(it.m, c.m if c else None, vantage_ok=it.vantage_ok,
                                 control_ok=c is not None and it.control_ok,
                                 settings=snap.analysis, interception=snap.interception,
                                 asn=snap.asn)
        except Exception:
            log.exception("judging %s failed", it.uid)
            failed.append((it, "the collector could not judge this measurement"))
    return failed


def store_batch(db: Database, snap: Snapshot, vantage_id: int, items: Sequence[Item],
                asn: str = "") -> StoreResult:
    """Judge and store one upload in one transaction. Its items already stored (a re-delivery)
    are counted as duplicates, neither judged nor stored again. Safe against concurrent uploads
    of the same uids (the vantage's row, updated first, makes one agent's uploads take turns;
    and ON CONFLICT DO NOTHING: the later one counts them as duplicates) and of the same (URL,
    vantage) (its state rows are locked before they are read). When the database refuses the
    upload's data (not its connection), each item is stored alone so that one bad item is
    rejected and the rest kept."""
    now = repo.utcnow()
    failed: list[tuple[Item, str]] = []
    known: set[str] = set()
    try:
        with db.write() as s:
            # first: the vantage's row stays locked until commit, so no other upload of this
            # agent (the only writer of its uids) stores any of these uids meanwhile
            bulk.seen_vantage(db, s, vantage_id, now, asn)
            if items:
                known = bulk.known_uids(db, s, [it.uid for it in items])
                items = [it for it in items if it.uid not in known]
            failed = judge_items(snap, items)
            if failed:
                bad = {id(it) for it, _ in failed}
                items = [it for it in items if id(it) not in bad]
            if not items:
                return StoreResult(0, len(known), [], failed)
            res = bulk_record(db, s, vantage_id, items, snap.confirm_after, now, known=known)
    except DATA_ERRORS:
        log.exception("storing an upload of %d measurements failed: storing one by one",
                      len(items))
        more = judge_items(snap, items)  # none when judging came before the error
        if more:
            bad = {id(it) for it, _ in more}
            items = [it for it in items if id(it) not in bad]
            failed += more
        res = StoreResult(0, 0, [])
        for it in items:
            try:
                with db.write() as s:
                    # the vantage's row first, as above: every writer of this agent's uids
                    # holds it, so a concurrent upload of the same uids reads them as stored
                    bulk.seen_vantage(db, s, vantage_id, now, asn)
                    one = bulk_record(db, s, vantage_id, [it], snap.confirm_after, now)
            except DATA_ERRORS as exc:
                log.error("measurement %s refused by the database: %s", it.uid, exc)
                failed.append((it, "the database refused this measurement"))
                continue
            res.accepted += one.accepted
            res.duplicates += one.duplicates
            res.events += one.events
    res.duplicates += len(known)
    res.rejected = failed
    return res


def bulk_record(db: Database, s: Session, vantage_id: int, items: Sequence[Item],
                confirm_after: int, now: datetime, *, known: set[str] | None = None
                ) -> StoreResult:
    """`repo.add_measurement` + `repo.record_verdict` for many measurements of one vantage
    (storage/bulk.py; the vantage's last_seen_at is the caller's). `known`: the stored uids
    among them, read under the vantage's row lock (bulk.record)."""
    rows = []
    for it in items:
        j = it.judgement
        assert j is not None
        rows.append(bulk.Row(
            uid=it.uid, target_id=it.target_id, url=it.m.url, measured_at=it.at,
            evidence=it.evidence if it.evidence is not None else it.m.to_json(),
            failure=it.m.failure(), round_id=it.round_id, verdict=j.verdict,
            confirmed=j.confirmed, reason=j.reason, reason_keys=j.keys() or None,
            control_id=it.control.id if it.control else None))
    res = bulk.record(db, s, vantage_id, rows, confirm_after, now, touch_vantage=False,
                      known=known)
    return StoreResult(res.accepted, res.duplicates, res.events)
