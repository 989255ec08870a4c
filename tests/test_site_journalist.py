"""The status page for a journalist in a hurry: blocked outlets first, filters by state and by
network as static pages (no script), networks named for readers (never an agent's name), and an
outlet page that says since when, how, where, with the evidence hash and "how we know", in
English, Russian and Kazakh. Pure: a Snapshot of plain records through the model and renderer."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import pytest

from blockwatch.site import i18n
from blockwatch.site.build import render_site, site_info
from blockwatch.site.load import EventRec, Snapshot, TargetRec, UrlStateRec, VantageRec
from blockwatch.site.model import build_model, group_of, ordered

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
INFO = site_info("KZ press status", "https://status.example.org/", ["en", "ru", "kk"])
AGENT = "almaty-volunteer-zhanna"
HASH = "5f" * 32
IVL = timedelta(minutes=15)
# name -> the state at the agent (the other vantages see it reachable)
OUTLETS = {"Zeta.kz": "ok", "Ratel.kz": "tls", "Orda.kz": "http_diff", "Kursiv.kz": "down",
           "Dark.kz": "inconclusive", "Vlast.kz": "dns", "Slow.kz": "throttled"}


def snapshot() -> Snapshot:
    vantages = {1: VantageRec(1, AGENT, "agent", "KZ", "AS9198", IVL),
                2: VantageRec(2, "kz-isp-dns", "resolver", "KZ", "", IVL),
                3: VantageRec(3, "ooni-kz:AS9198", "ooni", "KZ", "AS9198", timedelta(days=1)),
                4: VantageRec(4, "vps", "local", "", "", IVL)}
    targets, states, events = [], [], []
    seen = NOW - timedelta(minutes=5)
    since = datetime(2026, 12, 1, 8, 30, tzinfo=UTC)
    for i, (name, state) in enumerate(OUTLETS.items(), 1):
        url = f"https://{name.lower()}/"
        targets.append(TargetRec(i, name, (url,), "KZ", "NEWS"))
        for vid in vantages:
            st = state if vid in (1, 2) or state in ("down", "inconclusive") else "ok"
            if st == "inconclusive":  # could not look lately: its last usable was long ago
                states.append(UrlStateRec(i, vid, url, "ok", since, seen, "inconclusive", False,
                                          "", False, "", NOW - timedelta(days=2)))
                continue
            states.append(UrlStateRec(i, vid, url, st, since, seen, st, False, f"reason {st}",
                                      False, "", seen))
            if st not in ("ok",):
                events.append(EventRec(len(events) + 1, i, vid, url, st, "ok", False, "r",
                                       since, since, None, since, HASH if vid == 1 else None))
    return Snapshot(now=NOW, targets=targets, vantages=vantages, states=states, events=events)


@pytest.fixture(scope="module")
def files() -> dict[str, str]:
    return {k: v.decode("utf-8") for k, v in render_site(build_model(snapshot()), INFO).items()}


def _ids(html: str) -> list[str]:
    return re.findall(r'<tr id="([^"]+)">', html)


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.hrefs += [v for k, v in attrs if k == "href" and v]


def test_blocked_first_then_interfered_down_not_known_reachable(files) -> None:  # type: ignore[no-untyped-def]
    assert _ids(files["en/index.html"]) == [
        "ratel-kz", "vlast-kz",  # blocked (TLS, DNS), by name
        "orda-kz", "slow-kz",  # interfered: a different page, throttled
        "kursiv-kz",  # down everywhere
        "dark-kz",  # not measured
        "zeta-kz"]  # reachable last
    assert _ids(files["index.html"]) == _ids(files["ru/index.html"]) == _ids(files["en/index.html"])
    # the headline's list of problems in the same order
    blocked_list = files["en/index.html"].split("Blocked or interfered with")[1].split("</p>")[0]
    assert re.findall(r'href="t/([a-z-]+)\.html"', blocked_list) == [
        "ratel-kz", "vlast-kz", "orda-kz", "slow-kz"]
    m = build_model(snapshot())
    assert [group_of(s.shown) for s in ordered(m.statuses)] == [
        "blocked", "blocked", "interfered", "interfered", "down", "unknown", "reachable"]


@pytest.mark.parametrize("lang", ["en", "ru", "kk"])
def test_filters_are_static_pages_in_each_language(files, lang: str) -> None:  # type: ignore[no-untyped-def]
    pages = {g: files[f"{lang}/state/{g}.html"] for g in
             ("blocked", "interfered", "down", "unknown", "reachable")}
    assert _ids(pages["blocked"]) == ["ratel-kz", "vlast-kz"]
    assert _ids(pages["interfered"]) == ["orda-kz", "slow-kz"]
    assert _ids(pages["down"]) == ["kursiv-kz"] and _ids(pages["unknown"]) == ["dark-kz"]
    assert _ids(pages["reachable"]) == ["zeta-kz"]
    nets = sorted(p for p in files if p.startswith(f"{lang}/network/"))
    assert nets == [f"{lang}/network/{s}.html" for s in sorted([
        "abroad", "kazakhstan-as9198-agent", "kazakhstan-isp-resolver",
        "kazakhstan-ooni-volunteers-as9198"])]
    agent_page = files[f"{lang}/network/kazakhstan-as9198-agent.html"]
    rows = re.findall(r'<a href="\.\./t/([a-z-]+)\.html#n\d+">', agent_page)
    assert rows[:2] == ["ratel-kz", "vlast-kz"] and rows[-1] == "zeta-kz"
    # every link of every filter page leads to a file of the site (relative, no script)
    for path, html in files.items():
        if not path.endswith(".html") or ("/state/" not in path and "/network/" not in path):
            continue
        assert "<script" not in html and "Content-Security-Policy" in html
        p = _Links()
        p.feed(html)
        base = path.rsplit("/", 1)[0]
        for href in p.hrefs:
            target = href.split("#")[0]
            if not target or target.startswith(("http", "data:")):
                continue
            parts: list[str] = base.split("/")
            for seg in target.split("/"):
                if seg == "..":
                    parts.pop()
                elif seg != ".":
                    parts.append(seg)
            assert "/".join(parts) in files, (path, href)
    # the index links each filter, with its count
    idx = files[f"{lang}/index.html"]
    assert f'href="state/blocked.html">{i18n.t(lang, "group_blocked")} (2)</a>' in idx
    assert 'href="network/kazakhstan-as9198-agent.html"' in idx


def test_networks_are_named_for_readers_and_agents_never_by_name(files) -> None:  # type: ignore[no-untyped-def]
    heads = re.findall(r'<th scope="col"([^>]*)>([^<]*)</th>', files["en/index.html"])
    assert [h for _, h in heads] == [
        "Kazakhstan, AS9198 (agent)", "Kazakhstan, OONI volunteers AS9198",
        "Kazakhstan, ISP resolver", "Abroad"]
    # the configuration name as a tooltip, except the agent's
    assert [a for a, _ in heads] == ["", ' title="ooni-kz:AS9198"', ' title="kz-isp-dns"',
                                         ' title="vps"']
    assert "Казахстан, AS9198 (агент)" in files["ru/index.html"]
    assert "Қазақстан, AS9198 (агент)" in files["kk/index.html"]
    assert "Қазақстан, провайдер DNS-і" in files["kk/index.html"]
    for path, text in files.items():
        assert AGENT not in text and "volunteer-zhanna" not in text, path


def test_two_agents_in_one_network_are_numbered_not_named() -> None:
    snap = snapshot()
    snap.vantages[5] = VantageRec(5, "astana-volunteer-b", "agent", "KZ", "AS9198", IVL)
    snap.states.append(UrlStateRec(1, 5, "https://zeta.kz/", "ok", NOW, NOW, "ok", False, "",
                                   False, "", NOW))
    out = render_site(build_model(snap), INFO)
    html = out["en/index.html"].decode()
    assert "Kazakhstan, AS9198 (agent 1)" in html and "Kazakhstan, AS9198 (agent 2)" in html
    assert not any(b"astana-volunteer" in v or AGENT.encode() in v for v in out.values())


@pytest.mark.parametrize(("lang", "words"), [
    ("en", ["What we see", "TLS (SNI) interference", "1 Dec 2026 08:30 UTC",
            "Kazakhstan, AS9198 (agent)", "Kazakhstan, ISP resolver",
            "Evidence (SHA-256 of the measurement)", "How we know",
            "Our probe in the country opened a connection to the site, but the secure handshake "
            "was cut after it named the site; from abroad the same handshake completed."]),
    ("ru", ["Что мы видим", "вмешательство в TLS (SNI)", "1 декабря 2026 08:30 UTC",
            "Откуда мы это знаем", "защищённое рукопожатие оборвалось"]),
    ("kk", ["Не көреміз", "TLS (SNI) кедергісі", "2026 жылғы 1 желтоқсан 08:30 UTC",
            "Қайдан білеміз", "қорғалған қол алысу"]),
])
def test_outlet_page_says_since_how_where_evidence_and_how_we_know(
        files, lang: str, words: list[str]) -> None:  # type: ignore[no-untyped-def]
    html = files[f"{lang}/t/ratel-kz.html"]
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
    for w in words:
        assert w in text, w
    assert f"<code>{HASH}</code>" in html  # the full SHA-256 of the measurement
    # where: both networks that see it blocked, linked to their cards; the others are not listed
    what = html[html.index('id="what"'):html.index('id="how"')]
    assert what.count('<a href="#n') == 2
    # a throttled outlet gets its own words; a reachable one no such section
    slow = files[f"{lang}/t/slow-kz.html"]
    assert i18n.t(lang, "know_throttled") in slow and i18n.t(lang, "know_tls") not in slow
    assert 'id="how"' not in files[f"{lang}/t/zeta-kz.html"]


def test_dates_and_numbers_in_each_languages_format() -> None:
    d = datetime(2026, 12, 4, tzinfo=UTC).date()
    assert i18n.fmt_day("ru", d) == "4 декабря 2026"
    assert i18n.fmt_day("kk", d) == "2026 жылғы 4 желтоқсан"
    assert i18n.fmt_day("en", d) == "4 Dec 2026"
    assert i18n.fmt_num("ru", 1234567) == "1\u00a0234\u00a0567"
    assert i18n.fmt_num("kk", 1234) == "1\u00a0234" and i18n.fmt_num("en", 1234) == "1,234"
    # the headline's counts use them
    snap = snapshot()
    snap.targets.extend(TargetRec(100 + i, f"Extra {i}", (), "KZ", "NEWS") for i in range(1200))
    out = render_site(build_model(snap), site_info("t", "", ["ru"]))
    assert "Изданий: 1\u00a0207." in out["ru/index.html"].decode()
