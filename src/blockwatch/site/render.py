"""Pages, badges and the Atom feed as strings/bytes from a SiteModel. Pure (templates are read
once). Everything from feeds and probed sites goes through Jinja2 autoescaping (HTML and SVG) or
ElementTree (Atom): nothing is ever marked safe but our own CSS."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Collection, MutableMapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template
from markupsafe import Markup, escape

from blockwatch.analysis import display as D
from blockwatch.analysis.quorum import Agreement
from blockwatch.site import i18n
from blockwatch.site.load import EventRec, IncidentRec
from blockwatch.site.model import (
    GROUPS,
    HEADLINE_ORDER,
    Cell,
    Day,
    FeedItem,
    PublicVantage,
    Segment,
    SiteModel,
    TargetDetail,
    category_counts,
    feed_items,
    findings,
    group_of,
    network_slugs,
    ordered,
    safe_href,
)
from blockwatch.storage.repo import iso
from blockwatch.textsafe import printable

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "site"
CODE = {"ok": "o", "blocked": "b", "interfered": "i", "throttled": "t", "down": "d",
        "unknown": "u", "nodata": "n"}
COUNT_ORDER = ("blocked", "interfered", "throttled", "down", "unknown", "ok", "nodata")
# (display, kind) of each legend entry: what a cell can say
LEGEND = ((D.REACHABLE, "ok"), (D.BLOCKED, "dns"), (D.BLOCKED, "http_diff"),
          (D.BLOCKED, "throttled"), (D.DOWN, "down"), (D.NOT_MEASURED, None), (D.STALE, None),
          (D.NO_DATA, None))
BADGE_COLOR = {"o": "#1a7f37", "b": "#b71c1c", "i": "#a84300", "t": "#a84300", "d": "#303f9f",
               "u": "#616161", "s": "#616161", "n": "#616161"}
TAG_YEAR = 2026  # part of every Atom id: never change it, or every reader sees new entries
ATOM = "http://www.w3.org/2005/Atom"


def code(state: str | None) -> str:
    return CODE[i18n.category(state)]


def sym(state: str | None) -> str:
    return i18n.SYMBOL[i18n.category(state)]


def dcode(sh: D.Shown | D.OutletShown) -> str:
    return i18n.display_code(sh.display, sh.kind)


def dsym(sh: D.Shown | D.OutletShown) -> str:
    return i18n.display_symbol(sh.display, sh.kind)


@dataclass(frozen=True)
class Lang:
    """The words and formats of one language, handed to the templates as `L`."""

    code: str
    today: date

    def t(self, key: str, **kw: object) -> str:
        return i18n.t(self.code, key, **kw)

    def agreement(self, a: Agreement) -> str:
        """"blocked on 2 of 3 networks in Kazakhstan"."""
        return i18n.agreement_of(self.code, a)

    def incident(self, i: IncidentRec) -> str:
        """"detention — released"."""
        return i18n.incident_words(self.code, i.types, i.status)

    def word(self, state: str | None) -> str:
        return i18n.word(self.code, state)

    def how(self, state: str | None) -> str:
        return i18n.how(self.code, state)

    def day(self, d: date) -> str:
        return i18n.fmt_day(self.code, d)

    def short(self, dt: datetime) -> str:
        return i18n.fmt_short(self.code, dt.date(), self.today)

    def time(self, dt: datetime) -> str:
        return i18n.fmt_time(self.code, dt)

    def dur(self, delta: timedelta) -> str:
        return i18n.fmt_duration(self.code, delta)

    def mins(self, n: int) -> str:
        return i18n.fmt_minutes(self.code, n)

    def vlabel(self, v: PublicVantage) -> str:
        return v.label(self.code)

    def shown(self, sh: D.Shown | D.OutletShown) -> str:
        return i18n.display_word(self.code, sh.display, sh.kind)

    def legend_word(self, display: str, kind: str | None) -> str:
        return i18n.display_word(self.code, display, kind)

    def note(self, sh: D.Shown | D.OutletShown) -> str:
        """Since when a vantage or outlet has not been measured ("" when it is measured)."""
        if sh.display == D.NOT_MEASURED:
            return (self.t("not_measured_since", when=self.time(sh.since)) if sh.since
                    else self.t("not_measured_never"))
        if sh.display == D.STALE:
            return (self.t("stale_since", when=self.time(sh.since)) if sh.since
                    else self.t("not_measured_never"))
        return ""

    def num(self, n: int) -> str:
        return i18n.fmt_num(self.code, n)

    def counts(self, counts: dict[str, int], total: int) -> str:
        parts = [self.t("count_item", n=self.num(counts[d]), word=i18n.count_word(self.code, d))
                 for d in HEADLINE_ORDER if counts.get(d)]
        return self.t("counts_line", total=self.num(total), parts=", ".join(parts))

    def bar_label(self, days: tuple[Day, ...]) -> str:
        counts = category_counts(list(days))
        parts = [f"{self.t('days', n=self.num(counts[c]))} {i18n.cat_word(self.code, c)}"
                 for c in COUNT_ORDER if counts.get(c)]
        return self.t("bar_label", parts=", ".join(parts))

    def seg_short(self, s: Segment) -> str:
        """The index's hover text: no "how" (the outlet's page has it), every byte counts."""
        a = i18n.fmt_compact(self.code, s.start, self.today)
        rng = a if s.start == s.end else f"{a}\u2013{i18n.fmt_compact(self.code, s.end, self.today)}"
        if not s.minutes:
            return f"{rng}: {self.word(s.state)}"
        # whole hours past the first: "5 h" says enough on hover and saves bytes
        mins = s.minutes if s.minutes < 60 else round(s.minutes / 60) * 60
        return f"{rng}: {self.word(s.state)}, {self.mins(mins)}"

    def seg(self, s: Segment) -> str:
        a = i18n.fmt_short(self.code, s.start, self.today)
        rng = a if s.start == s.end else f"{a} \u2013 {i18n.fmt_short(self.code, s.end, self.today)}"
        w = f"{self.word(s.state)} ({self.how(s.state)})"
        if i18n.category(s.state) in ("ok", "nodata", "unknown") and not s.minutes:
            return self.t("seg_ok", range=rng, word=w)
        return self.t("seg", range=rng, word=w, minutes=self.mins(s.minutes))


@cache
def _css() -> str:
    css = (TEMPLATES / "site.css").read_text(encoding="utf-8")
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    # bar segment widths as classes (".f6{flex:6}"): 3 bytes a segment instead of a style
    # attribute's 14, which is most of the 50-outlet index budget when history is busy
    widths = "".join(f".f{n}{{flex:{n}}}" for n in range(1, 91))
    return re.sub(r"\s*\n\s*", "", css) + widths


def _printable(v: Any) -> Any:
    """Every {{ value }}: control characters (stored before textsafe, or from a label) as a
    visible escape, not as characters HTML and XML parsers reject."""
    return printable(v) if type(v) is str else v


@cache  # one per process: compiling the templates again for every page was most of a build
def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=True,
                      trim_blocks=True, lstrip_blocks=True, undefined=StrictUndefined,
                      finalize=_printable)
    env.globals.update(code=code, sym=sym, dcode=dcode, dsym=dsym, iso=iso,
                       dcode_of=i18n.display_code, dsym_of=i18n.display_symbol,
                       safe_href=safe_href, bar_html=bar_html,
                       lang_names=i18n.LANG_NAMES,
                       css=Markup(_css()))  # noqa: S704  (our own constant file, not input)
    return env


_templates: dict[str, Template] = {}


def _template(name: str) -> Template:
    """A template, looked up once per build (`fresh_templates`): Jinja's check for an edited
    file is a stat per lookup, and a page is made of several parts."""
    t = _templates.get(name)
    if t is None:
        t = _templates[name] = environment().get_template(name)
    return t


def fresh_templates() -> None:
    """At the start of a build: a template edited since the last one is read again."""
    _templates.clear()


@dataclass(frozen=True)
class SiteInfo:
    title: str
    base_url: str  # "" or ending in "/"
    languages: tuple[str, ...]
    incidents: str = "all"  # all | reviewed: only incidents a person reviewed (blockwatch review)


def _common(m: SiteModel, info: SiteInfo, lang: str, root: str, page: str) -> dict[str, object]:
    return {"lang": lang, "L": Lang(lang, m.now.date()), "root": root, "page": page,
            "title": info.title, "languages": info.languages, "now": m.now,
            "base_url": info.base_url, "vantages": m.vantages, "stamp": "updated"}


_BAR_OPEN = Markup('<div class="bar" role="img" aria-label="{}">')
_SEG = Markup('<i class="{} f{}"></i>')
_SEG_TITLED = Markup('<i class="{} f{}" title="{}"></i>')


def bar_html(L: Any, segs: Any, days: Any, short: bool = False) -> Markup:
    """A history bar, built in Python (escaped by Markup.format): five bars a page, a hundred
    segments each, was the largest share of the template's time."""
    parts = [_BAR_OPEN.format(L.bar_label(days))]
    for seg in segs:
        if seg.state is not None and seg.state != "ok":
            parts.append(_SEG_TITLED.format(code(seg.state), seg.days,
                                            L.seg_short(seg) if short else L.seg(seg)))
        else:
            parts.append(_SEG.format(code(seg.state), seg.days))
    parts.append(Markup("</div>"))
    return Markup("").join(parts)


def page_note(m: SiteModel, L: Lang) -> str:
    """What the headline must say first when nothing on the page is freshly measured."""
    if m.any_measured or not m.statuses:
        return ""
    last = m.last_usable
    if last is None:
        return L.t("no_usable")
    key, since = m.unknown_cause  # no check ran lately, or checks that could not look
    return L.t(key, when=L.time(last), since=L.time(since) if since else "")


@dataclass(frozen=True)
class Filters:
    """The filter links every list page carries: per state group (with counts) and per
    network. Static pages, no script: `state/<group>.html`, `network/<slug>.html`."""

    groups: tuple[tuple[str, int], ...]
    networks: tuple[tuple[str, PublicVantage], ...]  # (slug, vantage)


def filters(m: SiteModel) -> Filters:
    counts = dict.fromkeys(GROUPS, 0)
    for s in m.statuses:
        counts[group_of(s.shown)] += 1
    slugs = network_slugs(m.columns)
    return Filters(tuple(counts.items()), tuple((slugs[c.key], c) for c in m.columns))


def index_rows(m: SiteModel, lang: str, only: Collection[int] | None = None,
               memo: MutableMapping[Any, Any] | None = None) -> dict[int, Markup]:
    """Each outlet's table row once per language, links relative to the language's folder
    ("t/x.html"): the index and the state pages share them (see `_relink`). `only`: those
    outlets' rows (an incremental build keeps the others'). `memo`: rows of earlier builds
    (site/cache.py), kept while what a row shows is the same: the name, the history objects
    (see `_history_parts`) and what may be said of the outlet and of each network, not when
    each was last checked."""
    L = Lang(lang, m.now.date())
    row = _template("_row.html").module.row  # type: ignore[attr-defined]
    out = {}
    for s in m.statuses:
        if only is not None and s.target.id not in only:
            continue
        if memo is None:
            out[s.target.id] = row(L, s)  # Markup: autoescaped by jinja
            continue
        key = ("row", s.target.id, lang)
        made_of = (s.slug, s.target.name, s.shown.display, s.shown.kind,
                   tuple(None if c is None else (c.shown.display, c.shown.kind, c.shown.since)
                         for c in s.cells))
        hit = memo.get(key)
        if (hit is not None and hit[0] is s.days and hit[1] is s.bar_index
                and hit[2] == made_of):
            out[s.target.id] = hit[3]
            continue
        out[s.target.id] = html = row(L, s)
        memo[key] = (s.days, s.bar_index, made_of, html)
    return out


def _relink(html: Markup, prefix: str) -> Markup:
    # only our own markup has `href="t/`: text from outside is escaped (its quotes are &#34;)
    if not prefix:
        return html
    return Markup(str(html).replace('href="t/', f'href="{prefix}t/'))  # noqa: S704 (escaped)


def render_index(m: SiteModel, info: SiteInfo, lang: str, *, root: str = "../",
                 rows: dict[int, Markup] | None = None) -> str:
    L = Lang(lang, m.now.date())
    rows = rows if rows is not None else index_rows(m, lang)
    prefix = "" if root == "../" else f"{root}{lang}/"
    return _template("index.html").render(
        **_common(m, info, lang, root, "index.html"), columns=m.columns,
        rows=[_relink(rows[s.target.id], prefix) for s in ordered(m.statuses)],
        empty=not m.statuses, problems=ordered(m.problems), legend=LEGEND,
        note=page_note(m, L),
        counts=L.counts(m.headline_counts, len(m.statuses)), abroad=m.abroad_only,
        filters=filters(m), fbase=prefix, current="")


def render_state(m: SiteModel, info: SiteInfo, lang: str, group: str, *,
                 rows: dict[int, Markup] | None = None) -> str:
    """The outlets in one state group, as the index shows them."""
    rows = rows if rows is not None else index_rows(m, lang)
    picked = [s for s in ordered(m.statuses) if group_of(s.shown) == group]
    return _template("state.html").render(
        **_common(m, info, lang, "../../", f"state/{group}.html"), columns=m.columns,
        rows=[_relink(rows[s.target.id], "../") for s in picked], group=group,
        filters=filters(m), fbase="../", current=f"state/{group}")


def render_network(m: SiteModel, info: SiteInfo, lang: str, key: str) -> str:
    """Every outlet as one network sees it, worst first."""
    col = next(i for i, c in enumerate(m.columns) if c.key == key)
    cells = [(s, s.cells[col]) for s in m.statuses if s.cells[col] is not None]
    cells.sort(key=lambda p: (GROUPS.index(group_of(p[1].shown)),  # type: ignore[union-attr]
                              p[0].target.name.casefold(), p[0].target.id))
    f = filters(m)
    slug = dict((c.key, sl) for sl, c in f.networks)[key]
    return _template("network.html").render(
        **_common(m, info, lang, "../../", f"network/{slug}.html"), net=m.columns[col],
        cells=cells, filters=f, fbase="../", current=f"network/{slug}")


def render_target(m: SiteModel, info: SiteInfo, lang: str, target_id: int,
                  as_of: datetime | None = None,
                  memo: MutableMapping[Any, Any] | None = None) -> str:
    """`as_of`: the time the page is written as of (its footer's "data as of" and the "for 3 h"
    of what still holds); `m.now` when not given. The incremental build passes the outlet's
    newest data (incremental.page_time), so a page is a function of its data and not of the
    clock, and a page left unwritten reads byte for byte as a new one would.

    The page is made of parts: the page around them, with marks where the parts and its times
    go; the daily history; each timeline entry; each network's card. Its times (the footer's,
    each "for 3 h", each card's last check) are spliced in last, formatted and escaped as the
    templates would. `memo`: the daemon's parts of earlier builds (site/cache.py; valid in one
    scope, so the date, languages, labels and templates are those of this build), each kept
    while what it is made of reads the same (the history: while the model's history tuples
    are the same objects, which the cache hands on while the outlet's rollup rows are
    unchanged). A page is the same bytes with or without it: the parts are made and put
    together by the same code either way. Every part's key starts with its kind and the
    outlet's id: the cache keeps and evicts an outlet's parts together."""
    d = m.details[target_id]
    s = d.status
    L = Lang(lang, m.now.date())
    at = as_of or m.now
    top_bar, history = _history_parts(L, d, memo)
    root = "../../"
    timeline = _event_parts(L, m, d, at, root, memo)
    cards = Markup("").join(_card_part(L, target_id, c, at, memo) for c in s.cells if c)
    found = findings(s, d.events, m.vantages)
    # the page around its parts and times: kept while what it shows of the outlet reads the same
    key = ("page", target_id, lang)
    sh = s.shown  # not its measured_at (every check moves it): the page does not show it
    made_of = (s.target, s.slug, sh.display, sh.kind, sh.since, sh.in_country, s.state, s.since,
               s.agreements, found, d.incidents, bool(d.events), any(s.cells))
    hit = memo.get(key) if memo is not None else None
    if hit is not None and hit[0] == made_of:
        pieces = hit[1]
    else:
        html = _template("target.html").render(
            **{**_common(m, info, lang, root, f"t/{s.slug}.html"), "stamp": "data_as_of"},
            d=d, top_bar=_mark("top"), history_html=_mark("history"),
            timeline_html=_mark("timeline"), cards_html=_mark("cards"),
            stamp_html=_mark("stamp"), for_status=_mark("for"),
            for_found=[_mark(f"found{i}") for i in range(len(found))], found=found)
        pieces = _MARK.split(html)
        if memo is not None:
            memo[key] = (made_of, pieces)

    def value(name: str) -> str:
        if name == "top":
            return top_bar
        if name == "history":
            return history
        if name == "timeline":
            return timeline
        if name == "cards":
            return cards
        if name == "stamp":  # "Data as of": the page's time is its newest check or event
            return _STAMP.format(_text(iso(at) or ""), _text(L.time(at)))
        since = s.since if name == "for" else found[int(name.removeprefix("found"))].since
        assert since is not None  # the template writes the mark only when there is one
        return _text(L.t("for", duration=L.dur(at - since)))

    # pieces: text, the name of a mark, text, ... (re.split with one group)
    return "".join(p if i % 2 == 0 else value(p) for i, p in enumerate(pieces))


# the marks a page's parts and times go in: no escaped text has a "<", so only our own markup
# can match, and none of it is of this shape
_MARK = re.compile(r"<x-mark-([a-z0-9]+)/>")
_STAMP = Markup('<time datetime="{}">{}</time>')


def _mark(name: str) -> Markup:
    return Markup(f"<x-mark-{name}/>")  # noqa: S704 (a constant of ours)


# where a card's times go: no escaped text has a "<", so only our own markup can match
_FOR, _CHECKED, _MEASURED = Markup("<x-for/>"), Markup("<x-checked/>"), Markup("<x-measured/>")


def _text(s: str) -> Markup:
    """As the templates write a value ({{ value }}: printable, then escaped)."""
    return escape(printable(s))


def _card_part(L: Lang, target_id: int, c: Cell, at: datetime,
               memo: MutableMapping[Any, Any] | None) -> Markup:
    """One network's card. Its times move with every check (the last check, the last usable
    measurement, for how long the state has held as of the page's time) and are spliced in
    last; the rest is kept while what may be said of the network reads the same."""
    sh = c.shown
    key = ("card", target_id, c.vantage.key, L.code)
    made_of = (sh.display, sh.kind, sh.since, c.confirmed, c.reason, c.reason_keys, c.pending,
               c.last_checked is None, sh.measured_at is None)
    hit = memo.get(key) if memo is not None else None
    if hit is not None and hit[0] == made_of:
        html = hit[1]
    else:
        macro = _template("_card.html").module.card  # type: ignore[attr-defined]
        html = Markup(macro(L, c, L.code, _FOR, _CHECKED, _MEASURED))  # noqa: S704 (autoescaped)
        if memo is not None:
            memo[key] = (made_of, html)
    if sh.since is not None and sh.display in (D.REACHABLE, D.BLOCKED, D.DOWN):
        html = html.replace(_FOR, _text(L.t("for", duration=L.dur(at - sh.since))))
    if c.last_checked is not None:
        html = html.replace(_CHECKED, _text(L.t("checked", when=L.time(c.last_checked))))
    if sh.measured_at is not None:
        html = html.replace(_MEASURED, _text(L.t("last_measured", when=L.time(sh.measured_at))))
    return html


def _history_parts(L: Lang, d: TargetDetail, memo: MutableMapping[Any, Any] | None
                   ) -> tuple[Markup, Markup]:
    """The outlet's 90-day bar and its "per network" section (bars and affected days)."""
    s = d.status
    key = ("history", s.target.id, L.code)
    old = memo.get(key) if memo is not None else None
    # the same objects, not equal ones: a check by identity costs nothing, and the cache
    # hands on a target's history objects only while its rows are unchanged
    if old is not None and old[0] is s.days and old[1] is s.bar and old[2] is d.history:
        return old[3], old[4]
    # changed (today's minutes grow with every round while a block holds): the bars and rows
    # that read the same as before are taken from the last rendering
    old_bars, old_rows = (old[5], old[6]) if old is not None else ({}, {})
    bars: dict[Any, Markup] = {}
    rows: dict[Any, Markup] = {}

    def bar(segs: tuple[Segment, ...], days: tuple[Day, ...]) -> Markup:
        k = (segs, days)
        html = old_bars.get(k) or bars.get(k) or bar_html(L, segs, days)
        bars[k] = html
        return html

    affected = sorted(((day.day.isoformat(), h.vantage, day) for h in d.history for day in h.days
                       if day.state is not None and day.state not in ("ok", "inconclusive")),
                      key=lambda r: r[0], reverse=True)
    # formatted here rather than in the template (up to 360 rows a page, 1000 pages a build),
    # as one escaped string: jinja's per-node cost over ~1,000 rows a page dominated
    parts = []
    for day_iso, v, day in affected:
        k = (day.day, v.key, day.state, day.minutes)
        row = old_rows.get(k) or rows.get(k)
        if row is None:
            row = _AFFECTED.format(day_iso, L.day(day.day), L.vlabel(v), code(day.state),
                                   f"{sym(day.state)} {L.word(day.state)}", L.how(day.state),
                                   L.mins(day.minutes))
        rows[k] = row
        parts.append(row)
    macro = _template("_history.html").module.history  # type: ignore[attr-defined]
    top = bar(s.bar, s.days)
    section = Markup(macro(L, s, [(h, bar(h.bar, h.days)) for h in d.history], affected,  # noqa: S704 (autoescaped)
                           Markup("").join(parts)))
    if memo is not None:
        memo[key] = (s.days, s.bar, d.history, top, section, bars, rows)
    return top, section


_AFFECTED = Markup('<tr><td><time datetime="{}">{}</time></td><td>{}</td><td class="{}">{}<small>{}'
                   '</small></td><td>{}</td></tr>\n')
_DUR = Markup("<dur/>")  # where an open event's duration goes: no escaped text has a "<"
_SEP = Markup("<x-sep/>")  # after each entry _event.html writes


def _event_parts(L: Lang, m: SiteModel, d: TargetDetail, at: datetime, root: str,
                 memo: MutableMapping[Any, Any] | None) -> Markup:
    """The timeline's entries. What one reads of the page's time (`at`) is an open event's
    duration, "ongoing (3 d 4 h)", spliced in last: the rest is kept while the event, its cases
    and whether it is only known to have held until its last usable measurement read the same.
    Those not kept are rendered together (one template call a page, not one an entry)."""
    got: list[Markup | None] = []
    todo = []
    for e in d.events:
        held = d.held_until.get(e.id)
        cases = d.cases_by_event.get(e.id, [])
        hit = memo.get(("event", e.target_id, e.id, L.code)) if memo is not None else None
        if hit is not None and hit[1] == held and hit[0] == e and hit[2] == cases:
            got.append(hit[3])
            continue
        x = _event_text(L, m, e, at)
        if e.ended_at is None:
            x["dur"] = _DUR
        todo.append((e, x, held, cases))
        got.append(None)
    if todo:
        html = _template("_event.html").render(
            L=L, events=todo, sep=_SEP, root=root, lang=L.code)
        made = iter(Markup(p) for p in html.split(_SEP)[:-1])  # noqa: S704 (autoescaped)
        for i, part in enumerate(got):
            if part is None:
                e, _x, held, cases = todo.pop(0)
                got[i] = html_part = next(made)
                if memo is not None:
                    memo[("event", e.target_id, e.id, L.code)] = (e, held, list(cases), html_part)
    out = []
    for e, part in zip(d.events, got, strict=True):
        assert part is not None
        out.append(part if e.ended_at is not None
                   else part.replace(_DUR, _text(L.dur(at - e.started_at))))
    return Markup("").join(out)


def _event_text(L: Lang, m: SiteModel, e: EventRec, now: datetime) -> dict[str, str]:
    """One timeline entry's words, formatted in Python: the template's per-call overhead over
    ~100 events a page and 1000 pages a build was most of the build time."""
    ok = e.state == "ok"
    detail = "" if ok else f" {L.how(e.state)}"
    if e.previous:
        detail += f" · {L.t('from', previous=L.word(e.previous))}"
    evidence = ""
    if not ok:
        evidence = f"{L.t('evidence')}: {L.t('confirmed_yes' if e.confirmed else 'confirmed_no')}"
        if e.measured_at:
            evidence += f"; {L.t('measured', when=L.time(e.measured_at))}"
        if e.evidence_sha256:
            evidence += f"; {L.t('evidence_hash', hash=e.evidence_sha256[:16])}"
    end = e.ended_at
    return {
        "start_iso": iso(e.started_at) or "", "start": L.time(e.started_at),
        "end_iso": iso(end) or "", "end": L.time(end) if end else L.t("ongoing"),
        "dur": L.dur((end or now) - e.started_at), "vantage": L.vlabel(m.vantages[e.vantage_id]),
        "code": code(e.state), "word": f"{sym(e.state)} {L.word(e.state)}", "detail": detail,
        "evidence": evidence, "linked": L.t("linked_events"),
    }


def render_incidents(m: SiteModel, info: SiteInfo, lang: str) -> str:
    return _template("incidents.html").render(
        **_common(m, info, lang, "../", "incidents.html"), incidents=m.incidents,
        reviewed_only=info.incidents == "reviewed",
        incident_events=m.incident_events, by_name=m.targets_by_name,
        slug_of={s.target.id: s.slug for s in m.statuses},
        names={s.target.id: s.target.name for s in m.statuses})


def _text_width(s: str) -> int:
    # Verdana 11px averages ~7px a character; wide enough for Cyrillic, never clipped
    return int(len(s) * 7 + 12)


def render_badge(name: str, shown: D.OutletShown, lang: str) -> str:
    value = f"{dsym(shown)} {i18n.display_word(lang, shown.display, shown.kind)}"
    lw, rw = _text_width(name), _text_width(value)
    return _template("badge.svg").render(
        label=name, value=value, lw=lw, rw=rw, w=lw + rw, color=BADGE_COLOR[dcode(shown)])


# --- Atom --------------------------------------------------------------------------------------

def tag_host(base_url: str) -> str:
    return urlsplit(base_url).hostname or "blockwatch.invalid"


def entry_id(host: str, kind: str, n: int) -> str:
    """Stable across builds and languages: tag:<host>,2026:event/123."""
    return f"tag:{host},{TAG_YEAR}:{kind}/{n}"


def _link(info: SiteInfo, path: str) -> str:
    return urljoin(info.base_url, path) if info.base_url else path


def render_feed(m: SiteModel, info: SiteInfo, lang: str) -> bytes:
    L = Lang(lang, m.now.date())
    host = tag_host(info.base_url)
    items = feed_items(m)
    ET.register_namespace("", ATOM)

    def el(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        # ElementTree writes control characters as they are: not XML (textsafe.printable)
        e = ET.SubElement(parent, f"{{{ATOM}}}{tag}", {k: printable(v) for k, v in attrs.items()})
        if text is not None:
            e.text = printable(text)
        return e

    feed = ET.Element(f"{{{ATOM}}}feed", {"{http://www.w3.org/XML/1998/namespace}lang": lang})
    el(feed, "id", entry_id(host, "feed", 0).replace("/0", f"/{lang}"))
    el(feed, "title", L.t("feed_title", title=info.title))
    # the feed changes only when an entry does: readers and caches see no churn between rounds
    el(feed, "updated", iso(items[0].updated if items else m.now) or "")
    author = el(feed, "author")
    el(author, "name", info.title)
    el(feed, "link", rel="self", href=_link(info, f"{lang}/feed.xml"))
    el(feed, "link", rel="alternate", type="text/html", href=_link(info, f"{lang}/index.html"))
    slug_of = {s.target.id: s.slug for s in m.statuses}
    name_of = {s.target.id: s.target.name for s in m.statuses}
    for it in items:
        _entry(el, feed, it, m, info, L, host, slug_of, name_of)
    ET.indent(feed, space=" ")
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(feed, encoding="utf-8")


def _said(L: Lang, said: tuple[str, str]) -> str:
    """A reason in a text feed: one stored in English only (an older row) says so, as pages do."""
    text, lang = said
    return text if lang == L.code else f"{L.t('in_english')} {text}"


def _entry(el, feed, it: FeedItem, m: SiteModel, info: SiteInfo, L: Lang, host: str,  # type: ignore[no-untyped-def]
           slug_of: dict[int, str], name_of: dict[int, str]) -> None:
    e = it.event
    v = L.vlabel(m.vantages[e.vantage_id])
    name = name_of.get(e.target_id, "")
    word = f"{L.word(e.state)} ({L.how(e.state)})"
    entry = el(feed, "entry")
    el(entry, "id", entry_id(host, it.kind, it.id))
    if it.kind == "event":
        title = (L.t("event_ended", name=name, word=word, vantage=v, when=L.time(e.ended_at))
                 if e.ended_at else L.t("event_entry", name=name, word=word, vantage=v))
        href = _link(info, f"{L.code}/t/{slug_of.get(e.target_id, '')}.html#event-{e.id}")
        lines = [f"{L.t('since', when=L.time(e.started_at))}"
                 + (f" {L.t('until', when=L.time(e.ended_at))}" if e.ended_at else ""),
                 e.url, _said(L, e.said(L.code)),
                 L.t("confirmed_yes" if e.confirmed else "confirmed_no")]
    else:
        inc = it.incident
        assert inc is not None
        title = L.t("case_entry", name=name, word=L.word(e.state), vantage=v)
        href = _link(info, f"{L.code}/incidents.html#incident-{inc.id}")
        lines = [inc.title, safe_href(inc.link) or "", f"{L.t('source')}: {inc.source}",
                 L.t("event_entry", name=name, word=word, vantage=v)]
    el(entry, "title", title)
    el(entry, "updated", iso(it.updated) or "")
    el(entry, "published", iso(it.published) or "")
    el(entry, "link", rel="alternate", type="text/html", href=href)
    el(entry, "category", term=e.state)
    el(entry, "content", "\n".join(x for x in lines if x), type="text")
