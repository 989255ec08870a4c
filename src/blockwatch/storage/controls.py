"""The last control measurement of each URL, for a round that may judge against it instead of
fetching the site again from the control (round.py: only when the vantage's result is plainly
fine and matches it).

It is read from the control's open run (`runs`): the full row that opened the run and the time
of its last repetition, i.e. the last time the control saw that same observable outcome. A
verdict judged against it names that row (`verdicts.control_id`), whose own `measured_at` and
`repeated_until` say when it was measured: never a control measured now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Table, select

from blockwatch.probe.records import WebMeasurement
from blockwatch.storage import evidence
from blockwatch.storage.db import Database
from blockwatch.storage.models import Measurement, Run

CHUNK = 500  # URLs per query (SQLite's limit on bound parameters)
M: Table = Measurement.__table__  # type: ignore[assignment]
R: Table = Run.__table__  # type: ignore[assignment]


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
            q = (select(R.c.url, R.c.last_at, M.c.id, M.c.measured_at,
                        *evidence.columns())
                 .join(M, M.c.id == R.c.measurement_id)
                 .where(R.c.vantage_id == control_vantage_id,
                        R.c.url.in_(wanted[lo:lo + CHUNK]), R.c.last_at >= since,
                        M.c.role == "control"))
            rows = s.execute(q).all()
            found = evidence.loads(s, [r[4:] for r in rows])
            for (url, last_at, mid, at, *_), data in zip(rows, found, strict=True):
                if not isinstance(data, dict) or "dns" not in data:
                    continue  # not a whole record of ours: measured afresh
                try:
                    m = WebMeasurement.from_json(data)
                except (TypeError, ValueError):
                    continue
                out[url] = CachedControl(mid, at, last_at, m)
    return out
