"""Benchmark: one `check` round of N target URLs against the lab, every network step (DNS
answer, TLS handshake, HTTP response) delayed 50 ms, concurrency 100.

The lab runs in a separate process so its CPU is not counted as the prober's. Reports wall time,
CPU ms per URL (all steps, vantage and control), peak RSS, and the ideal: the larger of the
latency bound and the CPU bound.

    .venv/bin/python benchmarks/bench_check.py [--urls 1000] [--latency 0.05] [--concurrency 100]
        [--steady] [--shipped-control] [--control-reuse 1h] [--profile 30 [--profile-out F]]

--steady: the round measured is a second one over the same database (the steady state of a
daemon or of repeated `check`s: most URLs fine, judged against the control stored by the first
round, whose fetch is skipped while it is younger than `--control-reuse`; "0" fetches it again).

--profile N: the measured round's event loop runs under cProfile, timed by the thread's CPU
time (wall time on a loaded machine mostly says who waited for a core); its CPU numbers then
include the profiler's overhead, which is largest for many small Python calls. The N functions
with the most own time are printed to stderr. The store's worker threads are not profiled:
`loop_cpu_s` and `threads_cpu_s` say how the round's CPU divides.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

LAB_SCRIPT = """
import asyncio, json, sys
sys.path.insert(0, {tests!r})
from lab import Lab

async def main():
    async with Lab(latency={latency}) as lab:
        await lab.add_sites([f"site{{i:04d}}.test" for i in range({n})])
        info = dict(https_port=lab.https_port, vantage_resolver=lab.vantage_resolver,
                    control_resolver=lab.control_resolver, ca=str(lab.ca_pem_path),
                    control_resolvers=lab.control_resolvers,
                    urls=[lab.url(f"site{{i:04d}}.test") for i in range({n})],
                    addresses=[lab.site(f"site{{i:04d}}.test").address for i in range({n})])
        print(json.dumps(info), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

asyncio.run(main())
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--urls", type=int, default=1000)
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--concurrency", type=int, default=100)
    ap.add_argument("--shipped-control", action="store_true",
                    help="the control asks two UDP resolvers and a DoH one, as the shipped "
                         "config does (default: one UDP resolver)")
    ap.add_argument("--steady", action="store_true",
                    help="measure a second round over the same database")
    ap.add_argument("--control-reuse", default="1h",
                    help='[probe] control_reuse for the rounds (default 1h; "0": off)')
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="profile the measured round; print the top N functions by own time")
    ap.add_argument("--profile-out", default="", metavar="FILE",
                    help="with --profile: also write the whole profile to FILE (pstats format)")
    args = ap.parse_args()

    lab, info = start_lab(args.urls, args.latency)
    try:
        run(info, args, lab.pid)
    finally:
        stop_lab(lab)


def start_lab(n: int, latency: float) -> tuple[subprocess.Popen[str], dict]:  # type: ignore[type-arg]
    """The lab in its own process (its CPU is not the prober's): n sites, every step delayed
    `latency` seconds; returns the process and its ports, CA, resolvers, URLs and addresses."""
    lab = subprocess.Popen([sys.executable, "-c", LAB_SCRIPT.format(
        tests=str(ROOT / "tests"), latency=latency, n=n)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert lab.stdout is not None
    return lab, json.loads(lab.stdout.readline())


def stop_lab(lab: subprocess.Popen[str]) -> None:
    assert lab.stdin is not None
    lab.stdin.close()
    lab.wait(timeout=30)


def run(info: dict, args: argparse.Namespace, lab_pid: int) -> None:  # type: ignore[type-arg]
    from blockwatch import aio
    from blockwatch.config import load
    from blockwatch.lab.config import probe_config
    from blockwatch.round import run_round
    from blockwatch.storage import open_database
    from blockwatch.targets import load_targets

    tmp = Path(tempfile.mkdtemp(prefix="bw-bench-"))
    (tmp / "targets.toml").write_text("".join(
        f'[[target]]\nname = "T{i}"\nurls = ["{u}"]\n' for i, u in enumerate(info["urls"])))
    (tmp / "c.toml").write_text('[storage]\nurl = "sqlite:///bench.db"\n' + probe_config(
        targets="targets.toml", ca=info["ca"], vantage_resolver=info["vantage_resolver"],
        control_resolvers=info["control_resolvers"] if args.shipped_control
        else [info["control_resolver"]],
        probe=f'timeout = "10s"\nconcurrency = {args.concurrency}\ncanaries = []\n'
              f'control_reuse = "{args.control_reuse}"'))
    cfg = load(tmp / "c.toml")
    targets = load_targets(cfg.target_files)
    db = open_database(cfg.database_url)
    # warm-up: imports, SSL contexts and the fingerprint table load once per process; a
    # daemon pays them at start, not per round
    aio.run(run_round(cfg, targets[:20], db))
    if args.steady:  # the first round: every URL's control measured and stored
        aio.run(run_round(cfg, targets, db))
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    lab0 = _cpu_of(lab_pid)
    t0 = time.perf_counter()
    loop0 = time.thread_time()
    if args.profile:
        profiler = cProfile.Profile(time.thread_time)
        report = profiler.runcall(aio.run, run_round(cfg, targets, db))
    else:
        report = aio.run(run_round(cfg, targets, db))
    loop_cpu = time.thread_time() - loop0
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    lab_cpu = _cpu_of(lab_pid) - lab0
    db.close()
    if args.profile:
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(args.profile)
        if args.profile_out:
            profiler.dump_stats(args.profile_out)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    n = len(report.results)
    verdicts: dict[str, int] = {}
    for r in report.results:
        verdicts[r.verdict] = verdicts.get(r.verdict, 0) + 1
    measurements = n + report.controls_fetched  # the vantage's, and the control's fetches
    # delayed steps of one measurement: DNS answer, TLS handshake of the connect step, and the
    # HTTP request's own TLS handshake and response
    delays_per_measurement = 4
    # (a URL judged against a stored control asks the control resolvers: one delayed step)
    steps = measurements * delays_per_measurement + report.controls_reused
    latency_bound = steps / args.concurrency * args.latency
    cpu_bound = cpu / 1.0  # one event loop: one core
    ideal = max(latency_bound, cpu_bound)
    print(json.dumps({
        "urls": n, "verdicts": verdicts, "concurrency": args.concurrency,
        "round": "steady (second)" if args.steady else "first",
        "control_reuse": args.control_reuse, "controls_fetched": report.controls_fetched,
        "controls_reused": report.controls_reused,
        "latency_s": args.latency, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
        "cpu_ms_per_url": round(cpu * 1000 / n, 2),
        # the event loop's thread (probing, judging) and the others (the store's writes and
        # reads, run in worker threads)
        "loop_cpu_s": round(loop_cpu, 2), "threads_cpu_s": round(cpu - loop_cpu, 2),
        "peak_rss_mb": round(r1.ru_maxrss / 1024, 1),
        # the lab's own CPU (servers for both views): when it nears wall_s, the lab is what
        # limits the wall time, not the prober
        "lab_cpu_s": round(lab_cpu, 2),
        "latency_bound_s": round(latency_bound, 2), "cpu_bound_s": round(cpu_bound, 2),
        "ideal_s": round(ideal, 2), "wall_over_ideal": round(wall / ideal, 2),
    }, indent=1))
    os.environ.setdefault("BW_BENCH_DONE", "1")


def _cpu_of(pid: int) -> float:
    """User + system CPU seconds of another process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    main()
