"""Several `blockwatch run --shared` on one PostgreSQL database: each job runs once across them
(storage/joblock.py), a plain `run` and shared ones exclude each other, SQLite refuses
--shared; the outbox hands a row to one delivering process only."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.pool import NullPool

from blockwatch.alerts import outbox
from blockwatch.daemon import record_job
from blockwatch.storage import open_database
from blockwatch.storage.joblock import RECENT, JobLocks
from blockwatch.storage.models import JobRun, Outbox
from test_alerts_support import T0
from test_daemon import shipped_config, start_run
from test_single_instance import _blockwatch, _stop

HOUR = timedelta(hours=1)


def test_job_lock_once_across_processes(pg_url: str) -> None:
    """Two processes' guards (two JobLocks, each its own connections) on one database."""
    db = open_database(pg_url)
    a, b = JobLocks(db), JobLocks(db)
    try:
        now = datetime.now(UTC)
        held, _ = a.claim("alerts", HOUR, now)
        assert held is not None
        none, why = b.claim("alerts", HOUR, now)
        assert none is None and why == "running in another process"
        other, _ = b.claim("feeds", HOUR, now)  # one lock per job, not one for all
        assert other is not None
        other.release()
        # `a` records its run (the daemon's wrapper does, before the guard lets go)
        record_job(db, "alerts", started=now, ok=True, error=None, interval=HOUR)
        a.mine["alerts"] = held.release()  # what guard() keeps
        assert a.mine["alerts"] == now
        # `b` ticks a few seconds later: already done this interval
        none, why = b.claim("alerts", HOUR, now + timedelta(seconds=5))
        assert none is None and why.startswith("another process started it 5s ago")
        # `a`'s own next tick is not held back by its own run
        again, _ = a.claim("alerts", HOUR, now + timedelta(seconds=5))
        assert again is not None
        again.release()
        # `a` died: once the run is older than RECENT of the interval, `b` takes over
        taken, _ = b.claim("alerts", HOUR, now + HOUR * RECENT + timedelta(seconds=1))
        assert taken is not None
        taken.release()
        # per host: each host builds the site folder it serves
        b.host = "other-host"
        sa, _ = a.claim("site", HOUR, now)
        sb, _ = b.claim("site", HOUR, now)
        assert sa is not None and sb is not None
        none, why = JobLocks(db).claim("site", HOUR, now)  # same host as `a`: one at a time
        assert none is None
        sa.release()
        sb.release()
    finally:
        a.close()
        b.close()
        db.close()


async def test_guard_releases_on_failure_and_records_own_start(pg_url: str) -> None:
    db = open_database(pg_url)
    locks = JobLocks(db)
    try:
        starts: list[datetime] = []

        async def failing() -> None:  # as daemon.wrap: its start taken after the claim
            starts.append(datetime.now(UTC))
            await asyncio.to_thread(record_job, db, "feeds", started=starts[0], ok=False,
                                    error="x", interval=HOUR)
            raise RuntimeError("job failed")

        try:
            await locks.guard("feeds", HOUR, failing)()
        except RuntimeError:
            pass
        else:
            raise AssertionError("the job's error must reach the scheduler")
        (started,) = starts
        assert locks.mine["feeds"] == started
        claim, _ = JobLocks(db).claim("feeds", HOUR, started + HOUR)  # the lock was let go
        assert claim is not None
        claim.release()

        # another process runs it; here the job is skipped without recording (a stop): the
        # other's start is not taken for this process's own
        other = JobLocks(db)
        later = datetime.now(UTC)  # before this process's claim below
        got, _ = other.claim("feeds", HOUR, later + HOUR)
        assert got is not None
        record_job(db, "feeds", started=later, ok=True, error=None, interval=HOUR)
        got.release()
        other.close()

        async def stopped() -> None:
            return None

        locks.mine.clear()
        await locks.guard("feeds", timedelta(microseconds=1), stopped)()  # not skipped
        assert "feeds" not in locks.mine
    finally:
        locks.close()
        db.close()


async def test_two_shared_runs_run_each_job_once(tmp_path: Path, pg_url: str) -> None:
    config = shipped_config(tmp_path, storage=pg_url, interval="1h")
    first, lines1 = await start_run(config, "--shared")
    second = None
    try:
        assert "(shared)" in await lines1.wait_for("blockwatch running")
        await lines1.wait_for("maintenance:")  # its jobs at start ran
        second, lines2 = await start_run(config, "--shared")
        await lines2.wait_for("blockwatch running")
        # its jobs at start: skipped, whichever order they log in
        while not all(any(f"job {j}: not run here" in ln for ln in lines2.seen)
                      for j in ("maintenance", "probe")):
            await lines2.wait_for(": not run here")
        # a plain `run` beside them: refused, told why
        code, err = await _blockwatch(config, "run")
        assert code == 75, err
        assert "`blockwatch run --shared` processes are using this database" in err
        assert f"pid {first.pid}" in err or f"pid {second.pid}" in err
        db = open_database(pg_url)
        try:
            with db.read() as s:
                runs = dict(s.execute(select(JobRun.name, JobRun.runs)).all())
        finally:
            db.close()
        assert runs["maintenance"] == 1 and runs["probe"] == 1, runs
        await _stop(second, lines2)
        await _stop(first, lines1)
    finally:
        for p in (first, second):
            if p is not None and p.returncode is None:
                p.kill()
                await p.wait()


async def test_shared_is_refused_beside_a_plain_run_and_on_sqlite(tmp_path: Path,
                                                                  pg_url: str) -> None:
    code, err = await _blockwatch(shipped_config(tmp_path, interval="1h"), "run", "--shared")
    assert code == 2 and "needs PostgreSQL" in err and "Traceback" not in err, err
    pg = tmp_path / "pg"
    pg.mkdir()
    config = shipped_config(pg, storage=pg_url, interval="1h")
    plain, lines = await start_run(config)
    try:
        await lines.wait_for("blockwatch running")
        code, err = await _blockwatch(config, "run", "--shared")
        assert code == 75, err
        assert f"another `blockwatch run` is already using this database (pid {plain.pid}" in err
        await _stop(plain, lines)
    finally:
        if plain.returncode is None:
            plain.kill()
            await plain.wait()


def test_outbox_claim_skips_rows_another_process_is_claiming(pg_url: str) -> None:
    """Two delivering processes: a row being claimed by one is skipped by the other (not waited
    for), and once leased it is not handed out again."""
    a, b = open_database(pg_url), open_database(pg_url)
    try:
        with a.write() as s:
            for k in ("k1", "k2"):
                outbox.enqueue(s, key=k, channel="email", destination="desk@example.org",
                               kind="alert", subject="s", payload={"text": "t"}, now=T0)
        with a.write() as s:  # process A is inside its claim transaction, holding k1's row
            s.execute(select(Outbox).where(Outbox.key == "k1").with_for_update()).one()
            got_b = outbox.claim(b, T0)
            assert [r.key for r in got_b] == ["k2"]
        got_a = outbox.claim(a, T0)
        assert [r.key for r in got_a] == ["k1"]
        assert outbox.claim(b, T0) == [] and outbox.claim(a, T0) == []
    finally:
        a.close()
        b.close()


async def test_guard_skips_the_run_when_the_database_is_away(pg_url: str,
                                                             caplog: pytest.LogCaptureFixture
                                                             ) -> None:
    db = open_database(pg_url)
    locks = JobLocks(db)
    locks._engine = create_engine("postgresql+psycopg://postgres@127.0.0.1:1/none",
                                  poolclass=NullPool)  # nothing listens on port 1
    ran: list[bool] = []

    async def job() -> None:
        ran.append(True)

    try:
        await locks.guard("feeds", HOUR, job)()  # no exception into the scheduler
        assert ran == []
        assert "job feeds: not run, its lock could not be taken" in caplog.text
    finally:
        locks.close()
        db.close()
