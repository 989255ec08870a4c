"""The bulk store: measurements, their verdicts and the event state machine of many measurements
of one vantage in a handful of statements per transaction: the one store path of judged
batches. Probe rounds (local and resolver vantages), the collector and the OONI import store
through it; the rule for late measurements is here, and the column lists are the models'.

It mirrors `repo.record_verdict` row for row (tests/test_collector_store.py and
tests/test_round_store.py hold the two to the same results); the per-row ORM path costs a
unit-of-work flush and ~3 round trips per measurement.

The statements go to the session's DB-API connection (inside its transaction) as plain SQL:
SQLAlchemy's compile-cache lookup, execution context and per-value bind processing cost more CPU
than SQLite took to run the statements (a round's writer stores ~7 URLs per transaction). On
SQLite the values are converted here as models.UTCDateTime stores them (naive UTC text); on
PostgreSQL each batch goes as one JSON parameter (jsonb_to_recordset) of a short statement that
psycopg prepares once, instead of a multi-row VALUES it would parse anew on every call.

Evidence is serialised once: its canonical JSON (repo.canonical_json) is hashed, then stored as
content-addressed pieces and a compressed rest (storage/evidence.py): the pieces a batch needs
that are not stored yet are inserted first, in one statement. Every text that is stored passes through
textsafe here (evidence, URL, reason, round id): a NUL in a page title is stored as the escape
`\u0000` on both databases instead of failing PostgreSQL's write of the whole batch."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Boolean, Table, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from blockwatch.analysis import events as ev
from blockwatch.storage import evidence as evidence_mod
from blockwatch.storage import models
from blockwatch.storage import runs as runs_mod
from blockwatch.storage.db import Database
from blockwatch.storage.repo import NewEvent, utcnow
from blockwatch.textsafe import storable, storable_data, storable_evidence


@dataclass(slots=True)
class Row:
    """One measurement to store; a vantage's also carries its verdict (for `record`)."""

    uid: str
    target_id: int | None
    url: str
    measured_at: datetime
    evidence: dict[str, Any] | None = None  # the evidence, or
    evidence_text: str | None = None  # its canonical JSON (repo.canonical_json), when at hand
    failure: str | None = None
    round_id: str | None = None
    verdict: str = ""
    confirmed: bool = False
    reason: str = ""
    control_id: int | None = None  # the control measurement the verdict compared against
    outcome: Any = None  # runs.Outcome, once computed (a round plans a row, then stores it)
    reason_keys: dict[str, Any] | None = None  # Judgement.keys(): the reason in any language


@dataclass
class Recorded:
    accepted: int  # stored now
    duplicates: int  # uids already stored (re-delivery): skipped
    events: list[NewEvent] = field(default_factory=list)  # in the order they were made
    event_of: dict[str, NewEvent] = field(default_factory=dict)  # uid -> the event its verdict made
    stored: set[str] = field(default_factory=set)  # the uids stored now


def encode(row: Row) -> tuple[str, str]:
    """The stored evidence text (storable) and its SHA-256."""
    _, t = storable_evidence(row.evidence, row.evidence_text)
    return t, hashlib.sha256(t.encode("utf-8")).hexdigest()


# PostgreSQL: writers that refer to pieces take this advisory lock shared, retention's sweep of
# unreferenced pieces takes it alone (a piece found stored must still be there at commit)
PIECES_LOCK = 0x62775063  # "bwPc"


def _encoded(rows: Sequence[Row], pieces: bool
             ) -> tuple[list[tuple[str, str, evidence_mod.Split | None]], dict[str, evidence_mod.Piece]]:
    """Per row (text, sha256, its split or None when stored whole), and the batch's pieces."""
    out: list[tuple[str, str, evidence_mod.Split | None]] = []
    need: dict[str, evidence_mod.Piece] = {}
    for r in rows:
        text, sha = encode(r)
        if not pieces:
            out.append((text, sha, None))
            continue
        sp = evidence_mod.split(text)
        for p in sp.pieces:
            need.setdefault(p.sha256, p)
        out.append((text, sha, sp))
    return out, need


_TEXT_FIELDS = ("uid", "url", "failure", "round_id", "reason")


FAILURE_MAX = 64  # measurements.failure: a summary (the evidence keeps the whole text)


def storable_rows(rows: Sequence[Row]) -> list[Row]:
    """The rows with their text fields storable (a row that needs nothing is the same object)."""
    out = []
    for r in rows:
        fix: dict[str, Any] = {}
        for f in _TEXT_FIELDS:
            v = getattr(r, f)
            if v and storable(v) is not v:
                fix[f] = storable(v)
        failure = fix.get("failure", r.failure)
        if failure is not None and len(failure) > FAILURE_MAX:
            fix["failure"] = failure[:FAILURE_MAX]
        out.append(dataclasses.replace(r, **fix) if fix else r)
    return out


def insert_measurements(db: Database, s: Session, vantage_id: int, role: str, rows: Sequence[Row],
                        keep: Sequence[bool] | None = None) -> dict[str, int]:
    """Insert the rows that are new; returns uid -> id of those (an already stored uid is left
    as it is and missing from the result: a duplicate, not an error)."""
    if not rows:
        return {}
    return _backend(db, s).insert_measurements(vantage_id, role, storable_rows(rows), keep)


def store_pieces(db: Database, s: Session, need: dict[str, evidence_mod.Piece]) -> None:
    """Evidence pieces stored if they are not yet (db compact's conversion; record() does it
    with its rows)."""
    if need:
        _backend(db, s).store_pieces(need)


def known_uids(db: Database, s: Session, uids: list[str]) -> set[str]:
    """The uids among these that are stored."""
    return _backend(db, s).known_uids(uids) if uids else set()


def seen_vantage(db: Database, s: Session, vantage_id: int, at: datetime, asn: str = "") -> None:
    """The vantage's last_seen_at set to `at` (and its ASN, when given): an agent's upload."""
    _backend(db, s).seen_vantage(vantage_id, at, asn)


@dataclass
class _Plan:
    states: dict[str, dict[str, Any]]
    runs: dict[str, Any]
    full: list[Row]  # rows that get their own measurement and verdict
    steps: list[tuple[Row, ev.Transition | None, str, Any]]  # (row, tr, late|full|repeat, head)
    repeats: dict[Any, list[datetime]]  # head -> the times that extend its run
    opened_runs: set[str]  # URLs whose open run changed (saved at the end)


def _plan(be: Any, s: Session, vantage_id: int, rows: Sequence[Row], confirm_after: int,
          compact: bool, now: datetime, known: set[str] | None = None) -> _Plan:
    """Pass 1 of record(), in time order, writing nothing (but the missing state rows that
    PostgreSQL's lock creates): lateness, the state machine, and which rows extend a run. A run
    is named by its head: ("id", (measurement id, verdict id)) when stored before, ("uid", uid)
    when opened now."""
    urls = sorted({r.url for r in rows})
    states = be.lock_states(vantage_id, urls, now)  # first: the lock orders concurrent writers
    runs = be.load_runs(vantage_id, urls) if compact else {}
    stored = be.known_uids([r.uid for r in rows]) if known is None else known
    cand: dict[str, Row] = {}
    for r in rows:  # a uid given twice is stored (and judged) once: the first one
        if r.uid not in stored:
            cand.setdefault(r.uid, r)

    full: list[Row] = []  # rows that get their own measurement and verdict
    steps: list[tuple[Row, ev.Transition | None, str, Any]] = []  # (row, tr, late|full|repeat, head)
    repeats: dict[Any, list[datetime]] = {}  # head -> the times that extend its run
    opened_runs: set[str] = set()  # URLs whose open run changed (saved at the end)
    for r in sorted(cand.values(), key=lambda r: r.measured_at):
        st = states[r.url]
        o = _outcome(r, r.verdict) if compact else None
        run = runs.get(r.url)
        seen = st["last_seen_at"]
        if (seen is not None and r.measured_at <= seen and run is not None and o is not None
                and run["outcome"] == o.key and run["started_at"] <= r.measured_at <= run["last_at"]):
            continue  # the open run with this outcome covers it: stored (as a repetition) before
        if seen is not None and r.measured_at < seen:
            # late: stored as evidence, but it must not rewrite the URL's history; one that an
            # earlier run with its outcome covers was stored (as a repetition) before
            if o is not None and _covered(s, vantage_id, r, o):
                continue
            full.append(r)
            steps.append((r, None, "late", None))
            continue
        cur = ev.UrlState(st["state"], st["since"], st["pending"], st["pending_count"] or 0,
                          st["pending_since"])
        nxt, tr = ev.step(cur, r.verdict, r.measured_at, confirm_after)
        st.update(state=nxt.state, since=nxt.since, pending=nxt.pending,
                  pending_count=nxt.pending_count, pending_since=nxt.pending_since,
                  target_id=r.target_id, updated_at=now)
        st["last_seen_at"] = r.measured_at  # not late: never earlier than what it was
        if tr is None and run is not None and runs_mod.extends(run, o, r.measured_at):
            run["last_at"] = r.measured_at
            repeats.setdefault(run["head"], []).append(r.measured_at)
            steps.append((r, tr, "repeat", run["head"]))
            opened_runs.add(r.url)
            continue
        full.append(r)
        steps.append((r, tr, "full", None))
        if compact:
            opened_runs.add(r.url)
            runs[r.url] = None if o is None else {
                "outcome": o.key, "body_length": o.body_length, "started_at": r.measured_at,
                "last_at": r.measured_at, "head": ("uid", r.uid)}

    return _Plan(states, runs, full, steps, repeats, opened_runs)


def full_uids(db: Database, s: Session, vantage_id: int, rows: Sequence[Row], confirm_after: int,
              now: datetime | None = None) -> set[str]:
    """The uids record() would store whole (the others extend a run or are duplicates), without
    storing anything: a round stores the controls those rows need whole before the rows."""
    if not rows or not db.compact_runs:
        return {r.uid for r in rows}
    p = _plan(_backend(db, s), s, vantage_id, storable_rows(rows), confirm_after, True,
              now or utcnow())
    return {r.uid for r in p.full}


def record(db: Database, s: Session, vantage_id: int, rows: Sequence[Row], confirm_after: int,
           now: datetime | None = None, *, touch_vantage: bool = True,
           compact: bool | None = None, known: set[str] | None = None) -> Recorded:
    """`repo.add_measurement` + `repo.record_verdict` for many measurements of one vantage: the
    measurements (role "vantage"), their verdicts, the (URL, vantage) state machines (stepped in
    time order, whatever order the rows came in; a row older than the newest one already judged
    for its (URL, vantage) is stored with its verdict but steps nothing), events, and the keep
    flags of retention: a measurement and its control are kept when the verdict is not "ok" or
    it made an event.

    With `compact`, a measurement whose observable outcome equals its (URL, vantage)'s open run
    (storage/runs.py: same verdict and evidence but timings, a body alike, the same UTC day)
    and that makes no event extends the run (repeats, repeated_until on the run's measurement
    and verdict) instead of adding rows; it still steps the state machine. A late measurement
    inside the open run with its outcome is a duplicate (a re-delivery of a repetition).

    Safe against concurrent writers of the same uids (the later one counts them as duplicates)
    and of the same (URL, vantage) (its state rows are locked before they are read). With
    `touch_vantage` the vantage's last_seen_at moves up to its newest measurement (the collector
    sets it to the upload's time itself).

    `known`: the uids among the rows that are stored, when the caller read them in this
    transaction under a lock that keeps every other writer of these uids out until it ends (the
    collector: its agent's vantage row); else they are read here, once the state rows are
    locked."""
    now = now or utcnow()
    if not rows:
        return Recorded(0, 0)
    compact = db.compact_runs if compact is None else compact
    rows = storable_rows(rows)
    be = _backend(db, s)
    p = _plan(be, s, vantage_id, rows, confirm_after, compact, now, known)
    states, runs, full, steps, repeats, opened_runs = (
        p.states, p.runs, p.full, p.steps, p.repeats, p.opened_runs)
    out = Recorded(len(steps), len(rows) - len(steps), stored={r.uid for r, *_ in steps})
    if not steps:
        return out
    new_ids = (be.insert_measurements(vantage_id, "vantage", full,
                                      [r.verdict != "ok" for r in full]) if full else {})
    vids = be.insert_verdicts(vantage_id, [(new_ids[r.uid], r) for r in full]) if full else []
    verdict_of = {r.uid: v for r, v in zip(full, vids, strict=True)}

    def ids_of(head: Any) -> tuple[int, int | None]:
        kind, key = head
        if kind == "uid":
            return new_ids[key], verdict_of[key]
        return key  # type: ignore[no-any-return]  (("id", (mid, vid)))

    # pass 2: verdict ids, events, keep flags
    keep_ids: list[int] = []
    new_events: list[dict[str, Any]] = []
    made: list[tuple[Row, ev.Transition]] = []
    opened: dict[str, int] = {}  # URL -> index in new_events of its newest event
    closes: list[tuple[int, datetime]] = []
    for r, tr, kind, head in steps:
        st = states[r.url]
        if kind == "repeat":
            st["last_verdict_id"] = ids_of(head)[1]
            continue
        if r.verdict != "ok" and r.control_id is not None:
            keep_ids.append(r.control_id)  # the control is half of the evidence of an anomaly
        if kind == "late":
            continue
        verdict_id = verdict_of[r.uid]
        st["last_verdict_id"] = verdict_id
        if tr is None:
            continue
        # events are inserted together after the loop (one statement, not one round trip each)
        if r.url in opened:
            new_events[opened[r.url]]["ended_at"] = tr.started_at
        elif st["event_id"] is not None:
            closes.append((st["event_id"], tr.started_at))
        opened[r.url] = len(new_events)
        new_events.append({
            "target_id": r.target_id, "vantage_id": vantage_id, "url": r.url,
            "state": tr.state, "previous": tr.previous, "confirmed": r.confirmed,
            "reason": r.reason, "started_at": tr.started_at, "detected_at": tr.detected_at,
            "ended_at": None, "verdict_id": verdict_id})
        made.append((r, tr))
        if r.verdict == "ok":  # not yet kept for its verdict: kept for the change it made
            keep_ids.append(new_ids[r.uid])
            if r.control_id is not None:
                keep_ids.append(r.control_id)
    if closes:
        be.close_events(closes)
    if new_events:
        eids = be.insert_events(new_events)
        for (r, tr), eid in zip(made, eids, strict=True):
            e = NewEvent(eid, r.target_id, vantage_id, r.url, tr.state, tr.previous)
            out.events.append(e)
            out.event_of[r.uid] = e
        for url, idx in opened.items():
            states[url]["event_id"] = eids[idx]
    be.update_states(vantage_id, states)
    if repeats:
        be.extend_runs([(*ids_of(h), len(ts), max(ts)) for h, ts in repeats.items()])
    if opened_runs:
        be.save_runs(vantage_id, {u: _run_row(runs[u], ids_of) for u in opened_runs})
    if touch_vantage:
        be.touch_vantage(vantage_id, max(r.measured_at for r, *_ in steps))
    if keep_ids:  # last: a control is shared by every agent's upload of its URL, locked briefly
        be.keep(sorted(set(keep_ids)))
    return out


def _run_row(run: dict[str, Any] | None, ids_of: Any) -> dict[str, Any] | None:
    if run is None:
        return None
    mid, vid = ids_of(run["head"])
    return {"measurement_id": mid, "verdict_id": vid, "outcome": run["outcome"],
            "body_length": run["body_length"], "started_at": run["started_at"],
            "last_at": run["last_at"]}


def store_controls(db: Database, s: Session, vantage_id: int, rows: Sequence[Row],
                   needed: Sequence[bool], *, compact: bool | None = None) -> dict[str, int]:
    """A round's control measurements: uid -> the id its verdicts' control_id names. A control
    that no verdict stored whole needs (`needed` False: see full_uids) and whose outcome equals
    its URL's open run at the control extends that run instead of adding a row, and its uid
    names the run's full row (the same observable outcome); the others are stored whole and
    open a run. An already stored uid is left as it is and missing from the result."""
    if not rows:
        return {}
    if not (db.compact_runs if compact is None else compact):
        return insert_measurements(db, s, vantage_id, "control", rows)
    rows = storable_rows(rows)
    be = _backend(db, s)
    runs = be.load_runs(vantage_id, sorted({r.url for r in rows}), lock=True)
    stored = be.known_uids([r.uid for r in rows])
    full: list[Row] = []
    repeated: dict[str, Any] = {}  # uid -> head of the run it extends
    repeats: dict[Any, list[datetime]] = {}
    changed: set[str] = set()
    seen: set[str] = set()
    for i in sorted(range(len(rows)), key=lambda i: rows[i].measured_at):
        r = rows[i]
        if r.uid in stored or r.uid in seen:
            continue
        seen.add(r.uid)
        o = _outcome(r, "control")
        run = runs.get(r.url)
        if not needed[i] and run is not None and runs_mod.extends(run, o, r.measured_at):
            run["last_at"] = r.measured_at
            repeated[r.uid] = run["head"]
            repeats.setdefault(run["head"], []).append(r.measured_at)
            changed.add(r.url)
            continue
        full.append(r)
        if o is not None and (run is None or r.measured_at >= run["last_at"]):
            changed.add(r.url)
            runs[r.url] = {"outcome": o.key, "body_length": o.body_length,
                           "started_at": r.measured_at, "last_at": r.measured_at,
                           "head": ("uid", r.uid)}
    ids = be.insert_measurements(vantage_id, "control", full, None) if full else {}

    def ids_of(head: Any) -> tuple[int, int | None]:
        kind, key = head
        return (ids[key], None) if kind == "uid" else (key[0], None)

    out = dict(ids)
    out.update({uid: ids_of(h)[0] for uid, h in repeated.items()})
    if repeats:
        be.extend_runs([(*ids_of(h), len(ts), max(ts)) for h, ts in repeats.items()])
    if changed:
        be.save_runs(vantage_id, {u: _run_row(runs[u], ids_of) for u in changed})
    return out


def _covered(s: Session, vantage_id: int, r: Row, o: runs_mod.Outcome) -> bool:
    """Whether the run of r's (URL, vantage) that began last before r has r's outcome and lasted
    until r's time: r is a measurement already counted in it (a re-delivery). Late rows only."""
    got = s.execute(
        select(models.Verdict.verdict, models.Verdict.measured_at, models.Verdict.repeated_until,
               *evidence_mod.columns())
        .join(models.Measurement, models.Measurement.id == models.Verdict.measurement_id)
        .where(models.Verdict.url == r.url, models.Verdict.vantage_id == vantage_id,
               models.Verdict.measured_at <= r.measured_at)
        .order_by(models.Verdict.measured_at.desc()).limit(1)).first()
    if got is None:
        return False
    verdict, start, until, *stored = got
    head = runs_mod.outcome(evidence_mod.load(s, stored), verdict)
    return (head is not None and head.key == o.key and start <= r.measured_at <= (until or start)
            and runs_mod.bodies_alike(head.body_length, o.body_length))


def _run_dict(row: dict[str, Any]) -> dict[str, Any]:
    """A runs row as record() walks it: its head named by the ids stored."""
    return {"outcome": row["outcome"], "body_length": row["body_length"],
            "started_at": row["started_at"], "last_at": row["last_at"],
            "head": ("id", (row["measurement_id"], row["verdict_id"]))}


def _outcome(r: Row, verdict: str) -> runs_mod.Outcome | None:
    if r.outcome is None:
        r.outcome = runs_mod.outcome(r.evidence if r.evidence is not None else _parse(r),
                                     verdict) or False  # False: computed, none
    return r.outcome or None


def _parse(r: Row) -> Any:
    return json.loads(r.evidence_text) if r.evidence_text else None


# --- the statements, per dialect ----------------------------------------------------------------
# Column lists come from the models: a column added there (with a Python-side scalar default, or
# set by record()) is written here without another list to keep in step.

_PG_DIALECT = postgresql.dialect()


def _sqlite_bool(v: Any) -> int:
    return 1 if v else 0


@dataclass(frozen=True)
class _Table:
    name: str
    cols: tuple[str, ...]
    times: frozenset[str]  # models.UTCDateTime columns (SQLite: naive UTC text)
    bools: frozenset[str]
    defaults: dict[str, Any]  # the model's scalar defaults, for columns a row leaves out

    def pg_record(self) -> str:
        """The column definitions of jsonb_to_recordset(...) AS x(...)."""
        t = _model_table(self.name)
        return ", ".join(f"{c} {t.columns[c].type.compile(dialect=_PG_DIALECT)}" for c in self.cols)

    def sqlite_values(self, d: dict[str, Any]) -> tuple[Any, ...]:
        return tuple([v if (v := d[c] if c in d else dflt) is None or f is None else f(v)
                      for c, dflt, f in self.sqlite_spec])

    @functools.cached_property
    def sqlite_spec(self) -> tuple[tuple[str, Any, Any], ...]:
        """(column, default, conversion) in column order."""
        return tuple((c, self.defaults.get(c),
                      _sqlite_time if c in self.times else _sqlite_bool if c in self.bools else None)
                     for c in self.cols)

    def complete(self, d: dict[str, Any]) -> dict[str, Any]:
        """d with the model's defaults for the columns it leaves out (PostgreSQL's recordset
        gives NULL for a missing key, not the column's default)."""
        missing = [c for c in self.cols if c not in d]
        return {**d, **{c: self.defaults.get(c) for c in missing}} if missing else d


def _model_table(name: str) -> Table:
    return models.Base.metadata.tables[name]


def _table(model: type[models.Base], skip: tuple[str, ...] = ("id",)) -> _Table:
    cols = [c for c in model.__table__.columns if c.name not in skip]
    return _Table(
        name=model.__tablename__, cols=tuple(c.name for c in cols),
        times=frozenset(c.name for c in cols if isinstance(c.type, models.UTCDateTime)),
        bools=frozenset(c.name for c in cols if isinstance(c.type, Boolean)),
        defaults={c.name: c.default.arg for c in cols
                  if c.default is not None and c.default.is_scalar})


MEASUREMENTS = _table(models.Measurement)
VERDICTS = _table(models.Verdict)
STATES = _table(models.UrlState, skip=("url", "vantage_id"))
EVENTS = _table(models.Event)
RUNS = _table(models.Run, skip=("url", "vantage_id"))
STATE_COLS = STATES.cols
EVENT_COLS = EVENTS.cols


def _backend(db: Database, s: Session) -> _SQLite | _Postgres:
    raw = s.connection().connection.driver_connection  # the session's transaction, begun
    pieces = getattr(db, "evidence_pieces", True)
    return _Postgres(raw, pieces) if db.dialect == "postgresql" else _SQLite(raw, pieces)


def _sqlite_json(d: dict[str, Any]) -> dict[str, Any]:
    """A verdict row with its reason keys as the JSON text SQLite stores (PostgreSQL's recordset
    takes them as they are)."""
    keys = d["reason_keys"]
    return d if keys is None else {**d, "reason_keys": json.dumps(keys, ensure_ascii=False)}


def _sqlite_time(d: datetime | None) -> str | None:
    """What models.UTCDateTime stores on SQLite: naive UTC, always with microseconds (the text is
    compared as text)."""
    if d is None:
        return None
    if d.tzinfo is None:
        raise ValueError("naive datetime given to the database; use an aware UTC time")
    return d.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _sqlite_parse(v: str | None) -> datetime | None:
    return None if v is None else datetime.fromisoformat(v).replace(tzinfo=UTC)


@functools.lru_cache(maxsize=256)
def _values(n_rows: int, n_cols: int) -> str:
    one = "(" + ",".join("?" * n_cols) + ")"
    return ",".join([one] * n_rows)


def _measurement(vantage_id: int, role: str, r: Row, sha: str, keep: bool) -> dict[str, Any]:
    """A measurements row but its evidence (each backend adds the text as it needs it)."""
    return {"uid": r.uid, "target_id": r.target_id, "vantage_id": vantage_id, "url": r.url,
            "role": role, "round_id": r.round_id, "measured_at": r.measured_at,
            "failure": r.failure, "evidence_sha256": sha, "keep": keep}


def _verdict(vantage_id: int, mid: int, r: Row) -> dict[str, Any]:
    return {"measurement_id": mid, "control_id": r.control_id, "target_id": r.target_id,
            "vantage_id": vantage_id, "url": r.url, "verdict": r.verdict,
            "confirmed": r.confirmed, "reason": r.reason,
            "reason_keys": storable_data(r.reason_keys) if r.reason_keys else None,
            "measured_at": r.measured_at}


_SQL_MEASUREMENTS = (f"INSERT INTO measurements ({', '.join(MEASUREMENTS.cols)})",
                     "ON CONFLICT (uid) DO NOTHING RETURNING id, uid")
_SQL_VERDICTS = (f"INSERT INTO verdicts ({', '.join(VERDICTS.cols)})",
                 "RETURNING id, measurement_id")
_SQL_EVENTS = (f"INSERT INTO events ({', '.join(EVENTS.cols)})", "RETURNING id, verdict_id")


class _SQLite:
    CHUNK = 500  # rows per multi-row INSERT (well under SQLite's 32,766 parameters)

    def __init__(self, raw: Any, pieces: bool = True):
        self.cur = raw.cursor()
        self.pieces = pieces

    def _insert(self, head: str, tail: str, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        out: list[tuple[Any, ...]] = []
        for lo in range(0, len(rows), self.CHUNK):
            chunk = rows[lo:lo + self.CHUNK]
            self.cur.execute(f"{head} VALUES {_values(len(chunk), len(chunk[0]))} {tail}",
                             [v for r in chunk for v in r])
            out += self.cur.fetchall()
        return out

    def insert_measurements(self, vantage_id: int, role: str, rows: Sequence[Row],
                            keep: Sequence[bool] | None) -> dict[str, int]:
        vals = []
        enc, need = _encoded(rows, self.pieces)
        if need:
            self.store_pieces(need)
        for i, (r, (text, sha, sp)) in enumerate(zip(rows, enc, strict=True)):
            d = _measurement(vantage_id, role, r, sha, bool(keep is not None and keep[i]))
            if sp is None:
                d["evidence"] = text
            else:
                d["evidence"], d["evidence_z"], d["evidence_refs"] = "null", sp.blob, sp.refs
            vals.append(MEASUREMENTS.sqlite_values(d))
        got = self._insert(*_SQL_MEASUREMENTS, vals)
        return {uid: mid for mid, uid in got}

    def store_pieces(self, need: dict[str, evidence_mod.Piece]) -> None:
        """The pieces not stored yet, compressed and inserted (the write lock is held)."""
        shas = list(need)
        have: set[str] = set()
        for lo in range(0, len(shas), self.CHUNK):
            part = shas[lo:lo + self.CHUNK]
            self.cur.execute("SELECT sha256 FROM evidence_pieces WHERE sha256 IN"
                             f" ({','.join('?' * len(part))})", part)
            have.update(x for (x,) in self.cur)
        new = [(p.sha256, p.kind, len(p.text), evidence_mod.pack(p.text))
               for sha, p in need.items() if sha not in have]
        if new:
            self.cur.executemany("INSERT INTO evidence_pieces (sha256, kind, size, data)"
                                 " VALUES (?, ?, ?, ?) ON CONFLICT (sha256) DO NOTHING", new)

    def insert_verdicts(self, vantage_id: int, rows: list[tuple[int, Row]]) -> list[int]:
        got = self._insert(*_SQL_VERDICTS, [
            VERDICTS.sqlite_values(_sqlite_json(_verdict(vantage_id, mid, r))) for mid, r in rows])
        by_m = {mid: vid for vid, mid in got}
        return [by_m[mid] for mid, _ in rows]

    def lock_states(self, vantage_id: int, urls: list[str], now: datetime
                    ) -> dict[str, dict[str, Any]]:
        # the writer holds SQLite's write lock from BEGIN IMMEDIATE: no row locks to take, and
        # missing rows are inserted by update_states
        out = {u: {**STATES.defaults, **{c: None for c in STATES.cols if c not in STATES.defaults},
                   "updated_at": now} for u in urls}
        out.update(self._by_url("url_states", STATES, vantage_id, urls))
        return out

    def _by_url(self, table: str, t: Any, vantage_id: int, urls: list[str]
                ) -> dict[str, dict[str, Any]]:
        """The rows of `table` (columns and time columns of `t`) of these URLs at a vantage."""
        out: dict[str, dict[str, Any]] = {}
        for lo in range(0, len(urls), self.CHUNK):
            part = urls[lo:lo + self.CHUNK]
            self.cur.execute(
                f"SELECT url, {', '.join(t.cols)} FROM {table}"
                f" WHERE vantage_id = ? AND url IN ({','.join('?' * len(part))})",
                [vantage_id, *part])
            for url, *vals in self.cur:
                out[url] = {c: _sqlite_parse(v) if c in t.times else v
                            for c, v in zip(t.cols, vals, strict=True)}
        return out

    def update_states(self, vantage_id: int, states: dict[str, dict[str, Any]]) -> None:
        self.cur.executemany(
            f"INSERT INTO url_states (url, vantage_id, {', '.join(STATES.cols)})"
            f" VALUES ({','.join('?' * (len(STATES.cols) + 2))})"
            " ON CONFLICT (url, vantage_id) DO UPDATE SET "
            + ", ".join(f"{c} = excluded.{c}" for c in STATES.cols),
            [(url, vantage_id, *STATES.sqlite_values(st)) for url, st in states.items()])

    def close_events(self, closes: list[tuple[int, datetime]]) -> None:
        self.cur.executemany("UPDATE events SET ended_at = ? WHERE id = ? AND ended_at IS NULL",
                             [(_sqlite_time(at), eid) for eid, at in closes])

    def insert_events(self, rows: list[dict[str, Any]]) -> list[int]:
        got = self._insert(*_SQL_EVENTS, [EVENTS.sqlite_values(e) for e in rows])
        by_v = {vid: eid for eid, vid in got}  # one event per verdict at most
        return [by_v[e["verdict_id"]] for e in rows]

    def keep(self, ids: list[int]) -> None:
        for lo in range(0, len(ids), self.CHUNK):
            part = ids[lo:lo + self.CHUNK]
            self.cur.execute(f"UPDATE measurements SET keep = 1 WHERE id IN ({','.join('?' * len(part))})",
                             part)

    def known_uids(self, uids: list[str]) -> set[str]:
        out: set[str] = set()
        for lo in range(0, len(uids), self.CHUNK):
            part = uids[lo:lo + self.CHUNK]
            self.cur.execute(f"SELECT uid FROM measurements WHERE uid IN ({','.join('?' * len(part))})",
                             part)
            out.update(u for (u,) in self.cur)
        return out

    def load_runs(self, vantage_id: int, urls: list[str], lock: bool = False
                  ) -> dict[str, dict[str, Any]]:
        return {url: _run_dict(row)
                for url, row in self._by_url("runs", RUNS, vantage_id, urls).items()}

    def extend_runs(self, ext: list[tuple[int, int | None, int, datetime]]) -> None:
        vals = [(n, _sqlite_time(at), mid) for mid, _, n, at in ext]
        self.cur.executemany("UPDATE measurements SET repeats = repeats + ?, repeated_until = ?"
                             " WHERE id = ?", vals)
        self.cur.executemany("UPDATE verdicts SET repeats = repeats + ?, repeated_until = ?"
                             " WHERE id = ?",
                             [(n, _sqlite_time(at), vid) for _, vid, n, at in ext if vid is not None])

    def save_runs(self, vantage_id: int, runs: dict[str, dict[str, Any] | None]) -> None:
        gone = [(u, vantage_id) for u, r in runs.items() if r is None]
        if gone:
            self.cur.executemany("DELETE FROM runs WHERE url = ? AND vantage_id = ?", gone)
        keep = [(u, vantage_id, *RUNS.sqlite_values(r)) for u, r in runs.items() if r is not None]
        if keep:
            self.cur.executemany(
                f"INSERT INTO runs (url, vantage_id, {', '.join(RUNS.cols)})"
                f" VALUES ({','.join('?' * (len(RUNS.cols) + 2))})"
                " ON CONFLICT (url, vantage_id) DO UPDATE SET "
                + ", ".join(f"{c} = excluded.{c}" for c in RUNS.cols), keep)

    def touch_vantage(self, vantage_id: int, at: datetime) -> None:
        t = _sqlite_time(at)
        self.cur.execute("UPDATE vantages SET last_seen_at = ? WHERE id = ?"
                         " AND (last_seen_at IS NULL OR last_seen_at < ?)", (t, vantage_id, t))

    def seen_vantage(self, vantage_id: int, at: datetime, asn: str) -> None:
        if asn:
            self.cur.execute("UPDATE vantages SET last_seen_at = ?, asn = ? WHERE id = ?",
                             (_sqlite_time(at), asn, vantage_id))
        else:
            self.cur.execute("UPDATE vantages SET last_seen_at = ? WHERE id = ?",
                             (_sqlite_time(at), vantage_id))


def _pg_insert(t: _Table, tail: str) -> str:
    return (f"INSERT INTO {t.name} ({', '.join(t.cols)})"
            f" SELECT {', '.join('x.' + c for c in t.cols)}"
            f" FROM jsonb_to_recordset(CAST(%(rows)s AS jsonb)) AS x({t.pg_record()}) {tail}")


# evidence stored as pieces holds JSON null, which the recordset reads as SQL NULL
_PG_MEASUREMENTS = _pg_insert(MEASUREMENTS, "ON CONFLICT (uid) DO NOTHING RETURNING id, uid"
                              ).replace("x.evidence,", "coalesce(x.evidence, 'null'::jsonb),", 1)
_PG_VERDICTS = _pg_insert(VERDICTS, "RETURNING id, measurement_id")
_PG_EVENTS = _pg_insert(EVENTS, "RETURNING id, verdict_id")

_PG_STATES_NEW = """
INSERT INTO url_states (url, vantage_id, pending_count, updated_at)
SELECT u, %(vid)s, 0, %(now)s FROM unnest(CAST(%(urls)s AS text[])) AS u
ON CONFLICT (url, vantage_id) DO NOTHING"""

_PG_STATES_LOCK = f"""
SELECT url, {', '.join(STATES.cols)} FROM url_states
WHERE vantage_id = %(vid)s AND url = ANY(CAST(%(urls)s AS text[]))
ORDER BY url FOR UPDATE"""

_PG_STATES_UPDATE = (
    f"UPDATE url_states AS s SET {', '.join(f'{c} = x.{c}' for c in STATES.cols)}"
    f" FROM jsonb_to_recordset(CAST(%(rows)s AS jsonb)) AS x(url text, {STATES.pg_record()})"
    # the URLs again as an array: the planner then reads the rows through the primary key
    # instead of scanning every vantage's state rows (a hash join on the JSON's estimate)
    " WHERE s.url = x.url AND s.vantage_id = %(vid)s AND s.url = ANY(CAST(%(urls)s AS text[]))")

_PG_EVENTS_CLOSE = """
UPDATE events AS e SET ended_at = x.ended_at
FROM jsonb_to_recordset(CAST(%(rows)s AS jsonb)) AS x(id bigint, ended_at timestamptz)
WHERE e.id = x.id AND e.ended_at IS NULL"""

_PG_RUNS_LOAD = (f"SELECT url, {', '.join(RUNS.cols)} FROM runs"
                 " WHERE vantage_id = %(vid)s AND url = ANY(CAST(%(urls)s AS text[]))")

_PG_RUNS_SAVE = (
    f"INSERT INTO runs (url, vantage_id, {', '.join(RUNS.cols)})"
    f" SELECT x.url, %(vid)s, {', '.join('x.' + c for c in RUNS.cols)}"
    f" FROM jsonb_to_recordset(CAST(%(rows)s AS jsonb)) AS x(url text, {RUNS.pg_record()})"
    " ON CONFLICT (url, vantage_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in RUNS.cols))

_PG_EXTEND = """
UPDATE {table} AS t SET repeats = t.repeats + x.n, repeated_until = x.at
FROM jsonb_to_recordset(CAST(%(rows)s AS jsonb)) AS x(id bigint, n int, at timestamptz)
WHERE t.id = x.id"""

_PG_EXTEND_BOTH = ("WITH m AS (" + _PG_EXTEND.format(table="measurements").replace("%(rows)s", "%(m)s")
                   + ")" + _PG_EXTEND.format(table="verdicts"))

_PG_KEEP = """
UPDATE measurements SET keep = true WHERE id IN (
    SELECT id FROM measurements WHERE id = ANY(CAST(%(ids)s AS bigint[])) AND NOT keep ORDER BY id
    FOR NO KEY UPDATE)"""


_PG_PIECES = """
INSERT INTO evidence_pieces (sha256, kind, size, data)
SELECT x.sha256, x.kind, x.size, x.data
FROM jsonb_to_recordset(CAST(%(rows)s AS jsonb)) AS x(sha256 text, kind text, size int, data bytea)
ON CONFLICT (sha256) DO NOTHING"""


def _pg_bytes(b: bytes | None) -> str | None:
    return None if b is None else "\\x" + b.hex()


# Array parameters go as the text of an array literal, cast in the statement: psycopg adapts a
# Python list element by element in Python (~0.6 us each, a tenth of a 100-row upload's time).
def _pg_texts(values: Iterable[str]) -> str:
    """A text[] literal: every element quoted, backslash and double quote escaped."""
    return "{" + ",".join(['"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
                           for v in values]) + "}"


def _pg_ints(values: Iterable[int]) -> str:
    return "{" + ",".join(map(str, values)) + "}"


class _Postgres:
    def __init__(self, raw: Any, pieces: bool = True):
        self.cur = raw.cursor()
        self.pieces = pieces
        # A row's time is written in several statements (its measurement, verdict, state and
        # run; the upload's time in every state row): each value formatted once per record().
        times: dict[datetime, str] = {}

        def default(v: Any) -> Any:
            if isinstance(v, datetime):
                t = times.get(v)
                if t is None:
                    t = times[v] = v.isoformat()
                return t
            raise TypeError(type(v).__name__)

        # json.dumps(v, default=default, separators=(",", ":"), allow_nan=False)
        self._dumps = runs_mod.compact_json(ensure_ascii=True, allow_nan=False, default=default)

    def store_pieces(self, need: dict[str, evidence_mod.Piece]) -> None:
        self.cur.execute("SELECT pg_advisory_xact_lock_shared(%(k)s)", {"k": PIECES_LOCK})
        self.cur.execute("SELECT sha256 FROM evidence_pieces"
                         " WHERE sha256 = ANY(CAST(%(s)s AS text[]))", {"s": _pg_texts(need)})
        have = {x for (x,) in self.cur.fetchall()}
        new = [{"sha256": p.sha256, "kind": p.kind, "size": len(p.text),
                "data": _pg_bytes(evidence_mod.pack(p.text))}
               for sha, p in need.items() if sha not in have]
        if new:
            self.cur.execute(_PG_PIECES, {"rows": self._dumps(new)})

    def insert_measurements(self, vantage_id: int, role: str, rows: Sequence[Row],
                            keep: Sequence[bool] | None) -> dict[str, int]:
        parts = []
        enc, need = _encoded(rows, self.pieces)
        if need:  # the pieces' lock before the rows get ids: retention.sweep_pieces relies on it
            self.store_pieces(need)
        for i, (r, (text, sha, sp)) in enumerate(zip(rows, enc, strict=True)):
            d = _measurement(vantage_id, role, r, sha, bool(keep is not None and keep[i]))
            if sp is not None:
                d["evidence_z"], d["evidence_refs"] = _pg_bytes(sp.blob), _pg_bytes(sp.refs)
            plain = MEASUREMENTS.complete(d)
            plain.pop("evidence", None)
            # the evidence's text goes in as it is: serialised once, never parsed back here
            parts.append(self._dumps(plain)[:-1] + ',"evidence":' + ("null" if sp else text) + "}")
        self.cur.execute(_PG_MEASUREMENTS, {"rows": "[" + ",".join(parts) + "]"})
        return {uid: mid for mid, uid in self.cur.fetchall()}

    def insert_verdicts(self, vantage_id: int, rows: list[tuple[int, Row]]) -> list[int]:
        self.cur.execute(_PG_VERDICTS, {"rows": self._dumps([
            VERDICTS.complete(_verdict(vantage_id, mid, r)) for mid, r in rows])})
        by_m = {mid: vid for vid, mid in self.cur.fetchall()}
        return [by_m[mid] for mid, _ in rows]

    def lock_states(self, vantage_id: int, urls: list[str], now: datetime
                    ) -> dict[str, dict[str, Any]]:
        """Created when missing, then locked (in URL order): two uploads touching one (URL,
        vantage) take turns instead of overwriting each other's step. Two statements even when
        every row exists: locking the existing rows first and inserting the missing ones after
        deadlocks three writers of one vantage (a round, `check` and an OONI import can be)."""
        p = {"vid": vantage_id, "now": now, "urls": _pg_texts(urls)}
        self.cur.execute(_PG_STATES_NEW, p)
        self.cur.execute(_PG_STATES_LOCK, p)
        return {r[0]: dict(zip(STATES.cols, r[1:], strict=True)) for r in self.cur.fetchall()}

    def update_states(self, vantage_id: int, states: dict[str, dict[str, Any]]) -> None:
        rows = [{"url": url, **STATES.complete(st)} for url, st in states.items()]
        self.cur.execute(_PG_STATES_UPDATE, {"rows": self._dumps(rows), "vid": vantage_id,
                                             "urls": _pg_texts(states)})

    def close_events(self, closes: list[tuple[int, datetime]]) -> None:
        self.cur.execute(_PG_EVENTS_CLOSE,
                         {"rows": self._dumps([{"id": eid, "ended_at": at} for eid, at in closes])})

    def insert_events(self, rows: list[dict[str, Any]]) -> list[int]:
        self.cur.execute(_PG_EVENTS, {"rows": self._dumps([EVENTS.complete(e) for e in rows])})
        by_v = {vid: eid for eid, vid in self.cur.fetchall()}  # one event per verdict at most
        return [by_v[e["verdict_id"]] for e in rows]

    def keep(self, ids: list[int]) -> None:
        # rows locked in id order (and those already kept not at all): concurrent uploads that
        # keep the same controls wait for each other instead of deadlocking
        self.cur.execute(_PG_KEEP, {"ids": _pg_ints(ids)})

    def known_uids(self, uids: list[str]) -> set[str]:
        self.cur.execute("SELECT uid FROM measurements WHERE uid = ANY(CAST(%(u)s AS text[]))",
                         {"u": _pg_texts(uids)})
        return {u for (u,) in self.cur.fetchall()}

    def load_runs(self, vantage_id: int, urls: list[str], lock: bool = False
                  ) -> dict[str, dict[str, Any]]:
        self.cur.execute(_PG_RUNS_LOAD + (" ORDER BY url FOR UPDATE" if lock else ""),
                         {"vid": vantage_id, "urls": _pg_texts(urls)})
        return {r[0]: _run_dict(dict(zip(RUNS.cols, r[1:], strict=True)))
                for r in self.cur.fetchall()}

    def extend_runs(self, ext: list[tuple[int, int | None, int, datetime]]) -> None:
        mrows = self._dumps([{"id": mid, "n": n, "at": at} for mid, _, n, at in ext])
        vrows = [{"id": vid, "n": n, "at": at} for _, vid, n, at in ext if vid is not None]
        if vrows:  # both in one statement (a WITH's update runs whether it is read or not)
            self.cur.execute(_PG_EXTEND_BOTH, {"m": mrows, "rows": self._dumps(vrows)})
        else:
            self.cur.execute(_PG_EXTEND.format(table="measurements"), {"rows": mrows})

    def save_runs(self, vantage_id: int, runs: dict[str, dict[str, Any] | None]) -> None:
        gone = [u for u, r in runs.items() if r is None]
        if gone:
            self.cur.execute("DELETE FROM runs WHERE vantage_id = %(vid)s"
                             " AND url = ANY(CAST(%(u)s AS text[]))",
                             {"vid": vantage_id, "u": _pg_texts(gone)})
        keep = [{"url": u, **r} for u, r in runs.items() if r is not None]
        if keep:
            self.cur.execute(_PG_RUNS_SAVE, {"vid": vantage_id, "rows": self._dumps(keep)})

    def touch_vantage(self, vantage_id: int, at: datetime) -> None:
        self.cur.execute("UPDATE vantages SET last_seen_at = %(at)s WHERE id = %(vid)s"
                         " AND (last_seen_at IS NULL OR last_seen_at < %(at)s)",
                         {"at": at, "vid": vantage_id})

    def seen_vantage(self, vantage_id: int, at: datetime, asn: str) -> None:
        if asn:
            self.cur.execute("UPDATE vantages SET last_seen_at = %(at)s, asn = %(asn)s"
                             " WHERE id = %(vid)s", {"at": at, "asn": asn, "vid": vantage_id})
        else:
            self.cur.execute("UPDATE vantages SET last_seen_at = %(at)s WHERE id = %(vid)s",
                             {"at": at, "vid": vantage_id})
