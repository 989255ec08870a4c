"""Every reader-facing output in Russian and Kazakh, from a database that holds every kind of
judgement (each reason template), event (blocked, unblocked, down, recovered, inconclusive),
case, incident type and status, a failing feed and a silent agent: the status site (pages, the
Atom feed, status.json), the digest (text and HTML) and alerts (email text and HTML, Telegram).

None may carry an English sentence of ours (a fragment of an English message or reason
template), an English word for a verdict, an untranslated key or placeholder, or a date written
the English way. The one English allowed is the stored reason of an older row without keys,
and it must be marked as English (`lang="en"` and a note), never passed off as translated."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import pytest
from markupsafe import escape
from sqlalchemy import select

import test_alerts_support as support
from blockwatch import vocabulary
from blockwatch.alerts import compose as C
from blockwatch.alerts.digest import collect
from blockwatch.alerts.scan import queue_alerts_sync
from blockwatch.analysis import reasons
from blockwatch.analysis.display import Schedule
from blockwatch.analysis.fingerprints import default_interception, default_matcher
from blockwatch.analysis.verdict import BLOCKING, Judgement, Verdict
from blockwatch.config import Config
from blockwatch.site import i18n
from blockwatch.site.build import render_site, site_info
from blockwatch.site.load import load_snapshot
from blockwatch.site.model import build_model
from blockwatch.site.rollup import rollup_due
from blockwatch.storage import Database, bulk, repo
from blockwatch.storage.models import Event, Feed, Incident, Outbox, Vantage
from blockwatch.targets import Target as TargetSpec
from test_reasons_i18n import NAMES, _judge

NOW = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)  # 14:00 in Almaty, the same day
OLD_REASON = "an older row's stored English reason"
OTHERS = ("ru", "kk")
TYPES = ["detention", "arrest", "blocking", "raid", "criminal_case", "fine", "assault",
         "shutdown", "harassment"]
STATUSES = ["acquitted", "charges_dropped", "unblocked", "released", "sentenced", "convicted"]
CHATS = """
[[alerts.telegram]]
chat_id = "-100200"
bot_token_env = "BW_TEST_TELEGRAM_TOKEN"
language = "ru"

[[alerts.telegram]]
chat_id = "-100300"
bot_token_env = "BW_TEST_TELEGRAM_TOKEN"
language = "kk"

[[vantage]]
name = "almaty-2"
kind = "agent"
country = "KZ"
token_sha256 = "{'1' * 64}"

[[vantage]]
name = "vps-kz"
kind = "local"
country = "KZ"

[[vantage]]
name = "kz-isp-dns"
kind = "resolver"
address = "203.0.113.53:53"
country = "KZ"

[[vantage]]
name = "ooni-kz"
kind = "ooni"
country = "KZ"
""".replace("{'1' * 64}", "1" * 64)


# --- what must not appear -----------------------------------------------------------------------

def _flat(d: dict[str, Any]) -> Iterator[str]:
    for v in d.values():
        if isinstance(v, dict):
            yield from _flat(v)
        elif isinstance(v, str):
            yield v


def _site_tables() -> list[dict[str, dict[str, str]]]:
    return [v for name, v in vars(i18n).items()
            if name.isupper() and isinstance(v, dict) and {"en", "ru", "kk"} <= set(v)
            and all(isinstance(x, dict) for x in v.values())]


def _messages(lang: str) -> list[str]:
    """Every message of ours in `lang`: alerts and digest, the site, verdict reasons."""
    out = list(_flat(C.catalog(lang)))
    out += [s for table in _site_tables() for s in table[lang].values()]
    out += [s for table in reasons.TABLES.values() for s in table[lang].values()]
    out += list(reasons.SERVER_SIDE[lang].values()) + list(reasons.AUTHORITY[lang].values())
    return out


def english_fragments() -> list[str]:
    """Runs of two or more English words of our English messages (between placeholders) that
    no Russian or Kazakh message uses too (names like "DNS", "HTTP" are said alike)."""
    frags: set[str] = set()
    for text in _messages("en"):
        for part in re.split(r"\{[^}]*\}", text):
            for m in re.finditer(r"[A-Za-z][A-Za-z'’]*(?:[ ,;:()-]+[A-Za-z][A-Za-z'’]*)+", part):
                words = re.findall(r"[A-Za-z]+", m.group(0))
                if len(words) >= 2 and sum(map(len, words)) >= 8:
                    frags.add(m.group(0))
    others = "\n".join(_messages("ru") + _messages("kk"))
    return sorted(f for f in frags if f not in others)


ENGLISH = re.compile("|".join(re.escape(f) for f in sorted(english_fragments(), key=len,
                                                              reverse=True)))
def english_words() -> list[str]:
    """Every single English word of our English messages (between placeholders) that no Russian
    or Kazakh message uses too, nor a language's own name in the switcher ("English"): any case
    of one in a Russian or Kazakh output is English of ours ("down", "Blocked", "control")."""
    def words(texts: list[str]) -> set[str]:
        return {w.lower() for text in texts for part in re.split(r"\{[^}]*\}", text)
                for w in re.findall(r"[A-Za-z]+", part)}
    others = words(_messages("ru") + _messages("kk") + list(i18n.LANG_NAMES.values()))
    return sorted(words(_messages("en")) - others)


WORDS = re.compile(r"(?<![A-Za-z0-9_])(" + "|".join(english_words()) + r")(?![A-Za-z0-9_])", re.I)
# a message key, a verdict, display or why name, or a failure string shown as it is; and any
# snake_case word at all (a key or code of a table this list has not heard of)
KEYS = re.compile(r"\b(" + "|".join(sorted(
    {k for k in reasons.TEMPLATES["en"] if "_" in k}
    | {k for t in _site_tables() for k in t["en"] if "_" in k}
    | {k for t in reasons.TABLES.values() for k in t["en"] if "_" in k}
    | set(vocabulary.FAILURES)
    | {"tcp_ip", "http_blockpage", "http_diff", "http_failure", "not_measured", "no_data",
       "reachable_abroad", "criminal_case", "charges_dropped"}
    | {f"itype_{t}" for t in TYPES} | {f"istatus_{s}" for s in STATUSES},
    key=len, reverse=True)) + r")\b|\b[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+\b")
PLACEHOLDER = re.compile(r"\{[a-z_]+\}")
ENGLISH_DATE = re.compile(r"\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\b|"
                          r"\b\d{4}-\d\d-\d\d[ T]\d\d:\d\d")
ENGLISH_NUMBER = re.compile(r"\d\.\d+ ?(КБ|с\b)|\d+,\d{3}\b")


class _Visible(HTMLParser):
    """The text a reader sees or hears (text, title, alt, aria-label), without <style>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "script"):
            self.skip += 1
        self.out += [v for k, v in attrs if k in ("title", "alt", "aria-label") and v]

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script"):
            self.skip -= 1

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.out.append(data)


def visible(html: str) -> str:
    p = _Visible()
    p.feed(html)
    p.close()
    return "\n".join(p.out)


def atom_text(xml: str) -> str:
    return "\n".join(re.findall(r"<(?:title|content)[^>]*>([^<]*)<", xml))


def problems(text: str, lang: str, data: list[str]) -> list[str]:
    """What reads as English or as a key in `text` (data from outside taken out first)."""
    for d in sorted(data, key=len, reverse=True):
        text = text.replace(d, " ")
    text = re.sub(r"https?://\S+", " ", text)  # a link or the badge's embed code is no prose
    for code, words in reasons.FAILURE_WORDS.get(lang, {}).items():
        text = text.replace(f"{words}, {code}", words)  # the code after its words, for experts
    found = [f"english: {m.group(0)!r}" for m in ENGLISH.finditer(text)]
    found += [f"word: {m.group(0)!r}" for m in WORDS.finditer(text)]
    found += [f"key: {m.group(0)!r}" for m in KEYS.finditer(text)]
    found += [f"placeholder: {m.group(0)!r}" for m in PLACEHOLDER.finditer(text)]
    found += [f"date: {m.group(0)!r}" for m in ENGLISH_DATE.finditer(text)]
    found += [f"number: {m.group(0)!r}" for m in ENGLISH_NUMBER.finditer(text)]
    return [f"{lang}: {p}" for p in found]


# --- the database -------------------------------------------------------------------------------

def judgements() -> list[Judgement]:
    """Every reason template, with the variants of its words (each failing step of a redirect,
    each way a handshake fails): one golden case per (why, step, failure)."""
    seen: dict[tuple[Any, ...], Judgement] = {}
    for name in NAMES:
        j = _judge(name)
        seen.setdefault((j.why, j.step, j.vantage_failure), j)
    E = Judgement.explained
    host = "ratel.kz"
    extra = [E(Verdict.OK, False, "ok", host=host),
             E(Verdict.OK, False, "dns_consistent", host=host, vantage_addresses=("203.0.113.5",)),
             E(Verdict.INCONCLUSIVE, False, "no_control_dns", host=host, step="dns"),
             E(Verdict.INCONCLUSIVE, False, "resolver_failed", host=host, step="dns",
               resolver_problem="control.example: no answer")]
    out = list(seen.values()) + extra
    assert {j.why for j in out} == set(reasons.TEMPLATES["en"])
    return out


def ooni_item(**kw: Any) -> Any:
    from blockwatch.ooni.mapping import OoniItem

    base: dict[str, Any] = dict(
        uid="ooni:1", input="https://ratel.kz/", host="ratel.kz", probe_asn="AS9198",
        probe_cc="KZ", measured_at=NOW, anomaly=True, confirmed=False, failure=False,
        blocking_type="dns", accuracy=None,
        measurement_url="https://explorer.ooni.org/m/20261204x")
    return OoniItem(**{**base, **kw}, raw={})


def ooni_forms() -> list[Any]:
    """An OONI list item of every form ooni/mapping.py writes a reason in."""
    forms = [ooni_item(failure=True), ooni_item(accuracy=0.0), ooni_item(anomaly=False),
             ooni_item(confirmed=True, blocking_type=None), ooni_item(blocking_type="weird"),
             ooni_item(blocking_type=None), ooni_item(measurement_url="")]
    forms += [ooni_item(blocking_type=b) for b in ("dns", "tcp_ip", "http-failure", "http-diff")]
    return [*forms, ooni_item(blocking_type="dns", confirmed=True)]


# the vantages beside the agents, each with outlets of its own: (vantage name, kind, country,
# ASN); a local one abroad has no country, the name of an OONI one is "<name>:<ASN>"
OTHER_VANTAGES = [("vps", "local", "", ""), ("vps-kz", "local", "KZ", "AS21299"),
                  ("kz-isp-dns", "resolver", "KZ", ""), ("ooni-kz:AS48716", "ooni", "KZ",
                                                             "AS48716")]


@dataclass
class Other:
    """An outlet measured at a local, resolver or OONI vantage: its verdict there, the stored
    English reason and the keys (None for OONI: its text is read back)."""
    name: str
    kind: str
    verdict: str
    reason: str
    keys: dict[str, Any] | None

    def said(self, lang: str) -> str:
        return reasons.said(self.keys, self.reason, lang)[0]

    @property
    def blocked(self) -> bool:
        return self.verdict in BLOCKING


@dataclass
class World:
    cfg: Config
    outlets: list[tuple[str, Judgement, bool]]  # (name, judgement, still in that state now)
    data: list[str]  # text from outside (sites, data files): taken out before the checks
    # outlets measured only by a local, resolver or OONI vantage
    others: list[Other]


def populate(db: Database, write_config: Any) -> World:
    cfg = write_config(support.config_text(2525, recipients=support.RECIPIENTS_3, webhooks=CHATS))
    js = judgements()
    outlets = [(f"Издание{i}.kz", j, i % 2 == 0) for i, j in enumerate(js)]
    with db.write() as s:
        ids = repo.sync_targets(s, [TargetSpec(n, (f"https://site{i}.example/",), country="KZ",
                                               category="NEWS")
                                    for i, (n, _, _) in enumerate(outlets)]
                                + [TargetSpec("Старое.kz", ("https://old.example/",),
                                              country="KZ", category="NEWS")],
                                retire_others=False)
        vid = repo.ensure_vantage(s, "almaty-1", "agent", "KZ", "AS9198")
        silent = repo.ensure_vantage(s, "almaty-2", "agent", "KZ", "AS9198")
    ok = Judgement.explained(Verdict.OK, False, "ok_http", host="site.example", vantage_status=200)
    rows = []
    for i, (name, j, still) in enumerate(outlets):
        url = f"https://site{i}.example/"

        def row(j: Judgement, at: datetime, n: int, url: str = url, name: str = name,
                i: int = i) -> bulk.Row:
            return bulk.Row(f"u{i}-{n}", ids[name], url, at, {"dns": []}, verdict=j.verdict,
                            confirmed=j.confirmed, reason=j.reason, reason_keys=j.keys())
        rows.append(row(j, NOW - timedelta(hours=6), 0))
        if j.verdict != Verdict.OK and not still:
            rows.append(row(ok, NOW - timedelta(hours=2), 1))  # unblocked or recovered
            rows.append(row(ok, NOW - timedelta(minutes=10), 2))
        else:
            rows.append(row(j, NOW - timedelta(minutes=10), 1))
    rows.sort(key=lambda r: r.measured_at)
    with db.write() as s:
        bulk.record(db, s, vid, rows, confirm_after=1, now=NOW)
    # an older row: a block stored with its English reason only
    old = support.add_event(db, ids["Старое.kz"], vid, "https://old.example/", "tls", None,
                            NOW - timedelta(minutes=10), reason=OLD_REASON)
    with db.write() as s:
        s.get(Event, old).started_at = NOW - timedelta(hours=5)
        s.get(Vantage, silent).last_seen_at = NOW - timedelta(hours=5)  # almaty-2: silent
        s.add(Feed(name="Адил Соз", url="https://adilsoz.example/rss", consecutive_failures=3,
                   last_error="HTTP 503"))
    blocked = next(n for n, j, still in outlets if still and j.verdict in BLOCKING)
    with db.read() as s:
        event = s.scalar(select(Event.id).where(Event.target_id == ids[blocked],
                                                Event.state.in_(sorted(BLOCKING))))
    for k, (link, status) in enumerate(((event, "released"), (None, "sentenced"))):
        inc = support.add_incident(db, title=f"Сообщение {k} о {blocked}",
                                   link=f"https://adilsoz.example/{k}", outlets=[blocked],
                                   at=NOW - timedelta(hours=3), event_id=link, feed="Адил Соз")
        with db.write() as s:
            row = s.get(Incident, inc)
            row.types, row.status = TYPES, status
    data = ["HTTP 503", "almaty-1", "almaty-2", "vps"]
    for j in js:  # what the judgements quote from sites and the data files, as they came
        data += [x for x in (j.vantage_title, j.control_title, j.issuer, j.fingerprint_note,
                             j.authority, j.host, j.hop_host, j.vantage_final_host,
                             j.control_final_host) if x]
        data += list(j.fingerprints)  # blockpage ids, as the data files name them
    others = _other_vantages(db, js)
    data += [n for n, _, _, _ in OTHER_VANTAGES] + ["AS9198", "AS48716", "AS21299"]
    return World(cfg, outlets, data, others)


def _other_vantages(db: Database, js: list[Judgement]) -> list[Other]:
    """Outlets of their own at the local vantages (a block at home, reachable abroad), the
    resolver (each DNS reason) and OONI (each form of its reasons), confirmed now."""
    from blockwatch.ooni.mapping import map_verdict

    tls = next(j for j in js if j.verdict == Verdict.TLS)
    ok = Judgement.explained(Verdict.OK, False, "ok_http", host="site.example", vantage_status=200)
    plan: list[tuple[str, list[tuple[str, Any, str, dict[str, Any] | None]]]] = [
        ("Местное.kz", [("vps-kz", tls.verdict, tls.reason, tls.keys()),
                        ("vps", ok.verdict, ok.reason, ok.keys())])]
    plan += [(f"Резолвер{n}.kz", [("kz-isp-dns", j.verdict, j.reason, j.keys())])
             for n, j in enumerate(j for j in js if j.why.startswith(("dns_", "resolver_",
                                                                       "no_control_dns")))]
    plan += [(f"OONI{n}.kz", [("ooni-kz:AS48716", (m := map_verdict(it)).verdict, m.reason,
                               None)]) for n, it in enumerate(ooni_forms())]
    with db.write() as s:
        ids = repo.sync_targets(s, [TargetSpec(n, (f"https://other{i}.example/",), country="KZ",
                                               category="NEWS") for i, (n, _) in enumerate(plan)],
                                retire_others=False)
        vids = {n: repo.ensure_vantage(s, n, kind, c, asn) for n, kind, c, asn in OTHER_VANTAGES}
    kinds = {n: kind for n, kind, _, _ in OTHER_VANTAGES}
    out = []
    for i, (name, at) in enumerate(plan):
        for vname, verdict, reason, keys in at:
            rows = [bulk.Row(f"o{i}-{vname}-{n}", ids[name], f"https://other{i}.example/",
                             NOW - ago, {"dns": []}, verdict=verdict, reason=reason,
                             reason_keys=keys)
                    for n, ago in enumerate((timedelta(hours=6), timedelta(minutes=10)))]
            with db.write() as s:
                bulk.record(db, s, vids[vname], rows, confirm_after=1, now=NOW)
            out.append(Other(name, kinds[vname], str(verdict), reason, keys))
    return out


@pytest.fixture
def world(db: Database, write_config: Any, monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.setenv("BW_TEST_TELEGRAM_TOKEN", "123:abc")
    monkeypatch.setattr(C, "MAX_ITEMS", 500)  # every item in one message, to check them all
    return populate(db, write_config)


def site_files(db: Database, w: World) -> dict[str, str]:
    rollup_due(db, NOW)
    with db.read() as s:
        snap = load_snapshot(s, NOW, Schedule.of(w.cfg), w.cfg.settings.alerts.quorum)
    files = render_site(build_model(snap), site_info("KZ", "https://s.example.org/",
                                                     ["en", "ru", "kk"]))
    return {k: v.decode("utf-8") for k, v in files.items()}


def alert_texts(db: Database, w: World) -> dict[str, list[tuple[str, str]]]:
    """Per language, every alert queued: (kind of part, text) for email text, HTML and
    subject, and each Telegram message."""
    assert queue_alerts_sync(w.cfg, db, NOW) > 0
    out: dict[str, list[tuple[str, str]]] = {"en": [], "ru": [], "kk": []}
    with db.read() as s:
        for r in s.scalars(select(Outbox)):
            p = r.payload
            if r.channel == "email":
                out[p["language"]] += [("subject", r.subject), ("text", p["text"]),
                                       ("html", p["html"])]
            elif r.channel == "telegram":
                out[p["language"]].append(("telegram", p["text"]))
    return out


# --- the tests ----------------------------------------------------------------------------------

def test_the_checks_know_english_when_they_see_it() -> None:
    """The detectors themselves: an English message, word, key or date is found."""
    en = C.compose_digest(C.DigestData(since=NOW - timedelta(days=1), until=NOW), "en", "UTC")
    assert problems(en.text, "en", [])
    assert problems("доступен с 2026-12-04 09:00", "ru", [])
    assert problems("страница Dec 4", "ru", [])
    assert problems("сайт: http_blockpage", "ru", [])
    assert problems("скорость 2.0 КБ/с", "ru", [])
    assert problems("{host} недоступен", "ru", [])
    assert problems("статус: reachable", "kk", [])
    assert problems("the control connected", "kk", [])
    assert not problems("доступен с 04.12.2026 09:00, 2,0 КБ/с, 1 234", "ru", [])
    # any English word of our messages, in any case, and any key or failure code shown bare
    for leak in ("сайт: down", "Down", "Blocked", "Source: Адил Соз", "Confirmed", "unknown",
                 "never", "через control", "resolver", "Kazakhstan", "(connection_refused)",
                 "сбой: some_new_code", "DNS (dns_no_answer)"):
        assert problems(leak, "kk", []), leak
    refused = reasons.FAILURE_WORDS["ru"]["connection_refused"]
    assert not problems(f"не удалось ({refused}, connection_refused)", "ru", [])


def site_problems(files: dict[str, str], w: World) -> list[str]:
    """What reads as English of ours on the Russian and Kazakh pages and feeds."""
    found = []
    for path, text in sorted(files.items()):
        lang = path.split("/", 1)[0]
        if lang not in OTHERS:
            continue
        if path.endswith((".html", ".svg")):
            shown = visible(text)
            # the older row's English is marked: inside lang="en", after the note
            assert text.count(f'<span lang="en">{escape(OLD_REASON)}</span>') == \
                text.count(str(escape(OLD_REASON))), path
            if OLD_REASON in shown:
                assert i18n.t(lang, "in_english") in shown, path
        elif path.endswith(".xml"):
            shown = atom_text(text)
            # a text feed cannot say lang="en": the note stands before the English
            assert shown.count(f"{i18n.t(lang, 'in_english')} {OLD_REASON}") == \
                shown.count(OLD_REASON), path
        else:
            continue
        found += [f"{path}: {p}" for p in problems(shown.replace(OLD_REASON, " "), lang,
                                                   w.data)]
    return found


def test_an_english_word_of_ours_on_a_russian_or_kazakh_page_is_found(
        db: Database, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """A single English word in any case ("down", "Down") where the reader's word belongs."""
    caches = [f for f in vars(i18n).values() if hasattr(f, "cache_clear")]
    monkeypatch.setitem(i18n.CATEGORY_WORDS["ru"], "down", "down")
    monkeypatch.setitem(i18n.CATEGORY_WORDS["kk"], "down", "Down")
    try:
        for f in caches:
            f.cache_clear()
        found = site_problems(site_files(db, world), world)
    finally:
        monkeypatch.undo()
        for f in caches:  # the words, not the leaked ones, for the tests after this one
            f.cache_clear()
    assert {f.split(": ", 1)[1] for f in found} == {"ru: word: 'down'", "kk: word: 'Down'"}


def test_the_site_in_russian_and_kazakh_has_no_english_of_ours(db: Database, world: World) -> None:
    files = site_files(db, world)
    found = site_problems(files, world)
    assert sorted({f.split(": ", 1)[1] for f in found}) == [], sorted(set(found))[:40]
    # the older row's event is in every feed, its English marked in Russian and Kazakh only
    for lang in ("en", *OTHERS):
        feed = atom_text(files[f"{lang}/feed.xml"])
        assert (f"{i18n.t(lang, 'in_english')} {OLD_REASON}" in feed) == (lang != "en"), lang
        assert OLD_REASON in feed, lang
    # every reason reads in the page's language: the cell now, and each event on the timeline
    for lang in ("en", *OTHERS):
        for name, j, _ in world.outlets:
            page = next(v for k, v in files.items() if k.startswith(f"{lang}/t/")
                        and f"<h1>{escape(name)}</h1>" in v)
            if j.verdict not in BLOCKING and j.verdict != Verdict.DOWN:
                continue  # "reachable" needs no reason; "not measured" shows none
            assert str(escape(j.reason_in(lang))) in page, (lang, name, j.why)
        assert "(на английском)" not in files[f"{lang}/index.html"]
    # the local, resolver and OONI vantages by their kind in the page's language, with reasons
    for lang in ("en", *OTHERS):
        kz = i18n.country_name(lang, "KZ")
        labels = {"ooni": i18n.t(lang, "v_ooni", country=kz, asn="AS48716"),
                  "resolver": i18n.t(lang, "v_resolver", country=kz, asn=""),
                  "local": i18n.t(lang, "v_local", country=kz, asn="AS21299")}
        for o in world.others:
            page = next(v for k, v in files.items() if k.startswith(f"{lang}/t/")
                        and f"<h1>{escape(o.name)}</h1>" in v)
            assert str(escape(labels[o.kind])) in page, (lang, o.name)
            if o.blocked:
                assert str(escape(o.said(lang))) in page, (lang, o.name)
            if o.name == "Местное.kz":
                assert str(escape(i18n.t(lang, "v_abroad"))) in page, lang
    assert str(escape(OLD_REASON)) in next(v for k, v in files.items()
                                           if k.startswith("kk/t/") and "Старое.kz" in v)


def test_status_json_gives_each_language_s_reason_and_keeps_the_english_one(
        db: Database, world: World) -> None:
    doc = json.loads(site_files(db, world)["status.json"])
    by_name = {t["name"]: t for t in doc["targets"]}
    for name, j, still in world.outlets:
        if not still or j.verdict in (Verdict.OK, Verdict.INCONCLUSIVE):
            continue
        (v,) = [v for v in by_name[name]["vantages"] if v["reason"]]
        assert v["reason"] == j.reason  # as before: the stored English
        assert v["reasons"] == {lang: j.reason_in(lang) for lang in ("en", "ru", "kk")}, name
    (old,) = [v for v in by_name["Старое.kz"]["vantages"] if v["reason"]]
    assert old["reasons"] == {"en": OLD_REASON}  # no pretend translation


def test_the_digest_in_russian_and_kazakh_has_no_english_of_ours(db: Database,
                                                                world: World) -> None:
    with db.read() as s:
        d = collect(s, world.cfg, NOW - timedelta(hours=24), NOW)
    assert d.began and d.ended and d.blocked and d.cases and d.incidents and d.feeds and d.silent
    found = []
    for lang in OTHERS:
        m = C.compose_digest(d, lang, world.cfg.settings.alerts.timezone)
        assert "04.12.2026" in m.subject and "04.12.2026" in m.text
        for part, text in (("subject", m.subject), ("text", m.text), ("html", visible(m.html))):
            if OLD_REASON in text:
                assert C.catalog(lang)["text"]["in_english"] in text
            found += [f"digest {part}: {p}" for p in problems(text.replace(OLD_REASON, " "),
                                                              lang, world.data)]
        assert f'<span lang="en">{escape(OLD_REASON)}</span>' in m.html
        # the reasons of what began and ended, rendered from the events' verdicts
        for name, j, _ in world.outlets:
            if j.verdict in BLOCKING or j.verdict == Verdict.DOWN:
                assert C.oneline(j.reason_in(lang), 500) in m.text, (lang, name, j.why)
        for o in world.others:  # local, resolver and OONI vantages' blocks, OONI's text too
            if o.blocked:
                assert C.oneline(o.said(lang), 500) in m.text, (lang, o.name)
        for w in TYPES:  # what happened, in the reader's words
            assert C.catalog(lang)["incident_type"][w] in m.text
        assert C.catalog(lang)["incident_status"]["released"] in m.text
    assert found == []


def test_alerts_in_russian_and_kazakh_have_no_english_of_ours(db: Database,
                                                             world: World) -> None:
    texts = alert_texts(db, world)
    found = []
    for lang in OTHERS:
        assert {k for k, _ in texts[lang]} == {"subject", "text", "html", "telegram"}
        for part, text in texts[lang]:
            shown = visible(text) if part in ("html", "telegram") else text
            if OLD_REASON in shown:
                assert C.catalog(lang)["text"]["in_english"] in shown, part
            found += [f"alert {part}: {p}" for p in problems(shown.replace(OLD_REASON, " "),
                                                             lang, world.data)]
        email = next(t for k, t in texts[lang] if k == "text")
        telegram = visible("".join(t for k, t in texts[lang] if k == "telegram"))
        for name, j, still in world.outlets:
            # a block that already ended is no news (no agreement now); what holds is
            if still and (j.verdict in BLOCKING or j.verdict == Verdict.DOWN):
                said = C.oneline(j.reason_in(lang), 500)
                assert said in email and said in telegram, (lang, name, j.why)
        for o in world.others:
            if o.blocked:
                said = C.oneline(o.said(lang), 500)
                assert said in email and said in telegram, (lang, o.name)
        assert "04.12.2026" in email
    assert found == []
    for lang in OTHERS:  # and the test message
        m = C.compose_test(lang, "Asia/Almaty", NOW)
        assert problems(f"{m.subject}\n{m.text}\n{visible(m.html)}", lang, []) == []
        assert "04.12.2026 14:00" in m.text
    # English readers get English, from the same keys
    email = next(t for k, t in texts["en"] if k == "text")
    assert all(C.oneline(j.reason, 500) in email for _, j, still in world.outlets
               if still and j.verdict in BLOCKING)


def test_a_webhook_keeps_the_english_reason_and_carries_the_keys(db: Database,
                                                                world: World) -> None:
    from blockwatch.alerts.scan import Cursor, _new_events

    with db.read() as s:
        items, _ = _new_events(s, Cursor())
    item = next(i for i in items if i.kind == "blocked" and i.reason_keys)
    body = C.webhook_body("k", "alert", [item], C.compose_alert([item], "kk", "UTC"), NOW, "kk")
    (got,) = body["items"]
    assert got["reason"] == item.reason and got["reason_keys"] == item.reason_keys
    assert reasons.render(got["reason_keys"], "kk") in body["text"]
    old = next(i for i in items if i.reason == OLD_REASON)
    assert old.reason_keys is None


def test_every_shipped_server_side_page_and_interception_authority_reads_in_each_language() -> None:
    ids = {f.id for f in default_matcher().fingerprints if f.kind == "server_side"}
    notes = {ca.note for ca in default_interception().cas if ca.note}
    for lang in OTHERS:
        assert ids <= set(reasons.SERVER_SIDE[lang]), lang
        assert notes <= set(reasons.AUTHORITY[lang]), lang
    keys = {"why": "resolver_failed", "host": "ratel.kz",
            "resolver_problem": "control.example: no answer"}
    assert "no answer" not in (reasons.render(keys, "kk") or "")
    assert "control.example: мекенжайсыз жауап" in (reasons.render(keys, "kk") or "")


def test_dates_and_numbers_of_alerts_in_each_language() -> None:
    at = datetime(2026, 12, 4, 9, 5, tzinfo=UTC)
    assert C.fmt_time(at, "Asia/Almaty", "en") == "2026-12-04 14:05"
    assert C.fmt_time(at, "Asia/Almaty", "ru") == "04.12.2026 14:05"
    assert C.fmt_time(at, "Asia/Almaty", "kk") == "04.12.2026 14:05"
    assert C.fmt_num(12345, "en") == "12,345" and C.fmt_num(12345, "kk") == "12\u00a0345"
    d = C.DigestData(since=at - timedelta(days=1), until=at)
    assert C.digest_date(d, "UTC") == "2026-12-04"  # file names stay ISO
    assert C.digest_date(d, "UTC", "ru") == "04.12.2026"
    many = [C.AlertItem(kind="down", ref=f"e{n}", at=at, detected_at=at, target=f"T{n}")
            for n in range(1234)]
    assert "1,234" in C.alert_subject(many, "en")
    # a subject is one line of plain text: the no-break space becomes a space there
    assert "изменений 1 234" in C.alert_subject(many, "ru")
    assert "1,234" not in C.alert_subject(many, "kk")
    assert "1\u00a0184" in C.compose_alert(many, "kk", "UTC").text  # "and 1 184 more"


def test_event_reasons_survive_retention_on_both_databases(any_db: Database,
                                                           write_config: Any) -> None:
    """The verdict that opened an event is kept by retention (an anomaly, or a change), so its
    keys still say the reason in every language after raw measurements are pruned; the
    loaders read them as JSON on SQLite and PostgreSQL alike."""
    from blockwatch.alerts.scan import Cursor, _new_events
    from blockwatch.retention import prune

    cfg = write_config(support.config_text(2525, recipients=support.RECIPIENTS_3))
    block = _judge("tls_sni_reset_after_client_hello")
    ok = Judgement.explained(Verdict.OK, False, "ok_http", host="ratel.kz", vantage_status=200)
    with any_db.write() as s:
        tid = repo.sync_targets(s, [TargetSpec("Ratel.kz", ("https://ratel.kz/",), country="KZ",
                                               category="NEWS")], retire_others=False)["Ratel.kz"]
        vid = repo.ensure_vantage(s, "almaty-1", "agent", "KZ", "AS9198")
    plan = [ok, ok, block, block, ok, ok]
    rows = [bulk.Row(f"r{n}", tid, "https://ratel.kz/", NOW - timedelta(days=30, hours=6 - n),
                     {"dns": []}, verdict=j.verdict, confirmed=j.confirmed, reason=j.reason,
                     reason_keys=j.keys()) for n, j in enumerate(plan)]
    with any_db.write() as s:
        bulk.record(any_db, s, vid, rows, confirm_after=1, now=NOW, compact=False)
    assert prune(any_db, timedelta(days=1), NOW) > 0  # the plain "ok" repetitions went
    with any_db.read() as s:
        items, _ = _new_events(s, Cursor())
        snap = load_snapshot(s, NOW, Schedule.of(cfg))
    by_state = {i.state: i for i in items}
    assert by_state["tls"].reason_keys == block.keys()
    assert C.said(by_state["tls"], "kk") == (block.reason_in("kk"), "kk")
    assert C.said(by_state["ok"], "ru") == (ok.reason_in("ru"), "ru")
    (ev,) = [e for e in snap.events if e.state == "tls"]
    assert ev.said("kk") == (block.reason_in("kk"), "kk")
    assert ev.said("en") == (block.reason, "en")


def test_a_cell_whose_latest_verdict_disagrees_says_the_event_s_reason_in_its_language() -> None:
    """The confirmed state is a block, the latest check (pending) says reachable: the card
    gives the reason of the verdict that opened the block, in the page's language."""
    from blockwatch.site.load import Snapshot, TargetRec, UrlStateRec, VantageRec

    j = _judge("tls_sni_reset_after_client_hello")
    seen = NOW - timedelta(minutes=5)
    snap = Snapshot(
        now=NOW, vantages={1: VantageRec(1, "almaty-1", "agent", "KZ", "AS9198",
                                         timedelta(minutes=15))},
        targets=[TargetRec(1, "Ratel.kz", ("https://ratel.kz/",), "KZ", "NEWS")],
        states=[UrlStateRec(1, 1, "https://ratel.kz/", "tls", NOW - timedelta(days=2), seen,
                            "ok", False, "reachable", True, j.reason, seen, None, j.keys())],
        events=[])
    (cell,) = [c for c in build_model(snap).statuses[0].cells if c]
    assert cell.reason == j.reason and cell.reason_keys == j.keys()
    files = render_site(build_model(snap), site_info("KZ", "", ["en", "ru", "kk"]))
    for lang in ("en", "ru", "kk"):
        assert str(escape(j.reason_in(lang))) in files[f"{lang}/t/ratel-kz.html"].decode()


def test_an_ooni_import_s_reason_reads_in_each_language() -> None:
    """OONI imports store OONI's judgement as English text (no keys): every form ooni/mapping.py
    writes is read back and said in Russian and Kazakh, its link kept."""
    from blockwatch.ooni.mapping import map_verdict

    forms = ooni_forms()
    texts = {map_verdict(i).reason for i in forms}
    assert len(texts) == len(forms)
    for en in texts:
        assert reasons.said(None, en, "en") == (en, "en")
        for lang in OTHERS:
            text, said_in = reasons.said(None, en, lang)
            assert said_in == lang, (lang, en)
            body = en.split(": ", 1)[1].split("; https://")[0]
            assert body not in text and "OONI's verdict" not in text, (lang, text)
            assert ("https://explorer.ooni.org/m/20261204x" in text) == ("https://" in en)
            assert "AS9198" in text
            assert problems(text.replace("weird", ""), lang, []) == [], text
    assert reasons.said(None, "OONI's verdict from AS1: something new", "kk")[1] == "en"


def test_the_data_and_ooni_tables_have_every_entry_in_every_language() -> None:
    assert set(reasons.OONI) == set(OTHERS)
    want = set(reasons.OONI_EN) | {"who", "confirmed", "unknown_type", "no_type"}
    for lang in OTHERS:
        assert set(reasons.OONI[lang]) == want, lang
        assert "{asn}" in reasons.OONI[lang]["who"] and "{type}" in reasons.OONI[lang][
            "unknown_type"]
    for table in (reasons.SERVER_SIDE, reasons.AUTHORITY):
        assert set(table["ru"]) == set(table["kk"])
        assert all(v.strip() for lang in OTHERS for v in table[lang].values())


def test_every_incident_type_and_status_the_extractor_gives_has_words_in_each_language() -> None:
    """A type or status added to extraction without words would show as its code ("fine")."""
    from blockwatch.feeds import extract

    assert set(TYPES) == set(extract.TYPES) and set(STATUSES) == set(extract.STATUSES)
    for lang in ("en", *OTHERS):
        words = C.catalog(lang)
        assert set(extract.TYPES) <= set(words["incident_type"]), lang
        assert set(extract.STATUSES) <= set(words["incident_status"]), lang
        assert all(f"itype_{t}" in i18n.STRINGS[lang] for t in extract.TYPES), lang
        assert all(f"istatus_{s}" in i18n.STRINGS[lang] for s in extract.STATUSES), lang
