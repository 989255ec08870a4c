"""host[:port] parsing, shared by config and the probe (which must not import pydantic:
the agent stays small)."""

from __future__ import annotations


def split_hostport(v: str, default_port: int) -> tuple[str, int]:
    """"1.1.1.1:53" -> ("1.1.1.1", 53); "[::1]:53" -> ("::1", 53); "::1" -> ("::1", default)."""
    if v.startswith("["):
        host, _, rest = v[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else default_port
    if v.count(":") == 1:
        host, _, port = v.partition(":")
        if not port.isdigit():
            raise ValueError(f"{v!r}: the port must be a number")
        return host, int(port)
    return v, default_port
