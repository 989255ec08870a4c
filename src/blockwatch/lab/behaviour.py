"""Site behaviours: what a site does for a given client source."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

from .certs import ISSUER_ROGUE, Issuer, as_issuer

DEFAULT_BLOCKPAGE = (
    b"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Access restricted</title></head>"
    b"<body><h1>Access restricted</h1><p>Access to this resource has been restricted"
    b" in accordance with the law.</p></body></html>"
)

# Realised by the address the source is given in DNS (no per-source listener is possible).
ADDRESS_KINDS = frozenset({"refuse", "blackhole_connect"})
# Act right at accept when the site is known then (else after the ClientHello / request).
ACCEPT_KINDS = frozenset({"reset", "blackhole_accept"}) | ADDRESS_KINDS
TLS_KINDS = frozenset({"tls_reset_after_hello", "tls_stall_after_hello", "mitm", "wrong_name", "expired"})
HTTP_KINDS = frozenset({"http_reset_after_request", "http_stall_after_request"})
KINDS = frozenset({"serve", "blockpage", "throttle", "delay"}) | ACCEPT_KINDS | TLS_KINDS | HTTP_KINDS


def _names(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = (value,)
    return tuple(v.lower().rstrip(".") for v in value)


@dataclass(frozen=True)
class Behaviour:
    """One behaviour. Use the class attributes, called with options to customise them:

    Behaviour.reset, Behaviour.tls_stall_after_hello(sni="ratel.test"),
    Behaviour.mitm(issuer=ISSUER_KZ), Behaviour.throttle(handshake_delay=0.5, rate=20_000)...
    """

    kind: str
    port: str | None = None  # "http" | "https" | None (the kind's default scope)
    match: tuple[str, ...] | None = None  # act only for these names (SNI on https, Host on http)
    html: bytes = DEFAULT_BLOCKPAGE  # blockpage body
    status: int = 200  # blockpage status
    handshake_delay: float = 0.0  # throttle: wait before the ServerHello
    rate: float | None = None  # throttle: body bytes per second
    seconds: float = 0.0  # delay: before each server-controlled step
    issuer: Issuer = ISSUER_ROGUE  # mitm
    cert_name: str = "wrong-name.lab.test"  # wrong_name / blockpage (https)

    # Filled in below the class; listed here for type checkers and readers.
    serve: ClassVar[Behaviour]
    blockpage: ClassVar[Behaviour]
    reset: ClassVar[Behaviour]
    refuse: ClassVar[Behaviour]
    blackhole_accept: ClassVar[Behaviour]
    blackhole_connect: ClassVar[Behaviour]
    tls_reset_after_hello: ClassVar[Behaviour]
    tls_stall_after_hello: ClassVar[Behaviour]
    mitm: ClassVar[Behaviour]
    wrong_name: ClassVar[Behaviour]
    expired: ClassVar[Behaviour]
    throttle: ClassVar[Behaviour]
    delay: ClassVar[Behaviour]
    http_reset_after_request: ClassVar[Behaviour]
    http_stall_after_request: ClassVar[Behaviour]

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown behaviour {self.kind!r}")
        if self.port not in (None, "http", "https"):
            raise ValueError("port must be 'http', 'https' or None")

    def __call__(self, **options: Any) -> Behaviour:
        """A copy with options; `sni=` and `host=` are aliases of `match=`."""
        for alias in ("sni", "host"):
            if alias in options:
                options["match"] = options.pop(alias)
        if "match" in options:
            options["match"] = _names(options["match"])
        if "issuer" in options:
            options["issuer"] = as_issuer(options["issuer"])
        if isinstance(options.get("html"), str):
            options["html"] = options["html"].encode()
        return dataclasses.replace(self, **options)

    @property
    def scope(self) -> tuple[str, ...]:
        if self.port is not None:
            return (self.port,)
        if self.kind in TLS_KINDS:
            return ("https",)
        if self.kind in HTTP_KINDS:
            return ("http",)
        return ("http", "https")

    def matches(self, name: str | None) -> bool:
        if self.match is None:
            return True
        return name is not None and name.lower().rstrip(".") in self.match


Behaviour.serve = Behaviour("serve")
Behaviour.reset = Behaviour("reset")
Behaviour.refuse = Behaviour("refuse")
Behaviour.blackhole_accept = Behaviour("blackhole_accept")
Behaviour.blackhole_connect = Behaviour("blackhole_connect")
Behaviour.tls_reset_after_hello = Behaviour("tls_reset_after_hello")
Behaviour.tls_stall_after_hello = Behaviour("tls_stall_after_hello")
Behaviour.mitm = Behaviour("mitm")
Behaviour.wrong_name = Behaviour("wrong_name")
Behaviour.expired = Behaviour("expired")
Behaviour.throttle = Behaviour("throttle", handshake_delay=0.5)
Behaviour.delay = Behaviour("delay", seconds=0.05)
Behaviour.http_reset_after_request = Behaviour("http_reset_after_request")
Behaviour.http_stall_after_request = Behaviour("http_stall_after_request")
Behaviour.blockpage = Behaviour("blockpage", cert_name="blockpage.lab.test")
SERVE = Behaviour.serve
