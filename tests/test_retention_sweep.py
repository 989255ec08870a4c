"""Retention's sweep of unreferenced evidence pieces (retention.sweep_pieces), on SQLite and
PostgreSQL: it deletes in short transactions of a bounded number of pieces, writers store between
them, a sweep cut short goes on at the next prune, and a piece the sweep found unreferenced is
kept when a row comes to refer to it before its batch is deleted: a new measurement that finds it
stored, a new row on an id SQLite reused, a row `db compact` rewrote as pieces in place."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest
from sqlalchemy import delete, func, select

from blockwatch import retention
from blockwatch.storage import Database, bulk, open_database, repo
from blockwatch.storage import evidence as E
from blockwatch.storage.models import EvidencePiece, Measurement
from blockwatch.textsafe import storable_evidence

T0 = datetime(2025, 3, 1, tzinfo=UTC)


def _evidence(*chains: int) -> dict[str, Any]:
    """Evidence with one certificate chain per number: each chain is a piece of its own."""
    return {"url": "https://x.test/",
            "tls": [{"ip": "192.0.2.1", "chain": [f"certificate {k} " + "c" * 64]} for k in chains]}


def _piece(k: int) -> str:
    (p,) = E.split(storable_evidence(_evidence(k))[1]).pieces
    return p.sha256


def _store(db: Database, uid: str, data: dict[str, Any]) -> int:
    with db.write() as s:
        vid = repo.ensure_vantage(s, "vps", "local")
        ids = bulk.insert_measurements(db, s, vid, "vantage", [
            bulk.Row(uid, None, "https://x.test/", T0, data)])
    return ids[uid]


def _pieces(db: Database) -> set[str]:
    with db.read() as s:
        return set(s.scalars(select(EvidencePiece.sha256)))


def _referenced(db: Database) -> set[str]:
    with db.read() as s:
        return {h for refs in s.scalars(select(Measurement.evidence_refs))
                for h in E.ref_hashes(refs)}


def _evidence_reads_back(db: Database, uid: str) -> bool:
    with db.read() as s:
        row = s.execute(select(Measurement.evidence_sha256, *E.columns())
                        .where(Measurement.uid == uid)).one()
        return hashlib.sha256(E.texts(s, [row[1:]])[0].encode()).hexdigest() == row[0]


def _unreferenced(db: Database, numbers: range) -> list[str]:
    """Pieces stored by rows that are gone again (as retention leaves them), sorted."""
    for k in numbers:
        _store(db, f"gone{k}", _evidence(k))
    with db.write() as s:
        s.execute(delete(Measurement).where(Measurement.uid.in_([f"gone{k}" for k in numbers])))
    return sorted(_piece(k) for k in numbers)


@pytest.fixture
def other(any_db: Database) -> Iterator[Database]:
    """A second process's view of the same database (its own engine and connections)."""
    d = open_database(any_db.url)
    yield d
    d.close()


class Killed(Exception):
    pass


def test_the_sweep_deletes_in_bounded_transactions_and_writers_store_between(
        any_db: Database, other: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retention, "SCAN_BATCH", 2)  # the scan in ranges, over gaps of ids
    for k in range(100, 104):
        _store(any_db, f"kept{k}", _evidence(k))
    unused = _unreferenced(any_db, range(10))
    for k in range(104, 107):
        _store(any_db, f"kept{k}", _evidence(k))
    before = _pieces(any_db)
    seen: list[int] = []  # pieces stored at each step, before its writer stores one more

    def between(n: int) -> None:
        seen.append(len(_pieces(any_db)))
        # a round stores meanwhile (a new piece): with the write lock (SQLite) or the pieces'
        # lock alone (PostgreSQL) held across batches this would wait and fail
        _store(other, f"new{n}", _evidence(200 + n))

    assert retention.sweep_pieces(any_db, batch=3, after_batch=between) == len(unused)
    assert len(seen) >= -(-len(before) // 3)  # a step per 3 pieces looked at
    steps = [len(before) - seen[0]] + [a + 1 - b for a, b in pairwise(seen)]
    assert max(steps) <= 3 and sum(steps) == len(unused)
    after = _pieces(any_db)
    assert after == _referenced(any_db) and not after & set(unused)
    assert {_piece(k) for k in range(100, 107)} <= after
    assert all(_evidence_reads_back(any_db, f"new{n}") for n in range(1, len(seen) + 1))
    with any_db.read() as s:  # done: nothing left for the next prune to finish
        assert not repo.get_kv(s, retention.SWEEP_PENDING)


def test_no_transaction_of_the_sweep_deletes_more_than_a_batch(
        any_db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retention, "SWEEP_BATCH", 3, raising=False)
    unused = _unreferenced(any_db, range(10))
    per_transaction: list[int] = []
    write = any_db.write

    @contextmanager
    def counted() -> Iterator[Any]:
        with write() as s:
            n = s.scalar(select(func.count()).select_from(EvidencePiece))
            yield s
            s.flush()
            per_transaction.append(n - s.scalar(select(func.count()).select_from(EvidencePiece)))

    monkeypatch.setattr(any_db, "write", counted)
    assert retention.sweep_pieces(any_db) == len(unused)
    assert sum(per_transaction) == len(unused) and max(per_transaction) <= 3


def test_a_piece_stored_again_before_its_batch_is_kept(any_db: Database, other: Database) -> None:
    """The race: the sweep's scan finds a piece unreferenced, then a measurement that refers to
    it is stored (finding it stored, it stores only the reference) before the sweep's batch that
    holds it is deleted."""
    for k in range(100, 104):
        _store(any_db, f"kept{k}", _evidence(k))
    unused = _unreferenced(any_db, range(10))
    late = unused[-1]  # the last batch's
    k_late = next(k for k in range(10) if _piece(k) == late)

    def between(n: int) -> None:
        if n == 1:
            assert late in _pieces(any_db)  # found unreferenced, not deleted yet
            _store(other, "late", _evidence(k_late, 300))

    deleted = retention.sweep_pieces(any_db, batch=2, after_batch=between)
    assert late in _pieces(any_db)
    assert _evidence_reads_back(any_db, "late")
    assert deleted == len(unused) - 1
    assert _pieces(any_db) == _referenced(any_db)


def test_a_row_on_an_id_sqlite_reused_keeps_its_pieces(any_db: Database, other: Database) -> None:
    """SQLite gives a new row the highest id + 1: once the newest row is deleted, a new row can
    take an id the sweep's scan already covered."""
    unused = _unreferenced(any_db, range(10))
    newest = _store(any_db, "newest", _evidence(100))
    late = unused[-1]
    k_late = next(k for k in range(10) if _piece(k) == late)
    got: list[int] = []

    def between(n: int) -> None:
        if n == 1:
            assert late in _pieces(any_db)
            with other.write() as s:
                s.execute(delete(Measurement).where(Measurement.id == newest))
            got.append(_store(other, "late", _evidence(k_late)))

    retention.sweep_pieces(any_db, batch=2, after_batch=between)
    if any_db.dialect == "sqlite":
        assert got == [newest]  # the id was reused: what this test is about
    else:
        assert got[0] > newest  # PostgreSQL's ids only grow
    assert late in _pieces(any_db)
    assert _evidence_reads_back(any_db, "late")
    retention.sweep_pieces(any_db)  # a later sweep finishes (SQLite's stopped there)
    assert _pieces(any_db) == _referenced(any_db)
    assert late in _pieces(any_db) and _piece(100) not in _pieces(any_db)


def test_evidence_db_compact_rewrites_meanwhile_keeps_its_pieces(any_db: Database,
                                                                 other: Database) -> None:
    """`db compact` rewrites a row stored whole as pieces in place (an id the scan covered),
    finding one of them stored and unreferenced."""
    from blockwatch.storage.convert import compact_history

    unused = _unreferenced(any_db, range(10))
    late = unused[-1]
    k_late = next(k for k in range(10) if _piece(k) == late)
    any_db.evidence_pieces = False  # as stored before pieces
    try:
        _store(any_db, "whole", _evidence(k_late, 400))
    finally:
        any_db.evidence_pieces = True
    assert _referenced(any_db) == set()

    def between(n: int) -> None:
        if n == 1:
            assert late in _pieces(any_db)
            compact_history(other)  # its own sweep keeps the piece: it sees the row rewritten
            assert late in _pieces(any_db) and late in _referenced(any_db)

    retention.sweep_pieces(any_db, batch=2, after_batch=between)
    assert late in _pieces(any_db)
    assert _evidence_reads_back(any_db, "whole")
    retention.sweep_pieces(any_db)
    assert _pieces(any_db) == _referenced(any_db) and late in _referenced(any_db)


def test_a_sweep_cut_short_goes_on_at_the_next_prune(any_db: Database) -> None:
    _store(any_db, "kept", _evidence(100))
    unused = _unreferenced(any_db, range(6))

    def kill(n: int) -> None:
        if n == 1:
            raise Killed

    with pytest.raises(Killed):
        retention.sweep_pieces(any_db, batch=2, after_batch=kill)
    left = _pieces(any_db) & set(unused)
    assert 0 < len(left) < len(unused)  # stopped part way, what it deleted is gone for good
    with any_db.read() as s:
        assert repo.get_kv(s, retention.SWEEP_PENDING)
    # nothing is old enough to prune: the prune still finishes the sweep
    assert retention.prune(any_db, timedelta(days=3650), T0 + timedelta(days=1)) == 0
    assert _pieces(any_db) == {_piece(100)}
    with any_db.read() as s:
        assert not repo.get_kv(s, retention.SWEEP_PENDING)
        assert s.scalar(select(func.count()).select_from(Measurement)) == 1


def test_writers_wait_while_a_batch_is_decided_and_deleted(pg_url: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL: each delete transaction holds the pieces' lock alone from before it reads
    what was stored since its scan until it commits, so no writer is between finding a piece
    stored and committing meanwhile (writers take the lock shared; test_evidence_store)."""
    db = open_database(pg_url)
    try:
        _unreferenced(db, range(4))
        tried: list[bool] = []
        catch_up = retention._catch_up

        def checked(*args: Any) -> bool:
            with db.engine.connect() as writer:
                tried.append(writer.execute(select(func.pg_try_advisory_xact_lock_shared(
                    bulk.PIECES_LOCK))).scalar_one())
                writer.rollback()
            return catch_up(*args)

        monkeypatch.setattr(retention, "_catch_up", checked)
        assert retention.sweep_pieces(db, batch=2) == 4
        assert tried and not any(tried)  # a writer would have waited, every time
    finally:
        db.close()


def test_the_scan_reads_a_batch_of_rows_per_transaction_however_sparse_the_ids(
        any_db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """After retention the ids left are sparse: the scan's read transactions are counted in rows
    (SCAN_BATCH each), not in ids, else a database pruned to one row in thousands takes a
    transaction per row."""
    monkeypatch.setattr(retention, "SCAN_BATCH", 3)
    with any_db.write() as s:
        vid = repo.ensure_vantage(s, "vps", "local")
        ids = bulk.insert_measurements(any_db, s, vid, "vantage", [
            bulk.Row(f"m{i}", None, "https://x.test/", T0, _evidence(i)) for i in range(40)])
    kept = sorted(ids.values())[::4]  # every fourth id left: 10 rows, 4 ids apart
    with any_db.write() as s:
        s.execute(delete(Measurement).where(Measurement.id.not_in(kept)))
    reads = 0
    read = any_db.read

    @contextmanager
    def counted() -> Iterator[Any]:
        nonlocal reads
        reads += 1
        with read() as s:
            yield s

    monkeypatch.setattr(any_db, "read", counted)
    used: set[bytes] = set()
    retention._scan(any_db, retention._Mark(max(kept), None, None, "t"), used)
    assert reads == 4  # 3 + 3 + 3 + 1 rows
    assert {u.hex() for u in used} == _referenced(any_db) and len(used) == 10


def test_the_same_measurement_stored_again_on_the_newest_id_keeps_its_pieces(
        any_db: Database, other: Database) -> None:
    """The newest row is deleted (e.g. db compact folds it) before the scan reaches it, and the
    same measurement is delivered again after: SQLite gives it the same id and uid, so the check
    that the newest row the sweep knew still stands passes; its references must still count."""
    _store(any_db, "old", _evidence(100))
    top = _store(any_db, "U", _evidence(1))  # the newest row; refers to P
    scan = retention._scan
    got: list[int] = []

    def gone_and_back(db: Database, mark: Any, used: set[bytes]) -> None:
        with other.write() as s:
            s.execute(delete(Measurement).where(Measurement.id == top))
        scan(db, mark, used)  # row `top` is gone: P unreferenced
        got.append(_store(other, "U", _evidence(1)))  # finds P stored

    retention._scan = gone_and_back  # type: ignore[assignment]
    try:
        retention.sweep_pieces(any_db)
    finally:
        retention._scan = scan  # type: ignore[assignment]
    if any_db.dialect == "sqlite":
        assert got == [top]  # the id was reused: what this test is about
    assert _piece(1) in _pieces(any_db)
    assert _evidence_reads_back(any_db, "U")
    assert _pieces(any_db) == _referenced(any_db)


def test_a_sweep_that_ends_leaves_a_later_one_cut_short_pending(any_db: Database,
                                                                 other: Database) -> None:
    """Sweep A runs long; meanwhile a row is pruned (its piece Q unreferenced: A's scan saw it
    referred to) and sweep B begins and is killed before it reaches Q. A ends: B must stay
    pending, so the next prune deletes Q."""
    for k in range(100, 104):
        _store(any_db, f"kept{k}", _evidence(k))
    unused = _unreferenced(any_db, range(6))
    first = min([*unused, *(_piece(k) for k in range(100, 105))])
    q = next(k for k in range(50, 80) if _piece(k) > first)  # not in B's first batch
    _store(any_db, "late", _evidence(q))
    _store(any_db, "newest", _evidence(104))  # SQLite: A's id-reuse check must not stop it

    def kill(n: int) -> None:
        raise Killed

    def between(n: int) -> None:
        if n == 1:
            with other.write() as s:
                s.execute(delete(Measurement).where(Measurement.uid == "late"))
            with pytest.raises(Killed):
                retention.sweep_pieces(other, batch=1, after_batch=kill)
            assert _piece(q) in _pieces(any_db)

    retention.sweep_pieces(any_db, batch=2, after_batch=between)
    assert _piece(q) in _pieces(any_db)  # A saw it referred to
    with any_db.read() as s:
        assert repo.get_kv(s, retention.SWEEP_PENDING)
    assert retention.prune(any_db, timedelta(days=3650), T0 + timedelta(days=1)) == 0
    assert _pieces(any_db) == _referenced(any_db) and _piece(q) not in _pieces(any_db)
    with any_db.read() as s:
        assert not repo.get_kv(s, retention.SWEEP_PENDING)


def test_with_no_piece_stored_the_sweep_reads_no_row(any_db: Database,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Pieces off (or all swept): no scan, no write; a sweep left pending is done."""
    any_db.evidence_pieces = False
    _store(any_db, "whole", _evidence(1))
    with any_db.write() as s:
        repo.set_kv(s, retention.SWEEP_PENDING, "cut short")

    def no_scan(*args: Any) -> None:
        raise AssertionError("scanned")

    monkeypatch.setattr(retention, "_scan", no_scan)
    assert retention.sweep_pieces(any_db) == 0
    with any_db.read() as s:
        assert not repo.get_kv(s, retention.SWEEP_PENDING)
    writes: list[int] = []
    write = any_db.write

    @contextmanager
    def counted() -> Iterator[Any]:
        writes.append(1)
        with write() as s:
            yield s

    monkeypatch.setattr(any_db, "write", counted)
    assert retention.sweep_pieces(any_db) == 0
    assert writes == []


def test_a_sweep_stops_reading_once_db_compact_moves(any_db: Database, other: Database,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """db compact rewriting rows as pieces stops the sweep (it sweeps when done): the sweep's
    scan stops at its next read transaction instead of reading every row first."""
    from blockwatch.storage.convert import CURSORS

    monkeypatch.setattr(retention, "SCAN_BATCH", 2)
    for k in range(100, 110):
        _store(any_db, f"kept{k}", _evidence(k))
    unused = _unreferenced(any_db, range(4))
    reads: list[int] = []
    read, begin = any_db.read, retention._begin

    @contextmanager
    def counted() -> Iterator[Any]:
        reads.append(1)
        with read() as s:
            yield s

    def begin_then_compact(db: Database) -> Any:
        mark = begin(db)
        with other.write() as s:  # as compact's first transaction does
            repo.set_kv(s, CURSORS["pieces"], 1)
        monkeypatch.setattr(any_db, "read", counted)
        return mark

    monkeypatch.setattr(retention, "_begin", begin_then_compact)
    assert retention.sweep_pieces(any_db) == 0
    assert len(reads) == 1  # the scan's first read transaction saw the cursor moved
    assert set(unused) <= _pieces(any_db)
    with any_db.read() as s:
        assert repo.get_kv(s, retention.SWEEP_PENDING)


def test_rows_stored_during_the_scan_are_read_before_the_lock_is_held(
        any_db: Database, other: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """A long scan: much is stored meanwhile. The first locked catch-up must not read it all
    while writers wait: it finds the mark moved past them already."""
    unused = _unreferenced(any_db, range(4))
    scan, catch_up = retention._scan, retention._catch_up
    stored: list[int] = []
    tops: list[int] = []

    def scan_while_stored(db: Database, mark: Any, used: set[bytes]) -> None:
        scan(db, mark, used)
        for k in range(100, 105):
            stored.append(_store(other, f"during{k}", _evidence(k, unused_k[0])))

    def catch_up_seen(db: Database, s: Any, mark: Any, used: set[bytes]) -> bool:
        tops.append(mark.top)
        return catch_up(db, s, mark, used)

    unused_k = [next(k for k in range(4) if _piece(k) == unused[0])]
    monkeypatch.setattr(retention, "_scan", scan_while_stored)
    monkeypatch.setattr(retention, "_catch_up", catch_up_seen)
    assert retention.sweep_pieces(any_db, batch=2) == len(unused) - 1
    assert tops and tops[0] == max(stored)  # read before the locked catch-up
    assert unused[0] in _pieces(any_db)  # the rows stored meanwhile refer to it
    assert _pieces(any_db) == _referenced(any_db)
    assert all(_evidence_reads_back(any_db, f"during{k}") for k in range(100, 105))


def test_rows_pruned_and_replaced_below_the_newest_keep_their_pieces(
        any_db: Database, other: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process prunes the two newest rows during the scan, then a new measurement and
    a re-delivery of the newest one are stored: SQLite gives them the same two ids, so row `top`
    holds the uid the sweep knew and only the pruning shows the row below it is another."""
    old = T0 - timedelta(days=400)

    def store_at(db: Database, uid: str, at: datetime, data: dict[str, Any]) -> int:
        with db.write() as s:
            vid = repo.ensure_vantage(s, "vps", "local")
            return bulk.insert_measurements(db, s, vid, "vantage", [
                bulk.Row(uid, None, "https://x.test/", at, data)])[uid]

    _store(any_db, "kept", _evidence(100))
    unused = _unreferenced(any_db, range(4))
    k_p = next(k for k in range(4) if _piece(k) == unused[0])
    below = store_at(any_db, "old-a", old, _evidence(101))
    top = store_at(any_db, "old-U", old, _evidence(102))
    scan, sweep = retention._scan, retention.sweep_pieces
    got: list[int] = []

    def pruned_and_replaced(db: Database, mark: Any, used: set[bytes]) -> None:
        scan(db, mark, used)
        # the other process's prune; its own sweep comes later (it is not what this is about)
        retention.sweep_pieces = lambda *a, **k: 0  # type: ignore[assignment]
        try:
            assert retention.prune(other, timedelta(days=90), T0) == 2
        finally:
            retention.sweep_pieces = sweep  # type: ignore[assignment]
        got.append(store_at(other, "A", T0, _evidence(k_p)))  # refers to P, found stored
        got.append(store_at(other, "old-U", old, _evidence(102)))  # delivered again

    monkeypatch.setattr(retention, "_scan", pruned_and_replaced)
    sweep(any_db)
    monkeypatch.setattr(retention, "_scan", scan)
    if any_db.dialect == "sqlite":
        assert got == [below, top]  # the ids were reused: what this test is about
    assert unused[0] in _pieces(any_db)
    assert _evidence_reads_back(any_db, "A")
    sweep(any_db)  # a later sweep finishes (SQLite's stopped)
    assert _pieces(any_db) == _referenced(any_db) and unused[0] in _pieces(any_db)
