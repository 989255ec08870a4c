"""What measuring and judging take from the configuration, built once per command or daemon
(and again on a configuration reload): probe and analysis settings, the control's and the
local vantages' network views, the interception matcher and the IP-to-ASN lookup. Rounds,
resolver rounds and the collector are handed it; none of them builds its own."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from blockwatch.analysis.fingerprints import Interception, default_interception, default_matcher
from blockwatch.analysis.verdict import AnalysisSettings
from blockwatch.config import Config, LocalVantage
from blockwatch.probe.dnsprobe import ResolverSpec
from blockwatch.probe.runner import NetworkView, ProbeSettings

if TYPE_CHECKING:
    from blockwatch.asn import AsnLookup

CONTROL = "control"  # the control vantage's name (and kind)

AsnFn = Callable[[str], str | None]


@dataclass(frozen=True)
class MeasureContext:
    settings: ProbeSettings
    analysis: AnalysisSettings
    control: NetworkView
    locals: tuple[tuple[LocalVantage, NetworkView], ...]
    interception: Interception
    asn_table: AsnLookup | None = None  # the daemon refreshes this table in place
    asn_fn: AsnFn | None = None  # a lookup given directly (tests), used when there is no table

    @property
    def asn(self) -> AsnFn | None:
        """IP -> "AS<n>" for judging, or None (no network comparison)."""
        return self.asn_table.lookup if self.asn_table is not None else self.asn_fn


def control_view(cfg: Config) -> NetworkView:
    c = cfg.settings.control
    return NetworkView(CONTROL, "control", tuple(ResolverSpec.parse(r) for r in c.resolvers),
                       c.source_address or None)


def local_views(cfg: Config) -> list[tuple[LocalVantage, NetworkView]]:
    out = []
    for v in cfg.settings.vantage:
        if isinstance(v, LocalVantage):
            res = (ResolverSpec.parse(v.resolver),) if v.resolver else ()
            out.append((v, NetworkView(v.name, "vantage", res, v.source_address or None)))
    return out


def probe_settings(cfg: Config) -> ProbeSettings:
    p = cfg.settings.probe
    return ProbeSettings(
        timeout=p.timeout.total_seconds(), body_limit=p.body_limit, user_agent=p.user_agent,
        ca_bundle=str(cfg.resolve(p.ca_bundle)) if p.ca_bundle else None,
        matcher=default_matcher(),
        allow_networks=tuple(ipaddress.ip_network(n, strict=False) for n in p.allow_networks),
    )


def analysis_settings(cfg: Config) -> AnalysisSettings:
    return AnalysisSettings(throttle_factor=cfg.settings.probe.throttle_factor)


class _Table:
    pass


TABLE = _Table()  # build_context's default: the configured table, when [asn] is enabled


def build_context(cfg: Config, *, asn: AsnLookup | AsnFn | _Table | None = TABLE,
                  keep: MeasureContext | None = None) -> MeasureContext:
    """`asn`: the configured table (default), an `AsnLookup`, a plain lookup function, or None
    for none. `keep`: the context this one replaces (a reload): its ASN table is kept when the
    new configuration names the same file, so a reload does not re-read 50 MB."""
    from blockwatch.asn import AsnLookup, table_path

    table: AsnLookup | None = None
    fn: AsnFn | None = None
    if isinstance(asn, _Table):
        if cfg.settings.asn.enabled:
            path = table_path(cfg)
            old = keep.asn_table if keep is not None else None
            table = old if old is not None and old.path == path else AsnLookup(path)
    elif isinstance(asn, AsnLookup):
        table = asn
    else:
        fn = asn
    return MeasureContext(
        settings=probe_settings(cfg), analysis=analysis_settings(cfg), control=control_view(cfg),
        locals=tuple(local_views(cfg)),
        interception=default_interception().with_block_addresses(
            cfg.settings.probe.block_addresses),
        asn_table=table, asn_fn=fn)
