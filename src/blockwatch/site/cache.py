"""What the daemon keeps in memory between its site builds, so that a build after a round costs
what changed and not the whole site: each outlet's rollup rows and daily history, and the parts
of its pages that do not move with every check (history bars and affected days, timeline
entries, index rows, badges).

Memory only, never on disk: the site folder may be writable by others, and a page part read
back from a file would be markup nobody rendered (the state file's index rows are checked for
that; whole page parts could not be). A `blockwatch site` run starts without it (a cold process
reads every rollup row and renders every page part it needs).

Validity:
- rollup rows: `rollup_marks` (migration 0007) holds a counter per target that triggers on
  daily_rollups move on every change of what the pages show, whoever makes it (late data, a
  hand fix, a restore); a target's rows are read again when its counter moved. The counters are
  read before the rows, in the same read transaction;
- everything else is tied to a scope (the date, the target and vantage lists with everything
  their labels come from, the site's title, languages and configuration key, the code and
  the templates' mtimes): any change drops the whole cache, and the build after it is a cold
  one. Parts are then kept by what they are made of (render.render_target,
  render.index_rows): a part is the output of the same code the full build runs, given the
  same inputs, so a page built with the cache is byte for byte the page built without.

Memory: about 80 MB for 500 outlets in two languages (measured: the daily histories 28 MB,
timeline entries 24, the pages around their parts 14, the rest 12), dropped with the scope.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from blockwatch.site import incremental as inc
from blockwatch.site.load import RollupRec, Snapshot, load_rollups, rollup_gens
from blockwatch.site.model import History, home_country, public_vantages, target_history, window


@dataclass
class SiteCache:
    scope: tuple[object, ...] | None = None
    gens: dict[int, int | None] = field(default_factory=dict)  # counter the rows were read at
    marks: dict[int, tuple[object, ...]] = field(default_factory=dict)
    histories: dict[int, History] = field(default_factory=dict)
    memo: dict[Any, Any] = field(default_factory=dict)  # page parts, see render.py
    # one build at a time uses it (the folder lock already orders builds of one folder)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    reads: int = 0  # rollup rows read by the last build (for tests and the benchmark)

    def clear(self) -> None:
        self.scope = None
        self.gens, self.marks, self.histories, self.memo = {}, {}, {}, {}

    def use(self, scope: tuple[object, ...]) -> None:
        """Keep what is cached only if it was made in this scope."""
        if scope != self.scope:
            self.clear()
            self.scope = scope

    def history(self, s: Session, snap: Snapshot
                ) -> tuple[dict[int, tuple[object, ...]], dict[int, History]]:
        """Every target's history marks and daily history, reading again only the rollup rows
        of targets whose counter moved (all of them on the first build of a scope)."""
        gens = rollup_gens(s)
        tids = [t.id for t in snap.targets]
        changed = [t for t in tids if t not in self.gens or self.gens[t] != gens.get(t)]
        self.reads = 0
        if changed:
            every = len(changed) == len(tids)
            rows = load_rollups(s, snap.now, set(tids), set(snap.vantages),
                                None if every else changed)
            self.reads = len(rows)
            by_t: dict[int, list[RollupRec]] = defaultdict(list)
            for r in rows:
                by_t[r.target_id].append(r)
            marks = inc.history_marks(rows)
            pv = public_vantages(snap.vantages, home_country(snap.targets))
            days = window(snap.now.date())
            for t in changed:
                mine = by_t.get(t, [])
                mark = marks.get(t, ())
                # built again whenever the counter moved (not only when the checksum did: the
                # counter is exact), kept as the same object otherwise: render.py keeps page
                # parts by identity
                self.histories[t] = target_history(mine, days, pv)
                self.marks[t], self.gens[t] = mark, gens.get(t)
        return ({t: self.marks[t] for t in tids if self.marks[t]},
                {t: self.histories[t] for t in tids})


def scope_of(snap: Snapshot, out_dir: Path, info: object, config: str) -> tuple[object, ...]:
    """What every cached part depends on besides its own data (see the module's docstring):
    targets by id, name (their file names) and country (which country is home), vantages with
    everything their labels are made of."""
    return (inc.STATE_VERSION, inc.code_version(), inc.template_stamp(), str(out_dir), info,
            config, snap.now.date(), tuple((t.id, t.name, t.country) for t in snap.targets),
            tuple(sorted(snap.vantages.items())))
