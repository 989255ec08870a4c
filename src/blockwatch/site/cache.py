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

Memory bound (`[site] cache_limit`): everything is kept per outlet (its history and every part
of its pages), and the cache keeps a running estimate of its size (`_part_size`,
`_history_size`). Over the limit, whole outlets go, the least recently rendered first (among
those rendered by the same build, the one cached last): an outlet that is not kept is read from
the database and rendered from scratch by the next build that needs it, so any limit gives the
same pages, only at another cost. Outlets are let in while there is room; during a build only
outlets that build does not render are evicted for one it renders, so a cache half the size it
would need keeps the same half from build to build instead of evicting what the rest of the
build is about to use. After each build, the parts of the outlets it rendered that it did not
use are dropped (timeline entries of events the page no longer shows, the card of a network
that no longer measures the outlet): what is kept is what the pages are made of now.

Memory (benchmarks/bench_site.py --deep; the estimate within 6% of the real size): 76 MB for
500 outlets in two languages (the daily histories 26 MB, timeline entries 24, the pages around
their parts 14, the rest 12), 197 MB for 1,000 outlets in three; 583 MB when each of those has
a full 100-event timeline (timeline entries 447), which the default limit holds to 247 MB.
"""

from __future__ import annotations

import heapq
import sys
import threading
from collections import defaultdict
from collections.abc import Collection, Iterator, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from blockwatch.site import incremental as inc
from blockwatch.site.load import RollupRec, Snapshot, load_rollups, rollup_gens
from blockwatch.site.model import History, home_country, public_vantages, target_history, window

# 256 MB: the caches measured (500 outlets in two languages 76 MB, 1,000 in three 197 MB, its
# estimate 200) are kept whole, with a quarter to spare for longer names and reasons; 1,000
# outlets each with a full 100-event timeline in three languages (583 MB) are held to it, so a
# 1 GB machine is not run out of memory by a cache
DEFAULT_LIMIT = 256 * 10**6

# What the size estimate counts (sys.getsizeof of every kept string and bytes object, which is
# its real size: a Cyrillic page is two bytes a character), plus fixed guesses for the rest,
# measured against the cache's real size (benchmarks/bench_site.py --deep): a dict slot and
# the key tuple per part, the tuples and records a part is checked against (an event's record,
# a card's reason, a row's per-network states), a day or segment of a history. Objects shared
# with the outlet's history (a part's days and bars) are counted once, with the history.
_ENTRY = 200  # a dict slot, the key tuple, the value tuple
_EVENT = 180  # its share of the EventRec (times, reason keys; one per language) and cases' list
_CARD = 120  # made_of: the shown state, reason keys
_ROW_CELL = 80  # made_of: a network's (display, kind, since) tuple
_PAGE = 600  # made_of: the target, agreements, findings, incidents
_INCIDENT = 400  # an incident the page lists (its title and link counted apart)
_SUB = 110  # a bar or affected-days row kept inside the history part: its dict slot and key
_DAY = 110  # a Day (a tuple, its minutes)
_SEG = 125  # a Segment
_HISTORY = 600  # the History, its per-network records, the outlet's bookkeeping

_gs = sys.getsizeof


def _part_size(key: tuple[Any, ...], v: Any) -> int:
    """The estimated size of one page part (render.py's shapes, by the kind in its key)."""
    kind = key[0]
    if kind == "event":  # (event, held until, cases, html)
        e, _held, cases, html = v
        return (_ENTRY + _EVENT + _gs(html) + _gs(e.reason) + _gs(e.url)
                + sum(_INCIDENT for _ in cases))
    if kind == "card":  # (made_of, html)
        made_of, html = v
        return _ENTRY + _CARD + _gs(html) + _gs(made_of[4])
    if kind == "page":  # (made_of, pieces)
        made_of, pieces = v
        return (_ENTRY + _PAGE + _gs(pieces) + sum(_gs(p) for p in pieces)
                + sum(_INCIDENT + _gs(i.title) + _gs(i.link) for i, _ in made_of[10]))
    if kind == "row":  # (days, bar_index, made_of, html)
        return _ENTRY + _gs(v[3]) + _ROW_CELL * len(v[2][4])
    if kind == "history":  # (days, bar, history, top, section, bars, rows)
        _d, _b, _h, top, section, bars, rows = v
        return (_ENTRY + _gs(top) + _gs(section) + _gs(bars) + _gs(rows)
                + sum(_SUB + _gs(x) for x in bars.values())
                + sum(_SUB + _gs(x) for x in rows.values()))
    if kind == "badge":  # (made_of, svg)
        return _ENTRY + _gs(v[1]) + _gs(v[0][0])
    raise ValueError(f"unknown page part {kind!r}")


def _history_size(h: History) -> int:
    days = len(h.days) + sum(len(vh.days) for vh in h.vantages)
    segs = len(h.bar) + len(h.bar_index) + sum(len(vh.bar) for vh in h.vantages)
    return _HISTORY + _DAY * days + _SEG * segs


class _Outlet:
    """Everything kept of one outlet: the unit of eviction."""

    __slots__ = ("gen", "history", "mark", "parts", "seq", "size", "used")

    def __init__(self, seq: int, used: int) -> None:
        self.gen: int | None = None  # the counter its rows were read at
        self.mark: tuple[object, ...] = ()
        self.history: History | None = None
        self.parts: dict[Any, Any] = {}  # page parts by render.py's key
        self.size = 0  # estimated bytes of all of it
        self.seq = seq  # when it was let in: of outlets rendered by the same build, the
        #                 last one let in goes first
        self.used = used  # the last build that rendered it


class Parts(MutableMapping[Any, Any]):
    """The page parts render.py keeps, by key; each key is `(kind, target id, ...)`, so every
    part belongs to an outlet and goes with it. Reads and writes through `get` and `[]=`
    (render.py's only uses) keep the size estimate and the limit."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.outlets: dict[int, _Outlet] = {}
        self.size = 0
        self.build = 0  # builds made with it
        self.evicted = 0  # outlets evicted (for tests and the benchmark)
        self._seq = 0
        # per build (begin): what it renders, the parts it used, outlets it turned away, and
        # eviction candidates: those it does not render (stalest first, as a stack) and those
        # it does (last let in first, as a heap of (-seq, tid))
        self._render: frozenset[int] = frozenset()
        self._seen: set[Any] = set()
        self._refused: set[int] = set()
        self._stale: list[int] = []
        self._rendered: list[tuple[int, int]] = []

    # --- render.py's interface ---------------------------------------------------------------

    def get(self, key: Any, default: Any = None) -> Any:
        o = self.outlets.get(key[1])
        if o is None:
            return default
        v = o.parts.get(key)
        if v is None:
            return default
        self._seen.add(key)
        return v

    def __setitem__(self, key: Any, value: Any) -> None:
        tid = key[1]
        o = self.outlets.get(tid)
        n = _part_size(key, value)
        if o is None:
            if tid in self._refused or not self._room(n):
                self._refused.add(tid)  # its other parts too: an outlet is kept whole or not
                return
            o = self._admit(tid)
        old = o.parts.get(key)
        grow = n - (_part_size(key, old) if old is not None else 0)
        o.parts[key] = value
        o.size += grow
        self.size += grow
        self._seen.add(key)
        self._shrink()

    def __getitem__(self, key: Any) -> Any:
        v = self.get(key)
        if v is None:
            raise KeyError(key)
        return v

    def __delitem__(self, key: Any) -> None:
        o = self.outlets[key[1]]
        v = o.parts.pop(key)
        n = _part_size(key, v)
        o.size -= n
        self.size -= n

    def __iter__(self) -> Iterator[Any]:
        return (k for o in list(self.outlets.values()) for k in list(o.parts))

    def __len__(self) -> int:
        return sum(len(o.parts) for o in self.outlets.values())

    # --- histories (SiteCache.history) -------------------------------------------------------

    def keep_history(self, tid: int, gen: int | None, mark: tuple[object, ...],
                     h: History) -> None:
        """A history read again. A new outlet is let in only if there is room: before the
        plan nothing is evicted (which outlets the build renders is not known yet)."""
        n = _history_size(h)
        o = self.outlets.get(tid)
        if o is None:
            if not self._room(n):
                return
            o = self._admit(tid)
        grow = n - (_history_size(o.history) if o.history is not None else 0)
        o.gen, o.mark, o.history = gen, mark, h
        o.size += grow
        self.size += grow

    # --- a build -----------------------------------------------------------------------------

    def begin(self, render: Collection[int]) -> None:
        """Before the pages: `render`, the outlets the build renders. Evicts down to the
        limit (it may have been lowered, or histories grown)."""
        self._render = frozenset(render)
        self._seen, self._refused = set(), set()
        for tid in self._render:
            o = self.outlets.get(tid)
            if o is not None:
                o.used = self.build
        # stalest last (popped first): the least recently rendered, the last let in of those
        # rendered by the same build
        stale = sorted((t for t in self.outlets if t not in self._render),
                       key=lambda t: (self.outlets[t].used, -self.outlets[t].seq), reverse=True)
        self._stale = stale
        self._rendered = [(-o.seq, t) for t, o in self.outlets.items() if t in self._render]
        heapq.heapify(self._rendered)
        self._shrink()

    def end(self) -> None:
        """After the pages: the parts of rendered outlets that no page used are dropped."""
        for tid in self._render:
            o = self.outlets.get(tid)
            if o is None:
                continue
            gone = [k for k in o.parts if k not in self._seen]
            for k in gone:
                del self[k]
        self.start()
        self._shrink()

    def start(self) -> None:
        """No build under way (also at the start of one: a build that failed did not end)."""
        self._render, self._seen, self._refused = frozenset(), set(), set()
        self._stale, self._rendered = [], []

    def _room(self, n: int) -> bool:
        """Whether an outlet not kept may come in with `n` bytes: within the limit, or by
        evicting outlets this build does not render."""
        if self.limit is None:
            return True
        while self.size + n > self.limit and self._stale:
            self._evict_stale()
        return self.size + n <= self.limit

    def _admit(self, tid: int) -> _Outlet:
        self._seq += 1
        o = self.outlets[tid] = _Outlet(self._seq, self.build)
        if tid in self._render:
            heapq.heappush(self._rendered, (-o.seq, tid))
        return o

    def _shrink(self) -> None:
        if self.limit is None:
            return
        while self.size > self.limit and self.outlets:
            if not self._evict_stale():
                self._evict_rendered()

    def _evict_stale(self) -> bool:
        while self._stale:
            tid = self._stale.pop()
            if tid in self.outlets and tid not in self._render:
                self._evict(tid)
                return True
        return False

    def _evict_rendered(self) -> None:
        while self._rendered:
            neg_seq, tid = heapq.heappop(self._rendered)
            o = self.outlets.get(tid)
            if o is not None and o.seq == -neg_seq:
                self._evict(tid)
                return
        # outside a build (no candidates listed): the least recently rendered
        tid = min(self.outlets, key=lambda t: (self.outlets[t].used, -self.outlets[t].seq))
        self._evict(tid)

    def _evict(self, tid: int) -> None:
        o = self.outlets.pop(tid)
        self.size -= o.size
        self.evicted += 1
        if tid in self._render:
            self._refused.add(tid)  # not let in again by this build


@dataclass
class SiteCache:
    """`limit`: the most bytes (estimated) to keep; None: no limit. 0 keeps nothing (the
    daemon then builds without a cache)."""

    limit: int | None = DEFAULT_LIMIT
    scope: tuple[object, ...] | None = None
    memo: Parts = field(init=False, repr=False)  # every outlet's history and page parts, see render.py
    # one build at a time uses it (the folder lock already orders builds of one folder)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    reads: int = 0  # rollup rows read by the last build (for tests and the benchmark)

    def __post_init__(self) -> None:
        self.memo = Parts(self.limit)

    @property
    def size(self) -> int:
        """The estimated bytes kept."""
        return self.memo.size

    def set_limit(self, limit: int | None) -> None:
        """A new limit (a configuration reload), applied from the next build on."""
        self.limit = self.memo.limit = limit

    def clear(self) -> None:
        self.scope = None
        self.memo = Parts(self.limit)

    def use(self, scope: tuple[object, ...]) -> None:
        """Keep what is cached only if it was made in this scope."""
        if scope != self.scope:
            self.clear()
            self.scope = scope
        self.memo.start()
        self.memo.build += 1

    def history(self, s: Session, snap: Snapshot
                ) -> tuple[dict[int, tuple[object, ...]], dict[int, History]]:
        """Every target's history marks and daily history, reading again only the rollup rows
        of targets whose counter moved or that are not kept (all of them on the first build of
        a scope)."""
        gens = rollup_gens(s)
        tids = [t.id for t in snap.targets]
        outlets = self.memo.outlets
        marks: dict[int, tuple[object, ...]] = {}
        histories: dict[int, History] = {}
        changed = []
        for t in tids:
            o = outlets.get(t)
            if o is not None and o.history is not None and o.gen == gens.get(t):
                marks[t], histories[t] = o.mark, o.history
            else:
                changed.append(t)
        self.reads = 0
        if changed:
            every = len(changed) == len(tids)
            rows = load_rollups(s, snap.now, set(tids), set(snap.vantages),
                                None if every else changed)
            self.reads = len(rows)
            by_t: dict[int, list[RollupRec]] = defaultdict(list)
            for r in rows:
                by_t[r.target_id].append(r)
            new_marks = inc.history_marks(rows)
            pv = public_vantages(snap.vantages, home_country(snap.targets))
            days = window(snap.now.date())
            for t in changed:
                # built again whenever the counter moved (not only when the checksum did: the
                # counter is exact), kept as the same object otherwise: render.py keeps page
                # parts by identity
                h = histories[t] = target_history(by_t.get(t, []), days, pv)
                marks[t] = new_marks.get(t, ())
                self.memo.keep_history(t, gens.get(t), marks[t], h)
        return ({t: marks[t] for t in tids if marks[t]}, {t: histories[t] for t in tids})

    def begin(self, render: Collection[int]) -> None:
        self.memo.begin(render)

    def end(self) -> None:
        self.memo.end()


def scope_of(snap: Snapshot, out_dir: Path, info: object, config: str) -> tuple[object, ...]:
    """What every cached part depends on besides its own data (see the module's docstring):
    targets by id, name (their file names) and country (which country is home), vantages with
    everything their labels are made of."""
    return (inc.STATE_VERSION, inc.code_version(), inc.template_stamp(), str(out_dir), info,
            config, snap.now.date(), tuple((t.id, t.name, t.country) for t in snap.targets),
            tuple(sorted(snap.vantages.items())))
