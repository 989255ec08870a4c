"""One probe round: canaries, then every URL from the control and from each local vantage,
judged and stored as results arrive (a crash mid-round loses only what was in flight).

The control resolvers are asked for every URL. The control's own fetch (TCP, TLS, HTTP) is
skipped when its last measurement of the URL is younger than `[probe] control_reuse` and every
vantage's result came over verified TLS, is plainly fine and matches it (analysis/reuse.py) with
a verdict of "ok" against it: those verdicts name that stored control (its id and time), never
one measured now. Anything else (plain HTTP, no recent control, a failure, a difference, a
fingerprint, a slow transfer) is judged against a control fetched now."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from blockwatch.analysis.reuse import plainly_fine
from blockwatch.analysis.verdict import Judgement, judge
from blockwatch.config import Config, LocalVantage
from blockwatch.context import (  # the view and settings helpers: re-exported (__all__)
    CONTROL,
    MeasureContext,
    analysis_settings,
    build_context,
    control_view,
    local_views,
    probe_settings,
)
from blockwatch.gctune import fewer_gc_passes
from blockwatch.probe.records import DnsQuery, WebMeasurement
from blockwatch.probe.resolvers import ResolverSet
from blockwatch.probe.runner import NetworkView, ProbeSettings, measure
from blockwatch.round_summary import round_line
from blockwatch.storage import Database, bulk, repo
from blockwatch.storage.controls import CachedControl, recent_controls
from blockwatch.targets import Target

log = logging.getLogger(__name__)
__all__ = ["CONTROL", "Result", "RoundReport", "analysis_settings", "control_view", "local_views",
           "next_round_number", "probe_settings", "run_round"]
BATCH = 64  # URLs stored per transaction at most
BATCH_WAIT = 0.25  # seconds the writer lets a batch fill (a crash loses at most this much more)
ROUND_COUNTER = "probe_round_number"  # kv: the number of the last round (probe and resolver)


@dataclass
class Result:
    target: str
    url: str
    vantage: str
    verdict: str
    confirmed: bool
    reason: str
    measured_at: str
    event: str | None = None  # "ok -> tls" when this verdict confirmed a change
    control_measured_at: str | None = None  # when the control judged against was measured
    control_reused: bool = False  # that control is an earlier round's (control_reuse)
    # the last time the control saw that same outcome (its run's last repetition): what its
    # age under control_reuse is counted from; control_measured_at for a control measured now
    control_last_seen_at: str | None = None

    def to_json(self) -> dict[str, object]:
        return {"target": self.target, "url": self.url, "vantage": self.vantage,
                "verdict": self.verdict, "confirmed": self.confirmed, "reason": self.reason,
                "measured_at": self.measured_at, "event": self.event,
                "control_measured_at": self.control_measured_at,
                "control_last_seen_at": self.control_last_seen_at,
                "control_reused": self.control_reused}


@dataclass
class RoundReport:
    round_id: str
    number: int | None = None  # the round's number in this database (for log lines)
    results: list[Result] = field(default_factory=list)
    vantage_ok: dict[str, bool] = field(default_factory=dict)
    new_events: list[repo.NewEvent] = field(default_factory=list)
    controls_fetched: int = 0  # URLs the control fetched this round
    controls_reused: int = 0  # URLs judged against an earlier control (control_reuse)


async def run_round(
    cfg: Config,
    targets: list[Target],
    db: Database,
    *,
    context: MeasureContext | None = None,
    on_result: Callable[[Result], None] | None = None,
    number: int | None = None,
) -> RoundReport:
    """`context`: what the command built from `cfg` (context.py), made here when not given;
    `number`: the round's number (`next_round_number`); one is taken when not given."""
    with fewer_gc_passes():
        return await _run_round(cfg, targets, db, context or build_context(cfg),
                                on_result=on_result, number=number)


def next_round_number(db: Database) -> int:
    """The next round's number: a counter in `kv`, so numbers go on across restarts."""
    from sqlalchemy.exc import IntegrityError

    from blockwatch.storage.models import KeyValue

    for attempt in (1, 2):
        try:
            with db.write() as s:
                row = s.get(KeyValue, ROUND_COUNTER, with_for_update=True)
                n = int(row.value if row is not None else 0) + 1
                repo.set_kv(s, ROUND_COUNTER, n)
            return n
        except IntegrityError:  # the first round ever, taken at once by `check` and `run`
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def last_round_number(db: Database) -> int:
    with db.read() as s:
        return int(repo.get_kv(s, ROUND_COUNTER, 0) or 0)


async def _run_round(
    cfg: Config,
    targets: list[Target],
    db: Database,
    ctx: MeasureContext,
    *,
    on_result: Callable[[Result], None] | None,
    number: int | None,
) -> RoundReport:
    started = time.monotonic()
    report = RoundReport(round_id=uuid.uuid4().hex)
    control = ctx.control
    locals_ = ctx.locals
    if not locals_:
        return report
    report.number = number if number is not None else \
        await asyncio.to_thread(next_round_number, db)
    views = [control] + [v for _, v in locals_]
    async with contextlib.AsyncExitStack() as stack:
        dns = {v.name: await stack.enter_async_context(ResolverSet.for_view(v, ctx.settings))
               for v in views}
        await _measure_and_store(cfg, targets, db, ctx, views, dns, report, on_result)
    seconds = time.monotonic() - started
    urls = sum(len(t.urls) for t in targets)
    for vconf, _ in locals_:
        mine = [r for r in report.results if r.vantage == vconf.name]
        log.info("%s", round_line("probe", report.number, vconf.name, urls, seconds,
                                  [r.verdict for r in mine], sum(1 for r in mine if r.event)))
    return report


async def _measure_and_store(
    cfg: Config,
    targets: list[Target],
    db: Database,
    ctx: MeasureContext,
    views: list[NetworkView],
    dns: dict[str, ResolverSet],
    report: RoundReport,
    on_result: Callable[[Result], None] | None,
) -> None:
    """The round itself, with every view's resolvers open."""
    settings: ProbeSettings = ctx.settings
    confirm_after = cfg.settings.probe.confirm_after
    locals_ = list(ctx.locals)
    sem = asyncio.Semaphore(cfg.settings.probe.concurrency)

    async def one(url: str, view: NetworkView) -> WebMeasurement:
        async with sem:
            return await measure(url, view, settings, dns[view.name])

    # Canaries: if every canary fails at a view, that view's round is inconclusive.
    canaries = list(cfg.settings.probe.canaries)
    if canaries:  # every view at once: a dead view's canary timeouts run in parallel
        per_view = await asyncio.gather(*(asyncio.gather(*(one(u, view) for u in canaries))
                                          for view in views))
        for view, ms in zip(views, per_view, strict=True):
            report.vantage_ok[view.name] = any(m.http is not None and m.http.status is not None
                                               for m in ms)
    else:
        report.vantage_ok = {v.name: True for v in views}
    for view in views:
        if not report.vantage_ok[view.name]:
            log.warning("every canary failed from %s: its verdicts this round are inconclusive",
                        view.name)

    ids = await asyncio.to_thread(_prepare, db, targets, locals_)
    reuse = cfg.settings.probe.control_reuse
    cached: dict[str, CachedControl] = {}
    if reuse > timedelta(0):
        cached = await asyncio.to_thread(
            recent_controls, db, ids["vantages"][CONTROL], [u for t in targets for u in t.urls],
            repo.utcnow() - reuse)
    queue: asyncio.Queue[Item | None] = asyncio.Queue()
    control, vantage_views = views[0], views[1:]

    async def control_dns(url: str) -> list[DnsQuery]:
        async with sem:
            return await dns[control.name].resolve(urlsplit(url).hostname or "")

    def against(prior: CachedControl, now_dns: list[DnsQuery],
                vs: list[WebMeasurement]) -> list[Judgement] | None:
        """Every vantage's verdict against the earlier control, or None when any of them needs
        a control measured now."""
        if not all(plainly_fine(m, prior.m, now_dns, settings=ctx.analysis, asn=ctx.asn)
                   for m in vs):
            return None
        out = []
        for (vconf, _view), m in zip(locals_, vs, strict=True):
            j = judge(m, prior.m, vantage_ok=report.vantage_ok.get(vconf.name, True),
                      control_ok=report.vantage_ok.get(CONTROL, True), asn=ctx.asn,
                      settings=ctx.analysis, interception=ctx.interception)
            if j.verdict != "ok":
                return None
            out.append(j)
        return out

    async def url_job(t: Target, url: str) -> None:
        try:
            prior = cached.get(url)
            if prior is None:
                c, *vs = await asyncio.gather(*(one(url, view) for view in views))
            else:  # the vantages and the control's DNS first; the control's fetch if needed
                now_dns, *vs = await asyncio.gather(
                    control_dns(url), *(one(url, view) for view in vantage_views))
                js = against(prior, now_dns, vs)
                if js is not None:
                    report.controls_reused += 1
                    await queue.put((t, url, prior, vs, js))
                    return
                c = await one(url, control)
        except Exception:  # a bug met by one URL must not end the round for all the others
            log.exception("measuring %s failed; it has no result this round", url)
            return
        report.controls_fetched += 1
        await queue.put((t, url, c, vs))

    stopping = asyncio.Event()

    async def writer() -> None:
        while True:
            item = await queue.get()
            if item is not None and queue.qsize() < BATCH - 1 and not stopping.is_set():
                # let the batch fill a moment: a transaction's fixed CPU (BEGIN, a dozen
                # statements, COMMIT) is most of what storing a few URLs costs
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(BATCH_WAIT):
                        await stopping.wait()
            batch = [item]
            while not queue.empty() and len(batch) < BATCH:
                batch.append(queue.get_nowait())
            stop = None in batch
            batch = [b for b in batch if b is not None]
            if batch:
                results, events = await asyncio.to_thread(
                    _store, db, batch, ids, report, confirm_after, ctx.analysis, ctx.asn, locals_,
                    ctx.interception)
                report.results.extend(results)
                report.new_events.extend(events)
                if on_result:
                    for r in results:
                        on_result(r)
            if stop:
                return

    wtask = asyncio.create_task(writer())
    try:
        await asyncio.gather(*(url_job(t, u) for t in targets for u in t.urls))
    finally:
        stopping.set()
        await queue.put(None)
        await wtask
    if reuse > timedelta(0):
        log.debug("probe round %s: the control fetched %d URLs, %d judged against an earlier "
                  "control", report.number, report.controls_fetched, report.controls_reused)


def _prepare(db: Database, targets: list[Target],
             locals_: list[tuple[LocalVantage, NetworkView]]) -> dict[str, dict[str, int]]:
    """Target and vantage ids; the vantages are the context's (the ones measured and stored),
    never read again from a configuration that may have been reloaded since."""
    with db.write() as s:
        # the target files themselves are synced by the caller that loaded all of them
        tids = repo.sync_targets(s, targets, retire_others=False)
        vids = {CONTROL: repo.ensure_vantage(s, CONTROL, "control")}
        for v, _ in locals_:
            vids[v.name] = repo.ensure_vantage(s, v.name, "local", v.country)
    return {"targets": tids, "vantages": vids}


# A URL's measurements on their way to the writer: (target, URL, the control measured now, the
# vantages' measurements) or, judged against an earlier control, (..., that control, the
# vantages' measurements, their judgements).
Item = tuple[Target, str, WebMeasurement, list[WebMeasurement]] | \
    tuple[Target, str, CachedControl, list[WebMeasurement], list[Judgement]]


def _store(db, batch, ids, report, confirm_after, aset, asn, locals_, interception):  # type: ignore[no-untyped-def]
    """One transaction per batch: the controls measured now in one INSERT, then per local
    vantage one bulk store of its measurements, verdicts and state machines (storage/bulk.py).
    Items without judgements are judged here against their control."""
    cid = ids["vantages"][CONTROL]
    controls: list[bulk.Row] = []  # measured this round
    control_of: list[bulk.Row | CachedControl] = []  # per item: what its verdicts name
    per_vantage: list[list[bulk.Row]] = [[] for _ in locals_]
    judged: list[tuple[Target, str, str, WebMeasurement, Judgement, str, str, bool]] = []
    for item in batch:
        t, url, c, vs = item[:4]
        given: list[Judgement] | None = item[4] if len(item) > 4 else None
        tid = ids["targets"].get(t.name)
        reused = isinstance(c, CachedControl)
        if isinstance(c, CachedControl):
            control_of.append(c)
            cm = c.m
            last_seen = _iso_ms(c.last_at)
        else:
            row = bulk.Row(c.uid, tid, url, repo.parse_time(c.measured_at), c.to_json(),
                           failure=c.failure(), round_id=report.round_id)
            controls.append(row)
            control_of.append(row)
            cm = c
            last_seen = c.measured_at
        for k, ((vconf, _view), m) in enumerate(zip(locals_, vs, strict=True)):
            j: Judgement = given[k] if given is not None else judge(
                m, cm, vantage_ok=report.vantage_ok.get(vconf.name, True),
                control_ok=report.vantage_ok.get(CONTROL, True), asn=asn, settings=aset,
                interception=interception)
            per_vantage[k].append(bulk.Row(
                m.uid, tid, url, repo.parse_time(m.measured_at), m.to_json(), failure=m.failure(),
                round_id=report.round_id, verdict=j.verdict, confirmed=j.confirmed,
                reason=j.reason, reason_keys=j.keys() or None))
            judged.append((t, url, vconf.name, m, j, cm.measured_at, last_seen, reused))
    event_of: dict[str, repo.NewEvent] = {}
    with db.write() as s:
        # a control is stored whole when a verdict stored whole names it (the others extend
        # their run: storage/runs.py); an earlier control is stored already, whole
        whole: set[str] = set()
        for (vconf, _view), rows in zip(locals_, per_vantage, strict=True):
            whole |= bulk.full_uids(db, s, ids["vantages"][vconf.name], rows, confirm_after)
        fresh = [i for i, c in enumerate(control_of) if isinstance(c, bulk.Row)]
        cids = bulk.store_controls(db, s, cid, controls, [
            any(rows[i].uid in whole for rows in per_vantage) for i in fresh])
        for (vconf, _view), rows in zip(locals_, per_vantage, strict=True):
            for r, c in zip(rows, control_of, strict=True):  # one row per URL, as the controls
                r.control_id = c.id if isinstance(c, CachedControl) else cids[c.uid]
            event_of.update(bulk.record(db, s, ids["vantages"][vconf.name], rows,
                                        confirm_after).event_of)
    results: list[Result] = []
    events: list[repo.NewEvent] = []
    for t, url, vname, m, j, control_at, last_seen, reused in judged:
        new = event_of.get(m.uid)
        if new is not None:
            events.append(new)
        results.append(Result(t.name, url, vname, j.verdict, j.confirmed, j.reason, m.measured_at,
                              f"{new.previous or 'new'} -> {new.state}" if new else None,
                              control_measured_at=control_at, control_reused=reused,
                              control_last_seen_at=last_seen))
    return results, events


def _iso_ms(at: datetime) -> str:
    """A stored time written as measurements write theirs (UTC, milliseconds, "Z")."""
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
