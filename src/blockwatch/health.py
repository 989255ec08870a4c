"""`blockwatch health`: last run and lag of each job, outbox backlog, what each vantage measured;
unhealthy when a job is overdue by more than two intervals or keeps failing, an alert has been
undeliverable for over an hour, a vantage has been silent for more than three rounds, or a
vantage has had no usable measurement for two intervals or at all since it began measuring: either
its checks ran and were inconclusive, or no check ran at all since its last usable one ("quiet":
said as not measuring, never as inconclusive). Usable and fresh are judged as on the status
page (analysis/display.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from blockwatch import dbstats, redact
from blockwatch.alerts.outbox import backlog
from blockwatch.analysis.display import fresh_limit
from blockwatch.config import AgentVantage, Config, LocalVantage, ResolverVantage
from blockwatch.coverage import vantage_coverage
from blockwatch.durations import format_duration
from blockwatch.storage import Database, repo
from blockwatch.storage.models import Feed, JobRun, Outbox, UrlState, Vantage


@dataclass
class Health:
    jobs: list[dict[str, Any]] = field(default_factory=list)
    outbox: dict[str, Any] = field(default_factory=dict)
    vantages: list[dict[str, Any]] = field(default_factory=list)
    feeds: list[dict[str, Any]] = field(default_factory=list)  # failing feeds: shown, not unhealthy
    problems: list[str] = field(default_factory=list)
    storage: dict[str, Any] = field(default_factory=dict)  # size and growth (dbstats.brief)

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
                           "error": _shown(r.last_error) if r.last_error else None,
                           "overdue": overdue})
            # keeps failing: the last run failed, and no success within two intervals (or
            # none ever, after more than one run)
            failing = bool(r.last_error) and (
                (r.last_ok_at is None and (r.runs or 0) > 1)
                or bool(interval and r.last_ok_at and now - r.last_ok_at > 2 * interval))
            h.jobs[-1]["failing"] = failing
            if overdue:
                h.problems.append(f"job {name} is overdue: last ran {repo.iso(last)}, "
                                  f"every {format_duration(interval)}")
            if failing:
                h.problems.append(f"job {name} keeps failing: last success "
                                  f"{repo.iso(r.last_ok_at) or 'never'}, last error: "
                                  f"{_shown(r.last_error)[:200]}")
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
        coverage = {c.name: c for c in vantage_coverage(s, cfg, now)}
        for name, kind in expected.items():
            last = seen.get(name)
            silent = last is None or now - last > 3 * probe_interval
            c = coverage[name]
            # attempts, but none usable lately (or ever): its own network or the control fails
            not_measuring = c.last_attempt_at is not None and (
                c.last_usable_at is None or now - c.last_usable_at > fresh_limit(c.interval))
            # ...or no check at all lately, its last ones usable: quiet, not inconclusive
            quiet = (not_measuring and c.last_usable_at is not None
                     and c.last_attempt_at is not None
                     and c.last_attempt_at <= c.last_usable_at)
            h.vantages.append({"vantage": name, "kind": kind, "last_seen": repo.iso(last),
                               "last_usable": repo.iso(c.last_usable_at), "display": c.display,
                               "urls": c.urls, "unmeasured": c.unmeasured,
                               "silent": silent, "not_measuring": not_measuring,
                               "quiet": quiet})
            if silent and (runs.get("probe") is not None or kind == "agent"):
                h.problems.append(f"vantage {name} ({kind}) silent since {repo.iso(last) or 'ever'}")
            elif not_measuring and c.last_usable_at is None:
                h.problems.append(f"vantage {name} ({kind}) has no usable measurement since it "
                                  f"began measuring: every result is inconclusive (its network "
                                  f"or the control cannot reach anything)")
            elif quiet:
                h.problems.append(f"vantage {name} ({kind}) has run no check since "
                                  f"{repo.iso(c.last_attempt_at)} (more than two intervals): "
                                  f"it is not measuring; its last results were usable")
            elif not_measuring:
                h.problems.append(f"vantage {name} ({kind}) has had no usable measurement since "
                                  f"{repo.iso(c.last_usable_at)} (more than two intervals): "
                                  f"its results are inconclusive")
        # a dead feed is a visible, harmless failure: listed here, in `feeds` and in the digest
        rows = {f.name: f for f in s.scalars(select(Feed))}
        for name in sorted(cfg.settings.feeds.names):
            f = rows.get(name)
            fails = (f.consecutive_failures or 0) if f else 0
            status = "failing" if fails else ("ok" if f and f.last_success_at else "never fetched")
            h.feeds.append({"feed": name, "kind": f.kind if f else None, "status": status,
                            "last_success": repo.iso(f.last_success_at) if f else None,
                            "last_attempt": repo.iso(f.last_attempt_at) if f else None,
                            "consecutive_failures": fails,
                            "error": _shown(f.last_error) if f and f.last_error else None})
    h.storage = dbstats.brief(db, now)
    return h


def _shown(error: str | None) -> str:
    """A stored error as health may print it: a job's error was recorded before every secret of
    today's config was known (or by an older version), so scrub it again on the way out."""
    return redact.scrub(error or "")
