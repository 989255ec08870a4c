"""Measurement + control -> verdict, confirmed, and a one-line reason a journalist understands.

Pure: no I/O. The vocabulary follows OONI's web connectivity where one exists. The order of the
checks matters: the first step that fails explains the rest (a lying resolver also breaks TLS).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from blockwatch import vocabulary as F
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
    verdict: str
    confirmed: bool
    reason: str


@dataclass(frozen=True)
class AnalysisSettings:
    throttle_factor: float = 4.0
    throttle_min_ms: float = 1000.0  # slower than the control AND at least this slow
    throttle_min_bytes: int = 32 * 1024  # transfer throughput is noise on tiny bodies
    body_proportion: float = 0.7  # OONI's threshold


def worst(verdicts: list[str]) -> str:
    return max(verdicts, key=lambda v: SEVERITY.get(v, 0)) if verdicts else "inconclusive"


def _addrs(addrs: list[str], n: int = 3) -> str:
    if not addrs:
        return "nothing"
    s = ", ".join(addrs[:n])
    return s + (f" and {len(addrs) - n} more" if len(addrs) > n else "")


def _with_asn(addrs: list[str], asn: AsnLookup | None, bogons: frozenset[str] = frozenset()) -> str:
    out = []
    for a in addrs[:3]:
        note = " (a private address)" if a in bogons else ""
        network = asn(a) if asn and not note else None
        out.append(f"{a}{note}{f' ({network})' if network else ''}")
    return _addrs(out + addrs[3:]) if len(addrs) > 3 else ", ".join(out)


def _kb(n: int) -> str:
    return f"{n / 1024:.0f} KB" if n >= 1024 else f"{n} bytes"


def _secs(ms: float) -> str:
    return f"{ms / 1000:.1f} s"


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
        return Judgement("inconclusive", False,
                         "every canary site failed from this vantage: its own connection is down")
    if c is None or not control_ok:
        return Judgement("inconclusive", False,
                         "no usable control measurement: the control's own connection failed")
    for step in (_dns, _tcp, _tls, _http, _throttle):
        j = step(v, c, host, asn, matcher, interception, settings)
        if j is not None:
            return j
    h = v.http
    if h is not None and h.status is not None:
        title = f" \u201c{h.title[:60]}\u201d" if h.title else ""
        return Judgement("ok", False, f"reachable: HTTP {h.status}{title}")
    return Judgement("ok", False, "reachable")


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
        return Judgement("inconclusive", False,
                         f"the resolver failed its control queries ({resolver_problem}): "
                         "no evidence either way")
    if c is None or (not c.addresses() and _dns_failure(c) != F.DNS_NXDOMAIN):
        return Judgement("inconclusive", False, "the control resolvers gave no answer to compare with")
    j = _dns(v, c, host, asn, matcher, interception, AnalysisSettings())
    if j is None:
        return Judgement("ok", False, f"DNS for {host} answered {_addrs(v.addresses())}, consistent "
                                      "with the control resolvers")
    if j.verdict != "dns":
        return Judgement("inconclusive", False, j.reason)
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


_DNS_WORDS = {
    F.DNS_NXDOMAIN: "NXDOMAIN (the name does not exist)",
    F.DNS_SERVFAIL: "SERVFAIL (the resolver failed)",
    F.DNS_REFUSED: "REFUSED",
    F.DNS_NO_ANSWER: "no address",
    F.DNS_TIMEOUT: "nothing (the query timed out)",
    F.DNS_BOGUS: "a malformed reply",
}


def _dns(v, c, host, asn, matcher, interception, s):  # type: ignore[no-untyped-def]
    if not v.dns:  # an IP-literal URL: nothing to resolve
        return None
    vf, cf = _dns_failure(v), _dns_failure(c)
    caddrs = c.addresses()
    if vf is not None:
        said = _DNS_WORDS.get(vf, vf)
        if cf is not None:
            return Judgement("down", False,
                             f"DNS for {host} gives {said} from the vantage and "
                             f"{_DNS_WORDS.get(cf, cf)} from the control resolvers: "
                             "the name does not work anywhere")
        return Judgement("dns", False,
                         f"DNS for {host} answered {said} at the vantage; "
                         f"the control resolvers answered {_addrs(caddrs)}")
    vaddrs = v.addresses()
    blocked = [a for a in vaddrs if interception.is_block_address(a)]
    if blocked:
        return Judgement("dns", True,
                         f"DNS for {host} answered {_addrs(blocked)}, a known block address; "
                         f"the control resolvers answered {_addrs(caddrs)}")
    injected = [r for q in v.dns for r in q.extra_replies if r and set(r) != set(q.answers)]
    vbogons = frozenset(a for q in v.dns for a in q.bogons)
    if cf is not None and not caddrs:
        if cf in (F.DNS_NXDOMAIN, F.DNS_NO_ANSWER) and not any(t.ok for t in v.tls):
            # The name has no address for the control, yet the vantage's resolver gives one
            # that does not prove to be the site: a censor's rule outliving the site.
            return Judgement("dns", False,
                             f"DNS for {host} answered {_with_asn(vaddrs, asn, vbogons)} at the "
                             f"vantage, but the name has {_DNS_WORDS.get(cf, cf)} for the control "
                             "resolvers")
        return None  # nothing to compare with; TCP/TLS/HTTP will tell
    cbogons = frozenset(a for q in c.dns for a in q.bogons)
    bogons = [a for a in vaddrs if a in vbogons]
    if bogons and not all(a in cbogons for a in caddrs):
        return Judgement("dns", False,
                         f"DNS for {host} answered {_with_asn(bogons, None, vbogons)}; "
                         f"the control resolvers answered {_addrs(caddrs)}")
    if _consistent(v, c, vaddrs, caddrs, asn, matcher) or _tls_interference_only(v):
        if injected:
            return Judgement("dns", False,
                             f"DNS for {host} got two different replies to one query "
                             f"({_addrs(injected[0])} and {_addrs(vaddrs)}): an on-path injector")
        return None
    second = (f"; it got two different replies to one query ({_addrs(vaddrs)} and "
              f"{_addrs(injected[0])}): an on-path injector") if injected else ""
    return Judgement("dns", False,
                     f"DNS for {host} answered {_with_asn(vaddrs, asn, vbogons)}; the control resolvers "
                     f"answered {_with_asn(caddrs, asn)}, and the vantage's addresses did not "
                     f"prove to be {host}{second}")


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
    if not ctried:
        return Judgement("inconclusive", False,
                         f"connecting to {host} failed from the vantage ({first.failure}); the "
                         "control had no address to connect to, so nothing to compare with")
    if ctried and not any(t.status == "ok" for t in ctried):
        return Judgement("down", False,
                         f"connecting to {host} failed from the vantage ({first.failure}) and from "
                         f"the control ({ctried[0].failure}): the site is down")
    return Judgement("tcp_ip", False,
                     f"connecting to {host} at {first.address}:{first.port} failed "
                     f"({first.failure}); the control connected")


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
        return Judgement("tls", True,
                         f"the certificate for {host} was issued by \u201c{issuer}\u201d, a known "
                         f"state interception authority ({ca.note or ca.id})")
    if any(t.ok for t in v.tls):
        return None
    first = v.tls[0]
    ctls_ok = any(t.ok for t in c.tls)
    if first.failure in CERT_FAILURES:
        issuer = first.chain[0].issuer if first.chain else "unknown"
        if not ctls_ok and any(t.failure in CERT_FAILURES for t in c.tls):
            return Judgement("down", False,
                             f"the certificate of {host} is invalid from the vantage and from "
                             f"the control ({first.failure}): a problem of the site")
        return Judgement("tls", False,
                         f"the certificate presented for {host} is not valid ({first.failure}; "
                         f"issuer \u201c{issuer}\u201d); the control received a valid certificate")
    if not c.tls:
        return Judgement("inconclusive", False,
                         f"the TLS handshake with {host} failed from the vantage ({first.failure}); "
                         "the control made no handshake to compare with")
    if not ctls_ok:
        return Judgement("down", False,
                         f"the TLS handshake with {host} failed from the vantage ({first.failure}) "
                         f"and from the control ({c.tls[0].failure}): the site is down")
    how = {F.CONNECTION_RESET: "was reset after the ClientHello",
           F.GENERIC_TIMEOUT: "stalled after the ClientHello",
           F.EOF_ERROR: "was closed after the ClientHello"}.get(first.failure or "",
                                                               f"failed ({first.failure})")
    return Judgement("tls", False,
                     f"the TLS handshake with {host} ({first.address}) {how}; TCP connected and "
                     "the control completed the handshake")


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


def _desc(h: HttpResult) -> str:
    title = f" \u201c{h.title[:50]}\u201d" if h.title else ""
    return f"HTTP {h.status}{title} ({_kb(h.body_length)})"


def _http(v, c, host, asn, matcher, interception, s):  # type: ignore[no-untyped-def]
    h, ch = v.http, c.http
    if h is None:
        return None
    if h.status is None:
        hop = _redirect_hop_failure(h)
        if hop is not None:
            j = _judge_hop(hop, ch)
            if j is not None:
                return j
        if ch is None or ch.status is None:
            cfail = ch.failure if ch is not None else "not measured"
            return Judgement("down", False,
                             f"the site does not answer from the vantage ({h.failure}) or from "
                             f"the control ({cfail}): the site is down")
        b = _hostname(hop.url) if hop is not None else None
        if b is not None:  # the control was never sent to that host: nothing to compare with
            return Judgement("http_failure", False,
                             f"the redirect to {b} failed at the vantage ({h.failure}); the "
                             f"control was not redirected there and got HTTP {ch.status}")
        return Judgement("http_failure", False,
                         f"the HTTP request to {host} failed ({h.failure}) although the "
                         f"connection worked; the control got HTTP {ch.status}")
    bp = _blockpage(h, matcher)
    if bp and not (ch is not None and set(bp) & set(_blockpage(ch, matcher))):
        return Judgement("http_blockpage", True,
                         f"the response for {host} is a known blockpage ({', '.join(bp[:2])})")
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
            return Judgement("http_failure", False,
                             f"the response from {host} broke off after {_kb(_got(h))} "
                             f"({h.failure}); the control got the whole page ({_kb(_got(ch))})")
    ss_v = matcher.kinds(h.fingerprints)["server_side"]
    ss_c = {f.id for f in matcher.kinds(ch.fingerprints)["server_side"]}
    fresh = [f for f in ss_v if f.id not in ss_c]
    if fresh:
        return Judgement("http_diff", False,
                         f"server-side, not state blocking: the site or its CDN answered the "
                         f"vantage with {fresh[0].what or fresh[0].id} (HTTP {h.status}); the "
                         f"control got {_desc(ch)}")
    if h.status >= 500 and ch.status >= 500:
        return Judgement("down", False,
                         f"the site answers with server errors everywhere (HTTP {h.status} at the "
                         f"vantage, {ch.status} at the control)")
    vhost = urlsplit(h.final_url or "").hostname
    chost = urlsplit(ch.final_url or "").hostname
    if vhost and chost and vhost != chost and _base(vhost) != _base(chost):
        return Judgement("http_diff", False,
                         f"{host} redirected the vantage to {vhost}; the control ended at {chost}")
    if not _http_match(h, ch, s):
        return Judgement("http_diff", False,
                         f"the vantage got {_desc(h)}; the control got {_desc(ch)}")
    return None


_STEP_WORDS = {
    "dns": ("dns", "DNS for {b} failed at the vantage ({f})"),
    "tcp": ("tcp_ip", "connecting to {b} failed at the vantage ({f})"),
    "tls": ("tls", "the TLS handshake with {b} failed at the vantage ({f})"),
    "http": ("http_failure", "the HTTP request to {b} failed at the vantage ({f})"),
}


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


def _judge_hop(hop: HttpHop, ch: HttpResult | None) -> Judgement | None:
    """A redirect hop that failed at the vantage, judged by the step it failed at, against
    the control's hop to the same host."""
    b, key = _hostname(hop.url), _origin(hop.url)
    same = [x for x in (ch.hops if ch is not None else []) if _origin(x.url) == key]
    if key is None or not same:
        return None  # the control never went there: judged on the whole result
    verdict, words = _STEP_WORDS.get(_hop_step(hop), _STEP_WORDS["http"])
    said = words.format(b=b, f=_DNS_WORDS.get(hop.failure or "", hop.failure))
    if any(x.failure for x in same) and not any(x.status is not None and not x.failure
                                                for x in same):
        cf = next(x.failure for x in same if x.failure)
        return Judgement("down", False,
                         f"the redirect to {b}: {said} and from the control ({cf}): "
                         f"{b} is down")
    return Judgement(verdict, False, f"the redirect to {b}: {said}, works from the control")


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
    return Judgement("throttled", False,
                     f"the page of {host} downloaded at {_rate(vrate)} from the vantage "
                     f"({_kb(vbytes)} in {_secs(h.transfer_ms)}, then the timeout ended it) "
                     f"against {_rate(crate)} from the control")


def _rate(bytes_per_ms: float) -> str:
    kbs = bytes_per_ms * 1000 / 1024
    return f"{kbs:.1f} KB/s" if kbs < 10 else f"{kbs:.0f} KB/s"


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
            return Judgement("throttled", False,
                             f"the TLS handshake with {host} took {_secs(vm)} from the vantage "
                             f"against {_secs(cm)} from the control")
    h, ch = v.http, c.http
    if h and ch and h.status and ch.status and not h.failure \
            and min(h.body_length, ch.body_length) >= s.throttle_min_bytes \
            and h.transfer_ms >= s.throttle_min_ms:
        vrate = h.body_length / max(h.transfer_ms, 1.0)
        crate = ch.body_length / max(ch.transfer_ms, 1.0)
        if crate >= s.throttle_factor * vrate:
            return Judgement("throttled", False,
                             f"the page of {host} downloaded at {vrate:.0f} KB/s from the vantage "
                             f"against {crate:.0f} KB/s from the control")
    return None
