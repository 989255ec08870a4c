"""Jobs that run once across several `blockwatch run --shared` processes on one PostgreSQL
database (any number of hosts).

Each scheduled job is guarded by a PostgreSQL session advisory lock with a stable key per job
name, database and schema (`pg_try_advisory_lock`: a process that does not get it skips that
run, it never waits), plus a recent-start check: whoever gets the lock records the start in
`kv` (`job_started:<job>`: who, and when by the database's clock) before the job runs, and a
job another process started less than RECENT of its interval ago is skipped, so two schedulers
whose ticks are a few seconds apart do not both run it, and a run whose lock session was cut
(a server restart, a proxy's idle timeout) is not started again beside it. Times are the
database's `now()` on both sides: the hosts' clocks may disagree. A process's own previous run
does not count against it (its ticks are an interval apart by construction); the process that
ran a job last keeps running it, and when it dies another takes over within about one interval.

While a job runs its lock's session is checked every CHECK_EVERY; a session that is gone is
replaced (the lock taken again) when the lock is free and the recorded start still this run's,
else the job is cancelled: another process has it now.

Jobs whose output is on the local disk (the status site folder `serve` answers from, the
IP-to-ASN table) are per host: locked with the host name in the key and never skipped for
another host's run.

The locks are held on connections of their own (no pool), with TCP keepalives of 60 s + 3 x 10 s
on both ends: a long probe round must not take a connection the round itself needs, closing the
connection is the release of last resort, and the server ends the session of a host that died
(and with it its locks) within KEEPALIVE_BOUND instead of its default two hours.
On SQLite there is nothing to guard: one `run` per database (storage/db.py's instance lock)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import threading
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.pool import NullPool

from blockwatch.durations import format_duration
from blockwatch.storage.db import Database

log = logging.getLogger(__name__)

RECENT = 0.9  # of the interval: another process's run this recent means "already done"
PER_HOST = frozenset({"site", "asn"})  # jobs that write files the host itself serves or reads
CHECK_EVERY = 30.0  # seconds between checks of a running job's lock session
# TCP keepalives of the lock sessions, client (libpq) and server side alike
KEEPALIVE = {"idle": 60, "interval": 10, "count": 3}
KEEPALIVE_BOUND = timedelta(seconds=KEEPALIVE["idle"] + KEEPALIVE["interval"] * KEEPALIVE["count"])


def lock_name(job: str, host: str | None = None) -> str:
    """The text the advisory key is hashed from (with the database and schema added by the
    server): per job, and per host for PER_HOST jobs."""
    if job in PER_HOST:
        return f"blockwatch-job:{job}@{host or socket.gethostname()}:"
    return f"blockwatch-job:{job}:"


def started_key(job: str) -> str:
    """The `kv` row of a job's last start across processes (who, `updated_at` when)."""
    return f"job_started:{job}"


_KEY_SQL = "SELECT hashtextextended(:n || current_database() || '.' || current_schema(), 0)"


@dataclass
class Claim:
    """A job's lock, held on its own connection until `release`."""

    locks: JobLocks
    conn: Any
    key: int
    job: str

    def check(self) -> bool:
        """Whether this process still holds the job. A lost session (its lock gone with it) is
        replaced when the lock is free and no other process recorded a start since this run's;
        False when another process has the job now: this run must stop."""
        try:
            self.conn.execute(text("SELECT 1")).scalar_one()
            return True
        except Exception:
            log.warning("job %s: its lock's connection was lost; taking the lock again",
                        self.job)
            self.close()
        try:
            conn = self.locks.connect()
        except Exception as exc:  # the database is away: so are this job's writes; next time
            log.warning("job %s: its lock could not be taken again yet: %s", self.job, exc)
            return True
        try:
            if conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar_one():
                if self.job in PER_HOST or self.locks.started_by(conn, self.job) == self.locks.me:
                    self.conn = conn
                    return True
            conn.close()
        except BaseException:
            conn.close()
            raise
        return False

    def release(self) -> None:
        """Let the lock go (blocking: run it in a thread)."""
        if self.conn.closed:  # lost, and not taken again (check)
            return
        try:
            self.conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
        except Exception as exc:  # e.g. the session was cut: the lock went with it
            log.warning("job %s: releasing its lock failed (%s); closing its connection "
                        "releases it", self.job, type(exc).__name__)
        finally:
            self.close()

    def close(self) -> None:
        """Drop the connection without a query (NullPool: the session ends, and with it the
        lock), for when the database may not answer."""
        try:
            self.conn.invalidate()
            self.conn.close()
        except Exception:
            log.debug("job %s: closing its lock connection", self.job, exc_info=True)


class JobLocks:
    """The job guards of one `run --shared` process."""

    def __init__(self, db: Database):
        self.db = db
        self.host = socket.gethostname()
        # who this process is in `kv` (unique even for two guards in one process)
        self.me = f"{self.host} pid {os.getpid()} {uuid.uuid4().hex[:8]}"
        self.check_every = CHECK_EVERY
        self._engine: Engine | None = None
        self._engine_lock = threading.Lock()

    def engine(self) -> Engine:
        with self._engine_lock:
            if self._engine is None:
                self._engine = lock_engine(self.db.url)
            return self._engine

    def connect(self) -> Any:
        return self.engine().connect().execution_options(isolation_level="AUTOCOMMIT")

    def started_by(self, conn: Any, job: str) -> str | None:
        return conn.execute(text("SELECT value->>'by' FROM kv WHERE key = :k"),
                            {"k": started_key(job)}).scalar()

    def claim(self, job: str, interval: timedelta) -> tuple[Claim | None, str]:
        """The job's lock with its start recorded, or None and why this process skips this run
        (blocking: run it in a thread)."""
        conn = self.connect()
        try:
            key = conn.execute(text(_KEY_SQL), {"n": lock_name(job, self.host)}).scalar_one()
            if not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar_one():
                conn.close()
                return None, "running in another process"
            if job not in PER_HOST:
                row = conn.execute(text(
                    "SELECT value->>'by', extract(epoch FROM now() - updated_at) FROM kv "
                    "WHERE key = :k"), {"k": started_key(job)}).first()
                if row is not None and row[0] != self.me:
                    age = timedelta(seconds=float(row[1]))
                    if -interval < age < interval * RECENT:  # the database's clock on both sides
                        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                        conn.close()
                        shown = timedelta(seconds=round(age.total_seconds()))
                        return None, (f"another process started it {format_duration(shown)} "
                                      f"ago ({row[0]})")
                # recorded now, under the lock: a process that gets the lock later (this one's
                # session cut) sees this run without waiting for its end
                conn.execute(text(
                    "INSERT INTO kv (key, value, updated_at) VALUES (:k, CAST(:v AS jsonb), now()) "
                    "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, "
                    "updated_at = EXCLUDED.updated_at"),
                    {"k": started_key(job), "v": json.dumps({"by": self.me})})
        except BaseException:
            conn.close()
            raise
        return Claim(self, conn, key, job), ""

    def guard(self, job: str, interval: timedelta,
              fn: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        """`fn` (the daemon's job wrapper) run only when this process gets the job, and
        cancelled when it turns out another process has it."""
        async def guarded() -> None:
            taking = asyncio.ensure_future(asyncio.to_thread(self.claim, job, interval))
            try:
                claim, why = await asyncio.shield(taking)
            except asyncio.CancelledError:  # stopped while claiming: let go of what it gets
                taking.add_done_callback(_close_claimed)
                raise
            except Exception as exc:  # the database is away: the next tick tries again
                log.error("job %s: not run, its lock could not be taken: %s", job, exc)
                return
            if claim is None:
                log.info("job %s: not run here (%s)", job, why)
                return
            try:
                await self._watched(claim, fn)
            except asyncio.CancelledError:
                claim.close()  # stopped: no query that a stalled database could hold up
                raise
            except BaseException:
                await asyncio.to_thread(claim.release)
                raise
            await asyncio.to_thread(claim.release)
        return guarded

    async def _watched(self, claim: Claim, fn: Callable[[], Awaitable[None]]) -> None:
        """Run `fn`, checking the lock's session every `check_every` seconds."""
        task = asyncio.ensure_future(fn())
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=self.check_every)
                if done:
                    break
                try:
                    held = await asyncio.to_thread(claim.check)
                except Exception as exc:  # the database is away: the job's writes fail too
                    log.warning("job %s: its lock could not be checked: %s", claim.job, exc)
                    continue
                if not held:
                    log.error("job %s: its lock's connection was cut and another process has "
                              "the job now: stopping this run", claim.job)
                    task.cancel()
                    await asyncio.wait({task})  # its end, without raising its cancellation
                    if not task.cancelled():  # it ended on its own meanwhile
                        task.result()
                    return
        except asyncio.CancelledError:
            task.cancel()
            await asyncio.wait({task})  # the job's own cleanup (the wrapper records the stop)
            raise
        task.result()

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


def _close_claimed(fut: asyncio.Future[tuple[Claim | None, str]]) -> None:
    if not fut.cancelled() and fut.exception() is None:
        claim, _ = fut.result()
        if claim is not None:
            claim.close()


def lock_engine(url: Any) -> Engine:
    """Connections for locks: no pool, TCP keepalives on both ends (KEEPALIVE_BOUND)."""
    engine = create_engine(url, poolclass=NullPool, connect_args={
        "keepalives": 1, "keepalives_idle": KEEPALIVE["idle"],
        "keepalives_interval": KEEPALIVE["interval"], "keepalives_count": KEEPALIVE["count"]})

    @event.listens_for(engine, "connect")
    def _server_keepalives(dbapi_conn: Any, _record: Any) -> None:
        # the server's side: it ends a dead host's session, and with it its locks
        with dbapi_conn.cursor() as cur:
            for name, value in KEEPALIVE.items():
                cur.execute(f"SET tcp_keepalives_{name} = {int(value)}")
        dbapi_conn.commit()

    return engine
