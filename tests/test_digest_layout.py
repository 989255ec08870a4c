"""The digest for staff reading email on a phone: one entry per outlet (URLs and networks that
share a state folded into one line, the reason said once per outlet and technique), and an HTML
part that a 412-pixel-wide screen shows as stacked blocks, checked in Debian's headless Chromium
(the layout measured through the DOM; screenshots kept in test-artifacts/)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest

from blockwatch.alerts import compose as C
from blockwatch.alerts.digest_fold import MAX_URLS, changes, still_blocked
from blockwatch.analysis.quorum import Agreement
from chromium_cdp import Chromium
from test_site_browser import ARTIFACTS, BAD

NOW = datetime(2026, 12, 4, 2, 0, tzinfo=UTC)
TLS_REASON = ("the TLS handshake with ratel.kz was reset right after the ClientHello named it; "
              "the control completed the same handshake")
NETS = (("almaty-agent", "KZ"), ("kz-isp-dns", "KZ"), ("ooni-kz:AS9198", "KZ"))
URLS = ("https://ratel.kz/", "https://ratel.kz/news/", "https://ratel.kz/en/",
        "https://www.ratel.kz/", "https://ratel.kz/politics/", "https://ratel.kz/economy/",
        "https://ratel.kz/society/")


def _blocked() -> tuple[C.BlockedTarget, ...]:
    rows = [C.BlockedVantage(v, c, u, "tls", NOW - timedelta(days=2, hours=i), TLS_REASON, False)
            for i, (v, c) in enumerate(NETS) for u in URLS]
    rows.append(C.BlockedVantage("kz-isp-dns", "KZ", "https://ratel.kz/", "dns",
                                 NOW - timedelta(hours=5), "the resolver answered 10.0.0.1, a "
                                 "known block address", True))
    vlast = [C.BlockedVantage("almaty-agent", "KZ", u, "throttled", NOW - timedelta(hours=9),
                              "27 times slower than the control", False)
             for u in ("https://vlast.kz/", "https://vlast.kz/novosti/")]
    return (C.BlockedTarget("Ratel.kz", "KZ", tuple(rows), (Agreement("KZ", 3, 3, 3, 2),)),
            C.BlockedTarget("Vlast.kz", "KZ", tuple(vlast)))


def _item(kind: str, target: str, vantage: str, url: str, state: str, previous: str | None,
          at: datetime, reason: str = "") -> C.AlertItem:
    return C.AlertItem(kind=kind, ref=f"e{abs(hash((target, vantage, url, kind))) % 10_000}",
                       at=at, detected_at=at + timedelta(minutes=30), target=target,
                       country="KZ", vantage=vantage, vantage_country="KZ", url=url,
                       state=state, previous=previous, reason=reason)


def digest() -> C.DigestData:
    began = tuple(_item("blocked", "Vlast.kz", "almaty-agent", u, "throttled", "ok",
                        NOW - timedelta(hours=9), "27 times slower than the control")
                  for u in ("https://vlast.kz/", "https://vlast.kz/novosti/"))
    ended = tuple(_item("unblocked", "Azattyq", v, "https://www.azattyq.org/", "ok", "dns",
                        NOW - timedelta(hours=3)) for v, _ in NETS)
    coverage = (C.VantageCheck("almaty-agent", "agent", "KZ", "measured", 9),)
    return C.DigestData(since=NOW - timedelta(days=1), until=NOW, blocked=_blocked(),
                        began=began, ended=ended, coverage=coverage, feeds_configured=1)


# --- folding (pure) ----------------------------------------------------------------------------

def test_urls_and_networks_sharing_a_state_fold_into_one_line_per_outlet() -> None:
    ratel, vlast = still_blocked(_blocked())
    assert ratel.name == "Ratel.kz" and [ln.state for ln in ratel.lines] == ["tls", "dns"]
    tls = ratel.lines[0]
    # 3 networks x 7 URLs = 21 rows: one line, every network and URL once, the earliest start
    assert tls.networks == ("almaty-agent (KZ)", "kz-isp-dns (KZ)", "ooni-kz:AS9198 (KZ)")
    assert tls.urls == URLS and tls.since == NOW - timedelta(days=2, hours=2)
    assert tls.reason == TLS_REASON and len(tls.shown_urls) == MAX_URLS
    assert tls.more_urls == len(URLS) - MAX_URLS
    dns = ratel.lines[1]
    assert dns.networks == ("kz-isp-dns (KZ)",) and dns.confirmed
    assert ratel.agreements[0].agreed
    assert [ln.state for ln in vlast.lines] == ["throttled"] and len(vlast.lines[0].urls) == 2
    # began and ended: per outlet and per (kind, technique); an end names what ended
    (began,) = changes(digest().began)
    assert began.name == "Vlast.kz" and len(began.lines) == 1
    assert began.lines[0].detected_at == NOW - timedelta(hours=8, minutes=30)
    (ended,) = changes(digest().ended)
    assert [(ln.kind, ln.state, len(ln.networks)) for ln in ended.lines] == [("unblocked", "dns", 3)]


def test_text_digest_says_each_reason_once_per_outlet_and_technique() -> None:
    m = C.compose_digest(digest(), "en", "Asia/Almaty")
    text = m.text
    assert text.count(TLS_REASON) == 1 and m.html.count(TLS_REASON) == 1
    assert text.count("* Ratel.kz\n") == 1
    assert "  - TLS interference, since 2026-12-02 05:00\n" in text
    assert ("    Networks: almaty-agent (KZ), kz-isp-dns (KZ), ooni-kz:AS9198 (KZ)\n" in text)
    assert "    URLs (7): https://ratel.kz/, " in text and " and 2 more\n" in text
    assert "  - reachable again (was: DNS tampering), ended 2026-12-04 04:00\n" in text
    # began, ended, then still blocked
    assert (text.index("== Began in the period ==") < text.index("== Ended in the period ==")
            < text.index("== Still blocked =="))
    ru = C.compose_digest(digest(), "ru", "Asia/Almaty").text
    kk = C.compose_digest(digest(), "kk", "Asia/Almaty").text
    assert "== Всё ещё заблокировано ==" in ru and "Сети: almaty-agent (KZ)" in ru
    assert "== Әлі де бұғатталған ==" in kk and "Желілер: almaty-agent (KZ)" in kk


def test_hostile_text_in_a_folded_block_stays_escaped() -> None:
    bad = C.BlockedTarget("<b>Evil</b>", "KZ", (C.BlockedVantage(
        "v", "KZ", 'https://x.kz/"><script>alert(1)</script>', "dns", NOW,
        "<img src=x onerror=alert(1)>", False),))
    html = C.compose_digest(C.DigestData(since=NOW, until=NOW, blocked=(bad,)), "en", "UTC").html
    assert "<script>" not in html and "<img" not in html and "<b>Evil" not in html
    assert "&lt;b&gt;Evil&lt;/b&gt;" in html


# --- the HTML part in a real browser -----------------------------------------------------------

# Read back through the DevTools protocol (Runtime.evaluate): the message carries no script.
PROBE = """(() => {
const r = e => e.getBoundingClientRect();
const lines = [...document.querySelectorAll('.line')].map(l => {
  const kids = [...l.children].map(k => ({cls: k.className, top: r(k).top, bottom: r(k).bottom,
    left: r(k).left, width: r(k).width}));
  return {kids, width: r(l).width};
});
const outlets = [...document.querySelectorAll('.outlet')].map(o => ({
  name: o.querySelector('.name').textContent, width: r(o).width, left: r(o).left,
  whys: o.querySelectorAll('.why').length, lines: o.querySelectorAll('.line').length}));
return {viewport: window.innerWidth, scroll: document.documentElement.scrollWidth,
  tables: document.querySelectorAll('table').length, outlets, lines};
})()"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Chromium]:
    b = Chromium()
    try:
        yield b
    finally:
        b.close()
    bad = [ln for ln in b.stderr().splitlines() if BAD.search(ln)]
    assert bad == [], bad


def _layout(browser: Chromium, tmp_path: Path, html: str, width: int,
            name: str) -> dict:  # type: ignore[type-arg]
    page = tmp_path / f"{name}.html"
    page.write_text(html, encoding="utf-8")
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / f"digest-{name}.png"
    shot.unlink(missing_ok=True)
    s = browser.open(page.as_uri(), width, 900, mobile=width < 600)
    lay = browser.evaluate(s, PROBE)
    browser.screenshot(s, shot)
    assert shot.stat().st_size > 5000
    return lay  # type: ignore[no-any-return]


def _stacked(lay: dict, min_width: float) -> None:  # type: ignore[type-arg]
    assert lay["tables"] == 0  # no table squeezed to a word per line
    assert lay["scroll"] <= lay["viewport"]  # nothing wider than the screen
    for line in lay["lines"]:
        kids = line["kids"]
        assert [k["cls"] for k in kids][:3] == ["state", "since", "networks"]
        for a, b in pairwise(kids):
            assert b["top"] >= a["bottom"] - 0.5, (a, b)  # one below the other
            assert abs(b["left"] - a["left"]) < 0.5  # aligned as one column
        # each fact gets the line's width, not a table column's quarter of it
        assert all(k["width"] >= min_width for k in kids), kids


def test_digest_reads_as_stacked_blocks_on_a_phone_and_on_a_desktop(browser: Chromium,
                                                                    tmp_path: Path) -> None:
    html = C.compose_digest(digest(), "en", "Asia/Almaty").html
    phone = _layout(browser, tmp_path, html, 412, "phone-412")
    assert phone["viewport"] == 412
    _stacked(phone, min_width=300)
    by = {o["name"]: o for o in phone["outlets"]}
    # one block per outlet in each section; the reason once per outlet and technique
    assert sorted(o["name"] for o in phone["outlets"]) == ["Azattyq", "Ratel.kz", "Vlast.kz",
                                                           "Vlast.kz"]
    assert by["Ratel.kz"]["lines"] == 2 and by["Ratel.kz"]["whys"] == 2
    assert all(o["width"] >= 360 for o in phone["outlets"])
    desk = _layout(browser, tmp_path, html, 1280, "desktop-1280")
    _stacked(desk, min_width=600)
    # the layout's column (720 px) centred, not stretched across a wide screen
    assert all(600 <= o["width"] <= 720 and o["left"] >= 250 for o in desk["outlets"])
    ru = _layout(browser, tmp_path, C.compose_digest(digest(), "ru", "Asia/Almaty").html, 412,
                 "phone-ru")
    _stacked(ru, min_width=300)
