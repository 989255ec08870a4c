"""What a reader may be told about one URL at one vantage, and how those add up: measured
(reachable, blocked, down) versus not known (not measured, stale, no data).

Pure. The site, status.json, the digest and `blockwatch health` all classify through
`classify`, so none of them can call a site reachable on the strength of a verdict that is old
or of rounds in which blockwatch could not look.

- reachable: the confirmed state is `ok` and a usable (not `inconclusive`) measurement is fresh.
- blocked: the confirmed state is one of BLOCKING (dns, tcp_ip, tls, http_blockpage, http_diff,
  http_failure, throttled), with a fresh usable measurement.
- down: the confirmed state is `down` (it fails from the control too), freshly measured.
- not_measured: blockwatch tried but could not look: the latest verdict is `inconclusive` (the
  vantage or the control failed), or the last usable measurement is older than two intervals
  while attempts continue. `since` is the last usable measurement (None: never).
- stale: no attempt at all for more than two intervals of the vantage's schedule (the daemon, an
  agent or OONI stopped reporting). `since` is the last attempt.
- no_data: never measured, or measured but no state confirmed yet.

Adding up (`combine`, `outlet`): a not-known result says since when nothing usable came, from
the newest usable measurement of every URL or network added, so an outlet whose one network is
stale and another cannot look reads "not measured since <the stale one's last usable>", never
"no usable measurement yet" while one of its cards shows one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from blockwatch.analysis.verdict import BLOCKING, SEVERITY

REACHABLE = "reachable"
BLOCKED = "blocked"
DOWN = "down"
NOT_MEASURED = "not_measured"
STALE = "stale"
NO_DATA = "no_data"
# an outlet measured reachable only from vantages outside its country (none inside exists)
REACHABLE_ABROAD = "reachable_abroad"

MEASURED = frozenset({REACHABLE, BLOCKED, DOWN})
# for adding URLs up into one cell: a measured problem beats not knowing, not knowing beats "ok"
_RANK = {BLOCKED: 5, DOWN: 4, NOT_MEASURED: 3, STALE: 2, REACHABLE: 1, NO_DATA: 0}
# the order headlines count in
OUTLET_ORDER = (BLOCKED, DOWN, REACHABLE, REACHABLE_ABROAD, NOT_MEASURED, STALE, NO_DATA)
FRESH_INTERVALS = 2
OONI_MIN_INTERVAL = timedelta(days=1)  # OONI data for one URL arrives when volunteers test it
DEFAULT_INTERVAL = timedelta(minutes=15)


@dataclass(frozen=True)
class Shown:
    display: str  # one of the constants above
    kind: str | None  # the verdict behind it: a BLOCKING name for "blocked", "ok", "down"
    measured_at: datetime | None  # the last usable measurement
    since: datetime | None  # since when this holds (for not_measured/stale: last usable)


def fresh_limit(interval: timedelta) -> timedelta:
    return FRESH_INTERVALS * interval


def classify(state: str | None, verdict: str | None, measured_at: datetime | None,
             usable_at: datetime | None, now: datetime, interval: timedelta,
             state_since: datetime | None = None) -> Shown:
    """One URL at one vantage. `state`: the confirmed state; `verdict`, `measured_at`: the latest
    verdict and when it was measured; `usable_at`: the latest measurement that was not
    inconclusive; `interval`: that vantage's schedule."""
    limit = fresh_limit(interval)
    if measured_at is None:
        return Shown(NO_DATA, None, usable_at, None)
    if now - measured_at > limit:
        return Shown(STALE, state, usable_at, measured_at)  # since: the last attempt
    if verdict == "inconclusive" or usable_at is None or now - usable_at > limit:
        return Shown(NOT_MEASURED, None, usable_at, usable_at)
    if state == "ok":
        return Shown(REACHABLE, "ok", usable_at, state_since)
    if state in BLOCKING:
        return Shown(BLOCKED, state, usable_at, state_since)
    if state == "down":
        return Shown(DOWN, "down", usable_at, state_since)
    return Shown(NO_DATA, None, usable_at, None)  # measured, nothing confirmed yet


def combine(shown: Iterable[Shown]) -> Shown:
    """URLs of one outlet at one vantage: the worst known problem, else not knowing, else
    reachable only when every measured URL is. Since when: for a problem the earliest start,
    for reachable the latest (all of them since then), for not knowing the last usable one."""
    items = [s for s in shown]
    if not items:
        return Shown(NO_DATA, None, None, None)
    top = max(items, key=lambda s: _RANK[s.display])
    same = [s for s in items if s.display == top.display]
    measured = [s.measured_at for s in items if s.measured_at is not None]
    oldest = min(measured) if measured else None
    if top.display == BLOCKED:
        kind = max((s.kind for s in same if s.kind), key=lambda k: SEVERITY.get(k, 0))
        sinces = [s.since for s in same if s.since and s.kind == kind]
        return Shown(BLOCKED, kind, oldest, min(sinces) if sinces else None)
    sinces = [s.since for s in same if s.since]
    if top.display == DOWN:
        return Shown(DOWN, "down", oldest, min(sinces) if sinces else None)
    if top.display == REACHABLE:
        return Shown(REACHABLE, "ok", oldest, max(sinces) if sinces else None)
    if top.display == NOT_MEASURED:
        # since when nothing usable: the newest usable measurement of any of them, a stale
        # one's included (one URL or network that cannot look does not erase what another
        # measured before it went quiet)
        return Shown(NOT_MEASURED, None, oldest, max(measured) if measured else None)
    if top.display == STALE:
        return Shown(STALE, None, oldest, max(sinces) if sinces else None)
    return Shown(NO_DATA, None, oldest, None)


# a resolver vantage asks one DNS server only: a correct answer says nothing about TCP/IP, TLS
# or HTTP blocking, so it is not a measurement of the outlet (its `dns` block still is one)
DNS_ONLY_KINDS = frozenset({"resolver"})


def for_outlet(shown: Shown, vantage_kind: str) -> Shown:
    """One vantage's result as evidence about the whole outlet (its headline and the agreement
    between networks): a DNS-only vantage's non-blocked result counts as not measured."""
    if vantage_kind in DNS_ONLY_KINDS and shown.display in (REACHABLE, DOWN):
        return Shown(NOT_MEASURED, None, shown.measured_at, shown.measured_at)
    return shown


@dataclass(frozen=True)
class OutletShown:
    display: str  # OUTLET_ORDER
    kind: str | None
    since: datetime | None
    measured_at: datetime | None
    in_country: bool  # False: no vantage in the outlet's country measures it


def outlet(cells: Iterable[tuple[Shown, bool]]) -> OutletShown:
    """An outlet over its vantages, each with whether it is in the outlet's country. Blocked or
    down anywhere is said; "reachable" needs a fresh `ok` from a vantage inside the country, and
    with no such vantage at all it is "reachable from abroad only"."""
    cells = list(cells)
    shown = [s for s, _ in cells]
    home = [s for s, inside in cells if inside]
    for d in (BLOCKED, DOWN):
        if any(s.display == d for s in shown):
            c = combine(s for s in shown if s.display == d)
            return OutletShown(d, c.kind, c.since, c.measured_at, bool(home))
    scope = home or shown
    reach = [s for s in scope if s.display == REACHABLE]
    if reach:  # a network that could look found it reachable; others may not have looked
        r = combine(reach)
        return OutletShown(REACHABLE if home else REACHABLE_ABROAD, "ok", r.since,
                           r.measured_at, bool(home))
    c = combine(scope)
    return OutletShown(c.display, c.kind, c.since, c.measured_at, bool(home))


def counts(displays: Iterable[str]) -> dict[str, int]:
    out = dict.fromkeys(OUTLET_ORDER, 0)
    for d in displays:
        out[d] = out.get(d, 0) + 1
    return out


# --- schedules ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Schedule:
    """How often each vantage is expected to measure: the probe interval for local, resolver
    and agent vantages; for OONI its import interval, but at least a day (a URL's public OONI
    data is as frequent as the volunteers who test it)."""

    probe: timedelta = DEFAULT_INTERVAL
    ooni: Mapping[str, timedelta] = field(default_factory=dict)

    def interval(self, name: str, kind: str) -> timedelta:
        if kind == "ooni":
            base = name.split(":", 1)[0]
            return max(self.ooni.get(base, self.probe), OONI_MIN_INTERVAL)
        return self.probe

    @classmethod
    def of(cls, cfg: Any) -> Schedule:
        s = cfg.settings
        return cls(probe=s.probe.interval,
                   ooni={v.name: v.interval for v in s.vantage if v.kind == "ooni"})
