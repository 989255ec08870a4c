"""Resolver vantages (an in-country resolver asked from here) against the lab."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from blockwatch.config import Config, load
from blockwatch.resolver_round import run_resolver_round
from blockwatch.round import Result
from blockwatch.storage import open_database
from blockwatch.storage.models import Measurement, Vantage
from blockwatch.targets import load_targets
from lab import DNS, Behaviour, Lab


async def scenario(lab: Lab, tmp_path: Path, tries: int = 2) -> Config:
    if "canary.test" not in lab.sites:
        await lab.add_site("canary.test")
    (tmp_path / "t.toml").write_text(
        f'[[target]]\nname = "Ratel.kz"\nurls = ["{lab.url("ratel.test")}"]\n', encoding="utf-8")
    (tmp_path / "c.toml").write_text(f"""
[storage]
url = "sqlite:///bw.db"
[probe]
targets = ["t.toml"]
timeout = "1s"
ca_bundle = "{lab.ca_pem_path}"
allow_networks = ["127.0.0.0/8"]
[control]
resolvers = {json.dumps(lab.control_resolvers)}
[[vantage]]
name = "kz-isp-dns"
kind = "resolver"
address = "{lab.vantage_resolver}"
country = "KZ"
control_name = "canary.test"
tries = {tries}
""", encoding="utf-8")
    return load(tmp_path / "c.toml")


async def run(cfg: Config) -> Result:
    db = open_database(cfg.database_url)
    try:
        results = await run_resolver_round(cfg, load_targets(cfg.target_files), db)
    finally:
        db.close()
    assert len(results) == 1 and results[0].vantage == "kz-isp-dns"
    return results[0]


async def test_honest_resolver_is_ok(lab: Lab, tmp_path: Path) -> None:
    await lab.add_site("ratel.test")
    cfg = await scenario(lab, tmp_path)
    r = await run(cfg)
    assert r.verdict == "ok" and "consistent with the control" in r.reason
    # the control name was asked before and after the targets
    names = [q.qname for q in lab.vantage_dns.queries]
    assert names[0] == "canary.test" and names[-1] == "canary.test" and "ratel.test" in names
    db = open_database(cfg.database_url)
    with db.read() as s:
        v = s.scalar(select(Vantage).where(Vantage.name == "kz-isp-dns"))
        assert v is not None and (v.kind, v.country) == ("resolver", "KZ")
        m = s.scalar(select(Measurement).where(Measurement.vantage_id == v.id))
        assert m is not None and m.evidence["dns"][0]["resolver"] == lab.vantage_resolver
        assert m.evidence["tcp"] == [] and m.evidence["http"] is None  # DNS only
    db.close()


async def test_blocking_beyond_dns_is_invisible_and_not_claimed(lab: Lab, tmp_path: Path) -> None:
    await lab.add_site("ratel.test", behaviour=Behaviour.tls_reset_after_hello)
    r = await run(await scenario(lab, tmp_path))
    assert r.verdict == "ok"  # a resolver vantage says nothing about TLS


async def test_bogon_answer(lab: Lab, tmp_path: Path) -> None:
    await lab.add_site("ratel.test")
    lab.vantage_dns.set("ratel.test", DNS.answer(["10.10.34.35"]))
    r = await run(await scenario(lab, tmp_path))
    assert r.verdict == "dns" and "10.10.34.35 (a private address)" in r.reason


async def test_nxdomain_where_the_control_resolves(lab: Lab, tmp_path: Path) -> None:
    await lab.add_site("ratel.test")
    lab.vantage_dns.set("ratel.test", DNS.nxdomain())
    r = await run(await scenario(lab, tmp_path))
    assert r.verdict == "dns" and "NXDOMAIN" in r.reason


async def test_unproven_address_is_dns(lab: Lab, tmp_path: Path) -> None:
    await lab.add_site("ratel.test")
    other = await lab.add_site("elsewhere.test")
    lab.vantage_dns.set("ratel.test", DNS.answer([other.address]))
    r = await run(await scenario(lab, tmp_path))
    assert r.verdict == "dns" and other.address in r.reason


async def test_other_address_with_valid_certificate_is_ok(lab: Lab, tmp_path: Path) -> None:
    site = await lab.add_site("ratel.test")
    twin = await lab._new_host(site.host.modes, primary=False)
    twin.add(site)
    lab.vantage_dns.set("ratel.test", DNS.answer([twin.address]))
    r = await run(await scenario(lab, tmp_path))
    assert r.verdict == "ok", r.reason


async def test_injected_second_reply(lab: Lab, tmp_path: Path) -> None:
    await lab.add_site("ratel.test")
    decoy = await lab.add_site("decoy.test")
    lab.vantage_dns.set("ratel.test", DNS.inject([decoy.address]))
    cfg = await scenario(lab, tmp_path)
    r = await run(cfg)
    assert r.verdict == "dns"
    db = open_database(cfg.database_url)
    with db.read() as s:
        m = s.scalar(select(Measurement).where(Measurement.role == "vantage"))
        assert m is not None
        a = next(q for q in m.evidence["dns"] if q["qtype"] == "A")
        # the forged reply came first; the genuine one was caught too
        assert a["answers"] == [decoy.address]
        assert a["extra_replies"] == [[lab.site("ratel.test").address]]
    db.close()


async def test_resolver_failing_its_control_queries_is_inconclusive(lab: Lab, tmp_path: Path) -> None:
    await lab.add_site("ratel.test")
    await lab.add_site("canary.test")
    lab.vantage_dns.set("canary.test", DNS.drop())
    lab.vantage_dns.set("ratel.test", DNS.drop())
    r = await run(await scenario(lab, tmp_path, tries=1))
    assert r.verdict == "inconclusive" and "control queries" in r.reason
