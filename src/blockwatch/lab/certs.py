"""Certificates: the lab CA (trustme, trusted by clients) and rogue CAs with chosen issuer names.

Server SSLContexts are cached process-wide (they do not depend on an event loop), so that
repeated labs in one test run do not pay for key generation and context creation again.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import tempfile
from collections.abc import Iterable

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

Issuer = tuple[tuple[str, str], ...]

# Default issuer of `mitm` certificates: a CA no client trusts.
ISSUER_ROGUE: Issuer = (("C", "ZZ"), ("O", "Lab Rogue CA"), ("CN", "Lab Rogue Root CA"))
# Kazakhstan's state interception CA ("Qaznet Trust Network" / ISCA), as seen in 2019-2020.
ISSUER_KZ: Issuer = (
    ("C", "KZ"),
    ("O", "ISCA"),
    ("CN", "Information Security Certification Authority"),
)

_OIDS = {
    "C": NameOID.COUNTRY_NAME,
    "ST": NameOID.STATE_OR_PROVINCE_NAME,
    "L": NameOID.LOCALITY_NAME,
    "O": NameOID.ORGANIZATION_NAME,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "CN": NameOID.COMMON_NAME,
}


def as_issuer(value: Issuer | dict[str, str] | Iterable[tuple[str, str]]) -> Issuer:
    items = value.items() if isinstance(value, dict) else value
    issuer = tuple((str(k).upper(), str(v)) for k, v in items)
    for key, _ in issuer:
        if key not in _OIDS:
            raise ValueError(f"unknown name attribute {key!r} (use one of {sorted(_OIDS)})")
    return issuer


def _san(names: Iterable[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


class RogueCA:
    """A self-signed CA with a chosen subject, built with `cryptography` (ECDSA P-256)."""

    def __init__(self, subject: Issuer) -> None:
        now = datetime.datetime.now(datetime.UTC)
        self.subject = subject
        self.name = x509.Name([x509.NameAttribute(_OIDS[k], v) for k, v in subject])
        self.key = ec.generate_private_key(ec.SECP256R1())
        ski = x509.SubjectKeyIdentifier.from_public_key(self.key.public_key())
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(self.name)
            .issuer_name(self.name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(ski, critical=False)
            .sign(self.key, hashes.SHA256())
        )
        self.cert_pem = self.cert.public_bytes(serialization.Encoding.PEM)

    def issue_pem(self, names: tuple[str, ...]) -> bytes:
        """Key + leaf + CA certificate, PEM, for `names` (the first is also the CN)."""
        now = datetime.datetime.now(datetime.UTC)
        key = ec.generate_private_key(ec.SECP256R1())
        leaf = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self.name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_san(names), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return key_pem + leaf.public_bytes(serialization.Encoding.PEM) + self.cert_pem


_lab_ca: trustme.CA | None = None
_rogue_cas: dict[Issuer, RogueCA] = {}
_contexts: dict[tuple[object, ...], ssl.SSLContext] = {}


def lab_ca() -> trustme.CA:
    """The process-wide lab CA (every Lab uses it; clients trust it via the lab)."""
    global _lab_ca
    if _lab_ca is None:
        _lab_ca = trustme.CA(organization_name="blockwatch lab CA")
    return _lab_ca


def rogue_ca(issuer: Issuer = ISSUER_ROGUE) -> RogueCA:
    if issuer not in _rogue_cas:
        _rogue_cas[issuer] = RogueCA(issuer)
    return _rogue_cas[issuer]


def _new_server_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def _load_pem(ctx: ssl.SSLContext, pem: bytes) -> None:
    fd, path = tempfile.mkstemp(suffix=".pem")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        ctx.load_cert_chain(path)
    finally:
        os.unlink(path)


def server_context(
    names: Iterable[str], *, issuer: Issuer | None = None, expired: bool = False
) -> ssl.SSLContext:
    """A server context with a certificate for `names`.

    issuer=None: issued by the (trusted) lab CA; otherwise by a rogue CA with that subject.
    expired=True: a lab-CA certificate that expired yesterday.
    """
    names = tuple(names)
    key = (names, issuer, expired)
    ctx = _contexts.get(key)
    if ctx is None:
        ctx = _new_server_context()
        if issuer is not None:
            _load_pem(ctx, rogue_ca(issuer).issue_pem(names))
        elif expired:
            now = datetime.datetime.now(datetime.UTC)
            lab_ca().issue_cert(
                *names,
                not_before=now - datetime.timedelta(days=30),
                not_after=now - datetime.timedelta(days=1),
            ).configure_cert(ctx)
        else:
            lab_ca().issue_cert(*names).configure_cert(ctx)
        _contexts[key] = ctx
    return ctx


def client_context() -> ssl.SSLContext:
    """A client context that trusts only the lab CA (hostname checking on)."""
    return ssl.create_default_context(cadata=lab_ca().cert_pem.bytes().decode())
