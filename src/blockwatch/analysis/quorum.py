"""Whether the vantages of one country agree that an outlet is blocked there. Pure.

One network's odd result (a flaky ISP link, a captive portal, a volunteer's office firewall) must
not page anyone or make the headline "blocked": per outlet and country, `quorum` vantages must
report it blocked. 0 means the default: 1 when the country has one vantage, 2 otherwise. It is
never more than the vantages that measured (a usable, fresh result): when only one network of
the country could look, its result suffices and the text says "1 of 1 network".

Used by the alert scan, the status page's headline and model, status.json and the digest, so
they cannot disagree about what counts as blocked.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from blockwatch.analysis import display as D


@dataclass(frozen=True)
class Agreement:
    country: str
    blocked: int  # vantages that report it blocked
    measured: int  # vantages with a usable fresh result (reachable, blocked or down)
    vantages: int  # vantages of the country that test the outlet
    needed: int  # how many blocked reports make it agreed
    # every blocked report is interference or slowing (http_diff, http_failure, throttled), none
    # a block (DNS, IP, TLS, block page): the wording says "interfered with", the rule is the same
    interfered: bool = False

    @property
    def agreed(self) -> bool:
        return self.blocked > 0 and self.blocked >= self.needed

    @property
    def dissent(self) -> bool:
        """Some network says blocked, not enough others agree: shown, never alerted."""
        return self.blocked > 0 and not self.agreed


def needed(quorum: int, vantages: int, measured: int) -> int:
    """Blocked reports required: `quorum` (0: 1 for a one-vantage country, else 2), capped at
    the vantages that measured, and at least 1."""
    base = quorum if quorum > 0 else (1 if vantages <= 1 else 2)
    return max(1, min(base, measured))


# the blocking verdicts that are interference or slowing rather than a block (the site's
# "interfered" group); the words only, never the quorum rule
INTERFERED = frozenset({"http_diff", "http_failure", "throttled"})


def agreement(country: str, displays: Iterable[str], quorum: int = 0,
              kinds: Iterable[str | None] = ()) -> Agreement:
    """One outlet in one country: `displays` holds one display state (analysis.display) per
    vantage of that country that tests the outlet; `kinds`, the verdicts of those blocked."""
    ds = list(displays)
    blocked = sum(1 for d in ds if d == D.BLOCKED)
    measured = sum(1 for d in ds if d in D.MEASURED)
    ks = [k for k in kinds if k]
    return Agreement(country, blocked, measured, len(ds), needed(quorum, len(ds), measured),
                     bool(ks) and all(k in INTERFERED for k in ks))


def by_country(cells: Iterable[tuple[str, str] | tuple[str, str, str | None]],
               quorum: int = 0) -> dict[str, Agreement]:
    """(vantage country, display[, kind]) per vantage -> agreement per country, sorted."""
    groups: dict[str, list[str]] = {}
    kinds: dict[str, list[str | None]] = {}
    for country, display, *kind in cells:
        groups.setdefault(country, []).append(display)
        if display == D.BLOCKED and kind:
            kinds.setdefault(country, []).append(kind[0])
    return {c: agreement(c, groups[c], quorum, kinds.get(c, ())) for c in sorted(groups)}


def of_vantages(cells: Iterable[tuple[str, str, D.Shown]],
                quorum: int = 0) -> dict[str, Agreement]:
    """(vantage country, vantage kind, what it shows for the outlet) per vantage -> agreement
    per country. The one rule the status page, status.json, the alert scan and the digest use:
    a DNS-only vantage's non-blocked result is not a measurement (display.for_outlet)."""
    outlet = [(country, D.for_outlet(shown, kind)) for country, kind, shown in cells]
    return by_country(((country, sh.display, sh.kind) for country, sh in outlet), quorum)


def any_agreed(agreements: Iterable[Agreement]) -> bool:
    return any(a.agreed for a in agreements)
