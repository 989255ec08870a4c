"""Cases and agreement between networks, as the status page and status.json show them. Pure.

The outlet's headline says "blocked" only when enough networks of one country agree
(analysis.quorum); a single network disagreeing with the rest stays visible on the outlet's page
(its card, and a line saying how many networks report it), but does not make the headline.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from blockwatch.analysis import display as D
from blockwatch.analysis import quorum as Q
from blockwatch.site.load import EventRec, IncidentRec


class _Cell(Protocol):  # model.Cell, without importing the model (it imports this module)
    @property
    def shown(self) -> D.Shown: ...
    @property
    def inside(self) -> bool: ...
    @property
    def vantage(self) -> Any: ...
    @property
    def for_outlet(self) -> D.Shown: ...


def agreements(cells: Iterable[_Cell | None], quorum: int) -> tuple[Q.Agreement, ...]:
    """Per vantage country (sorted), how many of the outlet's networks report it blocked."""
    return tuple(Q.of_vantages(((c.vantage.country, c.vantage.kind, c.shown) for c in cells
                                if c is not None), quorum).values())


def headline(cells: Sequence[_Cell | None], shown: D.OutletShown,
             quorum: int) -> tuple[D.OutletShown, tuple[Q.Agreement, ...]]:
    """The outlet's headline with agreement applied: "blocked" needs a quorum in some country;
    without one, the headline is what the other networks say (reachable, down, not known)."""
    ags = agreements(cells, quorum)
    if shown.display != D.BLOCKED or Q.any_agreed(ags):
        return shown, ags
    rest = [(c.for_outlet, c.inside) for c in cells
            if c is not None and c.for_outlet.display != D.BLOCKED]
    return D.outlet(rest), ags


def agreement_json(ags: Iterable[Q.Agreement]) -> list[dict[str, object]]:
    return [{"country": a.country, "blocked": a.blocked, "measured": a.measured,
             "vantages": a.vantages, "needed": a.needed, "agreed": a.agreed} for a in ags]


def cases_json(events: Iterable[EventRec], cases_by_event: Mapping[int, list[IncidentRec]],
               iso: Any) -> list[dict[str, object]]:
    """An outlet's cases: each report linked with one of its blocking events, newest first."""
    out: list[tuple[datetime, int, int, dict[str, object]]] = []
    for e in events:
        for i in cases_by_event.get(e.id, []):
            out.append((i.occurred_at, i.id, e.id, {
                "incident": i.id, "title": i.title, "url": i.link, "publisher": i.publisher,
                "source": i.source, "types": list(i.types), "status": i.status,
                "reviewed": i.reviewed,  # a person confirmed it (else found by the extractor alone)
                "published": iso(i.occurred_at), "event": e.id, "kind": e.state,
                "started_at": iso(e.started_at)}))
    out.sort(key=lambda x: (x[0], x[1], x[2]), reverse=True)
    return [x[3] for x in out]
