"""Which incidents and blocking events form a case. Pure: the caller loads and stores."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from blockwatch.vocabulary import BLOCKING

# Event states that mean "blocked"; down, inconclusive and ok are not.
BLOCKING_STATES = BLOCKING


@dataclass(frozen=True)
class IncidentRef:
    id: int
    outlets: tuple[str, ...]  # target names
    occurred_at: datetime


@dataclass(frozen=True)
class EventRef:
    id: int
    target: str  # target name
    state: str
    started_at: datetime


def match_cases(incidents: Iterable[IncidentRef], events: Iterable[EventRef],
                window: timedelta) -> list[tuple[int, int]]:
    """(incident id, event id) for every incident and blocking event of the same outlet whose
    times are at most `window` apart, either way. The event's time is when the blocking state
    started (the state change), so a block that began long before the incident and still holds
    is not linked: the window is about coincidence in time."""
    by_target: dict[str, list[EventRef]] = {}
    for e in events:
        if e.state in BLOCKING_STATES:
            by_target.setdefault(e.target, []).append(e)
    pairs: set[tuple[int, int]] = set()
    for inc in incidents:
        for outlet in inc.outlets:
            for e in by_target.get(outlet, ()):
                if abs(e.started_at - inc.occurred_at) <= window:
                    pairs.add((inc.id, e.id))
    return sorted(pairs)
