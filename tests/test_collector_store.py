"""The collector's bulk store must give exactly what `repo.record_verdict` gives, row by row:
the same verdicts, state machine, events and kept evidence (on SQLite and PostgreSQL)."""

from __future__ import annotations

import random
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from blockwatch.analysis.verdict import Judgement
from blockwatch.collector.ingest import Item, bulk_record
from blockwatch.probe.records import WebMeasurement
from blockwatch.storage import Database, bulk, open_database, repo
from blockwatch.storage.models import Event, Measurement, UrlState, Verdict

SEQ = ["ok", "ok", "tls", "inconclusive", "tls", "ok", "dns", "dns", "dns", "ok", "tls", "ok", "ok"]
URLS = ["https://a.test/", "https://b.test/"]


def _m(url: str, at: datetime) -> WebMeasurement:
    return WebMeasurement(url=url, vantage="x", role="vantage",
                          measured_at=at.isoformat().replace("+00:00", "Z"), uid=uuid.uuid4().hex)


def _snapshot(db: Database, vid: int) -> dict[str, Any]:
    with db.read() as s:
        states = [(st.url, st.state, st.since, st.pending, st.pending_count, st.pending_since,
                   st.last_seen_at)
                  for st in s.scalars(select(UrlState).where(UrlState.vantage_id == vid)
                                      .order_by(UrlState.url))]
        events = [(e.url, e.previous, e.state, e.confirmed, e.reason, e.started_at, e.detected_at,
                   e.ended_at)
                  for e in s.scalars(select(Event).where(Event.vantage_id == vid).order_by(Event.id))]
        verdicts = [(v.url, v.verdict, v.measured_at)
                    for v in s.scalars(select(Verdict).where(Verdict.vantage_id == vid).order_by(Verdict.id))]
        keep = [(m.url, m.measured_at, m.keep)
                for m in s.scalars(select(Measurement).where(Measurement.vantage_id == vid)
                                   .order_by(Measurement.measured_at, Measurement.url))]
        # the open event of each state row is the newest event of that URL
        open_ok = all(
            st.event_id == max((e.id for e in s.scalars(select(Event).where(
                Event.vantage_id == vid, Event.url == st.url))), default=None)
            for st in s.scalars(select(UrlState).where(UrlState.vantage_id == vid)))
    return {"states": states, "events": sorted(events, key=lambda e: (e[0], e[5], e[6])),
            "verdicts": sorted(verdicts, key=lambda v: (v[2], v[0])),
            "keep": keep, "open_ok": open_ok}


def test_bulk_store_matches_record_verdict(any_db: Database) -> None:
    any_db.compact_runs = False  # row for row against the reference (runs: test_runs.py)
    t0 = datetime(2025, 3, 1, tzinfo=UTC)
    rounds = [(t0 + timedelta(minutes=15 * i), v) for i, v in enumerate(SEQ)]
    with any_db.write() as s:
        ref = repo.ensure_vantage(s, "reference", "agent", "KZ")
        bulk = repo.ensure_vantage(s, "bulk", "agent", "KZ")
    # the reference: one record_verdict per measurement, as round.py stores
    with any_db.write() as s:
        for at, verdict in rounds:
            for url in URLS:
                mm = repo.add_measurement(s, uid=uuid.uuid4().hex, target_id=None, vantage_id=ref,
                                          url=url, role="vantage", measured_at=at, evidence={})
                repo.record_verdict(s, measurement=mm, control_id=None, verdict=verdict, confirmed=False,
                                    reason=f"r {verdict}", confirm_after=2)
    # the bulk path: uneven batches, each in shuffled order (the store sorts by time)
    items = [Item(_m(url, at), f"bulk/{uuid.uuid4().hex}", at, None, True, None,
                  judgement=Judgement(verdict, False, f"r {verdict}"))
             for at, verdict in rounds for url in URLS]
    for lo, hi in [(0, 5), (5, 6), (6, 15), (15, len(items))]:
        batch = list(reversed(items[lo:hi]))
        with any_db.write() as s:
            bulk_record(any_db, s, bulk, batch, 2, repo.utcnow())
    a, b = _snapshot(any_db, ref), _snapshot(any_db, bulk)
    assert a["states"] == b["states"]
    assert a["events"] == b["events"] and len(a["events"]) == 2 * 4
    assert a["verdicts"] == b["verdicts"]
    assert [k[2] for k in a["keep"]] == [k[2] for k in b["keep"]]
    assert a["open_ok"] and b["open_ok"]
    # re-delivering a batch changes nothing
    with any_db.write() as s:
        res = bulk_record(any_db, s, bulk, items[:4], 2, repo.utcnow())
    assert (res.accepted, res.duplicates) == (0, 4)
    assert _snapshot(any_db, bulk) == b
    # a late upload, older than the newest seen: the state's last_seen_at does not go back
    late = rounds[3][0] + timedelta(minutes=1)
    with any_db.write() as s:
        mm = repo.add_measurement(s, uid=uuid.uuid4().hex, target_id=None, vantage_id=ref,
                                  url=URLS[0], role="vantage", measured_at=late, evidence={})
        repo.record_verdict(s, measurement=mm, control_id=None, verdict="ok", confirmed=False,
                            reason="r ok", confirm_after=2)
    with any_db.write() as s:
        bulk_record(any_db, s, bulk, [Item(_m(URLS[0], late), f"bulk/{uuid.uuid4().hex}", late, None,
                                           True, None, judgement=Judgement("ok", False, "r ok"))],
                    2, repo.utcnow())
    a, b = _snapshot(any_db, ref), _snapshot(any_db, bulk)
    assert a["states"] == b["states"] and a["states"][0][-1] == rounds[-1][0]


def test_concurrent_uploads_keeping_shared_controls(pg_url: str) -> None:
    """Every agent's anomaly keeps the collector's control of that URL: uploads of many agents
    lock the same control rows at once, and must take turns rather than deadlock."""
    db = open_database(pg_url)
    try:
        t0 = datetime(2025, 3, 1, tzinfo=UTC)
        with db.write() as s:
            cid = repo.ensure_vantage(s, "control", "control")
            agents = [repo.ensure_vantage(s, f"agent-{i}", "agent", "KZ") for i in range(8)]
            controls = bulk.insert_measurements(db, s, cid, "control", [
                bulk.Row(f"c{i}", None, f"https://{i}.test/", t0, {"i": i}) for i in range(60)])
        ids = sorted(controls.values())

        def upload(k: int) -> None:
            rng = random.Random(k)
            for b in range(6):
                order = ids[:]
                rng.shuffle(order)
                rows = [bulk.Row(f"a{k}/{b}/{n}", None, f"https://{n}.test/", t0 + timedelta(minutes=b),
                                 {"n": n}, verdict="tls", reason="r", control_id=c)
                        for n, c in enumerate(order)]
                with db.write() as s:
                    bulk.record(db, s, agents[k], rows, 2, touch_vantage=False)

        with ThreadPoolExecutor(len(agents)) as pool:
            for f in [pool.submit(upload, k) for k in range(len(agents))]:
                f.result()
        with db.read() as s:
            assert all(s.scalars(select(Measurement.keep).where(Measurement.id.in_(ids))))
    finally:
        db.close()


def test_a_uid_given_twice_in_one_batch_is_stored_and_judged_once(any_db: Database) -> None:
    t0 = datetime(2025, 3, 1, tzinfo=UTC)
    with any_db.write() as s:
        vid = repo.ensure_vantage(s, "twice", "ooni", "KZ")
    rows = [bulk.Row(uid="same", target_id=None, url=URLS[0], measured_at=t0 + timedelta(minutes=i),
                     evidence={"i": i}, verdict=v) for i, v in enumerate(["dns", "ok"])]
    with any_db.write() as s:
        rec = bulk.record(any_db, s, vid, rows, 2)
    assert (rec.accepted, rec.duplicates, rec.stored) == (1, 1, {"same"})
    with any_db.read() as s:
        assert [(v.verdict, v.measured_at) for v in s.scalars(select(Verdict))] == [("dns", t0)]
        assert [m.evidence for m in s.scalars(select(Measurement))] == [{"i": 0}]


def test_the_bulk_statements_write_every_column_of_the_models() -> None:
    from blockwatch.storage import models

    for t, model, skip in ((bulk.MEASUREMENTS, models.Measurement, {"id"}),
                           (bulk.VERDICTS, models.Verdict, {"id"}),
                           (bulk.EVENTS, models.Event, {"id"}),
                           (bulk.STATES, models.UrlState, {"url", "vantage_id"})):
        assert set(t.cols) == {c.name for c in model.__table__.columns} - skip
