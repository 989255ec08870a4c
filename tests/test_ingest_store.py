"""store_batch: one upload judged and stored in one transaction, its already stored items
(a re-delivery) counted as duplicates and neither judged nor stored again, an item judging
fails on rejected by name while the rest are stored (on SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import func, select

from blockwatch.analysis.verdict import Judgement
from blockwatch.collector import ingest
from blockwatch.collector.ingest import Item, store_batch
from blockwatch.probe.records import WebMeasurement
from blockwatch.storage import Database, repo
from blockwatch.storage.models import Measurement, UrlState, Vantage, Verdict

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
URLS = [f"https://{n}.test/" for n in "abcd"]


def _item(url: str, at: datetime, auid: str | None = None) -> Item:
    auid = auid or uuid.uuid4().hex
    m = WebMeasurement(url=url, vantage="a1", role="vantage",
                       measured_at=at.isoformat().replace("+00:00", "Z"), uid=auid)
    return Item(m, f"a1/{auid}", at, None, True, None)


@pytest.fixture
def judged(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The uids judge() was called for; a measurement of https://d.test/ makes it fail."""
    calls: list[str] = []

    def fake(m: WebMeasurement, control: Any, **kw: Any) -> Judgement:
        calls.append(m.uid)
        if m.url == URLS[3]:
            raise RuntimeError("odd evidence")
        return Judgement("ok", False, "r ok")

    monkeypatch.setattr(ingest, "judge", fake)
    return calls


SNAP: Any = SimpleNamespace(analysis=None, interception=None, asn=None, confirm_after=2)


def _count(db: Database, what: Any) -> int:
    with db.read() as s:
        return s.scalar(select(func.count()).select_from(what)) or 0


def test_a_redelivered_upload_is_counted_not_judged_or_stored_again(any_db: Database,
                                                                   judged: list[str]) -> None:
    with any_db.write() as s:
        vid = repo.ensure_vantage(s, "a1", "agent", "KZ")
    first = [_item(u, T0) for u in URLS[:3]]
    res = store_batch(any_db, SNAP, vid, first, "AS9198")
    assert (res.accepted, res.duplicates, res.rejected) == (3, 0, [])
    assert sorted(judged) == sorted(it.m.uid for it in first)
    # the same uids again (new objects, as a re-delivery arrives), with one new item
    again = [_item(it.m.url, it.at, it.m.uid) for it in first] + [_item(URLS[0], T0 + timedelta(minutes=5))]
    judged.clear()
    res = store_batch(any_db, SNAP, vid, again)
    assert (res.accepted, res.duplicates, res.rejected) == (1, 3, [])
    assert judged == [again[-1].m.uid]
    assert _count(any_db, Measurement) == _count(any_db, Verdict) == 4
    with any_db.read() as s:
        v = s.get(Vantage, vid)
        assert v is not None and v.asn == "AS9198" and v.last_seen_at is not None
        assert s.scalar(select(UrlState.last_seen_at).where(UrlState.url == URLS[0])) \
            == T0 + timedelta(minutes=5)
    # all of it again: nothing judged, nothing stored, the vantage still seen
    judged.clear()
    res = store_batch(any_db, SNAP, vid, [_item(it.m.url, it.at, it.m.uid) for it in again])
    assert (res.accepted, res.duplicates, res.rejected) == (0, 4, [])
    assert judged == []
    assert _count(any_db, Measurement) == 4


def test_an_item_judging_fails_on_is_rejected_and_the_rest_stored(any_db: Database,
                                                                  judged: list[str]) -> None:
    with any_db.write() as s:
        vid = repo.ensure_vantage(s, "a1", "agent", "KZ")
    items = [_item(u, T0) for u in URLS]
    res = store_batch(any_db, SNAP, vid, items)
    assert (res.accepted, res.duplicates) == (3, 0)
    assert [(it.uid, why) for it, why in res.rejected] == [
        (items[3].uid, "the collector could not judge this measurement")]
    with any_db.read() as s:
        assert set(s.scalars(select(Measurement.url))) == set(URLS[:3])
        # no state row for the URL whose only measurement was not judged
        assert set(s.scalars(select(UrlState.url))) == set(URLS[:3])


def test_each_item_stored_alone_holds_the_vantage_row_first(any_db: Database, judged: list[str],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """When the database refuses an upload and its items are stored one by one, each of those
    transactions takes the agent's vantage row first, as the upload's did: a concurrent upload
    of the same uids (another collector process) then reads them as stored instead of planning
    them again."""
    with any_db.write() as s:
        vid = repo.ensure_vantage(s, "a1", "agent", "KZ")
    calls: list[tuple[str, int]] = []
    real_seen, real_record = ingest.bulk.seen_vantage, ingest.bulk_record
    refused = [False]

    def seen(db: Database, s: Any, *a: Any, **kw: Any) -> None:
        calls.append(("vantage", id(s)))
        real_seen(db, s, *a, **kw)

    def record(db: Database, s: Any, vantage_id: int, items: Any, *a: Any, **kw: Any) -> Any:
        calls.append(("store", id(s)))
        if len(items) > 1 and not refused[0]:
            refused[0] = True
            raise ingest.DATA_ERRORS[0]("refused", None, Exception("refused"))
        return real_record(db, s, vantage_id, items, *a, **kw)

    monkeypatch.setattr(ingest.bulk, "seen_vantage", seen)
    monkeypatch.setattr(ingest, "bulk_record", record)
    res = store_batch(any_db, SNAP, vid, [_item(u, T0) for u in URLS[:3]], "")
    assert refused[0] and res.accepted == 3
    stores = [i for i, (what, _) in enumerate(calls) if what == "store"]
    assert len(stores) == 4  # the upload, then each of its three items
    for i in stores[1:]:  # each item's transaction: the vantage row, then the store
        assert calls[i - 1] == ("vantage", calls[i][1]), calls
    assert _count(any_db, Measurement) == 3
