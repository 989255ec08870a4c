"""Failures normalised to a small vocabulary in OONI's style, classified by errno and exception
type (never by message text, which differs between platforms and versions)."""

from __future__ import annotations

import errno
import ssl

# The strings live in the neutral vocabulary; re-exported so `failures.X` keeps working.
from blockwatch.vocabulary import (
    CONNECTION_REFUSED,
    CONNECTION_RESET,
    DNS_BOGUS,
    DNS_NO_ANSWER,
    DNS_NXDOMAIN,
    DNS_REFUSED,
    DNS_SERVFAIL,
    DNS_TIMEOUT,
    EOF_ERROR,
    GENERIC_TIMEOUT,
    HOST_UNREACHABLE,
    HTTP_BODY_TOO_LARGE,
    HTTP_PROTOCOL_ERROR,
    HTTP_TOO_MANY_REDIRECTS,
    NETWORK_UNREACHABLE,
    SSL_FAILED_HANDSHAKE,
    SSL_INVALID_CERTIFICATE,
    SSL_INVALID_HOSTNAME,
    SSL_UNKNOWN_AUTHORITY,
    UNKNOWN,
)

__all__ = ["CONNECTION_REFUSED", "CONNECTION_RESET", "DNS_BOGUS", "DNS_NO_ANSWER", "DNS_NXDOMAIN",
           "DNS_REFUSED", "DNS_SERVFAIL", "DNS_TIMEOUT", "EOF_ERROR", "GENERIC_TIMEOUT",
           "HOST_UNREACHABLE", "HTTP_BODY_TOO_LARGE", "HTTP_PROTOCOL_ERROR",
           "HTTP_TOO_MANY_REDIRECTS", "NETWORK_UNREACHABLE", "SSL_FAILED_HANDSHAKE",
           "SSL_INVALID_CERTIFICATE", "SSL_INVALID_HOSTNAME", "SSL_UNKNOWN_AUTHORITY", "UNKNOWN",
           "classify", "verify_error_text"]

_ERRNO = {
    errno.ECONNREFUSED: CONNECTION_REFUSED,
    errno.ECONNRESET: CONNECTION_RESET,
    errno.ECONNABORTED: CONNECTION_RESET,
    errno.EPIPE: CONNECTION_RESET,
    errno.ETIMEDOUT: GENERIC_TIMEOUT,
    errno.EHOSTUNREACH: HOST_UNREACHABLE,
    errno.ENETUNREACH: NETWORK_UNREACHABLE,
    errno.EADDRNOTAVAIL: NETWORK_UNREACHABLE,
}

# OpenSSL X509_V_ERR codes
_VERIFY = {
    2: SSL_UNKNOWN_AUTHORITY,  # unable to get issuer certificate
    18: SSL_UNKNOWN_AUTHORITY,  # self-signed leaf
    19: SSL_UNKNOWN_AUTHORITY,  # self-signed in chain
    20: SSL_UNKNOWN_AUTHORITY,  # unable to get local issuer
    21: SSL_UNKNOWN_AUTHORITY,  # unable to verify leaf signature
    62: SSL_INVALID_HOSTNAME,  # hostname mismatch
    64: SSL_INVALID_HOSTNAME,  # IP address mismatch
}


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in seen:
        seen.append(cur)
        cur = cur.__cause__ or cur.__context__
    return seen


def fin_in_handshake(exc: BaseException) -> bool:
    """The loop's TLS reports a server's FIN during the handshake as a bare reset (no errno, no
    message); a real RST carries ECONNRESET, or is the drain's "Connection lost" before TLS."""
    return isinstance(exc, ConnectionResetError) and exc.errno is None and not exc.args


def classify(exc: BaseException) -> str:
    """The failure string for an exception from a TCP, TLS or HTTP step."""
    chain = _chain(exc)
    for e in chain:
        if isinstance(e, ssl.SSLCertVerificationError):
            return _VERIFY.get(e.verify_code, SSL_INVALID_CERTIFICATE)
    for e in chain:
        if isinstance(e, ssl.SSLEOFError | ssl.SSLZeroReturnError):
            return EOF_ERROR
        if isinstance(e, ConnectionResetError):
            return CONNECTION_RESET
        if isinstance(e, OSError) and e.errno in _ERRNO:
            return _ERRNO[e.errno]
    for e in chain:
        if isinstance(e, TimeoutError):
            return GENERIC_TIMEOUT
        if isinstance(e, EOFError | ConnectionAbortedError):
            return EOF_ERROR
        if isinstance(e, ssl.SSLError):
            return SSL_FAILED_HANDSHAKE
    return UNKNOWN


def verify_error_text(exc: BaseException) -> str | None:
    for e in _chain(exc):
        if isinstance(e, ssl.SSLCertVerificationError):
            return str(e.verify_message)
    return None
