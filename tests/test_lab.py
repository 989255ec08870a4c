"""Self-tests of the network lab (tests/lab), with plain clients only: sockets, ssl, dnspython,
httpx. No blockwatch code here."""

from __future__ import annotations

import asyncio
import base64
import errno
import gzip
import socket
import ssl
import time

import dns.asyncquery
import dns.exception
import dns.inet
import dns.message
import dns.rcode
import httpx
import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from lab import (
    CONTROL,
    DNS,
    ISSUER_KZ,
    VANTAGE,
    VANTAGE2,
    Behaviour,
    Lab,
    Site,
    parse_client_hello,
)

SHORT = 0.2  # client timeout for behaviours that never answer


# -- plain clients -------------------------------------------------------------------------
def role_of(source: str) -> str:
    return {VANTAGE: "vantage", CONTROL: "control", VANTAGE2: "vantage2"}[source]


async def query(
    lab: Lab,
    name: str,
    source: str = VANTAGE,
    rdtype: str = "A",
    tcp: bool = False,
    timeout: float = 1.0,
) -> dns.message.Message:
    ip, port = lab.resolver(role_of(source))
    q = dns.message.make_query(name, rdtype)
    if tcp:
        return await dns.asyncquery.tcp(q, ip, port=port, source=source, timeout=timeout)
    return await dns.asyncquery.udp(q, ip, port=port, source=source, timeout=timeout)


def addresses(msg: dns.message.Message) -> list[str]:
    return [rd.address for rrset in msg.answer for rd in rrset if hasattr(rd, "address")]


async def resolve(lab: Lab, name: str, source: str) -> str:
    return addresses(await query(lab, name, source))[0]


async def fetch(
    lab: Lab,
    name: str,
    source: str,
    *,
    scheme: str = "https",
    path: str = "/",
    address: str | None = None,
    verify: ssl.SSLContext | bool | None = None,
    timeout: float = 2.0,
) -> httpx.Response:
    """GET name from source: resolve with the source's resolver, connect from source."""
    address = address or await resolve(lab, name, source)
    port = lab.https_port if scheme == "https" else lab.http_port
    transport = httpx.AsyncHTTPTransport(
        local_address=source, verify=lab.ssl_context() if verify is None else verify, retries=0
    )
    async with httpx.AsyncClient(transport=transport, timeout=timeout, trust_env=False) as client:
        return await client.get(
            f"{scheme}://{address}:{port}{path}",
            headers={"Host": name},
            extensions={"sni_hostname": name},
        )


async def tls_connect(
    lab: Lab,
    address: str,
    sni: str | None,
    source: str,
    *,
    ctx: ssl.SSLContext | None = None,
    timeout: float = 2.0,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.wait_for(
        asyncio.open_connection(
            address,
            lab.https_port,
            ssl=ctx or lab.ssl_context(),
            server_hostname=sni,
            local_addr=(source, 0),
        ),
        timeout,
    )


async def tcp_connect(
    address: str, port: int, source: str, timeout: float = 2.0
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.wait_for(asyncio.open_connection(address, port, local_addr=(source, 0)), timeout)


def insecure() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # create_default_context() loads system CAs
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def peer_cert(lab: Lab, address: str, sni: str, source: str) -> x509.Certificate:
    _, writer = await tls_connect(lab, address, sni, source, ctx=insecure())
    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    writer.close()
    return x509.load_der_x509_certificate(der)


def caused_by(exc: BaseException, *errnos: int) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in errnos:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


# -- DNS -----------------------------------------------------------------------------------
async def test_dns_each_resolver_has_its_own_zone(lab: Lab) -> None:
    site = await lab.add_site("ratel.test")
    lab.vantage_dns.set("ratel.test", DNS.answer(["10.10.34.35"], ttl=60))
    for tcp in (False, True):
        v = await query(lab, "ratel.test", VANTAGE, tcp=tcp)
        c = await query(lab, "ratel.test", CONTROL, tcp=tcp)
        assert addresses(v) == ["10.10.34.35"]
        assert v.answer[0].ttl == 60
        assert addresses(c) == [site.address]
    assert addresses(await query(lab, "RATEL.test.", VANTAGE2)) == [site.address]
    assert [(q.source, q.transport) for q in lab.vantage_dns.queried("ratel.test")] == [
        (VANTAGE, "udp"),
        (VANTAGE, "tcp"),
    ]
    assert lab.vantage_resolver == f"127.0.2.53:{lab.dns_port}"
    assert lab.control_resolver == f"127.0.3.53:{lab.dns_port}"


async def test_dns_rcodes_and_records(lab: Lab) -> None:
    zone = lab.vantage_dns
    zone.set("nx.test", DNS.nxdomain())
    zone.set("fail.test", DNS.servfail())
    zone.set("no.test", DNS.refused())
    zone.set("empty.test", DNS.noanswer())
    zone.set("dual.test", DNS.answer(["192.0.2.1", "2001:db8::1"]))
    zone.set("alias.test", DNS.cname("dual.test"))
    expected = {
        "nx.test": dns.rcode.NXDOMAIN,
        "fail.test": dns.rcode.SERVFAIL,
        "no.test": dns.rcode.REFUSED,
        "empty.test": dns.rcode.NOERROR,
        "unknown.test": dns.rcode.NXDOMAIN,
    }
    for name, rcode in expected.items():
        reply = await query(lab, name)
        assert reply.rcode() == rcode, name
        assert reply.answer == [], name
    assert addresses(await query(lab, "dual.test")) == ["192.0.2.1"]
    assert addresses(await query(lab, "dual.test", rdtype="AAAA")) == ["2001:db8::1"]
    assert (await query(lab, "dual.test", rdtype="MX")).answer == []
    alias = await query(lab, "alias.test")
    assert alias.answer[0].rdtype == dns.rdatatype.CNAME
    assert addresses(alias) == ["192.0.2.1"]


async def test_dns_drop_times_out_on_udp_and_tcp(lab: Lab) -> None:
    lab.vantage_dns.set("ratel.test", DNS.drop())
    lab.control_dns.set("ratel.test", DNS.answer(["192.0.2.7"]))
    for tcp in (False, True):
        with pytest.raises(dns.exception.Timeout):
            await query(lab, "ratel.test", VANTAGE, tcp=tcp, timeout=SHORT)
        assert addresses(await query(lab, "ratel.test", CONTROL, tcp=tcp)) == ["192.0.2.7"]


async def test_dns_injection_gives_two_replies(lab: Lab) -> None:
    site = await lab.add_site("ratel.test")
    lab.vantage_dns.set("ratel.test", DNS.inject(["10.10.34.35"]))
    # A stub resolver takes the first (forged) reply.
    assert addresses(await query(lab, "ratel.test")) == ["10.10.34.35"]
    # Listening on: the forged reply, then the genuine one.
    ip, port = lab.resolver("vantage")
    q = dns.message.make_query("ratel.test", "A")
    sock = await dns.asyncbackend.get_default_backend().make_socket(
        socket.AF_INET, socket.SOCK_DGRAM, source=(VANTAGE, 0)
    )
    async with sock:
        await dns.asyncquery.send_udp(sock, q, (ip, port))
        replies = []
        while len(replies) < 2:
            reply = (await dns.asyncquery.receive_udp(sock, (ip, port), time.time() + 2))[0]
            replies.append(addresses(reply))
    assert replies == [["10.10.34.35"], [site.address]]


async def test_dns_survives_malformed_queries(lab: Lab) -> None:
    await lab.add_site("ratel.test")
    ip, port = lab.resolver("vantage")
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind((VANTAGE, 0))
    for junk in (b"", b"\x00", b"garbage that is not dns at all", b"\xff" * 600):
        udp.sendto(junk, (ip, port))
    udp.close()
    _, writer = await tcp_connect(ip, port, VANTAGE)
    writer.write(b"\x00\x05hello")
    await writer.drain()
    writer.close()
    for tcp in (False, True):
        assert addresses(await query(lab, "ratel.test", tcp=tcp)) != []
    assert lab.vantage_dns.malformed >= 4
    assert lab.errors == []


async def test_dns_delay(lab: Lab) -> None:
    lab.vantage_dns.set("slow.test", DNS.answer(["192.0.2.1"], delay=0.15))
    start = time.perf_counter()
    await query(lab, "slow.test")
    assert time.perf_counter() - start >= 0.15


async def test_doh_server(lab: Lab) -> None:
    site = await lab.add_site("ratel.test")
    doh = await lab.add_doh(vantage=Behaviour.tls_reset_after_hello)
    lab.control_dns.set("gone.test", DNS.drop())
    wire = dns.message.make_query("ratel.test", "A").to_wire()
    url = f"https://{doh.address}:{lab.https_port}/dns-query"
    transport = httpx.AsyncHTTPTransport(local_address=CONTROL, verify=lab.ssl_context())
    async with httpx.AsyncClient(transport=transport, trust_env=False, timeout=SHORT) as client:
        ext = {"sni_hostname": doh.name}
        hdrs = {"Host": doh.name, "Content-Type": "application/dns-message"}
        post = await client.post(url, content=wire, headers=hdrs, extensions=ext)
        assert post.headers["content-type"] == "application/dns-message"
        assert addresses(dns.message.from_wire(post.content)) == [site.address]
        b64 = base64.urlsafe_b64encode(wire).rstrip(b"=").decode()
        get = await client.get(url, params={"dns": b64}, headers=hdrs, extensions=ext)
        assert addresses(dns.message.from_wire(get.content)) == [site.address]
        bad = await client.post(url, content=b"junk", headers=hdrs, extensions=ext)
        assert bad.status_code == 400
        with pytest.raises(httpx.ReadTimeout):
            drop = dns.message.make_query("gone.test", "A").to_wire()
            await client.post(url, content=drop, headers=hdrs, extensions=ext)
    assert [q.transport for q in lab.control_dns.queried("ratel.test")] == ["doh", "doh"]
    with pytest.raises(httpx.ConnectError):  # the vantage cannot reach the DoH server
        await fetch(lab, doh.name, VANTAGE, path="/dns-query")


async def test_every_resolver_serves_doh_on_its_address(lab: Lab) -> None:
    site = await lab.add_site("ratel.test")
    lab.vantage_dns.set("ratel.test", DNS.answer(["192.0.2.9"]))
    wire = dns.message.make_query("ratel.test", "A").to_wire()
    hdrs = {"Content-Type": "application/dns-message"}
    assert lab.control_resolvers == [lab.control_resolver, f"127.0.3.54:{lab.dns_port}",
                                     f"https://127.0.3.53:{lab.https_port}/dns-query"]
    transport = httpx.AsyncHTTPTransport(local_address=VANTAGE, verify=lab.ssl_context())
    async with httpx.AsyncClient(transport=transport, trust_env=False, timeout=SHORT) as client:
        # a certificate for the resolver's IP; each resolver answers from its own zone
        control = await client.post(lab.doh_url("control"), content=wire, headers=hdrs)
        vantage = await client.post(lab.doh_url("vantage"), content=wire, headers=hdrs)
        b64 = base64.urlsafe_b64encode(wire).rstrip(b"=").decode()
        get = await client.get(lab.doh_url("vantage"), params={"dns": b64})
        other = await client.post(lab.doh_url("vantage").replace("dns-query", "x"), content=wire)
    assert addresses(dns.message.from_wire(control.content)) == [site.address]
    assert addresses(dns.message.from_wire(vantage.content)) == ["192.0.2.9"]
    assert addresses(dns.message.from_wire(get.content)) == ["192.0.2.9"]
    assert other.status_code == 404
    # kept alive: three requests to the vantage resolver over one connection
    assert lab.doh_servers["127.0.2.53"].connections == 1
    assert [(q.source, q.transport) for q in lab.vantage_dns.queried("ratel.test")] == [
        (VANTAGE, "doh"), (VANTAGE, "doh")]
    # the second control resolver answers UDP from the control's zone
    reply = await dns.asyncquery.udp(dns.message.make_query("ratel.test", "A"), "127.0.3.54",
                                     port=lab.dns_port, timeout=SHORT)
    assert addresses(reply) == [site.address]
    assert lab.errors == []


# -- serving ------------------------------------------------------------------------------
async def test_serve_http_and_https_and_log(lab: Lab) -> None:
    site = await lab.add_site("ratel.test", aliases=["www.ratel.test"], body=b"<title>Ratel</title>")
    assert site.addresses == {VANTAGE: site.address, CONTROL: site.address, VANTAGE2: site.address}
    for source in (VANTAGE, CONTROL):
        for scheme in ("http", "https"):
            resp = await fetch(lab, "ratel.test", source, scheme=scheme, path="/news?id=1")
            assert resp.status_code == 200
            assert resp.text == "<title>Ratel</title>"
    from_file = ssl.create_default_context(cafile=lab.ca_pem_path)
    resp = await fetch(lab, "www.ratel.test", VANTAGE, verify=from_file)
    assert resp.status_code == 200
    https = [c for c in site.connections_from(VANTAGE) if c.scheme == "https"]
    assert https[0].sni == "ratel.test"
    assert https[0].host == "ratel.test"
    assert https[0].path == "/news?id=1"
    assert https[0].method == "GET"
    assert https[0].action == "serve"
    assert https[0].status == 200
    assert https[0].tls_version and https[0].tls_version.startswith("TLS")
    assert https[0].local == (site.address, lab.https_port)
    assert https[1].sni == "www.ratel.test"
    assert len(site.requests) == 5
    assert lab.site("WWW.ratel.test") is site
    assert lab.url("ratel.test") == f"https://ratel.test:{lab.https_port}/"
    assert lab.errors == []


async def test_content_options(lab: Lab) -> None:
    counter = iter(range(1000))
    site = await lab.add_site("vlast.test", body=lambda: f"visit {next(counter)}".encode())
    assert (await fetch(lab, "vlast.test", VANTAGE)).text == "visit 0"
    assert (await fetch(lab, "vlast.test", VANTAGE)).text == "visit 1"
    site.add_page("/echo", body=lambda request: request.headers["host"].encode())
    assert (await fetch(lab, "vlast.test", VANTAGE, path="/echo")).text == "vlast.test"
    site.add_page("/zipped", body=b"<p>zipped</p>" * 100, gzip=True)
    zipped = await fetch(lab, "vlast.test", VANTAGE, path="/zipped")
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.text == "<p>zipped</p>" * 100
    assert int(zipped.headers["content-length"]) < 200
    site.add_page("/big", body=b"<html>", size=5_000_000)
    big = await fetch(lab, "vlast.test", VANTAGE, path="/big")
    assert len(big.content) == 5_000_000
    assert big.content.startswith(b"<html>")
    site.add_page("/bomb", size=20_000_000, gzip=True)
    transport = httpx.AsyncHTTPTransport(local_address=VANTAGE, verify=lab.ssl_context())
    async with (
        httpx.AsyncClient(transport=transport, trust_env=False) as client,
        client.stream(
            "GET",
            f"https://{site.address}:{lab.https_port}/bomb",
            headers={"Host": "vlast.test"},
            extensions={"sni_hostname": "vlast.test"},
        ) as bomb,
    ):
        wire = b"".join([chunk async for chunk in bomb.aiter_raw()])
    assert len(wire) < 200_000
    assert len(gzip.decompress(wire)) == 20_000_000
    site.add_page("/old", redirect="/new")
    site.add_page("/new", body=b"new", status=404, headers={"X-Lab": "yes"})
    old = await fetch(lab, "vlast.test", VANTAGE, path="/old")
    assert (old.status_code, old.headers["location"]) == (301, "/new")
    new = await fetch(lab, "vlast.test", VANTAGE, path="/new")
    assert (new.status_code, new.headers["x-lab"], new.text) == (404, "yes", "new")


async def test_http_to_https_redirect(lab: Lab) -> None:
    await lab.add_site("ratel.test", http_to_https=True)
    resp = await fetch(lab, "ratel.test", CONTROL, scheme="http", path="/a?b=c")
    assert resp.status_code == 301
    assert resp.headers["location"] == f"https://ratel.test:{lab.https_port}/a?b=c"
    assert (await fetch(lab, "ratel.test", CONTROL)).status_code == 200


async def test_virtual_hosting_many_names_on_one_address(lab: Lab) -> None:
    sites = await lab.add_sites(
        [f"v{i}.test" for i in range(5)],
        sites_per_address=3,
        vantage=Behaviour.reset(sni="v1.test"),
    )
    assert sites[0].address == sites[1].address == sites[2].address != sites[3].address
    assert sites[3].address == sites[4].address
    for site in sites:
        resp = await fetch(lab, site.name, CONTROL)
        assert resp.text.startswith("<!DOCTYPE html>")
        assert f"<title>{site.name}</title>" in resp.text
        assert len(site.connections) == 1
        cert = await peer_cert(lab, site.address, site.name, CONTROL)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert site.name in san.get_values_for_type(x509.DNSName)
    # On a shared address a per-site reset happens after the ClientHello named the site.
    with pytest.raises(httpx.ConnectError):
        await fetch(lab, "v1.test", VANTAGE)
    assert sites[1].connections[-1].action == "reset"
    assert (await fetch(lab, "v2.test", VANTAGE)).status_code == 200
    plain = await fetch(lab, "v4.test", VANTAGE, scheme="http")
    assert "<title>v4.test</title>" in plain.text


# -- censorship behaviours ----------------------------------------------------------------
async def test_blockpage_http_and_https(lab: Lab) -> None:
    page = b"<html><title>Blocked</title>Access restricted</html>"
    site = await lab.add_site("ratel.test", vantage=Behaviour.blockpage(html=page, status=451))
    control = await fetch(lab, "ratel.test", CONTROL, scheme="http")
    assert control.status_code == 200
    blocked = await fetch(lab, "ratel.test", VANTAGE, scheme="http")
    assert (blocked.status_code, blocked.content) == (451, page)
    # Over https the blockpage server presents a certificate for another name.
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        await fetch(lab, "ratel.test", VANTAGE)
    blocked = await fetch(lab, "ratel.test", VANTAGE, verify=insecure())
    assert (blocked.status_code, blocked.content) == (451, page)
    assert (await fetch(lab, "ratel.test", CONTROL)).status_code == 200
    assert [c.action for c in site.connections_from(VANTAGE)] == ["blockpage"] * 3


async def test_reset(lab: Lab) -> None:
    site = await lab.add_site("ratel.test", vantage=Behaviour.reset)
    reader, writer = await tcp_connect(site.address, lab.http_port, VANTAGE)
    with pytest.raises(ConnectionResetError):
        await reader.read(100)
    writer.close()
    with pytest.raises(httpx.ConnectError) as info:
        await fetch(lab, "ratel.test", VANTAGE)
    assert caused_by(info.value, errno.ECONNRESET)
    assert (await fetch(lab, "ratel.test", CONTROL)).status_code == 200
    assert site.connections_from(VANTAGE)[0].action == "reset"


async def test_refuse_uses_an_address_without_listener(lab: Lab) -> None:
    site = await lab.add_site("ratel.test", vantage=Behaviour.refuse)
    dead = site.addresses[VANTAGE]
    assert dead != site.address
    assert await resolve(lab, "ratel.test", VANTAGE) == dead
    assert await resolve(lab, "ratel.test", CONTROL) == site.address
    for port in (lab.http_port, lab.https_port):
        with pytest.raises(ConnectionRefusedError):
            await tcp_connect(dead, port, VANTAGE)
    with pytest.raises(httpx.ConnectError) as info:
        await fetch(lab, "ratel.test", VANTAGE)
    assert caused_by(info.value, errno.ECONNREFUSED)
    assert (await fetch(lab, "ratel.test", CONTROL)).status_code == 200
    # The vantage reaching the live address anyway gets the closest thing: a reset at accept.
    with pytest.raises(httpx.ConnectError):
        await fetch(lab, "ratel.test", VANTAGE, address=site.address)
    assert site.connections_from(VANTAGE)[-1].action == "refuse"


async def test_refuse_for_everyone(lab: Lab) -> None:
    site = await lab.add_site("gone.test", behaviour=Behaviour.refuse)
    assert set(site.addresses.values()) == {site.address}
    with pytest.raises(ConnectionRefusedError):
        await tcp_connect(site.address, lab.https_port, CONTROL)


async def test_blackhole_accept(lab: Lab) -> None:
    site = await lab.add_site("ratel.test", vantage=Behaviour.blackhole_accept)
    with pytest.raises(httpx.ConnectTimeout):  # the TLS handshake never completes
        await fetch(lab, "ratel.test", VANTAGE, timeout=SHORT)
    with pytest.raises(httpx.ReadTimeout):
        await fetch(lab, "ratel.test", VANTAGE, scheme="http", timeout=SHORT)
    assert (await fetch(lab, "ratel.test", CONTROL)).status_code == 200
    assert [c.action for c in site.connections_from(VANTAGE)] == ["blackhole_accept"] * 2


async def test_blackhole_connect(lab: Lab) -> None:
    site = await lab.add_site("ratel.test", vantage=Behaviour.blackhole_connect)
    hole = site.addresses[VANTAGE]
    assert hole != site.address
    with pytest.raises(TimeoutError):
        await tcp_connect(hole, lab.https_port, VANTAGE, timeout=SHORT)
    with pytest.raises(httpx.ConnectTimeout):
        await fetch(lab, "ratel.test", VANTAGE, timeout=SHORT)
    assert (await fetch(lab, "ratel.test", CONTROL)).status_code == 200
    assert site.connections_from(VANTAGE) == []


async def test_tls_reset_after_hello_records_sni(lab: Lab) -> None:
    site = await lab.add_site("ratel.test", vantage=Behaviour.tls_reset_after_hello)
    with pytest.raises((ConnectionResetError, ssl.SSLError)):
        await tls_connect(lab, site.address, "ratel.test", VANTAGE)
    with pytest.raises(httpx.ConnectError) as info:
        await fetch(lab, "ratel.test", VANTAGE)
    assert caused_by(info.value, errno.ECONNRESET)
    # Plain http is not affected by a TLS behaviour.
    assert (await fetch(lab, "ratel.test", VANTAGE, scheme="http")).status_code == 200
    assert (await fetch(lab, "ratel.test", CONTROL)).status_code == 200
    vantage = site.connections_from(VANTAGE)
    assert [(c.sni, c.action) for c in vantage[:2]] == [
        ("ratel.test", "tls_reset_after_hello"),
        ("ratel.test", "tls_reset_after_hello"),
    ]


async def test_sni_based_blocking_only_for_the_matching_name(lab: Lab) -> None:
    site = await lab.add_site("ratel.test", vantage=Behaviour.tls_reset_after_hello(sni="ratel.test"))
    with pytest.raises((ConnectionResetError, ssl.SSLError)):
        await tls_connect(lab, site.address, "ratel.test", VANTAGE, ctx=insecure())
    # Same address, other SNI: the handshake completes (with the site's certificate).
    _, writer = await tls_connect(lab, site.address, "example.org", VANTAGE, ctx=insecure())
    writer.close()
    assert [c.sni for c in site.connections] == ["ratel.test", "example.org"]
    assert [c.action for c in site.connections] == ["tls_reset_after_hello", "serve"]


async def test_tls_stall_after_hello(lab: Lab) -> None:
    site = await lab.add_site("ratel.test", vantage=Behaviour.tls_stall_after_hello)
    with pytest.raises(TimeoutError):
        await tls_connect(lab, site.address, "ratel.test", VANTAGE, timeout=SHORT)
    with pytest.raises(httpx.ConnectTimeout):
        await fetch(lab, "ratel.test", VANTAGE, timeout=SHORT)
    assert (await fetch(lab, "ratel.test", CONTROL)).status_code == 200
    assert site.connections[0].sni == "ratel.test"
    assert site.connections[0].action == "tls_stall_after_hello"


async def test_mitm_with_the_kazakh_interception_ca(lab: Lab) -> None:
    site = await lab.add_site("ratel.test", vantage=Behaviour.mitm(issuer=ISSUER_KZ))
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        await fetch(lab, "ratel.test", VANTAGE)
    cert = await peer_cert(lab, site.address, "ratel.test", VANTAGE)
    issuer = {a.oid: a.value for a in cert.issuer}
    assert issuer[NameOID.ORGANIZATION_NAME] == "ISCA"
    assert issuer[NameOID.COMMON_NAME] == "Information Security Certification Authority"
    assert issuer[NameOID.COUNTRY_NAME] == "KZ"
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["ratel.test"]
    # Content still flows for a client that does not check.
    assert (await fetch(lab, "ratel.test", VANTAGE, verify=insecure())).status_code == 200
    assert (await fetch(lab, "ratel.test", CONTROL)).status_code == 200
    default = await lab.add_site("vlast.test", vantage=Behaviour.mitm)
    cert = await peer_cert(lab, default.address, "vlast.test", VANTAGE)
    assert {a.value for a in cert.issuer} >= {"Lab Rogue CA"}


async def test_wrong_name_and_expired(lab: Lab) -> None:
    site = await lab.add_site(
        "ratel.test",
        vantage=Behaviour.wrong_name(cert_name="other.test"),
        vantage2=Behaviour.expired,
    )
    with pytest.raises(httpx.ConnectError, match=r"Hostname mismatch|doesn't match"):
        await fetch(lab, "ratel.test", VANTAGE)
    chain_ok = lab.ssl_context()
    chain_ok.check_hostname = False
    assert (await fetch(lab, "ratel.test", VANTAGE, verify=chain_ok)).status_code == 200
    cert = await peer_cert(lab, site.address, "ratel.test", VANTAGE)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["other.test"]
    with pytest.raises(httpx.ConnectError, match="expired"):
        await fetch(lab, "ratel.test", VANTAGE2)
    assert (await fetch(lab, "ratel.test", CONTROL)).status_code == 200


async def test_throttle(lab: Lab) -> None:
    site = await lab.add_site(
        "ratel.test",
        body=b"x" * 20_000,
        vantage=Behaviour.throttle(handshake_delay=0.2),
        vantage2=Behaviour.throttle(handshake_delay=0, rate=100_000),
    )
    assert (await fetch(lab, "ratel.test", CONTROL)).status_code == 200
    start = time.perf_counter()
    _, writer = await tls_connect(lab, site.address, "ratel.test", VANTAGE)
    assert time.perf_counter() - start >= 0.2
    writer.close()
    with pytest.raises(httpx.ConnectTimeout):  # the handshake counts against connect timeout
        await fetch(lab, "ratel.test", VANTAGE, timeout=0.1)
    start = time.perf_counter()
    resp = await fetch(lab, "ratel.test", VANTAGE2)
    assert len(resp.content) == 20_000
    assert time.perf_counter() - start >= 0.15  # 20 kB at 100 kB/s: 4 chunks, 3 pauses


async def test_delay_behaviour(lab: Lab) -> None:
    await lab.add_site("ratel.test", vantage=Behaviour.delay(seconds=0.1))
    start = time.perf_counter()
    await fetch(lab, "ratel.test", VANTAGE)  # handshake + response: two delayed steps
    assert time.perf_counter() - start >= 0.2
    start = time.perf_counter()
    await fetch(lab, "ratel.test", VANTAGE, scheme="http")  # one step
    assert time.perf_counter() - start >= 0.1


async def test_lab_wide_latency(lab_factory) -> None:
    lab = await lab_factory(latency=0.05)
    await lab.add_site("ratel.test")
    start = time.perf_counter()
    await query(lab, "ratel.test", CONTROL)
    dns_time = time.perf_counter() - start
    start = time.perf_counter()
    await fetch(lab, "ratel.test", CONTROL)  # DNS, TLS handshake, response: 3 delayed steps
    assert dns_time >= 0.05
    assert time.perf_counter() - start >= 0.15


async def test_http_reset_and_stall_after_request(lab: Lab) -> None:
    site = await lab.add_site(
        "ratel.test",
        vantage=Behaviour.http_reset_after_request(host="ratel.test"),
        vantage2=Behaviour.http_stall_after_request,
    )
    with pytest.raises(httpx.ReadError) as info:
        await fetch(lab, "ratel.test", VANTAGE, scheme="http")
    assert caused_by(info.value, errno.ECONNRESET)
    with pytest.raises(httpx.ReadTimeout):
        await fetch(lab, "ratel.test", VANTAGE2, scheme="http", timeout=SHORT)
    # Host-matched: another Host header passes; https is out of the default scope.
    resp = await fetch(lab, "other.test", VANTAGE, scheme="http", address=site.address)
    assert resp.status_code == 200
    assert (await fetch(lab, "ratel.test", VANTAGE)).status_code == 200
    actions = [(c.source, c.host, c.action) for c in site.connections]
    assert actions[0] == (VANTAGE, "ratel.test", "http_reset_after_request")
    assert actions[1] == (VANTAGE2, "ratel.test", "http_stall_after_request")


async def test_behaviour_per_port(lab: Lab) -> None:
    await lab.add_site(
        "ratel.test", vantage=[Behaviour.blockpage(port="http"), Behaviour.reset(port="https")]
    )
    blocked = await fetch(lab, "ratel.test", VANTAGE, scheme="http")
    assert b"Access restricted" in blocked.content
    with pytest.raises(httpx.ConnectError):
        await fetch(lab, "ratel.test", VANTAGE)
    # An address-level behaviour on one port only: the other port is served on that address.
    site = await lab.add_site("vlast.test", vantage=Behaviour.refuse(port="https"))
    twin = site.addresses[VANTAGE]
    assert (await fetch(lab, "vlast.test", VANTAGE, scheme="http")).status_code == 200
    assert site.connections[-1].local == (twin, lab.http_port)
    with pytest.raises(ConnectionRefusedError):
        await tcp_connect(twin, lab.https_port, VANTAGE)


async def test_second_vantage_for_a_failing_canary(lab: Lab) -> None:
    await lab.add_site("canary.test", vantage2=Behaviour.refuse)
    lab.vantage2_dns.set("dns-canary.test", DNS.servfail())
    assert (await fetch(lab, "canary.test", VANTAGE)).status_code == 200
    with pytest.raises(httpx.ConnectError):
        await fetch(lab, "canary.test", VANTAGE2)
    assert (await query(lab, "dns-canary.test", VANTAGE2)).rcode() == dns.rcode.SERVFAIL


async def test_set_behaviour_later(lab: Lab) -> None:
    site = await lab.add_site("ratel.test")
    assert (await fetch(lab, "ratel.test", VANTAGE)).status_code == 200
    await site.set_behaviour(vantage=Behaviour.refuse)
    with pytest.raises(httpx.ConnectError):
        await fetch(lab, "ratel.test", VANTAGE)
    lab.vantage_dns.set("ratel.test", DNS.nxdomain())  # a test's override survives
    await site.set_behaviour(vantage=None)
    assert (await query(lab, "ratel.test", VANTAGE)).rcode() == dns.rcode.NXDOMAIN
    assert (await fetch(lab, "ratel.test", VANTAGE, address=site.address)).status_code == 200
    with pytest.raises(ValueError):
        await site.set_behaviour(control=Behaviour.blackhole_connect)


# -- lab mechanics -------------------------------------------------------------------------
def test_parse_client_hello_garbage() -> None:
    assert parse_client_hello(b"GET / HTTP/1.1\r\n\r\n").is_tls is False
    assert parse_client_hello(b"\x16\x03\x01\x00\x05\x01\x00").sni is None
    assert parse_client_hello(b"").is_tls is False


async def test_garbage_on_the_https_port(lab: Lab) -> None:
    site = await lab.add_site("ratel.test")
    reader, writer = await tcp_connect(site.address, lab.https_port, VANTAGE)
    writer.write(b"GET / HTTP/1.1\r\nHost: ratel.test\r\n\r\n")
    await reader.read()
    writer.close()
    reader, writer = await tcp_connect(site.address, lab.http_port, VANTAGE)
    writer.write(b"\x00\x01 not http\r\n\r\n")
    assert await reader.read() == b""
    writer.close()
    _, writer = await tcp_connect(site.address, lab.https_port, VANTAGE)
    writer.close()  # connect-only probe
    await site.wait_for_connections(3)
    assert site.connections[0].tls is False
    assert lab.errors == []


async def test_close_cancels_everything() -> None:
    async with Lab() as lab:
        site = await lab.add_site("ratel.test", vantage=Behaviour.tls_stall_after_hello)
        hole = await lab.add_site("hole.test", behaviour=Behaviour.blackhole_connect)
        assert hole.address != site.address
        with pytest.raises(TimeoutError):
            await tls_connect(lab, site.address, "ratel.test", VANTAGE, timeout=0.1)
        stalled_reader, stalled = await tcp_connect(site.address, lab.http_port, VANTAGE)
        await site.wait_for_connections(2)
        dns_port = lab.dns_port
        assert len(lab.tasks) > 0
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []
    assert await stalled_reader.read() == b""  # the server side was closed
    stalled.close()
    with pytest.raises(ConnectionRefusedError):
        await tcp_connect(site.address, lab.https_port, CONTROL)
    with pytest.raises(ConnectionRefusedError):
        await tcp_connect("127.0.2.53", dns_port, VANTAGE)


async def test_big_lab(big_lab: Lab) -> None:
    names = big_lab.big_names
    assert len(names) == 1000
    assert len({big_lab.site(n).address for n in names}) == 20
    for name in (names[0], names[499], names[999]):
        resp = await fetch(big_lab, name, VANTAGE)
        assert f"<title>{name}</title>" in resp.text


async def test_add_1000_sites_is_cheap(lab: Lab) -> None:
    start = time.perf_counter()
    sites: list[Site] = await lab.add_sites([f"s{i}.test" for i in range(1000)])
    assert time.perf_counter() - start < 2.0
    assert len(lab.control_dns.records) == 1000
    assert (await fetch(lab, sites[777].name, CONTROL)).status_code == 200
