"""Import OONI web_connectivity measurements as vantages `<name>:<probe_asn>`.

Per target domain: ask the API for measurements since the newest one already stored (minus an
overlap for late uploads) or, the first time, since `lookback`; store each page in its own
transaction, oldest first, and push each verdict through the same event state machine as every
other vantage. A failure stops that domain for this import (a later page stored after a gap
would move the resume point past the gap); the next import resumes from the database.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from blockwatch.config import Config, OoniVantage
from blockwatch.durations import format_duration
from blockwatch.ooni import api as ooni_api
from blockwatch.ooni.api import FetchError, OoniApi, Page, Sleep, fmt_time, make_client, windows
from blockwatch.ooni.mapping import (
    ItemError,
    OoniItem,
    failure_label,
    map_verdict,
    parse_item,
    vantage_name,
)
from blockwatch.round_summary import plural, verdict_counts
from blockwatch.storage import Database, bulk, repo
from blockwatch.storage.models import Measurement, Vantage
from blockwatch.storage.models import Target as TargetRow
from blockwatch.targets import Target

log = logging.getLogger(__name__)

TEST_NAME = "web_connectivity"
# OONI probes can upload hours after measuring (phones offline, batched uploads): each import
# re-asks this much before the newest stored measurement; duplicates are dropped by uid.
RESUME_OVERLAP = timedelta(hours=6)


@dataclass
class ImportReport:
    vantage: str  # the configured name, e.g. "ooni-kz"
    fetched: int = 0  # items received from the API
    stored: int = 0
    duplicates: int = 0
    skipped: int = 0  # items that could not be used (logged one by one)
    errors: int = 0  # pages or domains that failed (logged; the next import resumes)
    pages: int = 0
    results: list[dict[str, Any]] = field(default_factory=list)  # one per stored measurement
    new_events: list[repo.NewEvent] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # one line per error, for check/health
    seconds: float = 0.0  # how long the import took

    @property
    def ok(self) -> bool:
        return self.errors == 0

    def summary(self) -> str:
        """The import's log line: "OONI import ooni-kz in 4.2s: 120 fetched, 118 stored: 100
        ok, 10 blocked (dns 4, tls 6), 8 inconclusive; 2 duplicates, 0 skipped, 0 errors"."""
        verdicts = f": {verdict_counts(r['verdict'] for r in self.results)}" if self.stored else ""
        events = sum(1 for r in self.results if r.get("event"))
        return (f"OONI import {self.vantage} in {format_duration(self.seconds)}: "
                f"{self.fetched} fetched, {self.stored} stored{verdicts}; "
                f"{plural(self.duplicates, 'duplicate')}, {self.skipped} skipped, "
                f"{plural(self.errors, 'error')}"
                + (f"; {plural(events, 'new event')}" if events else ""))


def domain_targets(targets: list[Target]) -> dict[str, Target]:
    """Each domain once, with the first target that names it (OONI is asked once per domain)."""
    out: dict[str, Target] = {}
    for t in targets:
        for d in t.domains:
            out.setdefault(d.lower(), t)
    return out


async def import_ooni(cfg: Config, db: Database, vantage: OoniVantage, targets: list[Target], *,
                      client: httpx.AsyncClient | None = None, now: datetime | None = None,
                      sleep: Sleep = asyncio.sleep) -> ImportReport:
    """Import new OONI measurements of every target domain for one `kind = "ooni"` vantage."""
    now = now or repo.utcnow()
    started = time.monotonic()
    report = ImportReport(vantage.name)
    by_domain = domain_targets(targets)
    if not by_domain:
        return report
    own = client is None
    http = client or make_client()
    api = OoniApi(vantage.api_url, http, sleep=sleep)
    confirm_after = cfg.settings.probe.confirm_after
    try:
        tids = await asyncio.to_thread(_target_ids, db, list({t.name: t for t in
                                                              by_domain.values()}.values()))
        for domain, target in by_domain.items():
            tid = tids[target.name]
            newest = await asyncio.to_thread(_newest_stored, db, vantage.name, tid, domain)
            since = newest - RESUME_OVERLAP if newest else now - vantage.lookback
            await _import_domain(api, db, vantage, domain, target, tid, since, now,
                                 confirm_after, report)
    finally:
        if own:
            await http.aclose()
    report.seconds = time.monotonic() - started
    log.info("%s", report.summary())
    return report


async def import_all(cfg: Config, db: Database, targets: list[Target], *,
                     client: httpx.AsyncClient | None = None, now: datetime | None = None,
                     sleep: Sleep = asyncio.sleep) -> list[ImportReport]:
    """Every configured OONI vantage, one after the other (gentle on a shared public API)."""
    vantages = [v for v in cfg.settings.vantage if isinstance(v, OoniVantage)]
    if not vantages:
        return []
    own = client is None
    http = client or make_client()
    try:
        return [await import_ooni(cfg, db, v, targets, client=http, now=now, sleep=sleep)
                for v in vantages]
    finally:
        if own:
            await http.aclose()


def check_results(reports: list[ImportReport], *, latest_only: bool = False
                  ) -> list[dict[str, Any]]:
    """Verdict lines for `blockwatch check` (the keys of round.Result.to_json). With
    latest_only, one line per (URL, vantage): the newest measurement imported this time."""
    rows = [r for rep in reports for r in rep.results]
    if not latest_only:
        return rows
    newest: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        k = (r["url"], r["vantage"])
        if k not in newest or r["measured_at"] >= newest[k]["measured_at"]:
            newest[k] = r
    return sorted(newest.values(), key=lambda r: (r["target"], r["url"], r["vantage"]))


async def _import_domain(api: OoniApi, db: Database, vantage: OoniVantage, domain: str,
                         target: Target, tid: int, since: datetime, until: datetime,
                         confirm_after: int, report: ImportReport) -> None:
    for w_since, w_until in windows(since, until):
        params = {"probe_cc": vantage.country, "domain": domain, "test_name": TEST_NAME,
                  "since": fmt_time(w_since), "until": fmt_time(w_until),
                  "order_by": "measurement_start_time", "order": "asc",
                  "limit": str(ooni_api.PAGE_LIMIT)}
        page: Page | None = None
        try:
            async for page in api.pages(params):
                report.pages += 1
                report.fetched += len(page.results)
                items = _parse_items(page, vantage, domain, report)
                if items:
                    await asyncio.to_thread(_store_page, db, vantage, target, tid, items,
                                            confirm_after, report)
        except FetchError as exc:
            report.errors += 1
            at = f"page {page.number + 1 if page else 1}"
            what = "is malformed" if exc.malformed else "failed"
            msg = (f"OONI import {vantage.name}, domain {domain}, {at} ({exc.url}) {what}: "
                   f"{exc.problem}; nothing stored from this page, earlier pages kept; the "
                   "next import resumes from the newest stored measurement")
            log.error("%s", msg)
            report.problems.append(msg)
            return  # never store a later window after a gap: the resume point would skip it


def _parse_items(page: Page, vantage: OoniVantage, domain: str, report: ImportReport
                 ) -> list[OoniItem]:
    out = []
    for i, raw in enumerate(page.results):
        try:
            it = parse_item(raw, test_name=TEST_NAME)
            if it.probe_cc != vantage.country:
                raise ItemError(f"'probe_cc' is {it.probe_cc!r}, not {vantage.country!r}")
            # The API filters by domain; if it ever ignored the filter we would import a whole
            # country's measurements under the wrong target.
            if not _same_site(it.host, domain):
                raise ItemError(f"'input' {it.input!r} is not on {domain}")
        except ItemError as exc:
            report.skipped += 1
            ident = (raw.get("measurement_uid") or raw.get("report_id")) \
                if isinstance(raw, dict) else None
            log.warning("OONI import %s: skipped item %d of page %d (%s, %s): %s", vantage.name,
                        i, page.number, ident or "no id", page.url, exc)
            continue
        out.append(it)
    return out


def _target_ids(db: Database, targets: list[Target]) -> dict[str, int]:
    """Ids of the targets, adding rows that are missing. Unlike repo.sync_targets this never
    deactivates a target: the caller may pass only some of them."""
    with db.write() as s:
        rows = {r.name: r for r in s.scalars(
            select(TargetRow).where(TargetRow.name.in_([t.name for t in targets])))}
        for t in targets:
            if t.name not in rows:
                row = TargetRow(name=t.name, country=t.country, category=t.category,
                                urls=list(t.urls), aliases=list(t.aliases), active=True)
                s.add(row)
                rows[t.name] = row
        s.flush()
        return {name: row.id for name, row in rows.items()}


def _newest_stored(db: Database, name: str, target_id: int, domain: str) -> datetime | None:
    """The newest OONI measurement already stored for this vantage and domain, whatever the ASN."""
    with db.read() as s:
        q = (select(Measurement.url, func.max(Measurement.measured_at))
             .join(Vantage, Vantage.id == Measurement.vantage_id)
             .where(Vantage.kind == "ooni", Vantage.name.startswith(f"{name}:", autoescape=True),
                    Measurement.target_id == target_id)
             .group_by(Measurement.url))
        times = [t for url, t in s.execute(q)
                 if t is not None and _same_site(urlsplit(url).hostname or "", domain)]
    return max(times) if times else None


def _same_site(host: str, domain: str) -> bool:
    host = host.lower()
    return host == domain or host == f"www.{domain}" or f"www.{host}" == domain


def _store_page(db: Database, vantage: OoniVantage, target: Target, tid: int,
                items: list[OoniItem], confirm_after: int, report: ImportReport) -> None:
    """One page, one transaction: all of it or (on error) none of it. A unique-key race with a
    concurrent import (`check` while `run` imports) is retried once; the second pass sees the
    other writer's rows as duplicates."""
    for attempt in (1, 2):
        counts = {"stored": 0, "duplicates": 0}
        results: list[dict[str, Any]] = []
        events: list[repo.NewEvent] = []
        try:
            with db.write() as s:
                _store_items(db, s, vantage, target, tid, items, confirm_after, counts, results,
                             events)
        except IntegrityError:
            if attempt == 2:
                raise
            log.info("OONI import %s: another writer stored some of these measurements; "
                     "retrying the page", vantage.name)
            continue
        report.stored += counts["stored"]
        report.duplicates += counts["duplicates"]
        report.results.extend(results)
        report.new_events.extend(events)
        return


def _store_items(db: Database, s: Session, vantage: OoniVantage, target: Target, tid: int,
                 items: list[OoniItem], confirm_after: int, counts: dict[str, int],
                 results: list[dict[str, Any]], events: list[repo.NewEvent]) -> None:
    """Through the one store path of judged batches (storage/bulk.py), one call per OONI
    vantage (ASN): duplicates by uid, the state machine stepped in time order, and a late
    measurement (older than the newest one judged for its URL and vantage) stored with its
    verdict but never replayed into the state."""
    per_vantage: dict[str, list[tuple[OoniItem, bulk.Row]]] = {}
    for it in items:
        j = map_verdict(it)
        per_vantage.setdefault(vantage_name(vantage.name, it.probe_asn), []).append((it, bulk.Row(
            uid=it.uid, target_id=tid, url=it.input, measured_at=it.measured_at, evidence=it.raw,
            failure=failure_label(it), verdict=j.verdict, confirmed=j.confirmed,
            reason=j.reason)))
    lines: list[tuple[datetime, dict[str, Any]]] = []
    for vname, pairs in per_vantage.items():
        vid = repo.ensure_vantage(s, vname, "ooni", vantage.country, pairs[0][0].probe_asn)
        rec = bulk.record(db, s, vid, [r for _, r in pairs], confirm_after)
        counts["stored"] += rec.accepted
        counts["duplicates"] += rec.duplicates
        events.extend(rec.events)
        done: set[str] = set()
        for it, r in pairs:
            if it.uid not in rec.stored or it.uid in done:
                continue
            done.add(it.uid)
            new = rec.event_of.get(it.uid)
            lines.append((it.measured_at, {
                "target": target.name, "url": r.url, "vantage": vname, "verdict": r.verdict,
                "confirmed": r.confirmed, "reason": r.reason,
                "measured_at": repo.iso(it.measured_at),
                "event": f"{new.previous or 'new'} -> {new.state}" if new else None}))
    results.extend(line for _, line in sorted(lines, key=lambda x: x[0]))
