"""The words measurements and verdicts are stored in: the verdict names and the failure strings.

Neutral on purpose: no network, no database, no third-party imports, so analysis, storage, the
site and the alerts can all name a verdict without pulling in the probes.
"""

from __future__ import annotations

from enum import StrEnum


class Verdict(StrEnum):
    """A URL's verdict at a vantage. A StrEnum: `Verdict.DNS == "dns"`, so stored strings and
    JSON are unchanged. The vocabulary follows OONI's web connectivity where one exists."""

    OK = "ok"
    DNS = "dns"
    TCP_IP = "tcp_ip"
    TLS = "tls"
    HTTP_BLOCKPAGE = "http_blockpage"
    HTTP_DIFF = "http_diff"
    HTTP_FAILURE = "http_failure"
    THROTTLED = "throttled"
    DOWN = "down"
    INCONCLUSIVE = "inconclusive"


VERDICTS: tuple[str, ...] = tuple(Verdict)
# "Worst" for a target's state over its URLs: blocking above trouble above fine.
SEVERITY: dict[str, int] = {
    Verdict.OK: 0, Verdict.INCONCLUSIVE: 1, Verdict.DOWN: 2, Verdict.THROTTLED: 3,
    Verdict.HTTP_DIFF: 4, Verdict.HTTP_FAILURE: 5, Verdict.TCP_IP: 6, Verdict.TLS: 7,
    Verdict.DNS: 8, Verdict.HTTP_BLOCKPAGE: 9,
}
# The verdicts that mean someone is interfering; down, inconclusive and ok do not.
BLOCKING: frozenset[str] = frozenset({
    Verdict.DNS, Verdict.TCP_IP, Verdict.TLS, Verdict.HTTP_BLOCKPAGE, Verdict.HTTP_DIFF,
    Verdict.HTTP_FAILURE, Verdict.THROTTLED,
})

# --- failures, normalised in OONI's style (classified in probe/failures.py) --------------------

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
# every failure string above, for the tables that say them in words (analysis/reasons.py)
FAILURES: tuple[str, ...] = (
    DNS_NXDOMAIN, DNS_SERVFAIL, DNS_REFUSED, DNS_NO_ANSWER, DNS_TIMEOUT, DNS_BOGUS,
    CONNECTION_REFUSED, CONNECTION_RESET, GENERIC_TIMEOUT, EOF_ERROR, HOST_UNREACHABLE,
    NETWORK_UNREACHABLE, SSL_INVALID_CERTIFICATE, SSL_UNKNOWN_AUTHORITY, SSL_INVALID_HOSTNAME,
    SSL_FAILED_HANDSHAKE, HTTP_BODY_TOO_LARGE, HTTP_TOO_MANY_REDIRECTS, HTTP_PROTOCOL_ERROR,
    UNKNOWN,
)

# An autonomous system number as agents send it and the collector accepts it: ASCII digits only
# (a Unicode digit passed `str.isdigit` in the agent and was refused by the collector).
ASN_PATTERN = r"^AS[0-9]{1,10}$"
