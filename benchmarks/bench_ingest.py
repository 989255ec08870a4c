"""Collector ingest throughput: 50 simulated agents post batches of pre-built measurements at
once to a real uvicorn collector (its own process) backed by the PostgreSQL server. Controls
are pre-seeded, so this measures ingest + judge + store, not probing.

    .venv/bin/python benchmarks/bench_ingest.py [--agents 50] [--batches 10] [--batch 100]
        [--processes N | --workers N]

`--processes N` starts N separate `serve` processes (as on N hosts behind a reverse proxy), each
on its own port, and spreads the agents across them; `--workers N` is one `serve --workers N`.
`--profile DIR` writes a cProfile of each collector process into DIR.

Needs the PostgreSQL server (BLOCKWATCH_TEST_PG_URL, default postgresql+psycopg://postgres@
127.0.0.1:5432/test); works in a fresh schema that is dropped afterwards."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, func, select, text

from blockwatch.collector.commands import new_token
from blockwatch.collector.state import token_hash
from blockwatch.probe.records import (
    CertInfo,
    DnsQuery,
    HttpHop,
    HttpResult,
    TcpConnect,
    TlsHandshake,
    WebMeasurement,
)
from blockwatch.round import CONTROL
from blockwatch.storage import open_database, repo
from blockwatch.storage.models import Event, Measurement, Verdict

PG_URL = os.environ.get("BLOCKWATCH_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
N_URLS = 200


def iso(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def measurement(url: str, i: int, at: datetime, *, role: str, blocked: bool = False) -> WebMeasurement:
    """A realistic record: two DNS queries, a TCP connect, a TLS handshake with a two-certificate
    chain, one HTTP hop (about 2.5 KB of JSON)."""
    host = url.split("/")[2]
    addr = f"198.51.100.{i % 250 + 1}"
    chain = [CertInfo(subject=f"CN={host}", issuer="CN=R11, O=Let's Encrypt, C=US",
                      not_before="2025-01-01T00:00:00Z", not_after="2026-04-01T00:00:00Z",
                      sha256=f"{i:064x}", san=[host, f"www.{host}"]),
             CertInfo(subject="CN=R11, O=Let's Encrypt, C=US", issuer="CN=ISRG Root X1, O=ISRG, C=US",
                      not_before="2024-03-13T00:00:00Z", not_after="2027-03-12T23:59:59Z",
                      sha256="ab" * 32, san=[])]
    tls = TlsHandshake(address=addr, port=443, sni=host, version="TLSv1.3",
                       cipher="TLS_AES_256_GCM_SHA384", chain=chain, t_ms=35.2)
    if blocked:
        tls = TlsHandshake(address=addr, port=443, sni=host, failure="connection_reset", t_ms=20.1)
    headers = {"content-type": "text/html; charset=utf-8", "server": "nginx", "cache-control": "max-age=60"}
    http = None if blocked else HttpResult(
        hops=[HttpHop(url=url, address=addr, status=200, headers=[[k, v] for k, v in headers.items()],
                      t_ms=80.0)],
        final_url=url, status=200, headers=headers, title=f"{host}: independent news",
        body_length=84211, body_sha256=f"{i * 7:064x}", t_ms=120.5, ttfb_ms=60.0, transfer_ms=60.5)
    return WebMeasurement(
        url=url, vantage="agent", role=role, measured_at=iso(at), uid=uuid.uuid4().hex,
        resolvers=["system (192.168.1.1)"],
        dns=[DnsQuery(resolver="system (192.168.1.1)", transport="udp", qname=host, qtype="A",
                      rcode="NOERROR", answers=[addr], ttls=[300], t_ms=12.0),
             DnsQuery(resolver="system (192.168.1.1)", transport="udp", qname=host, qtype="AAAA",
                      rcode="NOERROR", t_ms=11.0)],
        tcp=[TcpConnect(address=addr, port=443, status="ok", t_ms=18.3)],
        tls=[tls], http=http, t_ms=210.0)


# one collector process: `serve` on a port, optionally under cProfile (written at SIGINT)
# (the worker threads of asyncio.to_thread, where judging and storing run, each get a profiler
# of their own at their first event; merged at the end). The profilers count each thread's CPU
# time, not wall time: on a loaded machine wall time mostly says who waited for a core.
SERVE = """
import argparse, cProfile, logging, os, pstats, sys, threading, time
from blockwatch.collector.commands import cmd_serve
from blockwatch.config import load
logging.basicConfig(level=logging.WARNING)
cfg, port, workers, prof = load(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
ns = argparse.Namespace(host=None, port=port, workers=workers)
if not prof:
    sys.exit(cmd_serve(cfg, ns))
profs = [cProfile.Profile(time.thread_time)]
def per_thread(*_):
    p = cProfile.Profile(time.thread_time)
    profs.append(p)
    p.enable()
threading.setprofile(per_thread)
profs[0].enable()
try:
    cmd_serve(cfg, ns)
finally:
    for p in profs:
        p.create_stats()
    st = pstats.Stats(profs[0])
    for p in profs[1:]:
        if p.stats:
            st.add(p)
    st.dump_stats(os.path.join(prof, f"serve-{port}.prof"))
"""


TICK = os.sysconf("SC_CLK_TCK")


def _proc_stats(comm: str | None = None) -> list[tuple[int, int, int]]:
    """(pid, parent pid, CPU ticks user + system) of every process (named `comm` if given)."""
    stats = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    raw = f.read()
            except OSError:
                continue
            if comm is not None and raw[raw.index("(") + 1:raw.rindex(")")] != comm:
                continue
            rest = raw[raw.rindex(")") + 2:].split()
            stats.append((int(d), int(rest[1]), int(rest[11]) + int(rest[12])))
    return stats


def cpu_seconds(pids: set[int]) -> float:
    """CPU time (user + system) of the processes with these pids and their children."""
    stats = _proc_stats()
    want = set(pids) | {p for p, pp, _ in stats if pp in pids}
    return sum(t for p, _, t in stats if p in want) / TICK


class BackendCpu:
    """CPU time of the benchmark's own PostgreSQL backends (the sessions whose
    application_name is the benchmark's: not the other sessions on the server), sampled every
    0.1 s from /proc while the run lasts. A backend that ends between two samples loses its
    last 0.1 s at most (the collectors' overflow connections come and go), so this is a
    slight undercount. The server must be on this machine."""

    def __init__(self, admin: Any, app: str):
        self.admin, self.app = admin, app
        self.first: dict[int, int] = {}
        self.last: dict[int, int] = {}
        self.samples = 0
        self.own = 0.0  # this sampler's own CPU, not the client's
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _sample(self, conn: Any, initial: bool) -> None:
        pids = set(conn.execute(text("SELECT pid FROM pg_stat_activity WHERE application_name "
                                     "= :a"), {"a": self.app}).scalars())
        conn.rollback()
        for pid, _, ticks in _proc_stats():
            if pid in pids:
                # a backend first seen after the start began during the run: all its CPU counts
                self.first.setdefault(pid, ticks if initial else 0)
                self.last[pid] = ticks
        self.samples += 1

    def _loop(self) -> None:
        t = time.thread_time()
        with self.admin.connect() as conn:
            while not self._stop.wait(0.1):
                self._sample(conn, initial=False)
            self._sample(conn, initial=False)
        self.own = time.thread_time() - t

    def start(self) -> None:
        with self.admin.connect() as conn:
            self._sample(conn, initial=True)
        self._thread.start()

    def stop(self) -> float:
        """CPU seconds of the benchmark's backends since `start`."""
        self._stop.set()
        self._thread.join()
        return sum(self.last[p] - self.first[p] for p in self.last) / TICK


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def run(args: argparse.Namespace) -> None:
    schema = f"bw_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    # the benchmark's sessions are told apart from the server's other sessions by this name
    app = f"bw-bench-{schema}"
    url = f"{PG_URL}{sep}options=-csearch_path%3D{schema}&application_name={app}"
    procs: list[subprocess.Popen[bytes]] = []
    tmp = Path(tempfile.mkdtemp(prefix="bw-bench-"))
    try:
        urls = [f"https://site{i:03d}.bench/" for i in range(N_URLS)]
        (tmp / "targets.toml").write_text("".join(
            f'[[target]]\nname = "Site {i}"\nurls = ["{u}"]\n' for i, u in enumerate(urls)))
        toks = {f"agent-{i:02d}": new_token() for i in range(args.agents)}
        vantages = "".join(f'[[vantage]]\nname = "{n}"\nkind = "agent"\ncountry = "KZ"\n'
                           f'token_sha256 = "{token_hash(t)}"\n' for n, t in toks.items())
        port = free_port()
        (tmp / "blockwatch.toml").write_text(
            f'[storage]\nurl = "{url}"\n[probe]\ntargets = ["targets.toml"]\ncanaries = []\n'
            f'[control]\nresolvers = ["127.0.0.1:9"]\n[server]\nhost = "127.0.0.1"\nport = {port}\n'
            f'max_body = "4MiB"\n{vantages}')
        db = open_database(url)
        now = datetime.now(UTC)
        with db.write() as s:
            cid = repo.ensure_vantage(s, CONTROL, "control")
            for i, u in enumerate(urls):
                c = measurement(u, i, now, role="control")
                repo.add_measurement(s, uid=c.uid, target_id=None, vantage_id=cid, url=u, role="control",
                                     measured_at=now, evidence=c.to_json())
        # pre-built bodies: every agent posts `batches` rounds of `batch` URLs; 5% blocked
        bodies: dict[str, list[bytes]] = {}
        n = 0
        for a, name in enumerate(toks):
            out = []
            for b in range(args.batches):
                ms = []
                for k in range(args.batch):
                    i = (b * args.batch + k) % N_URLS
                    at = now + timedelta(seconds=b)
                    m = measurement(urls[i], i, at, role="vantage", blocked=(i + a) % 20 == 0).to_json()
                    m["round_id"] = f"{name}-{b}"
                    ms.append(m)
                out.append(json.dumps({"measurements": ms}).encode())
                n += len(ms)
            bodies[name] = out
        print(f"{n} measurements in {args.agents * args.batches} uploads of {args.batch}, "
              f"{sum(len(x) for v in bodies.values() for x in v) / n / 1024:.1f} KB each")

        ports = [port] + [free_port() for _ in range(args.processes - 1)]
        for p in ports:
            procs.append(subprocess.Popen([sys.executable, "-c", SERVE, str(tmp / "blockwatch.toml"),
                                           str(p), str(args.workers), args.profile or ""]))
        async with httpx.AsyncClient() as probe:
            for p in ports:
                for _ in range(400):
                    try:
                        if (await probe.get(f"http://127.0.0.1:{p}/api/v1/health")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.05)
                else:
                    raise SystemExit("the collector did not start")
        # agent k posts to collector k mod N (a reverse proxy's round robin by client)
        port_of = {name: ports[k % len(ports)] for k, name in enumerate(toks)}

        latencies: list[float] = []

        async def agent(name: str) -> tuple[int, int]:
            acc = dup = 0
            async with httpx.AsyncClient(timeout=120, headers={
                    "authorization": f"Bearer {toks[name]}", "content-type": "application/json"}) as c:
                for body in bodies[name]:
                    t = time.perf_counter()
                    r = await c.post(f"http://127.0.0.1:{port_of[name]}/api/v1/measurements",
                                     content=body)
                    latencies.append(time.perf_counter() - t)
                    r.raise_for_status()
                    acc += r.json()["accepted"]
                    dup += r.json()["duplicates"]
            return acc, dup

        serve_pids = {p.pid for p in procs}
        backends = BackendCpu(admin, app)
        backends.start()
        c0, me0 = cpu_seconds(serve_pids), time.process_time()
        all0 = sum(t for _, _, t in _proc_stats("postgres")) / TICK
        t0 = time.perf_counter()
        res = await asyncio.gather(*(agent(nm) for nm in toks))
        wall = time.perf_counter() - t0
        cpu = cpu_seconds(serve_pids) - c0
        pg_cpu = backends.stop()
        pg_all = sum(t for _, _, t in _proc_stats("postgres")) / TICK - all0
        me = time.process_time() - me0 - backends.own
        accepted = sum(a for a, _ in res)
        latencies.sort()
        # CPU per measurement does not depend on how busy the machine is; wall time does
        print(f"CPU per measurement: collector {cpu / n * 1000:.2f} ms, PostgreSQL "
              f"{pg_cpu / n * 1000:.2f} ms (the benchmark's {len(backends.last)} backends), "
              f"this client {me / n * 1000:.2f} ms;"
              f" on {os.cpu_count()} CPUs that is at most "
              f"{(os.cpu_count() or 1) / ((cpu + pg_cpu + me) / n):,.0f} measurements/s")
        print(f"(every postgres process on this machine, other sessions included: "
              f"{pg_all / n * 1000:.2f} ms per measurement; {backends.samples} samples)")
        print(f"ingested {accepted} measurements (verdicts included) in {wall:.2f} s: "
              f"{accepted / wall:,.0f} measurements/s with {args.agents} concurrent agents, "
              f"{args.processes} serve process(es) x {args.workers} worker(s), "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
        print(f"upload latency: median {latencies[len(latencies) // 2] * 1000:.0f} ms, "
              f"p95 {latencies[int(len(latencies) * 0.95)] * 1000:.0f} ms")
        with db.read() as s:  # a row stands for itself and the repetitions of its run
            nv = s.scalar(select(func.sum(1 + Verdict.repeats)))
            nm = s.scalar(select(func.sum(1 + Measurement.repeats)).where(Measurement.role == "vantage"))
            rows = s.scalar(select(func.count()).select_from(Measurement)
                            .where(Measurement.role == "vantage"))
            ne = s.scalar(select(func.count()).select_from(Event))
        print(f"stored: {nm} measurements ({rows} rows), {nv} verdicts, {ne} events")
        assert nv == nm == n == accepted, (nv, nm, n, accepted)
        # re-delivery of one agent's uploads: all duplicates
        name = next(iter(toks))
        t0 = time.perf_counter()
        _, dup = await agent(name)
        print(f"re-delivery of {dup} measurements acknowledged as duplicates in "
              f"{time.perf_counter() - t0:.2f} s")
        db.close()
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGINT)  # a graceful stop: the profiles are written
        for proc in procs:
            proc.wait(timeout=60)
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--agents", type=int, default=50)
    p.add_argument("--batches", type=int, default=10)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--workers", type=int, default=1, help="serve --workers N in each serve process")
    p.add_argument("--processes", type=int, default=1,
                   help="separate serve processes, agents spread across them")
    p.add_argument("--profile", metavar="DIR", help="cProfile each serve process into DIR")
    asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    main()
