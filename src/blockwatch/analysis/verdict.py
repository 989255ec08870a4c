"""Measurement + control -> a Judgement: verdict, confirmed, and the keys that explain it (the
failing step and hop, both sides' failures, the addresses and their networks, the fingerprint,
the rates), from which the one-line reason a journalist understands is rendered per language.

Pure: no I/O. The vocabulary follows OONI's web connectivity where one exists. The order of the
checks matters: the first step that fails explains the rest (a lying resolver also breaks TLS).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any
from urllib.parse import urlsplit

from blockwatch import vocabulary as F
from blockwatch.analysis import reasons
from blockwatch.analysis.fingerprints import (
    Interception,
    Matcher,
    default_interception,
    default_matcher,
)
from blockwatch.records import HttpHop, HttpResult, TlsHandshake, WebMeasurement
from blockwatch.vocabulary import BLOCKING, SEVERITY, VERDICTS, Verdict

__all__ = ["BLOCKING", "SEVERITY", "VERDICTS", "AnalysisSettings", "Judgement", "Verdict", "judge",
           "judge_dns", "worst"]

CERT_FAILURES = {F.SSL_UNKNOWN_AUTHORITY, F.SSL_INVALID_HOSTNAME, F.SSL_INVALID_CERTIFICATE}
AsnLookup = Callable[[str], str | None]


@dataclass(frozen=True)
class Judgement:
    """A verdict and why, as keys in the manner of OONI's analysis. `reason` is the English text
    rendered from the keys (`why` names the explanation); judgements made elsewhere (OONI
    imports) may carry only a ready-made `reason`."""

    verdict: str  # a Verdict
    confirmed: bool
    reason: str = ""
    why: str | None = None  # the explanation's template in analysis/reasons.py
    host: str | None = None
    step: str | None = None  # the failing step: dns | tcp | tls | http | throttle
    hop_index: int | None = None  # a redirect hop that failed (0 is the first request)
    hop_host: str | None = None
    vantage_failure: str | None = None
    control_failure: str | None = None
    vantage_addresses: tuple[str, ...] = ()  # the vantage's addresses the reason is about
    control_addresses: tuple[str, ...] = ()
    injected_addresses: tuple[str, ...] = ()  # a second, different reply to one DNS query
    private_addresses: tuple[str, ...] = ()
    networks: tuple[tuple[str, str], ...] = ()  # (address, network) where the ASN is known
    port: int | None = None
    fingerprints: tuple[str, ...] = ()  # matched blockpage / server-side fingerprint ids
    fingerprint_note: str | None = None
    issuer: str | None = None  # the certificate's issuer
    authority: str | None = None  # the known interception authority it belongs to
    vantage_status: int | None = None
    control_status: int | None = None
    vantage_title: str | None = None
    control_title: str | None = None
    vantage_bytes: int | None = None
    control_bytes: int | None = None
    vantage_ms: float | None = None  # handshake or transfer time
    control_ms: float | None = None
    vantage_rate: float | None = None  # goodput, bytes per second
    control_rate: float | None = None
    vantage_final_host: str | None = None
    control_final_host: str | None = None
    resolver_problem: str | None = None

    @classmethod
    def explained(cls, verdict: Verdict, confirmed: bool, why: str, **keys: Any) -> Judgement:
        j = cls(verdict, confirmed, why=why, **keys)
        # set on the instance just made (nobody else holds it yet): replace() built it twice
        object.__setattr__(j, "reason", reasons.render(j.keys(), "en") or "")
        return j

    def keys(self) -> dict[str, Any]:
        """The explanation as JSON: `why` and every key that is set (verdict, confirmed and the
        English text are stored beside it)."""
        out: dict[str, Any] = {}
        for name in _KEY_FIELDS:  # not asdict(): its deep copy was most of judging's time
            value = getattr(self, name)
            if value in (None, (), ""):
                continue
            out[name] = dict(value) if name == "networks" else \
                list(value) if isinstance(value, tuple) else value
        return out

    def reason_in(self, lang: str) -> str:
        return reasons.render(self.keys(), lang) or self.reason


_KEY_FIELDS = tuple(f.name for f in fields(Judgement)
                    if f.name not in ("verdict", "confirmed", "reason"))


@dataclass(frozen=True)
class AnalysisSettings:
    throttle_factor: float = 4.0
    throttle_min_ms: float = 1000.0  # slower than the control AND at least this slow
    throttle_min_bytes: int = 32 * 1024  # transfer throughput is noise on tiny bodies
    body_proportion: float = 0.7  # OONI's threshold


def worst(verdicts: list[str]) -> str:
    return max(verdicts, key=lambda v: SEVERITY.get(v, 0)) if verdicts else Verdict.INCONCLUSIVE


_J = Judgement.explained


def _nets(asn: AsnLookup | None, addrs: list[str],
          bogons: frozenset[str] = frozenset()) -> tuple[tuple[str, str], ...]:
    """The networks of the addresses a reason names (the first three); none for a private one."""
    if asn is None:
        return ()
    found = ((a, asn(a) if a not in bogons else None) for a in addrs[:3])
    return tuple((a, n) for a, n in found if n)


def _title(h: HttpResult) -> str | None:
    return h.title[:60] if h.title else None


def judge(
    v: WebMeasurement,
    c: WebMeasurement | None,
    *,
    vantage_ok: bool = True,
    control_ok: bool = True,
    asn: AsnLookup | None = None,
    matcher: Matcher | None = None,
    interception: Interception | None = None,
    settings: AnalysisSettings = AnalysisSettings(),
) -> Judgement:
    matcher = matcher or default_matcher()
    interception = interception or default_interception()
    host = v.hostname
    if not vantage_ok:
        return _J(Verdict.INCONCLUSIVE, False, "vantage_down", host=host)
    if c is None or not control_ok:
        return _J(Verdict.INCONCLUSIVE, False, "no_control", host=host)
    for step in (_dns, _tcp, _tls, _http, _throttle):
        j = step(v, c, host, asn, matcher, interception, settings)
        if j is not None:
            return j
    h = v.http
    if h is not None and h.status is not None:
        return _J(Verdict.OK, False, "ok_http", host=host, vantage_status=h.status,
                  vantage_title=_title(h))
    return _J(Verdict.OK, False, "ok", host=host)


def judge_dns(
    v: WebMeasurement,
    c: WebMeasurement | None,
    *,
    resolver_ok: bool = True,
    resolver_problem: str = "",
    asn: AsnLookup | None = None,
    matcher: Matcher | None = None,
    interception: Interception | None = None,
) -> Judgement:
    """A resolver vantage's verdict: only `ok`, `dns` or `inconclusive`. Asking a resolver from
    outside says nothing about TCP, TLS or HTTP inside the country, so it never pretends to."""
    matcher = matcher or default_matcher()
    interception = interception or default_interception()
    host = v.hostname
    if not resolver_ok:
        return _J(Verdict.INCONCLUSIVE, False, "resolver_failed", host=host, step="dns",
                  resolver_problem=resolver_problem)
    if c is None or (not c.addresses() and _dns_failure(c) != F.DNS_NXDOMAIN):
        return _J(Verdict.INCONCLUSIVE, False, "no_control_dns", host=host, step="dns")
    j = _dns(v, c, host, asn, matcher, interception, AnalysisSettings())
    if j is None:
        return _J(Verdict.OK, False, "dns_consistent", host=host,
                  vantage_addresses=tuple(v.addresses()))
    if j.verdict != Verdict.DNS:
        return replace(j, verdict=Verdict.INCONCLUSIVE)
    return j


# --- DNS ---------------------------------------------------------------------------------------

def _dns_failure(m: WebMeasurement) -> str | None:
    """The failure of the name's lookup as a whole: None when any query gave addresses."""
    if not m.dns or m.addresses():
        return None
    a = [q for q in m.dns if q.qtype == "A"] or m.dns
    fails = [q.failure for q in a if q.failure]
    if not fails:
        return F.DNS_NO_ANSWER
    # NXDOMAIN wins over a timeout from another resolver: it is a definite answer.
    for f in (F.DNS_NXDOMAIN, F.DNS_SERVFAIL, F.DNS_REFUSED, F.DNS_NO_ANSWER):
        if f in fails:
            return f
    return fails[0]


def _dns(v, c, host, asn, matcher, interception, s):  # type: ignore[no-untyped-def]
    if not v.dns:  # an IP-literal URL: nothing to resolve
        return None
    vf, cf = _dns_failure(v), _dns_failure(c)
    caddrs = c.addresses()
    keys: dict[str, Any] = {"host": host, "step": "dns", "control_addresses": tuple(caddrs)}
    if vf is not None:
        if cf is not None:
            return _J(Verdict.DOWN, False, "dns_down", vantage_failure=vf, control_failure=cf,
                      **keys)
        return _J(Verdict.DNS, False, "dns_failure", vantage_failure=vf, **keys)
    vaddrs = v.addresses()
    blocked = [a for a in vaddrs if interception.is_block_address(a)]
    if blocked:
        return _J(Verdict.DNS, True, "dns_block_address", vantage_addresses=tuple(blocked), **keys)
    injected = [r for q in v.dns for r in q.extra_replies if r and set(r) != set(q.answers)]
    vbogons = frozenset(a for q in v.dns for a in q.bogons)
    if cf is not None and not caddrs:
        if cf in (F.DNS_NXDOMAIN, F.DNS_NO_ANSWER) and not any(t.ok for t in v.tls):
            # The name has no address for the control, yet the vantage's resolver gives one
            # that does not prove to be the site: a censor's rule outliving the site.
            return _J(Verdict.DNS, False, "dns_ghost", vantage_addresses=tuple(vaddrs),
                      control_failure=cf, networks=_nets(asn, vaddrs, bogons=vbogons),
                      private_addresses=tuple(a for a in vaddrs if a in vbogons), **keys)
        return None  # nothing to compare with; TCP/TLS/HTTP will tell
    cbogons = frozenset(a for q in c.dns for a in q.bogons)
    bogons = [a for a in vaddrs if a in vbogons]
    if bogons and not all(a in cbogons for a in caddrs):
        return _J(Verdict.DNS, False, "dns_private", vantage_addresses=tuple(bogons),
                  private_addresses=tuple(bogons), **keys)
    if _consistent(v, c, vaddrs, caddrs, asn, matcher) or _tls_interference_only(v):
        if injected:
            return _J(Verdict.DNS, False, "dns_injected", vantage_addresses=tuple(vaddrs),
                      injected_addresses=tuple(injected[0]), **keys)
        return None
    return _J(Verdict.DNS, False, "dns_inconsistent_injected" if injected else "dns_inconsistent",
              vantage_addresses=tuple(vaddrs),
              injected_addresses=tuple(injected[0]) if injected else (),
              networks=_nets(asn, vaddrs, bogons=vbogons) + _nets(asn, caddrs),
              private_addresses=tuple(a for a in vaddrs if a in vbogons), **keys)


def _consistent(v: WebMeasurement, c: WebMeasurement, vaddrs: list[str], caddrs: list[str],
                asn: AsnLookup | None, matcher: Matcher) -> bool:
    if set(vaddrs) & set(caddrs):
        return True
    if asn is not None:
        vnets = {asn(a) for a in vaddrs} - {None}
        cnets = {asn(a) for a in caddrs} - {None}
        if vnets & cnets:
            return True
    # A returned address that completes a TLS handshake with a certificate valid for the name
    # is the site, wherever it is (load balancing, geo-DNS, CDNs).
    if any(t.ok and t.address in vaddrs for t in v.tls):
        return True
    # Plain HTTP sites: the page itself, as fetched from those addresses, is the site's page.
    h, ch = v.http, c.http
    if urlsplit(v.url).scheme == "http" and h is not None and ch is not None \
            and h.status is not None and ch.status is not None:
        return _http_match(h, ch, AnalysisSettings()) and not _blockpage(h, matcher)
    return False


def _tls_interference_only(v: WebMeasurement) -> bool:
    """Unfamiliar addresses that connect but whose every TLS handshake is reset or stalled after
    the ClientHello: the handshake never got far enough to prove or disprove the address, and
    that pattern is SNI filtering (Kazakhstan's commonest technique), so TLS explains it."""
    connected = [t for t in v.tcp if t.status == "ok"]
    return bool(connected and v.tls) and all(
        t.failure in (F.CONNECTION_RESET, F.GENERIC_TIMEOUT, F.EOF_ERROR) for t in v.tls)


# --- TCP ---------------------------------------------------------------------------------------

def _tcp(v, c, host, asn, matcher, interception, s):  # type: ignore[no-untyped-def]
    tried = [t for t in v.tcp if t.status != "skipped"]
    if not tried or any(t.status == "ok" for t in tried):
        return None
    ctried = [t for t in c.tcp if t.status != "skipped"]
    first = tried[0]
    keys: dict[str, Any] = {"host": host, "step": "tcp", "vantage_failure": first.failure}
    if not ctried:
        return _J(Verdict.INCONCLUSIVE, False, "tcp_no_control", **keys)
    if ctried and not any(t.status == "ok" for t in ctried):
        return _J(Verdict.DOWN, False, "tcp_down", control_failure=ctried[0].failure, **keys)
    return _J(Verdict.TCP_IP, False, "tcp_blocked", vantage_addresses=(first.address,),
              port=first.port, **keys)


# --- TLS ---------------------------------------------------------------------------------------

def _interception_ca(handshakes: list[TlsHandshake], interception: Interception):  # type: ignore[no-untyped-def]
    names = [n for t in handshakes for cert in t.chain for n in (cert.issuer, cert.subject)]
    return interception.ca_for(names)


def _tls(v, c, host, asn, matcher, interception, s):  # type: ignore[no-untyped-def]
    if not v.tls:
        return None
    ca = _interception_ca(v.tls, interception)
    if ca is not None:
        issuer = next((cert.issuer for t in v.tls for cert in t.chain
                       if ca.matches(cert.issuer) or ca.matches(cert.subject)), "")
        return _J(Verdict.TLS, True, "tls_interception", host=host, step="tls", issuer=issuer,
                  authority=ca.note or ca.id)
    if any(t.ok for t in v.tls):
        return None
    first = v.tls[0]
    ctls_ok = any(t.ok for t in c.tls)
    keys: dict[str, Any] = {"host": host, "step": "tls", "vantage_failure": first.failure}
    if first.failure in CERT_FAILURES:
        if not ctls_ok and any(t.failure in CERT_FAILURES for t in c.tls):
            cfail = next(t.failure for t in c.tls if t.failure in CERT_FAILURES)
            return _J(Verdict.DOWN, False, "tls_cert_down", control_failure=cfail, **keys)
        return _J(Verdict.TLS, False, "tls_cert",
                  issuer=first.chain[0].issuer if first.chain else None, **keys)
    if not c.tls:
        return _J(Verdict.INCONCLUSIVE, False, "tls_no_control", **keys)
    if not ctls_ok:
        return _J(Verdict.DOWN, False, "tls_down", control_failure=c.tls[0].failure, **keys)
    return _J(Verdict.TLS, False, "tls_blocked", vantage_addresses=(first.address,), **keys)


# --- HTTP --------------------------------------------------------------------------------------

def _blockpage(h: HttpResult, matcher: Matcher) -> list[str]:
    k = matcher.kinds(h.fingerprints)
    return [] if k["false_positive"] else [f.id for f in k["blockpage"]]


def _title_words(t: str) -> set[str]:
    return {w.lower() for w in t.split() if len(w) >= 5}


def _http_match(h: HttpResult, ch: HttpResult, s: AnalysisSettings) -> bool:
    if h.status != ch.status and not (h.status and ch.status and h.status // 100 == ch.status // 100
                                      == 2):
        return False
    if h.body_sha256 == ch.body_sha256:
        return True
    big, small = max(h.body_length, ch.body_length), min(h.body_length, ch.body_length)
    if big == 0 or small / big >= s.body_proportion:
        return True
    tw, cw = _title_words(h.title), _title_words(ch.title)
    if cw and tw & cw:
        return True
    return False


def _pages(h: HttpResult, ch: HttpResult) -> dict[str, Any]:
    """Both sides' status, title and size: what `vdesc` and `cdesc` say."""
    return {"vantage_status": h.status, "control_status": ch.status, "vantage_title": _title(h),
            "control_title": _title(ch), "vantage_bytes": h.body_length,
            "control_bytes": ch.body_length}


def _http(v, c, host, asn, matcher, interception, s):  # type: ignore[no-untyped-def]
    h, ch = v.http, c.http
    if h is None:
        return None
    keys: dict[str, Any] = {"host": host, "step": "http"}
    if h.status is None:
        hop = _redirect_hop_failure(h)
        if hop is not None:
            j = _judge_hop(hop, len(h.hops) - 1, ch, host)
            if j is not None:
                return j
        if ch is None or ch.status is None:
            return _J(Verdict.DOWN, False, "http_down", vantage_failure=h.failure,
                      control_failure=ch.failure if ch is not None else None, **keys)
        b = _hostname(hop.url) if hop is not None else None
        if b is not None:  # the control was never sent to that host: nothing to compare with
            return _J(Verdict.HTTP_FAILURE, False, "http_redirect_unmatched",
                      hop_index=len(h.hops) - 1, hop_host=b, vantage_failure=h.failure,
                      control_status=ch.status, **keys)
        return _J(Verdict.HTTP_FAILURE, False, "http_failure", vantage_failure=h.failure,
                  control_status=ch.status, **keys)
    bp = _blockpage(h, matcher)
    if bp and not (ch is not None and set(bp) & set(_blockpage(ch, matcher))):
        return _J(Verdict.HTTP_BLOCKPAGE, True, "http_blockpage", fingerprints=tuple(bp),
                  vantage_status=h.status, **keys)
    if ch is None or ch.status is None:
        return None  # the control failed, the vantage works: reachable
    if h.failure and not ch.failure and h.failure != F.HTTP_TOO_MANY_REDIRECTS:
        # the response began and then broke off (the control got all of it): too slow to
        # finish, or cut
        slow = _slow_transfer(h, ch, host, s)
        if slow is not None:
            return slow
        # cut by the deadline while still flowing, with rates that compare, but not much
        # slower than the control: a slow link, judged on what arrived like any page
        if not (h.deadline_exceeded and _got(h) > 0 and _got(ch) >= s.throttle_min_bytes):
            return _J(Verdict.HTTP_FAILURE, False, "http_broke_off", vantage_failure=h.failure,
                      vantage_bytes=_got(h), control_bytes=_got(ch), **keys)
    ss_v = matcher.kinds(h.fingerprints)["server_side"]
    ss_c = {f.id for f in matcher.kinds(ch.fingerprints)["server_side"]}
    fresh = [f for f in ss_v if f.id not in ss_c]
    if fresh:
        return _J(Verdict.HTTP_DIFF, False, "http_server_side", fingerprints=(fresh[0].id,),
                  fingerprint_note=fresh[0].what or None, **_pages(h, ch), **keys)
    if h.status >= 500 and ch.status >= 500:
        return _J(Verdict.DOWN, False, "http_server_errors", vantage_status=h.status,
                  control_status=ch.status, **keys)
    vhost = urlsplit(h.final_url or "").hostname
    chost = urlsplit(ch.final_url or "").hostname
    if vhost and chost and vhost != chost and _base(vhost) != _base(chost):
        return _J(Verdict.HTTP_DIFF, False, "http_redirect_diff", vantage_final_host=vhost,
                  control_final_host=chost, **keys)
    if not _http_match(h, ch, s):
        return _J(Verdict.HTTP_DIFF, False, "http_diff", **_pages(h, ch), **keys)
    return None


_STEP_VERDICT = {"dns": Verdict.DNS, "tcp": Verdict.TCP_IP, "tls": Verdict.TLS,
                 "http": Verdict.HTTP_FAILURE}


def _redirect_hop_failure(h: HttpResult) -> HttpHop | None:
    """The failed hop when it is not the first: a redirect's target failed."""
    if len(h.hops) > 1 and h.hops[-1].failure:
        return h.hops[-1]
    return None


def _hop_step(hop: HttpHop) -> str:
    if hop.step:
        return hop.step
    # evidence from before hops recorded their step: tell it from the failure
    f = hop.failure or ""
    if hop.address is None or f.startswith("dns_"):
        return "dns"
    if f.startswith("ssl_"):
        return "tls"
    if f in (F.CONNECTION_REFUSED, F.HOST_UNREACHABLE, F.NETWORK_UNREACHABLE):
        return "tcp"
    return "http"


def _judge_hop(hop: HttpHop, index: int, ch: HttpResult | None, host: str) -> Judgement | None:
    """A redirect hop that failed at the vantage, judged by the step it failed at, against
    the control's hop to the same host."""
    b, key = _hostname(hop.url), _origin(hop.url)
    same = [x for x in (ch.hops if ch is not None else []) if _origin(x.url) == key]
    if key is None or not same:
        return None  # the control never went there: judged on the whole result
    step = _hop_step(hop)
    step = step if step in _STEP_VERDICT else "http"
    keys: dict[str, Any] = {"host": host, "step": step, "hop_index": index, "hop_host": b,
                            "vantage_failure": hop.failure}
    if any(x.failure for x in same) and not any(x.status is not None and not x.failure
                                                for x in same):
        cf = next(x.failure for x in same if x.failure)
        return _J(Verdict.DOWN, False, "hop_down", control_failure=cf, **keys)
    return _J(_STEP_VERDICT[step], False, "hop_blocked", **keys)


def _hostname(url: str) -> str | None:
    try:
        return urlsplit(url).hostname
    except ValueError:  # a malformed Location the probe recorded as it came
        return None


def _origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port): http://B and https://B are different connections."""
    try:
        p = urlsplit(url)
        return (p.scheme, p.hostname or "", p.port or (443 if p.scheme == "https" else 80))
    except ValueError:
        return None


def _got(h: HttpResult) -> int:
    return h.received_bytes if h.received_bytes is not None else h.body_length


def _slow_transfer(h: HttpResult, ch: HttpResult, host: str,
                   s: AnalysisSettings) -> Judgement | None:
    """A body that flowed but too slowly to finish before the timeout ended it."""
    vbytes, cbytes = _got(h), _got(ch)
    # a deadline that ended a flowing transfer, not a read timeout after the bytes stopped
    if not h.deadline_exceeded or vbytes <= 0 or cbytes < s.throttle_min_bytes \
            or h.transfer_ms < s.throttle_min_ms:
        return None
    vrate = vbytes / max(h.transfer_ms, 1.0)
    crate = cbytes / max(ch.transfer_ms, 1.0)
    if crate < s.throttle_factor * vrate:
        return None
    return _J(Verdict.THROTTLED, False, "throttled_transfer", host=host, step="throttle",
              vantage_rate=vrate * 1000, control_rate=crate * 1000, vantage_bytes=vbytes,
              control_bytes=cbytes, vantage_ms=h.transfer_ms, control_ms=ch.transfer_ms)


def _base(hostname: str) -> str:
    parts = hostname.lower().removeprefix("www.").split(".")
    return ".".join(parts[-2:])


# --- throttling --------------------------------------------------------------------------------

def _throttle(v, c, host, asn, matcher, interception, s):  # type: ignore[no-untyped-def]
    vt = [t.t_ms for t in v.tls if t.ok]
    ct = [t.t_ms for t in c.tls if t.ok]
    if vt and ct:
        vm, cm = statistics.median(vt), statistics.median(ct)
        if vm >= s.throttle_min_ms and vm >= s.throttle_factor * max(cm, 1.0):
            return _J(Verdict.THROTTLED, False, "throttled_handshake", host=host,
                      step="throttle", vantage_ms=vm, control_ms=cm)
    h, ch = v.http, c.http
    if h and ch and h.status and ch.status and not h.failure \
            and min(h.body_length, ch.body_length) >= s.throttle_min_bytes \
            and h.transfer_ms >= s.throttle_min_ms:
        vrate = h.body_length / max(h.transfer_ms, 1.0)
        crate = ch.body_length / max(ch.transfer_ms, 1.0)
        if crate >= s.throttle_factor * vrate:
            # goodput: the whole body over the transfer time, bytes per second
            return _J(Verdict.THROTTLED, False, "throttled_page", host=host, step="throttle",
                      vantage_rate=vrate * 1000, control_rate=crate * 1000,
                      vantage_bytes=h.body_length, control_bytes=ch.body_length,
                      vantage_ms=h.transfer_ms, control_ms=ch.transfer_ms)
    return None
