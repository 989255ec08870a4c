"""A round's bulk store (round._store → storage/bulk.py) must leave exactly the rows the
reference path leaves (`repo.add_measurement` + `repo.record_verdict` per measurement, the
control kept when the verdict is not ok or made an event): verdicts, states, events, keep flags,
evidence and its hash, vantages' last_seen_at, and the same Results and new events (on SQLite and
PostgreSQL)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from blockwatch import round as rnd
from blockwatch.analysis.fingerprints import default_interception
from blockwatch.analysis.verdict import AnalysisSettings, Judgement
from blockwatch.probe.records import HttpHop, HttpResult, WebMeasurement
from blockwatch.storage import Database, repo
from blockwatch.storage.models import Event, Measurement, UrlState, Vantage, Verdict
from blockwatch.targets import load_targets

# per round: the verdict of vantage a and of vantage b at every URL index
SEQ_A = ["ok", "ok", "tls", "inconclusive", "tls", "ok", "dns", "dns", "dns", "ok", "tls", "ok", "ok"]
SEQ_B = ["dns", "dns", "ok", "ok", "ok", "http-diff", "http-diff", "ok", "tls", "tls", "ok", "ok", "ok"]
URLS = ["https://a.test/", "https://b.test/news", "https://c.test/"]


def _m(url: str, vantage: str, role: str, at: datetime, blocked: bool) -> WebMeasurement:
    http = None if blocked else HttpResult(
        hops=[HttpHop(url=url, address="192.0.2.1", status=200, headers=[["server", "nginx"]])],
        final_url=url, status=200, headers={"server": "nginx"}, title="Новости «Казахстана»",
        body_length=1234, body_sha256="ab" * 32)
    return WebMeasurement(url=url, vantage=vantage, role=role,
                          measured_at=at.isoformat().replace("+00:00", "Z"), uid=uuid.uuid4().hex,
                          http=http)


def _rows(db: Database, vid: int) -> dict[str, Any]:
    with db.read() as s:
        ms = {m.id: m for m in s.scalars(select(Measurement))}
        evs = {e.id: e for e in s.scalars(select(Event))}
        vs = {v.id: v for v in s.scalars(select(Verdict))}
        states = [(st.url, st.target_id, st.state, st.since, st.pending, st.pending_count,
                   st.pending_since, st.last_seen_at,
                   (evs[st.event_id].state, evs[st.event_id].started_at) if st.event_id else None,
                   vs[st.last_verdict_id].measured_at if st.last_verdict_id else None)
                  for st in s.scalars(select(UrlState).where(UrlState.vantage_id == vid)
                                      .order_by(UrlState.url))]
        events = sorted(((e.url, e.target_id, e.previous, e.state, e.confirmed, e.reason,
                         e.started_at, e.detected_at, e.ended_at,
                         vs[e.verdict_id].measured_at if e.verdict_id else None)
                        for e in evs.values() if e.vantage_id == vid), key=lambda e: (e[0], e[6], e[7]))
        verdicts = []
        controls = []
        for v in vs.values():
            if v.vantage_id != vid:
                continue
            c = ms[v.control_id] if v.control_id else None
            verdicts.append((v.url, v.target_id, v.verdict, v.confirmed, v.reason, v.measured_at))
            if c is not None:
                controls.append((c.url, c.measured_at, c.role, c.keep, c.failure, c.evidence,
                                 c.evidence_sha256))
        measurements = sorted(((m.url, m.measured_at, m.role, m.target_id, m.keep, m.failure,
                                m.evidence["uid"], m.evidence_sha256)
                               for m in ms.values() if m.vantage_id == vid), key=lambda m: (m[0], m[1]))
        for m in ms.values():
            assert isinstance(m.evidence, dict)
            assert m.evidence_sha256 == repo.evidence_hash(m.evidence)
        last_seen = s.get(Vantage, vid).last_seen_at  # type: ignore[union-attr]
    return {"states": states, "events": events, "verdicts": sorted(verdicts, key=lambda v: (v[0], v[5])),
            "controls": sorted(controls, key=lambda c: (c[0], c[1])), "measurements": measurements,
            "last_seen": last_seen}


@pytest.mark.parametrize("batch_sizes", [[1, 2], [3]])
def test_round_store_matches_record_verdict(any_db: Database, write_config, monkeypatch,  # type: ignore[no-untyped-def]
                                            batch_sizes: list[int]) -> None:
    cfg = write_config(
        '[probe]\ntargets = ["targets.toml"]\ncanaries = []\nconfirm_after = 2\n'
        '[control]\nresolvers = ["127.0.0.1:9"]\n'
        '[[vantage]]\nname = "kz-a"\nkind = "local"\ncountry = "KZ"\n'
        '[[vantage]]\nname = "kz-b"\nkind = "local"\ncountry = "KZ"\n',
        targets='[[target]]\nname = "A"\nurls = ["https://a.test/", "https://b.test/news"]\n'
                '[[target]]\nname = "C"\nurls = ["https://c.test/"]\n')
    targets = load_targets(cfg.target_files)
    by_url = {u: t for t in targets for u in t.urls}
    any_db.compact_runs = False  # row for row against the reference (runs: test_runs.py)
    ids = rnd._prepare(any_db, targets, rnd.local_views(cfg))
    locals_ = rnd.local_views(cfg)
    with any_db.write() as s:
        ref = {"a": repo.ensure_vantage(s, "ref-a", "local", "KZ"),
               "b": repo.ensure_vantage(s, "ref-b", "local", "KZ")}
        ref_control = repo.ensure_vantage(s, "ref-control", "control")
    verdict_of: dict[str, Judgement] = {}
    monkeypatch.setattr(rnd, "judge", lambda m, c, **_: verdict_of[m.uid])

    t0 = datetime(2025, 3, 1, tzinfo=UTC)
    got_results: list[rnd.Result] = []
    got_events: list[repo.NewEvent] = []
    want_results: list[tuple[Any, ...]] = []
    want_events: list[tuple[Any, ...]] = []
    for r, (va, vb) in enumerate(zip(SEQ_A, SEQ_B, strict=True)):
        report = rnd.RoundReport(round_id=f"round-{r}")
        batch = []
        for i, url in enumerate(URLS):
            # later URLs measured earlier: the store must not rely on batch order being time order
            at = t0 + timedelta(minutes=15 * r, seconds=10 - i)
            verdicts = [va if i != 1 else vb, vb if i != 2 else va]  # URLs differ in history
            c = _m(url, rnd.CONTROL, "control", at, False)
            vs = [_m(url, f"kz-{k}", "vantage", at + timedelta(seconds=1), v != "ok")
                  for k, v in zip("ab", verdicts, strict=True)]
            for m, v in zip(vs, verdicts, strict=True):
                verdict_of[m.uid] = Judgement(v, v == "tls", f"reason {v}")
            batch.append((by_url[url], url, c, vs))
        # the round's bulk store, in the writer's batches
        lo = 0
        for size in batch_sizes:
            results, events = rnd._store(any_db, batch[lo:lo + size], ids, report, 2,
                                         AnalysisSettings(), None, locals_, default_interception())
            got_results += results
            got_events += events
            lo += size
        # the reference: one record_verdict per measurement
        with any_db.write() as s:
            tids = ids["targets"]
            for t, url, c, vs in batch:
                cm = repo.add_measurement(s, uid=f"ref/{c.uid}", target_id=tids[t.name],
                                          vantage_id=ref_control, url=url, role="control",
                                          measured_at=repo.parse_time(c.measured_at),
                                          evidence=c.to_json(), failure=c.failure(),
                                          round_id=report.round_id)
                for k, m in zip("ab", vs, strict=True):
                    j = verdict_of[m.uid]
                    mm = repo.add_measurement(s, uid=f"ref/{m.uid}", target_id=tids[t.name],
                                              vantage_id=ref[k], url=url, role="vantage",
                                              measured_at=repo.parse_time(m.measured_at),
                                              evidence=m.to_json(), failure=m.failure(),
                                              round_id=report.round_id)
                    _, new = repo.record_verdict(s, measurement=mm, control_id=cm.id,
                                                 verdict=j.verdict, confirmed=j.confirmed,
                                                 reason=j.reason, confirm_after=2)
                    if j.verdict != "ok" or new is not None:
                        cm.keep = True
                    want_results.append((t.name, url, k, j.verdict, j.confirmed, j.reason,
                                         m.measured_at,
                                         f"{new.previous or 'new'} -> {new.state}" if new else None))
                    if new is not None:
                        want_events.append((new.url, k, new.target_id, new.state, new.previous))

    assert [(x.target, x.url, x.vantage[-1], x.verdict, x.confirmed, x.reason, x.measured_at,
             x.event) for x in got_results] == want_results
    assert [(e.url, "a" if e.vantage_id == ids["vantages"]["kz-a"] else "b", e.target_id, e.state,
             e.previous) for e in got_events] == want_events
    assert len(want_events) > 10
    for k in "ab":
        want, got = _rows(any_db, ref[k]), _rows(any_db, ids["vantages"][f"kz-{k}"])
        for part in want:
            assert got[part] == want[part], (k, part)
        assert any(c[3] for c in got["controls"]) and not all(c[3] for c in got["controls"])
