"""Store what changed, not every repetition: a recorded month of rounds stored with runs and
without them (the same measurements, two local vantages of one database) gives the same answers
to every reader (events, states, latest verdicts, daily rollups, coverage, the export's
measurements and changes) on SQLite and PostgreSQL, with far fewer rows. Also: the observable
outcome, and the migration from the previous schema."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text

from blockwatch import export
from blockwatch import round as rnd
from blockwatch.analysis.fingerprints import default_interception
from blockwatch.analysis.verdict import AnalysisSettings, Judgement
from blockwatch.coverage import vantage_coverage
from blockwatch.probe.records import (
    CertInfo,
    DnsQuery,
    HttpHop,
    HttpResult,
    TlsHandshake,
    WebMeasurement,
)
from blockwatch.site.rollup import rollup_range
from blockwatch.storage import Database, bulk, open_database, repo, runs
from blockwatch.storage.models import DailyRollup, Event, Measurement, UrlState, Vantage, Verdict
from blockwatch.targets import load_targets

URLS = ["https://a.test/", "https://b.test/news", "https://c.test/"]
T0 = datetime(2025, 3, 1, tzinfo=UTC)
DAYS = 30
STEP = timedelta(hours=2)


def scenario(url: str, at: datetime, rng: random.Random) -> str:
    """The month's verdicts: a blocked stretch, a flap, single inconclusives, state changes."""
    day = (at - T0).days
    if url == URLS[1] and 10 <= day < 13:
        return "dns"
    if url == URLS[1] and rng.random() < 0.03:
        return "inconclusive"
    if url == URLS[2] and day == 20:
        return "http-diff" if at.hour % 4 == 0 else "ok"
    if url == URLS[2] and 24 <= day < 26:
        return "tls"
    return "ok"


def measurement(url: str, vantage: str, role: str, at: datetime, verdict: str,
                rng: random.Random) -> WebMeasurement:
    host = url.split("/")[2]
    week = (at - T0).days // 7  # the certificate rotates weekly
    answers = ["192.0.2.1", "192.0.2.2"]
    rng.shuffle(answers)  # round-robin order is not a change
    blocked = role == "vantage" and verdict == "dns"
    dns = [DnsQuery("system", "udp", host, "A", "NXDOMAIN" if blocked else "NOERROR",
                    [] if blocked else answers, ttls=[rng.randint(1, 300)],
                    t_ms=rng.random() * 50)]
    if blocked:
        return WebMeasurement(url=url, vantage=vantage, role=role, uid=uuid.uuid4().hex,
                              measured_at=repo.iso(at) or "", dns=dns)
    tls_fail = role == "vantage" and verdict == "tls"
    tls = [TlsHandshake(a, 443, host, failure="connection_reset" if tls_fail else None,
                        chain=[] if tls_fail else [CertInfo(f"CN={host}", "CN=CA", "", "",
                                                            f"{week:02d}{host}" * 4)],
                        t_ms=rng.random() * 80) for a in sorted(answers)]
    title = "Новости" if not (url == URLS[2] and (at - T0).days >= 15) else "Новости дня"
    http = None if tls_fail else HttpResult(
        hops=[HttpHop(url=url, address=answers[0], status=200)], final_url=url, status=200,
        title=title if verdict != "http-diff" else "Blocked", body_sha256=uuid.uuid4().hex,
        body_length=50_000 + rng.randint(-2000, 2000) if verdict != "http-diff" else 900,
        t_ms=rng.random() * 300)
    return WebMeasurement(url=url, vantage=vantage, role=role, uid=uuid.uuid4().hex,
                          measured_at=repo.iso(at) or "", dns=dns, tls=tls, http=http)


def record_month(db: Database, write_config, monkeypatch) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    cfg = write_config(
        '[probe]\ntargets = ["targets.toml"]\ncanaries = []\nconfirm_after = 2\ninterval = "2h"\n'
        '[control]\nresolvers = ["127.0.0.1:9"]\n'
        '[[vantage]]\nname = "runs"\nkind = "local"\ncountry = "KZ"\n'
        '[[vantage]]\nname = "rows"\nkind = "local"\ncountry = "KZ"\n',
        targets='[[target]]\nname = "A"\nurls = ["https://a.test/", "https://b.test/news"]\n'
                '[[target]]\nname = "C"\nurls = ["https://c.test/"]\n')
    targets = load_targets(cfg.target_files)
    by_url = {u: t for t in targets for u in t.urls}
    ids = rnd._prepare(db, targets, rnd.local_views(cfg))
    views = {v.name: (v, view) for v, view in rnd.local_views(cfg)}
    verdict_of: dict[str, Judgement] = {}
    monkeypatch.setattr(rnd, "judge", lambda m, c, **_: verdict_of[m.uid])
    rng = random.Random(7)
    at = T0
    while at < T0 + timedelta(days=DAYS):
        per_copy: dict[str, list[Any]] = {"runs": [], "rows": []}
        for i, url in enumerate(URLS):
            t = at + timedelta(seconds=i)
            v = scenario(url, t, rng)
            c = measurement(url, rnd.CONTROL, "control", t, v, rng)
            m = measurement(url, "kz", "vantage", t + timedelta(seconds=1), v, rng)
            for name in per_copy:  # the same measurement stored both ways
                cc = WebMeasurement(**{**c.__dict__, "uid": f"{name}/{c.uid}"})
                mm = WebMeasurement(**{**m.__dict__, "uid": f"{name}/{m.uid}", "vantage": name})
                verdict_of[mm.uid] = Judgement(v, v != "ok", f"reason {v}")
                per_copy[name].append((by_url[url], url, cc, [mm]))
        for name, batch in per_copy.items():
            db.compact_runs = name == "runs"
            rnd._store(db, batch, ids, rnd.RoundReport(round_id=uuid.uuid4().hex), 2,
                       AnalysisSettings(), None, [views[name]], default_interception())
        at += STEP
    db.compact_runs = True
    end = T0 + timedelta(days=DAYS)
    rollup_range(db, T0.date(), (end - timedelta(days=1)).date(), now=end)
    return {"cfg": cfg, "ids": ids, "end": end}


def answers(db: Database, cfg: Any, name: str, end: datetime) -> dict[str, Any]:
    with db.read() as s:
        vid = s.scalar(select(Vantage.id).where(Vantage.name == name))
        events = [(e.url, e.state, e.previous, e.confirmed, e.reason, e.started_at, e.detected_at,
                   e.ended_at) for e in s.scalars(select(Event).where(Event.vantage_id == vid)
                                                  .order_by(Event.url, Event.started_at))]
        states = [(st.url, st.state, st.since, st.pending, st.pending_count, st.pending_since,
                   st.last_seen_at) for st in s.scalars(
                       select(UrlState).where(UrlState.vantage_id == vid).order_by(UrlState.url))]
        latest = [{**r.to_json(), "vantage": None} for r in repo.latest_verdicts(s)
                  if r.vantage == name]
        rollups = [(r.target_id, r.day, r.worst, r.minutes_affected, r.measurements)
                   for r in s.scalars(select(DailyRollup).where(DailyRollup.vantage_id == vid)
                                      .order_by(DailyRollup.target_id, DailyRollup.day))]
        cov = next(c for c in vantage_coverage(s, cfg, end) if c.name == name)
        coverage = {**cov.__dict__, "name": None}
        verdicts = s.scalar(select(func.sum(1 + Verdict.repeats)).where(Verdict.vantage_id == vid))
    measured: dict[str, int] = {}
    changes: set[tuple[str, str, str | None]] = set()
    for target in ("A", "C"):
        prev: dict[str, str | None] = {}
        for rec in export.records(db, target, None, None, reveal_agents=True):
            if rec["vantage"] != name:
                continue
            measured[rec["url"]] = measured.get(rec["url"], 0) + 1 + rec.get("repeats", 0)
            if rec["verdict"] != prev.get(rec["url"], "-"):
                changes.add((rec["url"], rec["measured_at"], rec["verdict"]))
            prev[rec["url"]] = rec["verdict"]
    return {"events": events, "states": states, "latest": latest, "rollups": rollups,
            "coverage": coverage, "verdicts": verdicts, "measured": measured, "changes": changes}


def test_a_month_with_runs_answers_as_without(any_db: Database, write_config, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    got = record_month(any_db, write_config, monkeypatch)
    a = answers(any_db, got["cfg"], "runs", got["end"])
    b = answers(any_db, got["cfg"], "rows", got["end"])
    for part in a:
        assert a[part] == b[part], part
    assert len(a["events"]) >= 6 and a["verdicts"] == 3 * 12 * DAYS
    with any_db.read() as s:
        rows = dict(s.execute(select(Vantage.name, func.count()).join(
            Measurement, Measurement.vantage_id == Vantage.id).group_by(Vantage.name)).all())
        kept_controls = s.scalar(select(func.count()).select_from(Measurement).where(
            Measurement.role == "control", Measurement.uid.startswith("runs/")))
        # every control a stored verdict names is there (an anomaly's, a change's, a sample's)
        dangling = s.scalar(select(func.count()).select_from(Verdict).join(
            Vantage, Vantage.id == Verdict.vantage_id).outerjoin(
            Measurement, Measurement.id == Verdict.control_id).where(
            Vantage.name == "runs", Measurement.id.is_(None)))
    assert rows["rows"] == 3 * 12 * DAYS
    assert rows["runs"] < rows["rows"] / 4  # a full row a day, per change and per certificate
    assert kept_controls < rows["rows"] / 4 and dangling == 0


def test_the_observable_outcome_ignores_timings_and_order_but_not_changes() -> None:
    rng = random.Random(1)
    at = T0 + timedelta(hours=1)
    one = measurement(URLS[0], "kz", "vantage", at, "ok", rng).to_json()
    two = measurement(URLS[0], "kz", "vantage", at + STEP, "ok", rng).to_json()
    o1, o2 = runs.outcome(one, "ok"), runs.outcome(two, "ok")
    assert o1 is not None and o2 is not None and o1.key == o2.key
    assert runs.bodies_alike(o1.body_length, o2.body_length)
    assert runs.outcome(one, "dns") != o1  # another verdict
    rotated = measurement(URLS[0], "kz", "vantage", at + timedelta(days=7), "ok", rng).to_json()
    assert runs.outcome(rotated, "ok").key != o1.key  # type: ignore[union-attr]
    assert not runs.bodies_alike(50_000, 900)
    assert runs.outcome({"test_keys": {}}, "ok") is None  # not ours (OONI): never compacted
    run = {"outcome": o1.key, "body_length": o1.body_length, "started_at": at, "last_at": at}
    assert runs.extends(run, o2, at + STEP)
    assert not runs.extends(run, o2, at)  # not later than the run
    assert not runs.extends(run, o2, datetime(2025, 3, 2, tzinfo=UTC))  # a new day: a sample


def test_upgrade_from_the_previous_schema_keeps_rows_and_compacts_after(any_db_url: str) -> None:
    from alembic import command

    from blockwatch.storage.db import _alembic_config, current_revision, head_revision, make_engine

    engine = make_engine(any_db_url)
    command.upgrade(_alembic_config(engine), "0003")
    naive = T0.replace(tzinfo=None)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO vantages (name, kind, country, asn, created_at)"
                          " VALUES ('vps', 'local', '', '', :t)"), {"t": naive})
        vid = conn.execute(text("SELECT id FROM vantages")).scalar()
        for i in range(3):
            conn.execute(text(
                "INSERT INTO measurements (uid, vantage_id, url, role, measured_at, evidence,"
                " evidence_sha256, keep) VALUES (:u, :v, 'https://a.test/', 'vantage', :t, :e,"
                " 'x', false)"), {"u": f"old{i}", "v": vid, "t": naive + timedelta(hours=i),
                                  "e": '{"dns": []}'})
    engine.dispose()
    db = open_database(any_db_url)
    try:
        assert current_revision(db.engine) == head_revision()  # 0004 (runs) and any after
        with db.read() as s:
            old = s.scalars(select(Measurement).order_by(Measurement.id)).all()
            assert [(m.uid, m.repeats, m.repeated_until) for m in old] == [
                ("old0", 0, None), ("old1", 0, None), ("old2", 0, None)]
        rng = random.Random(3)
        for h in (5, 6, 7):
            m = measurement(URLS[0], "vps", "vantage", T0 + timedelta(hours=h), "ok", rng)
            with db.write() as s:
                bulk.record(db, s, vid, [bulk.Row(m.uid, None, URLS[0], T0 + timedelta(hours=h),
                                                  m.to_json(), verdict="ok")], 2)
        with db.read() as s:
            new = s.scalars(select(Measurement).where(Measurement.uid.not_like("old%"))).all()
            # the first opens a run, the second confirms the state (an event: whole), the third
            # repeats the second
            assert [(m.repeats, m.repeated_until) for m in new] == [
                (0, None), (1, T0 + timedelta(hours=7))]
    finally:
        db.close()


def test_a_redelivered_repetition_is_a_duplicate_and_a_new_day_a_full_sample(any_db: Database) -> None:
    with any_db.write() as s:
        vid = repo.ensure_vantage(s, "agent", "agent", "KZ")
    rng = random.Random(5)
    times = [T0 + timedelta(hours=20 + h) for h in range(8)]  # crosses midnight
    rows = []
    for at in times:
        m = measurement(URLS[0], "agent", "vantage", at, "ok", rng)
        rows.append(bulk.Row(m.uid, None, URLS[0], at, m.to_json(), verdict="ok"))
    with any_db.write() as s:
        rec = bulk.record(any_db, s, vid, rows, 2)
    assert (rec.accepted, rec.duplicates) == (8, 0)
    with any_db.write() as s:
        again = bulk.record(any_db, s, vid, rows, 2)
    assert (again.accepted, again.duplicates) == (0, 8)
    with any_db.read() as s:
        got = [(m.measured_at, m.repeats, m.repeated_until) for m in s.scalars(
            select(Measurement).order_by(Measurement.measured_at))]
        vs = [(v.measured_at, v.repeats) for v in s.scalars(select(Verdict).order_by(Verdict.id))]
    # the first, the one that confirms the state (an event) and its repetitions; after
    # midnight a full sample and its repetitions
    assert got == [(times[0], 0, None), (times[1], 2, times[3]), (times[4], 3, times[7])]
    assert vs == [(times[0], 0), (times[1], 2), (times[4], 3)]
    assert date(2025, 3, 2) == times[4].date()


class Killed(Exception):
    pass


def test_history_stored_without_runs_is_compacted_in_place_resumably(any_db: Database, write_config,  # type: ignore[no-untyped-def]
                                                                     monkeypatch) -> None:
    from blockwatch.storage.convert import CURSORS, compact_history

    got = record_month(any_db, write_config, monkeypatch)
    before = answers(any_db, got["cfg"], "rows", got["end"])
    with any_db.read() as s:
        rows_before = dict(s.execute(select(Vantage.name, func.count()).join(
            Measurement, Measurement.vantage_id == Vantage.id).group_by(Vantage.name)).all())

    def kill(n: int) -> None:
        if n == 2:
            raise Killed  # as if the process died after its second transaction

    try:
        compact_history(any_db, batch=1, after_batch=kill)
    except Killed:
        pass
    with any_db.read() as s:
        assert repo.get_kv(s, CURSORS["vantage"]) is not None  # where it stopped
    done = compact_history(any_db, batch=1)
    assert done.folded > 0
    after = answers(any_db, got["cfg"], "rows", got["end"])
    for part in before:
        assert after[part] == before[part], part
    with any_db.read() as s:
        rows_after = dict(s.execute(select(Vantage.name, func.count()).join(
            Measurement, Measurement.vantage_id == Vantage.id).group_by(Vantage.name)).all())
        assert repo.get_kv(s, CURSORS["vantage"]) is None
    assert rows_after["rows"] < rows_before["rows"] / 4
    # the stored runs were already compact: nothing of theirs folds again
    assert rows_after["runs"] == rows_before["runs"]
    # a second pass finds nothing more
    assert compact_history(any_db).folded == 0
