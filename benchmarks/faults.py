"""Fault injection: real `blockwatch` subprocesses killed, cut off and starved, then audited.

Scenarios (each run is followed by an audit of the store):
  kill-check        `check` killed with SIGKILL at a random moment, then run again
  kill-run          `run` killed with SIGKILL at a random moment, restarted
  kill-serve        `serve` killed with SIGKILL while an agent uploads its queue, restarted
  collector-outage  an agent measures while the collector is down, delivers once it is up
  smtp-outage       alerts queued while the SMTP server is down (the daemon killed meanwhile)
  pg-round          PostgreSQL: the daemon's connections terminated (pg_terminate_backend)
                    mid-round, on a database of its own; the daemon must go on by itself
  pg-upload         the same while an agent uploads to `serve`
  disk-full         SQLite on a 2 MiB tmpfs filled up (or, without mount, a file-size limit)

The audit: SQLite `PRAGMA integrity_check` / PostgreSQL consistency queries (no dangling
references); lost = acknowledged measurements not stored (the agent's delivered uids) plus
stored measurements without their verdict; duplicates = a uid, a measurement's verdict, an
outbox key or an email received more than once; recovered = the next round stored (or the
queue delivered) without a hand on it.

Synchronisation is on state (log lines, rows, files); only the kill moment is random.

    .venv/bin/python benchmarks/faults.py [--runs 50] [--seed 1] [--only kill-run,...]

The configuration is config/blockwatch.toml with its addresses swapped (tests/test_daemon.py's
`shipped_config`): targets on a loopback address nothing listens on, so rounds are quick.
"""

from __future__ import annotations

import argparse
import contextlib
import email
import os
import random
import re
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from sqlalchemy import create_engine, text  # noqa: E402

from blockwatch.collector.commands import new_token  # noqa: E402
from blockwatch.collector.state import token_hash  # noqa: E402

PG_URL = os.environ.get("BLOCKWATCH_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
NOWHERE = "127.0.0.7"  # nothing listens there: every probe fails at once
AGENT = "faults-agent"
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}
WAIT = 60.0  # the longest any awaited state may take before it counts as not recovered


# --- processes -------------------------------------------------------------------------------

class Proc:
    """A blockwatch subprocess whose stderr is read line by line (waits are on log lines)."""

    def __init__(self, cwd: Path, config: Path, *args: str,
                 preexec: Callable[[], None] | None = None):
        self.p = subprocess.Popen(
            [sys.executable, "-m", "blockwatch", "--config", str(config), *args], cwd=cwd,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            env=ENV, preexec_fn=preexec)
        self.lines: list[str] = []
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.p.stderr is not None
        for raw in self.p.stderr:
            with self.cond:
                self.lines.append(raw.decode("utf-8", "replace"))
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def wait_for(self, needle: str, timeout: float = WAIT) -> bool:
        with self.cond:
            return self.cond.wait_for(
                lambda: any(needle in ln for ln in self.lines) or (self.p.poll() is not None
                and not self.reader.is_alive()), timeout) and any(needle in ln for ln in self.lines)

    def kill(self) -> None:
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait(30)
        self.reader.join(10)

    def stop(self) -> int:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        code = self.p.wait(60)
        self.reader.join(10)
        return code

    def finish(self, timeout: float = WAIT) -> int:
        code = self.p.wait(timeout)
        self.reader.join(10)
        return code

    @property
    def text(self) -> str:
        with self.cond:
            return "".join(self.lines)


def wait_until(pred: Callable[[], bool], timeout: float = WAIT) -> bool:
    """Poll a state (a row count, a file) until it holds; False when it never did."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.02)
    return pred()


# --- setups ----------------------------------------------------------------------------------

@dataclass
class Setup:
    dir: Path
    config: Path
    db_url: str
    token: str = ""
    port: int = 0
    smtp_port: int = 0
    urls: list[str] = field(default_factory=list)

    def run(self, *args: str, preexec: Callable[[], None] | None = None) -> Proc:
        return Proc(self.dir, self.config, *args, preexec=preexec)

    def serve(self) -> Proc:
        return self.run("serve", "--port", str(self.port))

    def agent(self, queue: Path | None = None) -> Proc:
        tf = self.dir / "token"
        tf.write_text(self.token + "\n", encoding="utf-8")
        return self.run("agent", "--collector", f"http://127.0.0.1:{self.port}", "--token-file",
                        str(tf), "--queue", str(queue or self.dir / "queue.db"),
                        "--allow-network", "127.0.0.0/8", "--once", "-v")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_setup(workdir: Path, db_url: str = "sqlite:///bw.db", *, urls: int = 24,
               interval: str = "2s") -> Setup:
    """config/blockwatch.toml with addresses swapped, an agent vantage, the collector port and
    an SMTP recipient (the server on a port of its own, up or down as the scenario says)."""
    from test_daemon import shipped_config

    workdir.mkdir(parents=True, exist_ok=True)
    port, smtp_port, token = free_port(), free_port(), new_token()
    config = shipped_config(workdir, storage=db_url, interval=interval, server_port=port)
    text_ = config.read_text(encoding="utf-8")
    text_ = re.sub(r'(?m)^smtp_host = "[^"]*"', 'smtp_host = "127.0.0.1"', text_)
    text_ = re.sub(r"(?m)^smtp_port = \d+", f"smtp_port = {smtp_port}", text_)
    text_ = re.sub(r'(?m)^smtp_security = "[^"]*"', 'smtp_security = "none"', text_)
    text_ += (f'\n[[alerts.recipient]]\nemail = "desk@example.org"\n\n'
              f'[[vantage]]\nname = "{AGENT}"\nkind = "agent"\ncountry = "KZ"\n'
              f'token_sha256 = "{token_hash(token)}"\n')
    config.write_text(text_, encoding="utf-8")
    target_urls = [f"http://{NOWHERE}:9/p{i}" for i in range(urls)]
    (workdir / "t.toml").write_text("".join(
        f'[[target]]\nname = "Nowhere {i}"\nurls = ["{u}"]\n\n' for i, u in enumerate(target_urls)),
        encoding="utf-8")
    from blockwatch.config import load

    load(config)
    return Setup(workdir, config, db_url, token, port, smtp_port, target_urls)


def prefill_queue(queue: Path, url: str, n: int) -> list[str]:
    """n measurements the agent holds (as its own would be queued); their uids."""
    from blockwatch.agent.queue import Queue

    # distinct times after everything this agent measured before (an agent's queue is in
    # time order, and delivered oldest first)
    start = datetime.now(UTC)
    uids = [uuid.uuid4().hex for _ in range(n)]
    q = Queue(queue)
    try:
        for i, u in enumerate(uids):
            at = (start + timedelta(milliseconds=i)).isoformat().replace("+00:00", "Z")
            q.put({"url": url, "uid": u, "measured_at": at, "vantage_ok": True})
    finally:
        q.close()
    return uids


def queue_state(queue: Path) -> tuple[int, int]:
    """(queued, set aside as rejected) in an agent's queue file."""
    con = sqlite3.connect(str(queue))
    try:
        return (con.execute("SELECT count(*) FROM queue").fetchone()[0],
                con.execute("SELECT count(*) FROM rejected").fetchone()[0])
    finally:
        con.close()


# --- the audit -------------------------------------------------------------------------------

@dataclass
class Audit:
    lost: int = 0
    duplicates: int = 0
    integrity_failures: int = 0
    notes: list[str] = field(default_factory=list)


AUDIT_SQL = {
    # a stored measurement without its verdict: a half-written round
    "unjudged": "SELECT count(*) FROM measurements m LEFT JOIN verdicts v ON v.measurement_id = m.id "
                "WHERE m.role = 'vantage' AND v.id IS NULL",
    "dup_uid": "SELECT count(*) FROM (SELECT uid FROM measurements GROUP BY uid HAVING count(*) > 1) x",
    "dup_verdict": "SELECT count(*) FROM (SELECT measurement_id FROM verdicts GROUP BY measurement_id "
                   "HAVING count(*) > 1) x",
    "dup_outbox": "SELECT count(*) FROM (SELECT key FROM outbox GROUP BY key HAVING count(*) > 1) x",
    "dangling_verdict": "SELECT count(*) FROM verdicts v LEFT JOIN measurements m "
                        "ON m.id = v.measurement_id WHERE m.id IS NULL",
    "dangling_state": "SELECT count(*) FROM url_states s LEFT JOIN verdicts v ON v.id = s.last_verdict_id "
                      "WHERE s.last_verdict_id IS NOT NULL AND v.id IS NULL",
    "dangling_event": "SELECT count(*) FROM url_states s LEFT JOIN events e ON e.id = s.event_id "
                      "WHERE s.event_id IS NOT NULL AND e.id IS NULL",
    "verdict_vantage": "SELECT count(*) FROM verdicts v JOIN measurements m ON m.id = v.measurement_id "
                       "WHERE v.vantage_id <> m.vantage_id OR v.url <> m.url",
}


def engine_for(db_url: str, cwd: Path) -> Any:
    if db_url.startswith("sqlite:///") and not db_url.startswith("sqlite:////"):
        db_url = f"sqlite:///{cwd / db_url.removeprefix('sqlite:///')}"
    return create_engine(db_url)


def scalar(db_url: str, cwd: Path, sql: str, **params: Any) -> Any:
    eng = engine_for(db_url, cwd)
    try:
        with eng.connect() as c:
            return c.execute(text(sql), params).scalar()
    finally:
        eng.dispose()


def observations(s: Setup, role: str = "vantage") -> int:
    """Measurements stored (a row standing for a run of identical ones counts each)."""
    from sqlalchemy import inspect

    eng = engine_for(s.db_url, s.dir)
    try:
        with eng.connect() as c:
            if not inspect(c).has_table("measurements"):
                return 0
            cols = {x["name"] for x in inspect(c).get_columns("measurements")}
            rep = " + coalesce(sum(repeats), 0)" if "repeats" in cols else ""
            return int(c.execute(text(f"SELECT count(*){rep} FROM measurements WHERE role = :r"),
                                 {"r": role}).scalar() or 0)
    except Exception:  # the database being written by a dying process: not yet
        return -1
    finally:
        eng.dispose()


def measured(p: Proc) -> int:
    """Measurements an agent run made itself (its log line)."""
    return sum(int(m) for m in re.findall(r"measured (\d+) URLs", p.text))


def audit(s: Setup, agent_expected: int | None = None) -> Audit:
    """`agent_expected`: measurements the agent had acknowledged (its queue emptied of them),
    each stored once: as its own row or as a repetition counted on the row of its run."""
    a = Audit()
    eng = engine_for(s.db_url, s.dir)
    try:
        with eng.connect() as c:
            if eng.dialect.name == "sqlite":
                ok = c.exec_driver_sql("PRAGMA integrity_check").scalar()
                fk = c.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if ok != "ok" or fk:
                    a.integrity_failures += 1
                    a.notes.append(f"integrity_check: {ok}; foreign keys: {fk[:3]}")
            res = {k: int(c.execute(text(q)).scalar() or 0) for k, q in AUDIT_SQL.items()}
            if agent_expected is not None:
                got = agent_observations(c)
                if got != agent_expected:
                    a.notes.append(f"agent: {agent_expected} acknowledged, {got} stored")
                a.lost += max(0, agent_expected - got)
                a.duplicates += max(0, got - agent_expected)
    finally:
        eng.dispose()
    a.lost += res["unjudged"]
    a.duplicates += res["dup_uid"] + res["dup_verdict"] + res["dup_outbox"]
    bad = res["dangling_verdict"] + res["dangling_state"] + res["dangling_event"] + res["verdict_vantage"]
    if bad:
        a.integrity_failures += 1
    a.notes += [f"{k}={v}" for k, v in res.items() if v]
    return a


def agent_observations(c: Any) -> int:
    from sqlalchemy import inspect

    cols = {x["name"] for x in inspect(c).get_columns("measurements")}
    rep = " + coalesce(sum(m.repeats), 0)" if "repeats" in cols else ""
    return int(c.execute(text(f"SELECT count(*){rep} FROM measurements m JOIN vantages v "
                              "ON v.id = m.vantage_id WHERE v.name = :n"), {"n": AGENT}).scalar() or 0)


@dataclass
class Row:
    scenario: str
    runs: int = 0
    lost: int = 0
    duplicates: int = 0
    integrity: int = 0  # runs whose audit failed
    recovered: int = 0
    notes: list[str] = field(default_factory=list)
    skipped: str = ""
    seconds: float = 0.0

    def add(self, a: Audit, recovered: bool) -> None:
        self.runs += 1
        self.lost += a.lost
        self.duplicates += a.duplicates
        self.integrity += bool(a.integrity_failures)
        self.recovered += recovered
        self.notes += a.notes
        if not recovered:
            self.notes.append(f"run {self.runs}: not recovered")

    @property
    def clean(self) -> bool:
        return not self.skipped and self.runs > 0 and self.lost == 0 and self.duplicates == 0 \
            and self.integrity == 0 and self.recovered == self.runs


# --- scenarios -------------------------------------------------------------------------------

def kill_check(work: Path, runs: int, rng: random.Random, db_url: str = "sqlite:///bw.db") -> Row:
    row = Row("kill-check" + ("" if db_url.startswith("sqlite") else " (pg)"))
    s = make_setup(work, db_url)
    t0 = time.monotonic()
    s.run("check").finish()  # a whole round once: how long one takes (the kill window)
    span = time.monotonic() - t0
    for _ in range(runs):
        p = s.run("check")
        time.sleep(rng.uniform(0, span))  # the random kill moment (the point of the scenario)
        p.kill()
        before = observations(s)
        done = s.run("check").finish()
        recovered = done in (0, 1) and observations(s) >= before + len(s.urls)
        row.add(audit(s), recovered)
    return row


def kill_run(work: Path, runs: int, rng: random.Random) -> Row:
    row = Row("kill-run")
    s = make_setup(work)
    for i in range(runs + 1):
        before = observations(s)
        p = s.run("run")
        # recovered: the daemon started over the killed one's leftovers (lock, WAL, a half
        # round) and stored a whole round of its own
        recovered = p.wait_for("blockwatch running") and wait_until(
            lambda b=before: observations(s) >= b + len(s.urls))
        if i == runs:
            p.stop()
        else:
            time.sleep(rng.uniform(0, 2.5))  # somewhere in or between rounds (interval 2 s)
            p.kill()
        if i > 0:
            row.add(audit(s), recovered)
    return row


def kill_serve(work: Path, runs: int, rng: random.Random, per_run: int = 300) -> Row:
    row = Row("kill-serve")
    s = make_setup(work)
    queue = s.dir / "queue.db"
    expected = 0
    for _ in range(runs):
        expected += len(prefill_queue(queue, s.urls[0], per_run))
        srv = s.serve()
        assert srv.wait_for("collector listening"), srv.text
        ag = s.agent(queue)
        time.sleep(rng.uniform(0, 1.5))  # the kill moment: during the upload, or after it
        srv.kill()
        ag.finish()
        expected += measured(ag)
        srv = s.serve()
        srv.wait_for("collector listening")
        recovered, n = deliver_all(s, queue)
        expected += n
        srv.stop()
        row.add(audit(s, expected), recovered)
    return row


def deliver_all(s: Setup, queue: Path, tries: int = 5) -> tuple[bool, int]:
    """The agent, run again, delivers its whole queue, nothing set aside; (done, measurements
    its runs made on the way)."""
    n = 0
    for _ in range(tries):
        ag = s.agent(queue)
        code = ag.finish()
        n += measured(ag)
        if code == 0:
            break
    q, rejected = queue_state(queue)
    return q == 0 and rejected == 0, n


def collector_outage(work: Path, runs: int, rng: random.Random) -> Row:
    row = Row("collector-outage")
    s = make_setup(work)
    queue = s.dir / "queue.db"
    srv = s.serve()  # once up, so that the agent knows the targets
    srv.wait_for("collector listening")
    first = s.agent(queue)
    ok = first.finish() == 0
    expected = measured(first)
    srv.stop()
    for _ in range(runs):
        expected += len(prefill_queue(queue, s.urls[0], rng.randint(20, 200)))
        ag = s.agent(queue)
        down = ag.finish()  # collector down: measures the known targets, queues
        expected += measured(ag)
        queued, _ = queue_state(queue)
        srv = s.serve()
        srv.wait_for("collector listening")
        done, n = deliver_all(s, queue)
        expected += n
        recovered = ok and down == 75 and queued > 0 and done
        srv.stop()
        row.add(audit(s, expected), recovered)
    return row


class Smtp:
    """aiosmtpd on a fixed port, started and stopped at will; counts what it received."""

    def __init__(self, port: int):
        from aiosmtpd.controller import Controller

        self.received: list[str] = []  # Message-IDs
        self.port = port
        outer = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                msg = email.message_from_bytes(envelope.original_content)
                outer.received.append(str(msg.get("Message-ID", "")))
                return "250 OK"

        self.handler = Handler()
        self.controller: Any = None
        self.make = Controller

    def start(self) -> None:
        # a stopped Controller cannot start again: a new one on the same port
        self.controller = self.make(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()


def smtp_outage(work: Path, runs: int, rng: random.Random) -> Row:
    row = Row("smtp-outage")
    s = make_setup(work, interval="1s")
    smtp = Smtp(s.smtp_port)
    for _ in range(runs):
        d = s.run("run")
        d.wait_for("blockwatch running")
        # while the SMTP server is down: a test message queued, its delivery failing
        test = s.run("alerts-test")
        test.finish()
        pending = int(scalar(s.db_url, s.dir, "SELECT count(*) FROM outbox WHERE status = 'pending'"))
        time.sleep(rng.uniform(0, 1.0))
        d.kill()  # and the daemon dies meanwhile
        d = s.run("run")
        d.wait_for("blockwatch running")
        smtp.start()
        # the first retry is 30 s after a failure: its time is moved to now instead of waited for
        _due_now(s)
        recovered = pending > 0 and wait_until(lambda: _outbox_open(s) == 0)
        # a later round (each delivers the outbox) must not send anything again
        d.wait_for(f"probe round {_rounds(d) + 1} ")
        d.stop()
        smtp.stop()
        a = audit(s)
        sent = _sent_ids(s)
        counts = {m: smtp.received.count(m) for m in sent}
        a.duplicates += sum(c - 1 for c in counts.values() if c > 1)
        a.lost += sum(1 for c in counts.values() if c == 0)
        a.duplicates += len([m for m in smtp.received if m not in counts])  # nobody sent it
        row.add(a, recovered)
    return row


def _rounds(p: Proc) -> int:
    """The number of the last probe round this daemon logged (0: none yet)."""
    return max((int(m) for m in re.findall(r"probe round (\d+) ", p.text)), default=0)


def _due_now(s: Setup) -> None:
    eng = engine_for(s.db_url, s.dir)
    try:
        with eng.begin() as c:
            c.execute(text("UPDATE outbox SET next_attempt_at = :t WHERE status = 'pending'"),
                      {"t": datetime(2000, 1, 1)})
    finally:
        eng.dispose()


def _outbox_open(s: Setup) -> int:
    return int(scalar(s.db_url, s.dir, "SELECT count(*) FROM outbox WHERE status IN "
                                       "('pending', 'sending')") or 0)


def _sent_ids(s: Setup) -> list[str]:
    eng = engine_for(s.db_url, s.dir)
    try:
        with eng.connect() as c:
            rows = c.execute(text("SELECT payload FROM outbox WHERE channel = 'email' "
                                  "AND status = 'sent'")).scalars().all()
    finally:
        eng.dispose()
    import json

    return [f"<{(p if isinstance(p, dict) else json.loads(p))['message_id'].strip('<>')}>"
            for p in rows]


@contextlib.contextmanager
def pg_database() -> Iterator[str]:
    """A database of its own on the shared server (never restarted), dropped afterwards."""
    name = f"bw_faults_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def terminate(db_url: str) -> int:
    """What a server restart looks like to a client: every connection to the database cut."""
    name = db_url.rsplit("/", 1)[1].split("?")[0]
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            return len(c.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :d AND pid <> pg_backend_pid()"), {"d": name}).all())
    finally:
        admin.dispose()


def pg_round(work: Path, runs: int, rng: random.Random, db_url: str) -> Row:
    row = Row("pg-round")
    s = make_setup(work, db_url, interval="1s")
    d = s.run("run")
    d.wait_for("blockwatch running")
    wait_until(lambda: observations(s) >= len(s.urls))
    for _ in range(runs):
        time.sleep(rng.uniform(0, 1.0))
        cut = terminate(db_url)
        before = observations(s)
        # the same process, no restart: rounds go on being stored
        recovered = cut > 0 and d.p.poll() is None and wait_until(
            lambda b=before: observations(s) >= b + len(s.urls))
        # the cut took the daemon's instance lock with its session: a second `run` must
        # still be refused (the daemon took the lock again)
        second = s.run("run")
        try:
            refused = second.finish(WAIT) == 75
        except subprocess.TimeoutExpired:
            refused = False
            second.kill()
            row.notes.append("a second `run` started beside the first after the cut")
        row.add(audit(s), recovered and refused and d.p.poll() is None)
    d.stop()
    return row


def pg_upload(work: Path, runs: int, rng: random.Random, db_url: str, per_run: int = 300) -> Row:
    row = Row("pg-upload")
    s = make_setup(work, db_url)
    queue = s.dir / "queue.db"
    srv = s.serve()
    srv.wait_for("collector listening")
    expected = 0
    for _ in range(runs):
        expected += len(prefill_queue(queue, s.urls[0], per_run))
        ag = s.agent(queue)
        time.sleep(rng.uniform(0, 1.0))
        terminate(db_url)
        ag.finish()
        expected += measured(ag)
        done, n = deliver_all(s, queue)
        expected += n
        recovered = done and srv.p.poll() is None
        row.add(audit(s, expected), recovered)
    srv.stop()
    return row


def disk_full(work: Path, runs: int, rng: random.Random, *, allow_rlimit: bool) -> Row:
    """SQLite on a volume that fills up: the command fails with a clear error, nothing stored
    is damaged, and once there is room the next round is stored."""
    vol = work / "vol"
    vol.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(vol)],
                             capture_output=True, text=True)
    if mounted.returncode != 0 and not allow_rlimit:
        return Row("disk-full", skipped=f"mount refused: {mounted.stderr.strip()}")
    row = Row("disk-full (tmpfs 2 MiB)" if mounted.returncode == 0 else "disk-full (RLIMIT_FSIZE)")
    try:
        s = make_setup(work, f"sqlite:///{vol / 'bw.db'}", urls=60)
        s.run("check").finish()  # a database that exists, with rounds in it
        for _ in range(runs):
            filler = vol / "filler"
            preexec = None
            if mounted.returncode == 0:
                # leave a random few KiB free: the next round runs out of room somewhere
                st = os.statvfs(vol)
                free = st.f_bavail * st.f_frsize
                filler.write_bytes(b"\0" * max(0, free - rng.randint(0, 48) * 1024))
            else:
                limit = sum(f.stat().st_size for f in vol.iterdir()) + rng.randint(0, 48) * 1024

                def preexec(limit: int = limit) -> None:
                    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

            before = observations(s)
            full = s.run("check", preexec=preexec)
            code = full.finish()
            err = full.text
            # a failure is a clear message, never a traceback
            clear = code == 0 or ("Traceback" not in err and "blockwatch check:" in err)
            if not clear:
                row.notes.append(f"exit {code}: {err[-300:]}")
            filler.unlink(missing_ok=True)
            a = audit(s)
            again = s.run("check")
            ok = again.finish() in (0, 1) and observations(s) >= before + len(s.urls)
            if not ok:
                row.notes.append(f"after room was made: exit {again.p.returncode}: {again.text[-300:]}")
            row.add(a, ok and clear)
    finally:
        if mounted.returncode == 0:
            subprocess.run(["umount", "-l", str(vol)], check=False)
    return row


# --- the table -------------------------------------------------------------------------------

def table(rows: list[Row]) -> str:
    head = (f"{'scenario':<26} {'runs':>5} {'lost':>5} {'duplicates':>10} {'integrity':>10} "
            f"{'recovered':>10} {'seconds':>8}")
    out = [head, "-" * len(head)]
    for r in rows:
        if r.skipped:
            out.append(f"{r.scenario:<26} skipped: {r.skipped}")
            continue
        integ = "ok" if r.integrity == 0 else f"{r.integrity} bad"
        out.append(f"{r.scenario:<26} {r.runs:>5} {r.lost:>5} {r.duplicates:>10} {integ:>10} "
                   f"{r.recovered:>5}/{r.runs:<4} {r.seconds:>8.1f}")
    return "\n".join(out)


SCENARIOS = ["kill-check", "kill-run", "kill-serve", "collector-outage", "smtp-outage",
             "pg-round", "pg-upload", "disk-full"]


def run_all(work: Path, runs: dict[str, int], seed: int, *, allow_rlimit: bool = False,
            only: list[str] | None = None) -> list[Row]:
    rng = random.Random(seed)
    rows: list[Row] = []
    want = only or SCENARIOS
    for name in want:
        n = runs.get(name, 0)
        if n <= 0:
            continue
        sub = work / name
        t0 = time.perf_counter()
        if name == "kill-check":
            rows.append(kill_check(sub, n, rng))
        elif name == "kill-run":
            rows.append(kill_run(sub, n, rng))
        elif name == "kill-serve":
            rows.append(kill_serve(sub, n, rng))
        elif name == "collector-outage":
            rows.append(collector_outage(sub, n, rng))
        elif name == "smtp-outage":
            rows.append(smtp_outage(sub, n, rng))
        elif name == "pg-round":
            with pg_database() as url:
                rows.append(pg_round(sub, n, rng, url))
        elif name == "pg-upload":
            with pg_database() as url:
                rows.append(pg_upload(sub, n, rng, url))
        elif name == "disk-full":
            rows.append(disk_full(sub, n, rng, allow_rlimit=allow_rlimit))
        rows[-1].seconds = time.perf_counter() - t0
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=50, help="kills of check, run and serve each")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only", default="", help=f"comma-separated, of: {', '.join(SCENARIOS)}")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    args = ap.parse_args()
    few = max(3, args.runs // 5)
    runs = {"kill-check": args.runs, "kill-run": args.runs, "kill-serve": args.runs,
            "collector-outage": few, "smtp-outage": few, "pg-round": args.runs // 2,
            "pg-upload": few, "disk-full": few}
    work = Path(tempfile.mkdtemp(prefix="bw-faults-"))
    t0 = time.perf_counter()
    try:
        rows = run_all(work, runs, args.seed, only=[x for x in args.only.split(",") if x] or None)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(table(rows))
    for r in rows:
        for n in r.notes[:5]:
            print(f"  {r.scenario}: {n}")
    print(f"({time.perf_counter() - t0:.0f} s, seed {args.seed})")
    sys.exit(0 if all(r.clean or r.skipped for r in rows) else 1)


if __name__ == "__main__":
    main()
