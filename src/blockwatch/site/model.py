"""Page models: pure functions from a Snapshot (plain records) to what the pages show.

Privacy is decided here, once: `public_vantages` is the only place that turns a vantage into
something displayable, and an agent's name never leaves it (only country, ASN and an ordinal).
The control vantage never reaches this module (load.py drops it).
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from blockwatch.analysis import display as D
from blockwatch.analysis import quorum as Q
from blockwatch.analysis import reasons
from blockwatch.analysis.verdict import SEVERITY
from blockwatch.site import cases as site_cases
from blockwatch.site import i18n
from blockwatch.site.load import (
    HISTORY_DAYS,
    CaseRec,
    EventRec,
    IncidentRec,
    RollupRec,
    Snapshot,
    TargetRec,
    UrlStateRec,
    VantageRec,
)

KIND_ORDER = {"agent": 0, "ooni": 1, "resolver": 2, "local": 3}
MAX_EVENTS_PER_TARGET = 100
NOTHING_SHOWN = D.OutletShown(D.NO_DATA, None, None, None, True)
FEED_ENTRIES = 100


def sev(state: str | None) -> int:
    return -1 if state is None else SEVERITY.get(state, 0)


def worst_of(states: list[str | None]) -> str | None:
    known = [s for s in states if s is not None]
    return max(known, key=sev) if known else None


# --- vantages ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class PublicVantage:
    key: str  # "n1", "n2": anchors and CSS hooks, never derived from the name
    kind: str
    country: str
    asn: str
    name: str | None  # None for an agent: its name identifies a volunteer
    ordinal: int = 1  # a second vantage of the same kind, country and network: "(agent 2)"
    home: str = ""  # the country most outlets are in: a local vantage elsewhere is "Abroad"
    several: bool = False  # others read the same: every one of them is numbered

    def label(self, lang: str) -> str:
        """For readers, from kind, country and network only ("Kazakhstan, AS9198 (agent)",
        "Abroad"): configuration names mean nothing to them, and an agent's identifies a
        person. The configuration name is `title` (a tooltip), never an agent's."""
        c = i18n.country_name(lang, self.country)
        asn = _asn(self.asn) or i18n.t(lang, "network_unknown")
        if self.kind == "agent":
            key = "v_agent_n" if self.several else "v_agent"
            return i18n.t(lang, key, country=c, asn=asn, n=self.ordinal)
        if self.kind == "resolver":
            text = i18n.t(lang, "v_resolver_asn" if self.asn else "v_resolver", country=c,
                          asn=asn)
        elif self.kind == "ooni":
            text = i18n.t(lang, "v_ooni", country=c, asn=asn)
        elif self.country and self.country == self.home:
            text = i18n.t(lang, "v_local", country=c, asn=asn)
        elif self.country:
            text = i18n.t(lang, "v_abroad_in", country=c)
        else:
            text = i18n.t(lang, "v_abroad")
        return f"{text} {self.ordinal}" if self.several else text

    @property
    def title(self) -> str | None:
        """The configuration name, for a tooltip; None for an agent."""
        return None if self.kind == "agent" else self.name

    def to_json(self) -> dict[str, str]:
        out = {"vantage": self.label("en"), "kind": self.kind, "country": self.country,
               "asn": self.asn}
        if self.title is not None:
            out["name"] = self.title
        return out


def _asn(asn: str) -> str:
    a = asn.strip()
    return f"AS{a}" if a.isdigit() else a


def public_vantages(vantages: dict[int, VantageRec], home: str = "") -> dict[int, PublicVantage]:
    ordered = sorted(vantages.values(),
                     key=lambda v: (KIND_ORDER.get(v.kind, 9), v.country, v.asn, v.name, v.id))
    # vantages that would read the same are numbered by id, not by name: stable, and the
    # numbering itself leaks nothing about who runs them
    same: dict[tuple[str, str, str], int] = defaultdict(int)
    for v in vantages.values():
        same[(v.kind, v.country, v.asn)] += 1
    ordinal: dict[tuple[str, str, str], int] = defaultdict(int)
    nth: dict[int, int] = {}
    for v in sorted(vantages.values(), key=lambda v: v.id):
        k = (v.kind, v.country, v.asn)
        ordinal[k] += 1
        nth[v.id] = ordinal[k] if same[k] > 1 else 1
    out: dict[int, PublicVantage] = {}
    for i, v in enumerate(ordered, 1):
        out[v.id] = PublicVantage(f"n{i}", v.kind, v.country, v.asn,
                                  None if v.kind == "agent" else v.name, nth[v.id], home,
                                  same[(v.kind, v.country, v.asn)] > 1)
    return out


def home_country(targets: list[TargetRec]) -> str:
    """The country most outlets are in ("" when none says)."""
    counts: dict[str, int] = defaultdict(int)
    for t in targets:
        if t.country:
            counts[t.country] += 1
    return max(sorted(counts), key=lambda c: counts[c]) if counts else ""


# --- what readers filter by: a group per state, ordered as a journalist reads ------------------

GROUPS = ("blocked", "interfered", "down", "unknown", "reachable")
GROUP_RANK = {g: i for i, g in enumerate(GROUPS)}


def group_of(sh: D.Shown | D.OutletShown) -> str:
    """blocked (DNS, IP, TLS, block page), interfered (different page, broken request,
    throttled), down, unknown (not measured, stale, no data), reachable."""
    if sh.display == D.BLOCKED:
        return "blocked" if i18n.category(sh.kind) == "blocked" else "interfered"
    if sh.display == D.DOWN:
        return "down"
    if sh.display in (D.REACHABLE, D.REACHABLE_ABROAD):
        return "reachable"
    return "unknown"


# the index's headline counts: the display states with "blocked" split as the filters split it
HEADLINE_ORDER = (D.BLOCKED, "interfered", D.DOWN, D.REACHABLE, D.REACHABLE_ABROAD,
                  D.NOT_MEASURED, D.STALE, D.NO_DATA)


def headline_class(sh: D.Shown | D.OutletShown) -> str:
    """The display state, except that a blocked outlet whose technique is interference or
    slowing (http_diff, http_failure, throttled) is "interfered", as its filter group says."""
    return "interfered" if group_of(sh) == "interfered" else sh.display


def ordered(statuses: list[TargetStatus]) -> list[TargetStatus]:
    """Blocked outlets first, then interfered, down, not known, reachable; by name within."""
    return sorted(statuses, key=lambda s: (GROUP_RANK[group_of(s.shown)],
                                           s.target.name.casefold(), s.target.id))


def network_slugs(columns: list[PublicVantage]) -> dict[str, str]:
    """File names of the per-network pages, from the English label (never an agent's name)."""
    out: dict[str, str] = {}
    used: set[str] = set()
    for c in columns:
        base = slugify(c.label("en")) or c.key
        s = base if base not in used else f"{base}-{c.key}"
        used.add(s)
        out[c.key] = s
    return out


@dataclass(frozen=True)
class Finding:
    """One technique (or "down") seen at an outlet now: since when, on which networks, and the
    SHA-256 of the measurements that confirmed it."""

    kind: str
    display: str
    since: datetime | None
    networks: tuple[PublicVantage, ...]
    evidence: tuple[str, ...]
    confirmed: bool


def findings(status: TargetStatus, events: Iterable[EventRec],
             vantages: dict[int, PublicVantage]) -> list[Finding]:
    """The outlet page's "what we see": measured problems only (blocked or down, fresh)."""
    by_kind: dict[str, list[Cell]] = defaultdict(list)
    for c in status.cells:
        if c is not None and c.shown.display in (D.BLOCKED, D.DOWN) and c.shown.kind:
            by_kind[c.shown.kind].append(c)
    open_ev: dict[tuple[str, str], list[str]] = defaultdict(list)
    for e in events:
        if e.ended_at is None and e.evidence_sha256 and e.vantage_id in vantages:
            open_ev[(vantages[e.vantage_id].key, e.state)].append(e.evidence_sha256)
    out = []
    for kind, cells in by_kind.items():
        sinces = [c.shown.since for c in cells if c.shown.since]
        ev = tuple(dict.fromkeys(h for c in cells for h in open_ev.get((c.vantage.key, kind), [])))
        out.append(Finding(kind, cells[0].shown.display, min(sinces) if sinces else None,
                           tuple(c.vantage for c in cells), ev, any(c.confirmed for c in cells)))
    return sorted(out, key=lambda f: (-sev(f.kind), f.kind))


# --- slugs and links ---------------------------------------------------------------------------

_TRANSLIT = dict(zip(
    "абвгдеёжзийклмнопрстуфхцчшщъыьэюяәғқңөұүһі",
    ["a", "b", "v", "g", "d", "e", "e", "zh", "z", "i", "y", "k", "l", "m", "n", "o", "p", "r",
     "s", "t", "u", "f", "kh", "ts", "ch", "sh", "shch", "", "y", "", "e", "yu", "ya", "a", "g",
     "q", "ng", "o", "u", "u", "h", "i"], strict=True))


def slugify(name: str) -> str:
    s = "".join(_TRANSLIT.get(c, c) for c in name.lower())
    s = unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode("ascii")
    s = re.sub(r"[^a-z0-9]+", "-", s).strip("-")
    return s[:60].strip("-")


def slugs(targets: list[TargetRec]) -> dict[int, str]:
    """Stable file names: from the name; a clash or an empty slug gets the target's id."""
    out: dict[int, str] = {}
    used: set[str] = set()
    for t in sorted(targets, key=lambda t: t.id):
        base = slugify(t.name) or "outlet"
        s = base if base not in used else f"{base}-{t.id}"
        while s in used:
            s = f"{s}-{t.id}"
        used.add(s)
        out[t.id] = s
    return out


def safe_href(url: str) -> str | None:
    """Only http(s) links: an escaped `javascript:` URL is still a script when clicked."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    return url.strip() if parts.scheme in ("http", "https") and parts.netloc else None


# --- current state -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Cell:
    vantage: PublicVantage
    state: str | None  # the confirmed state, which may be old: read `shown` for what to say
    since: datetime | None
    last_checked: datetime | None  # the latest attempt, usable or not
    confirmed: bool
    reason: str
    pending: str | None  # the latest verdict when it differs from the confirmed state
    stale: bool
    urls: tuple[UrlStateRec, ...]
    shown: D.Shown  # measured (reachable, blocked, down) or not known, with since when
    inside: bool = True  # the vantage is in the outlet's country (or the outlet has none)
    reason_keys: dict[str, Any] | None = None  # `reason` in any language (analysis/reasons.py)

    def said(self, lang: str) -> tuple[str, str]:
        """(the reason in `lang`, the language it is in): "en" for an old row without keys."""
        return reasons.said(self.reason_keys, self.reason, lang)

    @property
    def for_outlet(self) -> D.Shown:
        """This cell as evidence about the outlet (a resolver's correct answer is not)."""
        return D.for_outlet(self.shown, self.vantage.kind)


def cell_of(vantage: PublicVantage, urls: list[UrlStateRec], now: datetime,
            interval: timedelta = D.DEFAULT_INTERVAL, inside: bool = True) -> Cell:
    """A target's state at one vantage: the worst of its URLs' confirmed states. Since when:
    for a problem, the earliest start among URLs in that state (it has held at least that
    long); for "reachable", the latest (every URL has been reachable since then). What may be
    said of it (`shown`) also depends on how fresh and usable its measurements are."""
    state = worst_of([u.state for u in urls])
    in_state = [u for u in urls if u.state == state and u.state is not None]
    sinces = [u.since for u in in_state if u.since is not None]
    since = (max(sinces) if state == "ok" else min(sinces)) if sinces else None
    seen = [u.last_seen_at for u in urls if u.last_seen_at is not None]
    last = max(seen) if seen else None
    confirmed = any(u.event_confirmed for u in in_state)
    fresh = [u for u in in_state if u.verdict == state and u.verdict_reason]
    if fresh:
        reason, keys = fresh[0].verdict_reason, fresh[0].verdict_keys
    else:  # the confirming event's reason, from the keys of the verdict that opened it
        reason, keys = next(((u.event_reason, u.event_keys) for u in in_state
                             if u.event_reason), ("", None))
    pend = worst_of([u.verdict for u in urls
                     if u.verdict not in (None, "inconclusive") and u.verdict != u.state])
    if pend is not None and sev(pend) <= sev(state) and state is not None:
        pend = None  # a URL recovering while another is still worse: nothing new to say
    shown = D.combine(D.classify(u.state, u.verdict, u.last_seen_at, u.usable_at, now, interval,
                                 u.since) for u in urls)
    if shown.display not in D.MEASURED:
        reason, keys = "", None  # the reason of an old verdict would read as today's
    return Cell(vantage, state, since, last, confirmed, reason, pend,
                shown.display == D.STALE, tuple(urls), shown, inside, keys)


# --- history -----------------------------------------------------------------------------------

class Day(NamedTuple):  # tuples: 500 outlets x 4 vantages x 90 days of them per build
    day: date
    state: str | None  # None: no measurements that day
    minutes: int


class Segment(NamedTuple):
    """Consecutive days in the same state: the bar stays small (a few segments per outlet
    instead of 90 cells) while every day stays described in its text alternative."""

    state: str | None
    start: date
    end: date
    days: int
    minutes: int


def window(today: date, n: int = HISTORY_DAYS) -> list[date]:
    return [today - timedelta(days=n - 1 - i) for i in range(n)]


def days_from(rollups: list[RollupRec], days: list[date]) -> list[Day]:
    """Per day: the worst state over the given rollups and the most minutes any one vantage was
    affected (the most affected network, not a sum: networks overlap in time). A vantage that
    could not look that day ("inconclusive") does not hide another's usable measurement; a day
    none could measure stays "inconclusive" (not measured), one without rows None (no data)."""
    worst: dict[date, str] = {}
    minutes: dict[date, int] = {}
    for r in rollups:
        w = worst.get(r.day)
        if w is None or w == "inconclusive" or (
                r.worst != "inconclusive" and SEVERITY.get(r.worst, 0) > SEVERITY.get(w, 0)):
            worst[r.day] = r.worst
        if r.minutes > minutes.get(r.day, 0):
            minutes[r.day] = r.minutes
    return [Day(d, worst.get(d), minutes.get(d, 0)) for d in days]


def segments(days: list[Day], *, by_category: bool = False) -> list[Segment]:
    """Runs of days. `by_category` merges e.g. DNS and TLS days into one "blocked" run: the
    index shows only the category (its hover text has no room for how), so it needs fewer."""
    out: list[Segment] = []
    key = i18n.category if by_category else (lambda s: s)
    prev = object()
    for d in days:
        k = key(d.state)
        if out and k == prev:
            last = out[-1]
            state = last.state if sev(last.state) >= sev(d.state) else d.state
            out[-1] = Segment(state, last.start, d.day, last.days + 1, last.minutes + d.minutes)
        else:
            out.append(Segment(d.state, d.day, d.day, 1, d.minutes))
        prev = k
    return out


def category_counts(days: list[Day]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for d in days:
        counts[i18n.category(d.state)] += 1
    return dict(counts)


# --- targets -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class TargetStatus:
    target: TargetRec
    slug: str
    state: str | None
    since: datetime | None
    confirmed: bool
    cells: tuple[Cell | None, ...]  # aligned with SiteModel.columns
    days: tuple[Day, ...]
    bar: tuple[Segment, ...]  # exact states, for the outlet's page
    bar_index: tuple[Segment, ...]  # by category, for the index
    shown: D.OutletShown = NOTHING_SHOWN
    agreements: tuple[Q.Agreement, ...] = ()  # per vantage country: networks reporting "blocked"

    @property
    def problem(self) -> bool:
        return self.shown.display == D.BLOCKED

    @property
    def measured_days(self) -> int:
        """Days of the window with a usable measurement from some vantage."""
        return sum(1 for d in self.days if d.state not in (None, "inconclusive"))


@dataclass(frozen=True)
class VantageHistory:
    vantage: PublicVantage
    days: tuple[Day, ...]
    bar: tuple[Segment, ...]


@dataclass(frozen=True)
class History:
    """A target's daily history over the window: a function of its rollup rows, the date and
    the vantages' public keys, so the daemon keeps it between builds (site/cache.py)."""

    days: tuple[Day, ...]
    bar: tuple[Segment, ...]
    bar_index: tuple[Segment, ...]
    vantages: tuple[VantageHistory, ...]


def target_history(rolls: list[RollupRec], days: list[date],
                   pv: dict[int, PublicVantage]) -> History:
    tdays = days_from(rolls, days)
    per_v: dict[int, list[RollupRec]] = defaultdict(list)
    for r in rolls:
        per_v[r.vantage_id].append(r)
    hist = []
    for vid in sorted(per_v, key=lambda v: int(pv[v].key[1:])):
        vdays = days_from(per_v[vid], days)
        hist.append(VantageHistory(pv[vid], tuple(vdays), tuple(segments(vdays))))
    return History(tuple(tdays), tuple(segments(tdays)), tuple(segments(tdays, by_category=True)),
                   tuple(hist))


@dataclass(frozen=True)
class TargetDetail:
    status: TargetStatus
    history: tuple[VantageHistory, ...]
    events: tuple[EventRec, ...]
    cases_by_event: dict[int, list[IncidentRec]]
    incidents: tuple[tuple[IncidentRec, bool], ...]  # (incident, linked by a case)
    # open events whose URL and network measured nothing usable lately: the last usable
    # measurement, which the timeline says it held "at least until" (it cannot say "ongoing")
    held_until: dict[int, datetime] = field(default_factory=dict)


@dataclass
class SiteModel:
    now: datetime
    columns: list[PublicVantage]
    vantages: dict[int, PublicVantage]
    statuses: list[TargetStatus]
    details: dict[int, TargetDetail]
    incidents: list[IncidentRec]
    incident_events: dict[int, list[EventRec]]
    events: list[EventRec]
    cases: list[CaseRec]
    targets_by_name: dict[str, TargetStatus] = field(default_factory=dict)

    @property
    def problems(self) -> list[TargetStatus]:
        return [s for s in self.statuses if s.problem]

    @property
    def counts(self) -> dict[str, int]:
        """Outlets per display state, every state present (zeros included)."""
        return D.counts(s.shown.display for s in self.statuses)

    @property
    def headline_counts(self) -> dict[str, int]:
        """Outlets per `HEADLINE_ORDER` class: the same split as the filter groups."""
        out = dict.fromkeys(HEADLINE_ORDER, 0)
        for s in self.statuses:
            out[headline_class(s.shown)] += 1
        return out

    @property
    def unknown_cause(self) -> tuple[str, datetime | None]:
        """Why nothing is measured, from the networks' cards: "stale_page" (no check ran
        lately anywhere; with the newest check), "not_measured_page" (checks ran and could not
        look) or "mixed_page" (some networks silent since the time given, others failing)."""
        silent = [c.last_checked for s in self.statuses for c in s.cells
                  if c is not None and c.shown.display == D.STALE]
        failing = any(c is not None and c.shown.display == D.NOT_MEASURED
                      for s in self.statuses for c in s.cells)
        newest = max((t for t in silent if t is not None), default=None)
        if silent and failing:
            return "mixed_page", newest
        if failing:
            return "not_measured_page", None
        return "stale_page", newest

    @property
    def last_usable(self) -> datetime | None:
        times = [c.shown.measured_at for s in self.statuses for c in s.cells
                 if c is not None and c.shown.measured_at is not None]
        return max(times) if times else None

    @property
    def any_measured(self) -> bool:
        """Some outlet has a fresh usable measurement: else the page says it has none."""
        return any(s.shown.display in D.MEASURED or s.shown.display == D.REACHABLE_ABROAD
                   for s in self.statuses)

    @property
    def abroad_only(self) -> list[TargetStatus]:
        """Outlets shown reachable though no vantage inside their country measures them."""
        return [s for s in self.statuses if s.shown.display == D.REACHABLE_ABROAD]


def build_model(snap: Snapshot, histories: Mapping[int, History] | None = None) -> SiteModel:
    """`histories`: targets' daily history computed before (the daemon's cache); the others'
    are computed from `snap.rollups`."""
    now = snap.now
    known = histories or {}
    today = now.date()
    pv = public_vantages(snap.vantages, home_country(snap.targets))
    slug = slugs(snap.targets)
    by_tv: dict[tuple[int, int], list[UrlStateRec]] = defaultdict(list)
    for st in snap.states:
        by_tv[(st.target_id, st.vantage_id)].append(st)
    # a column per vantage that has a current state for some outlet; a vantage silent for longer
    # than a month keeps its history on the outlet pages but leaves the index
    col_ids = {v for (_, v), urls in by_tv.items()
               if any(u.last_seen_at and now - u.last_seen_at <= timedelta(days=30) for u in urls)}
    columns = sorted((pv[v] for v in col_ids), key=lambda p: int(p.key[1:]))
    col_vid = {pv[v].key: v for v in col_ids}
    roll_by_t: dict[int, list[RollupRec]] = defaultdict(list)
    for r in snap.rollups:
        roll_by_t[r.target_id].append(r)
    ev_by_t: dict[int, list[EventRec]] = defaultdict(list)
    for e in snap.events:
        ev_by_t[e.target_id].append(e)
    inc_by_id = {i.id: i for i in snap.incidents}
    ev_by_id = {e.id: e for e in snap.events}
    cases_by_event: dict[int, list[IncidentRec]] = defaultdict(list)
    incident_events: dict[int, list[EventRec]] = defaultdict(list)
    for c in snap.cases:
        cases_by_event[c.event_id].append(inc_by_id[c.incident_id])
        incident_events[c.incident_id].append(ev_by_id[c.event_id])
    mentions: dict[str, list[IncidentRec]] = defaultdict(list)
    for inc in snap.incidents:
        for o in {o.casefold() for o in inc.outlets}:
            mentions[o].append(inc)
    days = window(today)
    empty: History | None = None
    statuses: list[TargetStatus] = []
    details: dict[int, TargetDetail] = {}
    for t in snap.targets:
        cells: list[Cell | None] = []
        for col in columns:
            vid = col_vid[col.key]
            urls = by_tv.get((t.id, vid))
            vrec = snap.vantages[vid]
            inside = not t.country or vrec.country == t.country
            cells.append(cell_of(col, urls, now, vrec.interval, inside) if urls else None)
        present = [c for c in cells if c is not None]
        # "blocked" needs enough networks of a country to agree; a lone dissenter stays a card
        shown, agree = site_cases.headline(cells, D.outlet((c.for_outlet, c.inside) for c in present),
                                           snap.quorum)
        # how it is blocked, or down, or ok; nothing fresh and usable: no state to claim
        measured = shown.display in D.MEASURED or shown.display == D.REACHABLE_ABROAD
        state = shown.kind if measured else None
        since = shown.since if measured else None
        in_state = [c for c in present if c.shown.kind == state and measured]
        h = known.get(t.id)
        if h is None:
            rolls = roll_by_t.get(t.id)
            if rolls:
                h = target_history(rolls, days, pv)
            else:  # no rows (a plan's model has none): the same for every target
                h = empty = empty or target_history([], days, pv)
        status = TargetStatus(t, slug[t.id], state, since, any(c.confirmed for c in in_state),
                              tuple(cells), h.days, h.bar, h.bar_index, shown, agree)
        statuses.append(status)
        tev = ev_by_t.get(t.id, [])[:MAX_EVENTS_PER_TARGET]
        linked = {i.id: i for e in tev for i in cases_by_event.get(e.id, [])}
        mentioned = [i for i in mentions.get(t.name.casefold(), []) if i.id not in linked]
        incs = sorted([(i, True) for i in linked.values()] + [(i, False) for i in mentioned],
                      key=lambda p: (p[0].occurred_at, p[0].id), reverse=True)
        details[t.id] = TargetDetail(status, h.vantages, tuple(tev),
                                     {e.id: cases_by_event[e.id] for e in tev if e.id in cases_by_event},
                                     tuple(incs), held_until(tev, by_tv.get, snap.vantages, now))
    model = SiteModel(now, columns, pv, statuses, details, list(snap.incidents),
                      dict(incident_events), list(snap.events), list(snap.cases))
    model.targets_by_name = {s.target.name.casefold(): s for s in statuses}
    return model


def held_until(events: Iterable[EventRec], urls_of: Any, vantages: dict[int, VantageRec],
               now: datetime) -> dict[int, datetime]:
    """Open events whose URL at that network has no fresh usable measurement: the time of its
    last one (the state is known to have held until then, not that it still holds)."""
    out: dict[int, datetime] = {}
    for e in events:
        if e.ended_at is not None or e.vantage_id not in vantages:
            continue
        for u in urls_of((e.target_id, e.vantage_id)) or ():
            if u.url != e.url or u.state != e.state:
                continue
            sh = D.classify(u.state, u.verdict, u.last_seen_at, u.usable_at, now,
                            vantages[e.vantage_id].interval, u.since)
            if sh.display not in D.MEASURED and u.usable_at is not None:
                out[e.id] = max(u.usable_at, e.started_at)
    return out


# --- status.json -------------------------------------------------------------------------------

def _iso(dt: datetime | None) -> str | None:
    from blockwatch.storage.repo import iso

    return iso(dt)


def _reasons(c: Cell, languages: list[str]) -> dict[str, str]:
    """A cell's reason in English (`reason`, as stored) and in each of the site's languages it
    can be said in: an older row without keys has English only, never a pretend translation."""
    out = {"en": c.reason} if c.reason else {}
    for lang in languages:
        text, said_in = c.said(lang)
        if text and said_in == lang:
            out[lang] = text
    return out


def status_json(m: SiteModel, *, title: str, languages: list[str]) -> dict[str, object]:
    """The current state, for scripts and other sites. Agent vantages appear by country and
    network only, exactly as on the pages. `display` (also `status`) is what may be said:
    reachable, blocked, down (measured), reachable_abroad (measured from outside the outlet's
    country only), not_measured, stale, no_data; `state` is the verdict behind a measured
    display and null otherwise (`last_confirmed_state` keeps the old one). `display` "blocked"
    covers every blocking verdict; `group` (and the top-level `groups` counts) is the class the
    pages count and filter by: blocked, interfered (different page, broken request,
    throttled), down, unknown, reachable."""
    lang = languages[0]
    targets = []
    per_vantage: dict[str, list[str]] = defaultdict(list)
    newest: dict[str, datetime] = {}
    for s in m.statuses:
        vs = []
        for c in s.cells:
            if c is None:
                continue
            sh = c.shown
            per_vantage[c.vantage.key].append(sh.display)
            if sh.measured_at and (c.vantage.key not in newest
                                   or sh.measured_at > newest[c.vantage.key]):
                newest[c.vantage.key] = sh.measured_at
            measured = sh.display in D.MEASURED
            vs.append({**c.vantage.to_json(), "display": sh.display, "status": sh.display,
                       "group": group_of(sh),
                       "state": sh.kind if measured else None, "last_confirmed_state": c.state,
                       "in_country": c.inside, "measured_at": _iso(sh.measured_at),
                       "display_since": _iso(sh.since),
                       "confirmed": c.confirmed and measured,
                       "since": _iso(c.since) if measured else None,
                       "last_checked": _iso(c.last_checked), "stale": c.stale,
                       "pending": c.pending, "reason": c.reason,
                       "reasons": _reasons(c, languages),
                       "urls": [{"url": u.url, "state": u.state, "since": _iso(u.since),
                                 "measured_at": _iso(u.usable_at),
                                 "last_checked": _iso(u.last_seen_at)} for u in c.urls]})
        sh2 = s.shown
        targets.append({
            "name": s.target.name, "country": s.target.country, "category": s.target.category,
            "display": sh2.display, "status": sh2.display, "group": group_of(sh2),
            "state": s.state,
            "in_country": sh2.in_country, "measured_at": _iso(sh2.measured_at),
            "confirmed": s.confirmed, "since": _iso(sh2.since),
            "counts": {k: v for k, v in D.counts(v["display"] for v in vs).items() if v},
            "page": f"{lang}/t/{s.slug}.html", "badge": f"{lang}/badge/{s.slug}.svg",
            "vantages": vs,
            "agreement": site_cases.agreement_json(s.agreements),
            "cases": site_cases.cases_json(
                m.details[s.target.id].events, m.details[s.target.id].cases_by_event, _iso)
            if s.target.id in m.details else [],
        })
    vantages = [{**v.to_json(), "measured_at": _iso(newest.get(v.key)),
                 "counts": {k: n for k, n in D.counts(per_vantage.get(v.key, [])).items() if n}}
                for v in m.columns]
    return {"generated_at": _iso(m.now), "title": title, "measured": m.any_measured,
            "last_usable_measurement": _iso(m.last_usable), "counts": m.counts,
            "groups": {g: sum(1 for s in m.statuses if group_of(s.shown) == g) for g in GROUPS},
            "vantages": vantages, "targets": targets}


# --- feed --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FeedItem:
    kind: str  # event | case
    id: int
    updated: datetime
    published: datetime
    event: EventRec
    incident: IncidentRec | None = None


def feed_items(m: SiteModel) -> list[FeedItem]:
    items = [FeedItem("event", e.id, e.updated, e.detected_at, e) for e in m.events]
    inc = {i.id: i for i in m.incidents}
    ev = {e.id: e for e in m.events}
    items += [FeedItem("case", c.id, c.created_at, c.created_at, ev[c.event_id],
                       inc[c.incident_id]) for c in m.cases]
    items.sort(key=lambda i: (i.updated, i.kind, i.id), reverse=True)
    return items[:FEED_ENTRIES]
