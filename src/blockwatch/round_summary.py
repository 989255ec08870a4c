"""One line per round and import for the log (pure): what an operator reads to know the daemon
works. "probe round 12 from vps: 80 URLs in 24s: 71 ok, 5 blocked (dns 3, tls 2), 2 down,
2 inconclusive"."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from blockwatch.analysis.verdict import BLOCKING
from blockwatch.durations import format_duration


def plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def verdict_counts(verdicts: Iterable[str]) -> str:
    """"71 ok, 5 blocked (dns 3, tls 2), 2 down, 2 inconclusive": the display's groups, the
    blocking kinds most frequent first; groups with none left out ("no verdicts" when empty)."""
    c = Counter(verdicts)
    blocked = sorted(((k, n) for k, n in c.items() if k in BLOCKING), key=lambda kn: (-kn[1], kn[0]))
    parts = []
    if c["ok"]:
        parts.append(f"{c['ok']} ok")
    if blocked:
        parts.append(f"{sum(n for _, n in blocked)} blocked ("
                     + ", ".join(f"{k} {n}" for k, n in blocked) + ")")
    for k in ("down", "inconclusive"):
        if c[k]:
            parts.append(f"{c[k]} {k}")
    other = sum(n for k, n in c.items() if k not in BLOCKING and k not in ("ok", "down",
                                                                           "inconclusive"))
    if other:  # a verdict name this module does not know: counted, never hidden
        parts.append(f"{other} other")
    return ", ".join(parts) or "no verdicts"


def round_line(kind: str, number: int | None, vantage: str, urls: int, seconds: float,
               verdicts: list[str], events: int = 0) -> str:
    """One vantage's part of a round. `urls`: the URLs the round set out to measure; fewer
    verdicts than that means some had no result (an error logged above)."""
    head = f"{kind} round {number}" if number is not None else f"{kind} round"
    line = (f"{head} from {vantage}: {plural(urls, 'URL')} in {format_duration(seconds)}: "
            f"{verdict_counts(verdicts)}")
    if len(verdicts) < urls:
        line += f"; {urls - len(verdicts)} without a result (errors above)"
    if events:
        line += f"; {plural(events, 'new event')}"
    return line
