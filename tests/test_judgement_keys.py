"""Judgement.keys() reads its fields directly (asdict's deep copy was most of the cost of judging
an upload): the same keys as the dataclass's own conversion, for every golden case."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import pytest

from blockwatch.analysis.fingerprints import default_interception
from blockwatch.analysis.verdict import Judgement, judge
from test_cases import CASES, NAMES, _load, _measurement


def _reference(j: Judgement) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in asdict(j).items():
        if name in ("verdict", "confirmed", "reason") or value in (None, (), ""):
            continue
        out[name] = dict(value) if name == "networks" else \
            list(value) if isinstance(value, tuple) else value
    return out


@pytest.mark.parametrize("name", NAMES)
def test_keys_are_the_fields_that_are_set(name: str) -> None:
    folder = CASES / name
    ctx = _load(folder / "expected.json").get("context", {})
    table: dict[str, str] = ctx.get("asn", {})
    j = judge(_measurement(folder / "vantage.json"),  # type: ignore[arg-type]
              _measurement(folder / "control.json"),
              vantage_ok=ctx.get("vantage_ok", True), control_ok=ctx.get("control_ok", True),
              asn=table.get if table else None,
              interception=default_interception().with_block_addresses(
                  ctx.get("block_addresses", [])))
    assert j.keys() == _reference(j)


def test_keys_keep_a_zero_and_leave_out_empty_values() -> None:
    j = Judgement("http", False, why="x", hop_index=0, networks=(("192.0.2.1", "AS1 X"),),
                  host="", fingerprints=())
    assert j.keys() == _reference(j) == {"why": "x", "hop_index": 0,
                                         "networks": {"192.0.2.1": "AS1 X"}}
