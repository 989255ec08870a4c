"""blockwatch config text wired into the lab: the control asks the control resolvers from
CONTROL (`Lab.control_resolvers`: shaped like the shipped list, UDP and DoH), one local vantage
"kz" asks its own resolver from VANTAGE, the lab CA is trusted and 127.0.0.0/8 may be connected
to. Tests and benchmarks add [storage] and whatever else they need."""

from __future__ import annotations

from collections.abc import Sequence

from .net import CONTROL, VANTAGE


def probe_config(*, targets: str, ca: str, vantage_resolver: str, control_resolvers: Sequence[str],
                 probe: str = "", country: str = "") -> str:
    """[probe] (with `probe`'s extra lines), [control] and the local vantage, as TOML text."""
    country_line = f'country = "{country}"\n' if country else ""
    return f"""[probe]
targets = ["{targets}"]
ca_bundle = "{ca}"
allow_networks = ["127.0.0.0/8"]
{probe}
[control]
resolvers = [{", ".join(f'"{r}"' for r in control_resolvers)}]
source_address = "{CONTROL}"
[[vantage]]
name = "kz"
kind = "local"
{country_line}resolver = "{vantage_resolver}"
source_address = "{VANTAGE}"
"""
