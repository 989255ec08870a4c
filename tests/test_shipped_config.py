"""The shipped `config/blockwatch.toml` and `probes/kz.toml`, end to end against the lab: only
addresses are swapped (resolvers, the sites' port, canaries, the database, the site folder).
Every outlet of the real target list is a lab site; ratel.kz and vlast.kz are censored on the
in-country network (the lab's vantage source address). The control asks the shipped resolver
list's shape: two UDP resolvers and a DoH URL."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dns.message
import dns.rrset
import pytest
from sqlalchemy import select

from blockwatch.cli import main
from blockwatch.collector.commands import vantage_snippet
from blockwatch.config import Config, load
from blockwatch.probe import failures as F
from blockwatch.probe.dnsprobe import ResolverSpec
from blockwatch.probe.resolvers import ResolverSet
from blockwatch.probe.runner import ProbeSettings
from blockwatch.storage.models import Measurement
from blockwatch.targets import load_targets
from lab import CONTROL, CONTROL_RESOLVER, DNS, VANTAGE, Behaviour, Lab
from test_agent import agent_args, agent_rows, run_agent
from test_collector_support import running_collector, tokens

ROOT = Path(__file__).resolve().parent.parent
CENSORED = {"https://ratel.kz/": "tls", "https://vlast.kz/": "dns"}


@pytest.fixture(autouse=True)
def _root_logging() -> Iterator[None]:
    """`blockwatch ...` (cli.main) puts its own handler on this test's stderr: take it away
    after the test, or the next test's logs would go to a closed stream."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def plain(url: str) -> str:
    """A lab URL as the shipped list has it (no port)."""
    return re.sub(r"^(https?://[^/:]+):\d+/", r"\1/", url)


def expected(urls: list[str]) -> dict[str, str]:
    return {u: CENSORED.get(plain(u), "ok") for u in urls}


def n_urls(cfg: Config) -> int:
    return sum(len(t.urls) for t in load_targets(cfg.target_files))


def swap(text: str, old: str, new: str) -> str:
    """One exact replacement: the shipped file must still say what this test expects."""
    assert text.count(old) == 1, f"the shipped file no longer has exactly one {old!r}"
    return text.replace(old, new)


async def shipped(lab: Lab, tmp_path: Path, *, agents: dict[str, str] | None = None) -> Config:
    """config/blockwatch.toml and probes/kz.toml with lab addresses; every host a lab site."""
    port = lab.https_port
    kz = ROOT / "probes" / "kz.toml"
    urls = [u for t in load_targets([kz]) for u in t.urls]
    hosts = sorted({urlsplit(u).hostname or "" for u in urls})
    assert len(urls) >= 30 and CENSORED.keys() <= set(urls)

    def lab_port(m: re.Match[str]) -> str:  # "https://ratel.kz/" -> "https://ratel.kz:PORT/"
        scheme, host = m[1], m[2]
        return f'"{scheme}://{host}:{port if scheme == "https" else lab.http_port}/'

    text = re.sub(r'"(https?)://([^/":]+)/', lab_port, kz.read_text(encoding="utf-8"))
    (tmp_path / "kz.toml").write_text(text, encoding="utf-8")
    swapped = [u for t in load_targets([tmp_path / "kz.toml"]) for u in t.urls]
    assert [plain(u) for u in swapped] == urls  # every URL, only its port added
    for h in hosts:
        await lab.add_site(h, vantage=Behaviour.tls_reset_after_hello if h == "ratel.kz" else None)
    lab.vantage_dns.set("vlast.kz", DNS.nxdomain())  # the in-country resolver lies
    await lab.add_site("www.wikipedia.org")  # the shipped canary

    text = (ROOT / "config" / "blockwatch.toml").read_text(encoding="utf-8")
    for old, new in [
        ('url = "sqlite:///../blockwatch.db"', f'url = "sqlite:///{tmp_path}/blockwatch.db"'),
        ('targets = ["../probes/kz.toml"]', 'targets = ["kz.toml"]'),
        ('ca_bundle = ""', f'ca_bundle = "{lab.ca_pem_path}"'),
        ('canaries = ["https://www.wikipedia.org/"]', f'canaries = ["https://www.wikipedia.org:{port}/"]'),
        ("allow_networks = []", 'allow_networks = ["127.0.0.0/8"]'),
        ('resolvers = ["1.1.1.1", "8.8.8.8:53", "https://dns.google/dns-query"]',
         f"resolvers = {json.dumps(lab.control_resolvers)}"),
        ('source_address = ""                      # bind the control',
         f'source_address = "{CONTROL}"  # bind the control'),
        ('# resolver = "9.9.9.9"', f'resolver = "{lab.vantage_resolver}"'),
        ('# source_address = ""', f'source_address = "{VANTAGE}"'),
        ('url = "https://iptoasn.com/data/ip2asn-combined.tsv.gz"',
         'url = "http://127.0.0.1:9/ip2asn-combined.tsv.gz"'),
        ('out = "../reports/site"', 'out = "site"'),
    ]:
        text = swap(text, old, new)
    # what `blockwatch agent-token NAME` prints, appended as the operator would
    text += "".join("\n" + vantage_snippet(n, t) for n, t in (agents or {}).items())
    (tmp_path / "blockwatch.toml").write_text(text, encoding="utf-8")
    cfg = load(tmp_path / "blockwatch.toml")
    assert cfg.settings.control.resolvers[2].startswith("https://")  # DoH, as shipped
    return cfg


def control_dns(db_path: Path, url: str) -> list[dict[str, Any]]:
    from blockwatch.storage import open_database

    db = open_database(f"sqlite:///{db_path}")
    try:
        with db.read() as s:
            ev = s.scalars(select(Measurement).where(
                Measurement.url == url, Measurement.role == "control")).first()
            ev = None if ev is None else ev.evidence
    finally:
        db.close()
    assert ev is not None, f"no control measurement of {url}"
    return list(ev["dns"])


def assert_doh_answered(lab: Lab, evidence_dns: list[dict[str, Any]], host: str) -> None:
    """The control asked every shipped-shaped resolver, DoH included, and DoH answered."""
    doh = [q for q in evidence_dns if q["transport"] == "doh"]
    assert {q["qtype"] for q in doh} == {"A", "AAAA"}
    assert all(q["failure"] is None for q in doh if q["qtype"] == "A"), doh
    assert [a for q in doh for a in q["answers"]] == [lab.site(host).address]
    assert {q["transport"] for q in evidence_dns} == {"udp", "doh"}
    assert (CONTROL, "doh") in {(q.source, q.transport) for q in lab.control_dns.queried(host)}


async def test_shipped_config_check_round(lab: Lab, tmp_path: Path,
                                          capfd: pytest.CaptureFixture[str]) -> None:
    cfg = await shipped(lab, tmp_path)
    code = await asyncio.to_thread(main, ["--config", str(cfg.path), "check", "--json"])
    out = capfd.readouterr()
    assert code == 0, out.err
    assert "Traceback" not in out.err and "DoH" not in out.err
    lines = [json.loads(x) for x in out.out.splitlines()]
    verdicts = {ln["url"]: ln["verdict"] for ln in lines}
    assert len(verdicts) == n_urls(cfg) and {ln["vantage"] for ln in lines} == {"vps"}
    assert verdicts == expected(list(verdicts))
    ratel = f"https://ratel.kz:{lab.https_port}/"
    assert_doh_answered(lab, control_dns(tmp_path / "blockwatch.db", ratel), "ratel.kz")
    # the vantage's own network: its resolver and source address, never the control's
    assert {c.source for c in lab.site("ratel.kz").connections} == {VANTAGE, CONTROL}
    assert lab.errors == []


async def test_shipped_config_collector_judges_an_agent(lab: Lab, tmp_path: Path) -> None:
    """The in-country path: the agent measures from the censored source address, the
    collector's control (through DoH) from the uncensored one."""
    tok = tokens("almaty-1")
    cfg = await shipped(lab, tmp_path, agents=tok)
    async with running_collector(cfg) as c:
        code = await run_agent(agent_args(lab, tmp_path, c.url, tok["almaty-1"]))
        assert code == 0
        rows = agent_rows(c.db, "almaty-1")
    assert len(rows) == n_urls(cfg)
    assert not [r for r in rows if r[1] == "inconclusive"], rows
    assert dict(rows) == expected([u for u, _ in rows])
    ratel = f"https://ratel.kz:{lab.https_port}/"
    assert_doh_answered(lab, control_dns(tmp_path / "blockwatch.db", ratel), "ratel.kz")
    # the agent's connections come from the censored network, the control's from the other
    assert {c.source for c in lab.site("ratel.kz").connections} == {VANTAGE, CONTROL}
    assert {q.source for q in lab.vantage_dns.queried("ratel.kz")} == {VANTAGE}
    assert lab.errors == []


async def test_agent_asks_a_doh_resolver(lab: Lab, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """`blockwatch agent --resolver https://...` (the in-country resolver's DoH endpoint)."""
    tok = tokens("almaty-1")
    cfg = await shipped(lab, tmp_path, agents=tok)
    async with running_collector(cfg) as c:
        argv = ["agent", *agent_args(lab, tmp_path, c.url, tok["almaty-1"],
                                     "--resolver", lab.doh_url("vantage"))]
        code = await asyncio.to_thread(main, argv)
        err = capsys.readouterr().err
        assert code == 0, err
        assert "Traceback" not in err
        rows = agent_rows(c.db, "almaty-1")
        with c.db.read() as s:
            ev = s.scalars(select(Measurement).where(
                Measurement.role == "vantage", Measurement.url.contains("vlast.kz"))).one().evidence
    assert dict(rows) == expected([u for u, _ in rows])
    assert {q["transport"] for q in ev["dns"]} == {"doh"}
    assert ev["dns"][0]["failure"] == F.DNS_NXDOMAIN  # the lie, carried over DoH
    assert {(q.source, q.transport) for q in lab.vantage_dns.queried("ratel.kz")} == {
        (VANTAGE, "doh")}
    # keep-alive: one connection carries many queries
    server = lab.doh_servers[lab.doh_url("vantage").split("/")[2].split(":")[0]]
    assert 0 < server.connections < len(lab.vantage_dns.queries)


async def test_broken_doh_resolvers_are_classified_failures(lab: Lab) -> None:
    """Each way a DoH resolver can be broken ends in a failure string of the DNS step."""
    site = await lab.add_site("ratel.test")
    web = await lab.add_site("plain.test")  # an HTTPS site, not a DoH server
    # HTTPS sites named by their IP (certificates for the IP): HTML, and a valid DNS reply
    # followed by more than a DNS message can hold (read whole, it would parse)
    html = await lab.add_site("127.0.1.250", address="127.0.1.250")
    reply = dns.message.make_response(dns.message.make_query("ratel.test", "A"))
    reply.answer.append(dns.rrset.from_text("ratel.test.", 60, "IN", "A", "192.0.2.1"))
    huge = await lab.add_site("127.0.1.251", address="127.0.1.251",
                              body=reply.to_wire() + b"\0" * 70_000)
    lab.control_dns.set("gone.test", DNS.drop())
    doh = lab.doh_url("control")
    settings = ProbeSettings(timeout=0.5, ca_bundle=lab.ca_pem_path,
                             allow_networks=(ipaddress.ip_network("127.0.0.0/8"),))
    port = lab.https_port
    cases = [
        (doh, "gone.test", F.DNS_TIMEOUT),  # never answers
        (doh.replace("/dns-query", "/nothing"), "ratel.test", F.DNS_BOGUS),  # HTTP 404
        (f"https://{web.address}:{port}/dns-query", "ratel.test", F.SSL_INVALID_HOSTNAME),
        (f"https://127.0.3.99:{port}/dns-query", "ratel.test", F.CONNECTION_REFUSED),
        (f"https://{html.address}:{port}/dns-query", "ratel.test", F.DNS_BOGUS),  # not DNS
        (f"https://{huge.address}:{port}/dns-query", "ratel.test", F.DNS_BOGUS),  # read 64 KiB
    ]
    for url, name, failure in cases:
        async with ResolverSet([ResolverSpec.parse(url)], settings, source=CONTROL) as resolvers:
            got = await resolvers.resolve(name, ("A",))
        assert [(q.transport, q.failure) for q in got] == [("doh", failure)], url
    # the same server trusted only through the system store: not the lab CA
    async with ResolverSet([ResolverSpec.parse(doh)], ProbeSettings(timeout=0.5),
                           source=CONTROL) as resolvers:
        [q] = await resolvers.resolve("ratel.test", ("A",))
    assert q.failure == F.SSL_UNKNOWN_AUTHORITY
    async with ResolverSet([ResolverSpec.parse(doh)], settings, source=CONTROL) as resolvers:
        [q] = await resolvers.resolve("ratel.test", ("A",))
    assert (q.failure, q.answers) == (None, [site.address])
    assert CONTROL_RESOLVER in doh


async def test_agent_with_a_dead_doh_resolver_reports_dns_failures(
        lab: Lab, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tok = tokens("almaty-1")
    cfg = await shipped(lab, tmp_path, agents=tok)
    dead = f"https://127.0.2.99:{lab.https_port}/dns-query"  # nothing listens there
    async with running_collector(cfg) as c:
        code = await asyncio.to_thread(main, ["agent", *agent_args(
            lab, tmp_path, c.url, tok["almaty-1"], "--resolver", dead)])
        err = capsys.readouterr().err
        assert code == 0 and "Traceback" not in err, err
        rows = agent_rows(c.db, "almaty-1")
        with c.db.read() as s:
            evs = [m.evidence for m in s.scalars(select(Measurement).where(
                Measurement.role == "vantage"))]
    # the canary failed too: the agent's own network is in doubt, so nothing is called blocked
    assert len(rows) == n_urls(cfg) and {v for _, v in rows} == {"inconclusive"}
    assert {q["failure"] for ev in evs for q in ev["dns"]} == {F.CONNECTION_REFUSED}


@pytest.mark.parametrize("url", ["https://127.0.0.1:99999/dns-query", "https:///dns-query",
                                 "https://[::1/dns-query"])
def test_a_malformed_doh_url_is_a_clear_error(url: str, write_config, tmp_path: Path,  # type: ignore[no-untyped-def]
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from blockwatch.config import ConfigError

    with pytest.raises(ValueError, match="DoH URL"):
        ResolverSpec.parse(url)
    with pytest.raises(ConfigError, match="DoH URL") as err:
        write_config(f'[control]\nresolvers = ["1.1.1.1", "{url}"]\n')
    assert "control.resolvers[1]" in str(err.value)  # where: the file and the key
    (tmp_path / "token").write_text("t\n", encoding="utf-8")
    code = main(["agent", "--collector", "https://127.0.0.1:1", "--token-file",
                 str(tmp_path / "token"), "--queue", str(tmp_path / "q.db"), "--resolver", url])
    assert code == 2 and "--resolver" in capsys.readouterr().err
