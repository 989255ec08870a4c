"""`blockwatch health`: last run and lag of each job, outbox backlog, silent vantages; unhealthy
when a job is overdue by more than two intervals, an alert has been undeliverable for over an
hour, or a vantage has been silent for more than three rounds."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from blockwatch.alerts.outbox import backlog
from blockwatch.config import AgentVantage, Config, LocalVantage, ResolverVantage
from blockwatch.storage import Database, repo
from blockwatch.storage.models import Feed, JobRun, Outbox, UrlState, Vantage


@dataclass
class Health:
    jobs: list[dict[str, Any]] = field(default_factory=list)
    outbox: dict[str, Any] = field(default_factory=dict)
    vantages: list[dict[str, Any]] = field(default_factory=list)
    feeds: list[dict[str, Any]] = field(default_factory=list)  # failing feeds: shown, not unhealthy
    problems: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.problems


def check_health(cfg: Config, db: Database, now: datetime) -> Health:
    h = Health()
    probe_interval = cfg.settings.probe.interval
    with db.read() as s:
        runs = {r.name: r for r in s.scalars(select(JobRun))}
        if not runs:
            h.problems.append("no job has run yet: is `blockwatch run` running?")
        for name, r in sorted(runs.items()):
            secs = repo.get_kv(s, f"job_interval:{name}")
            interval = timedelta(seconds=secs) if secs else None
            last = r.last_finished_at or r.last_started_at
            lag = (now - r.last_ok_at) if r.last_ok_at else None
            overdue = bool(interval and last and now - last > 2 * interval + timedelta(minutes=1))
            h.jobs.append({"job": name, "last_run": repo.iso(r.last_started_at),
                           "last_ok": repo.iso(r.last_ok_at),
                           "lag_s": round(lag.total_seconds()) if lag else None,
                           "interval_s": round(interval.total_seconds()) if interval else None,
                           "error": r.last_error, "overdue": overdue})
            if overdue:
                h.problems.append(f"job {name} is overdue: last ran {repo.iso(last)}, "
                                  f"every {interval}")
        stuck = s.scalar(select(func.count()).select_from(Outbox)
                         .where(Outbox.status.in_(("pending", "sending", "failed")),
                                Outbox.created_at < now - timedelta(hours=1))) or 0
        h.outbox = {**backlog(s, now), "undeliverable_over_1h": stuck}
        if stuck:
            h.problems.append(f"{stuck} alert(s) undeliverable for over an hour")
        # scheduled vantages must report every round; OONI is as sporadic as its volunteers
        expected = {v.name: v.kind for v in cfg.settings.vantage
                    if isinstance(v, LocalVantage | ResolverVantage | AgentVantage)}
        seen = dict(s.execute(select(Vantage.name, func.max(UrlState.last_seen_at))
                              .join(UrlState, UrlState.vantage_id == Vantage.id)
                              .group_by(Vantage.name)).all())
        for name, kind in expected.items():
            last = seen.get(name)
            silent = last is None or now - last > 3 * probe_interval
            h.vantages.append({"vantage": name, "kind": kind, "last_seen": repo.iso(last),
                               "silent": silent})
            if silent and (runs.get("probe") is not None or kind == "agent"):
                h.problems.append(f"vantage {name} ({kind}) silent since {repo.iso(last) or 'ever'}")
        # a dead feed is a visible, harmless failure: listed here, in `feeds` and in the digest
        configured = cfg.settings.feeds.names
        for f in s.scalars(select(Feed).order_by(Feed.name)):
            if f.name in configured:
                h.feeds.append({"feed": f.name, "kind": f.kind, "url": f.url,
                                "last_success": repo.iso(f.last_success_at),
                                "last_attempt": repo.iso(f.last_attempt_at),
                                "consecutive_failures": f.consecutive_failures or 0,
                                "error": f.last_error})
    return h
