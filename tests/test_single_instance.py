"""One `blockwatch run` per database (SQLite and PostgreSQL, real subprocesses): a second one
exits 75 naming the first (pid, host, since); `serve` beside it is fine; the lock goes with the
process."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import pytest

from test_alerts_support import free_port
from test_daemon import Lines, shipped_config, start_run

ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


async def _blockwatch(config: Path, *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "blockwatch", "--config", str(config), *args,
        stderr=asyncio.subprocess.PIPE, env=ENV)
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, err.decode()


async def _stop(proc: asyncio.subprocess.Process, lines: Lines) -> None:
    proc.send_signal(signal.SIGTERM)
    err = await lines.rest()
    assert await asyncio.wait_for(proc.wait(), 30) == 0, err


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_second_run_on_one_database_exits_75(backend: str, tmp_path: Path,
                                                   request: pytest.FixtureRequest) -> None:
    storage = request.getfixturevalue("pg_url") if backend == "postgres" else "sqlite:///bw.db"
    config = shipped_config(tmp_path, storage=storage, interval="1h")
    first, lines = await start_run(config)
    try:
        await lines.wait_for("blockwatch running")
        code, err = await _blockwatch(config, "run")
        assert code == 75, err
        assert f"pid {first.pid} on {socket.gethostname()}, running since 20" in err
        assert "Traceback" not in err
        if backend == "sqlite":
            held = (tmp_path / "bw.db.lock").read_text().split()
            assert held[:2] == [str(first.pid), socket.gethostname()]
        # `serve` is not single-instance: it runs beside the daemon on the same database
        port = free_port()
        serve = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "blockwatch", "--config", str(config), "serve",
            "--port", str(port), stderr=asyncio.subprocess.PIPE, env=ENV)
        assert serve.stderr is not None
        serve_lines = Lines(serve.stderr)
        await serve_lines.wait_for(f"collector listening on 127.0.0.1:{port}")
        await _stop(serve, serve_lines)
        assert first.returncode is None
        await _stop(first, lines)
    finally:
        if first.returncode is None:
            first.kill()
            await first.wait()
    # the lock went with the process: the next run starts
    again, lines = await start_run(config)
    try:
        await lines.wait_for("blockwatch running")
        await _stop(again, lines)
    finally:
        if again.returncode is None:
            again.kill()
            await again.wait()


async def test_a_killed_daemon_leaves_no_lock_behind(tmp_path: Path) -> None:
    """SIGKILL: no clean-up runs, the kernel releases the flock; the stale pid in the file
    does not block the next run."""
    config = shipped_config(tmp_path, interval="1h")
    first, lines = await start_run(config)
    await lines.wait_for("blockwatch running")
    first.kill()
    await first.wait()
    again, lines = await start_run(config)
    try:
        await lines.wait_for("blockwatch running")
        assert (tmp_path / "bw.db.lock").read_text().split()[0] == str(again.pid)
        await _stop(again, lines)
    finally:
        if again.returncode is None:
            again.kill()
            await again.wait()
