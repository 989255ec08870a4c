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



# largest first; weeks are left out: "14d" reads more plainly than "2w"
_SHOWN = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def format_duration(value: timedelta | float) -> str:
    """A duration (a timedelta or seconds) as people write it and `parse_duration` reads it:
    "850ms", "2.5s", "24s", "15m", "1h30m", "1d". At most two units, the larger two, the rest
    rounded: "1h29m59.6s" is "1h30m"."""
    secs = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if secs < 0:
        return "-" + format_duration(-secs)
    if secs == 0:
        return "0s"
    if secs < 0.9995:
        return f"{max(1, round(secs * 1000))}ms"
    if secs < 9.95:
        return f"{secs:.1f}".removesuffix(".0") + "s"
    i = next(i for i, (_, size) in enumerate(_SHOWN) if secs >= size)
    step = _SHOWN[min(i + 1, len(_SHOWN) - 1)][1]  # the smaller unit shown: round to it
    rest = round(secs / step) * step
    if i > 0 and rest >= _SHOWN[i - 1][1]:  # rounded up into the larger unit: "60m" is "1h"
        i -= 1
        step = _SHOWN[i + 1][1]
        rest = round(rest / step) * step
    parts = []
    for unit, size in _SHOWN[i:i + 2]:
        if rest >= size:
            parts.append(f"{int(rest // size)}{unit}")
            rest %= size
    return "".join(parts)
