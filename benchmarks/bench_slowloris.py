"""`serve` under a slowloris: N connections from one address (127.0.0.2) each send half a
request's headers and then nothing, while another address (127.0.0.3) asks /api/v1/health and
an agent fetches its targets. Reports how many slow connections the server held, its open file
descriptors, the other clients' latency, and when the held ones were closed.

    .venv/bin/python benchmarks/bench_slowloris.py [--connections 5000] [--no-limits]

The collector runs as `blockwatch serve` in its own process on SQLite, with the shipped
defaults for [server] (request_timeout 10 s, 64 connections per client); --no-limits lifts
them (no per-client cap, a one-hour deadline) to show what they prevent. Loopback only."""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from blockwatch.collector.commands import new_token
from blockwatch.collector.state import token_hash

PARTIAL = b"GET /api/v1/health HTTP/1.1\r\nHost: collector\r\nX-Slow: "


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def timed_get(client: httpx.AsyncClient, url: str, **kw: object) -> float:
    t = time.perf_counter()
    r = await client.get(url, **kw)  # type: ignore[arg-type]
    r.raise_for_status()
    return (time.perf_counter() - t) * 1000


async def run(args: argparse.Namespace) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.connections + 512
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    port = free_port()
    token = new_token()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        (tmp / "targets.toml").write_text(
            '[[target]]\nname = "Ratel"\nurls = ["https://ratel.test/"]\ncountry = "KZ"\n')
        limits = 'request_timeout = "1h"\nmax_connections_per_client = 0\nmax_connections = 100000\n' \
            if args.no_limits else ""
        (tmp / "blockwatch.toml").write_text(
            f'[storage]\nurl = "sqlite:///{tmp / "bw.db"}"\n[probe]\ntargets = ["targets.toml"]\n'
            f'canaries = []\n[control]\nresolvers = ["127.0.0.1:9"]\n'
            f'[server]\nhost = "127.0.0.1"\nport = {port}\n{limits}'
            f'[[vantage]]\nname = "a1"\nkind = "agent"\ncountry = "KZ"\n'
            f'token_sha256 = "{token_hash(token)}"\n')
        proc = subprocess.Popen([sys.executable, "-c", (
            "import argparse, resource, sys\n"
            "r = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
            "resource.setrlimit(resource.RLIMIT_NOFILE, (r[1], r[1]))\n"
            "from blockwatch.config import load\n"
            "from blockwatch.collector.commands import cmd_serve\n"
            "sys.exit(cmd_serve(load(sys.argv[1]), argparse.Namespace(host=None, port=None, "
            "workers=1)))"), str(tmp / "blockwatch.toml")])
        base = f"http://127.0.0.1:{port}"
        try:
            async with httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(
                    local_address="127.0.0.3"), timeout=30) as other:
                for _ in range(200):
                    try:
                        await other.get(f"{base}/api/v1/health")
                        break
                    except httpx.TransportError:
                        await asyncio.sleep(0.05)
                idle_fds = open_fds(proc.pid)
                t0 = time.perf_counter()
                sem = asyncio.Semaphore(500)
                conns: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

                async def slow() -> None:
                    async with sem:
                        r, w = await asyncio.open_connection("127.0.0.1", port,
                                                             local_addr=("127.0.0.2", 0))
                        w.write(PARTIAL)
                        conns.append((r, w))

                await asyncio.gather(*(slow() for _ in range(args.connections)))
                opened = time.perf_counter() - t0
                # the server answers in accept order: once this is answered, it has seen them all
                first = await timed_get(other, f"{base}/api/v1/health")
                lat = [await timed_get(other, f"{base}/api/v1/health") for _ in range(50)]
                agent = [await timed_get(other, f"{base}/api/v1/targets",
                                         headers={"authorization": f"Bearer {token}"})
                         for _ in range(10)]
                held_fds = open_fds(proc.pid)

                async def closed(r: asyncio.StreamReader, within: float) -> float | None:
                    t = time.perf_counter()
                    try:
                        await asyncio.wait_for(r.read(), within)
                    except TimeoutError:
                        return None
                    return time.perf_counter() - t

                # which were closed at once: EOF already waiting (checked without waiting long)
                quick = await asyncio.gather(*(closed(r, 0.5) for r, _ in conns))
                refused = sum(q is not None for q in quick)
                held = [c for c, q in zip(conns, quick, strict=True) if q is None]
                if not args.no_limits and held:
                    ends = await asyncio.gather(*(closed(r, 30) for r, _ in held))
                    gone = [e for e in ends if e is not None]
                    cut = (f"{len(gone)}/{len(held)} closed by the deadline, the last "
                           f"{time.perf_counter() - t0:.1f} s after they connected")
                else:
                    cut = f"{len(held)} still open (no deadline)"
                for _, w in conns:
                    w.close()
                print(f"slow connections from one address: {args.connections} opened in "
                      f"{opened:.2f} s; {refused} closed at once, {len(held)} held")
                print(f"server file descriptors: {idle_fds} idle, {held_fds} while held")
                print(f"health from another address: first {first:.1f} ms, then p50 "
                      f"{statistics.median(lat):.1f} ms, max {max(lat):.1f} ms (50 requests)")
                print(f"agent GET /targets meanwhile: p50 {statistics.median(agent):.1f} ms, "
                      f"max {max(agent):.1f} ms")
                print(f"held connections: {cut}")
        finally:
            proc.terminate()
            proc.wait(20)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--connections", type=int, default=5000)
    p.add_argument("--no-limits", action="store_true",
                   help="lift the limits (no per-client cap, a one-hour deadline)")
    asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    main()
