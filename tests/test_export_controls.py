"""An export by period holds every control its verdicts name: a verdict judged against an earlier
round's control (control_reuse) names that control's row, which can lie before the period; the
export writes it too, and `export --verify` fails when a named control has no record."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from blockwatch import cli, export
from blockwatch.context import build_context
from blockwatch.round import run_round
from blockwatch.storage import Database, repo
from blockwatch.targets import load_targets
from lab import Lab
from test_check_lab import ARTICLE, scenario


def _verify(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = cli.main(["export", "--verify", str(path)])
    out = capsys.readouterr()
    return code, out.out + out.err


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
async def test_a_period_export_holds_the_earlier_control_a_verdict_names(
        lab: Lab, tmp_path: Path, any_db: Database, fmt: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    await lab.add_site("ratel.test", body=ARTICLE)
    cfg = await scenario(lab, tmp_path, canary=False)
    targets, ctx = load_targets(cfg.target_files), build_context(cfg, asn=None)
    [first] = (await run_round(cfg, targets, any_db, context=ctx)).results
    [second] = (await run_round(cfg, targets, any_db, context=ctx)).results
    # the second round's verdict made the event (stored whole and kept) against the first
    # round's control, measured before the period exported below
    assert second.control_reused and second.event == "new -> ok"
    since = repo.parse_time(second.measured_at)
    assert repo.parse_time(first.control_measured_at or "") < since

    out = tmp_path / f"ratel.{fmt}"
    res = export.write_export(any_db, "Ratel.kz", out, fmt=fmt, since=since, until=None)
    code, text = _verify(out, capsys)
    assert code == 0, text
    if fmt == "csv":
        import csv

        with out.open(encoding="utf-8", newline="") as f:
            recs = list(csv.DictReader(f))
    else:
        recs = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    [verdict] = [r for r in recs if r["role"] == "vantage"]
    [control] = [r for r in recs if r["role"] == "control"]
    assert res.records == 2 and verdict["control_uid"] == control["uid"]
    evidence = control["evidence"] if fmt == "jsonl" else json.loads(control["evidence"])
    assert evidence["measured_at"] == first.control_measured_at  # before the period
    assert control["chain_seq"] not in (None, "")  # kept, and chained

    # without it the export does not verify, even with the manifest made to match
    lines = out.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [line for line in lines if not (line.startswith(control["uid"]) if fmt == "csv"
                                           else json.loads(line)["uid"] == control["uid"])]
    assert len(kept) == len(lines) - 1
    data = "".join(kept).encode()
    out.write_bytes(data)
    mpath = out.with_name(out.name + ".manifest.json")
    man = json.loads(mpath.read_text(encoding="utf-8"))
    man.update(sha256=hashlib.sha256(data).hexdigest(), size=len(data), records=res.records - 1)
    mpath.write_text(json.dumps(man), encoding="utf-8")
    code, text = _verify(out, capsys)
    assert code == 1 and control["uid"] in text and "missing" in text, text
