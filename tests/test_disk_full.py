"""A full disk is a temporary failure: exit 75 (EX_TEMPFAIL, what a supervisor retries) with one
line that says so, never 2 (a usage error) or 1 with a driver's two-line message. The failures
are real: SQLite refusing to grow the database ("database or disk is full", through its page
limit) and the kernel's ENOSPC (writes to /dev/full)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from blockwatch.cli import main

TARGETS = "".join(f'[[target]]\nname = "Outlet {i:03d} {"x" * 60}"\n'
                  f'urls = ["https://outlet-{i:03d}.invalid/{"p" * 100}"]\n\n' for i in range(300))


@pytest.fixture
def cfg_path(tmp_path: Path) -> Path:
    (tmp_path / "targets.toml").write_text(TARGETS, encoding="utf-8")
    p = tmp_path / "blockwatch.toml"
    p.write_text('[storage]\nurl = "sqlite:///bw.db"\n[probe]\ntargets = ["targets.toml"]\n',
                 encoding="utf-8")
    assert main(["--config", str(p), "db", "upgrade"]) == 0
    return p


@pytest.fixture
def database_cannot_grow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every SQLite connection made from now on may not add a page to its database file."""
    (tmp_path / "sqlite-tmp").mkdir()
    monkeypatch.setenv("SQLITE_TMPDIR", str(tmp_path / "sqlite-tmp"))

    def limit(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute("PRAGMA max_page_count = 1")  # clamped to the pages it has

    event.listen(Engine, "connect", limit)
    try:
        yield
    finally:
        event.remove(Engine, "connect", limit)


def test_a_database_that_cannot_grow_exits_75_with_one_line(
        cfg_path: Path, database_cannot_grow: None, capsys: pytest.CaptureFixture[str]) -> None:
    # `check` stores the 300 targets before measuring anything: that write needs new pages
    assert main(["--config", str(cfg_path), "check", "--json"]) == 75
    err = capsys.readouterr().err.strip()
    # neither disk is really full here: both places SQLite writes are named
    assert err == (f"blockwatch check: no space left on the disk (the database "
                   f"{cfg_path.parent / 'bw.db'}, or SQLite's temporary files in "
                   f"{cfg_path.parent / 'sqlite-tmp'}): free some space, then run it again")


def test_the_full_disk_named_is_the_one_that_is_full(
        cfg_path: Path, database_cannot_grow: None, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from blockwatch import cli

    tmp = cfg_path.parent / "sqlite-tmp"
    monkeypatch.setattr(cli, "_folder_full", lambda folder: Path(folder) == tmp)
    assert main(["--config", str(cfg_path), "check", "--json"]) == 75
    assert capsys.readouterr().err.strip() == (
        f"blockwatch check: no space left on the disk (SQLite's temporary files in {tmp}): "
        "free some space, then run it again")
    monkeypatch.setattr(cli, "_folder_full", lambda folder: Path(folder) == cfg_path.parent)
    assert main(["--config", str(cfg_path), "check", "--json"]) == 75
    assert capsys.readouterr().err.strip() == (
        f"blockwatch check: no space left on the disk (the database {cfg_path.parent / 'bw.db'}): "
        "free some space, then run it again")


def test_a_postgresql_url_is_named_without_its_secrets() -> None:
    from types import SimpleNamespace

    from blockwatch.cli import _disk_full

    class DiskFull(Exception):
        sqlstate = "53100"

    cfg: Any = SimpleNamespace(
        database_url="postgresql+psycopg://bw:pw1secret@db.example/bw?password=S3cretPassw0rd")
    where = _disk_full(DiskFull("could not extend file"), cfg) or ""
    assert "db.example" in where
    assert "S3cret" not in where and "pw1secret" not in where


@pytest.mark.skipif(not os.access("/dev/full", os.W_OK), reason="needs a writable /dev/full")
def test_an_output_file_on_a_full_disk_exits_75_with_one_line(
        cfg_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "digest"
    out.mkdir()
    now = datetime.now(UTC)
    for day in (now - timedelta(days=1), now, now + timedelta(days=1)):  # any time zone's today
        (out / f"{day:%Y-%m-%d}.html.tmp").symlink_to("/dev/full")  # writes fail with ENOSPC
    assert main(["--config", str(cfg_path), "digest", "--out", str(out)]) == 75
    err = capsys.readouterr().err.strip()
    assert err == "blockwatch digest: no space left on the disk: free some space, then run it again"
    assert not list(out.glob("*.html"))


def test_other_os_errors_are_still_failures(cfg_path: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "digest").write_text("a file where the folder should be", encoding="utf-8")
    assert main(["--config", str(cfg_path), "digest", "--out", str(tmp_path / "digest")]) == 1
    assert "failed: FileExistsError" in capsys.readouterr().err


def test_a_new_database_on_a_full_disk_is_not_a_usage_error(
        tmp_path: Path, database_cannot_grow: None, capsys: pytest.CaptureFixture[str]) -> None:
    """Opening creates the schema; no room for it was exit 2 ("cannot use the database")."""
    p = tmp_path / "blockwatch.toml"
    p.write_text('[storage]\nurl = "sqlite:///new.db"\n', encoding="utf-8")
    assert main(["--config", str(p), "verdicts"]) == 75
    assert capsys.readouterr().err.strip() == (
        f"blockwatch verdicts: no space left on the disk (the database {tmp_path / 'new.db'}, "
        f"or SQLite's temporary files in {tmp_path / 'sqlite-tmp'}): "
        "free some space, then run it again")
