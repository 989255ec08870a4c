"""What a notification says: plain records in, subject + text + HTML (or a webhook body) out.

Pure: no database, no network. Feed titles, outlet names, reasons and links come from hostile
sources (feeds, sites under test), so every HTML template autoescapes and links are only made
clickable for http(s) URLs; subjects are flattened to one line of plain text.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import jinja2

from blockwatch.alerts import digest_fold
from blockwatch.analysis import reasons
from blockwatch.analysis.quorum import Agreement
from blockwatch.analysis.verdict import BLOCKING
from blockwatch.site import i18n as site_i18n
from blockwatch.textsafe import printable

LANGUAGES = ("en", "ru", "kk")
MAX_ITEMS = 50  # per message: a storm of changes still makes one readable message
SUBJECT_MAX = 160
KIND_ORDER = {"blocked": 0, "case": 1, "unblocked": 2, "down": 3, "recovered": 4, "silent": 5,
              "back": 6}


# --- records -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class IncidentInfo:
    title: str
    link: str
    source: str  # the feed's name
    types: tuple[str, ...] = ()
    outlets: tuple[str, ...] = ()
    occurred_at: datetime | None = None
    linked: bool = False  # part of a case (correlated with blocking)
    status: str | None = None  # released, sentenced... as the report says
    entry: int = 0  # the feed entry's id, for `blockwatch review` (digest only)
    reviewed: bool = False  # a person confirmed or corrected it


@dataclass(frozen=True)
class AlertItem:
    """One thing worth telling: a state change, a new case, or a vantage that fell silent."""

    kind: str  # blocked | unblocked | down | recovered | silent | back | case
    ref: str  # "e12", "c3", "s<vantage>@<time>": stable, used in idempotency keys
    at: datetime  # when it began (an event's started_at; a silent vantage's last sighting)
    detected_at: datetime  # when blockwatch became sure
    target: str = ""
    country: str = ""  # the target's country
    vantage: str = ""
    vantage_country: str = ""
    url: str = ""
    state: str = ""
    previous: str | None = None
    reason: str = ""
    confirmed: bool = False
    incident: IncidentInfo | None = None
    agree: int = 0  # networks of vantage_country that report it blocked (analysis.quorum)
    measured: int = 0  # ... out of those that could measure it
    vantages: int = 0  # ... out of those the country has
    interfered: bool = False  # every report is interference or slowing, not a block
    # `reason` in any language: the keys of the verdict that opened the event (analysis/reasons)
    reason_keys: dict[str, Any] | None = None


def classify(state: str, previous: str | None) -> str | None:
    """The alert kind of an event (state change), or None when it is not worth an alert."""
    if state in BLOCKING:
        return "blocked"  # also a change of method (dns -> tls): still blocked, say how now
    if state == "down":
        return "down"
    if state == "ok":
        if previous in BLOCKING:
            return "unblocked"
        if previous == "down":
            return "recovered"
    return None  # first observation "ok", or an inconclusive state


@dataclass(frozen=True)
class Filter:
    """A recipient's filters; empty lists match everything."""

    targets: frozenset[str] = frozenset()
    countries: frozenset[str] = frozenset()
    verdicts: frozenset[str] = frozenset()

    @classmethod
    def of(cls, targets: Iterable[str] = (), countries: Iterable[str] = (),
           verdicts: Iterable[str] = ()) -> Filter:
        return cls(frozenset(t.casefold() for t in targets),
                   frozenset(c.upper() for c in countries),
                   frozenset(v.casefold() for v in verdicts))


def item_matches(f: Filter, item: AlertItem) -> bool:
    """Targets filter outlets; countries match the outlet's or the vantage's country; verdicts
    match the verdict names involved (state or, for an unblock, the previous one) or the alert
    kind itself ("blocked", "case", "silent", ...). Vantage items (silent/back) concern no outlet,
    so a targets filter does not hide them."""
    if f.targets and item.target and item.target.casefold() not in f.targets:
        return False
    if f.countries and not ({item.country, item.vantage_country} & f.countries):
        return False
    if f.verdicts:
        tokens = {item.kind, item.state, item.previous or ""}
        if not tokens & f.verdicts:
            return False
    return True


# --- strings, templates, formatting ------------------------------------------------------------

@cache
def catalog(lang: str) -> dict[str, Any]:
    if lang not in LANGUAGES:
        lang = "en"
    path = resources.files("blockwatch").joinpath("templates", "alerts", "i18n", f"{lang}.toml")
    return tomllib.loads(path.read_text(encoding="utf-8"))


def safe_url(url: str | None) -> str | None:
    """Only http(s) URLs become links: a feed's `javascript:` link survives autoescaping."""
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return url.strip()


_SPACE = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def oneline(text: object, limit: int = 300) -> str:
    """Hostile text flattened to one line (no header or layout injection), bounded."""
    s = _SPACE.sub(" ", _CONTROL.sub(" ", str(text or ""))).strip()
    return s if len(s) <= limit else s[: limit - 1] + "…"


# how each language writes a date and time in figures: 2026-12-04 in English, 04.12.2026 in
# Russian and Kazakh publications
DATE_FORMAT = {"en": "%Y-%m-%d", "ru": "%d.%m.%Y", "kk": "%d.%m.%Y"}


def fmt_time(dt: datetime | None, tz: str, lang: str = "en") -> str:
    if dt is None:
        return ""
    fmt = DATE_FORMAT.get(lang, DATE_FORMAT["en"])
    return dt.astimezone(ZoneInfo(tz)).strftime(f"{fmt} %H:%M")


def fmt_num(n: int, lang: str = "en") -> str:
    """1,234 in English; 1 234 (a no-break space) in Russian and Kazakh, as on the site."""
    s = f"{n:,}"
    return s if lang == "en" else s.replace(",", "\u00a0")


@cache
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("blockwatch", "templates/alerts"),
        # *.html escapes everything; the plain-text part (*.txt) is not HTML and needs none
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",),
                                             disabled_extensions=("txt",), default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        # control characters in stored text as visible escapes, in both parts (textsafe)
        finalize=lambda v: printable(v) if type(v) is str else v,
    )
    env.filters["oneline"] = oneline
    env.filters["safe_url"] = safe_url
    return env


def render(name: str, kind: str, **ctx: Any) -> str:
    return _env().get_template(f"{name}.{kind}").render(**ctx)


@dataclass(frozen=True)
class Message:
    subject: str
    text: str
    html: str


def _method(item: AlertItem, t: dict[str, Any]) -> str:
    if item.kind == "blocked" and item.state:
        return f" ({t['verdict'].get(item.state, item.state)})"
    return ""


def _label(item: AlertItem, t: dict[str, Any]) -> str:
    return item.target or item.vantage


def sort_items(items: Iterable[AlertItem]) -> list[AlertItem]:
    return sorted(items, key=lambda i: (KIND_ORDER.get(i.kind, 9), i.target.casefold(), i.vantage,
                                        i.url, i.ref))


def alert_subject(items: Sequence[AlertItem], lang: str) -> str:
    t = catalog(lang)
    if len(items) == 1 and not items[0].target:
        i = items[0]
        s = t["text"]["alert_subject_vantage"].format(kind=t["kind"][i.kind], vantage=i.vantage)
    elif len(items) == 1:
        i = items[0]
        s = t["text"]["alert_subject_one"].format(
            target=_label(i, t), kind=t["kind"][i.kind], method=_method(i, t),
            vantage=i.vantage)
    else:
        names: list[str] = []
        for i in items:
            label = f"{_label(i, t)} {t['kind'][i.kind]}"
            if label not in names:
                names.append(label)
        shown = ", ".join(names[:3])
        if len(names) > 3:
            shown += " " + t["text"]["and_more"].format(count=fmt_num(len(names) - 3, lang))
        s = t["text"]["alert_subject_many"].format(count=fmt_num(len(items), lang), names=shown)
    return oneline(s, SUBJECT_MAX)


def compose_alert(items: Sequence[AlertItem], lang: str, tz: str) -> Message:
    items = sort_items(items)
    t = catalog(lang)
    ctx = {"t": t, "items": items[:MAX_ITEMS], "more": max(0, len(items) - MAX_ITEMS),
           "tz": tz, "fmt": lambda dt: fmt_time(dt, tz, lang), "lang": lang,
           "num": lambda n: fmt_num(n, lang), **_reason_ctx(lang), **_case_ctx(lang)}
    return Message(alert_subject(items, lang), render("alert", "txt", **ctx),
                   render("alert", "html", **ctx))


def compose_test(lang: str, tz: str, now: datetime) -> Message:
    t = catalog(lang)
    ctx = {"t": t, "tz": tz, "now": fmt_time(now, tz, lang), "lang": lang}
    return Message(t["text"]["test_subject"], render("test", "txt", **ctx),
                   render("test", "html", **ctx))


# --- the digest --------------------------------------------------------------------------------

@dataclass(frozen=True)
class BlockedVantage:
    vantage: str
    vantage_country: str
    url: str
    state: str
    since: datetime | None
    reason: str
    confirmed: bool
    reason_keys: dict[str, Any] | None = None  # the reason in any language (analysis/reasons.py)
    last_usable_at: datetime | None = None  # the last usable measurement


@dataclass(frozen=True)
class BlockedTarget:
    target: str
    country: str
    rows: tuple[BlockedVantage, ...]
    # per vantage country: how many networks agree it is blocked (analysis.quorum)
    agreements: tuple[Agreement, ...] = ()

    @property
    def agreed(self) -> bool:
        """Enough networks agree somewhere (no agreement data: a single report counts)."""
        return not self.agreements or any(a.agreed for a in self.agreements)

    @property
    def since(self) -> datetime | None:
        times = [r.since for r in self.rows if r.since]
        return min(times) if times else None


@dataclass(frozen=True)
class FeedProblem:
    name: str
    failures: int
    last_error: str
    last_success_at: datetime | None


@dataclass(frozen=True)
class SilentVantage:
    name: str
    kind: str
    country: str
    last_seen_at: datetime | None


@dataclass(frozen=True)
class VantageCheck:
    """How much a vantage measured lately (see blockwatch.coverage): `display` is measured,
    partial, not_measured, stale or no_data."""

    name: str
    kind: str
    country: str
    display: str
    urls: int = 0
    unmeasured: int = 0
    last_usable_at: datetime | None = None
    last_attempt_at: datetime | None = None


@dataclass(frozen=True)
class CaseInfo:
    """An incident and a blocking event of the same outlet within the correlation window."""

    target: str
    country: str
    types: tuple[str, ...]
    status: str | None
    state: str  # how it is blocked (a verdict name)
    vantage: str
    vantage_country: str
    since: datetime  # when the blocking started
    title: str
    link: str
    source: str
    published: datetime | None


@dataclass(frozen=True)
class DigestData:
    since: datetime
    until: datetime
    blocked: tuple[BlockedTarget, ...] = ()
    # last known blocked, but not freshly measured: never counted as blocked now
    stale_blocked: tuple[BlockedTarget, ...] = ()
    began: tuple[AlertItem, ...] = ()
    ended: tuple[AlertItem, ...] = ()
    incidents: tuple[IncidentInfo, ...] = ()
    feeds: tuple[FeedProblem, ...] = ()
    silent: tuple[SilentVantage, ...] = ()
    countries: dict[str, str] = field(default_factory=dict)  # target -> country, for filters
    coverage: tuple[VantageCheck, ...] = ()  # every configured vantage
    feeds_configured: int = 0
    cases: tuple[CaseInfo, ...] = ()  # cases made in the period

    @property
    def agreed_blocked(self) -> tuple[BlockedTarget, ...]:
        """Outlets enough networks agree are blocked: what the subject counts."""
        return tuple(b for b in self.blocked if b.agreed)

    @property
    def quiet(self) -> bool:
        """Nothing happened that was seen. Not the same as all clear: see `complete`."""
        return not (self.blocked or self.stale_blocked or self.began or self.ended
                    or self.incidents or self.feeds or self.silent or self.cases)

    @property
    def unmeasured(self) -> tuple[VantageCheck, ...]:
        """Vantages without fresh usable measurements of every URL (inconclusive or stale)."""
        return tuple(v for v in self.coverage if v.display != "measured")

    @property
    def complete(self) -> bool:
        """Everything was looked at: every vantage measured and some feeds, all working."""
        return bool(self.coverage) and not self.unmeasured and self.feeds_configured > 0 \
            and not self.feeds

    @property
    def all_clear(self) -> bool:
        return self.quiet and self.complete


def _hidden_ref(ref: str, name: str) -> str:
    # "s<vantage>@<time>" -> "s<hash>@<time>": still stable for idempotency keys and webhook ids
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:16]
    return ref.replace(name, digest, 1) if name and name in ref else ref


def relabel_items(items: Sequence[AlertItem], names: Mapping[str, str]) -> list[AlertItem]:
    """Items with each vantage in `names` (an agent's configured name) shown by its public label,
    including inside the item's ref (a webhook's id is built from refs)."""
    return [replace(i, vantage=names[i.vantage], ref=_hidden_ref(i.ref, i.vantage))
            if i.vantage in names else i for i in items]


def relabel_digest(d: DigestData, names: Mapping[str, str]) -> DigestData:
    """The digest with every vantage in `names` shown by its public label (see relabel_items)."""
    if not names:
        return d

    def rows(bs: tuple[BlockedTarget, ...]) -> tuple[BlockedTarget, ...]:
        return tuple(replace(b, rows=tuple(replace(r, vantage=names.get(r.vantage, r.vantage))
                                           for r in b.rows)) for b in bs)

    return replace(
        d, blocked=rows(d.blocked), stale_blocked=rows(d.stale_blocked),
        began=tuple(relabel_items(d.began, names)), ended=tuple(relabel_items(d.ended, names)),
        silent=tuple(replace(v, name=names.get(v.name, v.name)) for v in d.silent),
        coverage=tuple(replace(v, name=names.get(v.name, v.name)) for v in d.coverage),
        cases=tuple(replace(c, vantage=names.get(c.vantage, c.vantage)) for c in d.cases))


def filter_digest(d: DigestData, f: Filter) -> DigestData:
    """A recipient's view: outlets and changes pass the filter; feeds and vantages (the health of
    blockwatch itself) are shown to everyone."""
    if f == Filter():
        return d
    def outlets(bs: tuple[BlockedTarget, ...]) -> tuple[BlockedTarget, ...]:
        out = []
        for b in bs:
            rows = tuple(r for r in b.rows if item_matches(f, AlertItem(
                kind="blocked", ref="", at=d.until, detected_at=d.until, target=b.target,
                country=b.country, vantage=r.vantage, vantage_country=r.vantage_country,
                state=r.state)))
            if rows:
                out.append(replace(b, rows=rows))
        return tuple(out)

    def incident_ok(i: IncidentInfo) -> bool:
        if f.targets and not {o.casefold() for o in i.outlets} & f.targets:
            return False
        if f.countries and not {d.countries.get(o, "") for o in i.outlets} & f.countries:
            return False
        return True

    return replace(d, blocked=outlets(d.blocked), stale_blocked=outlets(d.stale_blocked),
                   began=tuple(i for i in d.began if item_matches(f, i)),
                   ended=tuple(i for i in d.ended if item_matches(f, i)),
                   incidents=tuple(i for i in d.incidents if incident_ok(i)),
                   cases=tuple(c for c in d.cases if item_matches(f, AlertItem(
                       kind="case", ref="", at=c.since, detected_at=c.since, target=c.target,
                       country=c.country, vantage=c.vantage,
                       vantage_country=c.vantage_country, state=c.state))))


def digest_date(d: DigestData, tz: str, lang: str | None = None) -> str:
    """The digest's local date: ISO without `lang` (file names), else as `lang` writes it."""
    fmt = DATE_FORMAT.get(lang, DATE_FORMAT["en"]) if lang else "%Y-%m-%d"
    return d.until.astimezone(ZoneInfo(tz)).strftime(fmt)


def coverage_line(v: VantageCheck, t: dict[str, Any], tz: str) -> str:
    """What a vantage could not measure, in words (its name is written by the template)."""
    x, lang = t["text"], t["language"]
    when = fmt_time(v.last_usable_at, tz, lang) if v.last_usable_at else x["never"]
    n, total = fmt_num(v.unmeasured, lang), fmt_num(v.urls, lang)
    if v.display == "stale":
        return x["cov_stale"].format(when=fmt_time(v.last_attempt_at, tz, lang) or x["never"])
    if v.display == "no_data":
        return x["cov_no_data"]
    if v.display == "partial":
        return x["cov_partial"].format(n=n, total=total, when=when)
    if v.last_usable_at is None:
        return x["cov_not_measured_never"].format(n=n, total=total)
    return x["cov_not_measured"].format(when=when, n=n, total=total)


def vantage_kind(kind: str, lang: str) -> str:
    """"agent", "агент": a vantage's kind in the reader's words."""
    return catalog(lang)["vantage_kind"].get(kind, kind)


def agreement_text(agree: int, measured: int, country: str, lang: str, *, total: int = 0,
                   interfered: bool = False) -> str:
    """"blocked on 2 of 3 networks in Kazakhstan": the site's words (one rule for the page, the
    digest and alerts): the networks that could measure it, how many the country has when fewer
    measured (`total`), "interfered with" when every report is interference or slowing."""
    return site_i18n.agreement_text(lang, agree, measured, country, total=total or None,
                                    interfered=interfered)


def incident_words(types: Iterable[str], status: str | None, lang: str) -> str:
    """"detention, arrest — released": what a report says happened, in the reader's words."""
    t = catalog(lang)
    words = ", ".join(t["incident_type"].get(ty, ty) for ty in types) or \
        t["text"]["incident_unspecified"]
    if status:
        words += " — " + t["incident_status"].get(status, status)
    return words


def _case_ctx(lang: str) -> dict[str, Any]:
    """Template helpers for cases and agreement, shared by alerts and the digest."""
    return {"happened": lambda c: incident_words(c.types, c.status, lang),
            "item_agreement": lambda i: agreement_text(
                i.agree, i.measured, i.vantage_country, lang, total=i.vantages,
                interfered=i.interfered) if i.measured else ""}


def said(line: Any, lang: str) -> tuple[str, str]:
    """(the reason in `lang`, the language it is in): "en" for an older row without keys, which
    the templates mark ("in English") rather than pass off as translated."""
    return reasons.said(getattr(line, "reason_keys", None), line.reason, lang)


def _reason_ctx(lang: str) -> dict[str, Any]:
    return {"said": lambda line: said(line, lang),
            "kind_of": lambda kind: vantage_kind(kind, lang)}


def compose_digest(d: DigestData, lang: str, tz: str) -> Message:
    t = catalog(lang)
    date = digest_date(d, tz, lang)
    if d.agreed_blocked:
        subject = t["text"]["digest_subject_blocked"].format(date=date,
                                                             count=fmt_num(len(d.agreed_blocked), lang))
    elif d.blocked:  # one network's word only: said in the body, not in the subject
        subject = t["text"]["digest_subject_other"].format(date=date)
    elif d.all_clear:
        subject = t["text"]["digest_subject_quiet"].format(date=date)
    elif d.quiet:  # nothing seen, but not everything was looked at: never "all clear"
        subject = t["text"]["digest_subject_incomplete"].format(date=date)
    else:
        subject = t["text"]["digest_subject_other"].format(date=date)
    ctx = {"t": t, "d": d, "tz": tz, "fmt": lambda dt: fmt_time(dt, tz, lang), "date": date,
           "lang": lang, "blocking": BLOCKING,
           "coverage_line": lambda v: coverage_line(v, t, tz),
           "agreement": lambda a: site_i18n.agreement_of(lang, a),
           "fold": digest_fold,  # one block per outlet (alerts/digest_fold.py)
           "num": lambda n: fmt_num(n, lang),
           **_reason_ctx(lang), **_case_ctx(lang)}
    return Message(oneline(subject, SUBJECT_MAX), render("digest", "txt", **ctx),
                   render("digest", "html", **ctx))


# --- keys and webhook bodies -------------------------------------------------------------------

KEY_MAX = 255


def outbox_key(*parts: str) -> str:
    """"alert:email:desk@example.org:e12,e13"; hashed when it would not fit the column."""
    key = ":".join(parts)
    if len(key) <= KEY_MAX:
        return key
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
    return f"{parts[0]}:{parts[1]}:sha256:{digest}"


def refs(items: Iterable[AlertItem]) -> str:
    return ",".join(sorted({i.ref for i in items}))


def message_id(key: str, sender: str) -> str:
    """Derived from the idempotency key: a duplicate (see README) carries the same Message-ID."""
    domain = sender.rpartition("@")[2] or "blockwatch.invalid"
    return f"<{hashlib.sha256(key.encode('utf-8')).hexdigest()[:40]}@{domain}>"


def _jsonable(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.isoformat(timespec="seconds").replace("+00:00", "Z")
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    return v


def item_json(item: AlertItem) -> dict[str, Any]:
    out: dict[str, Any] = _jsonable(asdict(item))
    if item.incident is None:
        out.pop("incident")
    return out


def webhook_body(key: str, kind: str, items: Sequence[AlertItem], msg: Message,
                 created_at: datetime, lang: str) -> dict[str, Any]:
    """`text` makes Slack/Mattermost-style hooks show something without a translator; `items`
    is for programs. `id` is stable across retries: receivers deduplicate on it."""
    return {"id": key, "type": kind, "created_at": _jsonable(created_at), "language": lang,
            "subject": msg.subject, "text": msg.text,
            "items": [item_json(i) for i in sort_items(items)]}
