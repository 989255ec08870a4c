"""Retention's sweep of evidence pieces on PostgreSQL against writers in flight: ids are handed
out at insert, so a lower id can commit after a higher one, and the server's default isolation
(default_transaction_isolation, a server/database/role setting) must not change what the sweep's
and the writers' statements see after the pieces' lock is granted: blockwatch pins READ COMMITTED
(export asks REPEATABLE READ per transaction itself)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select, text

from blockwatch import export, retention
from blockwatch.storage import Database, bulk, open_database, repo
from blockwatch.storage import evidence as E
from blockwatch.storage.models import EvidencePiece, Measurement
from test_retention_sweep import _evidence, _piece

T0 = datetime(2025, 3, 1, tzinfo=UTC)
REPEATABLE_READ = "%20-cdefault_transaction_isolation%3Drepeatable%5C%20read"  # libpq options


def _insert(db: Database, s: Any, uid: str, data: dict[str, Any]) -> int:
    vid = repo.ensure_vantage(s, "vps", "local")
    return bulk.insert_measurements(db, s, vid, "vantage", [
        bulk.Row(uid, None, "https://x.test/", T0, data)])[uid]


def _store(db: Database, uid: str, data: dict[str, Any]) -> int:
    with db.write() as s:
        return _insert(db, s, uid, data)


def _pieces(db: Database) -> set[str]:
    with db.read() as s:
        return set(s.scalars(select(EvidencePiece.sha256)))


def _dangling(db: Database) -> set[str]:
    """Pieces a committed row refers to that are not stored."""
    with db.read() as s:
        refs = {h for r in s.scalars(select(Measurement.evidence_refs)) for h in E.ref_hashes(r)}
    return refs - _pieces(db)


def _wait_for_lock_waiter(db: Database) -> None:
    """Until some backend waits for an advisory lock (the sweep asking for the pieces' lock)."""
    while True:
        with db.engine.connect() as c:
            if c.execute(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                              " AND NOT granted")).scalar_one():
                return


def _writer_commits_while_the_sweep_waits(sweep_db: Database, other: Database) -> tuple[int, int]:
    """After the sweep's scan found piece P unreferenced: writer W1 takes id N and refers to P
    (found stored), writer W2 takes N+1 and commits first; W1 commits once the sweep waits for
    the pieces' lock. Returns (N, N+1)."""
    _store(sweep_db, "kept", _evidence(100))
    _store(sweep_db, "gone", _evidence(1))
    with sweep_db.write() as s:
        s.execute(delete(Measurement).where(Measurement.uid == "gone"))
    assert _piece(1) in _pieces(sweep_db)
    got: dict[str, int] = {}
    errors: list[BaseException] = []
    scan = retention._scan

    def scan_then_writers(db: Database, mark: Any, used: set[bytes]) -> None:
        scan(db, mark, used)  # P unreferenced here
        w1 = other._write()
        w1.begin()
        got["n"] = _insert(other, w1, "w1", _evidence(1, 2))  # finds P stored: refers to it
        got["n1"] = _store(other, "w2", _evidence(3))  # a higher id, committed first

        def commit_w1_when_the_sweep_waits() -> None:
            try:
                _wait_for_lock_waiter(other)
                w1.commit()
                w1.close()
            except BaseException as e:  # reported by the test
                errors.append(e)

        threading.Thread(target=commit_w1_when_the_sweep_waits, daemon=True).start()

    retention._scan = scan_then_writers  # type: ignore[assignment]
    try:
        retention.sweep_pieces(sweep_db)
    finally:
        retention._scan = scan  # type: ignore[assignment]
    assert not errors
    return got["n"], got["n1"]


def test_a_lower_id_committed_after_a_higher_one_keeps_its_piece(pg_url: str) -> None:
    """Writers that refer to pieces take the pieces' lock (shared) before their ids, so the
    sweep's lock waits for W1 and then sees its row, though W2's higher id committed first."""
    sweep_db, other = open_database(pg_url), open_database(pg_url)
    try:
        n, n1 = _writer_commits_while_the_sweep_waits(sweep_db, other)
        assert n < n1
        assert _piece(1) in _pieces(sweep_db)
        assert _dangling(sweep_db) == set()
    finally:
        sweep_db.close()
        other.close()


def test_blockwatch_reads_committed_whatever_the_server_default(pg_url: str) -> None:
    db = open_database(pg_url + REPEATABLE_READ)
    try:
        with db.engine.connect() as c:  # the setting took: the server's default is RR here
            assert c.exec_driver_sql("SHOW default_transaction_isolation").scalar() \
                == "repeatable read"
        with db.read() as s:
            assert s.scalar(text("SHOW transaction_isolation")) == "read committed"
        with db.write() as s:
            assert s.scalar(text("SHOW transaction_isolation")) == "read committed"
        with export.snapshot(db) as s:  # export's own level still wins in its transaction
            assert s.scalar(text("SHOW transaction_isolation")) == "repeatable read"
            assert s.scalar(text("SHOW transaction_read_only")) == "on"
        with db.read() as s:  # and does not stick to the pooled connection
            assert s.scalar(text("SHOW transaction_isolation")) == "read committed"
    finally:
        db.close()


def test_the_sweep_under_a_repeatable_read_default_keeps_a_piece_a_row_committed_meanwhile(
        pg_url: str) -> None:
    """With REPEATABLE READ the sweep's delete transaction would take its snapshot with its first
    statement, the lock request, before the wait: W1's row, committed meanwhile, unseen."""
    sweep_db = open_database(pg_url + REPEATABLE_READ)
    other = open_database(pg_url + REPEATABLE_READ)
    try:
        _writer_commits_while_the_sweep_waits(sweep_db, other)
        assert _piece(1) in _pieces(sweep_db)
        assert _dangling(sweep_db) == set()
    finally:
        sweep_db.close()
        other.close()


def test_a_writer_under_a_repeatable_read_default_stores_a_piece_the_sweep_deleted_again(
        pg_url: str) -> None:
    """The writer's side: with REPEATABLE READ its snapshot would be taken by its first statement
    (before it asks for the pieces' lock), so a piece the sweep deleted after that would still be
    'found stored' and not stored again."""
    db, writer = open_database(pg_url), open_database(pg_url + REPEATABLE_READ)
    try:
        _store(db, "gone", _evidence(1))
        with db.write() as s:
            s.execute(delete(Measurement).where(Measurement.uid == "gone"))
        w = writer._write()
        w.begin()
        repo.ensure_vantage(w, "vps", "local")  # e.g. the collector's vantage row: first statement
        assert retention.sweep_pieces(db) == 1  # P unreferenced: deleted
        _insert(writer, w, "w", _evidence(1))
        w.commit()
        w.close()
        assert _piece(1) in _pieces(db)
        assert _dangling(db) == set()
    finally:
        db.close()
        writer.close()
