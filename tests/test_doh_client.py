"""DoH through a ResolverSet under a burst: a bounded number of kept-alive connections, every
query answered from its own resolver, and a query's timeout counted from when it is sent (a
query queued behind others for a free connection is not a slow resolver)."""

from __future__ import annotations

import asyncio
import ipaddress

import dns.message

from blockwatch.probe import dnsprobe
from blockwatch.probe import failures as F
from blockwatch.probe.dnsprobe import ResolverSpec
from blockwatch.probe.resolvers import DOH_CONNECTIONS, ResolverSet
from blockwatch.probe.runner import ProbeSettings
from lab import DNS, VANTAGE, Lab


def settings(lab: Lab, timeout: float) -> ProbeSettings:
    return ProbeSettings(timeout=timeout, ca_bundle=lab.ca_pem_path,
                         allow_networks=(ipaddress.ip_network("127.0.0.0/8"),))


async def test_a_burst_waits_for_connections_not_against_its_timeout(lab: Lab) -> None:
    # every answer takes 0.3 s and the timeout is 1 s: five waves of DOH_CONNECTIONS queries
    # take 1.5 s, so the last ones would time out if their wait for a connection counted
    n = 5 * DOH_CONNECTIONS
    names = [f"s{i:03d}.test" for i in range(n)]
    for i, name in enumerate(names):
        lab.control_dns.set(name, DNS.answer([f"192.0.2.{i % 250 + 1}"], delay=0.3))
    lab.control_dns.set("slow.test", DNS.answer(["192.0.2.1"], delay=3.0))
    async with ResolverSet([ResolverSpec.parse(lab.doh_url("control"))], settings(lab, 1.0),
                           source=VANTAGE) as resolvers:
        got = await asyncio.gather(*(resolvers.resolve(name, ("A",)) for name in names),
                                   resolvers.resolve("slow.test", ("A",)))
    *burst, [slow] = got
    assert [[(q.transport, q.failure, q.answers) for q in qs] for qs in burst] == [
        [("doh", None, [f"192.0.2.{i % 250 + 1}"])] for i in range(n)]
    assert slow.failure == F.DNS_TIMEOUT  # a resolver slower than the timeout still is one
    server = lab.doh_servers[lab.doh_url("control").split("/")[2].split(":")[0]]
    assert 0 < server.connections <= DOH_CONNECTIONS  # kept alive, never more than the slots


async def test_two_doh_resolvers_in_one_set_each_answer_their_own(lab: Lab) -> None:
    names = [f"t{i:03d}.test" for i in range(3 * DOH_CONNECTIONS)]
    for name in names:
        lab.control_dns.set(name, DNS.answer(["192.0.2.10"], delay=0.02))
        lab.vantage_dns.set(name, DNS.answer(["192.0.2.20"], delay=0.02))
    specs = [ResolverSpec.parse(lab.doh_url("control")), ResolverSpec.parse(lab.doh_url("vantage"))]
    async with ResolverSet(specs, settings(lab, 5.0), source=VANTAGE) as resolvers:
        got = await asyncio.gather(*(resolvers.resolve(name) for name in names))
    for qs in got:
        assert [(q.resolver, q.qtype, q.failure, q.answers) for q in qs if q.qtype == "A"] == [
            (specs[0].label, "A", None, ["192.0.2.10"]), (specs[1].label, "A", None, ["192.0.2.20"])]
        assert {q.failure for q in qs if q.qtype == "AAAA"} == {F.DNS_NO_ANSWER}
    servers = [lab.doh_servers[s.url.split("/")[2].split(":")[0]] for s in specs]
    # each server got two queries per name; a connection carries several of them (one freed
    # may be handed to a query for the other resolver: then it is closed for a new one)
    assert all(0 < s.connections < len(names) for s in servers), [s.connections for s in servers]


def test_a_doh_query_is_the_bytes_a_parsed_and_rendered_query_had() -> None:
    """The query goes out as built, its id 0, with no parse and render in between: the same
    bytes that parsing it, setting the id to 0 and rendering it again gave."""
    names = ["ratel.test", "Ratel.KZ", "xn--80ak6aa92e.com", "a" * 63 + ".b" + ".c" * 90,
             "sub.domain.example.org.", "под.рф".encode("idna").decode()]
    for name in names:
        for q in dnsprobe._queries(name, ("A", "AAAA", "HTTPS")):
            msg = dns.message.from_wire(q.wire)
            msg.id = 0
            assert b"\0\0" + q.wire[2:] == msg.to_wire(), name
