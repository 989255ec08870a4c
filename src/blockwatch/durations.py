"""Durations as users write them in config and on the command line: "10s", "15m", "24h", "7d"."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# longer than any interval, lookback or retention makes sense for; far below timedelta's limit
# and leaves room for "now minus it" (datetime starts at the year 1)
MAX = timedelta(days=100 * 366)


class DurationTooLong(ValueError):
    """A well-formed duration past MAX ("99999999999d")."""
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration(text: str) -> timedelta:
    """Parse "90s", "15m", "1h30m", "7d"; raise ValueError with the accepted forms."""
    s = text.strip().lower().replace(" ", "")
    if not s:
        raise ValueError("empty duration; expected a number with a unit, like 10s, 15m, 24h, 7d")
    pos = 0
    total = 0.0
    for m in _PART.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(s):
        raise ValueError(
            f"{text!r} is not a duration; expected a number with a unit (ms, s, m, h, d, w), "
            "like 10s, 15m, 24h, 7d"
        )
    if total > MAX.total_seconds():
        raise DurationTooLong(f"{text!r} is too long a duration; at most 100 years")
    return timedelta(seconds=total)

