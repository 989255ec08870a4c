"""`blockwatch run` wiring, SIGTERM mid-round in a real subprocess, restart continuity, health,
export and retention."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import json
import os
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from blockwatch.cli import main
from blockwatch.config import Config, load
from blockwatch.daemon import Daemon, record_job
from blockwatch.health import check_health
from blockwatch.retention import prune
from blockwatch.storage import open_database, repo
from blockwatch.storage.models import Event, JobRun, Measurement, Outbox, UrlState, Verdict
from lab import Behaviour, Lab

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def lab_config(lab: Lab, tmp_path: Path, *, names: list[str], extra: str = "",
               timeout: str = "1s") -> Config:
    (tmp_path / "t.toml").write_text("".join(
        f'[[target]]\nname = "{n}"\nurls = ["{lab.url(n)}"]\n' for n in names))
    probe = f'interval = "15m"\ntimeout = "{timeout}"\ncanaries = []'
    (tmp_path / "c.toml").write_text('[storage]\nurl = "sqlite:///bw.db"\n'
                                     + lab.probe_config("t.toml", probe=probe) + f"""
[asn]
enabled = false
[site]
out = "site"
{extra}
""")
    return load(tmp_path / "c.toml")


ROOT = Path(__file__).resolve().parent.parent
NOWHERE = "127.0.0.7"  # a loopback address nothing listens on: every probe fails at once


def shipped_config(tmp_path: Path, *, storage: str = "sqlite:///bw.db", interval: str = "2s",
                   server_port: int | None = None) -> Path:
    """config/blockwatch.toml with only its addresses swapped: the database in tmp_path, one
    target on NOWHERE, every URL and resolver on NOWHERE, the search services (whose default
    addresses are on the internet) left out, one feed on NOWHERE instead."""
    import re

    text = (ROOT / "config" / "blockwatch.toml").read_text(encoding="utf-8")
    text = re.sub(r"(?ms)^\[\[feeds\.(?:source|search)\]\].*?(?=^\[|^# \[)", "", text)
    text = re.sub(r"https?://[^/\"]+", f"http://{NOWHERE}:9", text)
    text = re.sub(r'(?m)^url = "sqlite:///[^"]*"', f'url = "{storage}"', text)
    text = re.sub(r'(?m)^targets = \[[^]]*\]', 'targets = ["t.toml"]', text)
    text = re.sub(r'(?m)^resolvers = \[[^]]*\]', f'resolvers = ["{NOWHERE}:53"]', text)
    text = re.sub(r'(?m)^interval = "15m"', f'interval = "{interval}"', text, count=1)
    text = re.sub(r'(?m)^timeout = "10s"', 'timeout = "1s"', text, count=1)
    text = re.sub(r'(?m)^out = "[^"]*"', 'out = "site"', text)
    text = text.replace("[alerts]", f'[[feeds.source]]\nname = "nowhere"\nurl = '
                                    f'"http://{NOWHERE}:9/feed"\n\n[alerts]', 1)
    if server_port is not None:
        text += f'\n[server]\nhost = "127.0.0.1"\nport = {server_port}\n'
    (tmp_path / "t.toml").write_text(
        f'[[target]]\nname = "Nowhere.kz"\naliases = ["Нигде"]\n'
        f'urls = ["http://{NOWHERE}:9/"]\n', encoding="utf-8")
    path = tmp_path / "blockwatch.toml"
    path.write_text(text, encoding="utf-8")
    load(path)  # a mistake in the swap fails here, not in the daemon
    return path


class Lines:
    """A subprocess's stderr read line by line: tests wait for a log line, never sleep."""

    def __init__(self, stream: asyncio.StreamReader):
        self.stream = stream
        self.seen: list[str] = []

    async def wait_for(self, needle: str, timeout: float = 30) -> str:
        async def scan() -> str:
            while True:
                raw = await self.stream.readline()
                if not raw:
                    raise AssertionError(f"no {needle!r} before the end:\n" + "".join(self.seen))
                line = raw.decode("utf-8", "replace")
                self.seen.append(line)
                if needle in line:
                    return line

        try:
            return await asyncio.wait_for(scan(), timeout)
        except TimeoutError:
            raise AssertionError(f"no {needle!r} within {timeout}s:\n" + "".join(self.seen)) \
                from None

    async def rest(self, timeout: float = 40) -> str:
        tail = await asyncio.wait_for(self.stream.read(), timeout)
        return "".join(self.seen) + tail.decode("utf-8", "replace")


async def start_run(config: Path, *args: str) -> tuple[asyncio.subprocess.Process, Lines]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "blockwatch", "--config", str(config), "run", *args,
        stderr=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stderr is not None
    return proc, Lines(proc.stderr)


@pytest.mark.parametrize("with_server", [False, True], ids=["no-server", "server"])
async def test_sighup_reloads_and_never_ends_the_daemon(tmp_path: Path, with_server: bool) -> None:
    from test_alerts_support import free_port

    port = free_port() if with_server else None
    config = shipped_config(tmp_path, server_port=port)
    proc, lines = await start_run(config)
    try:
        await lines.wait_for("blockwatch running")
        if with_server:
            await lines.wait_for("collector listening")
        await lines.wait_for("probe round")  # jobs run (and the default SIGHUP action is gone)
        proc.send_signal(signal.SIGHUP)
        await lines.wait_for("configuration reloaded; jobs")
        assert proc.returncode is None
        # a changed interval rebuilds the jobs; a changed storage URL needs a restart
        text = config.read_text(encoding="utf-8")
        changed = text.replace('interval = "2s"', 'interval = "7s"', 1).replace(
            'url = "sqlite:///bw.db"', 'url = "sqlite:///other.db"')
        config.write_text(changed, encoding="utf-8")
        proc.send_signal(signal.SIGHUP)
        line = await lines.wait_for("storage.url changed")
        assert "restart" in line
        line = await lines.wait_for("configuration reloaded; jobs")
        assert "probe every 7s" in line
        # a broken file: logged with the error, the running configuration stays
        config.write_text(changed + "\n[probe.nonsense]\n", encoding="utf-8")
        proc.send_signal(signal.SIGHUP)
        line = await lines.wait_for("configuration reload failed")
        assert "keeping the running configuration" in line and str(config) in line
        await lines.wait_for("probe round")  # still working after all of it
        assert proc.returncode is None
        proc.send_signal(signal.SIGTERM)
        err = await lines.rest()
        assert await asyncio.wait_for(proc.wait(), 30) == 0, err
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert "blockwatch stopped" in err
    assert not (tmp_path / "other.db").exists()  # the running database was kept


def test_jobs_follow_the_config(write_config) -> None:  # type: ignore[no-untyped-def]
    cfg = write_config("""
[probe]
interval = "10m"
[[vantage]]
name = "vps"
kind = "local"
[[vantage]]
name = "ooni-kz"
kind = "ooni"
country = "KZ"
interval = "2h"
[[feeds.source]]
name = "F"
url = "https://example.org/feed"
[[alerts.recipient]]
email = "desk@example.org"
""")
    db = open_database(cfg.database_url)
    d = Daemon(cfg, db)
    jobs = {j.name: j for j in d.jobs()}
    assert set(jobs) == {"probe", "ooni:ooni-kz", "asn", "feeds", "alerts", "site", "maintenance"}
    assert jobs["probe"].interval == timedelta(minutes=10) and jobs["probe"].jitter == 60.0
    assert jobs["ooni:ooni-kz"].interval == timedelta(hours=2)
    assert jobs["feeds"].interval == timedelta(minutes=30)
    db.close()


async def test_scheduler_wiring_with_a_controlled_clock(write_config) -> None:  # type: ignore[no-untyped-def]
    cfg = write_config('[probe]\ninterval = "15m"\n[asn]\nenabled = false\n')
    db = open_database(cfg.database_url)
    d = Daemon(cfg, db)
    d.schedule()  # not started: inspect what would run
    jobs = {j.id: j for j in d.scheduler.get_jobs()}
    assert set(jobs) == {"probe", "site", "maintenance"}
    probe = jobs["probe"]
    # never two runs of one job at once; a backlog of missed runs collapses into one
    assert probe.max_instances == 1 and probe.coalesce is True
    assert probe.misfire_grace_time == 900
    trig = probe.trigger
    trig.jitter = None  # deterministic for the clock test
    start = trig.start_date
    # the schedule keeps to the wall clock: after a 47-minute stall the next run is on the grid
    nxt = trig.get_next_fire_time(None, start + timedelta(minutes=47))
    assert nxt == start + timedelta(minutes=60)
    # the hourly site build runs an hour out (next_run_time=None would have added it paused)
    d.scheduler.start(paused=True)
    site = d.scheduler.get_job("site")
    assert site.next_run_time is not None
    assert site.next_run_time > datetime.now(UTC) + timedelta(minutes=59)
    d.scheduler.shutdown(wait=False)
    db.close()


async def test_sigterm_mid_round_stops_cleanly_and_a_restart_continues(lab: Lab, tmp_path: Path) -> None:
    names = [f"s{i}.test" for i in range(6)]
    for n in names[:-1]:
        await lab.add_site(n)
    # one site stalls after the ClientHello: the round is in the middle when SIGTERM arrives
    slow = await lab.add_site(names[-1], vantage=Behaviour.tls_stall_after_hello)
    cfg = lab_config(lab, tmp_path, names=names, timeout="4s")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "blockwatch", "--config", str(cfg.path), "run",
        stderr=asyncio.subprocess.PIPE, env=env)
    await slow.wait_for_connections(2, timeout=30)  # the stalled handshake is under way
    proc.send_signal(signal.SIGTERM)
    assert proc.stderr is not None
    err = (await asyncio.wait_for(proc.stderr.read(), timeout=40)).decode()
    code = await asyncio.wait_for(proc.wait(), timeout=10)
    assert code == 0, err
    assert "received SIGTERM: stopping" in err and "blockwatch stopped" in err
    db = open_database(cfg.database_url)
    with db.read() as s:
        stored = s.scalar(select(func.count()).select_from(Verdict)) or 0
        run = s.get(JobRun, "probe")
    assert stored == len(names)  # the round in flight finished within the grace period
    assert run is not None and run.runs == 1
    db.close()
    # a restart continues: the pending change of the stalled site is confirmed, not restarted
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "blockwatch", "--config", str(cfg.path), "run", "--once",
        stderr=asyncio.subprocess.PIPE, env=env)
    _, err2 = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err2.decode()
    db = open_database(cfg.database_url)
    with db.read() as s:
        evs = s.scalars(select(Event).where(Event.url == lab.url(names[-1]))).all()
        assert [e.state for e in evs] == ["tls"]
        assert s.scalar(select(func.count()).select_from(Verdict)) == 2 * len(names)
    db.close()


def test_health(write_config) -> None:  # type: ignore[no-untyped-def]
    cfg = write_config('[probe]\ninterval = "15m"\n[[vantage]]\nname = "vps"\nkind = "local"\n')
    db = open_database(cfg.database_url)
    now = T0 + timedelta(hours=2)
    h = check_health(cfg, db, now)
    assert not h.healthy and "no job has run yet" in h.problems[0]
    record_job(db, "probe", started=now - timedelta(minutes=10), ok=True, error=None,
               interval=timedelta(minutes=15))
    with db.write() as s:
        vid = repo.ensure_vantage(s, "vps", "local")
        m = repo.add_measurement(s, uid="m1", target_id=None, vantage_id=vid, url="https://a.kz/",
                                 role="vantage", measured_at=now - timedelta(minutes=10),
                                 evidence={})
        repo.record_verdict(s, measurement=m, control_id=None, verdict="ok", confirmed=False,
                            reason="", confirm_after=2)
    # record_job stamps real time; judge relative to it
    real_now = datetime.now(UTC)
    with db.write() as s:
        for st in s.scalars(select(UrlState)):
            st.last_seen_at = real_now - timedelta(minutes=5)
        for v in s.scalars(select(Verdict)):  # a usable measurement as fresh as the round
            v.measured_at = real_now - timedelta(minutes=5)
    h = check_health(cfg, db, real_now)
    assert h.healthy, h.problems
    # a job overdue by more than two intervals
    h = check_health(cfg, db, real_now + timedelta(minutes=50))
    assert not h.healthy and any("job probe is overdue" in p for p in h.problems)
    assert any("vantage vps (local) silent" in p for p in h.problems)
    # an alert undeliverable for over an hour
    with db.write() as s:
        s.add(Outbox(key="k", channel="email", destination="d@example.org", kind="alert",
                     payload={}, status="pending", attempts=5, created_at=real_now - timedelta(hours=2),
                     next_attempt_at=real_now))
    h = check_health(cfg, db, real_now)
    assert not h.healthy and any("undeliverable" in p for p in h.problems)
    db.close()


def test_health_command_exit_codes(write_config, capsys) -> None:  # type: ignore[no-untyped-def]
    cfg = write_config('[probe]\ninterval = "15m"\n')
    assert main(["--config", str(cfg.path), "health", "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["healthy"] is False and out["problems"]


def _seed(cfg: Config) -> None:
    from blockwatch.targets import Target

    db = open_database(cfg.database_url)
    with db.write() as s:
        tids = repo.sync_targets(s, [Target("Ratel.kz", ("https://ratel.kz/",))])
        cid = repo.ensure_vantage(s, "control", "control")
        aid = repo.ensure_vantage(s, "almaty-volunteer-anna", "agent", "KZ", "AS9198")
        for i, verdict in enumerate(["ok", "tls", "tls"]):
            at = T0 + timedelta(minutes=15 * i)
            c = repo.add_measurement(s, uid=f"c{i}", target_id=tids["Ratel.kz"], vantage_id=cid,
                                     url="https://ratel.kz/", role="control", measured_at=at,
                                     evidence={"role": "control", "i": i})
            m = repo.add_measurement(s, uid=f"a{i}", target_id=tids["Ratel.kz"], vantage_id=aid,
                                     url="https://ratel.kz/", role="vantage", measured_at=at,
                                     evidence={"vantage": "almaty-volunteer-anna", "i": i,
                                               "source_address": "100.64.1.2"})
            repo.record_verdict(s, measurement=m, control_id=c.id, verdict=verdict,
                                confirmed=False, reason=f"r{i} <b>", confirm_after=2)
    db.close()


def test_export_jsonl_with_manifest(write_config, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    cfg = write_config("")
    _seed(cfg)
    out = tmp_path / "exports" / "ev.jsonl"
    assert main(["--config", str(cfg.path), "export", "--target", "Ratel.kz", "--since",
                 "2026-11-01T00:10:00Z", "--out", str(out)]) == 0
    data = out.read_bytes()
    manifest_path = tmp_path / "exports" / "ev.jsonl.manifest.json"
    manifest = json.loads(manifest_path.read_text())
    # evidence is the owner's only (the umask here would give 0644 and 0755)
    assert {p.name: p.stat().st_mode & 0o777 for p in (out.parent, out, manifest_path)} == {
        "exports": 0o700, "ev.jsonl": 0o600, "ev.jsonl.manifest.json": 0o600}
    assert manifest["sha256"] == hashlib.sha256(data).hexdigest()
    assert manifest["records"] == 4 and manifest["agent_names"] == "withheld"
    recs = [json.loads(x) for x in data.decode().splitlines()]
    assert [(r["role"], r["verdict"]) for r in recs] == [
        ("control", None), ("vantage", "tls"), ("control", None), ("vantage", "tls")]
    a = recs[1]
    assert a["vantage"] == "agent:KZ:AS9198" and a["control_uid"] == "c1"
    assert "almaty-volunteer-anna" not in data.decode() and "100.64.1.2" not in data.decode()
    # each record's hash covers the record itself
    body = {k: v for k, v in a.items() if k != "record_sha256"}
    assert a["record_sha256"] == repo.evidence_hash(body)


def test_export_csv_and_errors(write_config, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    cfg = write_config("")
    _seed(cfg)
    out = tmp_path / "ev.csv"
    assert main(["--config", str(cfg.path), "export", "--target", "Ratel.kz", "--format", "csv",
                 "--out", str(out), "--include-agent-names"]) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 6 and rows[1]["vantage"] == "almaty-volunteer-anna"
    assert json.loads(rows[1]["evidence"])["i"] == 0
    assert main(["--config", str(cfg.path), "export", "--target", "Nope"]) == 2
    assert main(["--config", str(cfg.path), "export", "--target", "Ratel.kz", "--since", "yesterday"]) == 2


def test_retention_keeps_anomalies_and_changes(write_config) -> None:  # type: ignore[no-untyped-def]
    cfg = write_config("")
    _seed(cfg)
    db = open_database(cfg.database_url)
    with db.read() as s:
        kept = {m.uid for m in s.scalars(select(Measurement).where(Measurement.keep))}
    assert {"a1", "a2"} <= kept and "a0" not in kept  # ok measurements are not special
    removed = prune(db, timedelta(days=30), T0 + timedelta(days=31))
    with db.read() as s:
        left = {m.uid for m in s.scalars(select(Measurement))}
        verdicts = s.scalar(select(func.count()).select_from(Verdict))
    assert removed == len({"a0", "c0", "c1", "c2", "a1", "a2"} - kept)
    assert left == kept and verdicts == len(kept & {"a0", "a1", "a2"})
    db.close()


async def test_reload_rebuilds_jobs_and_keeps_their_place(write_config) -> None:  # type: ignore[no-untyped-def]
    cfg = write_config('[probe]\ninterval = "15m"\ntargets = ["targets.toml"]\n'
                       '[asn]\nenabled = false\n',
                       targets='[[target]]\nname = "A"\nurls = ["https://a.example/"]\n')
    db = open_database(cfg.database_url)
    d = Daemon(cfg, db)
    d.schedule()
    d.scheduler.start(paused=True)
    try:
        before = {j.id: j.next_run_time for j in d.scheduler.get_jobs()}
        write_config('[probe]\ninterval = "10m"\ntargets = ["targets.toml"]\n'
                     '[asn]\nenabled = false\n[[feeds.source]]\nname = "F"\nurl = "https://example.org/feed"\n'
                     '[storage]\nurl = "sqlite:///elsewhere.db"\n')
        assert await d.reload()
        after = {j.id: j.next_run_time for j in d.scheduler.get_jobs()}
        assert set(after) == {"probe", "feeds", "site", "maintenance"}
        assert after["probe"] == before["probe"] and after["site"] == before["site"]
        assert d.scheduler.get_job("probe").trigger.interval == timedelta(minutes=10)
        assert d.cfg.database_url == cfg.database_url  # a restart is needed for that one
        assert cfg.path is not None
        cfg.path.write_text('[probe]\ninterval = "never"\n', encoding="utf-8")
        assert not await d.reload()
        assert {j.id for j in d.scheduler.get_jobs()} == set(after)
        assert d.cfg.settings.probe.interval == timedelta(minutes=10)
    finally:
        d.scheduler.shutdown(wait=False)
        db.close()


async def test_a_broken_list_file_fails_the_job_with_one_plain_line(
        write_config, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    """A people list deleted (or broken) while the daemon runs: the feeds job fails naming the
    file, recorded for `health`, logged once without a traceback, and the next run tries again."""
    from blockwatch.daemon import JobSpec
    from blockwatch.feeds.commands import watched

    (tmp_path / "people.toml").write_text('[[person]]\nname = "A B"\n', encoding="utf-8")
    cfg = write_config('[probe]\ntargets = ["targets.toml"]\n[asn]\nenabled = false\n'
                       '[feeds]\npeople = ["people.toml"]\n',
                       targets='[[target]]\nname = "A"\nurls = ["https://a.example/"]\n')
    assert watched(cfg)[1]  # readable at start
    (tmp_path / "people.toml").unlink()
    db = open_database(cfg.database_url)
    try:
        d = Daemon(cfg, db)

        async def job() -> None:
            watched(d.cfg)

        await d.wrap(JobSpec("feeds", timedelta(hours=1), job))()
        with db.read() as s:
            row = s.get(JobRun, "feeds")
        assert row is not None and row.last_ok_at is None
        assert "people.toml" in (row.last_error or "")
        assert "cannot read the people list" in (row.last_error or "")
        failed = [r for r in caplog.records if "job feeds" in r.getMessage()]
        assert failed and all(r.exc_info is None for r in failed)
    finally:
        db.close()


async def test_a_reload_that_raises_is_logged_and_the_next_sighup_still_reloads(
        write_config, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    cfg = write_config('[asn]\nenabled = false\n')
    db = open_database(cfg.database_url)
    try:
        d = Daemon(cfg, db)
        calls: list[int] = []

        async def broken() -> bool:
            calls.append(1)
            raise RuntimeError("boom while reloading")

        monkeypatch.setattr(d, "reload", broken)
        d._hup_pending = True
        await d._reloads()  # does not raise: the task would otherwise end silently
        assert any("configuration reload failed" in r.getMessage() and r.exc_info
                   for r in caplog.records)
        d._hup_pending = True
        await d._reloads()
        assert len(calls) == 2
    finally:
        db.close()
