"""The daily digest: gather a period from the database (`collect`), then compose per recipient.

`queue_digest` is safe to call as often as the daemon likes: it queues today's digest once, when
the configured local time has come (so a daemon that was down at 07:00 sends it on start-up),
and covers the time since the previous digest (no gap, no overlap after downtime).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, exists, select
from sqlalchemy.orm import Session

from blockwatch.alerts import compose as C
from blockwatch.alerts import telegram as tg
from blockwatch.alerts.outbox import enqueue
from blockwatch.alerts.public_names import agent_labels
from blockwatch.alerts.scan import (
    aware,
    case_rows,
    country_agreements,
    event_item,
    event_keys,
    incident_info,
    incident_time,
    usable_at,
    vantage_status,
)
from blockwatch.analysis import display as D
from blockwatch.analysis.display import Schedule
from blockwatch.analysis.verdict import BLOCKING
from blockwatch.config import Config
from blockwatch.coverage import vantage_coverage
from blockwatch.storage import Database
from blockwatch.storage.models import (
    Case,
    Event,
    Feed,
    FeedEntry,
    Incident,
    IncidentReview,
    KeyValue,
    Outbox,
    Target,
    UrlState,
    Vantage,
    Verdict,
)

DIGEST_KEY = "alerts.digest"
MAX_ROWS = 500
MAX_CATCH_UP = timedelta(days=7)


def _active(t: type[Target]) -> ColumnElement[bool]:
    # a URL without a target row still counts; a target removed from the lists does not
    return (t.id.is_(None)) | (t.active.is_(True))


def _blocked_now(s: Session, cfg: Config,
                 until: datetime) -> tuple[tuple[C.BlockedTarget, ...], tuple[C.BlockedTarget, ...]]:
    """Outlets whose confirmed state is a block: (blocked now, last known blocked). A row is
    blocked now only when freshly measured at `until` (the status page's rule, analysis.display);
    an old one (the vantage went silent, or could not look) is listed apart, never as blocked."""
    sched = Schedule.of(cfg)
    q = (select(UrlState, Target, Vantage, Verdict, Event, usable_at(), event_keys())
         .join(Vantage, Vantage.id == UrlState.vantage_id)
         .outerjoin(Target, Target.id == UrlState.target_id)
         .outerjoin(Verdict, Verdict.id == UrlState.last_verdict_id)
         .outerjoin(Event, Event.id == UrlState.event_id)
         .where(UrlState.state.in_(sorted(BLOCKING)), Vantage.kind != "control")
         .where(_active(Target)))
    groups: dict[bool, dict[tuple[str, str], list[C.BlockedVantage]]] = {True: {}, False: {}}
    for st, t, v, verdict, ev, usable, ev_keys in s.execute(q):
        shown = D.classify(st.state, verdict.verdict if verdict else None, aware(st.last_seen_at),
                           aware(usable), until, sched.interval(v.name, v.kind), st.since)
        # the latest verdict says why now, if it still agrees; else the confirming event's reason
        keys = None
        if verdict is not None and verdict.verdict == st.state:
            reason, confirmed, keys = verdict.reason, verdict.confirmed, verdict.reason_keys
        else:
            reason, confirmed, keys = (ev.reason, ev.confirmed, ev_keys) if ev else ("", False,
                                                                                  None)
        key = (t.name if t else st.url, t.country if t else "")
        groups[shown.display == D.BLOCKED].setdefault(key, []).append(C.BlockedVantage(
            vantage=v.name, vantage_country=v.country, url=st.url, state=st.state or "",
            since=st.since, reason=reason, confirmed=confirmed, reason_keys=keys,
            last_usable_at=aware(usable)))

    def targets(g: dict[tuple[str, str], list[C.BlockedVantage]]) -> tuple[C.BlockedTarget, ...]:
        return tuple(C.BlockedTarget(name, country,
                                     tuple(sorted(rows, key=lambda r: (r.vantage, r.url))))
                     for (name, country), rows in sorted(g.items(),
                                                         key=lambda kv: kv[0][0].casefold()))

    return targets(groups[True]), targets(groups[False])


def _with_agreement(s: Session, cfg: Config, blocked: tuple[C.BlockedTarget, ...],
                    now: datetime) -> tuple[C.BlockedTarget, ...]:
    """Each blocked outlet with how many networks per country agree (analysis.quorum)."""
    ids = {n: i for n, i in s.execute(select(Target.name, Target.id))}
    agree = country_agreements(s, cfg, {ids[b.target] for b in blocked if b.target in ids}, now,
                               at_now=True)
    out = []
    for b in blocked:
        tid = ids.get(b.target)
        mine = tuple(a for (t, _), a in sorted(agree.items(), key=lambda kv: kv[0][1])
                     if t == tid)
        out.append(replace(b, agreements=mine))
    return tuple(out)


def _cases(s: Session, since: datetime, until: datetime) -> tuple[C.CaseInfo, ...]:
    q = (case_rows()
         .where(Case.created_at >= since, Case.created_at < until)
         .order_by(Case.created_at, Case.id).limit(MAX_ROWS))
    return tuple(C.CaseInfo(
        target=t.name if t else e.url, country=t.country if t else "",
        types=tuple(inc.types or ()), status=inc.status, state=e.state, vantage=v.name,
        vantage_country=v.country or "", since=e.started_at, title=entry.title,
        link=entry.link, source=feed.name, published=incident_time(entry))
        for _c, inc, entry, feed, e, t, v, _keys in s.execute(q))


def collect(s: Session, cfg: Config, since: datetime, until: datetime) -> C.DigestData:
    began, ended = [], []
    q = (select(Event, Target, Vantage, event_keys())
         .join(Vantage, Vantage.id == Event.vantage_id)
         .outerjoin(Target, Target.id == Event.target_id)
         .where(Event.detected_at >= since, Event.detected_at < until, Vantage.kind != "control")
         .order_by(Event.detected_at, Event.id).limit(MAX_ROWS))
    for e, t, v, keys in s.execute(q):
        kind = C.classify(e.state, e.previous)
        if kind in ("blocked", "down"):
            began.append(event_item(e, t, v, kind, keys))
        elif kind in ("unblocked", "recovered"):
            ended.append(event_item(e, t, v, kind, keys))
    linked = exists().where(Case.incident_id == Incident.id)
    reviewed = exists().where(IncidentReview.entry_id == Incident.entry_id)
    q2 = (select(Incident, FeedEntry, Feed, linked.label("linked"), reviewed.label("reviewed"))
          .join(FeedEntry, FeedEntry.id == Incident.entry_id)
          .join(Feed, Feed.id == FeedEntry.feed_id)
          .where(Incident.created_at >= since, Incident.created_at < until)
          .order_by(Incident.occurred_at, Incident.id).limit(MAX_ROWS))
    incidents = tuple(incident_info(i, en, f, bool(lk), bool(rv))
                      for i, en, f, lk, rv in s.execute(q2))
    configured = cfg.settings.feeds.names
    rows = {f.name: f for f in s.scalars(select(Feed).order_by(Feed.name))}
    # failing: failures in a row, or configured and never fetched successfully
    feeds = tuple(
        C.FeedProblem(name, f.consecutive_failures if f else 0,
                      (f.last_error or "") if f else "", f.last_success_at if f else None)
        for name in sorted(configured | {n for n, f in rows.items() if f.consecutive_failures})
        for f in [rows.get(name)]
        if (not configured or name in configured)
        and (f is None or f.consecutive_failures > 0 or f.last_success_at is None))
    silent = tuple(C.SilentVantage(v.name, v.kind, v.country, v.last_seen_at)
                   for v in vantage_status(s, cfg, until) if v.silent)
    countries = {t.name: t.country for t in s.scalars(select(Target))}
    coverage = tuple(C.VantageCheck(v.name, v.kind, v.country, v.display, v.urls, v.unmeasured,
                                    v.last_usable_at, v.last_attempt_at)
                     for v in vantage_coverage(s, cfg, until))
    blocked, stale_blocked = _blocked_now(s, cfg, until)
    return C.DigestData(since=since, until=until,
                        blocked=_with_agreement(s, cfg, blocked, until),
                        stale_blocked=stale_blocked,
                        began=tuple(began), ended=tuple(ended), incidents=incidents, feeds=feeds,
                        silent=silent, countries=countries, coverage=coverage,
                        feeds_configured=len(configured), cases=_cases(s, since, until))


def languages_in_use(cfg: Config) -> list[str]:
    """The recipients' languages, first-mentioned first; English when nobody is configured."""
    out: list[str] = []
    for r in cfg.settings.alerts.recipient:
        if r.language not in out:
            out.append(r.language)
    return out or ["en"]


def queue_for_recipients(s: Session, cfg: Config, data: C.DigestData, key_prefix: str,
                         now: datetime, *, force: bool) -> list[int]:
    """One digest row per recipient (filtered to their view); `force` sends quiet digests too.
    Returns the ids of the rows written."""
    a = cfg.settings.alerts
    keys = []
    for r in a.recipient:
        if not r.digest:
            continue
        view = C.filter_digest(data, C.Filter.of(r.targets, r.countries, r.verdicts))
        # a quiet day is skipped only when it is a real all-clear: "we could not look" is news
        if view.all_clear and not (force or a.all_clear):
            continue
        msg = C.compose_digest(view, r.language, a.timezone)
        key = C.outbox_key(key_prefix, "email", r.email)
        enqueue(s, key=key, channel="email", destination=r.email, kind="digest",
                subject=msg.subject, now=now,
                payload={"text": msg.text, "html": msg.html, "language": r.language,
                         "message_id": C.message_id(key, a.sender)})
        keys.append(key)
    for chat in a.telegram:  # the same, posted to Telegram chats
        if not chat.digest:
            continue
        view = C.filter_digest(data, C.Filter.of(chat.targets, chat.countries, chat.verdicts))
        if view.all_clear and not (force or a.all_clear):
            continue
        view = C.relabel_digest(view, agent_labels(s, chat.language))  # a chat may be public
        keys += tg.queue(s, chat, kind="digest", key=tg.key(key_prefix, chat), now=now,
                         msg=C.compose_digest(view, chat.language, a.timezone))
    return list(s.scalars(select(Outbox.id).where(Outbox.key.in_(keys)))) if keys else []


def scheduled_time(cfg: Config, now: datetime) -> datetime:
    """Today's digest time (local `digest_at` in `timezone`), as an aware datetime."""
    a = cfg.settings.alerts
    tz = ZoneInfo(a.timezone)
    hh, mm = (int(x) for x in a.digest_at.split(":"))
    return datetime.combine(now.astimezone(tz).date(), time(hh, mm), tzinfo=tz)


def queue_digest_sync(cfg: Config, db: Database, now: datetime | None = None) -> int:
    now = now or datetime.now(UTC)
    due = scheduled_time(cfg, now)
    if now < due:
        return 0
    date = due.date().isoformat()
    with db.write() as s:
        kv = s.get(KeyValue, DIGEST_KEY, with_for_update=True)
        last = dict(kv.value) if kv else {}
        if last.get("date", "") >= date:
            return 0  # today's is queued (or was skipped as quiet) already
        since = now - timedelta(hours=24)
        if last.get("until"):
            prev = datetime.fromisoformat(last["until"])
            if now - MAX_CATCH_UP <= prev < now:
                since = prev
        data = collect(s, cfg, since, now)
        ids = queue_for_recipients(s, cfg, data, f"digest:{date}", now, force=False)
        value = {"date": date, "until": now.isoformat()}
        if kv is None:
            s.add(KeyValue(key=DIGEST_KEY, value=value, updated_at=now))
        else:
            kv.value, kv.updated_at = value, now
        return len(ids)


async def queue_digest(cfg: Config, db: Database, now: datetime | None = None) -> int:
    """The daemon's job: call it every few minutes (and at start-up); it queues the day's digest
    once `digest_at` has passed. Follow it with `deliver_outbox`."""
    return await asyncio.to_thread(queue_digest_sync, cfg, db, now)
