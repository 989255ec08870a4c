"""Site build time and size for 500 outlets x 4 vantages x 365 days of history.

Aim: the full build within 5 s, the index within 300 KB; an incremental rebuild after a round in
which 5 outlets changed within 1 s. Populates a temporary SQLite database directly (rollups,
current states with their verdicts, some events and incidents) and times only the builds (CPU
time of this process, and wall time):
- the first (full: no build state yet);
- a rebuild with nothing new (what a build after only feed polls costs);
- "5 outlets only": 15 minutes later 5 outlets changed state at the agent's network and nothing
  else moved: what a build after an agent upload or an OONI import touching 5 outlets costs
  (the blocked outlets' pages change too: today's minutes grow). Not a local probe round;
- "realistic round": 15 minutes later again, a local round as bulk.py stores it: every URL at
  every network checked (its last-check time and its verdict's run move on), 5 other outlets
  changed state. Every measured outlet's page shows each network's last check, so every one is
  rendered again: this is what the daemon's build after each probe round costs;
- a forced full build (`blockwatch site --full`).
Each of the first four is timed twice: as `blockwatch site` builds (a cold process: every rollup
row read, every page part rendered) and, into a second folder, as the daemon builds after each
round (`daemon:` lines: builds in one process with the in-memory cache of site/cache.py, warm
from the builds before it; its first build is as cold as the other).
Memory of the daemon's cache, after each `daemon:` build: its own estimate (what `[site]
cache_limit` is held to), the outlets it keeps, the process's resident memory (RSS) after the
build and at the build's peak (the peak counter reset before each build; the cold builds before
it in the same process leave memory the allocator keeps, so `--only daemon` for RSS numbers),
and with `--deep` its real size (every object it holds, walked; slow, off the clock).
`--cache-limit`: the daemon cache's limit ("0" off, "none" no limit; default `[site]
cache_limit`'s); `--events N`: closed events per outlet and network (25 fills every outlet's
100-entry timeline); `--rounds N`: the realistic round N times.
Run: .venv/bin/python benchmarks/bench_site.py [--targets N] [--days N] [--languages en,ru]
     [--stress] [--changed N] [--events N] [--rounds N] [--only site|daemon]
     [--cache-limit SIZE] [--deep]
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import random
import re
import resource
import sys
import tempfile
import time
import types
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, select, update

from blockwatch.config import _size
from blockwatch.site.build import build_site_from_db, site_info
from blockwatch.site.cache import SiteCache, _history_size, _part_size
from blockwatch.storage import open_database
from blockwatch.storage.models import (
    Case,
    DailyRollup,
    Event,
    Feed,
    FeedEntry,
    Incident,
    Measurement,
    Target,
    UrlState,
    Vantage,
    Verdict,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
STATES = ["dns", "tls", "tcp_ip", "http_blockpage", "throttled", "down", "http_diff"]


def populate(url: str, n_targets: int, days: int, seed: int = 7, stress: bool = False,
             closed: int = 3) -> None:
    """Realistic by default: one outlet in ten has a blocking history (runs of days), the rest
    an odd day down. `stress`: every outlet at every vantage churns all year."""
    rnd = random.Random(seed)
    db = open_database(url)
    with db.write() as s:
        s.execute(insert(Vantage), [
            {"id": 1, "name": "vps", "kind": "local", "country": "", "asn": "", "created_at": NOW},
            {"id": 2, "name": "kz-isp-dns", "kind": "resolver", "country": "KZ", "asn": "",
             "created_at": NOW},
            {"id": 3, "name": "ooni-kz:AS9198", "kind": "ooni", "country": "KZ", "asn": "AS9198",
             "created_at": NOW},
            {"id": 4, "name": "almaty-1", "kind": "agent", "country": "KZ", "asn": "AS9198",
             "created_at": NOW},
            {"id": 5, "name": "control", "kind": "control", "country": "", "asn": "",
             "created_at": NOW},
        ])
        s.execute(insert(Target), [
            {"id": i, "name": f"Outlet {i:03d} Жаңалықтар", "country": "KZ", "category": "NEWS",
             "urls": [f"https://outlet{i}.kz/"], "aliases": [], "active": True}
            for i in range(1, n_targets + 1)])
        blocked = {i for i in range(1, n_targets + 1) if rnd.random() < 0.1}
        rows = []
        for t in range(1, n_targets + 1):
            for v in range(1, 5):
                state, run = "ok", 0
                for d in range(days, 0, -1):
                    if run <= 0:  # history with runs: a block lasts days, like real ones
                        churn = stress or t in blocked
                        p = 0.08 if churn else 0.01
                        state = (rnd.choice(STATES) if churn else "down") if rnd.random() < p else "ok"
                        run = rnd.randint(1, 10) if state != "ok" else rnd.randint(5, 40)
                    run -= 1
                    rows.append({"target_id": t, "vantage_id": v,
                                 "day": NOW.date() - timedelta(days=d), "worst": state,
                                 "minutes_affected": 0 if state == "ok" else rnd.randint(10, 1440),
                                 "measurements": 96})
            if len(rows) > 50_000:
                s.execute(insert(DailyRollup), rows)
                rows = []
        if rows:
            s.execute(insert(DailyRollup), rows)
        meas, verd, states, events = [], [], [], []
        mid = 0
        for t in range(1, n_targets + 1):
            for v in range(1, 5):
                mid += 1
                st = "tls" if t in blocked and v == 4 else "ok"
                at = NOW - timedelta(minutes=10)
                ev = {"url": f"https://outlet{t}.kz/"}
                meas.append({"id": mid, "uid": f"m{mid}", "target_id": t, "vantage_id": v,
                             "url": ev["url"], "role": "vantage", "measured_at": at,
                             "evidence": ev, "evidence_sha256": hashlib.sha256(
                                 str(mid).encode()).hexdigest(), "keep": False})
                verd.append({"id": mid, "measurement_id": mid, "target_id": t, "vantage_id": v,
                             "url": ev["url"], "verdict": st, "confirmed": st != "ok",
                             "reason": "reachable: HTTP 200" if st == "ok" else
                             "the TLS handshake with outlet.kz was reset after the ClientHello",
                             "measured_at": at})
                since = NOW - timedelta(days=rnd.randint(1, 60))
                events.append({"id": mid, "target_id": t, "vantage_id": v, "url": ev["url"],
                               "state": st, "previous": "ok" if st != "ok" else None,
                               "confirmed": st != "ok", "reason": verd[-1]["reason"],
                               "started_at": since, "detected_at": since, "ended_at": None,
                               "verdict_id": mid})
                for k in range(closed):  # closed events of the past year
                    a = NOW - timedelta(days=rnd.randint(61, 364))
                    events.append({"id": 100_000 + mid * max(10, closed) + k, "target_id": t, "vantage_id": v,
                                   "url": ev["url"], "state": rnd.choice(STATES), "previous": "ok",
                                   "confirmed": False, "reason": "historic", "started_at": a,
                                   "detected_at": a, "ended_at": a + timedelta(hours=5),
                                   "verdict_id": None})
                states.append({"url": ev["url"], "vantage_id": v, "target_id": t, "state": st,
                               "since": since, "pending_count": 0, "event_id": mid,
                               "last_verdict_id": mid, "last_seen_at": at, "updated_at": at})
        s.execute(insert(Measurement.__table__), meas)
        s.execute(insert(Verdict), verd)
        s.execute(insert(Event), events)
        s.execute(insert(UrlState), states)
        s.execute(insert(Feed), [{"id": 1, "name": "Adil Soz", "url": "https://example.org/f",
                                  "language": "ru", "consecutive_failures": 0}])
        s.execute(insert(FeedEntry), [
            {"id": i, "feed_id": 1, "entry_key": f"k{i}", "title": f"Incident {i}",
             "link": f"https://example.org/{i}", "summary": "", "first_seen_at": NOW,
             "published_at": NOW - timedelta(hours=i), "content_sha256": "0" * 64}
            for i in range(1, 201)])
        s.execute(insert(Incident), [
            {"id": i, "entry_id": i, "types": ["blocking"], "outlets": [f"Outlet {i:03d} Жаңалықтар"],
             "people": [], "occurred_at": NOW - timedelta(hours=i), "created_at": NOW}
            for i in range(1, 201)])
        s.execute(insert(Case), [
            {"id": i, "incident_id": i, "event_id": (i - 1) * 4 + 4, "created_at": NOW}
            for i in range(1, min(200, n_targets) + 1)])
    db.close()


def round_changes(url: str, outlets: list[int], at: datetime) -> None:
    """A round in which these outlets became DNS-blocked at the agent vantage: a measurement, its
    verdict, the old event closed, a new one opened and the URL's state moved, as bulk.py stores
    them; nothing else changes."""
    db = open_database(url)
    with db.write() as s:
        for t in outlets:
            mid, u = 1_000_000 + t, f"https://outlet{t}.kz/"
            s.execute(insert(Measurement.__table__), [{
                "id": mid, "uid": f"r{mid}", "target_id": t, "vantage_id": 4, "url": u,
                "role": "vantage", "measured_at": at, "evidence": {"url": u},
                "evidence_sha256": hashlib.sha256(str(mid).encode()).hexdigest(), "keep": True}])
            reason = "DNS answered NXDOMAIN for outlet.kz"
            s.execute(insert(Verdict), [{
                "id": mid, "measurement_id": mid, "target_id": t, "vantage_id": 4, "url": u,
                "verdict": "dns", "confirmed": True, "reason": reason, "measured_at": at}])
            s.execute(update(Event).where(Event.id == 4 * t).values(ended_at=at))
            s.execute(insert(Event), [{
                "id": 2_000_000 + t, "target_id": t, "vantage_id": 4, "url": u, "state": "dns",
                "previous": "ok", "confirmed": True, "reason": reason, "started_at": at,
                "detected_at": at, "ended_at": None, "verdict_id": mid}])
            s.execute(update(UrlState).where(UrlState.url == u, UrlState.vantage_id == 4).values(
                state="dns", since=at, event_id=2_000_000 + t, last_verdict_id=mid,
                last_seen_at=at, updated_at=at))
    db.close()


def checked_again(url: str, at: datetime) -> None:
    """The rest of a local round: every URL at every network measured again with its outcome
    unchanged, as bulk.py stores it: the URL's last check moves, its verdict's run is extended
    (`repeats`, `repeated_until`); no new row, event or rollup."""
    db = open_database(url)
    with db.write() as s:
        s.execute(update(Verdict).where(Verdict.id.in_(select(UrlState.last_verdict_id)))
                  .where(Verdict.measured_at < at)
                  .values(repeats=Verdict.repeats + 1, repeated_until=at))
        s.execute(update(UrlState).values(last_seen_at=at, updated_at=at))
    db.close()


def rss_mb() -> float:
    """Resident memory now."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 1e6


def reset_peak() -> None:
    """Start the kernel's peak RSS counter (VmHWM) afresh (Linux 4.0+)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def peak_mb() -> float:
    with open("/proc/self/status") as f:
        m = re.search(r"VmHWM:\s+(\d+) kB", f.read())
    if m:
        return int(m.group(1)) / 1e3
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


_SKIP = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType)


def deep_size(root: object, seen: set[int]) -> int:
    """Bytes of every object reachable from `root` not in `seen` (which it fills): what the
    cache alone holds once a build's model is gone. Classes, modules and functions left out."""
    total, todo = 0, [root]
    while todo:
        o = todo.pop()
        if id(o) in seen or isinstance(o, _SKIP):
            continue
        seen.add(id(o))
        total += sys.getsizeof(o)
        todo.extend(gc.get_referents(o))
    return total


def deep_report(cache: SiteCache) -> str:
    """The cache's real size, by what it holds (objects shared between kinds counted with the
    first), and its estimate by the same kinds where it keeps one."""
    memo = cache.memo
    seen: set[int] = {id(cache.lock)}
    outlets = memo.outlets
    real: dict[str, int] = {}
    est: dict[str, int] = {}
    real["history"] = sum(deep_size(o.history, seen) for o in outlets.values())
    est["history"] = sum(_history_size(o.history) for o in outlets.values() if o.history)
    by_kind: dict[str, list[object]] = {}
    for o in outlets.values():
        for k, v in o.parts.items():
            by_kind.setdefault(k[0], []).append((k, v))
            est[f"part {k[0]}"] = est.get(f"part {k[0]}", 0) + _part_size(k, v)
    for kind, items in sorted(by_kind.items()):
        real[f"part {kind}"] = sum(deep_size(kv, seen) for kv in items)
    real["rest"] = deep_size(cache, seen)
    parts = ", ".join(f"{k} {v / 1e6:.1f}" + (f" (est. {est[k] / 1e6:.1f})" if k in est else "")
                      for k, v in real.items())
    return f"{sum(real.values()) / 1e6:.1f} MB real: {parts}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--targets", type=int, default=500)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--languages", default="en,ru")
    ap.add_argument("--stress", action="store_true", help="every outlet's history churns")
    ap.add_argument("--changed", type=int, default=5, help="outlets the round changes")
    ap.add_argument("--events", type=int, default=3,
                    help="closed events per outlet and network (25: full timelines)")
    ap.add_argument("--rounds", type=int, default=1, help="realistic rounds")
    ap.add_argument("--only", choices=("site", "daemon"), help="only the cold or daemon builds")
    ap.add_argument("--cache-limit", default=None,
                    help='the daemon cache\'s limit ("256MB", "0" off, "none" no limit)')
    ap.add_argument("--deep", action="store_true", help="also the cache's real size (slow)")
    a = ap.parse_args()
    if a.cache_limit is None:
        cache = SiteCache()  # the default limit
    elif a.cache_limit == "none":
        cache = SiteCache(limit=None)
    else:
        cache = SiteCache(limit=_size(a.cache_limit))
    print(f"daemon cache limit: {cache.limit}")
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        t0 = time.perf_counter()
        populate(url, a.targets, a.days, stress=a.stress, closed=a.events)
        kind = "stress" if a.stress else "realistic"
        print(f"populated ({kind}) {a.targets} targets x 4 vantages x {a.days} days, "
              f"{a.events} closed events per outlet and network, in {time.perf_counter() - t0:.1f} s")
        db = open_database(url)
        info = site_info("blockwatch", "https://status.example.org/", a.languages.split(","))
        later = NOW + timedelta(minutes=15)
        step = max(1, a.targets // max(1, a.changed))
        picked = list(range(1, a.targets + 1, step))[:a.changed]

        def five_only() -> None:
            round_changes(url, picked, later)

        def realistic(n: int, at: datetime) -> None:
            # other outlets than the round before (an outlet changes once: its events by id)
            round_changes(url, [t + 1 + n for t in picked if t + 1 + n <= a.targets], at)
            checked_again(url, at)

        runs: list[tuple[str, datetime, bool, float, object]] = [
            ("cold, full", NOW, False, 5.0, None), ("nothing new", NOW, False, 1.0, None),
            (f"{a.changed} outlets only", later, False, 1.0, five_only)]
        latest = later
        for n in range(a.rounds):
            latest += timedelta(minutes=15)
            runs.append((f"realistic round {n + 1}" if a.rounds > 1 else "realistic round",
                         latest, False, 1.0, (lambda n=n, at=latest: realistic(n, at))))
        runs.append(("--full", latest, True, 5.0, None))
        table = []
        try:
            for run, now, full, aim, change in runs:
                if callable(change):
                    change()
                kinds = [] if a.only == "daemon" else [(run, "site", None)]
                if not full and a.only != "site":  # the daemon never builds with --full
                    kinds.append((f"daemon: {run}", "daemon-site", cache))
                for name, folder, c in kinds:
                    gc.collect()
                    reset_peak()
                    t0, c0 = time.perf_counter(), time.process_time()
                    report = build_site_from_db(db, Path(tmp) / folder, info, now=now, full=full,
                                                cache=c)
                    took, cpu = time.perf_counter() - t0, time.process_time() - c0
                    peak, now_mb = peak_mb(), rss_mb()
                    mem = ""
                    if c is not None:
                        mem = (f"cache {c.size / 1e6:.0f} MB est., {len(c.memo.outlets)} outlets"
                               f" kept; RSS {now_mb:.0f} MB, build peak {peak:.0f} MB")
                    table.append((name, report.rendered, report.outlets, cpu, took, aim, mem))
                    print(f"build ({name}): {cpu:.2f} s CPU, {took:.2f} s wall  "
                          f"(aim <= {aim:g} s)  {report.summary()}" + (f"  [{mem}]" if mem else ""))
                    if c is not None and a.deep:
                        print(f"  cache: {deep_report(c)}")
        finally:
            db.close()
        print("\n| build | outlets rendered | CPU s | wall s | aim s | memory |"
              "\n|---|---|---|---|---|---|")
        for run, rendered, outlets, cpu, took, aim, mem in table:
            print(f"| {run} | {rendered} of {outlets} | {cpu:.2f} | {took:.2f} | {aim:g} | {mem} |")
        folder = Path(tmp) / ("daemon-site" if a.only == "daemon" else "site")
        for lang in info.languages:
            size = (folder / lang / "index.html").stat().st_size
            print(f"{lang}/index.html: {size / 1000:.1f} KB  (aim <= 300 KB)")
        pages = sorted((folder / info.languages[0] / "t").glob("*.html"))
        print(f"largest outlet page: {max(p.stat().st_size for p in pages) / 1000:.1f} KB")


if __name__ == "__main__":
    main()
