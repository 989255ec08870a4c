"""Resolver vantages: ask an in-country resolver from here for each target's A and AAAA records,
the way Censored Planet's Satellite does, and compare with the control resolvers.

A control name is asked before and after the targets; a resolver that fails it is inconclusive
for the round, never evidence of blocking. Addresses the resolver gives that the control's do
not are checked with a TLS handshake from here (SNI = the name): a valid certificate proves
them to be the site."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from urllib.parse import urlsplit

from blockwatch.analysis.verdict import judge_dns
from blockwatch.config import Config, LocalVantage, ResolverVantage
from blockwatch.context import CONTROL, MeasureContext, build_context
from blockwatch.probe import netsteps
from blockwatch.probe.dnsprobe import ResolverSpec
from blockwatch.probe.records import DnsQuery, WebMeasurement
from blockwatch.probe.resolvers import ResolverSet
from blockwatch.probe.runner import now_iso
from blockwatch.round import Result, next_round_number
from blockwatch.round_summary import round_line
from blockwatch.storage import Database, bulk, repo
from blockwatch.targets import Target

log = logging.getLogger(__name__)
LINGER = 0.25  # seconds to keep listening after a reply: an on-path injector answers twice
RETRY_FAILURES = {"dns_timeout", "dns_servfail_error", "dns_refused_error", "dns_bogus_reply"}


async def _ask(resolver: ResolverSet, name: str, qtype: str, *, tries: int) -> DnsQuery:
    """One resolver's answer (`resolver` holds just the vantage's), asked again on failures
    that may be passing."""
    [q] = await resolver.query(name, qtype, linger=LINGER)
    for _ in range(tries - 1):
        if q.failure not in RETRY_FAILURES:
            break
        [q] = await resolver.query(name, qtype, linger=LINGER)
    return q


async def _control_name_ok(resolver: ResolverSet, name: str, tries: int) -> tuple[bool, str]:
    q = await _ask(resolver, name, "A", tries=tries)
    if q.answers:
        return True, ""
    return False, f"{name}: {q.failure or 'no answer'}"


async def run_resolver_round(
    cfg: Config, targets: list[Target], db: Database, *,
    context: MeasureContext | None = None,
    on_result: Callable[[Result], None] | None = None,
    number: int | None = None,
) -> list[Result]:
    """`context`: what the command built from `cfg` (context.py), made here when not given;
    `number`: the round's number, shared with the probe round it goes with (one is taken
    when not given)."""
    vantages = [v for v in cfg.settings.vantage if isinstance(v, ResolverVantage)]
    if not vantages:
        return []
    if number is None:
        number = await asyncio.to_thread(next_round_number, db)
    started = time.monotonic()
    ctx = context or build_context(cfg)
    settings, interception, control, asn = ctx.settings, ctx.interception, ctx.control, ctx.asn
    verified, unverified = settings.ssl_contexts()
    sem = asyncio.Semaphore(cfg.settings.probe.concurrency)
    round_id = uuid.uuid4().hex
    hosts = sorted({urlsplit(u).hostname or "" for t in targets for u in t.urls} - {""})
    results: list[Result] = []
    async with contextlib.AsyncExitStack() as stack:
        control_dns = await stack.enter_async_context(ResolverSet.for_view(control, settings))

        # the control resolvers' view of every name, once per round
        async def ask_control(host: str) -> list[DnsQuery]:
            async with sem:
                return await control_dns.resolve(host)
        cdns = dict(zip(hosts, await asyncio.gather(*(ask_control(h) for h in hosts)), strict=True))
        for vconf in vantages:
            spec = ResolverSpec.parse(vconf.address)
            resolver = await stack.enter_async_context(ResolverSet([spec], settings))
            before = await _control_name_ok(resolver, vconf.control_name, vconf.tries)

            async def one(host: str, resolver: ResolverSet = resolver,
                          vconf: ResolverVantage = vconf) -> list[DnsQuery]:
                async with sem:
                    return list(await asyncio.gather(
                        *(_ask(resolver, host, t, tries=vconf.tries) for t in ("A", "AAAA"))))

            vdns = dict(zip(hosts, await asyncio.gather(*(one(h) for h in hosts)), strict=True))
            after = await _control_name_ok(resolver, vconf.control_name, vconf.tries)
            ok = before[0] and after[0]
            problem = before[1] or after[1]

            # addresses only this resolver gave: do they prove to be the site? (from here)
            async def prove(host: str, addresses: list[str], port: int) -> list:  # type: ignore[type-arg]
                async with sem:
                    out = await asyncio.gather(*(
                        netsteps.connect(a, port, host, timeout=settings.timeout,
                                         source=control.source_address, verified=verified,
                                         unverified=unverified) for a in addresses))
                    return [tls for _, tls, _ in out if tls is not None]

            judged = []
            for t in targets:
                for url in t.urls:
                    parts = urlsplit(url)
                    host = parts.hostname or ""
                    v = WebMeasurement(url=url, vantage=vconf.name, role="vantage",
                                       measured_at=now_iso(), uid=uuid.uuid4().hex,
                                       resolvers=[spec.label], dns=vdns[host])
                    c = WebMeasurement(url=url, vantage=CONTROL, role="control",
                                       measured_at=v.measured_at, uid=uuid.uuid4().hex,
                                       resolvers=[r.label for r in control.resolvers],
                                       dns=cdns[host])
                    caddrs = set(c.addresses())
                    vbog = {a for q in v.dns for a in q.bogons}
                    extra = [a for a in v.addresses() if a not in caddrs and a not in vbog
                             and not netsteps.is_ipv6(a)][:4]
                    if ok and extra:
                        port = parts.port or 443  # a valid certificate on 443 proves the site
                        v.tls = await prove(host, extra, port)
                    j = judge_dns(v, c, resolver_ok=ok, resolver_problem=problem, asn=asn,
                                  interception=interception)
                    judged.append((t, url, v, c, j))
            stored = await asyncio.to_thread(_store, db, cfg, vconf, judged, round_id)
            results += stored
            log.info("%s", round_line("resolver", number, vconf.name, len(judged),
                                      time.monotonic() - started, [r.verdict for r in stored],
                                      sum(1 for r in stored if r.event)))
            started = time.monotonic()
    if on_result:
        for r in results:
            on_result(r)
    return results


def _store(db: Database, cfg: Config, vconf: ResolverVantage, judged: list, round_id: str  # type: ignore[type-arg]
           ) -> list[Result]:
    out = []
    with db.write() as s:
        tids = repo.sync_targets(s, [t for t, *_ in judged], retire_others=False) if judged else {}
        vid = repo.ensure_vantage(s, vconf.name, "resolver", vconf.country)
        cid = repo.ensure_vantage(s, CONTROL, "control")
        controls, rows = [], []
        for t, url, v, c, j in judged:
            tid = tids.get(t.name)
            controls.append(bulk.Row(c.uid, tid, url, repo.parse_time(c.measured_at), c.to_json(),
                                     round_id=round_id))
            rows.append(bulk.Row(v.uid, tid, url, repo.parse_time(v.measured_at), v.to_json(),
                                 failure=next((q.failure for q in v.dns if q.failure), None),
                                 round_id=round_id, verdict=j.verdict, confirmed=j.confirmed,
                                 reason=j.reason, reason_keys=j.keys() or None))
        confirm_after = cfg.settings.probe.confirm_after
        whole = bulk.full_uids(db, s, vid, rows, confirm_after)  # their controls: whole
        # beside local vantages these DNS-only controls stay out of the control's runs: there
        # they would alternate with the probe round's whole controls, which then could neither
        # extend a run nor be judged against again (round.py, control_reuse)
        mixed = any(isinstance(x, LocalVantage) for x in cfg.settings.vantage)
        cids = bulk.store_controls(db, s, cid, controls, [r.uid in whole for r in rows],
                                   compact=False if mixed else None)
        for r, c in zip(rows, controls, strict=True):
            r.control_id = cids[c.uid]
        event_of = bulk.record(db, s, vid, rows, confirm_after).event_of
        for (t, url, v, c, j), r in zip(judged, rows, strict=True):
            new = event_of.get(r.uid)
            out.append(Result(t.name, url, vconf.name, j.verdict, j.confirmed, j.reason,
                              v.measured_at, f"{new.previous or 'new'} -> {new.state}" if new else None,
                              control_measured_at=c.measured_at,
                              control_last_seen_at=c.measured_at))
    return out
