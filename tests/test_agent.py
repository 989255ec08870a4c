"""The agent end to end: it measures lab sites from the lab's vantage network and reports to a
real collector (uvicorn on loopback, PostgreSQL behind it); offline periods, re-delivery,
certificate pinning and its footprint."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import socket
import ssl
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import trustme
from sqlalchemy import func, select

from blockwatch.agent.main import agent_main, build_parser
from blockwatch.agent.pin import PinError, parse_pin, spki_der
from blockwatch.agent.queue import Queue
from blockwatch.storage.models import Measurement, Vantage, Verdict
from lab import VANTAGE, Behaviour, Lab
from test_collector import vantage_measurement
from test_collector_support import running_collector, tokens, write_collector_config


def agent_args(lab: Lab, tmp_path: Path, collector: str, token: str, *extra: str) -> list[str]:
    tf = tmp_path / "token"
    tf.write_text(token + "\n", encoding="utf-8")
    return ["--collector", collector, "--token-file", str(tf), "--queue", str(tmp_path / "queue.db"),
            "--resolver", lab.vantage_resolver, "--source-address", VANTAGE,
            "--ca-bundle", lab.ca_pem_path, "--allow-network", "127.0.0.0/8", "--once", *extra]


async def run_agent(argv: list[str]) -> int:
    # the agent runs its own event loop (as on a volunteer's machine); the lab and the
    # collector keep serving on this one
    return await asyncio.to_thread(agent_main, build_parser().parse_args(argv))


def agent_rows(db: Any, name: str) -> list[tuple[str, str]]:
    """One line per verdict stored: a row stands for itself and its run's repeats."""
    with db.read() as s:
        return [(v.url, v.verdict) for v in s.scalars(
            select(Verdict).join(Vantage, Vantage.id == Verdict.vantage_id)
            .where(Vantage.name == name).order_by(Verdict.id)) for _ in range(1 + v.repeats)]


def queued(tmp_path: Path) -> int:
    q = Queue(tmp_path / "queue.db")
    try:
        return len(q)
    finally:
        q.close()


async def test_agent_measures_and_reports(lab: Lab, tmp_path: Path, pg_url: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    await lab.add_site("ratel.test")
    await lab.add_site("vlast.test", vantage=Behaviour.tls_reset_after_hello)
    urls = [lab.url("ratel.test"), lab.url("vlast.test")]
    tok = tokens("almaty-1")
    cfg = write_collector_config(tmp_path, lab, pg_url, agents=tok, urls=urls)
    async with running_collector(cfg) as c:
        code = await run_agent(agent_args(lab, tmp_path, c.url, tok["almaty-1"], "--asn", "AS9198"))
        assert code == 0
        assert sorted(agent_rows(c.db, "almaty-1")) == sorted([(urls[0], "ok"), (urls[1], "tls")])
        with c.db.read() as s:
            v = s.scalar(select(Vantage).where(Vantage.name == "almaty-1"))
            assert v is not None and v.asn == "AS9198" and v.last_seen_at is not None
            for m in s.scalars(select(Measurement).where(Measurement.role == "vantage")):
                assert m.evidence["source_address"] is None
    assert queued(tmp_path) == 0
    assert "plain http://" in capsys.readouterr().err  # the unprotected link is pointed out


async def test_refused_measurements_are_set_aside_and_the_rest_delivered(
        lab: Lab, tmp_path: Path, pg_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """A queue holding measurements the collector refuses (a 1970 date, NaN from an older agent)
    still empties: those go to the rejected table, everything else is delivered."""
    await lab.add_site("ratel.test")
    url = lab.url("ratel.test")
    tok = tokens("a1")
    cfg = write_collector_config(tmp_path, lab, pg_url, agents=tok, urls=[url])
    base = await vantage_measurement(lab, url)
    nul = {**base, "uid": uuid.uuid4().hex, "http": {**base["http"], "title": "Ratel\x00"}}
    old = {**base, "uid": uuid.uuid4().hex, "measured_at": "1970-01-01T00:00:00Z"}
    nan = {**base, "uid": uuid.uuid4().hex, "t_ms": float("nan")}
    inf = {**base, "uid": uuid.uuid4().hex, "t_ms": float("inf")}
    q = Queue(tmp_path / "queue.db")
    q.put(old)
    q.put(inf)  # not JSON: set aside at once, never sent
    # what an older agent queued as it was: NaN in the JSON text
    q.db.execute("INSERT INTO queue (uid, body, queued_at) VALUES (?, ?, ?)",
                 (nan["uid"], json.dumps(nan), time.time()))
    q.put(nul)
    assert len(q) == 3
    q.close()
    caplog.set_level(logging.INFO, "blockwatch.agent")
    async with running_collector(cfg) as c:
        assert await run_agent(agent_args(lab, tmp_path, c.url, tok["a1"])) == 0
        assert queued(tmp_path) == 0
        # the queued one with a NUL title and this run's own measurement
        assert len(agent_rows(c.db, "a1")) == 2
        with c.db.read() as s:
            m = s.scalar(select(Measurement).where(Measurement.uid == f"a1/{nul['uid']}"))
            assert m is not None and m.evidence["http"]["title"] == "Ratel\\u0000"
    q = Queue(tmp_path / "queue.db")
    refused = dict(q.rejected())
    q.close()
    assert set(refused) == {old["uid"], nan["uid"], inf["uid"]}
    assert refused[old["uid"]].startswith("measured_at:")
    assert refused[nan["uid"]].startswith("t_ms:")
    assert "rejected 2 of 4 measurements" in caplog.text  # with this run's own


async def test_collector_down_then_back_loses_and_doubles_nothing(lab: Lab, tmp_path: Path,
                                                                  pg_url: str) -> None:
    for n in ("a.test", "b.test", "c.test"):
        await lab.add_site(n)
    urls = [lab.url(n) for n in ("a.test", "b.test", "c.test")]
    tok = tokens("a1")
    cfg = write_collector_config(tmp_path, lab, pg_url, agents=tok, urls=urls)
    port = 0
    async with running_collector(cfg) as c:
        port = c.port
        args = agent_args(lab, tmp_path, c.url, tok["a1"])
        assert await run_agent(args) == 0
    # the collector is gone: the agent still measures (the last target list) and queues
    assert await run_agent(args) == 75
    assert await run_agent(args) == 75
    assert queued(tmp_path) == 6
    q = Queue(tmp_path / "queue.db")
    pending = [json.loads(b) for _, b in q.oldest(100)]
    q.close()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    async with running_collector(cfg, sock=sock) as c:
        c.db.compact_runs = False  # every uid its own row: the delivery order is read from them
        assert await run_agent(args) == 0
        assert queued(tmp_path) == 0
        rows = agent_rows(c.db, "a1")
        assert len(rows) == 3 * 4 and all(v == "ok" for _, v in rows)
        # an acknowledgement lost on the way back: the agent sends those again; the collector
        # recognises them and stores nothing twice
        q = Queue(tmp_path / "queue.db")
        for m in pending:
            q.put(m)
        q.close()
        assert await run_agent(args) == 0
        assert len(agent_rows(c.db, "a1")) == 3 * 5
        with c.db.read() as s:
            uids = list(s.scalars(select(Measurement.uid).where(Measurement.role == "vantage")))
            assert len(uids) == len(set(uids)) == 15
            # delivered in order: run after run, as queued (the 3 URLs of one run are measured
            # concurrently, so within a run the order is whichever finished first)
            times = list(s.scalars(select(Measurement.measured_at).where(Measurement.role == "vantage")
                                   .order_by(Measurement.id)))
            runs = [sorted(times[i:i + 3]) for i in range(0, 12, 3)]
            assert [t for run in runs for t in run] == sorted(times[:12])


async def test_wrong_token_is_refused_and_kept_queued(lab: Lab, tmp_path: Path, pg_url: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    await lab.add_site("ratel.test")
    tok = tokens("a1")
    cfg = write_collector_config(tmp_path, lab, pg_url, agents=tok, urls=[lab.url("ratel.test")])
    async with running_collector(cfg) as c:
        assert await run_agent(agent_args(lab, tmp_path, c.url, "not-the-token")) == 1
        assert "refused this agent's token" in capsys.readouterr().err
        with c.db.read() as s:
            assert s.scalar(select(func.count()).select_from(Measurement)) == 0


def _tls_files(tmp_path: Path, name: str) -> tuple[str, str, bytes]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    certfile, keyfile = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    der = ssl.PEM_cert_to_DER_cert(cert.cert_chain_pems[0].bytes().decode())
    return str(certfile), str(keyfile), der


def test_spki_matches_cryptography(tmp_path: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    for key_type in (trustme.KeyType.ECDSA, trustme.KeyType.RSA):
        cert = trustme.CA(key_type=key_type).issue_cert("collector.example", key_type=key_type)
        pem = cert.cert_chain_pems[0].bytes()
        want = x509.load_pem_x509_certificate(pem).public_key().public_bytes(
            Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        assert spki_der(ssl.PEM_cert_to_DER_cert(pem.decode())) == want
    digest = hashlib.sha256(b"x").digest()
    assert parse_pin("sha256:" + base64.b64encode(digest).decode()) == digest
    assert parse_pin("sha256:" + digest.hex()) == digest
    assert parse_pin("sha256/" + base64.b64encode(digest).decode().rstrip("=")) == digest
    for bad in ("", "md5:abcd", "sha256:abcd", "sha256:" + "z" * 64):
        with pytest.raises(PinError):
            parse_pin(bad)


async def test_pinned_https_collector(lab: Lab, tmp_path: Path, pg_url: str,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    await lab.add_site("ratel.test")
    url = lab.url("ratel.test")
    tok = tokens("a1")
    cfg = write_collector_config(tmp_path, lab, pg_url, agents=tok, urls=[url])
    certfile, keyfile, der = _tls_files(tmp_path, "collector")
    good = "sha256:" + base64.b64encode(hashlib.sha256(spki_der(der)).digest()).decode()
    async with running_collector(cfg, ssl_certfile=certfile, ssl_keyfile=keyfile) as c:
        base = agent_args(lab, tmp_path, c.url, tok["a1"])
        assert await run_agent([*base, "--pin", good]) == 0
        assert agent_rows(c.db, "a1") == [(url, "ok")]
        err = capsys.readouterr().err
        assert "WARNING" not in err
        wrong = "sha256:" + hashlib.sha256(b"another key").hexdigest()
        assert await run_agent([*base, "--pin", wrong]) == 1
        err = capsys.readouterr().err
        assert "PIN MISMATCH" in err and "nothing was sent" in err
        assert len(agent_rows(c.db, "a1")) == 1


async def test_interceptor_never_sees_a_byte(lab: Lab, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """A TLS interceptor with another key: the agent hangs up right after the handshake, so
    neither the request nor the token reaches it."""
    certfile, keyfile, _ = _tls_files(tmp_path, "interceptor")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(certfile, keyfile)
    received: list[bytes] = []
    done = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            received.append(await reader.read())
        except (ConnectionError, ssl.SSLError):
            received.append(b"")
        finally:
            writer.close()
            done.set()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx)
    port = server.sockets[0].getsockname()[1]
    token = "secret-token-value"
    pin = "sha256:" + hashlib.sha256(b"the real collector").hexdigest()
    try:
        code = await run_agent(agent_args(lab, tmp_path, f"https://127.0.0.1:{port}", token, "--pin", pin))
        await done.wait()
    finally:
        server.close()
        await server.wait_closed()
    assert code == 1
    assert received == [b""]
    assert "PIN MISMATCH" in capsys.readouterr().err


FOOTPRINT = """
import json, sys
from blockwatch.agent.main import main
code = main(sys.argv[1:])
# VmHWM, not getrusage's ru_maxrss: that one survives fork+exec and reports the parent's
# (pytest's) size at fork time
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
heavy = ("pydantic", "sqlalchemy", "fastapi", "starlette", "uvicorn", "jinja2", "alembic")
bad = sorted(m for m in sys.modules if m.split(".")[0] in heavy
             or m.startswith(("blockwatch.collector", "blockwatch.storage", "blockwatch.site"))
             or m in ("blockwatch.config", "blockwatch.cli"))
print(json.dumps({"code": code, "maxrss_kb": hwm, "bad": bad}))
"""


async def test_agent_footprint_200_targets(lab: Lab, tmp_path: Path, pg_url: str) -> None:
    """The agent's budget: at most 60 MB RSS for 200 targets, without the server side's modules."""
    names = [f"site{i:03d}.test" for i in range(200)]
    await lab.add_sites(names)
    urls = [lab.url(n) for n in names]
    tok = tokens("pi")
    cfg = write_collector_config(tmp_path, lab, pg_url, agents=tok, urls=urls, max_body="1MiB")
    async with running_collector(cfg) as c:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", FOOTPRINT, *agent_args(lab, tmp_path, c.url, tok["pi"]),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        result = json.loads(out.decode().strip().splitlines()[-1])
        assert result["code"] == 0, err.decode()
        assert result["bad"] == []
        assert len(agent_rows(c.db, "pi")) == 200
    rss_mb = result["maxrss_kb"] / 1024
    print(f"agent max RSS for 200 targets: {rss_mb:.1f} MB")
    assert rss_mb <= 60


@pytest.mark.parametrize("asn", ["AS²", "AS١٢٣", "AS12345678901", "9198"])
def test_an_asn_the_collector_would_refuse_is_a_usage_error(
        asn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The agent accepts exactly the ASNs the collector accepts: one it would refuse would make
    every upload a 422 for the whole envelope."""
    token = tmp_path / "token"
    token.write_text("t" * 32)
    args = build_parser().parse_args(["--collector", "https://127.0.0.1:1", "--token-file",
                                      str(token), "--asn", asn, "--once"])
    assert agent_main(args) == 2
    assert "--asn" in capsys.readouterr().err
