"""Incremental builds: which outlets' pages a build must render again.

An outlet's own files (`<lang>/t/<slug>.html`, `<lang>/badge/<slug>.svg`) and its row of the
index are a function of its part of the model (`TargetDetail`: current cells with what may be
said of them, daily history, events, cases, incidents) and of a few site-wide inputs (code,
config, languages, vantage labels, the target list, the date). The build keeps a fingerprint of
each in the site folder (`STATE`) and renders only outlets whose fingerprint changed, plus every
page that aggregates (index, filter pages, incidents, feeds, status.json), which are cheap.

Time: an outlet's page is written as of its newest data (`page_time`), not of the clock, so a page
left alone reads byte for byte as a page rendered now would. What the clock does change on it is
what may be said (fresh, stale, not measured: `Cell.shown`, computed at the build's time) and the
date (the 90-day bars, "today"): the first is part of the outlet's fingerprint, the second of the
site-wide one (the first build of a UTC day renders everything).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path

import blockwatch
from blockwatch.site.load import RollupRec
from blockwatch.site.model import SiteModel, TargetDetail
from blockwatch.site.render import SiteInfo

STATE = ".blockwatch-site-state.json"  # dot-files: `serve` never serves them
LOCK = ".blockwatch-site.lock"
STATE_VERSION = 1


def _digest(value: object) -> str:
    # repr of frozen dataclasses, tuples and dicts built from the database in a fixed order:
    # the same data gives the same text (no sets in the model)
    return hashlib.sha256(repr(value).encode("utf-8", "surrogatepass")).hexdigest()


@cache
def code_version() -> str:
    """blockwatch's version and a hash of its source and site templates: an upgrade, or an edit
    of any template or module, renders every page again."""
    root = Path(blockwatch.__file__).resolve().parent
    h = hashlib.sha256(blockwatch.__version__.encode())
    files = sorted([*root.rglob("*.py"), *(root / "templates" / "site").rglob("*")])
    for p in files:
        if p.is_file():
            h.update(p.relative_to(root).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def site_key(m: SiteModel, info: SiteInfo, config: str = "") -> str:
    """What every outlet page depends on besides its own data: a change renders everything.
    `info`: the title, base URL and languages; `config`: a digest of the rest of the
    configuration the pages depend on (schedule, quorum; `commands.config_key`); the target
    list and the vantages' public labels are here."""
    return _digest((STATE_VERSION, code_version(), info, config, m.now.date(),
                    tuple((s.target.id, s.target.name, s.slug) for s in m.statuses),
                    tuple(sorted(m.vantages.items())), tuple(m.columns)))


def page_time(d: TargetDetail, now: datetime) -> datetime:
    """The time an outlet's page is written as of: the newest time among what it shows (a
    check, an event, an incident) up to `now`. Nothing at all: `now` (the page is then rendered
    on every build, which costs little: it is nearly empty)."""
    times = [u.last_seen_at for c in d.status.cells if c is not None for u in c.urls
             if u.last_seen_at is not None]
    for e in d.events:
        times += [e.detected_at, e.ended_at or e.detected_at]
    times += [i.occurred_at for i, _ in d.incidents]
    # a time after `now` (a clock ahead, a feed's future date) counts once it has passed
    return max((t for t in times if t <= now), default=now)


def history_marks(rollups: Iterable[RollupRec], today: date) -> dict[int, tuple[object, ...]]:
    """Per target, what tells whether its daily history changed, without hashing 90 days of
    rows: how many rows the window has, and the rows of today and yesterday. A build rolls up
    only today, yesterday and days that have no rows at all (rollup.days_to_roll_up), so an
    older row never changes once written; a day filled in late adds rows, which the count sees.
    The window itself moves with the date, which is in the site key."""
    count: dict[int, int] = defaultdict(int)
    recent: dict[int, list[tuple[int, int, str, int]]] = defaultdict(list)
    since = today - timedelta(days=1)
    for r in rollups:
        count[r.target_id] += 1
        if r.day >= since:
            recent[r.target_id].append((r.vantage_id, r.day.toordinal(), r.worst, r.minutes))
    return {t: (n, tuple(sorted(recent[t]))) for t, n in count.items()}


def outlet_key(d: TargetDetail, as_of: datetime, history: tuple[object, ...] = ()) -> str:
    """Everything the outlet's pages and index row are made of: its current state (cells and
    what may be said of them), events, cases, incidents, page time and `history_marks`. The
    model's days and bars are left out: an incremental build computes them only for the
    outlets it renders."""
    status = replace(d.status, days=(), bar=(), bar_index=())
    return _digest((status, d.events, d.cases_by_event, d.incidents, as_of, history))


def outlet_files(slug: str, languages: Iterable[str]) -> list[str]:
    return [p for lang in languages for p in (f"{lang}/t/{slug}.html", f"{lang}/badge/{slug}.svg")]


@dataclass
class State:
    """What the last build rendered: the site-wide key, each outlet's key and index rows."""

    site: str = ""
    outlets: dict[int, str] = field(default_factory=dict)
    rows: dict[str, dict[int, str]] = field(default_factory=dict)  # lang -> target id -> <tr>


def read_state(out_dir: Path) -> State | None:
    """None when there is none or it is not ours to trust (another version, damaged)."""
    try:
        raw = json.loads((out_dir / STATE).read_text(encoding="utf-8"))
        if raw.get("version") != STATE_VERSION:
            return None
        return State(site=str(raw["site"]),
                     outlets={int(k): str(v) for k, v in raw["outlets"].items()},
                     rows={str(lang): {int(k): str(v) for k, v in rows.items()}
                           for lang, rows in raw["rows"].items()})
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def state_bytes(state: State) -> bytes:
    return json.dumps({"version": STATE_VERSION, "site": state.site,
                       "outlets": {str(k): v for k, v in sorted(state.outlets.items())},
                       "rows": {lang: {str(k): v for k, v in sorted(rows.items())}
                                for lang, rows in state.rows.items()}},
                      ensure_ascii=False, separators=(",", ":")).encode("utf-8")


@contextmanager
def folder_lock(out_dir: Path) -> Iterator[None]:
    """One build at a time per folder: two interleaved builds could leave a state that
    describes pages the other one overwrote."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / LOCK, "a+b") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def drop_state(out_dir: Path) -> None:
    """Before files are written: a build that dies halfway leaves no state claiming pages it
    did not write (the next build is then a full one)."""
    try:
        os.unlink(out_dir / STATE)
    except FileNotFoundError:
        pass


@dataclass(frozen=True)
class Plan:
    full: bool
    why: str  # why everything is rendered ("" for an incremental build)
    render: frozenset[int]  # outlets whose pages are rendered
    keys: dict[int, str]  # every outlet's new key
    as_of: dict[int, datetime]  # every outlet's page time
    site: str


def plan(m: SiteModel, info: SiteInfo, out_dir: Path, state: State | None,
         history: dict[int, tuple[object, ...]], *, config: str = "",
         force: bool = False) -> Plan:
    """Which outlets to render: all on a full build (asked for, no usable state, or a site-wide
    input changed), else those whose key changed or whose files or index rows are missing.
    `m` need not hold the daily history (outlet_key leaves it out)."""
    as_of = {tid: page_time(d, m.now) for tid, d in m.details.items()}
    keys = {tid: outlet_key(d, as_of[tid], history.get(tid, ())) for tid, d in m.details.items()}
    site = site_key(m, info, config)
    languages = info.languages
    why = ("asked for (--full)" if force else "no earlier build state" if state is None
           else "code, configuration, targets, vantages or date changed"
           if state.site != site else "")
    if why or state is None:
        return Plan(True, why, frozenset(keys), keys, as_of, site)
    render = set()
    for s in m.statuses:
        tid = s.target.id
        if (state.outlets.get(tid) != keys[tid]
                or any(tid not in state.rows.get(lang, {}) for lang in languages)
                or not all((out_dir / p).is_file() for p in outlet_files(s.slug, languages))):
            render.add(tid)
    return Plan(False, "", frozenset(render), keys, as_of, site)
