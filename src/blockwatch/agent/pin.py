"""Certificate pinning without the `cryptography` package: the SHA-256 of the certificate's
SubjectPublicKeyInfo, found by walking the DER just far enough (the same value as
`openssl x509 -pubkey | openssl pkey -pubin -outform der | sha256`, HPKP's pin-sha256)."""

from __future__ import annotations

import base64
import binascii
import hashlib


class PinError(ValueError):
    pass


def _tlv(der: bytes, i: int) -> tuple[int, int, int]:
    """(tag, start of contents, end of contents) of the DER element at i."""
    tag = der[i]
    n = der[i + 1]
    i += 2
    if n & 0x80:
        k = n & 0x7F
        if k == 0 or k > 4:
            raise PinError("unsupported DER length")
        n = int.from_bytes(der[i:i + k], "big")
        i += k
    if i + n > len(der):
        raise PinError("truncated DER")
    return tag, i, i + n


def spki_der(cert_der: bytes) -> bytes:
    """The SubjectPublicKeyInfo element of an X.509 certificate."""
    try:
        tag, start, _ = _tlv(cert_der, 0)  # Certificate
        if tag != 0x30:
            raise PinError("not a certificate")
        tag, i, _ = _tlv(cert_der, start)  # tbsCertificate
        if tag != 0x30:
            raise PinError("not a certificate")
        tag, _, end = _tlv(cert_der, i)
        if tag == 0xA0:  # [0] version, optional
            i = end
        # serialNumber, signature, issuer, validity, subject
        for _ in range(5):
            _, _, i = _tlv(cert_der, i)
        tag, _, end = _tlv(cert_der, i)
        if tag != 0x30:
            raise PinError("no SubjectPublicKeyInfo")
        return cert_der[i:end]
    except IndexError:
        raise PinError("truncated DER") from None


def spki_sha256(cert_der: bytes) -> bytes:
    return hashlib.sha256(spki_der(cert_der)).digest()


def parse_pin(text: str) -> bytes:
    """`sha256:<base64>` or `sha256:<hex>` (also `sha256/...`, curl's spelling) -> 32 bytes."""
    t = text.strip()
    for prefix in ("sha256:", "sha256/"):
        if t.lower().startswith(prefix):
            t = t[len(prefix):]
            break
    else:
        raise PinError(f"{text!r}: a pin reads sha256:<base64 or hex of the SPKI's SHA-256>")
    raw: bytes | None = None
    if len(t) == 64:
        try:
            raw = bytes.fromhex(t)
        except ValueError:
            raw = None
    if raw is None:
        try:
            raw = base64.b64decode(t + "=" * (-len(t) % 4), validate=True)
        except (binascii.Error, ValueError):
            raw = None
    if raw is None or len(raw) != 32:
        raise PinError(f"{text!r}: not a SHA-256 value in base64 or hex")
    return raw


def format_pin(digest: bytes) -> str:
    return "sha256:" + base64.b64encode(digest).decode()
