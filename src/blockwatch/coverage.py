"""What each configured vantage has measured lately: its URLs classified by
`analysis.display.classify` (the same rule as the status site), summed up per vantage. The digest
and `blockwatch health` read this to tell "nothing blocked" from "nothing measured"."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from blockwatch.analysis import display as D
from blockwatch.storage.models import Target, UrlState, Vantage, Verdict

MEASURED = "measured"  # every URL freshly measured (OONI: some URL freshly measured)
PARTIAL = "partial"  # some URLs measured, some not
# otherwise one of D.NOT_MEASURED, D.STALE, D.NO_DATA
LISTED_KINDS = frozenset({"local", "resolver", "agent"})  # measure every active outlet's URLs


@dataclass(frozen=True)
class VantageCoverage:
    name: str
    kind: str
    country: str
    display: str  # MEASURED, PARTIAL, D.NOT_MEASURED, D.STALE or D.NO_DATA
    urls: int
    unmeasured: int  # URLs not freshly measured (not measured, stale or no data)
    last_usable_at: datetime | None
    last_attempt_at: datetime | None
    interval: timedelta
    counts: dict[str, int] = field(default_factory=dict)  # URLs per display state

    @property
    def ok(self) -> bool:
        return self.display == MEASURED


def _aware(dt: Any) -> datetime | None:
    if dt is None:
        return None
    if isinstance(dt, str):
        dt = datetime.fromisoformat(dt)
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def summarise(name: str, kind: str, country: str, shown: list[D.Shown],
              attempts: list[datetime], interval: timedelta, now: datetime) -> VantageCoverage:
    """Pure: one vantage's URLs (their `Shown`) into one word."""
    counts: dict[str, int] = defaultdict(int)
    for s in shown:
        counts[s.display] += 1
    usable = [s.measured_at for s in shown if s.measured_at is not None]
    last_usable = max(usable) if usable else None
    last_attempt = max(attempts) if attempts else None
    limit = D.fresh_limit(interval)
    # freshly and usably measured, confirmed or not yet (the first rounds confirm nothing)
    measured = sum(1 for s in shown if s.display not in (D.NOT_MEASURED, D.STALE)
                   and s.measured_at is not None and now - s.measured_at <= limit)
    unmeasured = len(shown) - measured
    if not shown or last_attempt is None:
        display = D.NO_DATA
    elif now - last_attempt > limit:
        display = D.STALE
    elif measured == 0:
        display = D.NOT_MEASURED if counts[D.NOT_MEASURED] or not counts[D.NO_DATA] else D.NO_DATA
    elif unmeasured and kind != "ooni":
        display = PARTIAL  # OONI tests some URLs some days: that is its normal
    else:
        display = MEASURED
    return VantageCoverage(name, kind, country, display, len(shown), unmeasured, last_usable,
                           last_attempt, interval, dict(counts))


def vantage_coverage(s: Session, cfg: Any, now: datetime) -> list[VantageCoverage]:
    """Every configured vantage (OONI rows are "<name>:<ASN>"), active targets' URLs only."""
    schedule = D.Schedule.of(cfg)
    uv = aliased(Verdict)
    usable = (select(func.coalesce(uv.repeated_until, uv.measured_at))  # a run's last
              .where(uv.url == UrlState.url, uv.vantage_id == UrlState.vantage_id,
                     uv.verdict != "inconclusive")
              .order_by(uv.measured_at.desc()).limit(1)
              .correlate(UrlState).scalar_subquery())
    q = (select(Vantage.name, UrlState.url, UrlState.state, UrlState.since, Verdict.verdict,
                UrlState.last_seen_at, usable)
         .join(Vantage, Vantage.id == UrlState.vantage_id)
         .outerjoin(Target, Target.id == UrlState.target_id)
         .outerjoin(Verdict, Verdict.id == UrlState.last_verdict_id)
         .where(Vantage.kind != "control")
         .where(Target.id.is_(None) | Target.active.is_(True)))
    rows: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for name, url, state, since, verdict, seen, use in s.execute(q):
        rows[name].append((url, state, since, verdict, _aware(seen), _aware(use)))
    # every active outlet's URL: what the daemon's own vantages and the agents are to measure
    # (OONI tests what its volunteers happen to test, so it is not held to the list)
    expected = {u for urls in s.scalars(select(Target.urls).where(Target.active.is_(True)))
                for u in (urls or [])}
    out = []
    for v in cfg.settings.vantage:
        mine = [r for n, rs in rows.items() if n == v.name or n.startswith(v.name + ":")
                for r in rs]
        interval = schedule.interval(v.name, v.kind)
        shown = [D.classify(state, verdict, seen, use, now, interval, since)
                 for _, state, since, verdict, seen, use in mine]
        if v.kind in LISTED_KINDS:  # a URL it never measured is not measured, not fine
            shown += [D.Shown(D.NO_DATA, None, None, None)
                      for _ in expected - {r[0] for r in mine}]
        attempts = [seen for *_, seen, _ in mine if seen is not None]
        out.append(summarise(v.name, v.kind, v.country, shown, attempts, interval, now))
    return out
