"""Find what is new (events, cases, silent vantages) and turn it into outbox rows.

Restart safety: a cursor in the `kv` table (the last event id and case id handled) moves in the
same transaction that writes the outbox rows, so after a crash either both happened or neither.
On PostgreSQL ids can become visible out of order (a transaction that took id 11 commits after
the one that took id 12): ids skipped below the cursor are remembered as gaps for GAP_TTL and
picked up if they appear.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session, aliased

from blockwatch.alerts import compose as C
from blockwatch.alerts import telegram as tg
from blockwatch.alerts.outbox import enqueue
from blockwatch.alerts.public_names import agent_labels
from blockwatch.alerts.webhook import hook_id
from blockwatch.analysis import display as D
from blockwatch.analysis import quorum as Q
from blockwatch.analysis.display import Schedule
from blockwatch.config import AgentVantage, Config, OoniVantage
from blockwatch.feeds.correlate import BLOCKING_STATES
from blockwatch.storage import Database
from blockwatch.storage.models import (
    Case,
    Event,
    Feed,
    FeedEntry,
    Incident,
    KeyValue,
    Target,
    UrlState,
    Vantage,
    Verdict,
)

CURSOR_KEY = "alerts.cursor"
GAP_TTL = timedelta(hours=1)  # no transaction stays open this long
MAX_GAPS = 1000
BATCH = 1000
FIRST_RUN_HORIZON = timedelta(hours=24)  # on first run, older events are history, not alerts


def utcnow() -> datetime:
    return datetime.now(UTC)


# --- rows -> records ---------------------------------------------------------------------------

def event_item(e: Event, target: Target | None, vantage: Vantage, kind: str,
               keys: dict[str, Any] | None = None) -> C.AlertItem:
    """`keys`: the reason keys of the verdict that opened the event (`event_keys()` joins them),
    so the reason reads in each recipient's language."""
    return C.AlertItem(kind=kind, ref=f"e{e.id}", at=e.started_at, detected_at=e.detected_at,
                       target=target.name if target else "", country=target.country if target
                       else "", vantage=vantage.name, vantage_country=vantage.country, url=e.url,
                       state=e.state, previous=e.previous, reason=e.reason,
                       confirmed=e.confirmed, reason_keys=keys)


def event_keys() -> Any:
    """The reason keys of an event's opening verdict, as a column to select beside the event
    (None for rows stored before keys, or whose verdict is gone)."""
    return (select(Verdict.reason_keys).where(Verdict.id == Event.verdict_id)
            .correlate(Event).scalar_subquery())


def incident_info(inc: Incident, entry: FeedEntry, feed: Feed, linked: bool,
                  reviewed: bool = False) -> C.IncidentInfo:
    return C.IncidentInfo(title=entry.title, link=entry.link, source=feed.name,
                          types=tuple(inc.types or ()), outlets=tuple(inc.outlets or ()),
                          occurred_at=inc.occurred_at, linked=linked, status=inc.status,
                          entry=entry.id, reviewed=reviewed)


def silent_after(cfg: Config, v: Any) -> timedelta:
    """How long a vantage may stay quiet before it counts as silent: three rounds, and for OONI
    (whose public data arrives hours late) at least two days."""
    if isinstance(v, OoniVantage):
        return max(3 * v.interval, timedelta(days=2))
    return 3 * cfg.settings.probe.interval + timedelta(minutes=5)


@dataclass(frozen=True)
class VantageSeen:
    name: str
    kind: str
    country: str
    last_seen_at: datetime | None
    silent: bool
    since: datetime | None  # when it became silent


def vantage_status(s: Session, cfg: Config, now: datetime) -> list[VantageSeen]:
    """Configured vantages with their last sighting. OONI rows are named "<name>:<ASN>"."""
    seen: dict[str, datetime] = {}
    for name, t in s.execute(select(Vantage.name, Vantage.last_seen_at)):
        if t is not None:
            seen[name] = max(t, seen.get(name, t))
    q = (select(Vantage.name, func.max(UrlState.last_seen_at))
         .join(UrlState, UrlState.vantage_id == Vantage.id).group_by(Vantage.name))
    for name, t in s.execute(q):
        if t is not None:
            t = t if t.tzinfo else t.replace(tzinfo=UTC)  # aggregates bypass the TypeDecorator
            seen[name] = max(t, seen.get(name, t))
    out = []
    for v in cfg.settings.vantage:
        times = [t for n, t in seen.items() if n == v.name or n.startswith(v.name + ":")]
        last = max(times) if times else None
        limit = silent_after(cfg, v)
        silent = last is not None and now - last > limit
        out.append(VantageSeen(v.name, v.kind, v.country, last, silent,
                               last + limit if silent and last else None))
    return out


# --- the cursor --------------------------------------------------------------------------------

@dataclass
class Cursor:
    event: int = 0
    case: int = 0
    event_gaps: dict[int, datetime] = field(default_factory=dict)
    case_gaps: dict[int, datetime] = field(default_factory=dict)
    silent: list[str] = field(default_factory=list)  # vantages already alerted as silent
    first_run: bool = False

    @classmethod
    def load(cls, v: dict[str, Any] | None) -> Cursor:
        if not v:
            return cls(first_run=True)

        def gaps(raw: list[list[Any]]) -> dict[int, datetime]:
            return {int(i): datetime.fromisoformat(t) for i, t in raw}

        return cls(int(v.get("event", 0)), int(v.get("case", 0)), gaps(v.get("event_gaps", [])),
                   gaps(v.get("case_gaps", [])), list(v.get("silent", [])))

    def dump(self) -> dict[str, Any]:
        def gaps(g: dict[int, datetime]) -> list[list[Any]]:
            return [[i, t.isoformat()] for i, t in sorted(g.items())]

        return {"event": self.event, "case": self.case, "event_gaps": gaps(self.event_gaps),
                "case_gaps": gaps(self.case_gaps), "silent": sorted(self.silent)}


def advance(cursor: int, gaps: dict[int, datetime], seen: set[int],
            now: datetime) -> tuple[int, dict[int, datetime]]:
    """New cursor and gaps after handling `seen` (ids above the cursor, or old gaps)."""
    top = max([cursor, *seen])
    out = {i: t for i, t in gaps.items() if i not in seen and now - t < GAP_TTL}
    for i in range(cursor + 1, top):
        if i not in seen:
            out.setdefault(i, now)
    if len(out) > MAX_GAPS:
        out = dict(sorted(out.items())[-MAX_GAPS:])
    return top, out


# --- recent incidents and agreement between networks -------------------------------------------

def aware(dt: datetime | str | None) -> datetime | None:
    # a scalar subquery's value can bypass the column's UTC type on SQLite
    if isinstance(dt, str):
        dt = datetime.fromisoformat(dt)
    return dt.replace(tzinfo=UTC) if dt is not None and dt.tzinfo is None else dt


def incident_time(entry: FeedEntry) -> datetime:
    """When a report came out: its published time, else when a feed first showed it."""
    return entry.published_at or entry.first_seen_at


def recent_cases(s: Session, items: list[C.AlertItem], max_age: timedelta,
                 now: datetime) -> list[C.AlertItem]:
    """Case items whose incident is recent. An old report (a feed's archive, a search looking
    back a week) linked to a blocking event is history on the site, not news for anyone's phone."""
    ids = [int(i.ref[1:]) for i in items if i.kind == "case"]
    if not ids:
        return items
    q = (select(Case.id, FeedEntry).join(Incident, Incident.id == Case.incident_id)
         .join(FeedEntry, FeedEntry.id == Incident.entry_id).where(Case.id.in_(ids)))
    old = {cid for cid, entry in s.execute(q) if now - incident_time(entry) > max_age}
    return [i for i in items if not (i.kind == "case" and int(i.ref[1:]) in old)]


def usable_at() -> Any:
    """A url_state row's latest measurement that was not inconclusive (a correlated subquery)."""
    uv = aliased(Verdict)
    return (select(func.coalesce(uv.repeated_until, uv.measured_at))  # a run's last
            .where(uv.url == UrlState.url, uv.vantage_id == UrlState.vantage_id,
                   uv.verdict != "inconclusive")
            .order_by(uv.measured_at.desc()).limit(1).correlate(UrlState).scalar_subquery())


def country_agreements(s: Session, cfg: Config, target_ids: set[int],
                       now: datetime, *, at_now: bool = False) -> dict[tuple[int, str], Q.Agreement]:
    """(target id, vantage country) -> whether its vantages agree it is blocked, each vantage
    classified like the status page (analysis.display). For alerts freshness is judged at the
    group's latest measurement, so an alert scanned late (the daemon was down) is not dropped as
    stale; `at_now` judges it at `now`, as the status page does (the digest: blocked *now*)."""
    if not target_ids:
        return {}
    sched = Schedule.of(cfg)
    usable = usable_at()
    q = (select(UrlState.target_id, Vantage.id, Vantage.name, Vantage.kind, Vantage.country,
                UrlState.state, UrlState.since, Verdict.verdict, UrlState.last_seen_at, usable)
         .join(Vantage, Vantage.id == UrlState.vantage_id)
         .outerjoin(Verdict, Verdict.id == UrlState.last_verdict_id)
         .where(UrlState.target_id.in_(sorted(target_ids)), Vantage.kind != "control"))
    groups: dict[tuple[int, str], dict[int, list[Any]]] = {}
    for row in s.execute(q):
        groups.setdefault((row[0], row[4] or ""), {}).setdefault(row[1], []).append(row)
    out = {}
    for key, per_v in groups.items():
        seen = [aware(r[8]) for rows in per_v.values() for r in rows if r[8] is not None]
        ref = min(now, max(seen)) if seen and not at_now else now  # type: ignore[type-var]
        cells = [(key[1], rows[0][3], D.combine(
            D.classify(r[5], r[7], aware(r[8]), aware(r[9]), ref, sched.interval(r[2], r[3]),
                       aware(r[6])) for r in rows)) for rows in per_v.values()]
        out[key] = Q.of_vantages(cells, cfg.settings.alerts.quorum)[key[1]]
    return out


def _block_overlap(s: Session, e: Event, country: str) -> int:
    """Vantages of `country` (e's own included) blocked at some time during the block that the
    unblock event `e` ends."""
    start = s.scalar(select(Event.started_at).where(
        Event.vantage_id == e.vantage_id, Event.url == e.url, Event.id < e.id)
        .order_by(Event.id.desc()).limit(1)) or e.started_at
    q = (select(func.count(func.distinct(Event.vantage_id)))
         .join(Vantage, Vantage.id == Event.vantage_id)
         .where(Event.target_id == e.target_id, Event.vantage_id != e.vantage_id,
                Vantage.country == country, Event.state.in_(sorted(BLOCKING_STATES)),
                Event.started_at <= e.started_at,
                or_(Event.ended_at.is_(None), Event.ended_at >= start)))
    return 1 + int(s.scalar(q) or 0)


def agreed_items(s: Session, cfg: Config, items: list[C.AlertItem],
                 now: datetime) -> list[C.AlertItem]:
    """Blocked and case alerts only where enough networks of the vantage's country agree
    (analysis.quorum); each kept item says how many do. An unblock is told only of a block that
    had agreement; a single network disagreeing with the rest pages no one (the site shows it)."""
    gated = [i for i in items if i.kind in ("blocked", "case", "unblocked")]
    if not gated:
        return items
    ev_ids = {int(i.ref[1:]) for i in gated if i.ref.startswith("e")}
    case_ids = {int(i.ref[1:]) for i in gated if i.ref.startswith("c")}
    case_event = {c: e for c, e in s.execute(select(Case.id, Case.event_id).where(
        Case.id.in_(sorted(case_ids))))} if case_ids else {}
    events = {e.id: e for e in s.scalars(select(Event).where(
        Event.id.in_(sorted(ev_ids | set(case_event.values())))))}
    tids = {e.target_id for e in events.values() if e.target_id is not None}
    agree = country_agreements(s, cfg, tids, now)
    out = []
    for i in items:
        if i.kind not in ("blocked", "case", "unblocked"):
            out.append(i)
            continue
        eid = int(i.ref[1:]) if i.ref.startswith("e") else case_event.get(int(i.ref[1:]))
        e = events.get(eid) if eid is not None else None
        if e is None or e.target_id is None:
            out.append(i)  # a URL of no outlet: nothing to compare it with
            continue
        a = agree.get((e.target_id, i.vantage_country))
        if a is None:
            out.append(i)
        elif i.kind == "unblocked":
            if _block_overlap(s, e, i.vantage_country) >= Q.needed(
                    cfg.settings.alerts.quorum, a.vantages, max(a.measured, 1)):
                out.append(i)
        elif a.agreed:
            out.append(replace(i, agree=a.blocked, measured=a.measured, vantages=a.vantages,
                               interfered=a.interfered))
    return out


# --- the scan ----------------------------------------------------------------------------------

def _new_events(s: Session, cur: Cursor) -> tuple[list[C.AlertItem], set[int]]:
    q = (select(Event, Target, Vantage, event_keys())
         .join(Vantage, Vantage.id == Event.vantage_id)
         .outerjoin(Target, Target.id == Event.target_id)
         .where(or_(Event.id > cur.event, Event.id.in_(list(cur.event_gaps))))
         .where(Vantage.kind != "control").order_by(Event.id).limit(BATCH))
    items, seen = [], set()
    for e, t, v, keys in s.execute(q):
        seen.add(e.id)
        kind = C.classify(e.state, e.previous)
        if kind is None:
            continue
        items.append(event_item(e, t, v, kind, keys))
    return items, seen


def case_rows() -> Select[Any]:
    """Cases with what alerts and the digest show of them: the incident, its feed entry and
    feed, the blocking event, its target and vantage."""
    return (select(Case, Incident, FeedEntry, Feed, Event, Target, Vantage, event_keys())
            .join(Incident, Incident.id == Case.incident_id)
            .join(FeedEntry, FeedEntry.id == Incident.entry_id)
            .join(Feed, Feed.id == FeedEntry.feed_id)
            .join(Event, Event.id == Case.event_id)
            .join(Vantage, Vantage.id == Event.vantage_id)
            .outerjoin(Target, Target.id == Event.target_id))


def _new_cases(s: Session, cur: Cursor) -> tuple[list[C.AlertItem], set[int]]:
    q = (case_rows()
         .where(or_(Case.id > cur.case, Case.id.in_(list(cur.case_gaps))))
         .order_by(Case.id).limit(BATCH))
    items, seen = [], set()
    for c, inc, entry, feed, e, t, v, keys in s.execute(q):
        seen.add(c.id)
        base = event_item(e, t, v, "case", keys)
        items.append(replace(base, ref=f"c{c.id}", detected_at=c.created_at,
                             incident=incident_info(inc, entry, feed, True)))
    return items, seen


def _silence(vs: list[VantageSeen], cur: Cursor, cfg: Config) -> tuple[list[C.AlertItem],
                                                                       list[str]]:
    """Silent/back items for vantages that report from elsewhere (agents, OONI). A local or
    resolver vantage is measured by this very process: its silence means blockwatch itself was
    not running, which it cannot announce; `blockwatch health` and the digest show that."""
    remote = {v.name for v in cfg.settings.vantage if isinstance(v, AgentVantage | OoniVantage)}
    items, silent_now = [], []
    for v in vs:
        if v.name not in remote:
            continue
        if v.silent and v.last_seen_at and v.since:
            silent_now.append(v.name)
            if v.name not in cur.silent:
                items.append(C.AlertItem(kind="silent", ref=f"s{v.name}@{int(v.since.timestamp())}",
                                         at=v.last_seen_at, detected_at=v.since, vantage=v.name,
                                         vantage_country=v.country))
        elif v.name in cur.silent and v.last_seen_at:
            items.append(C.AlertItem(kind="back", ref=f"b{v.name}@{int(v.last_seen_at.timestamp())}",
                                     at=v.last_seen_at, detected_at=v.last_seen_at,
                                     vantage=v.name, vantage_country=v.country))
    return items, silent_now


def queue_alerts_sync(cfg: Config, db: Database, now: datetime | None = None) -> int:
    """One scan; returns the number of outbox rows written. Alerts wait until `group_window` has
    passed since the oldest of them was detected, so what happens together goes out together."""
    now = now or utcnow()
    a = cfg.settings.alerts
    with db.write() as s:
        kv = s.get(KeyValue, CURSOR_KEY, with_for_update=True)  # one scanner at a time (PG)
        cur = Cursor.load(kv.value if kv else None)
        ev_items, ev_seen = _new_events(s, cur)
        case_items, case_seen = _new_cases(s, cur)
        silent_items, silent_now = _silence(vantage_status(s, cfg, now), cur, cfg)
        items = ev_items + case_items + silent_items
        items = recent_cases(s, items, a.incident_max_age, now)
        items = agreed_items(s, cfg, items, now)
        if cur.first_run:
            items = [i for i in items if now - i.detected_at < FIRST_RUN_HORIZON]
        if items and now - min(i.detected_at for i in items) < a.group_window:
            return 0  # hold: more may join this group; the next scan sends it
        n = 0
        for r in a.recipient:
            if not r.alerts:
                continue
            mine = [i for i in items if C.item_matches(C.Filter.of(r.targets, r.countries,
                                                                   r.verdicts), i)]
            if not mine:
                continue
            msg = C.compose_alert(mine, r.language, a.timezone)
            key = C.outbox_key("alert", "email", r.email, C.refs(mine))
            n += enqueue(s, key=key, channel="email", destination=r.email, kind="alert",
                         subject=msg.subject, now=now,
                         payload={"text": msg.text, "html": msg.html, "language": r.language,
                                  "message_id": C.message_id(key, a.sender)})
        for w in a.webhook:
            if not items:
                break
            # outside the staff's mailboxes an agent is named by its public label only
            public = C.relabel_items(items, agent_labels(s, w.language))
            msg = C.compose_alert(public, w.language, a.timezone)
            dest = hook_id(w)  # not the URL: it may carry the webhook's secret
            key = C.outbox_key("alert", "webhook", dest, C.refs(public))
            n += enqueue(s, key=key, channel="webhook", destination=dest, kind="alert",
                         subject=msg.subject, now=now,
                         payload=C.webhook_body(key, "alert", public, msg, now, w.language))
        for chat in a.telegram:
            if not chat.alerts:
                continue
            mine = [i for i in items if C.item_matches(C.Filter.of(chat.targets, chat.countries,
                                                                   chat.verdicts), i)]
            mine = C.relabel_items(mine, agent_labels(s, chat.language))  # a chat may be public
            if mine:
                n += len(tg.queue(s, chat, kind="alert", msg=C.compose_alert(
                    mine, chat.language, a.timezone), now=now,
                    key=tg.key("alert", chat, C.refs(mine))))
        cur.event, cur.event_gaps = advance(cur.event, cur.event_gaps, ev_seen, now)
        cur.case, cur.case_gaps = advance(cur.case, cur.case_gaps, case_seen, now)
        cur.silent = silent_now
        if kv is None:
            s.add(KeyValue(key=CURSOR_KEY, value=cur.dump(), updated_at=now))
        else:
            kv.value, kv.updated_at = cur.dump(), now
        return n


async def queue_alerts(cfg: Config, db: Database, now: datetime | None = None) -> int:
    """The daemon's job (every minute or so, and after each probe round): new events, cases and
    silent vantages -> outbox rows. Follow it with `deliver_outbox`."""
    return await asyncio.to_thread(queue_alerts_sync, cfg, db, now)
