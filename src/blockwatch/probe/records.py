"""The evidence records, re-exported from their neutral home `blockwatch.records` so probe code
and older imports keep working."""

from blockwatch.records import (
    CertInfo,
    DnsQuery,
    HttpHop,
    HttpResult,
    TcpConnect,
    TlsHandshake,
    WebMeasurement,
)

__all__ = ["CertInfo", "DnsQuery", "HttpHop", "HttpResult", "TcpConnect", "TlsHandshake",
           "WebMeasurement"]
