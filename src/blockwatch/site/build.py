"""Build the static site: roll up due days, read a snapshot, render in memory (pure), then write
only what changed, each file atomically (a web server reading the folder mid-build never sees a
half-written page), and remove files an earlier build made that are gone now.

Incremental by default (site/incremental.py): an outlet's pages are rendered again only when its
data, what may be said of it (fresh, stale, not measured) or a site-wide input changed; the pages
that aggregate are rendered every time. `full=True` renders everything. The daemon passes its
in-memory cache (site/cache.py): rollup rows read only where they changed, page parts kept."""

from __future__ import annotations

import gc
import itertools
import os
from collections.abc import Collection, MutableMapping
from contextlib import nullcontext
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from markupsafe import Markup

from blockwatch.analysis.display import Schedule
from blockwatch.site import incremental as inc
from blockwatch.site.cache import SiteCache, scope_of
from blockwatch.site.load import load_snapshot
from blockwatch.site.model import GROUPS, SiteModel, TargetStatus, build_model, status_json
from blockwatch.site.render import (
    SiteInfo,
    filters,
    fresh_templates,
    index_rows,
    render_badge,
    render_feed,
    render_incidents,
    render_index,
    render_network,
    render_state,
    render_target,
)
from blockwatch.site.rollup import rollup_due
from blockwatch.storage import Database
from blockwatch.textsafe import dumps

MANIFEST = ".blockwatch-site"  # the files the last build wrote; only those are ever removed


@dataclass(frozen=True)
class BuildReport:
    out_dir: Path
    pages: int  # HTML pages
    files: int  # every file of the site
    bytes: int  # their total size
    written: int  # files whose content changed in this build
    removed: int  # files of an earlier build that are gone now
    rollups: int  # daily rollup rows written before rendering
    index_bytes: int  # the first language's index.html, the page phones load first
    outlets: int = 0  # outlets in the site
    rendered: int = 0  # of them, those whose pages were rendered in this build
    full: str = ""  # why every page was rendered; "" for an incremental build

    def summary(self) -> str:
        how = (f"full build: {self.full}" if self.full else
               f"incremental: {self.rendered} of {self.outlets} outlets rendered")
        return (f"wrote the status site to {self.out_dir}: {self.pages} pages, {self.files} files, "
                f"{self.bytes / 1024:.0f} KiB ({self.written} changed, {self.removed} removed; "
                f"index {self.index_bytes / 1024:.1f} KiB; {how})")


def site_info(title: str, base_url: str, languages: list[str] | tuple[str, ...],
              incidents: str = "all") -> SiteInfo:
    base = base_url.strip()
    if base and not base.endswith("/"):
        base += "/"
    langs = tuple(dict.fromkeys(languages)) or ("en",)
    return SiteInfo(title=title, base_url=base, languages=langs, incidents=incidents)


def render_site(m: SiteModel, info: SiteInfo) -> dict[str, bytes]:
    """Pure: every file of the site, by its path relative to the site's root."""
    return render_parts(m, info)[0]


def render_parts(m: SiteModel, info: SiteInfo, outlets: Collection[int] | None = None,
                 rows_kept: dict[str, dict[int, str]] | None = None,
                 as_of: dict[int, datetime] | None = None,
                 memo: MutableMapping[Any, Any] | None = None,
                 ) -> tuple[dict[str, bytes], dict[str, dict[int, Markup]]]:
    """Pure: the files to write, and every outlet's index row per language. `outlets`: those
    whose own pages and rows are rendered (None: all); the others' rows come from `rows_kept`
    and their pages are left as they are. `as_of`: each outlet page's time (page_time).
    `memo`: page parts of earlier builds (site/cache.py), used and filled."""
    fresh_templates()
    files: dict[str, bytes] = {}
    first = info.languages[0]
    kept = rows_kept or {}  # checked by incremental.plan (row_ok): of our own shape
    when = as_of if as_of is not None else {
        tid: inc.page_time(d, m.now) for tid, d in m.details.items()}
    # the root index is the first language's index (no extra hop on a slow link), links
    # pointing into that language's folder
    rows = {lang: {**{tid: Markup(html) for tid, html in kept.get(lang, {}).items()},  # noqa: S704 (rendered by us)
                   **index_rows(m, lang, outlets, memo)}
            for lang in info.languages}
    files["index.html"] = render_index(m, info, first, root="", rows=rows[first]).encode()
    for lang in info.languages:
        files[f"{lang}/index.html"] = render_index(m, info, lang, rows=rows[lang]).encode()
        # the filters, as static pages: no script needed (and none allowed by the CSP)
        for group in GROUPS:
            files[f"{lang}/state/{group}.html"] = render_state(m, info, lang, group,
                                                               rows=rows[lang]).encode()
        for slug, col in filters(m).networks:
            files[f"{lang}/network/{slug}.html"] = render_network(m, info, lang, col.key).encode()
        files[f"{lang}/incidents.html"] = render_incidents(m, info, lang).encode()
        files[f"{lang}/feed.xml"] = render_feed(m, info, lang)
        for s in m.statuses:
            if outlets is not None and s.target.id not in outlets:
                continue
            files[f"{lang}/t/{s.slug}.html"] = render_target(
                m, info, lang, s.target.id, when[s.target.id], memo=memo).encode()
            files[f"{lang}/badge/{s.slug}.svg"] = _badge(s, lang, memo)
    files["feed.xml"] = files[f"{first}/feed.xml"]
    # textsafe.dumps: strict JSON (no NaN) of printable text, whatever older rows hold
    files["status.json"] = (dumps(status_json(m, title=info.title, languages=list(info.languages)),
                                  separators=(",", ":")) + "\n").encode()
    return files, rows


def _badge(s: TargetStatus, lang: str, memo: MutableMapping[Any, Any] | None) -> bytes:
    key, made_of = ("badge", s.target.id, lang), (s.target.name, s.shown.display, s.shown.kind)
    if memo is not None and (hit := memo.get(key)) is not None and hit[0] == made_of:
        return hit[1]  # type: ignore[no-any-return]
    svg = render_badge(s.target.name, s.shown, lang).encode()
    if memo is not None:
        memo[key] = (made_of, svg)
    return svg


def _safe_rel(p: str) -> bool:
    pp = PurePosixPath(p)
    return (bool(p) and not pp.is_absolute() and ".." not in pp.parts
            and p not in (MANIFEST, inc.STATE, inc.LOCK))


_TMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_tmp_names = itertools.count()


def _write_atomic(path: Path, data: bytes, *, parent_ready: bool = False) -> None:
    """Write to a new file next to `path`, then rename it over `path`. O_EXCL|O_NOFOLLOW, as
    mkstemp opens (the folder may be writable by others: a planted link is never followed),
    with plain os calls: a build after a probe round writes a thousand pages."""
    if not parent_ready:
        path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = path.parent / f".tmp-{os.getpid()}-{next(_tmp_names)}{path.suffix}"
        try:
            fd = os.open(tmp, _TMP_FLAGS, 0o600)
            break
        except FileExistsError:  # left by a build that died: another name
            continue
    try:
        try:
            os.fchmod(fd, 0o644)  # served by a web server running as another user
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_site(out_dir: Path, files: dict[str, bytes],
               kept: Collection[str] = ()) -> tuple[int, int]:
    """Write changed files and remove stale ones; returns (written, removed). `kept`: files of
    the site this build did not render (an incremental build's unchanged outlets)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = 0
    made: set[Path] = set()  # folders known to be there
    for rel, data in sorted(files.items()):
        path = out_dir / rel
        try:
            if path.stat().st_size == len(data) and path.read_bytes() == data:
                continue  # unchanged: keep its mtime, so caches and rsync see nothing new
        except FileNotFoundError:
            pass
        _write_atomic(path, data, parent_ready=path.parent in made)
        made.add(path.parent)
        written += 1
    removed = 0
    manifest = out_dir / MANIFEST
    try:
        old = manifest.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        old = []
    keep = set(kept)
    for rel in old:
        if rel in files or rel in keep or not _safe_rel(rel):
            continue
        try:
            (out_dir / rel).unlink()
            removed += 1
        except FileNotFoundError:
            pass
    listing = ("\n".join(sorted({*files, *keep})) + "\n").encode()
    if listing != "\n".join(old).encode() + b"\n":
        _write_atomic(manifest, listing)
    return written, removed


def build_site_from_db(db: Database, out_dir: Path, info: SiteInfo,
                       now: datetime | None = None,
                       schedule: Schedule | None = None, quorum: int = 0, *,
                       full: bool = False, config: str = "",
                       cache: SiteCache | None = None) -> BuildReport:
    """`schedule`: how often each vantage measures (`Schedule.of(cfg)`), which decides when a
    measurement is too old to be shown as the current state. `full`: render every page even if
    the folder's build state says it is current. `config`: a digest of the configuration the
    pages depend on (a change renders everything). `cache`: the daemon's memory of earlier
    builds (site/cache.py): rollup rows read again only where they changed, page parts kept;
    the same files either way."""
    with inc.folder_lock(out_dir), (cache.lock if cache is not None else nullcontext()):
        # the daemon's build and a `blockwatch site` take turns; the clock read once the folder
        # is ours: a build that waited for another must not date its pages (and judge
        # freshness) as of before the wait
        at = (now or _clock()).astimezone(UTC)
        if cache is not None and cache.limit == 0:  # `[site] cache_limit = 0`: nothing kept
            cache.clear()
            cache = None
        return _build(db, out_dir, info, at, schedule, quorum, full, config, cache)


def _clock() -> datetime:
    return datetime.now(UTC)


def _build(db: Database, out_dir: Path, info: SiteInfo, now: datetime,
           schedule: Schedule | None, quorum: int, full: bool, config: str,
           cache: SiteCache | None) -> BuildReport:
    rolled = rollup_due(db, now)
    # The build allocates millions of short-lived objects and creates no cycles worth chasing:
    # the cyclic collector's passes over the growing heap cost a third of the build time.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        state = None if full else inc.read_state(out_dir)
        with db.read() as s:
            snap = load_snapshot(s, now, schedule, quorum, rollups=cache is None,
                                 reviewed_only=info.incidents == "reviewed")
            if cache is not None:
                if full:  # asked for everything from scratch: nothing kept is used
                    cache.clear()
                cache.use(scope_of(snap, out_dir, info, config))
                marks, histories = cache.history(s, snap)
        if cache is not None:
            # every outlet's daily history is at hand: one model, for the plan and the pages
            model = build_model(snap, histories)
            plan = inc.plan(model, info, out_dir, state, marks, config=config, force=full)
            cache.begin(plan.render)  # evicts, if it must, outlets this build does not render
        else:
            marks = inc.history_marks(snap.rollups)
            # the daily history (most of the model's time) only of the outlets that are
            # rendered: the plan is made on a model without it
            model = build_model(snap if state is None else replace(snap, rollups=[]))
            plan = inc.plan(model, info, out_dir, state, marks, config=config, force=full)
            if state is not None and (plan.full or plan.render):
                model = build_model(snap if plan.full else replace(
                    snap, rollups=[r for r in snap.rollups if r.target_id in plan.render]))
        kept_rows = None if state is None or plan.full else {
            lang: {tid: r for tid, r in rows.items() if tid not in plan.render}
            for lang, rows in state.rows.items()}
        files, rows = render_parts(model, info, None if plan.full else plan.render,
                                   kept_rows, plan.as_of,
                                   memo=cache.memo if cache is not None else None)
        if cache is not None:
            cache.end()  # what the pages no longer use goes
    finally:
        if gc_was_enabled:
            gc.enable()
    kept = [p for st in model.statuses if st.target.id not in plan.render
            for p in inc.outlet_files(st.slug, info.languages)]
    inc.drop_state(out_dir)
    written, removed = write_site(out_dir, files, kept)
    # every outlet file as this build leaves it; a kept one removed meanwhile is left out
    # (the build still succeeds, and the next one renders that outlet again)
    stamps = inc.file_stamps(out_dir, [p for st in model.statuses
                                       for p in inc.outlet_files(st.slug, info.languages)])
    _write_atomic(out_dir / inc.STATE, inc.state_bytes(inc.State(
        plan.site, plan.keys, {lang: {tid: str(r[tid]) for tid in plan.keys}
                               for lang, r in rows.items()}, stamps)))
    present = [p for p in kept if p in stamps]
    return BuildReport(out_dir=out_dir,
                       pages=sum(1 for p in [*files, *present] if p.endswith(".html")),
                       files=len(files) + len(present),
                       bytes=sum(len(b) for b in files.values())
                       + sum(stamps[p][0] for p in present),
                       written=written, removed=removed, rollups=rolled,
                       index_bytes=len(files[f"{info.languages[0]}/index.html"]),
                       outlets=len(model.statuses), rendered=len(plan.render),
                       full=plan.why)
