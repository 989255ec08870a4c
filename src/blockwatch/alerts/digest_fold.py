"""The digest, one entry per outlet: URLs and networks that share a state fold into one line.

Pure. A staff member reading the digest on a phone wants "Ratel.kz: TLS interference on 3
networks since Tuesday, because ...", not one row per URL and vantage: the reason is said once
per outlet and technique (the first confirmed one, else the first given).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

MAX_URLS = 5  # listed per line; the rest are counted


@dataclass(frozen=True)
class Line:
    kind: str  # blocked | down | unblocked | recovered (began/ended); "blocked" for still blocked
    state: str  # the technique (verdict name): for an end, the one that ended
    since: datetime | None  # the earliest start
    detected_at: datetime | None  # the latest confirmation (changes only)
    networks: tuple[str, ...]  # "name (KZ)", in first-seen order
    urls: tuple[str, ...]
    reason: str
    confirmed: bool
    incidents: tuple[Any, ...] = ()  # IncidentInfo of case items
    reason_keys: dict[str, Any] | None = None  # `reason` in any language (analysis/reasons.py)

    @property
    def more_urls(self) -> int:
        return max(0, len(self.urls) - MAX_URLS)

    @property
    def shown_urls(self) -> tuple[str, ...]:
        return self.urls[:MAX_URLS]


@dataclass(frozen=True)
class Outlet:
    name: str
    lines: tuple[Line, ...]
    agreements: tuple[Any, ...] = ()  # how many networks agree (still blocked only)


def _network(name: str, country: str) -> str:
    return f"{name} ({country})" if country else name


def _reason(rows: list[tuple[str, bool]]) -> tuple[str, bool]:
    """The reason to say once: a confirmed row's (it names the evidence), else the first."""
    for text, confirmed in rows:
        if confirmed and text:
            return text, True
    return next((text for text, _ in rows if text), ""), any(c for _, c in rows)


def _line(kind: str, state: str, rows: list[Any], at: str, detected: str | None) -> Line:
    sinces = [getattr(r, at) for r in rows if getattr(r, at) is not None]
    dets = [getattr(r, detected) for r in rows if detected and getattr(r, detected) is not None]
    reason, confirmed = _reason([(r.reason, r.confirmed) for r in rows])
    keys = next((k for r in rows if r.reason == reason
                 and (k := getattr(r, "reason_keys", None))), None)
    incidents = tuple(dict.fromkeys(r.incident for r in rows
                                    if getattr(r, "incident", None) is not None))
    return Line(kind, state, min(sinces) if sinces else None, max(dets) if dets else None,
                tuple(dict.fromkeys(_network(r.vantage, r.vantage_country) for r in rows)),
                tuple(dict.fromkeys(r.url for r in rows if r.url)), reason, confirmed,
                incidents, keys)


def still_blocked(blocked: Iterable[Any]) -> list[Outlet]:
    """`DigestData.blocked` (BlockedTarget, one row per URL and vantage) folded per technique;
    the worst-affected technique (most networks) first."""
    out = []
    for b in blocked:
        by_state: dict[str, list[Any]] = {}
        for r in b.rows:
            by_state.setdefault(r.state, []).append(r)
        lines = [_line("blocked", st, rows, "since", None) for st, rows in by_state.items()]
        lines.sort(key=lambda ln: (-len(ln.networks), ln.state))
        out.append(Outlet(b.target, tuple(lines), tuple(getattr(b, "agreements", ()))))
    return out


def changes(items: Iterable[Any]) -> list[Outlet]:
    """Began or ended items (AlertItem, one per URL and vantage), per outlet and per (alert
    kind, technique); outlets in order of their first item."""
    groups: dict[str, dict[tuple[str, str], list[Any]]] = {}
    for i in items:
        state = i.state if i.kind in ("blocked", "down") else (i.previous or i.state)
        groups.setdefault(i.target or i.vantage, {}).setdefault((i.kind, state), []).append(i)
    return [Outlet(name, tuple(_line(kind, state, rows, "at", "detected_at")
                               for (kind, state), rows in per.items()))
            for name, per in groups.items()]
