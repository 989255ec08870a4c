"""The collector API over real HTTP (uvicorn on loopback) with PostgreSQL as the store, and the
lab as the network its control measurements see."""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from blockwatch.collector.commands import cmd_agent_token
from blockwatch.probe.dnsprobe import ResolverSpec
from blockwatch.probe.resolvers import ResolverSet
from blockwatch.probe.runner import NetworkView, ProbeSettings, measure
from blockwatch.storage.models import Event, Measurement, UrlState, Vantage, Verdict
from lab import VANTAGE, Behaviour, Lab
from test_collector_support import running_collector, tokens, write_collector_config


async def vantage_measurement(lab: Lab, url: str) -> dict[str, Any]:
    """What an agent on the lab's vantage network would report."""
    settings = ProbeSettings(timeout=2.0, ca_bundle=lab.ca_pem_path,
                             allow_networks=(ipaddress.ip_network("127.0.0.0/8"),))
    view = NetworkView("agent", "vantage", (ResolverSpec.parse(lab.vantage_resolver),), VANTAGE)
    async with ResolverSet.for_view(view, settings) as dns:
        return (await measure(url, view, settings, dns)).to_json()


def count(db: Any, model: Any, *where: Any) -> int:
    with db.read() as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def measured(db: Any, model: Any, *where: Any) -> int:
    """Measurements (or verdicts) stored: a row stands for itself and its run's repeats."""
    with db.read() as s:
        return int(s.scalar(select(func.sum(1 + model.repeats)).where(*where)) or 0)


def auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def test_upload_is_judged_against_a_control_and_stored(lab: Lab, tmp_path: Path, pg_url: str) -> None:
    site = await lab.add_site("ratel.test", vantage=Behaviour.tls_reset_after_hello)
    url = lab.url("ratel.test")
    tok = tokens("almaty-1")
    cfg = write_collector_config(tmp_path, lab, pg_url, agents=tok, urls=[url],
                                 asn={"almaty-1": "AS9198"})
    m = await vantage_measurement(lab, url)
    assert m["source_address"] == VANTAGE
    async with running_collector(cfg) as c, httpx.AsyncClient() as http:
        before = len(site.connections_from(lab.CONTROL))
        r = await http.post(f"{c.url}/api/v1/measurements", headers=auth(tok["almaty-1"]),
                            json={"measurements": [m]})
        assert r.status_code == 200, r.text
        assert r.json() == {"accepted": 1, "duplicates": 0, "rejected": []}
        # the collector measured the control itself, from the control's network
        assert len(site.connections_from(lab.CONTROL)) > before
        with c.db.read() as s:
            v = s.scalar(select(Verdict))
            assert v is not None and v.verdict == "tls" and v.control_id is not None
            ag = s.get(Vantage, v.vantage_id)
            assert ag is not None
            assert (ag.name, ag.kind, ag.country, ag.asn) == ("almaty-1", "agent", "KZ", "AS9198")
            stored = s.get(Measurement, v.measurement_id)
            assert stored is not None and stored.uid == f"almaty-1/{m['uid']}"
            # the volunteer's address never reaches the store
            assert stored.evidence["source_address"] is None and VANTAGE not in json.dumps(stored.evidence)
            assert stored.evidence["vantage"] == "almaty-1" and stored.keep
            control = s.get(Measurement, v.control_id)
            assert control is not None and control.role == "control"
        # a second upload within the window reuses that control
        m2 = await vantage_measurement(lab, url)
        n = len(site.connections_from(lab.CONTROL))
        r = await http.post(f"{c.url}/api/v1/measurements", headers=auth(tok["almaty-1"]),
                            json={"measurements": [m2]})
        assert r.json()["accepted"] == 1
        assert len(site.connections_from(lab.CONTROL)) == n
        assert count(c.db, Measurement, Measurement.role == "control") == 1
        # two "tls" rounds confirm an event
        with c.db.read() as s:
            evs = s.scalars(select(Event)).all()
            assert [(e.previous, e.state) for e in evs] == [(None, "tls")]


async def test_collector_without_connectivity_judges_inconclusive(lab: Lab, tmp_path: Path,
                                                                  pg_url: str) -> None:
    # the collector's own canary is unreachable from the control's network: its controls say
    # nothing, so an agent's failure must not be called "down" (nor blocking)
    await lab.add_site("canary.test", control=Behaviour.refuse)
    await lab.add_site("ratel.test", behaviour=Behaviour.tls_reset_after_hello)
    url = lab.url("ratel.test")
    tok = tokens("almaty-1")
    cfg = write_collector_config(tmp_path, lab, pg_url, agents=tok, urls=[url],
                                 canaries=[lab.url("canary.test")])
    m = await vantage_measurement(lab, url)
    async with running_collector(cfg) as c, httpx.AsyncClient() as http:
        r = await http.post(f"{c.url}/api/v1/measurements", headers=auth(tok["almaty-1"]),
                            json={"measurements": [m]})
        assert r.status_code == 200, r.text
        with c.db.read() as s:
            v = s.scalar(select(Verdict))
            assert v is not None and v.verdict == "inconclusive"
            assert "control" in v.reason


async def test_redelivery_is_acknowledged_not_doubled(lab: Lab, tmp_path: Path, pg_url: str) -> None:
    await lab.add_site("ratel.test")
    url = lab.url("ratel.test")
    tok = tokens("a1")
    cfg = write_collector_config(tmp_path, lab, pg_url, agents=tok, urls=[url])
    ms = [await vantage_measurement(lab, url) for _ in range(3)]
    async with running_collector(cfg) as c, httpx.AsyncClient(timeout=30) as http:
        post = f"{c.url}/api/v1/measurements"
        r = await http.post(post, headers=auth(tok["a1"]), json={"measurements": ms[:2]})
        assert r.json() == {"accepted": 2, "duplicates": 0, "rejected": []}
        r = await http.post(post, headers=auth(tok["a1"]), json={"measurements": [*ms, ms[2]]})
        assert r.json() == {"accepted": 1, "duplicates": 3, "rejected": []}
        # the same batch posted concurrently: PostgreSQL's unique uid decides, each is stored once
        more = [await vantage_measurement(lab, url) for _ in range(4)]
        rs = await asyncio.gather(*(
            http.post(post, headers=auth(tok["a1"]), json={"measurements": more}) for _ in range(6)))
        assert all(r.status_code == 200 for r in rs), [r.text for r in rs]
        assert sum(r.json()["accepted"] for r in rs) == 4
        assert sum(r.json()["duplicates"] for r in rs) == 4 * 5
        assert measured(c.db, Measurement, Measurement.role == "vantage") == 7
        assert measured(c.db, Verdict) == 7
        with c.db.read() as s:
            st = s.scalar(select(UrlState).join(Vantage, Vantage.id == UrlState.vantage_id)
                          .where(Vantage.name == "a1"))
            assert st is not None and st.state == "ok"


async def test_missing_or_wrong_token_is_401_and_stores_nothing(lab: Lab, tmp_path: Path,
                                                                 pg_url: str) -> None:
    await lab.add_site("ratel.test")
    url = lab.url("ratel.test")
    tok = tokens("a1")
    cfg = write_collector_config(tmp_path, lab, pg_url, agents=tok, urls=[url])
    m = await vantage_measurement(lab, url)
    async with running_collector(cfg) as c, httpx.AsyncClient() as http:
        post = f"{c.url}/api/v1/measurements"
        for headers in ({}, auth("wrong"), {"authorization": "Bearer"},
                        {"authorization": f"Basic {tok['a1']}"},
                        auth(tok["a1"] + "x")):
            r = await http.post(post, headers=headers, json={"measurements": [m]})
            assert r.status_code == 401, headers
            assert r.headers["www-authenticate"].startswith("Bearer")
        r = await http.get(f"{c.url}/api/v1/targets")
        assert r.status_code == 401
        assert count(c.db, Measurement) == 0
        # The token is checked before the body is read: announce 100 MB, send a few bytes and
        # the answer comes back at once (the server never waits for the rest).
        reader, writer = await asyncio.open_connection("127.0.0.1", c.port)
        writer.write(b"POST /api/v1/measurements HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer nope\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 100000000\r\n\r\n{\"measu")
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
        assert head.startswith(b"HTTP/1.1 401")
        writer.close()
        # whitespace around the token is not part of it
        r = await http.post(post, headers=auth(f"  {tok['a1']}"), json={"measurements": [m]})
        assert r.status_code == 200


async def test_oversized_bodies_are_413(lab: Lab, tmp_path: Path, pg_url: str) -> None:
    url = "https://ratel.test/"
    tok = tokens("a1")
    cfg = write_collector_config(tmp_path, lab, pg_url, agents=tok, urls=[url], max_body="16KiB")
    async with running_collector(cfg) as c, httpx.AsyncClient() as http:
        post = f"{c.url}/api/v1/measurements"
        big = json.dumps({"measurements": [], "pad": "x" * 20000}).encode()
        r = await http.post(post, headers=auth(tok["a1"]), content=big)
        assert r.status_code == 413 and "16384" in r.json()["detail"]

        async def chunks():  # chunked: no Content-Length to refuse up front
            for _ in range(40):
                yield b" " * 1024

        r = await http.post(post, headers=auth(tok["a1"]), content=chunks())
        assert r.status_code == 413
        assert count(c.db, Measurement) == 0


def now_iso(delta: timedelta = timedelta(0)) -> str:
    return (datetime.now(UTC) + delta).isoformat().replace("+00:00", "Z")


async def test_malformed_uploads_are_422_and_bad_measurements_rejected_by_name(
        lab: Lab, tmp_path: Path, pg_url: str) -> None:
    url = "https://ratel.test/"
    tok = tokens("a1")
    cfg = write_collector_config(tmp_path, lab, pg_url, agents=tok, urls=[url])
    good = {"url": url, "uid": uuid.uuid4().hex, "measured_at": now_iso()}
    async with running_collector(cfg) as c, httpx.AsyncClient() as http:
        post = f"{c.url}/api/v1/measurements"
        h = {**auth(tok["a1"]), "content-type": "application/json"}
        # what is wrong with the upload as such: 422 for all of it
        whole = [
            (b"{not json", "body"),
            (json.dumps({"measurement": [good]}), "measurements"),
            (json.dumps({"measurements": []}), "measurements"),
            (json.dumps({"measurements": [good], "asn": "9198"}), "asn"),
        ]
        for body, field in whole:
            r = await http.post(post, headers=h, content=body)
            assert r.status_code == 422, (body, r.text)
            assert field in r.json()["fields"], (field, r.json())
            assert "input" not in json.dumps(r.json()["detail"])  # no echo of what was sent
        # what is wrong with one measurement: that one is rejected by name, in a 200
        items = [
            ({**good, "measured_at": "yesterday"}, "measured_at"),
            ({**good, "measured_at": now_iso(timedelta(days=365 * 100))}, "measured_at"),
            ({**good, "measured_at": "1970-01-01T00:00:00Z"}, "measured_at"),
            ({**good, "measured_at": "0001-01-01T00:00:00+01:00"}, "measured_at"),
            ({**good, "measured_at": now_iso(-timedelta(days=8))}, "measured_at"),
            ({**good, "url": "ftp://x"}, "url"),
            ({**good, "uid": "../../x"}, "uid"),
            ({**good, "tcp": [{"address": "1.2.3.4", "port": "x", "status": "ok"}]}, "tcp.0.port"),
            ({**good, "t_ms": float("nan")}, "t_ms"),
            ({**good, "tcp": [{"address": "1.2.3.4", "port": 1, "status": "ok",
                               "t_ms": float("inf")}]}, "tcp.0.t_ms"),
            ("not an object", "measurement"),
        ]
        for item, field in items:
            # json.dumps writes NaN and Infinity, as Python agents would
            r = await http.post(post, headers=h, content=json.dumps({"measurements": [item]}))
            assert r.status_code == 200, (item, r.text)
            body = r.json()
            assert body["accepted"] == 0, body
            [rej] = body["rejected"]
            assert rej["index"] == 0 and rej["status"] == 422
            assert rej["error"].startswith(field + ":"), (field, rej)
            assert rej["uid"] == (item["uid"] if isinstance(item, dict) else "")
        assert count(c.db, Measurement) == 0


async def test_one_bad_measurement_never_sinks_its_upload(lab: Lab, tmp_path: Path,
                                                         pg_url: str) -> None:
    """NaN, a date outside the window and hostile text among valid measurements: the valid ones
    are stored (NUL and a lone surrogate as visible escapes, on PostgreSQL), the others named."""
    await lab.add_site("ratel.test")
    url = lab.url("ratel.test")
    tok = tokens("a1")
    cfg = write_collector_config(tmp_path, lab, pg_url, agents=tok, urls=[url])
    base = await vantage_measurement(lab, url)

    def item(**kw: Any) -> dict[str, Any]:
        return {**base, "uid": uuid.uuid4().hex, **kw}

    nul = item()
    nul["http"] = {**nul["http"], "title": "Ratel\x00 \x01\x7f\u202e",
                   "headers": {"x-evil": "a\x00b"}}
    nan = item(t_ms=float("nan"))
    old = item(measured_at="1970-01-01T00:00:00Z")
    sur = item()
    sur["http"] = {**sur["http"], "title": "SURROGATE"}
    ok = item()
    # a lone surrogate, as JSON allows it to be written: not text, so that measurement is
    # refused (and pydantic's parser refuses the whole upload: read item by item)
    body = json.dumps({"measurements": [nul, nan, old, sur, ok]}).replace("SURROGATE", "\\udc80x")
    async with running_collector(cfg) as c, httpx.AsyncClient() as http:
        r = await http.post(f"{c.url}/api/v1/measurements", headers={
            **auth(tok["a1"]), "content-type": "application/json"}, content=body)
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["accepted"] == 2 and out["duplicates"] == 0, out
        assert sorted((x["index"], x["uid"], x["error"].partition(":")[0])
                      for x in out["rejected"]) == [
            (1, nan["uid"], "t_ms"), (2, old["uid"], "measured_at"), (3, sur["uid"], "http.title")]
        with c.db.read() as s:
            stored = s.scalar(select(Measurement).where(Measurement.uid == f"a1/{nul['uid']}"))
            assert stored is not None
            assert stored.evidence["http"]["title"] == "Ratel\\u0000 \\u0001\\u007f\u202e"
            assert stored.evidence["http"]["headers"] == {"x-evil": "a\\u0000b"}
            assert s.scalar(select(Measurement).where(Measurement.uid == f"a1/{ok['uid']}"))
            assert measured(c.db, Verdict) == 2


async def test_urls_that_are_not_targets_are_rejected_and_never_probed(lab: Lab, tmp_path: Path,
                                                                       pg_url: str) -> None:
    await lab.add_site("ratel.test")
    other = await lab.add_site("internal.test")
    url = lab.url("ratel.test")
    tok = tokens("a1")
    cfg = write_collector_config(tmp_path, lab, pg_url, agents=tok, urls=[url])
    m = await vantage_measurement(lab, url)
    bad = await vantage_measurement(lab, lab.url("internal.test"))
    async with running_collector(cfg) as c, httpx.AsyncClient() as http:
        n = len(other.connections)
        r = await http.post(f"{c.url}/api/v1/measurements", headers=auth(tok["a1"]),
                            json={"measurements": [bad, m]})
        body = r.json()
        assert r.status_code == 200 and body["accepted"] == 1
        assert body["rejected"] == [{"uid": bad["uid"], "index": None, "status": 422,
                                     "error": f"{bad['url']} is not a target URL of this collector"}]
        assert len(other.connections) == n  # the collector did not go there


async def test_targets_status_health_openapi(lab: Lab, tmp_path: Path, pg_url: str) -> None:
    await lab.add_site("ratel.test", vantage=Behaviour.tls_reset_after_hello)
    url = lab.url("ratel.test")
    tok = tokens("almaty-secret-name", "astana-2")
    cfg = write_collector_config(tmp_path, lab, pg_url, agents=tok, urls=[url],
                                 asn={"almaty-secret-name": "AS9198"})
    m = await vantage_measurement(lab, url)
    async with running_collector(cfg) as c, httpx.AsyncClient() as http:
        r = await http.get(f"{c.url}/api/v1/targets", headers=auth(tok["astana-2"]))
        assert r.status_code == 200
        assert r.json()["targets"] == [{"name": "Site 0", "urls": [url]}]
        assert r.json()["probe"]["timeout_seconds"] == 2.0
        r = await http.post(f"{c.url}/api/v1/measurements", headers=auth(tok["almaty-secret-name"]),
                            json={"measurements": [m]})
        assert r.json()["accepted"] == 1
        r = await http.get(f"{c.url}/api/v1/status")
        assert r.status_code == 200
        text = r.text
        assert "almaty-secret-name" not in text and "astana-2" not in text and VANTAGE not in text
        st = r.json()
        assert st["targets"][0]["target"] == "Site 0"
        assert st["targets"][0]["vantages"] == [
            {"kind": "agent", "verdict": "tls", "confirmed": False,
             "measured_at": st["targets"][0]["vantages"][0]["measured_at"],
             "country": "KZ", "asn": "AS9198", "network": "KZ AS9198"}]
        r = await http.get(f"{c.url}/api/v1/health")
        assert r.status_code == 200 and r.json()["status"] == "ok"
        r = await http.get(f"{c.url}/api/v1/openapi.json")
        paths = r.json()["paths"]
        assert {"/api/v1/measurements", "/api/v1/targets", "/api/v1/status", "/api/v1/health"} <= set(paths)
        assert "MeasurementIn" in json.dumps(r.json()["components"])
        # no status site built yet: a clear 404; once built, it is served at /
        r = await http.get(f"{c.url}/")
        assert r.status_code == 404
        site = cfg.resolve(cfg.settings.site.out)
        site.mkdir(parents=True)
        (site / "index.html").write_text("<title>status</title>", encoding="utf-8")
        r = await http.get(f"{c.url}/")
        assert r.status_code == 200 and "<title>status</title>" in r.text


async def test_reload_adds_and_revokes_agents(lab: Lab, tmp_path: Path, pg_url: str) -> None:
    await lab.add_site("ratel.test")
    url = lab.url("ratel.test")
    tok = tokens("old", "new")
    cfg = write_collector_config(tmp_path, lab, pg_url, agents={"old": tok["old"]}, urls=[url])
    async with running_collector(cfg) as c, httpx.AsyncClient() as http:
        targets = f"{c.url}/api/v1/targets"
        assert (await http.get(targets, headers=auth(tok["old"]))).status_code == 200
        assert (await http.get(targets, headers=auth(tok["new"]))).status_code == 401
        write_collector_config(tmp_path, lab, pg_url, agents={"new": tok["new"]}, urls=[url])
        assert await asyncio.to_thread(c.state.reload)
        assert (await http.get(targets, headers=auth(tok["old"]))).status_code == 401
        assert (await http.get(targets, headers=auth(tok["new"]))).status_code == 200
        # a broken file keeps the running configuration
        (tmp_path / "blockwatch.toml").write_text("[storage\n", encoding="utf-8")
        assert not await asyncio.to_thread(c.state.reload)
        assert (await http.get(targets, headers=auth(tok["new"]))).status_code == 200


def test_agent_token_prints_a_token_and_its_vantage(write_config: Any, capsys: pytest.CaptureFixture[str],
                                                    tmp_path: Path) -> None:
    import argparse

    from blockwatch.config import load

    cfg = write_config("")
    assert cmd_agent_token(cfg, argparse.Namespace(name="almaty-1")) == 0
    out = capsys.readouterr().out
    token = out.split("\n\n")[1].strip()
    assert len(token) >= 43
    snippet = out[out.index("[[vantage]]"):]
    assert f'token_sha256 = "{hashlib.sha256(token.encode()).hexdigest()}"' in snippet
    # the printed lines are valid configuration as they stand
    p = tmp_path / "pasted.toml"
    p.write_text(snippet, encoding="utf-8")
    v = load(p).settings.vantage[0]
    assert (v.name, v.kind) == ("almaty-1", "agent")
    assert cmd_agent_token(cfg, argparse.Namespace(name="bad name")) == 2


async def test_back_dated_upload_neither_rewrites_history_nor_reprobes(lab: Lab, tmp_path: Path,
                                                                       pg_url: str) -> None:
    """A measurement older than the newest judged one is stored as evidence but moves no event
    or state, and re-uses today's control instead of measuring every target again."""
    site = await lab.add_site("ratel.test", vantage=Behaviour.tls_reset_after_hello)
    url = lab.url("ratel.test")
    tok = tokens("a1")
    cfg = write_collector_config(tmp_path, lab, pg_url, agents=tok, urls=[url])
    blocked = [await vantage_measurement(lab, url) for _ in range(3)]  # confirm_after is 2
    async with running_collector(cfg) as c, httpx.AsyncClient() as http:
        post = f"{c.url}/api/v1/measurements"
        r = await http.post(post, headers=auth(tok["a1"]), json={"measurements": blocked})
        assert r.json()["accepted"] == 3
        with c.db.read() as s:
            before = ([(e.state, e.started_at, e.ended_at) for e in s.scalars(select(Event))],
                      [(st.state, st.since, st.last_seen_at, st.last_verdict_id)
                       for st in s.scalars(select(UrlState))])
        assert any(e[0] == "tls" and e[2] is None for e in before[0])
        n = len(site.connections_from(lab.CONTROL))
        # back-dated "ok" results, two days old: still within the agent queue's age
        late = [{**blocked[0], "uid": uuid.uuid4().hex, "http": None, "tls": [],
                 "measured_at": now_iso(-timedelta(days=2, minutes=k))} for k in range(3)]
        r = await http.post(post, headers=auth(tok["a1"]), json={"measurements": late})
        assert r.status_code == 200 and r.json()["accepted"] == 3, r.text
        assert len(site.connections_from(lab.CONTROL)) == n  # today's control re-used
        with c.db.read() as s:
            after = ([(e.state, e.started_at, e.ended_at) for e in s.scalars(select(Event))],
                     [(st.state, st.since, st.last_seen_at, st.last_verdict_id)
                      for st in s.scalars(select(UrlState))])
        assert after == before
        assert measured(c.db, Verdict) == 6


async def test_a_rejected_item_with_a_lone_surrogate_uid_is_answered(lab: Lab, tmp_path: Path,
                                                                    pg_url: str) -> None:
    """The answer names a rejected item by its uid: a uid that cannot be encoded must not turn
    the whole answer into a 500 (the valid item is stored either way)."""
    url = "https://ratel.test/"
    tok = tokens("a1")
    cfg = write_collector_config(tmp_path, lab, pg_url, agents=tok, urls=[url])
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    good = {"url": url, "uid": uuid.uuid4().hex, "measured_at": now}
    bad = {"url": url, "uid": "SURR", "measured_at": "yesterday"}
    body = json.dumps({"measurements": [good, bad]}).replace("SURR", "\\udc80x")
    async with running_collector(cfg) as c, httpx.AsyncClient() as http:
        r = await http.post(f"{c.url}/api/v1/measurements", content=body,
                            headers={"authorization": f"Bearer {tok['a1']}",
                                     "content-type": "application/json"})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["accepted"] == 1
    assert [x["index"] for x in answer["rejected"]] == [1]
