"""Content-addressed evidence (storage/evidence.py): the evidence read back is the text that was
hashed, byte for byte, for arbitrary evidence (Hypothesis) and for every recorded measurement of
the case table stored on SQLite and PostgreSQL; repeated pieces are stored once; retention
deletes only pieces no row refers to; an existing database converts in place, resumably."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text

from blockwatch import export, retention
from blockwatch.probe.records import (
    CertInfo,
    DnsQuery,
    HttpHop,
    HttpResult,
    TlsHandshake,
    WebMeasurement,
)
from blockwatch.storage import Database, bulk, open_database, repo
from blockwatch.storage import evidence as E
from blockwatch.storage.models import EvidencePiece, Measurement, Target
from blockwatch.textsafe import canonical_json, storable_evidence

CASES = Path(__file__).parent / "cases"
T0 = datetime(2025, 3, 1, tzinfo=UTC)


def recorded() -> list[dict[str, Any]]:
    """Every measurement of the golden case table (stored evidence JSON as probes write it)."""
    out = []
    for f in sorted(CASES.glob("*/*.json")):
        if f.name in ("vantage.json", "control.json"):
            data = json.loads(f.read_text(encoding="utf-8"))
            if data is not None:
                out.append(data)
    return out


def test_the_dictionary_is_frozen() -> None:
    # every stored row needs the very bytes it was compressed against: a new dictionary is a
    # new format byte beside this one, never an edit of it
    assert hashlib.sha256(E._DICT_TEXT).hexdigest() == (
        "6bb72e5e483280ba35413ae55f31c34a88b997b5dc5855daa174544036a57af2")


def _text(data: Any) -> str:
    return storable_evidence(data)[1]


def test_recorded_measurements_split_and_join_exactly() -> None:
    cut = 0
    for data in recorded():
        t = _text(data)
        sp = E.split(t)
        pieces = {p.sha256: p.text for p in sp.pieces}
        assert E.join(sp.blob, sp.refs, pieces) == t
        for p in sp.pieces:
            assert hashlib.sha256(p.text.encode()).hexdigest() == p.sha256
            assert E.unpack(E.pack(p.text)) == p.text
        cut += len(sp.pieces)
    assert cut > 50  # chains, header sets and answer sets were cut out


_any_text = st.text(st.characters(codec="utf-8"), max_size=30)


@st.composite
def measurements(draw: Any) -> dict[str, Any]:
    host = draw(st.sampled_from(["a.test", "b.test"]))
    answers = draw(st.lists(st.sampled_from(["192.0.2.1", "192.0.2.2", "2001:db8::1",
                                             "198.51.100.77"]), max_size=5))
    chain = [CertInfo(draw(_any_text), draw(_any_text), "", "", draw(st.text("0123456789abcdef",
                                                                               max_size=64)),
                      draw(st.lists(_any_text, max_size=3)))
             for _ in range(draw(st.integers(0, 3)))]
    headers = draw(st.dictionaries(_any_text, _any_text, max_size=6))
    m = WebMeasurement(
        url=f"https://{host}/", vantage="v", role="vantage", measured_at="2025-03-01T00:00:00Z",
        uid=draw(_any_text),
        dns=[DnsQuery("system", "udp", host, "A", "NOERROR", answers,
                      t_ms=draw(st.floats(allow_nan=False, allow_infinity=False)))],
        tls=[TlsHandshake("192.0.2.1", 443, host, chain=chain)] * draw(st.integers(0, 2)),
        http=draw(st.sampled_from([None, HttpResult(
            hops=[HttpHop(f"https://{host}/", headers=[[k, v] for k, v in headers.items()])],
            headers=headers, title=draw(_any_text), body_length=draw(st.integers(0, 2**53)))])))
    data = m.to_json()
    if draw(st.booleans()):  # a field of a newer agent, anywhere
        data[draw(_any_text)] = draw(st.recursive(
            st.none() | st.booleans() | st.integers() | _any_text,
            lambda c: st.lists(c, max_size=3) | st.dictionaries(_any_text, c, max_size=3),
            max_leaves=8))
    return data


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(measurements())
def test_any_evidence_joins_back_to_its_hashed_text(data: dict[str, Any]) -> None:
    data, t = storable_evidence(data)
    sp = E.split(t)
    assert E.join(sp.blob, sp.refs, {p.sha256: p.text for p in sp.pieces}) == t
    for p in sp.pieces:  # each piece is the canonical JSON of a value of the evidence
        assert canonical_json(json.loads(p.text)) == p.text



@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.characters(codec=None), max_size=40)
       | st.builds(lambda a, b, c: a + b + c, st.text(max_size=10),
                   st.sampled_from(["\\u", "\\b", "\\f", "\\n", "\\", "NaN", "Infinity", "Na",
                                    "\x7f", "\x9f", "\ud800", "\ufffe", "\uffff", "\u00e9"]),
                   st.text(max_size=10)))
def test_the_quick_suspect_check_is_the_regular_expressions(text: str) -> None:
    from blockwatch.textsafe import _JSON_SUSPECT, _json_suspect

    assert _json_suspect(text) == (_JSON_SUSPECT.search(text) is not None)
    assert _json_suspect(json.dumps(text, ensure_ascii=False)) == \
        (_JSON_SUSPECT.search(json.dumps(text, ensure_ascii=False)) is not None)

def _store(db: Database, items: list[dict[str, Any]], vantage: str = "vps",
           verdict: str = "ok") -> None:
    with db.write() as s:
        vid = repo.ensure_vantage(s, vantage, "local")
        rows = []
        for i, data in enumerate(items):
            data = {**data, "uid": uuid.uuid4().hex}
            rows.append(bulk.Row(data["uid"], None, f"{data.get('url', 'x')}#{i}",
                                 T0 + timedelta(minutes=i), data, verdict=verdict))
        bulk.record(db, s, vid, rows, 2)


def test_recorded_measurements_stored_read_back_byte_for_byte(any_db: Database) -> None:
    items = recorded()
    _store(any_db, items)
    _store(any_db, items, vantage="other")  # the same pieces again: stored once
    with any_db.read() as s:
        rows = s.execute(select(Measurement.evidence_sha256, *E.columns())).all()
        got = E.texts(s, [r[1:] for r in rows])
        assert len(rows) == 2 * len(items)
        for (sha, ev_json, z, _), t in zip(rows, got, strict=True):
            assert z is not None and ev_json is None  # stored as pieces, nothing whole
            assert hashlib.sha256(t.encode("utf-8")).hexdigest() == sha
        refs = [h for r in rows for h in E.ref_hashes(r[3])]
        pieces = s.scalar(select(func.count()).select_from(EvidencePiece))
        assert pieces == len(set(refs)) and len(refs) >= 2 * pieces
        # the ORM's property reads through the same function
        m = s.scalars(select(Measurement).where(Measurement.evidence_refs.is_not(None))
                      .limit(1)).one()
        assert repo.evidence_hash(m.evidence) == m.evidence_sha256


def _web(i: int, at: datetime, week: int, blocked: bool = False) -> WebMeasurement:
    host = f"site{i}.test"
    chain = [CertInfo(f"CN={host}", "CN=R11", "", "", f"{i:02d}{week:062d}", [host]),
             CertInfo("CN=R11", "CN=Root", "", "", "ab" * 32, [])]
    headers = {"server": "nginx", "content-type": "text/html; charset=utf-8", "x-n": str(i)}
    return WebMeasurement(
        url=f"https://{host}/", vantage="vps", role="vantage", uid=uuid.uuid4().hex,
        measured_at=repo.iso(at) or "",
        dns=[DnsQuery("system", "udp", host, "A", "NOERROR", ["192.0.2.1", "192.0.2.2",
                                                                "192.0.2.3"])],
        tls=[TlsHandshake("192.0.2.1", 443, host, failure="connection_reset" if blocked else None,
                          chain=[] if blocked else chain)],
        http=None if blocked else HttpResult(
            hops=[HttpHop(f"https://{host}/", "192.0.2.1", 200, [[k, v] for k, v in headers.items()])],
            final_url=f"https://{host}/", status=200, headers=headers, title=host,
            body_length=1000 + i))


def test_retention_deletes_only_unreferenced_pieces(any_db: Database) -> None:
    with any_db.write() as s:
        vid = repo.ensure_vantage(s, "vps", "local")
    # site0 blocked on day 0 (kept: an anomaly), others ok; chains rotate weekly, site2's daily
    for day in range(10):
        at = T0 + timedelta(days=day)
        rows = []
        for i in range(3):
            m = _web(i, at, day if i == 2 else day // 7, blocked=(i == 0 and day == 0))
            rows.append(bulk.Row(m.uid, None, m.url, at, m.to_json(),
                                 verdict="tls" if (i == 0 and day == 0) else "ok"))
        with any_db.write() as s:
            bulk.record(any_db, s, vid, rows, 1)
    with any_db.read() as s:
        before = set(s.scalars(select(EvidencePiece.sha256)))
    # everything older than day 8 goes but the kept rows (each URL's first: a state): site2's
    # chains of days 1..7 are unreferenced then, the header and answer sets still used
    retention.prune(any_db, timedelta(days=2), T0 + timedelta(days=10))
    with any_db.read() as s:
        rows = s.execute(select(Measurement.evidence_sha256, *E.columns())).all()
        used = {h for r in rows for h in E.ref_hashes(r[3])}
        after = set(s.scalars(select(EvidencePiece.sha256)))
        assert after == used and after < before  # some went; every one still referenced stayed
        for (sha, *_), t in zip(rows, E.texts(s, [r[1:] for r in rows]), strict=True):
            assert hashlib.sha256(t.encode()).hexdigest() == sha
    # a piece swept away is stored again by the next row that needs it
    gone = before - after
    assert gone
    at = T0 + timedelta(days=11)
    m = _web(2, T0, 3)  # day 3's chain again
    with any_db.write() as s:
        bulk.record(any_db, s, vid, [bulk.Row(m.uid, None, m.url + "?again", at, m.to_json(),
                                              verdict="ok")], 1)
    with any_db.read() as s:
        row = s.execute(select(Measurement.evidence_sha256, *E.columns())
                        .where(Measurement.uid == m.uid)).one()
        assert set(E.ref_hashes(row[3])) & gone
        assert hashlib.sha256(E.texts(s, [row[1:]])[0].encode()).hexdigest() == row[0]


class Killed(Exception):
    pass


def test_a_database_of_the_previous_schema_converts_in_place_resumably(any_db_url: str) -> None:
    from alembic import command

    from blockwatch.storage.convert import CURSORS, compact_history
    from blockwatch.storage.db import _alembic_config, current_revision, head_revision, make_engine

    engine = make_engine(any_db_url)
    command.upgrade(_alembic_config(engine), "0005")
    naive = T0.replace(tzinfo=None)
    items = recorded()[:60]
    expect: dict[str, str] = {}
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO vantages (name, kind, country, asn, created_at)"
                          " VALUES ('vps', 'local', '', '', :t)"), {"t": naive})
        vid = conn.execute(text("SELECT id FROM vantages")).scalar()
        for i, data in enumerate(items):
            t = _text(data)
            expect[f"old{i}"] = hashlib.sha256(t.encode()).hexdigest()
            conn.execute(text(
                "INSERT INTO measurements (uid, vantage_id, url, role, measured_at, evidence,"
                " evidence_sha256, keep, repeats) VALUES (:u, :v, :url, 'vantage', :t, :e, :h,"
                " :k, 0)"), {"u": f"old{i}", "v": vid, "url": f"https://x.test/{i}",
                             "t": naive + timedelta(minutes=i), "e": t, "h": expect[f"old{i}"],
                             "k": i % 7 == 0})
    engine.dispose()
    db = open_database(any_db_url)
    try:
        assert current_revision(db.engine) == head_revision()

        def read() -> dict[str, tuple[str, bool]]:
            with db.read() as s:
                rows = s.execute(select(Measurement.uid, Measurement.evidence_sha256,
                                        *E.columns())).all()
                return {r[0]: (hashlib.sha256(t.encode()).hexdigest(), r[3] is not None)
                        for r, t in zip(rows, E.texts(s, [r[2:] for r in rows]), strict=True)}

        assert {u: h for u, (h, _) in read().items()} == expect  # read whole, as before
        import blockwatch.storage.convert as conv

        conv.PIECES_BATCH = 7

        def kill(n: int) -> None:
            if n == 3:
                raise Killed

        try:
            compact_history(db, after_batch=kill)
        except Killed:
            pass
        mid = read()
        assert 0 < sum(p for _, p in mid.values()) < len(items)  # stopped half way
        with db.read() as s:
            assert repo.get_kv(s, CURSORS["pieces"]) is not None
        done = compact_history(db)
        assert done.pieced + sum(p for _, p in mid.values()) == len(items)
        after = read()
        assert {u: h for u, (h, _) in after.items()} == expect
        assert all(p for _, p in after.values())
        with db.read() as s:
            assert s.scalar(select(func.count()).select_from(EvidencePiece)) > 0
            # kept rows were linked into the chain
            assert s.scalar(select(func.count()).where(Measurement.chain_seq.is_not(None))) == \
                sum(1 for i in range(len(items)) if i % 7 == 0)
        # new rows after the conversion share the converted rows' pieces
        _store(db, items[:5])
        assert {u: h for u, (h, _) in read().items() if u in expect} == expect
    finally:
        conv.PIECES_BATCH = 500
        db.close()


def test_export_prints_the_stored_evidence(any_db: Database, tmp_path: Path) -> None:
    items = recorded()[:40]
    with any_db.write() as s:
        t = Target(name="T", urls=[], aliases=[])
        s.add(t)
        s.flush()
        tid = t.id
        vid = repo.ensure_vantage(s, "vps", "local")
        bulk.record(any_db, s, vid, [bulk.Row(uuid.uuid4().hex, tid, f"https://x.test/{i}",
                                              T0 + timedelta(minutes=i), d, verdict="ok")
                                     for i, d in enumerate(items)], 2)
    recs = list(export.records(any_db, "T", None, None))
    assert len(recs) == len(items)
    for r in recs:
        assert hashlib.sha256(canonical_json(r["evidence"]).encode()).hexdigest() == \
            r["evidence_sha256"]


def test_a_sweep_waits_for_writers_that_found_pieces_stored(pg_url: str) -> None:
    """PostgreSQL: a writer that found a piece stored holds the pieces' lock shared until it
    commits, so retention's sweep (which takes it alone) cannot delete that piece under it."""
    db = open_database(pg_url)
    try:
        items = [d for d in recorded() if E.split(_text(d)).pieces][:5]  # with pieces
        _store(db, items)
        with db.write() as s:  # a writer between finding the pieces stored and committing
            writer = s.execute(text("SELECT pg_backend_pid()")).scalar_one()
            vid = repo.ensure_vantage(s, "vps", "local")
            data = {**items[0], "uid": "again"}
            bulk.record(db, s, vid, [bulk.Row("again", None, "https://x.test/again", T0, data,
                                              verdict="ok")], 2)
            with db.engine.connect() as other:  # retention's session, meanwhile
                got = other.execute(text("SELECT pg_try_advisory_xact_lock(:k)"),
                                    {"k": bulk.PIECES_LOCK}).scalar()
                assert got is False  # the sweep would wait here
                assert other.execute(text(  # for this writer's share of it
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = :p"
                    " AND mode = 'ShareLock' AND granted AND objid = :k % 4294967296"),
                    {"p": writer, "k": bulk.PIECES_LOCK}).scalar() == 1
                other.rollback()
        assert retention.sweep_pieces(db) == 0  # every piece is referred to
        with db.engine.connect() as other:  # committed: the writer holds it no more (other
            # tests on the same database may take it meanwhile: only this writer's is asked)
            assert other.execute(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                                      " AND pid = :p"), {"p": writer}).scalar() == 0
    finally:
        db.close()
