"""Two real `blockwatch serve` processes (127.0.0.2 and 127.0.0.3) on one PostgreSQL database,
started at the same moment on a fresh schema: the same uploads posted to both at once are
stored once, and both answer 200."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
from pathlib import Path

import httpx
from sqlalchemy import create_engine, func, select, text

from blockwatch.collector.server import create_state
from blockwatch.storage import open_database, repo
from blockwatch.storage.models import Measurement, UrlState, Vantage, Verdict
from lab import Lab
from test_alerts_support import free_port
from test_collector import auth, measured, vantage_measurement
from test_collector_support import tokens, write_collector_config
from test_daemon import Lines

HOSTS = ("127.0.0.2", "127.0.0.3")


async def _serve(config: Path, host: str, port: int) -> tuple[asyncio.subprocess.Process, Lines]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "blockwatch", "--config", str(config), "serve", "--host", host,
        "--port", str(port), stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stderr is not None
    return proc, Lines(proc.stderr)


async def test_same_uploads_to_two_collector_processes_are_stored_once(
        lab: Lab, tmp_path: Path, pg_url: str) -> None:
    urls = []
    for i in range(3):
        await lab.add_site(f"twin{i}.test")
        urls.append(lab.url(f"twin{i}.test"))
    tok = tokens("a1", "a2")
    cfg = write_collector_config(tmp_path, lab, pg_url, agents=tok, urls=urls)
    assert cfg.path is not None
    ports = [free_port() for _ in HOSTS]
    # both start at once on a schema nobody has used: migrations, targets and vantages race
    procs = await asyncio.gather(*(_serve(cfg.path, h, p) for h, p in zip(HOSTS, ports, strict=True)))
    try:
        await asyncio.gather(*(lines.wait_for(f"collector listening on {h}:{p}", 60)
                               for (_, lines), h, p in zip(procs, HOSTS, ports, strict=True)))
        # four uploads per agent, each posted to both collectors at the same moment
        batches = {a: [[await vantage_measurement(lab, u) for u in urls for _ in range(2)]
                       for _ in range(4)] for a in tok}
        async with httpx.AsyncClient(timeout=60) as http:
            async def twice(agent: str, batch: list[dict[str, object]]) -> list[httpx.Response]:
                return await asyncio.gather(*(
                    http.post(f"http://{h}:{p}/api/v1/measurements", headers=auth(tok[agent]),
                              json={"measurements": batch})
                    for h, p in zip(HOSTS, ports, strict=True)))

            async def agent(a: str) -> list[list[httpx.Response]]:
                # an agent's uploads in order (a later one first would make the earlier one's
                # repetitions late: bulk.py counts those as re-deliveries); agents at once
                return [await twice(a, b) for b in batches[a]]

            answers = [pair for got in await asyncio.gather(*(agent(a) for a in batches))
                       for pair in got]
        n = 0
        posted = [(a, b) for a, bs in batches.items() for b in bs]
        for (a, batch), pair in zip(posted, answers, strict=True):
            assert [r.status_code for r in pair] == [200, 200], [r.text for r in pair]
            got = [r.json() for r in pair]
            assert all(g["rejected"] == [] for g in got), (a, got)
            # one of them stored each measurement, the other acknowledged it as a duplicate
            assert sum(g["accepted"] for g in got) == len(batch)
            assert sum(g["duplicates"] for g in got) == len(batch)
            n += len(batch)
        db = open_database(pg_url)
        try:
            assert measured(db, Measurement, Measurement.role == "vantage") == n
            assert measured(db, Verdict) == n
            with db.read() as s:
                uids = s.scalars(select(Measurement.uid).where(Measurement.role == "vantage")).all()
                assert len(uids) == len(set(uids))
                # one state per (URL, agent), one vantage row per agent, whichever process made it
                states = s.execute(select(Vantage.name, func.count()).join(
                    UrlState, UrlState.vantage_id == Vantage.id).where(Vantage.kind == "agent")
                    .group_by(Vantage.name)).all()
                assert sorted(states) == [("a1", len(urls)), ("a2", len(urls))]
        finally:
            db.close()
        for proc, lines in procs:
            proc.send_signal(signal.SIGTERM)
            err = await lines.rest()
            assert await asyncio.wait_for(proc.wait(), 30) == 0, err
            assert "Traceback" not in "".join(lines.seen) + err
    finally:
        for proc, _ in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


def test_collectors_starting_together_both_start(lab: Lab, tmp_path: Path, pg_url: str) -> None:
    """Another process inserts the same agent vantage in a transaction still open while this
    one starts: the unique name refuses this one's insert once the other commits; the start
    reads the other's row instead of failing."""
    tok = tokens("a1")
    cfg = write_collector_config(tmp_path, lab, pg_url, agents=tok, urls=[lab.url("x.test")])
    first, second = open_database(pg_url), open_database(pg_url)
    watch = create_engine(pg_url)
    try:
        done: list[object] = []
        with first.write() as s:
            mine = repo.ensure_vantage(s, "a1", "agent", "KZ")
            holder = s.execute(text("SELECT pg_backend_pid()")).scalar_one()
            t = threading.Thread(target=lambda: done.append(_state_or_error(cfg, second)))
            t.start()
            with watch.connect() as c:  # until a session waits on this very transaction
                waiting = text("SELECT count(*) FROM pg_stat_activity "
                               "WHERE :holder = ANY(pg_blocking_pids(pid))")
                while not c.execute(waiting, {"holder": holder}).scalar():
                    c.rollback()
        t.join(30)
        (state,) = done
        assert not isinstance(state, BaseException), repr(state)
        assert state.snapshot.vantage_ids["a1"] == mine  # type: ignore[attr-defined]
    finally:
        watch.dispose()
        first.close()
        second.close()


def _state_or_error(cfg: object, db: object) -> object:
    try:
        return create_state(cfg, db)  # type: ignore[arg-type]
    except BaseException as exc:
        return exc
