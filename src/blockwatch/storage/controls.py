"""The last control measurement of each URL, for a round that may judge against it instead of
fetching the site again from the control (round.py: only when the vantage's result is plainly
fine and matches it).

It is read from the control's open run (`runs`): the full row that opened the run and the time
of its last repetition, i.e. the last time the control saw that same observable outcome. A
verdict judged against it names that row (`verdicts.control_id`), whose own `measured_at` and
`repeated_until` say when it was measured: never a control measured now."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from blockwatch.probe.records import WebMeasurement
from blockwatch.storage.db import Database
from blockwatch.storage.models import Measurement, Run

CHUNK = 500  # URLs per query (SQLite's limit on bound parameters)
M: Table = Measurement.__table__  # type: ignore[assignment]
R: Table = Run.__table__  # type: ignore[assignment]
# the evidence as the schema holds it: whole in the JSON column, or (where the schema has them)
# as compressed pieces read through storage/evidence.py
PIECES = ("evidence_z", "evidence_refs")


def _evidence_columns() -> list[Any]:
    return [M.c.evidence] + [M.c[n] for n in PIECES if n in M.c]


def _evidence(s: Session, rows: Sequence[Sequence[Any]]) -> list[Any]:
    if len(rows) and len(rows[0]) > 1:
        from blockwatch.storage import evidence  # type: ignore[attr-defined]

        return list(evidence.loads(s, rows))
    return [r[0] for r in rows]


@dataclass(frozen=True)
class CachedControl:
    id: int  # measurements.id of the run's full row
    measured_at: datetime  # when that row's evidence was measured
    last_at: datetime  # the run's last repetition: the control's latest same-outcome measurement
    m: WebMeasurement


def recent_controls(db: Database, control_vantage_id: int, urls: list[str],
                    since: datetime) -> dict[str, CachedControl]:
    """URL -> its control's open run, when that run's last measurement is at `since` or later
    and its evidence is a whole measurement of ours."""
    out: dict[str, CachedControl] = {}
    wanted = sorted(set(urls))
    with db.read() as s:
        for lo in range(0, len(wanted), CHUNK):
            q = (select(R.c.url, R.c.last_at, M.c.id, M.c.measured_at, *_evidence_columns())
                 .join(M, M.c.id == R.c.measurement_id)
                 .where(R.c.vantage_id == control_vantage_id,
                        R.c.url.in_(wanted[lo:lo + CHUNK]), R.c.last_at >= since,
                        M.c.role == "control"))
            rows = s.execute(q).all()
            found = _evidence(s, [r[4:] for r in rows])
            for (url, last_at, mid, at, *_), evidence in zip(rows, found, strict=True):
                if not isinstance(evidence, dict) or "dns" not in evidence:
                    continue  # not a whole record of ours: measured afresh
                try:
                    m = WebMeasurement.from_json(evidence)
                except (TypeError, ValueError):
                    continue
                out[url] = CachedControl(mid, at, last_at, m)
    return out
