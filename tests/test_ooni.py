"""The OONI vantage: import, pagination, retries, dedup, resume, verdict mapping, events."""

from __future__ import annotations

import copy
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from sqlalchemy import func, select

from blockwatch.config import Config, OoniVantage
from blockwatch.ooni import api as ooni_api
from blockwatch.ooni import check_results, import_all, import_ooni
from blockwatch.ooni.importer import RESUME_OVERLAP
from blockwatch.ooni.mapping import ItemError, map_verdict, parse_item
from blockwatch.storage import Database
from blockwatch.storage.models import Event, Measurement, UrlState, Vantage, Verdict
from blockwatch.targets import Target

FIX = Path(__file__).parent / "fixtures" / "ooni"
API = "https://api.ooni.io/api/v1/measurements"
NOW = datetime(2024, 5, 2, tzinfo=UTC)
RATEL = Target("Ratel.kz", ("https://ratel.kz/",), ("Ratel",), "KZ", "NEWS")
CONFIG = """
[probe]
confirm_after = 2

[[vantage]]
name = "ooni-kz"
kind = "ooni"
country = "KZ"
lookback = "8d"
"""


def load(name: str) -> dict[str, Any]:
    return json.loads((FIX / name).read_text(encoding="utf-8"))


@pytest.fixture
def cfg(write_config) -> Config:  # type: ignore[no-untyped-def]
    return write_config(CONFIG)


def vantage(cfg: Config) -> OoniVantage:
    v = cfg.settings.vantage[0]
    assert isinstance(v, OoniVantage)
    return v


class Sleeps:
    """Records the delays the importer asked for; never sleeps."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def two_pages(request: httpx.Request) -> httpx.Response:
    if "cont" in request.url.params:
        return httpx.Response(200, json=load("ratel_page2.json"))
    return httpx.Response(200, json=load("ratel_page1.json"))


async def run(cfg: Config, db: Database, *, now: datetime = NOW, sleep: Sleeps | None = None,
              targets: list[Target] | None = None):  # type: ignore[no-untyped-def]
    return await import_ooni(cfg, db, vantage(cfg), targets or [RATEL], now=now,
                             sleep=sleep or Sleeps())


def count(db: Database, model: Any) -> int:
    with db.read() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


# --- pagination and storage ----------------------------------------------------------------------

@respx.mock
async def test_pagination_follows_next_url_and_stores_every_item(cfg, any_db, monkeypatch):
    monkeypatch.setattr(ooni_api, "PAGE_LIMIT", 2)  # as when the fixtures were recorded
    route = respx.get(API).mock(side_effect=two_pages)
    rep = await run(cfg, any_db)

    assert (rep.fetched, rep.stored, rep.duplicates, rep.skipped, rep.errors, rep.pages) == \
        (4, 4, 0, 0, 0, 2)
    first, second = (c.request.url.params for c in route.calls)
    assert dict(first) == {
        "probe_cc": "KZ", "domain": "ratel.kz", "test_name": "web_connectivity",
        "since": "2024-04-24T00:00:00", "until": "2024-05-02T00:00:00",
        "order_by": "measurement_start_time", "order": "asc", "limit": "2"}
    assert second["cont"].startswith("20240501110000-") and second["domain"] == "ratel.kz"
    with any_db.read() as s:
        vs = {v.name: v for v in s.scalars(select(Vantage))}
        assert set(vs) == {"ooni-kz:AS9198", "ooni-kz:AS21299"}
        assert (vs["ooni-kz:AS9198"].kind, vs["ooni-kz:AS9198"].country,
                vs["ooni-kz:AS9198"].asn) == ("ooni", "KZ", "AS9198")
        assert vs["ooni-kz:AS9198"].last_seen_at == datetime(2024, 5, 1, 12, tzinfo=UTC)
        ms = s.scalars(select(Measurement).order_by(Measurement.measured_at)).all()
        item = load("ratel_page1.json")["results"][0]
        assert ms[0].uid == "ooni:" + item["measurement_uid"]
        assert ms[0].evidence == item  # the whole item is the evidence
        assert ms[0].url == "https://ratel.kz/" and ms[0].measured_at == datetime(
            2024, 5, 1, 10, tzinfo=UTC)
        verdicts = [v.verdict for v in s.scalars(select(Verdict).order_by(Verdict.measured_at))]
        assert verdicts == ["ok", "tcp_ip", "tcp_ip", "ok"]
    lines = check_results([rep])
    assert set(lines[0]) >= {"target", "url", "vantage", "verdict", "confirmed", "reason",
                             "measured_at"}
    assert lines[1]["vantage"] == "ooni-kz:AS9198" and lines[1]["target"] == "Ratel.kz"
    assert lines[1]["measured_at"] == "2024-05-01T11:00:00Z"
    assert "AS9198" in lines[1]["reason"] and item["measurement_url"][:40] in lines[0]["reason"]


@respx.mock
async def test_next_url_host_is_ignored_in_favour_of_the_configured_api(cfg, db):
    page1 = load("ratel_page1.json")
    page1["metadata"]["next_url"] = page1["metadata"]["next_url"].replace(
        "https://api.ooni.io", "http://10.0.0.5:8000")  # an internal base URL leaking out
    route = respx.get(API).mock(side_effect=lambda r: httpx.Response(
        200, json=load("ratel_page2.json") if "cont" in r.url.params else page1))
    rep = await run(cfg, db)
    assert rep.stored == 4 and route.call_count == 2


@respx.mock
async def test_empty_results(cfg, any_db):
    respx.get(API).mock(return_value=httpx.Response(200, json=load("empty.json")))
    rep = await run(cfg, any_db)
    assert (rep.fetched, rep.stored, rep.errors, rep.pages) == (0, 0, 0, 1)
    assert count(any_db, Measurement) == 0 and rep.results == []


# --- retries -----------------------------------------------------------------------------------

@respx.mock
async def test_429_then_success_respects_retry_after(cfg, db):
    respx.get(API).mock(side_effect=[
        httpx.Response(429, headers={"Retry-After": "7"}),
        httpx.Response(200, json=load("empty.json"))])
    sleeps = Sleeps()
    rep = await run(cfg, db, sleep=sleeps)
    assert sleeps.calls == [7.0] and rep.errors == 0


@respx.mock
async def test_5xx_then_success_backs_off_exponentially(cfg, db, monkeypatch):
    monkeypatch.setattr(ooni_api, "PAGE_LIMIT", 2)
    pages = iter([httpx.Response(502), httpx.Response(503)])
    respx.get(API).mock(side_effect=lambda r: next(pages, None) or two_pages(r))
    sleeps = Sleeps()
    rep = await run(cfg, db, sleep=sleeps)
    assert sleeps.calls == [2.0, 4.0]
    assert rep.stored == 4 and rep.errors == 0


@respx.mock
async def test_transport_errors_are_retried(cfg, db):
    respx.get(API).mock(side_effect=[httpx.ConnectTimeout("timed out"),
                                     httpx.Response(200, json=load("empty.json"))])
    sleeps = Sleeps()
    rep = await run(cfg, db, sleep=sleeps)
    assert sleeps.calls == [2.0] and rep.errors == 0


@respx.mock
async def test_5xx_forever_is_bounded_and_reported(cfg, any_db, caplog):
    route = respx.get(API).mock(return_value=httpx.Response(500))
    sleeps = Sleeps()
    rep = await run(cfg, any_db, sleep=sleeps)
    assert route.call_count == ooni_api.MAX_ATTEMPTS
    assert len(sleeps.calls) == ooni_api.MAX_ATTEMPTS - 1
    assert sleeps.calls == sorted(sleeps.calls) and max(sleeps.calls) <= ooni_api.MAX_DELAY
    assert rep.errors == 1 and rep.stored == 0 and not rep.ok
    assert "HTTP 500" in rep.problems[0] and "ratel.kz" in rep.problems[0]
    assert count(any_db, Measurement) == 0


@respx.mock
async def test_a_long_retry_after_defers_to_the_next_import(cfg, db):
    respx.get(API).mock(return_value=httpx.Response(429, headers={"Retry-After": "3600"}))
    sleeps = Sleeps()
    rep = await run(cfg, db, sleep=sleeps)
    assert sleeps.calls == [] and rep.errors == 1 and "wait 1h:" in rep.problems[0]


@respx.mock
async def test_a_client_error_is_not_retried(cfg, db):
    route = respx.get(API).mock(return_value=httpx.Response(
        400, json={"detail": "Time range must not exceed 6 months."}))
    rep = await run(cfg, db)
    assert route.call_count == 1 and rep.errors == 1 and "6 months" in rep.problems[0]


def test_retry_after_http_date():
    now = datetime(2024, 5, 2, 12, 0, tzinfo=UTC)
    assert ooni_api.retry_after("Thu, 02 May 2024 12:00:30 GMT", now) == 30.0
    assert ooni_api.retry_after("soon", now) is None
    assert ooni_api.retry_after(None, now) is None


# --- malformed pages and items -------------------------------------------------------------------

@respx.mock
async def test_malformed_json_on_page_2_keeps_page_1(cfg, any_db, caplog):
    truncated = (FIX / "truncated_page.json.txt").read_bytes()
    respx.get(API).mock(side_effect=lambda r: httpx.Response(200, content=truncated)
                        if "cont" in r.url.params else httpx.Response(200, json=load(
                            "ratel_page1.json")))
    with caplog.at_level(logging.ERROR, logger="blockwatch.ooni"):
        rep = await run(cfg, any_db)
    assert (rep.stored, rep.errors) == (2, 1)
    with any_db.read() as s:
        uids = set(s.scalars(select(Measurement.uid)))
    assert uids == {"ooni:" + i["measurement_uid"] for i in load("ratel_page1.json")["results"]}
    msg = next(r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)
    assert "ooni-kz" in msg and "ratel.kz" in msg and "page 2" in msg
    assert "not valid JSON" in msg and "cont=" in msg and "nothing stored from this page" in msg


@respx.mock
async def test_a_page_of_the_wrong_shape_is_rejected_whole(cfg, db, caplog):
    bad = load("ratel_page1.json")
    bad["results"].append("not an object")
    respx.get(API).mock(return_value=httpx.Response(200, json=bad))
    rep = await run(cfg, db)
    assert rep.stored == 0 and rep.errors == 1
    assert "results[2] is str" in rep.problems[0]


@respx.mock
async def test_items_missing_fields_are_skipped_with_a_log_line(cfg, db, caplog):
    page = load("ratel_page1.json")
    page["metadata"]["next_url"] = None
    good = page["results"]
    no_time = copy.deepcopy(good[0])
    del no_time["measurement_start_time"]
    no_time["measurement_uid"] = "20240501103000.000001_KZ_webconnectivity_deadbeefdeadbeef"
    bad_asn = copy.deepcopy(good[0])
    bad_asn["probe_asn"] = "Kazakhtelecom"
    bad_asn["measurement_uid"] = "20240501103000.000002_KZ_webconnectivity_deadbeefdeadbee2"
    other_site = copy.deepcopy(good[0])
    other_site["input"] = "https://example.org/"
    other_site["measurement_uid"] = "20240501103000.000003_KZ_webconnectivity_deadbeefdeadbee3"
    other_cc = copy.deepcopy(good[0])
    other_cc["probe_cc"] = "RU"
    other_cc["measurement_uid"] = "20240501103000.000004_KZ_webconnectivity_deadbeefdeadbee4"
    page["results"] = [good[0], no_time, bad_asn, other_site, other_cc, good[1]]
    respx.get(API).mock(return_value=httpx.Response(200, json=page))
    with caplog.at_level(logging.WARNING, logger="blockwatch.ooni"):
        rep = await run(cfg, db)
    assert (rep.fetched, rep.stored, rep.skipped, rep.errors) == (6, 2, 4, 0)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "'measurement_start_time' is missing" in text and "deadbeefdeadbeef" in text
    assert "'probe_asn' 'Kazakhtelecom'" in text and "not on ratel.kz" in text
    assert "'probe_cc' is 'RU'" in text


# --- dedup and resume ----------------------------------------------------------------------------

@respx.mock
async def test_reimport_deduplicates(cfg, any_db, monkeypatch):
    monkeypatch.setattr(ooni_api, "PAGE_LIMIT", 2)
    respx.get(API).mock(side_effect=two_pages)
    await run(cfg, any_db)
    rep = await run(cfg, any_db, now=NOW + timedelta(hours=1))
    assert (rep.fetched, rep.stored, rep.duplicates) == (4, 0, 4)
    assert count(any_db, Measurement) == 4 and count(any_db, Verdict) == 4


def test_uid_without_measurement_uid_uses_report_input_and_time():
    item = load("ratel_page1.json")["results"][0]
    del item["measurement_uid"]
    a = parse_item(item).uid
    assert a.startswith("ooni:r:") and a == parse_item(copy.deepcopy(item)).uid
    item["measurement_start_time"] = "2024-05-01T10:00:01Z"
    assert parse_item(item).uid != a
    del item["report_id"]
    with pytest.raises(ItemError, match="cannot deduplicate"):
        parse_item(item)


@respx.mock
async def test_resume_from_newest_stored_time(cfg, any_db, monkeypatch):
    monkeypatch.setattr(ooni_api, "PAGE_LIMIT", 2)
    route = respx.get(API).mock(side_effect=two_pages)
    await run(cfg, any_db)
    assert route.calls[0].request.url.params["since"] == "2024-04-24T00:00:00"  # now - lookback
    later = NOW + timedelta(days=1)
    route.reset()
    route.mock(return_value=httpx.Response(200, json=load("empty.json")))
    await run(cfg, any_db, now=later)
    newest = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)  # the AS21299 item: newest of any ASN
    params = route.calls[0].request.url.params
    assert params["since"] == (newest - RESUME_OVERLAP).strftime("%Y-%m-%dT%H:%M:%S")
    assert params["until"] == "2024-05-03T00:00:00"


@respx.mock
async def test_resume_is_per_domain(cfg, db, monkeypatch):
    monkeypatch.setattr(ooni_api, "PAGE_LIMIT", 2)
    vlast = Target("Vlast.kz", ("https://vlast.kz/",), (), "KZ", "NEWS")
    respx.get(API, params={"domain": "ratel.kz"}).mock(side_effect=two_pages)
    vroute = respx.get(API, params={"domain": "vlast.kz"}).mock(
        return_value=httpx.Response(200, json=load("empty.json")))
    await run(cfg, db, targets=[RATEL, vlast])
    await run(cfg, db, targets=[RATEL, vlast], now=NOW + timedelta(hours=1))
    # vlast.kz has nothing stored: it looks back again rather than borrowing ratel.kz's time
    assert vroute.calls[1].request.url.params["since"] == "2024-04-24T01:00:00"


@respx.mock
async def test_long_ranges_are_split_into_180_day_queries(write_config, db):
    cfg = write_config(CONFIG.replace('lookback = "8d"', 'lookback = "400d"'))
    route = respx.get(API).mock(return_value=httpx.Response(200, json=load("empty.json")))
    rep = await run(cfg, db)
    spans = [(datetime.fromisoformat(c.request.url.params["since"]).replace(tzinfo=UTC),
              datetime.fromisoformat(c.request.url.params["until"]).replace(tzinfo=UTC))
             for c in route.calls]
    assert len(spans) == 3 and rep.errors == 0
    assert spans[0][0] == NOW - timedelta(days=400) and spans[-1][1] == NOW
    assert all(b - a <= timedelta(days=180) for a, b in spans)
    assert all(spans[i][1] == spans[i + 1][0] for i in range(len(spans) - 1))  # no gaps


def test_windows_edge_cases():
    t = datetime(2024, 1, 1, tzinfo=UTC)
    assert ooni_api.windows(t, t) == []
    assert ooni_api.windows(t, t + timedelta(days=180)) == [(t, t + timedelta(days=180))]


# --- verdicts and events -------------------------------------------------------------------------

def _item(**kw: Any) -> dict[str, Any]:
    base = load("ratel_page1.json")["results"][0]
    base.update(kw)
    return base


@pytest.mark.parametrize(("anomaly", "confirmed", "failure", "btype", "verdict", "is_confirmed"), [
    (False, False, False, None, "ok", False),
    (True, False, False, "dns", "dns", False),
    (True, False, False, "tcp_ip", "tcp_ip", False),
    (True, False, False, "http-failure", "http_failure", False),
    (True, False, False, "http-diff", "http_diff", False),
    (True, True, False, "dns", "dns", True),
    (True, True, False, None, "http_blockpage", True),
    (True, True, False, "http-diff", "http_blockpage", True),
    (True, False, False, None, "inconclusive", False),
    (True, False, False, "quic", "inconclusive", False),
    (True, False, True, "tcp_ip", "inconclusive", False),  # failure wins over the flags
    (False, False, True, None, "inconclusive", False),
])
def test_verdict_mapping(anomaly, confirmed, failure, btype, verdict, is_confirmed):
    scores = {"blocking_general": 1.0 if anomaly else 0.0}
    if btype:
        scores["analysis"] = {"blocking_type": btype}
    j = map_verdict(parse_item(_item(anomaly=anomaly, confirmed=confirmed, failure=failure,
                                     scores=scores)))
    assert (j.verdict, j.confirmed) == (verdict, is_confirmed)
    assert j.reason.startswith("OONI's verdict from AS9198")
    assert "https://api.ooni.io/api/v1/raw_measurement?measurement_uid=" in j.reason


def test_unreliable_measurement_is_inconclusive():
    j = map_verdict(parse_item(_item(anomaly=True, scores={
        "accuracy": 0.0, "analysis": {"blocking_type": "dns"}})))
    assert j.verdict == "inconclusive" and "unreliable" in j.reason


def test_time_formats():
    assert parse_item(_item(measurement_start_time="2024-02-14 09:06:17")).measured_at == \
        datetime(2024, 2, 14, 9, 6, 17, tzinfo=UTC)
    with pytest.raises(ItemError, match="not a date"):
        parse_item(_item(measurement_start_time="yesterday"))


@respx.mock
async def test_two_anomalous_measurements_confirm_a_tcp_ip_event(cfg, any_db, monkeypatch):
    monkeypatch.setattr(ooni_api, "PAGE_LIMIT", 2)
    respx.get(API).mock(side_effect=two_pages)
    rep = await run(cfg, any_db)
    assert [(e.state, e.previous) for e in rep.new_events] == [("tcp_ip", None)]
    with any_db.read() as s:
        ev = s.scalars(select(Event)).one()
        v = s.get(Vantage, ev.vantage_id)
        assert v is not None and v.name == "ooni-kz:AS9198"
        assert ev.url == "https://ratel.kz/" and ev.state == "tcp_ip"
        assert ev.started_at == datetime(2024, 5, 1, 11, tzinfo=UTC)
        assert ev.detected_at == datetime(2024, 5, 1, 12, tzinfo=UTC)
        assert "OONI's verdict from AS9198" in ev.reason
    line = next(r for r in rep.results if r["event"])
    assert line["event"] == "new -> tcp_ip" and line["vantage"] == "ooni-kz:AS9198"


@respx.mock
async def test_a_late_upload_is_stored_but_not_replayed_into_the_state(cfg, db, monkeypatch):
    monkeypatch.setattr(ooni_api, "PAGE_LIMIT", 2)
    respx.get(API).mock(side_effect=two_pages)
    await run(cfg, db)
    late = _item(measurement_uid="20240501113000.555555_KZ_webconnectivity_1a2b3c4d5e6f7a8b",
                 measurement_start_time="2024-05-01T11:30:00Z", anomaly=False)
    page = load("empty.json")
    page["results"] = [late]
    respx.get(API).mock(return_value=httpx.Response(200, json=page))
    rep = await run(cfg, db, now=NOW + timedelta(hours=1))
    assert rep.stored == 1 and rep.new_events == []
    with db.read() as s:
        v = s.scalars(select(Vantage).where(Vantage.name == "ooni-kz:AS9198")).one()
        st = s.get(UrlState, ("https://ratel.kz/", v.id))
        assert st is not None and st.state == "tcp_ip" and st.pending is None
        assert st.last_seen_at == datetime(2024, 5, 1, 12, tzinfo=UTC)
        assert s.scalar(select(func.count()).select_from(Verdict)) == 5


@respx.mock
async def test_import_all_and_latest_only(write_config, db, monkeypatch):
    monkeypatch.setattr(ooni_api, "PAGE_LIMIT", 2)
    cfg = write_config(CONFIG + '\n[[vantage]]\nname = "vps"\nkind = "local"\n')
    respx.get(API).mock(side_effect=two_pages)
    reps = await import_all(cfg, db, [RATEL], now=NOW, sleep=Sleeps())
    assert [r.vantage for r in reps] == ["ooni-kz"]
    latest = check_results(reps, latest_only=True)
    assert [(r["vantage"], r["verdict"]) for r in latest] == [
        ("ooni-kz:AS21299", "ok"), ("ooni-kz:AS9198", "tcp_ip")]
    assert latest[1]["measured_at"] == "2024-05-01T12:00:00Z"


# --- the `check` command ------------------------------------------------------------------------

@respx.mock
def test_check_command_prints_ooni_vantages(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from blockwatch.cli import main

    monkeypatch.setattr(ooni_api, "PAGE_LIMIT", 2)
    respx.get(API).mock(side_effect=two_pages)
    (tmp_path / "t.toml").write_text('[[target]]\nname = "Ratel.kz"\nurls = ["https://ratel.kz/"]\n')
    (tmp_path / "c.toml").write_text(
        '[probe]\ntargets = ["t.toml"]\n[[vantage]]\nname = "ooni-kz"\nkind = "ooni"\n'
        'country = "KZ"\nlookback = "1000d"\n')
    assert main(["--config", str(tmp_path / "c.toml"), "check", "--json"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    # the newest verdict per URL and network
    assert sorted((x["vantage"], x["verdict"]) for x in lines) == [
        ("ooni-kz:AS21299", "ok"), ("ooni-kz:AS9198", "tcp_ip")]
