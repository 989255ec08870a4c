"""A verdict's reason in English, Russian and Kazakh, rendered from the judgement's keys: every
language has every template, every golden case reads in all three, and the keys survive the
store (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from blockwatch.analysis import reasons
from blockwatch.analysis.fingerprints import default_interception
from blockwatch.analysis.verdict import Judgement, judge
from blockwatch.records import WebMeasurement
from blockwatch.storage import Database, bulk, repo
from blockwatch.storage.models import Verdict

CASES = Path(__file__).parent / "cases"
NAMES = sorted(p.name for p in CASES.iterdir() if p.is_dir())
KAZAKH_LETTERS = set("әғқңөұүһі")
ENGLISH_WORDS = re.compile(r"\b(the|from|control|vantage|failed|answered|and)\b")


def _judge(name: str) -> Judgement:
    folder = CASES / name
    ctx = json.loads((folder / "expected.json").read_text(encoding="utf-8")).get("context", {})
    asn: dict[str, str] = ctx.get("asn", {})

    def m(file: str) -> WebMeasurement | None:
        data = json.loads((folder / file).read_text(encoding="utf-8"))
        return None if data is None else WebMeasurement.from_json(data)

    return judge(m("vantage.json"), m("control.json"),  # type: ignore[arg-type]
                 vantage_ok=ctx.get("vantage_ok", True), control_ok=ctx.get("control_ok", True),
                 asn=asn.get if asn else None,
                 interception=default_interception().with_block_addresses(
                     ctx.get("block_addresses", [])))


@pytest.mark.parametrize("table", sorted(reasons.TABLES))
def test_no_language_lacks_a_template_or_word(table: str) -> None:
    by_lang = reasons.TABLES[table]
    assert set(by_lang) == set(reasons.LANGS)
    for lang in reasons.LANGS:
        missing = set(by_lang["en"]) - set(by_lang[lang])
        extra = set(by_lang[lang]) - set(by_lang["en"])
        assert not missing and not extra, (table, lang, missing, extra)
        for key, text in by_lang[lang].items():
            # the same placeholders in every language: a template never asks for a key another
            # language does not give, nor drops one (a host, a failure) the English names
            assert set(re.findall(r"{(\w+)}", text)) == \
                set(re.findall(r"{(\w+)}", by_lang["en"][key])), (table, lang, key)


def test_kazakh_is_written_in_current_cyrillic() -> None:
    text = " ".join(reasons.TEMPLATES["kk"].values())
    assert KAZAKH_LETTERS & set(text)
    assert not re.search(r"[a-z]{4,}", re.sub(r"ClientHello|NXDOMAIN|SERVFAIL|REFUSED|HTTP|TLS|"
                                               r"TCP|DNS|CDN|\{\w+\}", "", text).lower())


@pytest.mark.parametrize("name", NAMES)
def test_every_case_reads_in_every_language(name: str) -> None:
    j = _judge(name)
    keys = json.loads(json.dumps(j.keys()))  # as stored
    en, ru, kk = (reasons.render(keys, lang) for lang in ("en", "ru", "kk"))
    assert en == j.reason
    for lang, text in (("ru", ru), ("kk", kk)):
        assert text and text != en, (lang, text)
        # what came from the site or the fingerprint data (titles, notes) stays as it came
        ours = text
        for given in (j.vantage_title, j.control_title, j.fingerprint_note, j.issuer, j.authority):
            ours = ours.replace(given or "\0", "")
        assert "{" not in ours, (lang, text)  # every placeholder filled
        assert not ENGLISH_WORDS.search(ours), (lang, text)
        if j.host and "{host}" in reasons.TEMPLATES[lang][keys["why"]]:
            assert j.host in text
    assert KAZAKH_LETTERS & set(kk or ""), kk


def test_numbers_and_units_read_in_the_reader_s_language() -> None:
    j = _judge("throttled_until_timeout_https")
    assert "2.0 KB/s" in j.reason and "60 KB" in j.reason
    assert "2,0 КБ/с" in j.reason_in("ru") and "60 КБ" in j.reason_in("ru")
    assert "2,0 КБ/с" in j.reason_in("kk") and "30,0 с" in j.reason_in("kk")


def test_an_unknown_language_reads_english_and_text_without_keys_stays_as_stored() -> None:
    j = _judge("dns_address_that_is_not_the_site")
    assert reasons.render(j.keys(), "fr") == j.reason
    assert Judgement("ok", False, "OONI: reachable").reason_in("kk") == "OONI: reachable"


def test_the_keys_are_stored_with_the_verdict(any_db: Database) -> None:
    j = _judge("redirect_http_to_https_then_sni_reset")
    at = datetime(2026, 3, 1, tzinfo=UTC)
    with any_db.write() as s:
        vid = repo.ensure_vantage(s, "kz-1", "agent", "KZ")
        rows = [bulk.Row(uuid.uuid4().hex, None, "http://ratel.kz/", at, {"dns": []},
                         verdict=j.verdict, confirmed=j.confirmed, reason=j.reason,
                         reason_keys=j.keys()),
                bulk.Row(uuid.uuid4().hex, None, "http://vlast.kz/", at, {"dns": []},
                         verdict="ok", reason="OONI: reachable"),
                # a probed site's title is hostile text: stored escaped, like the evidence
                bulk.Row(uuid.uuid4().hex, None, "http://azattyq.org/", at, {"dns": []},
                         verdict="ok", reason="reachable",
                         reason_keys={"why": "ok_http", "vantage_status": 200,
                                      "vantage_title": "a\x00b\ud800"})]
        bulk.record(any_db, s, vid, rows, 2, at)
    with any_db.read() as s:
        got = {v.url: v for v in s.scalars(select(Verdict))}
    stored = got["http://ratel.kz/"].reason_keys
    assert stored == j.keys() and stored["hop_index"] == 1
    assert reasons.render(stored, "ru") == j.reason_in("ru")
    assert got["http://vlast.kz/"].reason_keys is None
    assert got["http://azattyq.org/"].reason_keys["vantage_title"] == "a\\u0000b\\ud800"


# --- where readers see it ------------------------------------------------------------------------

def test_the_outlet_page_says_the_reason_in_its_language() -> None:
    from markupsafe import escape

    from blockwatch.site.build import render_site, site_info
    from blockwatch.site.load import Snapshot, TargetRec, UrlStateRec, VantageRec
    from blockwatch.site.model import build_model

    now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    seen, since = now - timedelta(minutes=5), now - timedelta(days=3)
    ivl = timedelta(minutes=15)
    j = _judge("tls_sni_reset_after_client_hello")
    old = "the stored English of an older row"
    snap = Snapshot(
        now=now, vantages={1: VantageRec(1, "almaty-1", "agent", "KZ", "AS9198", ivl)},
        targets=[TargetRec(1, "Ratel.kz", ("https://ratel.kz/",), "KZ", "NEWS"),
                 TargetRec(2, "Vlast.kz", ("https://vlast.kz/",), "KZ", "NEWS")],
        states=[UrlStateRec(1, 1, "https://ratel.kz/", "tls", since, seen, "tls", False,
                            j.reason, False, "", seen, j.keys()),
                UrlStateRec(2, 1, "https://vlast.kz/", "tls", since, seen, "tls", False, old,
                            False, "", seen)],
        events=[])
    files = {k: v.decode("utf-8") for k, v in render_site(
        build_model(snap), site_info("KZ", "https://s.example.org/", ["en", "ru", "kk"])).items()}
    for lang in ("en", "ru", "kk"):
        assert str(escape(j.reason_in(lang))) in files[f"{lang}/t/ratel-kz.html"], lang
        assert old in files[f"{lang}/t/vlast-kz.html"]  # no keys: the stored text
    assert str(escape(j.reason)) not in files["ru/t/ratel-kz.html"]


def test_the_digest_says_the_reason_in_the_recipient_s_language() -> None:
    from markupsafe import escape

    from blockwatch.alerts import compose as C

    now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    j = _judge("dns_address_that_is_not_the_site")
    rows = (C.BlockedVantage("almaty-agent", "KZ", "https://ratel.kz/", "dns", now, j.reason,
                             False, j.keys()),
            C.BlockedVantage("kz-isp-dns", "KZ", "https://ratel.kz/", "dns", now, j.reason,
                             False, j.keys()))
    old = C.BlockedVantage("almaty-agent", "KZ", "https://vlast.kz/", "tls", now,
                           "the stored English of an older row", False)
    d = C.DigestData(since=now - timedelta(days=1), until=now, blocked=(
        C.BlockedTarget("Ratel.kz", "KZ", rows), C.BlockedTarget("Vlast.kz", "KZ", (old,))))
    for lang in ("en", "ru", "kk"):
        msg = C.compose_digest(d, lang, "UTC")
        said = j.reason_in(lang)
        assert msg.text.count(said) == 1, lang  # once for the two networks that agree
        assert str(escape(said)) in msg.html, lang
        assert "the stored English of an older row" in msg.text
    assert j.reason not in C.compose_digest(d, "kk", "UTC").text


# --- failures in words ---------------------------------------------------------------------------

def test_every_failure_string_has_words_in_every_language() -> None:
    from blockwatch import vocabulary

    for lang in reasons.LANGS:
        assert set(reasons.FAILURE_WORDS[lang]) == set(vocabulary.FAILURES), lang
    assert KAZAKH_LETTERS & set(" ".join(reasons.FAILURE_WORDS["kk"].values()))


@pytest.mark.parametrize("failure", sorted(reasons.FAILURE_WORDS["en"]))
def test_a_failure_reads_in_words_with_its_code_after_them(failure: str) -> None:
    """Every template that gives a failure in brackets, with every failure string: the reader's
    words, then the code (once with its words, never alone)."""
    base = {"host": "ratel.kz", "hop_host": "news.ratel.kz", "vantage_addresses": ["1.2.3.4"],
            "port": 443, "control_status": 200, "vantage_failure": failure,
            "control_failure": failure}
    whys = [w for w, t in reasons.TEMPLATES["en"].items() if "{vfail}" in t or "{cfail}" in t]
    cases = [{**base, "why": w} for w in whys]
    cases += [{**base, "why": "hop_blocked", "step": s} for s in ("tcp", "tls", "http")]
    cases += [{**base, "why": "tls_blocked", "vantage_failure": failure}]
    for lang in reasons.LANGS:
        said = f"({reasons.FAILURE_WORDS[lang][failure]}, {failure}"
        for keys in cases:
            if keys["why"] == "tls_blocked" and failure in reasons.HOW[lang]:
                continue  # "was reset after the ClientHello": said by the sentence itself
            text = reasons.render(keys, lang) or ""
            assert said in text, (lang, keys["why"], text)
            assert text.count(failure) == text.count(said), (lang, keys["why"], text)


def test_a_failure_the_tables_do_not_know_reads_as_its_code() -> None:
    keys = {"why": "tcp_blocked", "host": "ratel.kz", "vantage_addresses": ["1.2.3.4"],
            "port": 443, "vantage_failure": "quic_newer_failure"}
    assert "(quic_newer_failure)" in (reasons.render(keys, "kk") or "")
    keys = {"why": "tcp_down", "host": "ratel.kz"}  # no failure stored on either side
    assert reasons.render(keys, "ru") == ("подключение к ratel.kz не удалось ни из точки "
                                          "измерения (неизвестен), ни из контрольной точки (не "
                                          "измерялось): сайт не работает")


def test_a_dns_failure_in_brackets_reads_in_words() -> None:
    """The site does not answer anywhere because its name has no address: the words of
    dns_no_answer, not the code alone."""
    keys = {"why": "http_down", "host": "ratel.kz", "vantage_failure": "dns_no_answer",
            "control_failure": "dns_no_answer"}
    assert reasons.render(keys, "ru") == (
        "сайт не отвечает ни в точке измерения (ответ без адреса, dns_no_answer), ни в "
        "контрольной точке (ответ без адреса, dns_no_answer): сайт не работает")
    problem = {"why": "resolver_failed", "resolver_problem": "kz.example: generic_timeout_error"}
    assert "kz.example: күту уақыты бітті, generic_timeout_error" in (
        reasons.render(problem, "kk") or "")


# --- text from outside inside a sentence of ours ----------------------------------------------------

BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


def test_a_bidi_control_from_a_probed_page_cannot_turn_a_reason_around() -> None:
    """A page title, host or issuer with U+202E (right-to-left override) would reverse the rest
    of the line on the site, in email and Telegram: every explicit bidi control is written out."""
    evil = "Ratel \u202eгазета\u2066x\u2069"
    keys = {"why": "http_diff", "vantage_status": 200, "vantage_title": evil, "vantage_bytes": 10,
            "control_status": 200, "control_title": "Ratel", "control_bytes": 20}
    tls = {"why": "tls_cert", "host": "ratel.kz", "vantage_failure": "ssl_unknown_authority",
           "issuer": "CN=\u202bKZ"}
    for lang in reasons.LANGS:
        for k in (keys, tls):
            text = reasons.render(k, lang) or ""
            assert not set(BIDI) & set(text), (lang, text)
        assert "Ratel \\u202eгазета\\u2066x\\u2069" in (reasons.render(keys, lang) or "")
        # an older row's stored English and an OONI import's text, said as they came
        assert reasons.said(None, f"blocked \u202e{evil}", lang)[0] == (
            "blocked \\u202eRatel \\u202eгазета\\u2066x\\u2069")
        ooni = "OONI's verdict from AS9198\u202e: no anomaly, the site was reachable"
        assert not set(BIDI) & set(reasons.said(None, ooni, lang)[0])
    j = Judgement.explained("http_diff", False, "http_diff", **{k: v for k, v in keys.items()
                                                              if k != "why"})
    assert "\u202e" not in j.reason  # the English stored with the verdict, too


def test_the_outlet_page_and_alerts_show_a_bidi_control_written_out() -> None:
    from blockwatch.alerts import compose as C
    from blockwatch.site.build import render_site, site_info
    from blockwatch.site.load import Snapshot, TargetRec, UrlStateRec, VantageRec
    from blockwatch.site.model import build_model

    now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    seen, since = now - timedelta(minutes=5), now - timedelta(days=3)
    j = Judgement.explained("http_diff", False, "http_diff", host="ratel.kz", vantage_status=200,
                            vantage_title="abc\u202edef", vantage_bytes=10, control_status=200,
                            control_title="Ratel", control_bytes=20)
    snap = Snapshot(
        now=now, vantages={1: VantageRec(1, "almaty-1", "agent", "KZ", "AS9198",
                                         timedelta(minutes=15))},
        targets=[TargetRec(1, "Ratel.kz", ("https://ratel.kz/",), "KZ", "NEWS")],
        states=[UrlStateRec(1, 1, "https://ratel.kz/", "http_diff", since, seen, "http_diff",
                            False, j.reason, False, "", seen, j.keys())],
        events=[])
    files = render_site(build_model(snap), site_info("KZ", "https://s.example.org/",
                                                     ["en", "ru", "kk"]))
    for lang in ("en", "ru", "kk"):
        page = files[f"{lang}/t/ratel-kz.html"].decode()
        assert "abc\\u202edef" in page and "\u202e" not in page, lang
    item = C.AlertItem(kind="blocked", ref="e1", at=now, detected_at=now, target="Ratel.kz",
                       state="http_diff", reason=j.reason, reason_keys=j.keys())
    for lang in ("en", "ru", "kk"):
        m = C.compose_alert([item], lang, "UTC")
        for text in (m.text, m.html):
            assert "abc\\u202edef" in text and "\u202e" not in text, lang
