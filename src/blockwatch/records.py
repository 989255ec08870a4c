"""Plain records of one measurement. They serialise to the JSON evidence that is stored, exported
and posted by agents, and analysis reads nothing else."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class DnsQuery:
    resolver: str  # "system", "1.1.1.1:53", "https://dns.google/dns-query"
    transport: str  # udp | tcp | doh
    qname: str
    qtype: str  # A | AAAA
    rcode: str | None = None  # NOERROR, NXDOMAIN, SERVFAIL, ...
    answers: list[str] = field(default_factory=list)
    ttls: list[int] = field(default_factory=list)
    cnames: list[str] = field(default_factory=list)
    bogons: list[str] = field(default_factory=list)
    extra_replies: list[list[str]] = field(default_factory=list)  # more replies to one query
    failure: str | None = None
    t_ms: float = 0.0


@dataclass
class TcpConnect:
    address: str
    port: int
    status: str  # ok | failed | skipped
    failure: str | None = None
    t_ms: float = 0.0


@dataclass
class CertInfo:
    subject: str
    issuer: str
    not_before: str
    not_after: str
    sha256: str
    san: list[str] = field(default_factory=list)


@dataclass
class TlsHandshake:
    address: str
    port: int
    sni: str
    failure: str | None = None
    verify_error: str | None = None
    version: str | None = None
    cipher: str | None = None
    chain: list[CertInfo] = field(default_factory=list)
    t_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return self.failure is None


@dataclass
class HttpHop:
    url: str
    address: str | None = None
    status: int | None = None
    headers: list[list[str]] = field(default_factory=list)
    location: str | None = None
    failure: str | None = None
    # the step this hop failed at: dns | tcp | tls | http (None: it did not fail, or evidence
    # recorded before the field existed)
    step: str | None = None
    t_ms: float = 0.0


@dataclass
class HttpResult:
    hops: list[HttpHop] = field(default_factory=list)
    final_url: str | None = None
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)  # final response, lower-case names
    title: str = ""
    body_length: int = 0
    body_sha256: str | None = None
    body_truncated: bool = False
    body_excerpt: str | None = None  # kept only when a fingerprint matched
    fingerprints: list[str] = field(default_factory=list)  # blockpage / server-side matches
    failure: str | None = None
    t_ms: float = 0.0  # request start to end of body
    ttfb_ms: float = 0.0
    transfer_ms: float = 0.0  # reading the body: also when a failure or the deadline cut it short
    received_bytes: int | None = None  # body bytes as they came off the wire (before decoding)
    deadline_exceeded: bool = False  # the request's deadline ended it while bytes still came
    not_attempted: bool = False  # no address completed the connection: nothing to ask


@dataclass
class WebMeasurement:
    url: str
    vantage: str
    role: str  # vantage | control
    measured_at: str  # UTC ISO 8601
    uid: str
    resolvers: list[str] = field(default_factory=list)
    dns: list[DnsQuery] = field(default_factory=list)
    tcp: list[TcpConnect] = field(default_factory=list)
    tls: list[TlsHandshake] = field(default_factory=list)
    http: HttpResult | None = None
    ipv6: bool = False
    source_address: str | None = None
    t_ms: float = 0.0

    @property
    def hostname(self) -> str:
        from urllib.parse import urlsplit

        return urlsplit(self.url).hostname or ""

    def addresses(self) -> list[str]:
        """Addresses the vantage's DNS gave for the URL's host (all queries, in order)."""
        out: list[str] = []
        for q in self.dns:
            for a in q.answers:
                if a not in out:
                    out.append(a)
        return out

    def failure(self) -> str | None:
        """The first step that failed: what a row's `failure` column summarises."""
        for q in self.dns:
            if q.failure and not self.addresses():
                return q.failure
        for t in self.tcp:
            if t.failure and t.status == "failed":
                return t.failure
        for h in self.tls:
            if h.failure:
                return h.failure
        return self.http.failure if self.http else None

    def to_json(self) -> dict[str, Any]:
        return _plain(self)  # dataclasses.asdict deep-copies every leaf: 5x slower

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WebMeasurement:
        d = dict(data)
        d["dns"] = [DnsQuery(**q) for q in d.get("dns", [])]
        d["tcp"] = [TcpConnect(**t) for t in d.get("tcp", [])]
        d["tls"] = [
            TlsHandshake(**{**t, "chain": [CertInfo(**c) for c in t.get("chain", [])]})
            for t in d.get("tls", [])
        ]
        if d.get("http") is not None:
            h = dict(d["http"])
            h["hops"] = [HttpHop(**x) for x in h.get("hops", [])]
            d["http"] = HttpResult(**h)
        return cls(**d)


_LEAF = (str, int, float, bool, type(None))


def _plain(obj: Any) -> Any:
    if isinstance(obj, _LEAF):
        return obj
    if hasattr(obj, "__dataclass_fields__"):  # our records: plain dataclasses, fields in __dict__
        return {k: _plain(v) for k, v in obj.__dict__.items()}
    if isinstance(obj, list | tuple):
        return [_plain(x) for x in obj]
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    return obj
