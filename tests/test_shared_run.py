"""Several `blockwatch run --shared` on one PostgreSQL database: each job runs once across them
(storage/joblock.py), a plain `run` and shared ones exclude each other, SQLite refuses
--shared; the outbox hands a row to one delivering process only."""

from __future__ import annotations

import asyncio
import re
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.pool import NullPool

from blockwatch.alerts import outbox
from blockwatch.daemon import record_job
from blockwatch.storage import open_database
from blockwatch.storage.joblock import KEEPALIVE_BOUND, RECENT, Claim, JobLocks, started_key
from blockwatch.storage.models import JobRun, Outbox
from test_alerts_support import T0
from test_daemon import shipped_config, start_run
from test_single_instance import _blockwatch, _stop

HOUR = timedelta(hours=1)


def _age_start(pg_url: str, job: str, by: timedelta) -> None:
    """The job's recorded start made `by` older (what time passing does), on the database's
    clock as the guards read it."""
    eng = create_engine(pg_url, poolclass=NullPool)
    with eng.begin() as c:
        c.execute(text("UPDATE kv SET updated_at = updated_at - make_interval(secs => :s) "
                       "WHERE key = :k"), {"s": by.total_seconds(), "k": started_key(job)})
    eng.dispose()


def test_job_lock_once_across_processes(pg_url: str) -> None:
    """Two processes' guards (two JobLocks, each its own connections) on one database."""
    db = open_database(pg_url)
    a, b = JobLocks(db), JobLocks(db)
    try:
        held, _ = a.claim("alerts", HOUR)
        assert held is not None
        none, why = b.claim("alerts", HOUR)
        assert none is None and why == "running in another process"
        other, _ = b.claim("feeds", HOUR)  # one lock per job, not one for all
        assert other is not None
        other.release()
        held.release()
        # `b` ticks a few seconds later: `a` started it this interval (recorded at its claim)
        _age_start(pg_url, "alerts", timedelta(seconds=5))
        none, why = b.claim("alerts", HOUR)
        shown = re.match(r"another process started it (\d+)s ago", why)
        assert none is None and shown and 5 <= int(shown[1]) < 60, why
        assert a.me in why  # who: host, pid
        # `a`'s own next tick is not held back by its own run
        again, _ = a.claim("alerts", HOUR)
        assert again is not None
        again.release()
        # `a` died: once the run is older than RECENT of the interval, `b` takes over
        _age_start(pg_url, "alerts", HOUR * RECENT + timedelta(seconds=1))
        taken, _ = b.claim("alerts", HOUR)
        assert taken is not None
        taken.release()
        # per host: each host builds the site folder it serves
        b.host = "other-host"
        sa, _ = a.claim("site", HOUR)
        sb, _ = b.claim("site", HOUR)
        assert sa is not None and sb is not None
        none, why = JobLocks(db).claim("site", HOUR)  # same host as `a`: one at a time
        assert none is None
        sa.release()
        sb.release()
    finally:
        a.close()
        b.close()
        db.close()


def test_recent_start_is_the_databases_clock(pg_url: str) -> None:
    """Hosts' clocks may disagree by more than a job's interval: the start a guard records and
    the age it checks are both the database's `now()`, so a host whose clock is minutes behind
    (its own `job_runs` times skewed) still skips a 1-minute job another host just started."""
    db = open_database(pg_url)
    a, b = JobLocks(db), JobLocks(db)
    minute = timedelta(minutes=1)
    try:
        eng = create_engine(pg_url, poolclass=NullPool)
        with eng.connect() as c:
            before = c.execute(text("SELECT now()")).scalar_one()
        got, _ = a.claim("alerts", minute)
        assert got is not None
        # what the daemon's wrapper records with a host clock two minutes behind
        record_job(db, "alerts", started=datetime.now(UTC) - 2 * minute, ok=True, error=None,
                   interval=minute)
        got.release()
        with eng.connect() as c:
            at, after = c.execute(text("SELECT updated_at, now() FROM kv WHERE key = :k"),
                                  {"k": started_key("alerts")}).one()
        eng.dispose()
        assert before <= at <= after
        none, why = b.claim("alerts", minute)
        assert none is None and why.startswith("another process started it"), why
    finally:
        a.close()
        b.close()
        db.close()


def test_lock_connections_keep_alive_both_ends(pg_url: str) -> None:
    """A host that dies loses its job locks within KEEPALIVE_BOUND: the server probes the
    session's socket (its default would wait two hours), and so does the client."""
    db = open_database(pg_url)
    locks = JobLocks(db)
    try:
        got, _ = locks.claim("feeds", HOUR)
        assert got is not None
        server = {n: got.conn.execute(text(f"SHOW tcp_keepalives_{n}")).scalar_one()
                  for n in ("idle", "interval", "count")}
        assert server == {"idle": "60", "interval": "10", "count": "3"}
        client = got.conn.connection.dbapi_connection.info.get_parameters()
        assert (client["keepalives_idle"], client["keepalives_interval"],
                client["keepalives_count"]) == ("60", "10", "3")
        assert KEEPALIVE_BOUND == timedelta(seconds=90)
        got.release()
    finally:
        locks.close()
        db.close()


def _spy_claims(locks: JobLocks) -> list[Claim]:
    claims: list[Claim] = []
    orig = locks.claim

    def claim(job: str, interval: timedelta) -> tuple[Claim | None, str]:
        got, why = orig(job, interval)
        if got is not None:
            claims.append(got)
        return got, why
    locks.claim = claim  # type: ignore[method-assign]
    return claims


def _terminate(pg_url: str, claim: Claim) -> None:
    """Cut the claim's session (a server restart, a proxy's idle timeout), and wait until the
    server has ended it (and so let its lock go)."""
    pid = claim.conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    eng = create_engine(pg_url, poolclass=NullPool)
    with eng.connect() as c:
        assert c.execute(text("SELECT pg_terminate_backend(:p, 30000)"), {"p": pid}).scalar_one()
    eng.dispose()


async def test_cut_lock_session_does_not_run_the_job_twice(pg_url: str) -> None:
    """The running job's lock session is cut: another process gets the lock but sees the start
    recorded at the claim, and skips; the running one takes its lock again."""
    db = open_database(pg_url)
    a, b = JobLocks(db), JobLocks(db)
    claims = _spy_claims(a)
    running, ran_b = asyncio.Event(), []
    go = asyncio.Event()

    async def job_a() -> None:
        running.set()
        await go.wait()

    async def job_b() -> None:
        ran_b.append(True)

    try:
        record_job(db, "probe", started=datetime.now(UTC) - 2 * HOUR, ok=True, error=None,
                   interval=HOUR)
        a.check_every = 3600.0  # checked by hand below
        first = asyncio.create_task(a.guard("probe", HOUR, job_a)())
        await running.wait()
        (claim,) = claims
        await asyncio.to_thread(_terminate, pg_url, claim)
        await b.guard("probe", HOUR, job_b)()
        assert ran_b == []
        none, why = await asyncio.to_thread(b.claim, "probe", HOUR)  # it got the lock: free
        assert none is None and why.startswith("another process started it"), why
        # the running process's check takes the lock again: the job is still its own
        assert await asyncio.to_thread(claim.check)
        none, why = await asyncio.to_thread(b.claim, "probe", HOUR)
        assert none is None and why == "running in another process"
        go.set()
        await first
        got, _ = await asyncio.to_thread(a.claim, "probe", HOUR)  # let go at the end
        assert got is not None
        got.release()
    finally:
        a.close()
        b.close()
        db.close()


async def test_job_is_stopped_when_another_process_has_its_lock(pg_url: str,
                                                                monkeypatch: pytest.MonkeyPatch
                                                                ) -> None:
    """The session was cut and, the run being older than RECENT of the interval, another
    process took the job: the running one's check finds the lock taken and cancels its job."""
    db = open_database(pg_url)
    a, b = JobLocks(db), JobLocks(db)
    claims = _spy_claims(a)
    gate = threading.Event()
    checks: list[bool] = []
    real_check = Claim.check

    def gated(self: Claim) -> bool:  # the first check waits until `b` holds the lock
        gate.wait(60)
        checks.append(real_check(self))
        return checks[-1]
    monkeypatch.setattr(Claim, "check", gated)
    running, ended = asyncio.Event(), []

    async def job_a() -> None:
        running.set()
        try:
            await asyncio.Event().wait()
        finally:
            ended.append(True)

    try:
        a.check_every = 0.0
        first = asyncio.create_task(a.guard("probe", HOUR, job_a)())
        await running.wait()
        (claim,) = claims
        await asyncio.to_thread(_terminate, pg_url, claim)
        await asyncio.to_thread(_age_start, pg_url, "probe", HOUR)
        taken, _ = await asyncio.to_thread(b.claim, "probe", HOUR)
        assert taken is not None
        gate.set()
        await first  # returns: the job was stopped, no error into the scheduler
        assert ended == [True] and checks == [False]
        none, why = await asyncio.to_thread(JobLocks(db).claim, "probe", HOUR)
        assert none is None and why == "running in another process"  # still `b`'s
        taken.release()
    finally:
        gate.set()
        a.close()
        b.close()
        db.close()


async def test_guard_lets_go_off_the_event_loop(pg_url: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Releasing is two round trips to a database that may stall: done in a worker thread,
    never on the loop (which serves the other jobs, the collector and SIGTERM); a cancelled job
    only closes its connection, which lets the lock go."""
    db = open_database(pg_url)
    locks = JobLocks(db)
    released: list[int] = []
    real_release = Claim.release

    def release(self: Claim) -> None:
        released.append(threading.get_ident())
        real_release(self)
    monkeypatch.setattr(Claim, "release", release)

    async def job() -> None:
        return None

    try:
        await locks.guard("feeds", HOUR, job)()
        assert released and released[0] != threading.get_ident()
        released.clear()
        running = asyncio.Event()
        cleaned: list[bool] = []

        async def long_job() -> None:
            running.set()
            try:
                await asyncio.Event().wait()
            finally:
                await asyncio.to_thread(cleaned.clear)  # as the daemon records the stop
                cleaned.append(True)

        task = asyncio.create_task(locks.guard("maintenance", HOUR, long_job)())
        await running.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert released == [] and cleaned == [True]  # the job's cleanup ran before the guard ended
        other = JobLocks(db)
        _, why = await asyncio.to_thread(other.claim, "maintenance", HOUR)
        assert why.startswith("another process started it"), why  # the lock was free
        other.close()
    finally:
        locks.close()
        db.close()


async def test_guard_releases_on_failure(pg_url: str) -> None:
    db = open_database(pg_url)
    locks = JobLocks(db)
    try:
        async def failing() -> None:
            raise RuntimeError("job failed")

        with pytest.raises(RuntimeError):  # the job's error reaches the scheduler
            await locks.guard("feeds", HOUR, failing)()
        other = JobLocks(db)
        none, why = other.claim("feeds", HOUR)  # the lock was let go; the start is recent
        assert none is None and why.startswith("another process started it"), why
        other.close()
        again, _ = locks.claim("feeds", HOUR)  # its own start does not hold it back
        assert again is not None
        again.release()
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


def test_check_while_the_database_is_away_keeps_the_job(pg_url: str,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    """The lock's session is gone and the server cannot be reached: nobody else can take the
    job either, so the run goes on (its own writes fail if the outage lasts); checked again
    at the next check."""
    db = open_database(pg_url)
    locks = JobLocks(db)
    try:
        got, _ = locks.claim("feeds", HOUR)
        assert got is not None
        _terminate(pg_url, got)
        real = locks._engine
        locks._engine = create_engine("postgresql+psycopg://postgres@127.0.0.1:1/none",
                                      poolclass=NullPool)  # nothing listens on port 1
        assert got.check() is True
        assert "job feeds: its lock could not be taken again yet" in caplog.text
        locks._engine.dispose()
        locks._engine = real
        assert got.check() is True  # the server is back: the lock taken again
        none, why = JobLocks(db).claim("feeds", HOUR)
        assert none is None and why == "running in another process"
        got.release()
    finally:
        locks.close()
        db.close()
