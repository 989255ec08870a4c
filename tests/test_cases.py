"""The golden case table of the verdict logic: one folder per case in tests/cases/ with the
vantage's and the control's measurement (the stored evidence format, read with
`WebMeasurement.from_json`) and the judgement expected of them, written by hand from what the
technique is. No sockets: `judge` is pure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from blockwatch.analysis.fingerprints import default_interception
from blockwatch.analysis.verdict import VERDICTS, judge
from blockwatch.probe.records import WebMeasurement

CASES = Path(__file__).parent / "cases"
NAMES = sorted(p.name for p in CASES.iterdir() if p.is_dir())


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _measurement(path: Path) -> WebMeasurement | None:
    data = _load(path)
    return None if data is None else WebMeasurement.from_json(data)


@pytest.mark.parametrize("name", NAMES)
def test_case(name: str) -> None:
    folder = CASES / name
    expected = _load(folder / "expected.json")
    ctx = expected.get("context", {})
    asn_table: dict[str, str] = ctx.get("asn", {})
    j = judge(
        _measurement(folder / "vantage.json"),  # type: ignore[arg-type]
        _measurement(folder / "control.json"),
        vantage_ok=ctx.get("vantage_ok", True),
        control_ok=ctx.get("control_ok", True),
        asn=asn_table.get if asn_table else None,
        interception=default_interception().with_block_addresses(ctx.get("block_addresses", [])),
    )
    assert (j.verdict, j.confirmed) == (expected["verdict"], expected["confirmed"]), j.reason
    missing = [w for w in expected["reason_contains"] if w not in j.reason]
    assert not missing, f"reason {j.reason!r} lacks {missing}"


def test_the_table_covers_every_verdict() -> None:
    seen = {_load(CASES / n / "expected.json")["verdict"] for n in NAMES}
    assert seen == set(VERDICTS)
    assert len(NAMES) >= 60


def _within(small: Any, big: Any) -> bool:
    """`small` is `big` with some optional keys left out (evidence stored by older versions)."""
    if isinstance(small, dict):
        return isinstance(big, dict) and all(k in big and _within(v, big[k])
                                             for k, v in small.items())
    if isinstance(small, list):
        return isinstance(big, list) and len(small) == len(big) and all(
            _within(a, b) for a, b in zip(small, big, strict=True))
    return bool(small == big)


@pytest.mark.parametrize("name", NAMES)
def test_case_files_are_the_stored_evidence_format(name: str) -> None:
    """Each measurement reads back to its file: no key the records do not have, no value
    changed."""
    for role in ("vantage", "control"):
        data = _load(CASES / name / f"{role}.json")
        if data is not None:
            assert _within(data, WebMeasurement.from_json(data).to_json())
    expected = _load(CASES / name / "expected.json")
    assert set(expected) <= {"verdict", "confirmed", "reason_contains", "why", "context"}
    assert expected["why"] or (CASES / name / "README.md").exists()
