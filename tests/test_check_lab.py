"""The probe engine and the verdicts against the in-process network lab: the vantage and the
control see different networks (their own resolvers and source addresses), and lab servers
censor only the vantage."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from blockwatch.config import Config, load
from blockwatch.context import build_context
from blockwatch.round import Result, run_round
from blockwatch.storage import open_database, repo
from blockwatch.storage.models import Event, Measurement, Verdict
from lab import CONTROL, DNS, ISSUER_KZ, ISSUER_ROGUE, VANTAGE, Behaviour, Lab

FORTINET_BLOCKPAGE = (b"<html><head><title>Web Filter Violation</title></head><body>"
                      b"<h1>FortiGuard Web Filtering</h1><p>The page you have requested has been "
                      b"blocked, because the URL is banned.</p></body></html>")
ARTICLE = ("<html><head><title>Ratel: independent journalism from Kazakhstan</title></head><body>"
           + "<p>news paragraph</p>" * 300 + "</body></html>").encode()


def lab_asn(ip: str) -> str | None:
    """An IP-to-ASN table for the lab: all of 127.0.0.0/8 is one network."""
    return "AS64500" if ip.startswith("127.") else None


async def scenario(lab: Lab, tmp_path: Path, *, scheme: str = "https", timeout: str = "1s",
                   extra_probe: str = "", canary: bool = True) -> Config:
    if canary and "canary.test" not in lab.sites:
        await lab.add_site("canary.test")
    url = lab.url("ratel.test", scheme=scheme)
    (tmp_path / "targets.toml").write_text(
        f'[[target]]\nname = "Ratel.kz"\nurls = ["{url}"]\naliases = ["Ратель"]\ncountry = "KZ"\n'
        'category = "NEWS"\n', encoding="utf-8")
    canaries = f'["{lab.url("canary.test")}"]' if canary else "[]"
    probe = f'timeout = "{timeout}"\ncanaries = {canaries}\n{extra_probe}'
    (tmp_path / "blockwatch.toml").write_text(
        '[storage]\nurl = "sqlite:///blockwatch.db"\n'
        + lab.probe_config("targets.toml", probe=probe, country="KZ"), encoding="utf-8")
    return load(tmp_path / "blockwatch.toml")


async def check(cfg: Config, *, asn: Any = None) -> Result:
    from blockwatch.targets import load_targets

    db = open_database(cfg.database_url)
    try:
        report = await run_round(cfg, load_targets(cfg.target_files), db,
                                 context=build_context(cfg, asn=asn))
    finally:
        db.close()
    assert len(report.results) == 1
    return report.results[0]


async def test_ok(lab: Lab, tmp_path: Path) -> None:
    site = await lab.add_site("ratel.test", body=ARTICLE)
    r = await check(await scenario(lab, tmp_path))
    assert (r.verdict, r.confirmed) == ("ok", False), r.reason
    assert "Ratel: independent journalism" in r.reason
    # the vantage really used its own network: its source address and SNI
    assert {c.source for c in site.connections} >= {VANTAGE, CONTROL}
    assert all(c.sni == "ratel.test" for c in site.connections if c.tls)
    assert lab.errors == []


async def test_evidence_is_stored(lab: Lab, tmp_path: Path) -> None:
    await lab.add_site("ratel.test", body=ARTICLE)
    cfg = await scenario(lab, tmp_path)
    await check(cfg)
    db = open_database(cfg.database_url)
    with db.read() as s:
        ms = {m.role: m for m in s.scalars(select(Measurement).where(Measurement.url.contains("ratel")))}
    db.close()
    v = ms["vantage"].evidence
    assert v["source_address"] == VANTAGE
    assert v["dns"][0]["resolver"] == lab.vantage_resolver and v["dns"][0]["rcode"] == "NOERROR"
    assert v["tcp"][0]["status"] == "ok" and v["tls"][0]["version"].startswith("TLS")
    chain = v["tls"][0]["chain"]
    assert chain and len(chain[0]["sha256"]) == 64 and "ratel.test" in chain[0]["san"]
    assert v["http"]["status"] == 200 and v["http"]["body_sha256"] and v["http"]["title"]
    assert ms["vantage"].evidence_sha256 == repo.evidence_hash(v)
    assert ms["control"].evidence["source_address"] == CONTROL


async def test_dns_bogon_answer(lab: Lab, tmp_path: Path) -> None:
    await lab.add_site("ratel.test")
    lab.vantage_dns.set("ratel.test", DNS.answer(["10.10.34.35"]))
    cfg = await scenario(lab, tmp_path)
    r = await check(cfg)
    assert r.verdict == "dns"
    assert "10.10.34.35 (a private address)" in r.reason
    assert lab.site("ratel.test").address in r.reason  # what the control resolvers answered
    db = open_database(cfg.database_url)
    with db.read() as s:
        m = s.scalar(select(Measurement).where(Measurement.role == "vantage",
                                               Measurement.url.contains("ratel")))
        # a private answer is evidence, never a place to connect to
        assert m is not None and m.evidence["tcp"] == [
            {"address": "10.10.34.35", "port": lab.https_port, "status": "skipped",
             "failure": "bogon_address", "t_ms": 0.0}]
    db.close()


@pytest.mark.parametrize("reply,word", [(DNS.nxdomain(), "NXDOMAIN"), (DNS.servfail(), "SERVFAIL"),
                                        (DNS.noanswer(), "no address"), (DNS.drop(), "timed out")])
async def test_dns_failures_at_the_vantage(lab: Lab, tmp_path: Path, reply: Any, word: str) -> None:
    await lab.add_site("ratel.test")
    lab.vantage_dns.set("ratel.test", reply)
    r = await check(await scenario(lab, tmp_path))
    assert r.verdict == "dns" and word in r.reason


async def test_nxdomain_everywhere_is_down(lab: Lab, tmp_path: Path) -> None:
    cfg = await scenario(lab, tmp_path)  # ratel.test does not exist in any zone
    r = await check(cfg)
    assert r.verdict == "down" and "does not work anywhere" in r.reason


async def test_dns_answer_that_is_not_the_site(lab: Lab, tmp_path: Path) -> None:
    await lab.add_site("ratel.test")
    other = await lab.add_site("elsewhere.test")
    lab.vantage_dns.set("ratel.test", DNS.answer([other.address]))
    r = await check(await scenario(lab, tmp_path))
    assert r.verdict == "dns" and not r.confirmed
    assert "did not prove to be ratel.test" in r.reason


async def test_known_block_address_is_confirmed(lab: Lab, tmp_path: Path) -> None:
    await lab.add_site("ratel.test")
    stop = await lab.add_site("stop.test", body=b"<title>blocked</title>")
    lab.vantage_dns.set("ratel.test", DNS.answer([stop.address]))
    r = await check(await scenario(lab, tmp_path, extra_probe=f'block_addresses = ["{stop.address}"]'))
    assert (r.verdict, r.confirmed) == ("dns", True) and "known block address" in r.reason


async def test_load_balanced_dns_with_a_valid_certificate_is_ok(lab: Lab, tmp_path: Path) -> None:
    site = await lab.add_site("ratel.test", body=ARTICLE)
    # a second server of the same site at another address (a load balancer's other node)
    twin = await lab._new_host(site.host.modes, primary=False)
    twin.add(site)
    lab.vantage_dns.set("ratel.test", DNS.answer([twin.address]))
    r = await check(await scenario(lab, tmp_path))
    assert r.verdict == "ok", r.reason
    assert any(c.local[0] == twin.address for c in site.connections if c.source == VANTAGE)


async def test_sni_filtering_at_an_unfamiliar_address_is_tls_not_dns(lab: Lab, tmp_path: Path) -> None:
    # geo-DNS gave the vantage another node of the site, and the censor resets the handshake:
    # nothing proves the address wrong, the reset after the ClientHello is the evidence
    site = await lab.add_site("ratel.test", vantage=Behaviour.tls_reset_after_hello(sni="ratel.test"))
    twin = await lab._new_host(site.host.modes, primary=False)
    twin.add(site)
    lab.vantage_dns.set("ratel.test", DNS.answer([twin.address]))
    r = await check(await scenario(lab, tmp_path))
    assert r.verdict == "tls" and "reset after the ClientHello" in r.reason


async def test_ip_blocking_same_network(lab: Lab, tmp_path: Path) -> None:
    await lab.add_site("ratel.test", vantage=Behaviour.refuse)
    cfg = await scenario(lab, tmp_path)
    r = await check(cfg, asn=lab_asn)  # the answers share a network with the control's
    assert r.verdict == "tcp_ip", r.reason
    assert "connection_refused" in r.reason and "the control connected" in r.reason


async def test_connect_timeout_is_tcp_ip(lab: Lab, tmp_path: Path) -> None:
    await lab.add_site("ratel.test", vantage=Behaviour.blackhole_connect)
    r = await check(await scenario(lab, tmp_path), asn=lab_asn)
    assert r.verdict == "tcp_ip" and "generic_timeout_error" in r.reason


@pytest.mark.parametrize("behaviour,how", [
    (Behaviour.tls_reset_after_hello, "reset after the ClientHello"),
    (Behaviour.tls_stall_after_hello, "stalled after the ClientHello"),
])
async def test_tls_interference_after_client_hello(lab: Lab, tmp_path: Path, behaviour: Any,
                                                   how: str) -> None:
    site = await lab.add_site("ratel.test", vantage=behaviour(sni="ratel.test"))
    r = await check(await scenario(lab, tmp_path))
    assert (r.verdict, r.confirmed) == ("tls", False)
    assert how in r.reason and "the control completed the handshake" in r.reason
    assert any(c.sni == "ratel.test" for c in site.connections_from(VANTAGE))


async def test_state_interception_certificate_is_confirmed(lab: Lab, tmp_path: Path) -> None:
    await lab.add_site("ratel.test", vantage=Behaviour.mitm(issuer=ISSUER_KZ))
    r = await check(await scenario(lab, tmp_path))
    assert (r.verdict, r.confirmed) == ("tls", True)
    assert "Information Security Certification Authority" in r.reason
    assert "known state interception authority" in r.reason


@pytest.mark.parametrize("behaviour,failure", [
    (Behaviour.mitm(issuer=ISSUER_ROGUE), "ssl_unknown_authority"),
    (Behaviour.wrong_name(cert_name="other.test"), "ssl_invalid_hostname"),
])
async def test_invalid_certificate_at_vantage_only(lab: Lab, tmp_path: Path, behaviour: Any,
                                                   failure: str) -> None:
    await lab.add_site("ratel.test", vantage=behaviour)
    r = await check(await scenario(lab, tmp_path))
    assert (r.verdict, r.confirmed) == ("tls", False) and failure in r.reason


async def test_known_blockpage(lab: Lab, tmp_path: Path) -> None:
    await lab.add_site("ratel.test", body=ARTICLE,
                       vantage=Behaviour.blockpage(html=FORTINET_BLOCKPAGE, status=200))
    r = await check(await scenario(lab, tmp_path, scheme="http"))
    assert (r.verdict, r.confirmed) == ("http_blockpage", True)
    assert "a_prod_fortinet" in r.reason


async def test_unknown_blockpage_is_http_diff(lab: Lab, tmp_path: Path) -> None:
    await lab.add_site("ratel.test", body=ARTICLE, vantage=Behaviour.blockpage(status=403))
    r = await check(await scenario(lab, tmp_path, scheme="http"))
    assert (r.verdict, r.confirmed) == ("http_diff", False)
    assert "HTTP 403" in r.reason and "Access restricted" in r.reason and "HTTP 200" in r.reason


async def test_http_reset_after_request(lab: Lab, tmp_path: Path) -> None:
    await lab.add_site("ratel.test", vantage=Behaviour.http_reset_after_request)
    r = await check(await scenario(lab, tmp_path, scheme="http"))
    assert r.verdict == "http_failure" and "connection_reset" in r.reason


async def test_server_side_captcha_is_not_state_blocking(lab: Lab, tmp_path: Path) -> None:
    challenge = (b"<html><head><title>Just a moment...</title></head><body>"
                 b"<script src='/cdn-cgi/challenge-platform/h/b/orchestrate'></script></body></html>")
    await lab.add_site("ratel.test", body=ARTICLE,
                       vantage=Behaviour.blockpage(html=challenge, status=403))
    r = await check(await scenario(lab, tmp_path, scheme="http"))
    assert r.verdict == "http_diff" and not r.confirmed
    assert r.reason.startswith("server-side, not state blocking") and "Cloudflare" in r.reason


async def test_throttled_handshake(lab: Lab, tmp_path: Path) -> None:
    await lab.add_site("ratel.test", vantage=Behaviour.throttle(handshake_delay=1.2))
    r = await check(await scenario(lab, tmp_path, timeout="5s"))
    assert r.verdict == "throttled", r.reason
    assert "from the vantage against" in r.reason


async def test_refused_everywhere_is_down(lab: Lab, tmp_path: Path) -> None:
    await lab.add_site("ratel.test", behaviour=Behaviour.refuse)
    r = await check(await scenario(lab, tmp_path))
    assert r.verdict == "down" and "the site is down" in r.reason


async def test_server_errors_everywhere_are_down(lab: Lab, tmp_path: Path) -> None:
    await lab.add_site("ratel.test", status=503, body=b"<title>Service Unavailable</title>")
    r = await check(await scenario(lab, tmp_path))
    assert r.verdict == "down" and "server errors everywhere" in r.reason


async def test_http_to_https_redirect_is_ok(lab: Lab, tmp_path: Path) -> None:
    site = await lab.add_site("ratel.test", body=ARTICLE, http_to_https=True)
    r = await check(await scenario(lab, tmp_path, scheme="http"))
    assert r.verdict == "ok", r.reason
    assert {c.scheme for c in site.connections_from(VANTAGE)} >= {"http", "https"}


async def test_dynamic_body_is_ok(lab: Lab, tmp_path: Path) -> None:
    counter = iter(range(10**6))

    def body() -> bytes:
        n = next(counter)
        return (f"<html><head><title>Ratel news {n}</title></head><body>"
                + "<p>story</p>" * (300 + 7 * n) + "</body></html>").encode()

    await lab.add_site("ratel.test", body=body)
    r = await check(await scenario(lab, tmp_path))
    assert r.verdict == "ok", r.reason


async def test_vantage_without_connectivity_is_inconclusive(lab: Lab, tmp_path: Path) -> None:
    await lab.add_site("canary.test", vantage=Behaviour.refuse)
    await lab.add_site("ratel.test", vantage=Behaviour.tls_reset_after_hello)
    r = await check(await scenario(lab, tmp_path))
    assert r.verdict == "inconclusive" and "canary" in r.reason


async def test_events_across_rounds(lab: Lab, tmp_path: Path) -> None:
    site = await lab.add_site("ratel.test")
    # control reuse on (the default): an unchanged fine result is judged against the stored
    # control, which must not change a verdict, an event or what retention keeps
    cfg = await scenario(lab, tmp_path)
    results = [await check(cfg) for _ in range(2)]
    await site.set_behaviour(vantage=Behaviour.tls_reset_after_hello)
    results += [await check(cfg) for _ in range(2)]
    await site.set_behaviour(vantage=None)
    results += [await check(cfg) for _ in range(2)]
    assert [r.event for r in results] == [None, "new -> ok", None, "ok -> tls", None, "tls -> ok"]
    # a fine result after the first round reused the control; a failing one never
    assert [r.control_reused for r in results] == [False, True, False, False, True, True]
    db = open_database(cfg.database_url)
    with db.read() as s:
        evs = s.scalars(select(Event).order_by(Event.id)).all()
        assert [(e.previous, e.state) for e in evs] == [(None, "ok"), ("ok", "tls"), ("tls", "ok")]
        assert evs[1].ended_at == evs[2].started_at and evs[2].ended_at is None
        # retention keeps the evidence of anomalies and changes, with the controls they were
        # judged against (a reused one is an earlier round's row)
        vantage = s.scalars(select(Measurement).where(Measurement.role == "vantage")
                            .order_by(Measurement.id)).all()
        assert [m.keep for m in vantage] == [False, True, True, True, False, True]
        named = {s.scalar(select(Verdict.control_id).where(Verdict.measurement_id == m.id))
                 for m in vantage if m.keep}
        kept = set(s.scalars(select(Measurement.id).where(Measurement.keep,
                                                          Measurement.role == "control")))
        assert None not in named and kept == named
    db.close()


async def test_check_command_json_lines(lab: Lab, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    from blockwatch.cli import main

    await lab.add_site("ratel.test", vantage=Behaviour.tls_reset_after_hello)
    cfg = await scenario(lab, tmp_path)
    # the command runs its own event loop; the lab keeps serving on this one
    code = await asyncio.to_thread(main, ["--config", str(cfg.path), "check", "--json"])
    assert code == 0
    lines = [json.loads(x) for x in capfd.readouterr().out.splitlines()]
    assert len(lines) == 1
    line = lines[0]
    assert {"target", "url", "vantage", "verdict", "confirmed", "reason", "measured_at"} <= set(line)
    assert (line["target"], line["vantage"], line["verdict"]) == ("Ratel.kz", "kz", "tls")
    assert line["measured_at"].endswith("Z")
    code = await asyncio.to_thread(main, ["--config", str(cfg.path), "verdicts", "--json"])
    out = [json.loads(x) for x in capfd.readouterr().out.splitlines()]
    assert code == 0 and [(o["target"], o["verdict"], o["state"]) for o in out] == [
        ("Ratel.kz", "tls", None)]
    code = await asyncio.to_thread(main, ["--config", str(cfg.path), "check"])
    table = capfd.readouterr().out
    assert code == 0 and "TARGET" in table and "Ratel.kz" in table and "tls" in table




async def test_checking_one_target_leaves_the_others_listed(lab: Lab, tmp_path: Path) -> None:
    from blockwatch.cli import main
    from blockwatch.storage.models import Target as TargetRow

    await lab.add_site("ratel.test")
    await lab.add_site("vlast.test")
    cfg = await scenario(lab, tmp_path)
    (tmp_path / "targets.toml").write_text(
        f'[[target]]\nname = "Ratel.kz"\nurls = ["{lab.url("ratel.test")}"]\n\n'
        f'[[target]]\nname = "Vlast.kz"\nurls = ["{lab.url("vlast.test")}"]\n', encoding="utf-8")
    assert await asyncio.to_thread(main, ["--config", str(cfg.path), "check", "--json"]) == 0
    assert await asyncio.to_thread(
        main, ["--config", str(cfg.path), "check", "--json", "--target", "Ratel.kz"]) == 0
    db = open_database(cfg.database_url)
    with db.read() as s:
        # the site and the digest list active targets only: a partial check must not hide any
        assert {t.name: t.active for t in s.scalars(select(TargetRow))} == {
            "Ratel.kz": True, "Vlast.kz": True}
    db.close()
    (tmp_path / "targets.toml").write_text(
        f'[[target]]\nname = "Ratel.kz"\nurls = ["{lab.url("ratel.test")}"]\n', encoding="utf-8")
    assert await asyncio.to_thread(main, ["--config", str(cfg.path), "check", "--json"]) == 0
    db = open_database(cfg.database_url)
    with db.read() as s:  # removed from the files: kept, no longer shown
        assert {t.name: t.active for t in s.scalars(select(TargetRow))} == {
            "Ratel.kz": True, "Vlast.kz": False}
    db.close()


async def test_a_bug_met_by_one_url_does_not_end_the_round(lab: Lab, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    import blockwatch.round as round_mod
    from blockwatch.targets import load_targets

    await lab.add_site("ratel.test")
    await lab.add_site("vlast.test")
    cfg = await scenario(lab, tmp_path)
    bad = lab.url("vlast.test")
    (tmp_path / "targets.toml").write_text(
        f'[[target]]\nname = "Ratel.kz"\nurls = ["{lab.url("ratel.test")}"]\n'
        f'[[target]]\nname = "Vlast.kz"\nurls = ["{bad}"]\n', encoding="utf-8")
    real = round_mod.measure

    async def measure(url: str, *a: Any, **kw: Any) -> Any:
        if url == bad:
            raise RuntimeError("a bug")
        return await real(url, *a, **kw)

    monkeypatch.setattr(round_mod, "measure", measure)
    db = open_database(cfg.database_url)
    try:
        report = await run_round(cfg, load_targets(cfg.target_files), db)
    finally:
        db.close()
    assert [(r.target, r.verdict) for r in report.results] == [("Ratel.kz", "ok")]
    assert any(bad in rec.getMessage() and rec.levelname == "ERROR" for rec in caplog.records)


@pytest.mark.parametrize("behaviour,verdict,words,step", [
    (Behaviour.refuse, "tcp_ip",
     "connecting to news.test failed at the vantage (connection refused, connection_refused)",
     "tcp"),
    (Behaviour.tls_reset_after_hello, "tls",
     "the TLS handshake with news.test failed at the vantage (connection reset, connection_reset)",
     "tls"),
])
async def test_failure_on_a_redirect_hop_is_judged_by_its_step(
        lab: Lab, tmp_path: Path, behaviour: Any, verdict: str, words: str, step: str) -> None:
    # ratel.test works and redirects to news.test, which fails at the vantage only
    await lab.add_site("news.test", body=ARTICLE, vantage=behaviour)
    await lab.add_site("ratel.test", redirect=lab.url("news.test", "/latest"))
    cfg = await scenario(lab, tmp_path)
    r = await check(cfg)
    assert r.verdict == verdict, r.reason
    assert r.reason.startswith("the redirect to news.test: ") and words in r.reason
    assert r.reason.endswith("works from the control")
    db = open_database(cfg.database_url)
    with db.read() as s:
        m = s.scalar(select(Measurement).where(Measurement.role == "vantage",
                                               Measurement.url.contains("ratel")))
        assert m is not None
        hops = m.evidence["http"]["hops"]
        assert [h["status"] for h in hops] == [301, None]
        assert (hops[1]["step"], hops[0]["step"]) == (step, None)
    db.close()


async def test_slow_drip_until_the_timeout_is_throttled(lab: Lab, tmp_path: Path) -> None:
    # bytes flow at ~4 KB/s to the vantage: the 1 s read timeout never fires, the probe's
    # deadline (three read timeouts) ends the transfer
    await lab.add_site("ratel.test", body=ARTICLE, size=256 * 1024,
                       vantage=Behaviour.throttle(handshake_delay=0.0, rate=4000))
    cfg = await scenario(lab, tmp_path)
    r = await check(cfg)
    assert r.verdict == "throttled", r.reason
    assert "then the timeout ended it" in r.reason and "from the control" in r.reason
    db = open_database(cfg.database_url)
    with db.read() as s:
        ms = {m.role: m.evidence["http"] for m in s.scalars(
            select(Measurement).where(Measurement.url.contains("ratel")))}
    db.close()
    v, c = ms["vantage"], ms["control"]
    assert v["failure"] == "generic_timeout_error" and v["status"] == 200
    assert 0 < v["received_bytes"] < 256 * 1024 and v["transfer_ms"] >= 1000
    assert v["deadline_exceeded"] and not c["deadline_exceeded"]
    assert c["failure"] is None and c["received_bytes"] == 256 * 1024
