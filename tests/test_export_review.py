"""Regressions found by a review of the evidence store, the hash chain and `export --verify`:
`db compact` racing a linker, an export racing a linker, records relabelled to dodge the evidence
check, chain.json's own fields edited, and malformed chain files; SQLite and PostgreSQL where
they differ."""

from __future__ import annotations

import json
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
from test_export_chain import T0, _history, _m, _rehash, _verify, _write


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


# --- what verify checks of chain.json and the records ----------------------------------------

def _chain_file(out: Path) -> tuple[Path, dict[str, Any]]:
    cpath = out.with_name(out.name + ".chain.json")
    return cpath, json.loads(cpath.read_text())


def test_verify_prints_what_it_checked(any_db: Database, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    _history(any_db)
    out = tmp_path / "t.jsonl"
    export.write_export(any_db, "T", out, fmt="jsonl", since=T0 + timedelta(hours=12), until=None)
    code, said = _verify(out, capsys)
    assert code == 0, said
    _, c = _chain_file(out)
    vc = c["vantages"][0]
    first, last = vc["links"][0], vc["links"][-1]
    assert "target T, measured from 2025-03-01T12:00:00Z to the end" in said
    assert (f"chain of vps: positions {first['seq']} to {last['seq']}, from {vc['prev']} "
            f"(before {first['seq']}) to {last['chain']}") in said
    assert "no head given" in said


def test_chain_file_target_edited_to_hide_the_kept_records(any_db: Database, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    _history(any_db)
    out = _exp(any_db, tmp_path)
    lines = out.read_text().splitlines(keepends=True)
    _write(out, [line for line in lines if not json.loads(line).get("chain_seq")])
    cpath, c = _chain_file(out)
    c["target"] = "nothing"
    cpath.write_text(json.dumps(c))
    code, said = _verify(out, capsys)
    assert code == 1 and "target 'nothing' is not the manifest's" in said
    mpath = out.with_name(out.name + ".manifest.json")  # the manifest edited to match
    mpath.write_text(json.dumps({**json.loads(mpath.read_text()), "target": "nothing"}))
    code, said = _verify(out, capsys)
    assert code == 1 and "not of the export's target and period (nothing" in said


def test_chain_file_since_narrowed_to_hide_the_kept_records(any_db: Database, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    _history(any_db)
    out = _exp(any_db, tmp_path)
    lines = out.read_text().splitlines(keepends=True)
    _write(out, [line for line in lines if not json.loads(line).get("chain_seq")])
    for name in (".chain.json", ".manifest.json"):
        p = out.with_name(out.name + name)
        p.write_text(json.dumps({**json.loads(p.read_text()), "since": "2999-01-01T00:00:00Z"}))
    code, said = _verify(out, capsys)
    assert code == 1 and "not of the export's target and period (T, 2999-01-01" in said


def _drop_leading(out: Path) -> None:
    """Cut a chain's entries up to its first of T, and their records; prev set to match."""
    lines = out.read_text().splitlines(keepends=True)
    cpath, c = _chain_file(out)
    v = c["vantages"][0]
    i = next(i for i, e in enumerate(v["links"]) if e["target"] == "T")
    dropped = v["links"][:i + 1]
    v["prev"], v["links"] = dropped[-1]["chain"], v["links"][i + 1:]
    cpath.write_text(json.dumps(c))
    gone = {(v["vantage"], e["seq"]) for e in dropped}
    _write(out, [line for line in lines
                 if (json.loads(line)["vantage"], json.loads(line).get("chain_seq")) not in gone])


def test_leading_kept_records_dropped_with_the_value_before_them(
        any_db: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _history(any_db)
    out = _exp(any_db, tmp_path)  # the whole history: every chain starts at 1
    _drop_leading(out)
    code, said = _verify(out, capsys)
    assert code == 1 and "starts at position" in said and "whole history" in said
    # a period's: the value before the period, kept apart (an earlier export's head), pins it
    out = tmp_path / "p.jsonl"
    export.write_export(any_db, "T", out, fmt="jsonl", since=T0 + timedelta(hours=12), until=None)
    _, c = _chain_file(out)
    before = f"vps:{c['vantages'][0]['links'][0]['seq'] - 1}:{c['vantages'][0]['prev']}"
    code, said = _verify_expecting(out, capsys, before)
    assert code == 0, said
    _drop_leading(out)
    code, said = _verify(out, capsys)
    assert code == 0, said  # alone, a period's export cannot show it
    code, said = _verify_expecting(out, capsys, before)
    assert code == 1 and "outside the positions" in said, said


def _verify_expecting(path: Path, capsys: pytest.CaptureFixture[str], *heads: str) -> tuple[int, str]:
    from blockwatch import cli

    code = cli.main(["export", "--verify", str(path), *(x for h in heads
                                                        for x in ("--expect-head", h))])
    got = capsys.readouterr()
    return code, got.out + got.err


def test_a_kept_record_verdict_changed_and_every_hash_recomputed(
        any_db: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _history(any_db)
    out = _exp(any_db, tmp_path)
    lines = out.read_text().splitlines(keepends=True)
    i = next(i for i, line in enumerate(lines) if json.loads(line).get("verdict") == "tls")
    rec = json.loads(lines[i])
    assert rec.get("chain_seq")
    rec["verdict"], rec["reason"], rec["confirmed"] = "ok", "reachable", False
    _write(out, [*lines[:i], _rehash(rec), *lines[i + 1:]])
    code, said = _verify(out, capsys)
    assert code == 1 and f"line {i + 1}" in said and "chain entry" in said


def test_csv_kept_record_verdict_changed(any_db: Database, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    import hashlib

    _history(any_db)
    out = _exp(any_db, tmp_path, fmt="csv")
    code, said = _verify(out, capsys)
    assert code == 0, said
    data = out.read_text()
    assert ",tls," in data
    data = data.replace(",tls,", ",ok,")
    out.write_text(data)
    mpath = out.with_name(out.name + ".manifest.json")
    man = json.loads(mpath.read_text())
    man.update(sha256=hashlib.sha256(data.encode()).hexdigest(), size=len(data.encode()))
    mpath.write_text(json.dumps(man))
    code, said = _verify(out, capsys)
    assert code == 1 and "chain entry" in said, said


def test_a_kept_record_relabelled_as_an_agent_to_change_its_evidence(
        any_db: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _history(any_db)
    out = _exp(any_db, tmp_path)
    lines = out.read_text().splitlines(keepends=True)
    i = next(i for i, line in enumerate(lines) if json.loads(line).get("verdict") == "tls")
    rec = json.loads(lines[i])
    assert rec.get("chain_seq") and rec["vantage"] == "vps"
    rec["evidence"]["tls"][0]["failure"] = None  # the block erased from the evidence
    rec["vantage_kind"] = "agent"
    rec["record_sha256"] = repo.evidence_hash({k: v for k, v in rec.items() if k != "record_sha256"})
    _write(out, [*lines[:i], json.dumps(rec) + "\n", *lines[i + 1:]])
    code, said = _verify(out, capsys)  # its label is no withheld agent's: evidence checked
    assert code == 1 and f"line {i + 1}" in said and "evidence does not match" in said
    # relabelled too, in the records and chain.json: the chain entry's kind (v2 links) tells
    rec["vantage"] = "agent:KZ:AS1"
    rec["record_sha256"] = repo.evidence_hash({k: v for k, v in rec.items() if k != "record_sha256"})
    relabel = [json.loads(line) for line in lines]
    for r in relabel:
        if r["vantage"] == "vps":
            r["vantage"] = "agent:KZ:AS1"
            r["record_sha256"] = repo.evidence_hash(
                {k: v for k, v in r.items() if k != "record_sha256"})
    relabel[i] = rec
    _write(out, [json.dumps(r) + "\n" for r in relabel])
    cpath, c = _chain_file(out)
    for vc in c["vantages"]:
        if vc["vantage"] == "vps":
            vc["vantage"] = "agent:KZ:AS1"
    cpath.write_text(json.dumps(c))
    code, said = _verify(out, capsys)
    assert code == 1 and f"line {i + 1}" in said and "chain entry" in said


def test_a_withheld_agent_evidence_is_listed_as_not_checked(any_db: Database, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    with any_db.write() as s:
        t = Target(name="T", urls=["https://t.test/"], aliases=[])
        s.add(t)
        s.flush()
        tid = t.id
        vid = repo.ensure_vantage(s, "anna", "agent", "KZ", "AS9198")
    for h in range(3):
        at = T0 + timedelta(hours=h)
        m = _m("https://t.test/", at, "tls")
        with any_db.write() as s:
            bulk.record(any_db, s, vid, [bulk.Row(m.uid, tid, m.url, at, m.to_json(),
                                                  verdict="tls")], 2)
    out = _exp(any_db, tmp_path)
    code, said = _verify(out, capsys)
    assert code == 0, said
    n = len(out.read_text().splitlines())
    assert (f"evidence not checkable (agents exported without their names): {n} records, "
            f"lines {', '.join(str(i) for i in range(1, n + 1))}") in said
    assert "anna" not in out.read_text() + said


def test_expect_head_anchors_the_export(any_db: Database, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    _history(any_db)
    first = _exp(any_db, tmp_path / "a")  # the head kept apart: an earlier export's
    _, c = _chain_file(first)
    vc = next(v for v in c["vantages"] if v["vantage"] == "vps")
    kept = f"vps:{vc['head']['seq']}:{vc['head']['chain']}"
    at = T0 + timedelta(hours=90)  # more is kept and linked since
    with any_db.write() as s:
        tid = s.scalar(select(Target.id).where(Target.name == "T"))
        vid = repo.ensure_vantage(s, "vps", "local")
        m = _m("https://t.test/", at, "dns")
        bulk.record(any_db, s, vid, [bulk.Row(m.uid, tid, m.url, at, m.to_json(),
                                              verdict="dns")], 2)
    out = _exp(any_db, tmp_path / "b")
    code, said = _verify_expecting(out, capsys, kept)
    assert code == 0 and f"anchored at the heads given: vps:{vc['head']['seq']}" in said, said
    # a forger rewrites a kept record before that head and recomputes every hash and link
    lines = out.read_text().splitlines(keepends=True)
    i = next(i for i, line in enumerate(lines) if json.loads(line).get("verdict") == "tls")
    rec = json.loads(lines[i])
    rec["verdict"] = "ok"
    cpath, c = _chain_file(out)
    vc2 = next(v for v in c["vantages"] if v["vantage"] == "vps")
    prev = vc2["prev"]
    for e in vc2["links"]:
        if e["seq"] == rec["chain_seq"]:
            e["digest"] = chain.digest(rec, e["v"])
        e["chain"] = prev = chain.step(prev, e["target"], e["measured_at"], e["digest"], e["v"])
        if e["seq"] == rec["chain_seq"]:
            rec["chain"] = e["chain"]
    vc2["head"]["chain"] = prev
    cpath.write_text(json.dumps(c))
    forged = {(r["vantage"], r.get("chain_seq")): r for r in map(json.loads, lines)}
    for e in vc2["links"]:
        r = forged.get(("vps", e["seq"]))
        if r is not None:
            r["chain"] = e["chain"]
    forged[("vps", rec["chain_seq"])] = {**rec, "chain": rec["chain"]}
    new = []
    for line in lines:
        r = json.loads(line)
        r = forged.get((r["vantage"], r.get("chain_seq")), r) if r.get("chain_seq") else r
        r["record_sha256"] = repo.evidence_hash({k: v for k, v in r.items() if k != "record_sha256"})
        new.append(json.dumps(r) + "\n")
    _write(out, new)
    code, said = _verify(out, capsys)
    assert code == 0, said  # with the export alone: no signature, it cannot tell
    code, said = _verify_expecting(out, capsys, kept)
    assert code == 1 and "another hash at that position" in said, said
    code, said = _verify_expecting(out, capsys, "vps:999:" + "0" * 64)
    assert code == 1 and "outside the positions" in said
    code, said = _verify_expecting(out, capsys, "vps:twelve:abc")
    assert code == 1 and "not VANTAGE:SEQ:HASH" in said


def test_v1_links_stored_before_still_verify_beside_v2(any_db: Database, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    _history(any_db)
    with monkeypatch.context() as mp:  # linked as the code before v2 did
        mp.setattr(chain, "version", lambda *_: 1)
        assert chain.link(any_db) > 0
    with any_db.write() as s:
        repo.set_kv(s, chain.V2_KEY, None)
    at = T0 + timedelta(hours=90)
    with any_db.write() as s:
        tid = s.scalar(select(Target.id).where(Target.name == "T"))
        vid = repo.ensure_vantage(s, "vps", "local")
        m = _m("https://t.test/", at, "dns")
        bulk.record(any_db, s, vid, [bulk.Row(m.uid, tid, m.url, at, m.to_json(),
                                              verdict="dns")], 2)
    out = _exp(any_db, tmp_path)
    _, c = _chain_file(out)
    vs = [e["v"] for e in next(v for v in c["vantages"] if v["vantage"] == "vps")["links"]]
    assert vs[0] == 1 and vs[-1] == 2 and vs == sorted(vs)
    code, said = _verify(out, capsys)
    assert code == 0, said
    lines = out.read_text().splitlines(keepends=True)  # the v2 one's verdict changed shows
    i = max(i for i, line in enumerate(lines) if json.loads(line).get("verdict") == "dns")
    rec = json.loads(lines[i])
    rec["verdict"] = "ok"
    _write(out, [*lines[:i], _rehash(rec), *lines[i + 1:]])
    code, said = _verify(out, capsys)
    assert code == 1 and "chain entry" in said


@pytest.mark.parametrize(("chains", "said"), [
    ([], "t.jsonl.chain.json: not a JSON object"),
    ({"vantages": {}}, "t.jsonl.chain.json: vantages: not a list"),
    ({"vantages": [{"vantage": "vps", "links": [{"seq": None}]}]},
     "t.jsonl.chain.json: vantages[0].links[0].seq: not a positive integer (None)"),
    ({"vantages": [{"vantage": "vps", "links": [{"seq": 1, "v": 7, "digest": "", "chain": ""}]}]},
     "vantages[0].links[0].v: not a known link format (7)"),
])
def test_a_malformed_chain_file_is_a_clear_error(any_db: Database, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str],
                                                 chains: Any, said: str) -> None:
    _history(any_db)
    out = _exp(any_db, tmp_path)
    out.with_name(out.name + ".chain.json").write_text(json.dumps(chains))
    code, text_ = _verify(out, capsys)
    assert code == 1 and said in text_ and "Traceback" not in text_
