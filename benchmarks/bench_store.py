"""Benchmark: the CPU of storing a `check` round (round._store), without the network.

Realistic measurements (bench_ingest's ~2.5 KB records: DNS, TCP, TLS with a chain, one HTTP
hop), one control and one local vantage per URL, stored in the writer's batches (up to 64 URLs); a
few rounds so the state machine sees pending changes and events (5% of URLs blocked from the
second round on). Reports this process's CPU per URL (the database server's is not counted):
all of _store, and the part of it that is judging (analysis, not storage).

    .venv/bin/python benchmarks/bench_store.py [--urls 1000] [--rounds 3] [--batch 64]
        [--db sqlite|postgres|both]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_ingest import PG_URL, measurement
from benchconfig import pg_schema, storage_config

from blockwatch import round as rnd
from blockwatch.analysis.fingerprints import default_interception
from blockwatch.gctune import fewer_gc_passes
from blockwatch.storage import open_database


def run(db_url: str, tmp: Path, n: int, rounds: int, batch: int) -> dict[str, object]:
    urls, cfg, targets = storage_config(db_url, tmp, n)
    db = open_database(cfg.database_url)
    ids = rnd._prepare(db, targets, rnd.local_views(cfg))
    locals_ = rnd.local_views(cfg)
    aset = rnd.analysis_settings(cfg)
    interception = default_interception()
    t0 = datetime(2025, 3, 1, tzinfo=UTC)
    # judging is analysis, not storage: timed apart by wrapping round.judge
    judge_s = [0.0]
    real_judge = rnd.judge

    def timed_judge(*a, **k):  # type: ignore[no-untyped-def]
        t = time.process_time()
        try:
            return real_judge(*a, **k)
        finally:
            judge_s[0] += time.process_time() - t

    rnd.judge = timed_judge  # type: ignore[assignment]
    cpu = 0.0
    stored = 0
    events = 0
    try:
        for r in range(rounds):
            report = rnd.RoundReport(round_id=uuid.uuid4().hex)
            at = t0 + timedelta(minutes=15 * r)
            items = []
            for i, (t, u) in enumerate(zip(targets, urls, strict=True)):
                c = measurement(u, i, at, role="control")
                v = measurement(u, i, at, role="vantage", blocked=r > 0 and i % 20 == 0)
                v.vantage = "kz"
                items.append((t, u, c, [v]))
            with fewer_gc_passes():
                c0 = time.process_time()
                for lo in range(0, n, batch):
                    results, evs = rnd._store(db, items[lo:lo + batch], ids, report,
                                              cfg.settings.probe.confirm_after, aset, None, locals_,
                                              interception)
                    stored += len(results)
                    events += len(evs)
                cpu += time.process_time() - c0
    finally:
        rnd.judge = real_judge  # type: ignore[assignment]
        db.close()
    return {"db": db_url.split(":")[0].split("+")[0], "urls": n, "rounds": rounds, "batch": batch,
            "results": stored, "events": events,
            "store_cpu_ms_per_url": round(cpu * 1000 / stored, 3),
            "judge_cpu_ms_per_url": round(judge_s[0] * 1000 / stored, 3),
            "storage_only_ms_per_url": round((cpu - judge_s[0]) * 1000 / stored, 3)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--urls", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    # the writer stores what arrived within round.BATCH_WAIT, up to 64 URLs (~40 in bench_check)
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args()
    for kind in (["sqlite", "postgres"] if args.db == "both" else [args.db]):
        tmp = Path(tempfile.mkdtemp(prefix="bw-bench-store-"))
        if kind == "sqlite":
            print(json.dumps(run(f"sqlite:///{tmp / 'bench.db'}", tmp, args.urls, args.rounds, args.batch)))
            continue
        with pg_schema(PG_URL) as url:
            print(json.dumps(run(url, tmp, args.urls, args.rounds, args.batch)))


if __name__ == "__main__":
    main()
