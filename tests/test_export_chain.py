"""The hash chain of kept evidence (storage/chain.py) and `blockwatch export --verify`: an export
verifies offline; removing or changing one kept record makes it fail, naming the record, even
when the manifest is rewritten to match; on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from blockwatch import cli, export
from blockwatch.probe.records import DnsQuery, HttpResult, TlsHandshake, WebMeasurement
from blockwatch.storage import Database, bulk, chain, repo
from blockwatch.storage.models import Measurement, Target
from blockwatch.textsafe import canonical_json

T0 = datetime(2025, 3, 1, tzinfo=UTC)


def _m(url: str, at: datetime, verdict: str) -> WebMeasurement:
    host = url.split("/")[2]
    blocked = verdict != "ok"
    return WebMeasurement(
        url=url, vantage="vps", role="vantage", uid=uuid.uuid4().hex, measured_at=repo.iso(at) or "",
        dns=[DnsQuery("system", "udp", host, "A", "NOERROR", ["192.0.2.1"])],
        tls=[TlsHandshake("192.0.2.1", 443, host, failure="connection_reset" if blocked else None)],
        http=None if blocked else HttpResult(final_url=url, status=200, title=f"{host} {at.hour}"))


def _history(db: Database) -> None:
    """Two targets measured by two vantages every 3 hours for 3 days: T blocked on day 1 at
    "vps", U flapping; their kept rows interleave in each vantage's chain."""
    with db.write() as s:
        ts = [Target(name=n, urls=[f"https://{n.lower()}.test/"], aliases=[]) for n in "TU"]
        s.add_all(ts)
        s.flush()
        tids = {t.name: t.id for t in ts}
        vids = [repo.ensure_vantage(s, n, "local") for n in ("vps", "vps2")]
    for h in range(0, 72, 3):
        at = T0 + timedelta(hours=h)
        for vid in vids:
            rows = []
            for name in "TU":
                verdict = ("tls" if name == "T" and 24 <= h < 48 and vid == vids[0]
                           else "dns" if name == "U" and h % 12 == 0 else "ok")
                m = _m(f"https://{name.lower()}.test/", at, verdict)
                rows.append(bulk.Row(m.uid, tids[name], m.url, at, m.to_json(), verdict=verdict))
            with db.write() as s:
                bulk.record(db, s, vid, rows, 2)


def _write(path: Path, lines: list[str]) -> None:
    """The file rewritten and its manifest made to match (as a careful forger would)."""
    data = "".join(lines).encode()
    path.write_bytes(data)
    mpath = path.with_name(path.name + ".manifest.json")
    man = json.loads(mpath.read_text())
    man.update(sha256=hashlib.sha256(data).hexdigest(), size=len(data), records=len(lines))
    mpath.write_text(json.dumps(man))


def _rehash(rec: dict[str, Any]) -> str:
    rec["evidence_sha256"] = hashlib.sha256(canonical_json(rec["evidence"]).encode()).hexdigest()
    rec["record_sha256"] = repo.evidence_hash({k: v for k, v in rec.items() if k != "record_sha256"})
    return json.dumps(rec, sort_keys=True, ensure_ascii=False) + "\n"


def _verify(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = cli.main(["export", "--verify", str(path)])
    out = capsys.readouterr()
    return code, out.out + out.err


def test_kept_rows_are_chained_per_vantage(any_db: Database) -> None:
    _history(any_db)
    assert chain.link(any_db) > 0
    assert chain.link(any_db) == 0  # all linked
    with any_db.read() as s:
        rows = s.execute(select(Measurement.vantage_id, Measurement.chain_seq, Measurement.chain,
                                Measurement.keep).order_by(Measurement.vantage_id,
                                                           Measurement.chain_seq)).all()
    chained = [r for r in rows if r.chain_seq is not None]
    assert all(r.keep for r in chained) and all(r.chain_seq is not None for r in rows if r.keep)
    for vid in {r.vantage_id for r in chained}:
        assert [r.chain_seq for r in chained if r.vantage_id == vid] == list(
            range(1, 1 + sum(1 for r in chained if r.vantage_id == vid)))


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_an_export_verifies_offline(any_db: Database, tmp_path: Path, fmt: str,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    _history(any_db)
    out = tmp_path / f"t.{fmt}"
    res = export.write_export(any_db, "T", out, fmt=fmt, since=T0 + timedelta(hours=12),
                              until=T0 + timedelta(hours=60))
    assert res.chain is not None and res.chain.is_file()
    chains = json.loads(res.chain.read_text())
    # vps2 kept no record of T in the period (its only one: the first state, before)
    assert [v["vantage"] for v in chains["vantages"]] == ["vps"]
    assert any(e["target"] == "U" for v in chains["vantages"] for e in v["links"])  # interleaved
    code, text = _verify(out, capsys)
    assert code == 0, text
    assert "verified" in text and "chain head of vps" in text


def test_removing_a_kept_record_fails_verification(any_db: Database, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    _history(any_db)
    out = tmp_path / "t.jsonl"
    export.write_export(any_db, "T", out, fmt="jsonl", since=None, until=None)
    lines = out.read_text().splitlines(keepends=True)
    kept = [i for i, line in enumerate(lines) if json.loads(line).get("chain_seq")]
    assert len(kept) >= 3
    gone = json.loads(lines[kept[1]])
    _write(out, lines[:kept[1]] + lines[kept[1] + 1:])
    code, text = _verify(out, capsys)
    assert code == 1
    assert f"position {gone['chain_seq']} of {gone['vantage']}" in text and "missing" in text


def test_changing_a_kept_record_fails_verification(any_db: Database, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    _history(any_db)
    out = tmp_path / "t.jsonl"
    export.write_export(any_db, "T", out, fmt="jsonl", since=None, until=None)
    lines = out.read_text().splitlines(keepends=True)
    i = next(i for i, line in enumerate(lines) if json.loads(line).get("verdict") == "tls")
    rec = json.loads(lines[i])
    # the evidence alone changed: its own hash no longer matches
    rec["evidence"]["tls"][0]["failure"] = None
    _write(out, [*lines[:i], json.dumps(rec, sort_keys=True) + "\n", *lines[i + 1:]])
    code, text = _verify(out, capsys)
    assert code == 1 and f"line {i + 1} (uid {rec['uid']})" in text and "evidence" in text
    # every hash in the file recomputed: the chain still tells
    _write(out, [*lines[:i], _rehash(rec), *lines[i + 1:]])
    code, text = _verify(out, capsys)
    assert code == 1 and f"line {i + 1} (uid {rec['uid']})" in text and "chain entry" in text
    # and the untouched export verifies
    _write(out, lines)
    assert _verify(out, capsys)[0] == 0


def test_a_chain_entry_changed_breaks_the_chain(any_db: Database, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    _history(any_db)
    out = tmp_path / "t.jsonl"
    export.write_export(any_db, "T", out, fmt="jsonl", since=None, until=None)
    cpath = out.with_name(out.name + ".chain.json")
    chains = json.loads(cpath.read_text())
    entry = next(e for e in chains["vantages"][0]["links"] if e["target"] == "T")
    entry["target"] = "U"  # hide a record of T
    cpath.write_text(json.dumps(chains))
    code, text = _verify(out, capsys)
    assert code == 1 and "breaks at position" in text


def test_verify_needs_no_config_and_says_what_is_missing(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "nothing.jsonl"
    out.write_text("")
    code, text = _verify(out, capsys)
    assert code == 1 and "manifest.json: missing" in text


def test_a_database_that_cannot_be_written_still_exports(any_db: Database, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from sqlalchemy.exc import OperationalError

    _history(any_db)

    def read_only(db: Database, **_: Any) -> int:
        raise OperationalError("UPDATE measurements", {}, Exception("attempt to write a readonly database"))

    monkeypatch.setattr(chain, "link", read_only)
    out = tmp_path / "t.jsonl"
    res = export.write_export(any_db, "T", out, fmt="jsonl", since=None, until=None)
    assert res.records > 0
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    assert not any("chain_seq" in r for r in recs)  # nothing was linked: no chain claimed
    assert _verify(out, capsys)[0] == 0
