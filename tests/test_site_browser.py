"""The built site in a real browser: Debian's headless Chromium loads pages from a local server
on 127.0.0.1; every request must get 200, the console must stay clean (no errors, no CSP
violations), and screenshots for a phone and a desktop are kept in test-artifacts/.

Never skipped: without /usr/bin/chromium (or $BLOCKWATCH_CHROMIUM) this fails; .ci/run installs
Debian's chromium."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from blockwatch.site.build import build_site_from_db
from blockwatch.site.serve import serve_in_thread
from blockwatch.storage import open_database
from test_site_build import AGENT_NAME, INFO, NOW, SCHED, populate

CHROMIUM = os.environ.get("BLOCKWATCH_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--enable-logging=stderr", "--v=0"]
# what Chromium prints for a page's console errors, uncaught exceptions and blocked loads
BAD = re.compile(r"CONSOLE|Uncaught|Content Security Policy|Refused to|net::ERR_|Failed to load",
                 re.I)


def _browser() -> str:
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y "
                    "chromium) or point BLOCKWATCH_CHROMIUM at a Chromium binary")
    return CHROMIUM


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[tuple[str, str, int]]]]:
    d = tmp_path_factory.mktemp("browser")
    db = open_database(f"sqlite:///{d / 'blockwatch.db'}")
    try:
        populate(db)
        build_site_from_db(db, d / "site", INFO, now=NOW, schedule=SCHED)
    finally:
        db.close()
    server, thread = serve_in_thread(d / "site", "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server.request_log  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _chromium(args: list[str], url: str) -> subprocess.CompletedProcess[str]:
    profile = tempfile.mkdtemp(prefix="bw-chromium-")
    try:
        return subprocess.run([_browser(), *FLAGS, f"--user-data-dir={profile}", *args, url],
                              capture_output=True, text=True, timeout=90, check=False)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@pytest.mark.parametrize(("path", "size", "name", "expect"), [
    ("/", "390,844", "index-phone", "Ratel.kz"),
    ("/", "1280,900", "index-desktop", "Kazakhstan, AS9198 (agent)"),
    ("/ru/t/ratel-kz.html", "390,1600", "target-ru-phone", "заблокирован"),
    ("/en/t/ratel-kz.html", "1280,1400", "target-desktop", "TLS (SNI) interference"),
    ("/en/incidents.html", "390,1200", "incidents-phone", "journalist detained"),
    # the filters: static pages, each a plain link away
    ("/en/state/blocked.html", "390,900", "state-blocked-phone", "Outlets that are blocked now"),
    ("/kk/network/kazakhstan-as9198-agent.html", "390,900", "network-kk-phone",
     "Қазақстан, AS9198 (агент)"),
])
def test_page_loads_cleanly_in_headless_chromium(served, path: str, size: str, name: str,  # type: ignore[no-untyped-def]
                                                 expect: str) -> None:
    base, log = served
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / f"site-{name}.png"
    shot.unlink(missing_ok=True)
    before = len(log)
    dom = _chromium([f"--window-size={size}", "--dump-dom"], base + path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    assert expect in html
    assert "<script" not in html.lower() and AGENT_NAME not in html
    # the hostile reason shows escaped where reasons are shown (not on the lists)
    assert ("&lt;script&gt;alert(1)&lt;/script&gt;" in html or path == "/"
            or "/state/" in path or "/network/" in path)
    pic = _chromium([f"--window-size={size}", f"--screenshot={shot}"], base + path)
    assert pic.returncode == 0, pic.stderr[-2000:]
    assert shot.is_file() and shot.stat().st_size > 5000
    requests = log[before:]
    assert requests, "the browser made no request to the server"
    # every resource the page needed (the page itself, badge images) answered 200
    assert [r for r in requests if r[2] != 200] == [], requests
    if "/t/" in path:
        assert any(p.endswith(".svg") for _, p, _ in requests), "the badge was not loaded"
    for out in (dom.stderr, pic.stderr):
        bad = [line for line in out.splitlines() if BAD.search(line)]
        assert bad == [], bad


# --- measured versus not known, as a browser renders it ------------------------------------------

@pytest.fixture(scope="module")
def served_states(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from test_site_states import INFO as STATES_INFO
    from test_site_states import NOW as STATES_NOW
    from test_site_states import SCHED as STATES_SCHED
    from test_site_states import states_world

    d = tmp_path_factory.mktemp("browser-states")
    db = open_database(f"sqlite:///{d / 'blockwatch.db'}")
    try:
        states_world(db)
        build_site_from_db(db, d / "site", STATES_INFO, now=STATES_NOW, schedule=STATES_SCHED)
    finally:
        db.close()
    server, thread = serve_in_thread(d / "site", "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _row(html: str, slug: str) -> str:
    m = re.search(rf'<tr id="{re.escape(slug)}">(.*?)</tr>', html, re.S)
    assert m, slug
    return re.sub(r"<[^>]+>", " ", m.group(1))


def test_each_state_reads_right_in_headless_chromium(served_states: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    dom = _chromium(["--window-size=1280,900", "--dump-dom"], served_states + "/en/index.html")
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    assert ("6 outlets now: 1 blocked, 1 down everywhere, 1 reachable, 1 not measured, "
            "1 no recent data, 1 no data yet.") in html
    assert "✕ blocked" in _row(html, "blocked-kz")
    assert "↓ site down" in _row(html, "down-kz")
    assert "✓" in _row(html, "reachable-kz")
    assert "? not measured" in _row(html, "dark-kz") and "reachable" not in _row(html, "dark-kz")
    assert "… no recent data" in _row(html, "stale-kz") and "✓" not in _row(html, "stale-kz")
    assert "– no data" in _row(html, "never-kz")
    pic = _chromium(["--window-size=390,844", f"--screenshot={ARTIFACTS / 'site-states-phone.png'}"],
                    served_states + "/en/index.html")
    assert pic.returncode == 0 and (ARTIFACTS / "site-states-phone.png").stat().st_size > 5000
    page = _chromium(["--window-size=390,1600", "--dump-dom"], served_states + "/ru/t/dark-kz.html")
    assert page.returncode == 0, page.stderr[-2000:]
    assert "не измерено с 15 марта 2026 09:00 UTC" in page.stdout
    for out in (dom.stderr, pic.stderr, page.stderr):
        bad = [line for line in out.splitlines() if BAD.search(line)]
        assert bad == [], bad


def test_a_site_with_no_usable_measurement_says_so_in_headless_chromium(
        tmp_path: Path) -> None:
    from datetime import timedelta

    from blockwatch.storage import repo
    from blockwatch.storage.models import Target
    from test_site_states import INFO as STATES_INFO
    from test_site_states import NOW as STATES_NOW
    from test_site_states import SCHED as STATES_SCHED
    from test_site_states import record

    db = open_database(f"sqlite:///{tmp_path / 'blockwatch.db'}")
    try:
        with db.write() as s:
            t = Target(name="Ratel.kz", country="KZ", category="NEWS",
                       urls=["https://ratel.kz/"], aliases=[], active=True)
            s.add(t)
            s.flush()
            vps = repo.ensure_vantage(s, "vps", "local")
            for back in (20, 5):
                record(s, t.id, vps, "https://ratel.kz/", STATES_NOW - timedelta(minutes=back),
                       "inconclusive")
        build_site_from_db(db, tmp_path / "site", STATES_INFO, now=STATES_NOW,
                           schedule=STATES_SCHED)
    finally:
        db.close()
    server, thread = serve_in_thread(tmp_path / "site", "127.0.0.1", 0)
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        dom = _chromium(["--window-size=390,844", "--dump-dom"], base + "/kk/index.html")
        page = _chromium(["--window-size=390,1200", "--dump-dom"], base + "/en/t/ratel-kz.html")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert dom.returncode == 0 and page.returncode == 0, dom.stderr[-2000:]
    assert "Жарамды өлшеулер әлі жоқ" in dom.stdout  # "no usable measurements yet"
    assert "қолжетімді:" not in dom.stdout  # no "reachable: N" count
    assert "No usable measurements in the last 90 days." in page.stdout
    assert "no usable measurement yet" in page.stdout
    assert "No problems in the last 90 days" not in page.stdout
    for out in (dom.stderr, page.stderr):
        assert [line for line in out.splitlines() if BAD.search(line)] == []
