"""The collector API over real HTTP (uvicorn on loopback) with PostgreSQL as the store, and the
lab as the network its control measurements see."""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import uuid
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
        assert count(c.db, Measurement, Measurement.role == "vantage") == 7
        assert count(c.db, Verdict) == 7
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


async def test_malformed_payloads_are_422_naming_the_field(lab: Lab, tmp_path: Path,
                                                            pg_url: str) -> None:
    url = "https://ratel.test/"
    tok = tokens("a1")
    cfg = write_collector_config(tmp_path, lab, pg_url, agents=tok, urls=[url])
    good = {"url": url, "uid": uuid.uuid4().hex, "measured_at": "2025-01-01T00:00:00.000Z"}
    async with running_collector(cfg) as c, httpx.AsyncClient() as http:
        post = f"{c.url}/api/v1/measurements"
        h = auth(tok["a1"])
        cases = [
            (b"{not json", "body"),
            (json.dumps({"measurement": [good]}), "measurements"),
            (json.dumps({"measurements": []}), "measurements"),
            (json.dumps({"measurements": [{**good, "measured_at": "yesterday"}]}),
             "measurements.0.measured_at"),
            (json.dumps({"measurements": [{**good, "measured_at": "2999-01-01T00:00:00Z"}]}),
             "measurements.0.measured_at"),
            (json.dumps({"measurements": [good, {**good, "url": "ftp://x"}]}), "measurements.1.url"),
            (json.dumps({"measurements": [{**good, "uid": "../../x"}]}), "measurements.0.uid"),
            (json.dumps({"measurements": [{**good, "tcp": [{"address": "1.2.3.4", "port": "x",
                                                            "status": "ok"}]}]}),
             "measurements.0.tcp.0.port"),
            (json.dumps({"measurements": [good], "asn": "9198"}), "asn"),
        ]
        for body, field in cases:
            r = await http.post(post, headers={**h, "content-type": "application/json"}, content=body)
            assert r.status_code == 422, (body, r.text)
            assert field in r.json()["fields"], (field, r.json())
            assert "input" not in json.dumps(r.json()["detail"])  # no echo of what was sent
        assert count(c.db, Measurement) == 0


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
        assert body["rejected"] == [{"uid": bad["uid"],
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
