"""An agent is a person in the country measured: an export made without `--include-agent-names`
names it nowhere, not even in the uid the collector stores ("<agent name>/<its uid>"), and still
verifies; its kept records are listed as not checkable against their chain entries (their link
digests cover the stored uid), while every other record is checked as before. SQLite and
PostgreSQL, JSON lines and CSV."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from blockwatch import export
from blockwatch.storage import Database, bulk, repo
from blockwatch.storage.models import Target
from test_export_chain import T0, _m, _rehash, _verify, _write

NAME = "volunteer-aigul"
LABEL = "agent:KZ:AS9198"
URL = "https://t.test/"


def _agent_history(db: Database) -> None:
    """A control row, two blocked measurements of the agent judged against it (kept, so
    chained) and two of a local vantage."""
    with db.write() as s:
        t = Target(name="T", urls=[URL], aliases=[])
        s.add(t)
        s.flush()
        tid = t.id
        cid = repo.ensure_vantage(s, "control", "control")
        aid = repo.ensure_vantage(s, NAME, "agent", "KZ", "AS9198")
        lid = repo.ensure_vantage(s, "vps", "local")
    ctl = dataclasses.replace(_m(URL, T0, "ok"), vantage="control", role="control")
    with db.write() as s:
        control_id = bulk.store_controls(db, s, cid, [bulk.Row(
            ctl.uid, tid, URL, T0, ctl.to_json())], [True])[ctl.uid]
    for h in range(1, 3):
        at = T0 + timedelta(hours=h)
        m = dataclasses.replace(_m(URL, at, "tls"), vantage=NAME, uid=f"abc{h}")
        with db.write() as s:
            bulk.record(db, s, aid, [bulk.Row(f"{NAME}/abc{h}", tid, URL, at, m.to_json(),
                                              verdict="tls", control_id=control_id)], 2)
        m = _m(URL, at, "tls")
        with db.write() as s:
            bulk.record(db, s, lid, [bulk.Row(m.uid, tid, URL, at, m.to_json(), verdict="tls",
                                              control_id=control_id)], 2)


def _export(db: Database, tmp_path: Path, fmt: str, reveal: bool) -> tuple[Path, str]:
    out = tmp_path / f"t.{fmt}"
    export.write_export(db, "T", out, fmt=fmt, since=None, until=None, reveal_agents=reveal)
    texts = [p.read_text(encoding="utf-8") for p in
             (out, out.with_name(out.name + ".manifest.json"),
              out.with_name(out.name + ".chain.json"))]
    return out, "\n".join(texts)


def _records(out: Path, fmt: str) -> list[dict[str, Any]]:
    text = out.read_text(encoding="utf-8")
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(text, newline="")))
    return [json.loads(line) for line in text.splitlines()]


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_a_withheld_agent_name_is_nowhere_and_the_export_verifies(
        any_db: Database, tmp_path: Path, fmt: str, capsys: pytest.CaptureFixture[str]) -> None:
    _agent_history(any_db)
    out, written = _export(any_db, tmp_path, fmt, reveal=False)
    assert NAME not in written and "aigul" not in written
    recs = _records(out, fmt)
    agent = [r for r in recs if r["vantage_kind"] == "agent"]
    assert sorted(r["uid"] for r in agent) == [f"{LABEL}/abc{h}" for h in (1, 2)]
    assert all(r["vantage"] == LABEL and r["chain_seq"] not in (None, "") for r in agent)
    [control] = [r for r in recs if r["role"] == "control"]
    assert {r["control_uid"] for r in agent} == {control["uid"]}  # a control: not masked
    code, said = _verify(out, capsys)
    assert code == 0, said
    assert NAME not in said
    lines = sorted((i + (2 if fmt == "csv" else 1)) for i, r in enumerate(recs)
                   if r["vantage_kind"] == "agent")
    assert ("records not checkable against their chain entries (uids without the agents' "
            f"names; the chain itself is checked): 2 records, lines "
            f"{', '.join(map(str, lines))}") in said
    assert f"chain head of {LABEL}: position 2 " in said


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_names_included_when_asked_and_every_record_checked(
        any_db: Database, tmp_path: Path, fmt: str, capsys: pytest.CaptureFixture[str]) -> None:
    _agent_history(any_db)
    out, written = _export(any_db, tmp_path, fmt, reveal=True)
    agent = [r for r in _records(out, fmt) if r["vantage_kind"] == "agent"]
    assert sorted(r["uid"] for r in agent) == [f"{NAME}/abc{h}" for h in (1, 2)]
    assert all(r["vantage"] == NAME for r in agent)
    assert f'"vantage": "{NAME}"' in written  # chain.json names the chain
    code, said = _verify(out, capsys)
    assert code == 0, said
    assert "not checkable" not in said
    assert f"chain head of {NAME}: position 2 " in said


def test_a_tampered_local_record_still_fails_beside_withheld_agents(
        any_db: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _agent_history(any_db)
    out, _ = _export(any_db, tmp_path, "jsonl", reveal=False)
    lines = out.read_text().splitlines(keepends=True)
    i = next(i for i, line in enumerate(lines) if json.loads(line)["vantage"] == "vps")
    rec = json.loads(lines[i])
    rec["verdict"] = "ok"  # every hash in the file recomputed, the manifest too
    _write(out, [*lines[:i], _rehash(rec), *lines[i + 1:]])
    code, said = _verify(out, capsys)
    assert code == 1 and f"line {i + 1}" in said and "chain entry" in said, said


def test_a_withheld_agent_record_moved_in_time_fails(
        any_db: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """What is left to check of a masked record: its entry's chain value, target and time."""
    _agent_history(any_db)
    out, _ = _export(any_db, tmp_path, "jsonl", reveal=False)
    lines = out.read_text().splitlines(keepends=True)
    i = next(i for i, line in enumerate(lines) if json.loads(line)["vantage"] == LABEL)
    rec = json.loads(lines[i])
    rec["measured_at"] = repo.iso(T0 + timedelta(hours=1, minutes=30))
    _write(out, [*lines[:i], _rehash(rec), *lines[i + 1:]])
    code, said = _verify(out, capsys)
    assert code == 1 and f"line {i + 1}" in said and "chain entry" in said, said


def test_a_local_record_dressed_as_a_withheld_agent_keeps_its_check(
        any_db: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Only a uid in the masked form skips the digest: relabelling a local vantage's record
    (and its chain) as a withheld agent's, its uid left as stored, is still caught."""
    _agent_history(any_db)
    out, _ = _export(any_db, tmp_path, "jsonl", reveal=False)
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    i = next(i for i, r in enumerate(recs) if r["vantage"] == "vps" and r.get("chain_seq"))
    for r in recs:
        if r["vantage"] == "vps":
            r.update(vantage="agent:KZ:AS1", vantage_kind="agent")
    recs[i]["verdict"] = "ok"
    _write(out, [_rehash(r) for r in recs])
    cpath = out.with_name(out.name + ".chain.json")
    c = json.loads(cpath.read_text())
    for vc in c["vantages"]:
        if vc["vantage"] == "vps":
            vc["vantage"] = "agent:KZ:AS1"
    cpath.write_text(json.dumps(c))
    code, said = _verify(out, capsys)
    assert code == 1 and "chain entry" in said, said


def test_public_uid() -> None:
    assert export.public_uid(f"{NAME}/x", NAME, "agent", "KZ", "AS9198",
                             reveal=False) == f"{LABEL}/x"
    assert export.public_uid(f"{NAME}/x", NAME, "agent", "KZ", "AS9198",
                             reveal=True) == f"{NAME}/x"
    assert export.public_uid(f"old-{NAME}-x", NAME, "agent", "", "",
                             reveal=False) == "old-agent:??:AS?-x"
    assert export.public_uid("vps/x", "vps", "local", "", "", reveal=False) == "vps/x"
    assert export.public_uid(None, None, None, "", "", reveal=False) is None


# --- export --target spellings, and a failed export ---------------------------------------------

def test_export_takes_the_target_spellings_verdicts_takes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from blockwatch.cli import main
    from blockwatch.config import load
    from blockwatch.storage import open_database
    from blockwatch.targets import load_targets

    (tmp_path / "t.toml").write_text(
        '[[target]]\nname = "Ratel.kz"\naliases = ["Ратель"]\nurls = ["https://ratel.kz/"]\n')
    cfg = tmp_path / "c.toml"
    cfg.write_text('[storage]\nurl = "sqlite:///bw.db"\n[probe]\ntargets = ["t.toml"]\n')
    c = load(cfg)
    db = open_database(c.database_url)
    with db.write() as s:
        repo.sync_targets(s, load_targets(c.target_files))
    db.close()
    for i, name in enumerate(("ратель", "RATEL.KZ", "https://ratel.kz/", "ratel.kz")):
        out = tmp_path / f"e{i}.jsonl"
        assert main(["--config", str(cfg), "export", "--target", name, "--out", str(out)]) == 0
        manifest = json.loads(out.with_name(out.name + ".manifest.json").read_text())
        assert manifest["target"] == "Ratel.kz", name
    capsys.readouterr()
    assert main(["--config", str(cfg), "export", "--target", "Ratl.kz"]) == 2
    assert "did you mean 'Ratel.kz'" in capsys.readouterr().err


def test_a_failed_export_leaves_no_part_file(any_db: Database, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    _agent_history(any_db)
    out = tmp_path / "exports" / "t.jsonl"
    with pytest.raises(LookupError):  # the records' file is opened before the target is read
        export.write_export(any_db, "NoSuch", out, fmt="jsonl", since=None, until=None)
    assert sorted(p.name for p in out.parent.iterdir()) == []
    export.write_export(any_db, "T", out, fmt="jsonl", since=None, until=None)
    before = {p.name: p.read_bytes() for p in out.parent.iterdir()}
    assert len(before) == 3

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise OSError("disk full")

    monkeypatch.setattr(export, "dumps", broken)  # fails once the records are read
    with pytest.raises(OSError):
        export.write_export(any_db, "T", out, fmt="jsonl", since=None, until=None)
    # nothing half-written, and the earlier export of that path is left whole
    assert {p.name: p.read_bytes() for p in out.parent.iterdir()} == before
