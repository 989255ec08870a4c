"""Incremental builds: which outlets' pages a build must render again.

An outlet's own files (`<lang>/t/<slug>.html`, `<lang>/badge/<slug>.svg`) and its row of the
index are a function of its part of the model (`TargetDetail`: current cells with what may be
said of them, daily history, events, cases, incidents) and of a few site-wide inputs (code,
config, languages, vantage labels, the target list, the date). The build keeps a fingerprint of
each in the site folder (`STATE`) and renders only outlets whose fingerprint changed, plus every
page that aggregates (index, filter pages, incidents, feeds, status.json), which are cheap.

Time: an outlet's page is written as of its newest data (`page_time`: checks, event starts and
ends), not of the clock, so a page left alone reads byte for byte as a page rendered now would.
What the clock does change on it is what may be said (fresh, stale, not measured: `Cell.shown`,
computed at the build's time) and the date (the 90-day bars, "today"): the first is part of the
outlet's fingerprint, the second of the site-wide one (the first build of a UTC day renders
everything).

What this saves: every check moves its URL's last-check time, which an outlet page shows per
network, so after a local probe round (or an agent's upload of a whole round) every measured
outlet is rendered again; the daemon's in-memory cache (site/cache.py) then makes only the parts
of those pages that changed (their times, mostly). Builds with nothing new, after feed polls, or
after OONI imports and agent uploads touching some outlets render only those.

Trust: the state file lives in a folder others may write. Index rows taken from it must have
the shape our row template makes (`row_ok`: only its tags and attributes, escaped text, links to
outlet pages), or the outlet is rendered again; a kept page must have the size and mtime the
build that wrote it recorded.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import struct
import sys
import zlib
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cache
from pathlib import Path

import blockwatch
from blockwatch.site import render
from blockwatch.site.load import RollupRec
from blockwatch.site.model import SiteModel, TargetDetail
from blockwatch.site.render import SiteInfo

STATE = ".blockwatch-site-state.json"  # dot-files: `serve` never serves them
LOCK = ".blockwatch-site.lock"
STATE_VERSION = 4


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


def template_stamp() -> tuple[tuple[str, int, int], ...]:
    """Each site template's name, mtime and size, read on every build (a dozen stats): Jinja
    reloads a template edited under a running daemon, whose `code_version` is computed once,
    so without this the pages rendered after the edit would mix with pages kept from before."""
    root = render.TEMPLATES
    out = []
    for p in sorted(root.rglob("*")):
        try:
            st = p.stat()
        except FileNotFoundError:
            continue
        if p.is_file():
            out.append((p.relative_to(root).as_posix(), st.st_mtime_ns, st.st_size))
    return tuple(out)


def site_key(m: SiteModel, info: SiteInfo, config: str = "") -> str:
    """What every outlet page depends on besides its own data: a change renders everything.
    `info`: the title, base URL and languages; `config`: a digest of the rest of the
    configuration the pages depend on (schedule, quorum; `commands.config_key`); the target
    list and the vantages' public labels are here; so is the Python version (the keys are
    digests of reprs)."""
    return _digest((STATE_VERSION, code_version(), template_stamp(), sys.version_info[:2],
                    info, config, m.now.date(),
                    tuple((s.target.id, s.target.name, s.slug) for s in m.statuses),
                    tuple(sorted(m.vantages.items())), tuple(m.columns)))


def page_time(d: TargetDetail, now: datetime) -> datetime:
    """The time an outlet's page is written as of ("Data as of" in its footer): its newest
    check or event start or end, up to `now`. Not a news item's time: a fresh report about an
    outlet whose networks went silent days ago must not make its data look current. Nothing
    at all: `now` (the page is then rendered on every build, which costs little: it is nearly
    empty)."""
    times = [u.last_seen_at for c in d.status.cells if c is not None for u in c.urls
             if u.last_seen_at is not None]
    for e in d.events:
        times += [e.detected_at, e.ended_at or e.detected_at]
    # a time after `now` (a clock ahead, a feed's future date) counts once it has passed
    return max((t for t in times if t <= now), default=now)


_WORST = {w: i for i, w in enumerate(
    ("ok", "inconclusive", "dns", "tcp_ip", "tls", "http_blockpage", "http_diff", "throttled",
     "down", "unknown"))}
_ROW = struct.Struct("<qqqq")


def history_marks(rollups: Iterable[RollupRec]) -> dict[int, tuple[object, ...]]:
    """Per target, a checksum of every rollup row of its window: how many rows, and the sum
    (mod 2**64) of each row's 8-byte BLAKE2b over (vantage, day, worst, minutes): what the pages
    show of it (not the measurement count, which every round moves). A sum, so the order the
    database returns rows in does not matter; an unkeyed cryptographic hash of packed
    integers, so the same rows give the same value in every process and changes cannot cancel
    out (CRC-32 is linear: two networks' rows changing in step, a day blocked at both, left
    the sum as it was about once in 100,000 such changes). Any row rewritten, removed or added
    changes it, an older day's included (`blockwatch db` tools, a restore, a hand fix). The
    daemon's cache computes it only for targets whose rows it read again. The window moves with
    the date, which is in the site key."""
    count: dict[int, int] = defaultdict(int)
    total: dict[int, int] = defaultdict(int)
    pack, crc, worst_of, blake, as_int = (_ROW.pack, zlib.crc32, _WORST.get, hashlib.blake2b,
                                          int.from_bytes)
    for r in rollups:
        w = worst_of(r.worst)
        if w is None:
            w = 1000 + crc(r.worst.encode("utf-8", "surrogatepass"))
        count[r.target_id] += 1
        total[r.target_id] += as_int(
            blake(pack(r.vantage_id, r.day.toordinal(), w, r.minutes), digest_size=8).digest())
    return {t: (n, total[t] & 0xFFFF_FFFF_FFFF_FFFF) for t, n in count.items()}


def outlet_key(d: TargetDetail, as_of: datetime, history: tuple[object, ...] = ()) -> str:
    """Everything the outlet's pages and index row are made of: its current state (cells and
    what may be said of them), events, cases, incidents, page time and `history_marks`. The
    model's days and bars are left out: an incremental build computes them only for the
    outlets it renders."""
    status = replace(d.status, days=(), bar=(), bar_index=())
    return _digest((status, d.events, d.cases_by_event, d.incidents, as_of, history,
                    tuple(sorted(d.held_until.items()))))


def outlet_files(slug: str, languages: Iterable[str]) -> list[str]:
    return [p for lang in languages for p in (f"{lang}/t/{slug}.html", f"{lang}/badge/{slug}.svg")]


@dataclass
class State:
    """What the last build rendered: the site-wide key, each outlet's key and index rows, and
    each outlet file's (size, mtime_ns) as that build left it."""

    site: str = ""
    outlets: dict[int, str] = field(default_factory=dict)
    rows: dict[str, dict[int, str]] = field(default_factory=dict)  # lang -> target id -> <tr>
    files: dict[str, tuple[int, int]] = field(default_factory=dict)  # path -> (size, mtime_ns)


def read_state(out_dir: Path) -> State | None:
    """None when there is none or it is not ours to trust (another version, damaged)."""
    try:
        raw = json.loads((out_dir / STATE).read_text(encoding="utf-8"))
        if raw.get("version") != STATE_VERSION:
            return None
        return State(site=str(raw["site"]),
                     outlets={int(k): str(v) for k, v in raw["outlets"].items()},
                     rows={str(lang): {int(k): str(v) for k, v in rows.items()}
                           for lang, rows in raw["rows"].items()},
                     files={str(k): (int(v[0]), int(v[1])) for k, v in raw["files"].items()})
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError):
        return None


def state_bytes(state: State) -> bytes:
    return json.dumps({"version": STATE_VERSION, "site": state.site,
                       "outlets": {str(k): v for k, v in sorted(state.outlets.items())},
                       "rows": {lang: {str(k): v for k, v in sorted(rows.items())}
                                for lang, rows in state.rows.items()},
                       "files": {k: list(v) for k, v in sorted(state.files.items())}},
                      ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def file_stamps(out_dir: Path, paths: Iterable[str]) -> dict[str, tuple[int, int]]:
    """(size, mtime_ns) of each file that exists: one that vanished is left out, so the next
    build renders its outlet again."""
    out = {}
    for p in paths:
        try:
            st = os.stat(out_dir / p)
        except FileNotFoundError:
            continue
        out[p] = (st.st_size, st.st_mtime_ns)
    return out


# The index row as `_row.html` and `render.bar_html` make it: only these tags and attributes,
# text and attribute values escaped the way markupsafe escapes them, links only to an outlet's
# page. A row from the state file of any other shape is not used (the outlet is rendered again):
# the folder may be writable by others, and nothing from it may reach a page as markup.
_CHAR = r'(?:[^<>&"]|&(?:amp|lt|gt|#34|#39);)'
_SLUG = r"[a-z0-9][a-z0-9_-]*+"
_ATTR = (rf' (?:class|title|aria-label|datetime|role|scope)="{_CHAR}*+"'
         rf'| href="t/{_SLUG}\.html"| id="{_SLUG}"')
_TAG = r"(?:th|td|a|span|i|small|div|b|time|abbr)"
_ROW_RE = re.compile(rf'<tr id="{_SLUG}">(?:<{_TAG}(?:{_ATTR})*+>|</{_TAG}>|{_CHAR})*+</tr>\n?')


def row_ok(html: str, slug: str) -> bool:
    """Whether a cached index row has the shape of one we render (see `_ROW_RE`), for this
    outlet."""
    return html.startswith(f'<tr id="{slug}">') and _ROW_RE.fullmatch(html) is not None


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
                or not all(row_ok(state.rows.get(lang, {}).get(tid, ""), s.slug) for lang in languages)
                or not _unchanged(out_dir, state, outlet_files(s.slug, languages))):
            render.add(tid)
    return Plan(False, "", frozenset(render), keys, as_of, site)


def _unchanged(out_dir: Path, state: State, paths: Iterable[str]) -> bool:
    """Each file is there with the size and mtime the last build recorded: a page deleted,
    edited or replaced by hand is rendered again."""
    for p in paths:
        want = state.files.get(p)
        if want is None:
            return False
        try:
            st = os.stat(out_dir / p)
        except FileNotFoundError:
            return False
        if (st.st_size, st.st_mtime_ns) != want:
            return False
    return True
