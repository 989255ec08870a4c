"""Whether a vantage's measurement is plainly fine and matches an earlier control of its URL, so
that judging it against that control gives the verdict a control fetched now would give. Pure.

Only what came over verified TLS: every hop of the fetch and the final URL https (the HTTP step
opens no TLS connection its trust store does not verify), so the page is the site's own. Over
plain HTTP a network can serve anything under the site's address (a stale copy, a substituted
page) and only a control fetched now shows whether the site still serves it: such URLs are
always measured against a fresh control.

Plainly fine: over verified TLS as above; nothing failed at any step; no bogon, injected or
missing DNS answer and the addresses consistent with what the control resolvers answer now (by
address or by network); every TLS handshake valid and quick; the page's status, title, final
URL and no fingerprint the same as that control's, its length alike (the analysis's body
proportion) and its transfer quick. Every step of `verdict.judge` that reads the control then
says "fine" whatever a fresh control shows, but for a site that changed for the control only
(its own page, or a slow or broken control network): such a change is seen at the next
re-measurement (`control_reuse`). The round also requires the verdict against that control to
be "ok"; anything else is judged against a fresh control."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from urllib.parse import urlsplit

from blockwatch.analysis.verdict import AnalysisSettings
from blockwatch.records import DnsQuery, HttpResult, WebMeasurement

DEFAULTS = AnalysisSettings()


def _addresses(dns: list[DnsQuery]) -> set[str]:
    return {a for q in dns for a in q.answers}


def _https(url: str | None) -> bool:
    return url is not None and urlsplit(url).scheme.lower() == "https"


def over_verified_tls(v: WebMeasurement, h: HttpResult) -> bool:
    """The page and every redirect before it came over TLS the trust store verified: the URL,
    every hop and the final URL https, with a valid handshake recorded for the first hop (the
    probe makes a redirect hop's TLS connection with verification on, or not at all)."""
    return (_https(v.url) and _https(h.final_url) and bool(h.hops)
            and all(_https(hop.url) and hop.failure is None for hop in h.hops)
            and any(t.ok and t.verify_error is None for t in v.tls))


def plainly_fine(v: WebMeasurement, c: WebMeasurement, control_dns: list[DnsQuery], *,
                 settings: AnalysisSettings = DEFAULTS,
                 asn: Callable[[str], str | None] | None = None) -> bool:
    """`c`: the earlier control (a whole measurement of the same URL); `control_dns`: the control
    resolvers' answers for the URL's host now ([] for an IP-literal URL)."""
    if v.url != c.url or v.failure() is not None or c.failure() is not None:
        return False
    h, ch = v.http, c.http
    if h is None or ch is None or h.status is None or h.status != ch.status or h.status >= 500:
        return False
    if not over_verified_tls(v, h):
        return False  # a plain-HTTP page may be a copy the network serves: only the site knows
    if h.failure or ch.failure or h.deadline_exceeded or h.not_attempted:
        return False
    if h.fingerprints or ch.fingerprints or h.title != ch.title or h.final_url != ch.final_url \
            or h.body_truncated != ch.body_truncated:
        return False
    big, small = max(h.body_length, ch.body_length), min(h.body_length, ch.body_length)
    if big and small / big < settings.body_proportion:
        return False
    if h.transfer_ms >= settings.throttle_min_ms:
        return False  # a slow transfer: the control's rate decides
    # every connection made, every handshake valid and quick (a failed one may be a block)
    if any(t.status != "ok" and t.failure != "no_ipv6_route" for t in v.tcp):
        return False
    if any(not t.ok for t in v.tls) or (c.tls and not v.tls):
        return False
    if v.tls and statistics.median(t.t_ms for t in v.tls) >= settings.throttle_min_ms:
        return False
    if bool(v.dns) != bool(control_dns):
        return False
    if v.dns:
        if any(q.bogons or q.extra_replies for q in v.dns):
            return False
        vaddrs, now = _addresses(v.dns), _addresses(control_dns)
        if not vaddrs or not now:
            return False
        if not vaddrs & now:
            nets = {asn(a) for a in now} - {None} if asn is not None else set()
            if not nets or not ({asn(a) for a in vaddrs} & nets):  # type: ignore[misc]
                return False
    return True
