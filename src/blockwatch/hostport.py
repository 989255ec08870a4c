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


def check_doh_url(v: str) -> str:
    """A DoH resolver's URL as given, or ValueError saying what is wrong with it."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(v)
        host, _port = parts.hostname, parts.port  # .port raises on a port out of range
    except ValueError as exc:
        raise ValueError(f"{v!r}: not a usable DoH URL ({exc})") from None
    if parts.scheme != "https" or not host or " " in v:
        raise ValueError(f"{v!r}: a DoH URL is https:// and names its server, like "
                         "\"https://dns.google/dns-query\"")
    return v
