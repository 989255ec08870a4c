"""Jobs that run once across several `blockwatch run --shared` processes on one PostgreSQL
database (any number of hosts).

Each scheduled job is guarded by a PostgreSQL session advisory lock with a stable key per job
name, database and schema (`pg_try_advisory_lock`: a process that does not get it skips that
run, it never waits), plus a look at `job_runs`: a job another process started less than
RECENT of its interval ago is skipped too, so two schedulers whose ticks are a few seconds apart
do not both run it one after the other. A process's own previous run does not count against it
(its ticks are an interval apart by construction); the process that ran a job last keeps
running it, and when it dies another takes over within about one interval.

Jobs whose output is on the local disk (the status site folder `serve` answers from, the
IP-to-ASN table) are per host: locked with the host name in the key and never skipped for
another host's run.

The locks are held on connections of their own (no pool): a long probe round must not take a
connection the round itself needs, and closing the connection is the release of last resort.
On SQLite there is nothing to guard: one `run` per database (storage/db.py's instance lock)."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.pool import NullPool

from blockwatch.durations import format_duration
from blockwatch.storage.db import Database

log = logging.getLogger(__name__)

RECENT = 0.9  # of the interval: another process's run this recent means "already done"
PER_HOST = frozenset({"site", "asn"})  # jobs that write files the host itself serves or reads


def lock_name(job: str, host: str | None = None) -> str:
    """The text the advisory key is hashed from (with the database and schema added by the
    server): per job, and per host for PER_HOST jobs."""
    if job in PER_HOST:
        return f"blockwatch-job:{job}@{host or socket.gethostname()}:"
    return f"blockwatch-job:{job}:"


@dataclass
class Claim:
    """A job's lock, held on its own connection until `release`."""

    conn: Any
    key: int
    job: str
    at: datetime  # when it was claimed: a start recorded since is this process's own

    def release(self) -> datetime | None:
        """Let the lock go; returns the job's last start as `job_runs` has it now (this
        process's own, recorded by the job's wrapper before the release)."""
        last = None
        try:
            last = self.conn.execute(text("SELECT last_started_at FROM job_runs WHERE name = :n"),
                                     {"n": self.job}).scalar()
            self.conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
        except Exception:
            log.warning("job %s: releasing its lock failed; closing its connection releases it",
                        self.job, exc_info=True)
        finally:
            self.conn.close()  # NullPool: the session ends, and with it any lock still held
        return _aware(last)


def _aware(t: datetime | None) -> datetime | None:
    return t.replace(tzinfo=UTC) if t is not None and t.tzinfo is None else t


class JobLocks:
    """The job guards of one `run --shared` process."""

    def __init__(self, db: Database):
        self.db = db
        self.host = socket.gethostname()
        self._engine: Engine | None = None
        self._engine_lock = threading.Lock()
        self.mine: dict[str, datetime] = {}  # job -> its last start by this process

    def engine(self) -> Engine:
        with self._engine_lock:
            if self._engine is None:
                self._engine = create_engine(self.db.url, poolclass=NullPool)
            return self._engine

    def claim(self, job: str, interval: timedelta, now: datetime) -> tuple[Claim | None, str]:
        """The job's lock, or None and why this process skips this run."""
        conn = self.engine().connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            key = conn.execute(text(
                "SELECT hashtextextended(:n || current_database() || '.' || current_schema(), 0)"),
                {"n": lock_name(job, self.host)}).scalar_one()
            if not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar_one():
                conn.close()
                return None, "running in another process"
            if job not in PER_HOST:
                last = _aware(conn.execute(
                    text("SELECT last_started_at FROM job_runs WHERE name = :n"),
                    {"n": job}).scalar())
                if (last is not None and last != self.mine.get(job)
                        and -interval < now - last < interval * RECENT):  # a clock a little ahead too
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    conn.close()
                    return None, (f"another process started it {format_duration(now - last)} "
                                  "ago")
        except BaseException:
            conn.close()
            raise
        return Claim(conn, key, job, now), ""

    def guard(self, job: str, interval: timedelta,
              fn: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        """`fn` (the daemon's job wrapper, which records the run in `job_runs`) run only when
        this process gets the job."""
        async def guarded() -> None:
            try:
                claim, why = await asyncio.to_thread(self.claim, job, interval, datetime.now(UTC))
            except Exception as exc:  # the database is away: the next tick tries again
                log.error("job %s: not run, its lock could not be taken: %s", job, exc)
                return
            if claim is None:
                log.info("job %s: not run here (%s)", job, why)
                return
            try:
                await fn()
            finally:
                # synchronous: a cancelled job must still let its lock go (two short queries)
                last = claim.release()
                if last is not None and last >= claim.at:  # not another's (a stop skips it)
                    self.mine[job] = last
        return guarded

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
