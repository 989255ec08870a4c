"""TCP connect and TLS handshake steps, one address at a time, with per-step timings."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import socket
import ssl
import time
from typing import Any

from blockwatch.probe import failures as F
from blockwatch.probe.records import CertInfo, TcpConnect, TlsHandshake

_NAMES = {
    "commonName": "CN",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "countryName": "C",
    "localityName": "L",
    "stateOrProvinceName": "ST",
}


def make_ssl_context(ca_bundle: str | None = None, *, verify: bool = True) -> ssl.SSLContext:
    """The system trust store plus the configured extra CAs."""
    if not verify:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    ctx = ssl.create_default_context()
    if ca_bundle:
        ctx.load_verify_locations(cafile=ca_bundle)
    # the HTTP step speaks HTTP/1.1 only: say so, as a client that could not do h2 would
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def _dn(parts: Any) -> str:
    out = []
    for rdn in parts or ():
        for k, v in rdn:
            out.append(f"{_NAMES.get(k, k)}={v}")
    return ", ".join(out)


def cert_info(cert: Any) -> CertInfo:
    """From an `_ssl.Certificate` (the unverified chain) or DER bytes."""
    if isinstance(cert, bytes):
        return _described(cert, None)
    der = cert.public_bytes(ssl._ssl.ENCODING_DER)  # type: ignore[attr-defined]
    return _described(der, cert)


def _described(der: bytes, cert: Any) -> CertInfo:
    # The same certificates come back in every round (and intermediates on every site of a
    # CA): decoding one costs more than hashing it, so decode each once.
    known = _seen.get(der)
    if known is None:
        info: dict[str, Any] = cert.get_info() if cert is not None else {}
        known = CertInfo(
            subject=_dn(info.get("subject")),
            issuer=_dn(info.get("issuer")),
            not_before=str(info.get("notBefore", "")),
            not_after=str(info.get("notAfter", "")),
            sha256=hashlib.sha256(der).hexdigest(),
            san=[v for k, v in info.get("subjectAltName", ()) if k in ("DNS", "IP Address")],
        )
        if cert is not None:
            if len(_seen) >= 4096:
                _seen.pop(next(iter(_seen)))
            _seen[der] = known
    return dataclasses.replace(known, san=list(known.san))  # callers may change their copy


_seen: dict[bytes, CertInfo] = {}


def peer_chain(ssl_object: Any) -> list[CertInfo]:
    """The full peer chain as sent. `get_unverified_chain` is private on 3.11, public on 3.13:
    use whichever exists and fall back to the leaf."""
    try:
        getter = getattr(ssl_object, "get_unverified_chain", None)
        if getter is None:
            getter = ssl_object._sslobj.get_unverified_chain
        chain = getter() or []
        return [cert_info(c) for c in chain]
    except Exception:
        der = ssl_object.getpeercert(binary_form=True)
        return [cert_info(der)] if der else []


def has_ipv6_route() -> bool:
    """Whether this host can reach the IPv6 internet (a route check: no packet is sent)."""
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        s.connect(("2001:4860:4860::8888", 53))
        return True
    except OSError:
        return False
    finally:
        s.close()


async def _open(address: str, port: int, source: str | None, timeout: float):  # type: ignore[no-untyped-def]
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    local = (source, 0) if source and (":" in source) == (family == socket.AF_INET6) else None
    async with asyncio.timeout(timeout):
        return await asyncio.open_connection(address, port, family=family, local_addr=local)


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(Exception):
        async with asyncio.timeout(1):
            await writer.wait_closed()


async def connect(
    address: str, port: int, sni: str | None, *, timeout: float, source: str | None,
    verified: ssl.SSLContext, unverified: ssl.SSLContext, keep: bool = False,
) -> tuple[TcpConnect, TlsHandshake | None, tuple[asyncio.StreamReader, asyncio.StreamWriter] | None]:
    """TCP connect, then (with an SNI) a TLS handshake over the same connection, verifying
    against the trust store. When verification fails, shake hands again without verifying, to
    keep the chain the server presented as evidence. With `keep`, a connection that worked is
    returned open for the HTTP step."""
    tcp = TcpConnect(address=address, port=port, status="ok")
    t0 = time.perf_counter()
    try:
        reader, writer = await _open(address, port, source, timeout)
    except (OSError, TimeoutError) as exc:
        tcp.status, tcp.failure = "failed", F.classify(exc)
        tcp.t_ms = round((time.perf_counter() - t0) * 1000, 2)
        return tcp, None, None
    tcp.t_ms = round((time.perf_counter() - t0) * 1000, 2)
    if sni is None:
        if keep:
            return tcp, None, (reader, writer)
        await _close(writer)
        return tcp, None, None
    rec = TlsHandshake(address=address, port=port, sni=sni)
    t1 = time.perf_counter()
    try:
        async with asyncio.timeout(timeout):
            await writer.start_tls(verified, server_hostname=sni)
    except (OSError, TimeoutError, ssl.SSLError, EOFError) as exc:
        rec.t_ms = round((time.perf_counter() - t1) * 1000, 2)
        rec.failure = F.classify(exc)
        if F.fin_in_handshake(exc):
            rec.failure = F.EOF_ERROR
        rec.verify_error = F.verify_error_text(exc)
        writer.transport.abort()
        if rec.verify_error is not None:
            rec.chain, rec.version, rec.cipher = await _unverified_chain(
                address, port, sni, timeout=timeout, source=source, ctx=unverified)
        return tcp, rec, None
    rec.t_ms = round((time.perf_counter() - t1) * 1000, 2)
    _describe(rec, writer)
    if keep:
        return tcp, rec, (reader, writer)
    await _close(writer)
    return tcp, rec, None


def _describe(rec: TlsHandshake, writer: asyncio.StreamWriter) -> None:
    obj = writer.get_extra_info("ssl_object")
    if obj is not None:
        rec.version = obj.version()
        c = obj.cipher()
        rec.cipher = c[0] if c else None
        rec.chain = peer_chain(obj)


async def _unverified_chain(
    address: str, port: int, sni: str, *, timeout: float, source: str | None, ctx: ssl.SSLContext
) -> tuple[list[CertInfo], str | None, str | None]:
    try:
        _, writer = await _open(address, port, source, timeout)
        async with asyncio.timeout(timeout):
            await writer.start_tls(ctx, server_hostname=sni)
    except (OSError, TimeoutError, ssl.SSLError, EOFError):
        return [], None, None
    rec = TlsHandshake(address=address, port=port, sni=sni)
    _describe(rec, writer)
    await _close(writer)
    return rec.chain, rec.version, rec.cipher


def is_ipv6(address: str) -> bool:
    return ":" in address


__all__ = ["connect", "has_ipv6_route", "make_ssl_context"]
