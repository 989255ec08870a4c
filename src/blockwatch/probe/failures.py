"""Failures normalised to a small vocabulary in OONI's style, classified by errno and exception
type (never by message text, which differs between platforms and versions)."""

from __future__ import annotations

import errno
import ssl

import httpx

DNS_NXDOMAIN = "dns_nxdomain_error"
DNS_SERVFAIL = "dns_servfail_error"
DNS_REFUSED = "dns_refused_error"
DNS_NO_ANSWER = "dns_no_answer"
DNS_TIMEOUT = "dns_timeout"
DNS_BOGUS = "dns_bogus_reply"
CONNECTION_REFUSED = "connection_refused"
CONNECTION_RESET = "connection_reset"
GENERIC_TIMEOUT = "generic_timeout_error"
EOF_ERROR = "eof_error"
HOST_UNREACHABLE = "host_unreachable"
NETWORK_UNREACHABLE = "network_unreachable"
SSL_INVALID_CERTIFICATE = "ssl_invalid_certificate"
SSL_UNKNOWN_AUTHORITY = "ssl_unknown_authority"
SSL_INVALID_HOSTNAME = "ssl_invalid_hostname"
SSL_FAILED_HANDSHAKE = "ssl_failed_handshake"
HTTP_BODY_TOO_LARGE = "http_body_too_large"
HTTP_TOO_MANY_REDIRECTS = "http_too_many_redirects"
HTTP_PROTOCOL_ERROR = "http_protocol_error"
UNKNOWN = "unknown_failure"

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
        if isinstance(e, TimeoutError | httpx.TimeoutException):
            return GENERIC_TIMEOUT
        if isinstance(e, httpx.RemoteProtocolError):
            # httpx reports a server closing the connection mid-response this way
            return EOF_ERROR if "closed" in str(e).lower() or "disconnected" in str(e).lower() \
                else HTTP_PROTOCOL_ERROR
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
