"""`blockwatch run`: the scheduler in one process. Jobs are rebuilt from config at every start
(no persistent job store: PITFALLS.md); what must survive a restart lives in the database."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from blockwatch.config import Config
from blockwatch.storage import Database, open_database
from blockwatch.storage.models import JobRun

log = logging.getLogger(__name__)
STOP_GRACE_SECONDS = 20.0


def record_job(db: Database, name: str, *, started: datetime, ok: bool, error: str | None) -> None:
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


class Daemon:
    def __init__(self, cfg: Config, db: Database):
        self.cfg = cfg
        self.db = db
        self.stopping = asyncio.Event()
        self.running: set[asyncio.Task[None]] = set()
        self.scheduler = AsyncIOScheduler(timezone=UTC)

    def job(self, name: str, fn: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        async def wrapper() -> None:
            if self.stopping.is_set():
                return
            task = asyncio.current_task()
            assert task is not None
            self.running.add(task)
            started = datetime.now(UTC)
            ok, error = True, None
            try:
                await fn()
            except asyncio.CancelledError:
                ok, error = False, "stopped before it finished"
                raise
            except Exception as exc:
                ok, error = False, f"{type(exc).__name__}: {exc}"
                log.exception("job %s failed", name)
            finally:
                self.running.discard(task)
                await asyncio.to_thread(record_job, self.db, name, started=started, ok=ok,
                                        error=error)
        return wrapper

    async def probe_round(self) -> None:
        from blockwatch.round import run_round
        from blockwatch.targets import load_targets

        targets = load_targets(self.cfg.target_files)
        report = await run_round(self.cfg, targets, self.db)
        counts: dict[str, int] = {}
        for r in report.results:
            counts[r.verdict] = counts.get(r.verdict, 0) + 1
        log.info("probe round %s: %d verdicts %s; %d new events", report.round_id[:8],
                 len(report.results), counts, len(report.new_events))

    async def run(self, *, once: bool = False) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)
        interval = self.cfg.settings.probe.interval.total_seconds()
        probe = self.job("probe", self.probe_round)
        if once:
            await probe()
            return
        self.scheduler.add_job(
            probe, IntervalTrigger(seconds=interval, jitter=min(60, interval / 10)),
            id="probe", max_instances=1, coalesce=True, misfire_grace_time=int(interval),
            next_run_time=datetime.now(UTC),
        )
        self.scheduler.start()
        log.info("blockwatch running: probe rounds every %s; stop with SIGTERM or Ctrl-C",
                 self.cfg.settings.probe.interval)
        await self.stopping.wait()
        await self._drain()

    def _on_signal(self, sig: int) -> None:
        log.info("received %s: stopping", signal.Signals(sig).name)
        self.stopping.set()

    async def _drain(self) -> None:
        # APScheduler's shutdown cancels running coroutine jobs: pause, drain our own work
        # within a bound, and only then shut it down (PITFALLS.md).
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


def run_daemon(cfg: Config, *, once: bool = False) -> int:
    db = open_database(cfg.database_url)
    try:
        asyncio.run(_main(cfg, db, once))
    finally:
        db.close()
    return 0


async def _main(cfg: Config, db: Database, once: bool) -> None:
    await Daemon(cfg, db).run(once=once)
