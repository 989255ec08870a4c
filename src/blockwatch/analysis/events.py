"""The state machine of one (URL, vantage): a new state becomes an event only after it holds for
`confirm_after` consecutive rounds; an `inconclusive` round neither confirms nor resets a pending
change. Pure: the caller loads and stores the state."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime


@dataclass(frozen=True)
class UrlState:
    state: str | None = None  # the confirmed state; None before the first confirmation
    since: datetime | None = None
    pending: str | None = None
    pending_count: int = 0
    pending_since: datetime | None = None


@dataclass(frozen=True)
class Transition:
    previous: str | None
    state: str
    started_at: datetime  # when the new state was first seen
    detected_at: datetime  # when it was confirmed


def step(s: UrlState, verdict: str, at: datetime, confirm_after: int) -> tuple[UrlState, Transition | None]:
    if verdict == "inconclusive":
        return s, None
    if verdict == s.state:
        return replace(s, pending=None, pending_count=0, pending_since=None), None
    if verdict == s.pending:
        count, since = s.pending_count + 1, s.pending_since or at
    else:
        count, since = 1, at
    if count >= confirm_after:
        t = Transition(previous=s.state, state=verdict, started_at=since, detected_at=at)
        return UrlState(state=verdict, since=since), t
    return replace(s, pending=verdict, pending_count=count, pending_since=since), None
