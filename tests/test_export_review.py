"""Regressions found by a review of the evidence store, the hash chain and `export --verify`:
`db compact` racing a linker, an export racing a linker, records relabelled to dodge the evidence
check, chain.json's own fields edited, and malformed chain files; SQLite and PostgreSQL where
they differ."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from blockwatch import export
from blockwatch.storage import Database, bulk, chain, repo
from blockwatch.storage import convert as conv
from blockwatch.storage.db import open_database
from blockwatch.storage.models import Measurement, Target
from test_export_chain import T0, _history, _m, _verify


def _exp(db: Database, tmp_path: Path, fmt: str = "jsonl") -> Path:
    out = tmp_path / f"t.{fmt}"
    export.write_export(db, "T", out, fmt=fmt, since=None, until=None)
    return out


def _heads(text_: str) -> list[str]:
    return sorted(line for line in text_.splitlines() if "chain head" in line)


# --- db compact and a linker (PostgreSQL: SQLite's write lock serialises them already) -------

def test_compact_never_folds_a_row_linked_meanwhile(pg_url: str, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    db = open_database(pg_url)
    try:
        db.compact_runs = False  # history as stored before runs: every repetition a row
        with db.write() as s:
            t = Target(name="T", urls=["https://t.test/"], aliases=[])
            s.add(t)
            s.flush()
            tid = t.id
            vid = repo.ensure_vantage(s, "vps", "local")
        for h in range(6):  # blocked every hour, the same outcome, one day: kept anomalies
            at = T0 + timedelta(hours=h)
            m = _m("https://t.test/", at, "tls")
            with db.write() as s:
                bulk.record(db, s, vid, [bulk.Row(m.uid, tid, m.url, at, m.to_json(),
                                                  verdict="tls")], 2)
        at = T0 + timedelta(hours=7)  # another URL's, linked after them: a gap would show
        m = _m("https://t.test/b", at, "tls")
        with db.write() as s:
            bulk.record(db, s, vid, [bulk.Row(m.uid, tid, m.url, at, m.to_json(), verdict="tls")], 2)
        db.compact_runs = True
        real = conv.E.loads
        done: list[Any] = []
        threads: list[threading.Thread] = []

        def loads_then_link(s: Session, rows: Any) -> Any:
            if not done:  # inside the first fold: another process (export, retention) links
                done.append("started")
                me = s.execute(text("SELECT pg_backend_pid()")).scalar_one()
                th = threading.Thread(target=lambda: done.append(chain.link(db)))
                th.start()
                threads.append(th)
                waiting = text("SELECT count(*) FROM pg_stat_activity "
                               "WHERE :me = ANY(pg_blocking_pids(pid))")
                with db.engine.connect() as c:  # until it has linked or waits for this fold
                    while th.is_alive() and not c.execute(waiting, {"me": me}).scalar():
                        c.rollback()
            return real(s, rows)

        monkeypatch.setattr(conv.E, "loads", loads_then_link)
        assert conv.compact_history(db).folded > 0
        threads[0].join(30)
        assert not threads[0].is_alive() and done[1] > 0  # it linked, before or after
        with db.read() as s:
            seqs = sorted(s.scalars(select(Measurement.chain_seq)
                                    .where(Measurement.chain_seq.is_not(None))))
        assert seqs and seqs == list(range(1, len(seqs) + 1)), "a gap in the chain"
        out = _exp(db, tmp_path)
        code, said = _verify(out, capsys)
        assert code == 0, said
    finally:
        db.close()


# --- an export while rows are linked ---------------------------------------------------------

def test_an_export_verifies_though_rows_are_linked_while_it_is_written(
        any_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    _history(any_db)
    real = export._chain_entries
    linked: list[int] = []

    def racing(s: Session, *a: Any, **kw: Any) -> Any:
        # after the records are read: a round stores a new anomaly of T, another process links
        with any_db.write() as w:
            tid = w.scalar(select(Target.id).where(Target.name == "T"))
            vid = repo.ensure_vantage(w, "vps", "local")
            at = T0 + timedelta(hours=80)
            m = _m("https://t.test/", at, "tls")
            bulk.record(any_db, w, vid, [bulk.Row(m.uid, tid, m.url, at, m.to_json(),
                                                  verdict="tls")], 2)
        linked.append(chain.link(any_db))
        return real(s, *a, **kw)

    monkeypatch.setattr(export, "_chain_entries", racing)
    out = _exp(any_db, tmp_path)
    assert linked[0] > 0
    code, said = _verify(out, capsys)
    assert code == 0, said
    monkeypatch.undo()  # the next export has it, and verifies too
    code, said = _verify(_exp(any_db, tmp_path / "next"), capsys)
    assert code == 0, said
