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
Run: .venv/bin/python benchmarks/bench_site.py [--targets N] [--days N] [--languages en,ru]
     [--stress] [--changed N]
"""

from __future__ import annotations

import argparse
import hashlib
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, select, update

from blockwatch.site.build import build_site_from_db, site_info
from blockwatch.site.cache import SiteCache
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


def populate(url: str, n_targets: int, days: int, seed: int = 7, stress: bool = False) -> None:
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
                for k in range(3):  # closed events of the past year
                    a = NOW - timedelta(days=rnd.randint(61, 364))
                    events.append({"id": 100_000 + mid * 10 + k, "target_id": t, "vantage_id": v,
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--targets", type=int, default=500)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--languages", default="en,ru")
    ap.add_argument("--stress", action="store_true", help="every outlet's history churns")
    ap.add_argument("--changed", type=int, default=5, help="outlets the round changes")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        t0 = time.perf_counter()
        populate(url, a.targets, a.days, stress=a.stress)
        kind = "stress" if a.stress else "realistic"
        print(f"populated ({kind}) {a.targets} targets x 4 vantages x {a.days} days "
              f"in {time.perf_counter() - t0:.1f} s")
        db = open_database(url)
        info = site_info("blockwatch", "https://status.example.org/", a.languages.split(","))
        later = NOW + timedelta(minutes=15)
        latest = later + timedelta(minutes=15)
        step = max(1, a.targets // max(1, a.changed))
        picked = list(range(1, a.targets + 1, step))[:a.changed]
        others = [t + 1 for t in picked if t + 1 <= a.targets]  # not those of the first round

        def five_only() -> None:
            round_changes(url, picked, later)

        def realistic() -> None:
            round_changes(url, others, latest)
            checked_again(url, latest)

        runs: list[tuple[str, datetime, bool, float, object]] = [
            ("cold, full", NOW, False, 5.0, None), ("nothing new", NOW, False, 1.0, None),
            (f"{a.changed} outlets only", later, False, 1.0, five_only),
            (f"realistic round ({len(others)} changed)", latest, False, 1.0, realistic),
            ("--full", latest, True, 5.0, None)]
        table = []
        cache = SiteCache()  # the daemon's, kept across its builds
        try:
            for run, now, full, aim, change in runs:
                if callable(change):
                    change()
                kinds = [(run, "site", None)]
                if not full:  # the daemon never builds with --full
                    kinds.append((f"daemon: {run}", "daemon-site", cache))
                for name, folder, c in kinds:
                    t0, c0 = time.perf_counter(), time.process_time()
                    report = build_site_from_db(db, Path(tmp) / folder, info, now=now, full=full,
                                                cache=c)
                    took, cpu = time.perf_counter() - t0, time.process_time() - c0
                    table.append((name, report.rendered, report.outlets, cpu, took, aim))
                    print(f"build ({name}): {cpu:.2f} s CPU, {took:.2f} s wall  "
                          f"(aim <= {aim:g} s)  {report.summary()}")
        finally:
            db.close()
        print("\n| build | outlets rendered | CPU s | wall s | aim s |\n|---|---|---|---|---|")
        for run, rendered, outlets, cpu, took, aim in table:
            print(f"| {run} | {rendered} of {outlets} | {cpu:.2f} | {took:.2f} | {aim:g} |")
        for lang in info.languages:
            size = (Path(tmp) / "site" / lang / "index.html").stat().st_size
            print(f"{lang}/index.html: {size / 1000:.1f} KB  (aim <= 300 KB)")
        pages = sorted((Path(tmp) / "site" / info.languages[0] / "t").glob("*.html"))
        print(f"largest outlet page: {max(p.stat().st_size for p in pages) / 1000:.1f} KB")


if __name__ == "__main__":
    main()
