"""`blockwatch run`: every job in one process on an asyncio scheduler (APScheduler 3).

Jobs are rebuilt from config at every start (no persistent job store: APScheduler's must never be
shared between processes); what must survive a restart lives in the database (measurements, state
machines, outbox, cursors). Every job is `max_instances=1` and `coalesce=True`: never two runs of
one job at once, and a backlog of missed runs collapses into one. Intervals are anchored to the
wall clock.

Signals: SIGTERM/SIGINT stop gracefully; SIGHUP re-reads the configuration file and rebuilds the
jobs from it (targets, vantages, feeds, alerts), keeping the running configuration when the new
one has errors; a changed storage URL or [server] section is logged as needing a restart. One
daemon per database (`storage.db.acquire_instance_lock`); on PostgreSQL, `run --shared` lets
several run side by side, each job guarded so that it runs once across them
(`storage.joblock`)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from apscheduler.util import undefined

from blockwatch import aio, redact
from blockwatch.config import Config, ConfigError, LocalVantage, OoniVantage, ResolverVantage, load
from blockwatch.durations import format_duration
from blockwatch.storage import Database, open_database, repo
from blockwatch.storage.db import MissingExtra, acquire_instance_lock
from blockwatch.storage.models import JobRun

log = logging.getLogger(__name__)
STOP_GRACE_SECONDS = 20.0


class JobProblem(Exception):
    """An expected failure of a job (a feed or API down): logged without a traceback."""


@dataclass(frozen=True)
class JobSpec:
    name: str
    interval: timedelta
    fn: Callable[[], Awaitable[None]]
    jitter: float = 0.0
    run_at_start: bool = True


def record_job(db: Database, name: str, *, started: datetime, ok: bool, error: str | None,
               interval: timedelta | None = None) -> None:
    with db.write() as s:
        row = s.get(JobRun, name)
        if row is None:
            row = JobRun(name=name, runs=0)
            s.add(row)
        row.last_started_at = started
        row.last_finished_at = datetime.now(UTC)
        row.runs = (row.runs or 0) + 1
        if ok:
            row.last_ok_at = row.last_finished_at
            row.last_error = None
        else:
            row.last_error = error
        if interval is not None:  # what `health` measures the lag against
            repo.set_kv(s, f"job_interval:{name}", interval.total_seconds())


def _sync_all_targets(db: Database, targets: list[Any]) -> None:
    """The target files are the truth: a target removed from them stops being shown."""
    with db.write() as s:
        repo.sync_targets(s, targets)


class Daemon:
    def __init__(self, cfg: Config, db: Database, *, now: Callable[[], datetime] | None = None,
                 lock: str = ""):
        self.cfg = cfg
        self.db = db
        self.lock = lock  # what holds the database for this daemon (shown in the start line)
        self.now = now or (lambda: datetime.now(UTC))
        self.stopping = asyncio.Event()
        self.running: set[asyncio.Task[Any]] = set()
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        # MeasureContext (context.py): settings, views, interception, ASN table; built at the
        # start and on each reload, shared by every round and the collector until the next
        self.context: Any = None
        self.collector: Any = None  # CollectorState while the [server] side runs
        self._reload_task: asyncio.Task[None] | None = None
        self._hup_pending = False
        self.joblocks: Any = None  # storage.joblock.JobLocks in a `run --shared`
        self.site_cache: Any = None  # site.cache.SiteCache: what the site builds keep in memory

    # --- the jobs ------------------------------------------------------------------------------

    async def probe_round(self) -> None:
        from blockwatch.context import build_context
        from blockwatch.resolver_round import run_resolver_round
        from blockwatch.round import next_round_number, run_round
        from blockwatch.targets import load_targets

        # one configuration and the context built from it for the whole round, both taken
        # before any await: a SIGHUP meanwhile must not pair the old one with the new context
        cfg, ctx = self.cfg, self.context
        if ctx is None:  # a round run without run() (tests)
            ctx = self.context = build_context(cfg)
        targets = load_targets(cfg.target_files)
        await asyncio.to_thread(_sync_all_targets, self.db, targets)
        if not any(isinstance(v, LocalVantage | ResolverVantage) for v in cfg.settings.vantage):
            log.info("probe round: no local or resolver vantage to measure from")
        else:  # one number for both kinds; each vantage logs its line (round_summary.py)
            number = await asyncio.to_thread(next_round_number, self.db)
            await run_round(cfg, targets, self.db, context=ctx, number=number)
            await run_resolver_round(cfg, targets, self.db, context=ctx, number=number)
        # link incidents to new blocks now, send alerts now rather than at the next alerts
        # tick, and show it all on the site
        from blockwatch.feeds.commands import link_cases

        await asyncio.to_thread(link_cases, self.cfg, self.db)
        await self.alerts()
        await self.site()

    def ooni_job(self, v: OoniVantage) -> Callable[[], Awaitable[None]]:
        async def job() -> None:
            from blockwatch.ooni import import_ooni
            from blockwatch.targets import load_targets

            # the import logs its own line (ImportReport.summary)
            rep = await import_ooni(self.cfg, self.db, v, load_targets(self.cfg.target_files))
            if rep.problems:
                raise JobProblem("; ".join(rep.problems[:3]))
        return job

    async def asn_refresh(self) -> None:
        from blockwatch.asn import refresh_if_stale

        a = self.cfg.settings.asn
        table = self.context.asn_table  # refreshed in place: rounds and collector share it
        res = await refresh_if_stale(table.path, a.max_age, url=a.url)
        log.info("ASN table: %s", res.status)
        if res.status == "downloaded":
            await asyncio.to_thread(table.reload)
        if res.status == "failed":
            raise JobProblem(f"ASN table refresh failed: {res.detail}")

    async def feeds(self) -> None:
        from blockwatch.feeds.commands import poll_feeds

        # a stop cuts the poll short (a search stores what it found and goes on next time)
        summary = await poll_feeds(self.cfg, self.db, stop=self.stopping)
        log.info("feeds: %s", summary)
        await self.alerts()

    async def alerts(self) -> None:
        from blockwatch.alerts import deliver_outbox, queue_alerts, queue_digest

        a = self.cfg.settings.alerts
        if not (a.recipient or a.webhook or a.telegram):
            return
        await queue_alerts(self.cfg, self.db)
        await queue_digest(self.cfg, self.db)
        await deliver_outbox(self.cfg, self.db)

    async def site(self) -> None:
        from blockwatch.site.cache import SiteCache
        from blockwatch.site.commands import build_site

        limit = self.cfg.settings.site.cache_limit  # read on each build: a reload applies
        if not limit:  # no cache: what was kept goes
            self.site_cache = None
        elif self.site_cache is None:
            self.site_cache = SiteCache(limit=limit)
        else:
            self.site_cache.set_limit(limit)
        await asyncio.to_thread(build_site, self.cfg, self.db, cache=self.site_cache)

    async def maintenance(self) -> None:
        from blockwatch.retention import prune
        from blockwatch.site.rollup import rollup_due

        rolled = await asyncio.to_thread(rollup_due, self.db)
        pruned = await asyncio.to_thread(prune, self.db, self.cfg.settings.retention.raw,
                                         self.now())
        log.info("maintenance: %d rollup rows; %d raw measurements past retention removed",
                 rolled, pruned)

    # --- wiring --------------------------------------------------------------------------------

    def jobs(self) -> list[JobSpec]:
        s = self.cfg.settings
        interval = s.probe.interval
        out = [JobSpec("probe", interval, self.probe_round,
                       jitter=min(60.0, interval.total_seconds() / 10))]
        for v in s.vantage:
            if isinstance(v, OoniVantage):
                out.append(JobSpec(f"ooni:{v.name}", v.interval, self.ooni_job(v)))
        if s.asn.enabled:
            out.append(JobSpec("asn", timedelta(days=1), self.asn_refresh))
        if s.feeds.active:
            out.append(JobSpec("feeds", s.feeds.interval, self.feeds))
        if s.alerts.recipient or s.alerts.webhook or s.alerts.telegram:
            out.append(JobSpec("alerts", timedelta(minutes=1), self.alerts))
        out.append(JobSpec("site", timedelta(hours=1), self.site, run_at_start=False))
        out.append(JobSpec("maintenance", timedelta(days=1), self.maintenance))
        return out

    def wrap(self, spec: JobSpec) -> Callable[[], Awaitable[None]]:
        async def wrapper() -> None:
            if self.stopping.is_set():
                return
            task = asyncio.current_task()
            assert task is not None
            self.running.add(task)
            started = datetime.now(UTC)
            ok, error = True, None
            try:
                lock = self.db.instance_lock
                if lock is not None and not await asyncio.to_thread(lock.hold):
                    # its connection was cut (a server restart) and another `run` started
                    log.error("another `blockwatch run` took this database while this one's "
                              "connection was cut: stopping")
                    self.stopping.set()
                    return
                await spec.fn()
            except asyncio.CancelledError:
                ok, error = False, "stopped before it finished"
                if not self.stopping.is_set():
                    raise
                # the stop's own cancellation (_drain): one plain line, not APScheduler's
                # traceback of a failed job
                log.info("job %s stopped before it finished (the %s given to running jobs "
                         "were over)", spec.name, format_duration(STOP_GRACE_SECONDS))
            except JobProblem as exc:
                ok, error = False, str(exc)
                log.warning("job %s: %s", spec.name, exc)
            except ConfigError as exc:
                # a file the job reads (a people or target list edited on disk) is broken: the
                # file, line and what was expected, once per run, not a traceback
                ok, error = False, str(exc)
                log.error("job %s: %s", spec.name, exc)
            except Exception as exc:
                ok, error = False, f"{type(exc).__name__}: {exc}"
                log.exception("job %s failed", spec.name)
            finally:
                self.running.discard(task)
                await asyncio.to_thread(record_job, self.db, spec.name, started=started, ok=ok,
                                        error=error, interval=spec.interval)
        return wrapper

    def scheduled(self, spec: JobSpec) -> Callable[[], Awaitable[None]]:
        """What the scheduler calls: the job, and in a shared run only when this process gets
        it (storage/joblock.py)."""
        fn = self.wrap(spec)
        return fn if self.joblocks is None else self.joblocks.guard(spec.name, spec.interval, fn)

    def schedule(self, keep: dict[str, datetime] | None = None) -> None:
        """Add every job. `keep`: next run times of the jobs before a reload; a job that stays
        keeps its place (at most one new interval away) instead of running at once."""
        now = datetime.now(UTC)
        for spec in self.jobs():
            secs = spec.interval.total_seconds()
            nxt: Any = now if spec.run_at_start else undefined  # None would add it paused
            if keep is not None and spec.name in keep:
                nxt = min(keep[spec.name], now + spec.interval)
            self.scheduler.add_job(
                self.scheduled(spec), IntervalTrigger(seconds=secs, jitter=spec.jitter or None),
                id=spec.name, name=spec.name, max_instances=1, coalesce=True,
                misfire_grace_time=max(1, int(secs)), next_run_time=nxt,
            )

    def reschedule(self) -> None:
        """Jobs rebuilt from the current config. A job running now finishes undisturbed (the
        executor still counts it, so its successor does not start beside it)."""
        keep = {j.id: j.next_run_time for j in self.scheduler.get_jobs() if j.next_run_time}
        self.scheduler.remove_all_jobs()
        self.schedule(keep)

    # --- SIGHUP --------------------------------------------------------------------------------

    def _on_hup(self) -> None:
        if self.stopping.is_set():
            return
        self._hup_pending = True  # a SIGHUP during a reload: read the file once more after it
        if self._reload_task is None or self._reload_task.done():
            self._reload_task = asyncio.create_task(self._reloads())

    async def _reloads(self) -> None:
        while self._hup_pending and not self.stopping.is_set():
            self._hup_pending = False
            try:
                await self.reload()
            except Exception:
                # never a silent end of the reload task: said, and the next SIGHUP tries again
                log.exception("configuration reload failed part-way: send SIGHUP again, or "
                              "restart blockwatch")

    async def reload(self) -> bool:
        """Re-read the configuration file; True when the new one is running."""
        log.info("received SIGHUP: re-reading %s", self.cfg.source)
        if self.cfg.path is None:
            log.warning("running on built-in defaults (no configuration file): nothing to reload")
            return False
        try:
            new = await asyncio.to_thread(_load_checked, self.cfg.path)
        except Exception as exc:
            log.error("configuration reload failed, keeping the running configuration: %s", exc)
            return False
        new, restart = restart_only(self.cfg, new)
        for what in restart:
            log.warning("configuration reload: %s changed; restart blockwatch to apply it "
                        "(the running value is kept until then)", what)
        from blockwatch.context import build_context

        # trust store (ca_bundle), timeouts, views, matcher: anew; the ASN table kept when the
        # file is the same. Built before either is set: the two change together or not at all
        context = build_context(new, keep=self.context)
        self.cfg, self.context = new, context
        import blockwatch.alerts.webhook  # noqa: F401  (on this thread: see _register_secrets)

        await asyncio.to_thread(_register_secrets, new)
        if self.scheduler.running and not self.stopping.is_set():
            self.reschedule()
        if self.collector is not None:
            await asyncio.to_thread(self.collector.reload, new, context=self.context)
        log.info("configuration reloaded; jobs: %s", ", ".join(
            f"{j.name} every {format_duration(j.interval)}" for j in self.jobs()))
        return True

    async def run(self, *, once: bool = False) -> None:
        from blockwatch.context import build_context

        self.context = build_context(self.cfg)
        if self.cfg.settings.server is not None and not once:
            server_available()  # before any work: a missing extra is a usage error, exit 2
        loop = asyncio.get_running_loop()
        try:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self._on_signal, sig)
            loop.add_signal_handler(signal.SIGHUP, self._on_hup)
        except (RuntimeError, ValueError):  # not the main thread (embedded, tests)
            pass
        if once:
            probe = next(j for j in self.jobs() if j.name == "probe")
            await self.wrap(probe)()
            return
        log.info("%s", self.start_line())  # before any job can log: the first line of a run
        self.schedule()
        self.scheduler.start()
        server = None
        if self.cfg.settings.server is not None:
            server = asyncio.create_task(self._serve())
        log.debug("jobs: %s", ", ".join(
            f"{j.name} every {format_duration(j.interval)}" for j in self.jobs()))
        await self.stopping.wait()
        await self._drain()
        if server is not None:
            server.cancel()
            await asyncio.gather(server, return_exceptions=True)

    def start_line(self) -> str:
        """The one line `run` starts with: what it reads, where it writes, what it watches
        from where, and when the next probe round is."""
        from blockwatch.round import last_round_number
        from blockwatch.round_summary import plural
        from blockwatch.targets import load_targets

        cfg, s = self.cfg, self.cfg.settings
        try:
            targets = load_targets(cfg.target_files)
            watched = (f"{plural(len(targets), 'target')} "
                       f"({plural(sum(len(t.urls) for t in targets), 'URL')})")
        except Exception as exc:  # the probe job reports it too, each round
            watched = f"targets unreadable ({exc})"
        feeds = plural(sum(1 for f in s.feeds.source if f.enabled), "feed")
        searches = plural(sum(1 for f in s.feeds.search if f.enabled), "search", "searches")
        vantages = ", ".join(f"{v.name} ({v.kind})" for v in s.vantage) or "none"
        database = redact.url(cfg.database_url) + (f" (held through {self.lock})"
                                                   if self.lock else "")
        probe = next(j for j in self.jobs() if j.name == "probe")
        if not any(isinstance(v, LocalVantage | ResolverVantage) for v in s.vantage):
            rounds = "no probe rounds (no local or resolver vantage)"
        else:
            now = self.now()
            nxt = now + probe.interval  # the interval trigger's first time, and the one after "now"
            first = (f"round {last_round_number(self.db) + 1} now, then "
                     if probe.run_at_start else "")
            rounds = (f"{first}every {format_duration(probe.interval)}: next at "
                      f"{local_time(nxt, s.alerts.timezone, now)} "
                      f"(in {format_duration(max(timedelta(0), nxt - now))})")
        return (f"blockwatch running: config {cfg.source}; database {database}; "
                f"site {cfg.resolve(s.site.out)}; vantages {vantages}; {watched}, "
                f"{feeds}, {searches}; {rounds}")

    async def _serve(self) -> None:
        from blockwatch.collector.server import create_state, serve_forever

        # the daemon owns SIGHUP: one reload for the jobs and the collector's agents
        self.collector = await asyncio.to_thread(create_state, self.cfg, self.db,
                                                 context=self.context)
        try:
            await serve_forever(self.cfg, self.db, self.stopping, state=self.collector,
                                reload_on_hup=False)
        except Exception:
            log.exception("the collector stopped; the rest of the daemon goes on")

    def _on_signal(self, sig: int) -> None:
        log.info("received %s: stopping", signal.Signals(sig).name)
        self.stopping.set()

    async def _drain(self) -> None:
        # APScheduler's shutdown cancels running coroutine jobs: pause, let our own work finish
        # within a bound (a probe round stores results as they arrive, so cutting it short loses
        # only what was in flight), and only then shut it down.
        if self.scheduler.running:
            self.scheduler.pause()
        if self.running:
            _, pending = await asyncio.wait(set(self.running), timeout=STOP_GRACE_SECONDS)
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.wait(pending, timeout=5)
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        log.info("blockwatch stopped")


def local_time(at: datetime, timezone: str, now: datetime) -> str:
    """"12:45 Asia/Almaty"; with the date when it is not today's there."""
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(timezone)
    local = at.astimezone(tz)
    fmt = "%H:%M" if local.date() == now.astimezone(tz).date() else "%Y-%m-%d %H:%M"
    return f"{local.strftime(fmt)} {timezone}"


def server_available() -> None:
    """Raise MissingExtra when the [server] extra (fastapi, uvicorn) is not installed."""
    try:
        import blockwatch.collector.server  # noqa: F401
    except ImportError:
        raise MissingExtra("server", "the [server] section (the collector)") from None


def restart_only(old: Config, new: Config) -> tuple[Config, list[str]]:
    """`new` with the settings a running daemon cannot change put back to `old`'s, and the
    names of those that differed."""
    s = new.settings
    restart = []
    if new.database_url != old.database_url:
        restart.append("storage.url")
    if s.server != old.settings.server:
        restart.append("[server]")
    if restart:
        s = s.model_copy(update={"storage": old.settings.storage, "server": old.settings.server})
        new = dataclasses.replace(new, settings=s)
    return new, restart


def _load_checked(path: Any) -> Config:
    """The configuration and its target lists, both read (a broken target file is an error
    of the reload, not of the next round)."""
    from blockwatch.targets import load_targets

    cfg = load(path)
    load_targets(cfg.target_files)
    return cfg


def _register_secrets(cfg: Config) -> None:
    # imported by the caller's thread first (see reload): importing the alerts package in a
    # worker thread while a job imports it on the loop's thread can see it half initialised
    from blockwatch.alerts.webhook import register_secrets

    register_secrets(cfg)


def run_daemon(cfg: Config, *, once: bool = False, shared: bool = False) -> int:
    # until the loop's handler is in place, a reload request (systemd's ExecReload, logrotate)
    # must not end the daemon, which is what SIGHUP's default action does
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    if cfg.settings.server is not None and not once:
        server_available()
    db = open_database(cfg.database_url)
    try:
        lock = acquire_instance_lock(db, "run", shared=shared)
    except BaseException:
        db.close()
        raise
    # what holds the lock is named in the start line: one `blockwatch run` per database
    log.debug("holding %s", lock.what)
    db.instance_lock = lock  # each job checks it is still held (daemon.wrap)
    try:
        aio.run(_main(cfg, db, once, lock.what, shared))
    finally:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the loop is gone: still not fatal
        lock.release()
        db.close()
    return 0


async def _main(cfg: Config, db: Database, once: bool, lock: str = "",
                shared: bool = False) -> None:
    daemon = Daemon(cfg, db, lock=lock)
    if shared:
        from blockwatch.storage.joblock import JobLocks

        daemon.joblocks = JobLocks(db)
    try:
        await daemon.run(once=once)
    finally:
        if daemon.joblocks is not None:
            daemon.joblocks.close()
