"""A database that cannot be opened or written is one clear sentence (the path and the cause),
exit 2, before any probing, and no folder is made; files holding data are the owner's only."""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from blockwatch.agent.queue import Queue
from blockwatch.storage import open_database
from blockwatch.storage.db import acquire_instance_lock
from test_daemon import shipped_config

NOBODY = 65534


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A target that records whether anything connected (it must not: no probing)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    s.setblocking(False)
    yield s
    s.close()


def _connected(s: socket.socket) -> bool:
    try:
        conn, _ = s.accept()
    except BlockingIOError:
        return False
    conn.close()
    return True


@pytest.fixture
def world() -> Iterator[Path]:
    """A folder another user can enter: the read-only cases run as an unprivileged user when
    the tests run as root (root may write anything, so a mode alone would prove nothing).
    Outside pytest's own temporary folder, which any other pytest run resets to 0700."""
    d = Path(tempfile.mkdtemp(prefix="blockwatch-dbworld-", dir="/tmp"))
    os.chmod(d, 0o711)  # searchable, not readable
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _check(config: Path, *, as_nobody: bool = False) -> subprocess.CompletedProcess[str]:
    prefix: list[str] = []
    if as_nobody and os.geteuid() == 0:  # util-linux setpriv: an unprivileged process
        prefix = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    return subprocess.run([*prefix, sys.executable, "-m", "blockwatch", "--config", str(config),
                           "check"], capture_output=True, text=True, timeout=60, cwd=config.parent)


def _config(d: Path, db: str, target_port: int) -> Path:
    cfg = shipped_config(d, storage=f"sqlite:///{db}")
    (d / "t.toml").write_text(f'[[target]]\nname = "T"\nurls = ["http://127.0.0.1:{target_port}/"]\n')
    return cfg


def _own(path: Path) -> None:
    if os.geteuid() == 0:
        os.chown(path, NOBODY, NOBODY)


def test_missing_folder_is_named_and_not_created(world: Path, listener: socket.socket) -> None:
    cfg = _config(world, "state/bw.db", listener.getsockname()[1])
    r = _check(cfg)
    assert r.returncode == 2, r.stderr
    assert f"{world / 'state'} does not exist" in r.stderr and "Traceback" not in r.stderr
    assert not (world / "state").exists()
    assert not _connected(listener)


def test_a_path_under_a_file(world: Path, listener: socket.socket) -> None:
    (world / "bw.db").write_text("not a folder")
    cfg = _config(world, "bw.db/inner.db", listener.getsockname()[1])
    r = _check(cfg)
    assert r.returncode == 2, r.stderr
    assert f"{world / 'bw.db'} is a file, not a folder" in r.stderr
    assert not _connected(listener)


def test_a_file_that_is_not_sqlite(world: Path, listener: socket.socket) -> None:
    (world / "bw.db").write_text("name,url\nRatel,https://ratel.kz/\n")
    cfg = _config(world, "bw.db", listener.getsockname()[1])
    r = _check(cfg)
    assert r.returncode == 2, r.stderr
    assert f"{world / 'bw.db'}: it is not a SQLite database" in r.stderr
    assert (world / "bw.db").read_text().startswith("name,url")  # untouched
    assert not _connected(listener)


def test_a_read_only_file(world: Path, listener: socket.socket) -> None:
    open_database(f"sqlite:///{world / 'bw.db'}").close()
    cfg = _config(world, "bw.db", listener.getsockname()[1])
    for p in (world, world / "bw.db", *world.glob("bw.db-*")):
        _own(p)
    os.chmod(world / "bw.db", 0o400)
    r = _check(cfg, as_nobody=True)
    assert r.returncode == 2, r.stderr
    assert f"{world / 'bw.db'}: the file is read-only for this user" in r.stderr
    assert not _connected(listener)  # refused before the round, not after it


def test_a_read_only_folder(world: Path, listener: socket.socket) -> None:
    data = world / "data"
    data.mkdir()
    open_database(f"sqlite:///{data / 'bw.db'}").close()
    cfg = _config(world, "data/bw.db", listener.getsockname()[1])
    for p in (data, *data.iterdir()):
        _own(p)
    os.chmod(data, 0o500)
    try:
        r = _check(cfg, as_nobody=True)
    finally:
        os.chmod(data, 0o700)
    assert r.returncode == 2, r.stderr
    assert f"the folder {data} is read-only for this user" in r.stderr
    assert not _connected(listener)


def test_a_working_database_is_probed(world: Path, listener: socket.socket) -> None:
    """The same command on a usable database does probe: the checks above are not vacuous."""
    cfg = _config(world, "bw.db", listener.getsockname()[1])
    r = _check(cfg)
    assert r.returncode == 0, r.stderr
    assert _connected(listener)


# --- file modes ----------------------------------------------------------------------------------

def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_database_and_its_wal_are_private(tmp_path: Path) -> None:
    path = tmp_path / "bw.db"
    db = open_database(f"sqlite:///{path}")
    try:
        with db.write() as s:
            s.execute(__import__("sqlalchemy").text("CREATE TABLE scratch (x)"))
        lock = acquire_instance_lock(db)
        wal, shm = Path(f"{path}-wal"), Path(f"{path}-shm")
        assert wal.exists() and shm.exists()
        assert {p.name: _mode(p) for p in (path, wal, shm)} == {
            "bw.db": 0o600, "bw.db-wal": 0o600, "bw.db-shm": 0o600}
        assert _mode(tmp_path / "bw.db.lock") == 0o600
        lock.release()
    finally:
        db.close()


def test_agent_queue_is_private(tmp_path: Path) -> None:
    q = Queue(tmp_path / "state" / "queue.db")
    q.put({"uid": "u1", "x": 1})
    try:
        assert _mode(tmp_path / "state") == 0o700
        for p in (tmp_path / "state").iterdir():
            assert _mode(p) == 0o600, p
        assert {p.name for p in (tmp_path / "state").iterdir()} >= {"queue.db", "queue.db-wal"}
    finally:
        q.close()
    assert sqlite3.connect(tmp_path / "state" / "queue.db").execute(
        "SELECT count(*) FROM queue").fetchone() == (1,)


def test_a_postgresql_server_that_refuses(tmp_path: Path) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    port = closed.getsockname()[1]
    try:
        cfg = tmp_path / "c.toml"
        cfg.write_text(f'[storage]\nurl = "postgresql+psycopg://bw:hunter2-pw@127.0.0.1:{port}/bw"\n')
        r = subprocess.run([sys.executable, "-m", "blockwatch", "--config", str(cfg), "verdicts"],
                           capture_output=True, text=True, timeout=60, cwd=tmp_path)
    finally:
        closed.close()
    assert r.returncode == 2, r.stderr
    assert f"cannot use the database postgresql+psycopg://bw:***@127.0.0.1:{port}/bw" in r.stderr
    assert "hunter2" not in r.stderr and "Traceback" not in r.stderr
