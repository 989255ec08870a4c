"""Benchmark: bytes on disk per measurement, amortised, for a simulated stretch of rounds at the
default 15-minute interval: URLs x (vantage + control), realistic churn (about 2% of URLs change
state each day, about 1% blocked at any time), a weekly certificate rotation per URL, bodies
whose length and hash vary from round to round. Stored through the round's own store path
(round._store; judging replaced by the scenario's verdict: storage, not analysis, is measured).

A year of 1,000 URLs is 70 million measurements; the default is a scaled-down run (200 URLs x 10
days) with the extrapolation to 1,000 URLs x 365 days printed (bytes per measurement settle after
the first day: a full sample per (URL, vantage) per day, plus changes and rotations).

    .venv/bin/python benchmarks/bench_storage.py [--urls 200] [--days 10] [--db sqlite|postgres|both]
        [--no-compact]   # every measurement its own row (the storage before runs), for comparison
        [--whole-evidence]   # evidence stored whole, not as pieces (storage/evidence.py)
        [--vacuum-every N]   # PostgreSQL: a plain VACUUM every N simulated rounds (default 2; 0:
                             # never, all dead row versions of 8 days' updates at once)

On PostgreSQL every round updates rows in place (a run's counters, its runs and url_states rows),
and an update leaves a dead row version that VACUUM makes reusable. A real daemon runs a round
every 15 minutes and autovacuum looks every minute, so the dead versions of a round or two are
all that exist at once; this benchmark runs 8 days of rounds in minutes, so it runs that VACUUM
itself every N simulated rounds (autovacuum cannot keep up with the compressed time).
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_ingest import PG_URL, measurement
from benchconfig import pg_schema, storage_config

from blockwatch import dbstats
from blockwatch import round as rnd
from blockwatch.analysis.fingerprints import default_interception
from blockwatch.analysis.verdict import Judgement
from blockwatch.gctune import fewer_gc_passes
from blockwatch.storage import open_database
from blockwatch.storage.db import sqlite_path

INTERVAL = timedelta(minutes=15)
YEAR_MEASUREMENTS = 1000 * 2 * 96 * 365


def run(db_url: str, tmp: Path, n: int, days: int, compact: bool, seed: int = 1,
        pieces: bool = True, vacuum_every: int = 2) -> dict[str, object]:
    urls, cfg, targets = storage_config(db_url, tmp, n)
    db = open_database(cfg.database_url)
    db.compact_runs = compact
    db.evidence_pieces = pieces
    base, _ = _size(db)
    ids = rnd._prepare(db, targets, rnd.local_views(cfg))
    locals_ = rnd.local_views(cfg)
    aset = rnd.analysis_settings(cfg)
    interception = default_interception()
    rng = random.Random(seed)
    blocked = set(rng.sample(range(n), max(1, n // 100)))  # ~1% blocked at any time
    verdict_of: dict[str, Judgement] = {}
    real_judge = rnd.judge
    rnd.judge = lambda m, c, **_: verdict_of[m.uid]  # type: ignore[assignment]
    t0 = datetime(2025, 3, 3, tzinfo=UTC)
    measurements = 0
    cpu = 0.0
    try:
        for r in range(days * 96):
            at = t0 + INTERVAL * r
            if r % 96 == 0 and r:  # a new day: ~2% of URLs change state
                for i in rng.sample(range(n), max(1, n // 50)):
                    blocked ^= {i}
            report = rnd.RoundReport(round_id=uuid.uuid4().hex)
            items = []
            for i, (t, u) in enumerate(zip(targets, urls, strict=True)):
                week = (at - t0 + timedelta(days=i % 7)).days // 7  # each URL its rotation day
                is_blocked = i in blocked
                c = measurement(u, i, at, role="control")
                v = measurement(u, i, at, role="vantage", blocked=is_blocked)
                v.vantage = "kz"
                for m in (c, v):
                    for h in m.tls:
                        if h.chain:
                            h.chain[0].sha256 = f"{i:032x}{week:032x}"
                    if m.http is not None:
                        m.http.body_length = 84211 + rng.randint(-900, 900)
                        m.http.body_sha256 = f"{rng.getrandbits(256):064x}"
                        m.http.t_ms = rng.random() * 300
                    m.t_ms = rng.random() * 500
                verdict_of[v.uid] = Judgement("tls" if is_blocked else "ok", is_blocked,
                                              "the control connected" if is_blocked else "")
                items.append((t, u, c, [v]))
            with fewer_gc_passes():
                c0 = time.process_time()
                for lo in range(0, n, 64):
                    rnd._store(db, items[lo:lo + 64], ids, report, cfg.settings.probe.confirm_after,
                               aset, None, locals_, interception)
                cpu += time.process_time() - c0
            verdict_of.clear()
            measurements += 2 * n
            if db.dialect == "postgresql" and vacuum_every and r % vacuum_every == 0:
                _vacuum(db)
        size, rows = _size(db)
        live = _size(db, full=True)[0] if db.dialect == "postgresql" else size
    finally:
        rnd.judge = real_judge  # type: ignore[assignment]
        db.close()
    used = size - base
    per = used / measurements
    return {"db": db_url.split(":")[0].split("+")[0], "compact": compact, "pieces": pieces,
            "vacuum_every": vacuum_every if db_url.startswith("postgresql") else None,
            "urls": n, "days": days,
            "measurements": measurements, "measurement_rows": rows, "bytes": used,
            "bytes_per_measurement": round(per, 1),
            # PostgreSQL: after VACUUM FULL, without the dead row versions of updates that
            # (auto)vacuum makes reusable (a lower bound of the steady state)
            "live_bytes_per_measurement": round((live - base) / measurements, 1),
            "store_cpu_ms_per_url": round(cpu * 1000 / (measurements / 2), 3),
            "year_1000_urls": dbstats.human_bytes(per * YEAR_MEASUREMENTS)}


def _vacuum(db) -> None:  # type: ignore[no-untyped-def]
    """What autovacuum does between two real rounds: dead row versions made reusable."""
    with db.engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        for t in ("measurements", "verdicts", "runs", "url_states"):
            conn.execute(text(f"VACUUM {t}"))


def _size(db, full: bool = False) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    path = sqlite_path(db.url)
    free = 0
    if path is not None:  # the WAL's pages into the file, so the file is the database
        con = sqlite3.connect(path)
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        free = con.execute("PRAGMA freelist_count").fetchone()[0] * \
            con.execute("PRAGMA page_size").fetchone()[0]
        con.close()
    if db.dialect == "postgresql":
        with db.engine.connect() as conn:  # VACUUM cannot run in a transaction
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(
                text("VACUUM FULL ANALYZE" if full else "VACUUM ANALYZE"))
    with db.read() as s:
        size, tables = dbstats._size(db, s)
        top = sorted(tables.items(), key=lambda x: -x[1])[:5]
        print("largest tables: " + ", ".join(f"{t} {dbstats.human_bytes(b)}" for t, b in top),
              file=sys.stderr)
        try:
            rows = int(s.execute(text("SELECT count(*) FROM measurements")).scalar() or 0)
        except Exception:
            rows = 0
    if free:
        print(f"({db.dialect}: {free} bytes of it free pages, reused by later writes)",
              file=sys.stderr)
    return size, rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--urls", type=int, default=200)
    ap.add_argument("--days", type=int, default=10)
    ap.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    ap.add_argument("--no-compact", action="store_true")
    ap.add_argument("--whole-evidence", action="store_true")
    ap.add_argument("--vacuum-every", type=int, default=2)
    args = ap.parse_args()
    dbs = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    for which in dbs:
        tmp = Path(tempfile.mkdtemp(prefix="bw-bench-storage-"))
        if which == "sqlite":
            print(json.dumps(run(f"sqlite:///{tmp / 'bench.db'}", tmp, args.urls, args.days,
                                 not args.no_compact, pieces=not args.whole_evidence)), flush=True)
            continue
        with pg_schema(PG_URL) as url:
            print(json.dumps(run(url, tmp, args.urls, args.days, not args.no_compact,
                                 pieces=not args.whole_evidence,
                                 vacuum_every=args.vacuum_every)), flush=True)


if __name__ == "__main__":
    main()
