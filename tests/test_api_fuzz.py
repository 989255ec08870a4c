"""Schema-driven fuzzing of the collector API (Schemathesis, from the collector's own OpenAPI
document) against a real uvicorn collector on loopback, the lab as its network and a real
database (SQLite and PostgreSQL).

Every generated request (schema-valid and schema-violating bodies, with the agent's token, a
wrong one or none) must get an answer below 500, and the store must hold exactly what the
answers acknowledged: per request, the vantage measurements added (rows, or repetitions counted
on the row of their run) equal `accepted`; a request refused
as a whole adds none; every stored row is a measurement an answer accepted, with its verdict.

The collector runs in a thread with its own event loop; Schemathesis calls it over HTTP from
the test's thread. Deterministic: Hypothesis derandomized, no example database."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from sqlalchemy import func, select

from blockwatch import aio
from blockwatch.storage import Database
from blockwatch.storage.models import Measurement, Verdict
from lab import Lab
from test_collector_support import running_collector, tokens, write_collector_config

AGENT = "fuzz-1"
FUZZ = settings(derandomize=True, database=None, deadline=None, max_examples=60,
                suppress_health_check=list(HealthCheck))


@dataclass
class Collector:
    url: str
    token: str
    target: str
    db: Database
    stop: threading.Event = field(default_factory=threading.Event)


def _serve(tmp_path: Path, db_url: str, ready: list[Any], started: threading.Event,
           stop: threading.Event) -> None:
    async def main() -> None:
        try:
            async with Lab() as lab:
                await lab.add_site("ratel.test")
                target = lab.url("ratel.test")
                tok = tokens(AGENT)
                cfg = write_collector_config(tmp_path, lab, db_url, agents=tok, urls=[target])
                async with running_collector(cfg) as c:
                    ready.append(Collector(c.url, tok[AGENT], target, c.db))
                    started.set()
                    while not stop.is_set():  # the test thread says when; polled, not timed
                        await asyncio.sleep(0.05)
        except BaseException as exc:
            ready.append(exc)
            started.set()
            raise

    aio.run(main())


@pytest.fixture(params=["sqlite", "postgres"])
def collector(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Collector]:
    db_url = (f"sqlite:///{tmp_path / 'fuzz.db'}" if request.param == "sqlite"
              else request.getfixturevalue("pg_url"))
    ready: list[Any] = []
    started, stop = threading.Event(), threading.Event()
    t = threading.Thread(target=_serve, args=(tmp_path, db_url, ready, started, stop), daemon=True)
    t.start()
    assert started.wait(60), "the collector did not start"
    if isinstance(ready[0], BaseException):
        raise ready[0]
    try:
        yield ready[0]
    finally:
        stop.set()
        t.join(60)


def _vantage_uids(db: Database) -> list[str]:
    with db.read() as s:
        return list(s.scalars(select(Measurement.uid).where(Measurement.role == "vantage")))


def _observations(db: Database) -> int:
    """Vantage measurements stored: a row, or a repetition counted on the row of its run."""
    with db.read() as s:
        return int(s.scalar(select(func.count() + func.coalesce(func.sum(Measurement.repeats), 0))
                            .where(Measurement.role == "vantage")) or 0)


def _verdicts(db: Database) -> int:
    with db.read() as s:
        return int(s.scalar(select(func.count()).select_from(Verdict)) or 0)


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _aim(body: Any, target: str, which: list[bool]) -> Any:
    """Point some generated measurements at the collector's target URL with a current time, so
    that schema-valid ones get past the target check and into the store (a random URL or time
    is almost never acceptable, and would test only the refusal)."""
    if isinstance(body, dict) and isinstance(body.get("measurements"), list):
        for i, m in enumerate(body["measurements"]):
            if isinstance(m, dict) and which[i % len(which)]:
                m["url"] = target
                m["measured_at"] = _now()
    return body


def test_fuzzed_requests_never_5xx_and_store_only_what_was_accepted(collector: Collector) -> None:
    schema = schemathesis.openapi.from_url(f"{collector.url}/api/v1/openapi.json")
    ops = {op.label: op for op in (r.ok() for r in schema.get_all_operations())}
    assert {"POST /api/v1/measurements", "GET /api/v1/targets", "GET /api/v1/status",
            "GET /api/v1/health"} <= set(ops)
    post = ops["POST /api/v1/measurements"]
    cases = (post.as_strategy(GenerationMode.POSITIVE) | post.as_strategy(GenerationMode.NEGATIVE))
    auths = st.sampled_from(["agent", "agent", "agent", "none", "wrong", "basic"])
    accepted: set[str] = set()  # "<agent>/<uid>" named in answered uploads, not rejected
    seen = {"200": 0, "accepted": 0, "rejected": 0, "4xx": 0}

    def headers(kind: str) -> dict[str, str]:
        return {"agent": {"authorization": f"Bearer {collector.token}"}, "none": {},
                "wrong": {"authorization": "Bearer " + "x" * 43},
                "basic": {"authorization": f"Basic {collector.token}"}}[kind]

    @FUZZ
    @given(case=cases, auth=auths, which=st.lists(st.booleans(), min_size=1, max_size=4))
    def upload(case: Any, auth: str, which: list[bool]) -> None:
        case.body = _aim(case.body, collector.target, which)
        before = _observations(collector.db)
        r = case.call(headers=headers(auth), timeout=30)
        assert r.status_code < 500, (r.status_code, r.text[:500], case.as_curl_command())
        after = _observations(collector.db)
        if r.status_code != 200:
            seen["4xx"] += 1
            assert after == before, (r.status_code, r.text[:300])
            if auth != "agent":
                assert r.status_code == 401
            return
        assert auth == "agent"
        out = r.json()
        seen["200"] += 1
        seen["accepted"] += out["accepted"]
        seen["rejected"] += len(out["rejected"])
        assert after == before + out["accepted"], out
        items = case.body["measurements"]
        by_index = {x["index"] for x in out["rejected"] if x["index"] is not None}
        by_uid = {x["uid"] for x in out["rejected"] if x["index"] is None}
        for i, m in enumerate(items):
            if i in by_index or not isinstance(m, dict) or m.get("uid") in by_uid:
                continue
            accepted.add(f"{AGENT}/{m['uid']}")

    @FUZZ
    @given(auth=auths, data=st.data())
    def read(auth: str, data: st.DataObject) -> None:
        label = data.draw(st.sampled_from(sorted(k for k in ops if k.startswith("GET "))))
        case = data.draw(ops[label].as_strategy())
        r = case.call(headers=headers(auth), timeout=30)
        assert r.status_code < 500, (label, r.status_code, r.text[:300])
        if label.endswith("/targets") and auth != "agent":
            assert r.status_code == 401

    upload()
    read()
    stored = _vantage_uids(collector.db)
    # every stored row was acknowledged, once, and has its verdict
    assert len(stored) == len(set(stored))
    assert set(stored) <= accepted, set(stored) - accepted
    assert _verdicts(collector.db) == len(stored)
    # the fuzzing reached every kind of answer: stored, rejected item by item, refused whole
    assert seen["accepted"] > 0 and seen["rejected"] > 0 and seen["4xx"] > 0, seen
