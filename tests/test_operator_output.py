"""What an operator reads: the line `blockwatch run` starts with, one line per round (counts
that match the stored verdicts, numbers that go on across restarts), durations as people write
them, and `check`'s progress bar and wrapped table on a terminal."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import pty
import re
import signal
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from blockwatch.cli import main
from blockwatch.config import load
from blockwatch.daemon import Daemon
from blockwatch.durations import format_duration, parse_duration
from blockwatch.progress import ProgressBar, bar_text
from blockwatch.round_summary import round_line, verdict_counts
from blockwatch.storage import open_database
from blockwatch.storage.models import Vantage, Verdict
from blockwatch.targets import load_targets
from lab import Behaviour, Lab
from test_daemon import lab_config, start_run
from test_shipped_config import expected, shipped

ROOT = Path(__file__).resolve().parent.parent
NOWHERE = "127.0.0.7"  # nothing listens here: the feeds and searches fail at once, offline
RAW = re.compile(r"timedelta\(|datetime\.datetime\(|\b\d+:\d\d:\d\d(\.\d+)?\b(?! [A-Z])|"
                 r"\d+ days?, ")


@pytest.fixture(autouse=True)
def _root_logging() -> Iterator[None]:
    """cli.main puts its own handler on the root logger: put the test's back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


# --- durations ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "text"), [
    (0, "0s"), (0.85, "850ms"), (0.0004, "1ms"), (1, "1s"), (2.5, "2.5s"), (9.96, "10s"),
    (24, "24s"), (24.4, "24s"), (59.6, "1m"), (90, "1m30s"), (15 * 60, "15m"),
    (3599.6, "1h"), (5400, "1h30m"), (5430, "1h30m"), (86400, "1d"), (86399.9, "1d"),
    (90061, "1d1h"), (7 * 86400, "7d"), (timedelta(minutes=15), "15m"),
    (timedelta(hours=1, minutes=30), "1h30m"), (timedelta(days=1), "1d"), (-5, "-5s"),
])
def test_format_duration(value: float | timedelta, text: str) -> None:
    assert format_duration(value) == text
    if isinstance(value, timedelta) or (value >= 10 and value == int(value)
                                        and value % 60 == 0):
        assert parse_duration(text) == (value if isinstance(value, timedelta)
                                        else timedelta(seconds=value))  # reads back as written


def test_round_line_counts_every_verdict() -> None:
    line = round_line("probe", 12, "vps", 80, 24.2,
                      ["ok"] * 71 + ["dns"] * 3 + ["tls"] * 2 + ["down"] * 2 + ["inconclusive"] * 2)
    assert line == ("probe round 12 from vps: 80 URLs in 24s: 71 ok, 5 blocked (dns 3, tls 2), "
                    "2 down, 2 inconclusive")
    # fewer verdicts than URLs is said, never hidden; events are counted
    assert round_line("resolver", 3, "kz-isp", 4, 0.85, ["ok", "dns"], events=1) == (
        "resolver round 3 from kz-isp: 4 URLs in 850ms: 1 ok, 1 blocked (dns 1); "
        "2 without a result (errors above); 1 new event")
    assert verdict_counts([]) == "no verdicts"


# --- blockwatch run ----------------------------------------------------------------------------

def offline_feeds(config: Path) -> int:
    """The shipped [feeds] with every address on NOWHERE; the searches off (a search service is
    asked at most every few seconds: a minute and more of refused queries). Returns the feeds
    the file enables."""
    text = config.read_text(encoding="utf-8")
    start, end = text.index("\n[feeds]\n"), text.index("\n[alerts]\n")
    feeds = re.sub(r'(?m)^((?:url|site|api_url) = ")https?://[^/"]+',
                   rf"\1http://{NOWHERE}:9", text[start:end])
    feeds = re.sub(r'(?m)^kind = "google_news"\n',
                   f'kind = "google_news"\napi_url = "http://{NOWHERE}:9/rss/search"\n', feeds)
    feeds = re.sub(r"(?m)^\[\[feeds\.search\]\]\n", "[[feeds.search]]\nenabled = false\n", feeds)
    assert "https://" not in re.sub(r"(?m)^#.*$", "", feeds)  # nothing left on the internet
    # the shipped people list, where the shipped file points (../probes from config/)
    feeds = feeds.replace('people = ["../probes/people.toml"]',
                          f'people = ["{ROOT / "probes" / "people.toml"}"]')
    config.write_text(text[:start] + feeds + text[end:], encoding="utf-8")
    f = load(config).settings.feeds
    assert f.search and not any(s.enabled for s in f.search)
    return sum(1 for s in f.source if s.enabled)


def stored_verdicts(db_url: str, vantage: str) -> list[str]:
    db = open_database(db_url)
    try:
        with db.read() as s:
            return list(s.scalars(select(Verdict.verdict).join(Vantage,
                                                               Vantage.id == Verdict.vantage_id)
                                  .where(Vantage.name == vantage)))
    finally:
        db.close()


async def test_run_says_what_it_runs_and_how_each_round_went(lab: Lab, tmp_path: Path) -> None:
    cfg = await shipped(lab, tmp_path)
    assert cfg.path is not None
    n_feeds = offline_feeds(cfg.path)
    assert n_feeds >= 10
    targets = load_targets(cfg.target_files)
    urls = [u for t in targets for u in t.urls]

    proc, lines = await start_run(cfg.path)
    try:
        start = await lines.wait_for("blockwatch running", timeout=60)
        first = await lines.wait_for("probe round 1 from vps", timeout=120)
        proc.send_signal(signal.SIGTERM)
        err = await lines.rest(timeout=60)
        assert await asyncio.wait_for(proc.wait(), 30) == 0, err
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()

    # the start line: one line, everything an operator checks first
    assert err.count("blockwatch running") == 1
    assert f"config {cfg.path}; " in start and cfg.path.is_absolute()
    assert f"database sqlite:///{tmp_path}/blockwatch.db (held through " in start
    assert f"site {tmp_path / 'site'}; " in start
    assert "vantages vps (local); " in start
    assert f"{len(targets)} targets ({len(urls)} URLs), {n_feeds} feeds, 0 searches; " in start
    assert re.search(r"round 1 now, then every 15m: next at (\d{4}-\d\d-\d\d )?\d\d:\d\d "
                     r"Asia/Almaty \(in 15m\)$", start.rstrip()), start
    # the round line: its counts are the stored verdicts', which are the lab's truth
    m = re.search(r"probe round 1 from vps: (\d+) URLs in (\S+): (.+)$", first.rstrip())
    assert m, first
    assert int(m[1]) == len(urls)
    assert parse_duration(m[2]) > timedelta(0)
    truth = list(expected(urls).values())
    assert m[3] == verdict_counts(truth) == verdict_counts(
        stored_verdicts(cfg.database_url, "vps"))
    assert "blocked (dns 1, tls 1)" in m[3] and f"{Counter(truth)['ok']} ok" in m[3]
    assert not RAW.search(err), RAW.search(err)
    assert "Traceback" not in err and "ERROR" not in err, err

    # round numbers go on after a restart
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "blockwatch", "--config", str(cfg.path), "run", "--once",
        stderr=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    _, err2 = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode == 0, err2.decode()
    assert "probe round 2 from vps: " in err2.decode()
    assert "probe round 1 " not in err2.decode()


def test_start_line_hides_the_database_password(write_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = write_config('[storage]\nurl = "postgresql+psycopg://bw:s3cret-pw@db.example:5432/bw"\n'
                       '[probe]\ntargets = ["targets.toml"]\ninterval = "1h30m"\n'
                       '[asn]\nenabled = false\n'
                       '[[vantage]]\nname = "vps"\nkind = "local"\n'
                       '[[vantage]]\nname = "kz-dns"\nkind = "resolver"\naddress = "192.0.2.53"\n'
                       '[alerts]\ntimezone = "UTC"\n'
                       '[[feeds.source]]\nname = "F"\nurl = "https://feeds.example/rss"\n'
                       '[[feeds.search]]\nname = "G"\nkind = "gdelt"\n'
                       '[[feeds.search]]\nname = "N"\nkind = "google_news"\nenabled = false\n',
                       targets='[[target]]\nname = "A"\nurls = ["https://a.example/", '
                       '"https://a.example/news"]\n')
    db = open_database(f"sqlite:///{tmp_path / 'bw.db'}")  # the round counter is read here
    try:
        line = Daemon(cfg, db, lock="the lock file x.lock").start_line()
    finally:
        db.close()
    assert "s3cret-pw" not in line and "bw:" not in line
    assert "database postgresql+psycopg://***:***@db.example:5432/bw (held through the lock " \
           "file x.lock)" in line
    assert "vantages vps (local), kz-dns (resolver); 1 target (2 URLs), 1 feed, 1 search; " in line
    # (the date is said when the next round is on another day: run after 22:30 UTC)
    assert re.search(r"round 1 now, then every 1h30m: next at (\d{4}-\d\d-\d\d )?\d\d:\d\d UTC "
                     r"\(in 1h30m\)$", line)


# --- blockwatch check on a terminal ------------------------------------------------------------

class Terminal:
    """A pseudo-terminal as sys.stderr: what a person would see, byte for byte."""

    def __init__(self) -> None:
        self.master, slave = pty.openpty()
        self.stream = io.TextIOWrapper(io.FileIO(slave, "w"), encoding="utf-8",
                                       line_buffering=True)
        self.chunks: list[bytes] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:  # EIO: the other side is closed
                return
            if not data:
                return
            self.chunks.append(data)

    def close(self) -> str:
        self.stream.close()
        self.reader.join(timeout=30)
        os.close(self.master)
        return b"".join(self.chunks).decode("utf-8", "replace")


async def two_sites(lab: Lab, tmp_path: Path):  # type: ignore[no-untyped-def]
    """One site answers at once, one stalls after the ClientHello until the timeout: the
    round's results come in two parts, so the bar has a moment half way."""
    await lab.add_site("quick.test")
    await lab.add_site("stalled.test", vantage=Behaviour.tls_stall_after_hello)
    return lab_config(lab, tmp_path, names=["quick.test", "stalled.test"], timeout="2s")


def check_on(term: Terminal, argv: list[str]) -> int:
    old, sys.stderr = sys.stderr, term.stream
    try:
        return main(argv)
    finally:
        sys.stderr = old


async def test_check_on_a_terminal_shows_a_bar_with_an_eta(
        lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    cfg = await two_sites(lab, tmp_path)
    monkeypatch.delenv("COLUMNS", raising=False)
    term = Terminal()
    code = await asyncio.to_thread(check_on, term,
                                   ["--config", str(cfg.path), "check"])
    seen = term.close()
    out = capsys.readouterr().out
    assert code == 0, seen
    frames = [f for f in re.split(r"\r", seen.replace("\x1b[K", "")) if f.strip()]
    assert any(re.search(r"\[#+·+\]  1/2 URLs  \S+  ETA \d+(\.\d+)?(ms|s|m)\b", f)
               for f in frames), frames  # half way: an ETA from the pace so far
    assert any(re.search(r"0/2 URLs  \S+  ETA --", f) for f in frames), frames
    assert seen.endswith("\r\x1b[K")  # wiped when done: the table starts on a clean line
    assert "quick.test" in out and "stalled.test" in out and "ETA" not in out

    # --json on a terminal: no bar, JSON lines only
    term = Terminal()
    code = await asyncio.to_thread(check_on, term,
                                   ["--config", str(cfg.path), "check", "--json"])
    seen = term.close()
    assert code == 0
    assert "ETA" not in seen and "\r" not in seen.replace("\r\n", "\n")
    assert len([json.loads(x) for x in capsys.readouterr().out.splitlines()]) == 2


async def test_check_piped_has_no_bar_and_reasons_wrap_on_a_narrow_terminal(
        lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capfd: pytest.CaptureFixture[str]) -> None:
    cfg = await two_sites(lab, tmp_path)
    monkeypatch.delenv("COLUMNS", raising=False)
    code = await asyncio.to_thread(main, ["--config", str(cfg.path), "check"])
    got = capfd.readouterr()
    assert code == 0, got.err
    assert "ETA" not in got.err and "\r" not in got.err  # stderr is a pipe here
    # piped: one line per row, the reason whole (for grep)
    rows = got.out.splitlines()
    assert len(rows) == 3
    stalled = next(r for r in rows if r.startswith("stalled.test"))
    reason = stalled[rows[0].index("REASON"):]
    assert len(reason) > 60, reason

    monkeypatch.setenv("COLUMNS", "70")
    code = await asyncio.to_thread(main, ["--config", str(cfg.path), "verdicts"])
    out = capfd.readouterr().out
    assert code == 0
    lines = out.splitlines()
    assert len(lines) > 3 and all(len(x) <= 70 for x in lines), out
    # the reason is all there, wrapped under its column rather than cut
    col = lines[0].index("REASON")
    start = next(i for i, x in enumerate(lines) if x.startswith("stalled.test"))
    part = [lines[start][col:]] + [x[col:] for x in lines[start + 1:] if x[:col].strip() == ""]
    assert len(part) > 1 and " ".join(p.strip() for p in part) == reason
    assert "…" not in out


def test_bar_text_eta_is_the_pace_carried_over() -> None:
    assert bar_text(10, 40, 5.0, 80) == ("[##########" + "·" * 30 + "]  10/40 URLs  5s  ETA 15s")
    assert bar_text(0, 40, 1.0, 80).endswith("]  0/40 URLs  1s  ETA --")
    # a narrow terminal: a shorter bar; narrower still, the numbers that fit, whole
    assert bar_text(20, 40, 90, 43) == "[#####······]  20/40 URLs  1m30s  ETA 1m30s"
    assert bar_text(20, 40, 90, 20) == "20/40 URLs  1m30s"
    assert bar_text(20, 40, 90, 5) == "20/40"
    clock = iter([0.0, 1.0, 1.05, 2.0, 3.0])
    buf = io.StringIO()
    bar = ProgressBar(2, buf, clock=lambda: next(clock))
    bar.draw(force=True)  # 1.0
    bar.draw()  # 1.05: too soon after the last one, not drawn
    bar.advance()  # 2.0
    assert buf.getvalue().count("\r") == 2 and "1/2 URLs  2s  ETA 2s" in buf.getvalue()
    bar.close()
    assert buf.getvalue().endswith("\r\x1b[K")


# --- resolver rounds and OONI imports ----------------------------------------------------------

async def test_resolver_round_line_counts_the_stored_verdicts(
        lab: Lab, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from blockwatch.resolver_round import run_resolver_round
    from lab import DNS
    from test_resolver_vantage import scenario

    await lab.add_site("ratel.test")
    await lab.add_site("vlast.test")
    lab.vantage_dns.set("vlast.test", DNS.nxdomain())  # the in-country resolver lies
    cfg = await scenario(lab, tmp_path)
    (tmp_path / "t.toml").write_text(
        f'[[target]]\nname = "Ratel.kz"\nurls = ["{lab.url("ratel.test")}"]\n'
        f'[[target]]\nname = "Vlast.kz"\nurls = ["{lab.url("vlast.test")}"]\n', encoding="utf-8")
    db = open_database(cfg.database_url)
    try:
        with caplog.at_level(logging.INFO, logger="blockwatch.resolver_round"):
            await run_resolver_round(cfg, load_targets(cfg.target_files), db, number=7)
    finally:
        db.close()
    [line] = [r.getMessage() for r in caplog.records if "resolver round" in r.getMessage()]
    m = re.fullmatch(r"resolver round 7 from kz-isp-dns: 2 URLs in (\S+): (.+)", line)
    assert m, line
    assert parse_duration(m[1]) > timedelta(0)
    assert m[2] == "1 ok, 1 blocked (dns 1)" == verdict_counts(
        stored_verdicts(cfg.database_url, "kz-isp-dns"))


async def test_ooni_import_line_counts_the_stored_verdicts(
        write_config, monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
        caplog: pytest.LogCaptureFixture) -> None:
    import respx

    from blockwatch.config import OoniVantage
    from blockwatch.ooni import api as ooni_api
    from blockwatch.ooni import import_ooni
    from test_ooni import API, CONFIG, NOW, RATEL, Sleeps, two_pages

    monkeypatch.setattr(ooni_api, "PAGE_LIMIT", 2)  # as when the fixtures were recorded
    cfg = write_config(CONFIG)
    v = cfg.settings.vantage[0]
    assert isinstance(v, OoniVantage)
    db = open_database(cfg.database_url)
    try:
        with respx.mock, caplog.at_level(logging.INFO, logger="blockwatch.ooni"):
            respx.get(API).mock(side_effect=two_pages)
            rep = await import_ooni(cfg, db, v, [RATEL], now=NOW, sleep=Sleeps())
        with db.read() as s:
            stored = list(s.scalars(select(Verdict.verdict).join(
                Vantage, Vantage.id == Verdict.vantage_id).where(Vantage.kind == "ooni")))
    finally:
        db.close()
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("OONI import")]
    m = re.fullmatch(r"OONI import ooni-kz in (\S+): 4 fetched, 4 stored: (.+); 0 duplicates, "
                     r"0 skipped, 0 errors(; \d+ new events?)?", line)
    assert m, line
    assert parse_duration(m[1]) >= timedelta(0) and rep.stored == len(stored) == 4
    assert m[2] == verdict_counts(stored) and "blocked" in m[2]
