"""An in-process network lab (in the spirit of OONI's netemx), for the tests and `blockwatch demo`.

It binds only loopback addresses (127.0.0.0/8) and never touches the real network. The product
never uses lab addresses otherwise: probes, the daemon and the collector run on the real internet.

Real servers on 127.0.0.0/8: sites on 127.0.1.x (one http and one https port per lab), and
resolvers (vantage 127.0.2.53, control 127.0.3.53 and 127.0.3.54, vantage2 127.0.4.53) on one
DNS port (UDP and TCP), each also serving DoH at https://<its address>:<https port>/dns-query.
Clients pick their network by binding their source address: the vantage 127.0.2.1, the control
127.0.3.1, a second vantage 127.0.4.1. Each site behaves per source. Certificates come from
trustme (a throwaway CA per lab). The pytest fixtures stay in tests/lab/fixtures.py.
"""

from .behaviour import DEFAULT_BLOCKPAGE, Behaviour
from .certs import ISSUER_KZ, ISSUER_ROGUE, RogueCA, client_context, server_context
from .core import Lab, default_body
from .dnsserver import DNS, DNSReply, Query, Zone
from .net import (
    CONTROL,
    CONTROL_RESOLVER,
    CONTROL_RESOLVER2,
    VANTAGE,
    VANTAGE2,
    VANTAGE2_RESOLVER,
    VANTAGE_RESOLVER,
)
from .sites import Connection, Host, Site
from .tlsinfo import ClientHello, parse_client_hello
from .web import Page, Request

__all__ = [
    "CONTROL",
    "CONTROL_RESOLVER",
    "CONTROL_RESOLVER2",
    "DEFAULT_BLOCKPAGE",
    "DNS",
    "ISSUER_KZ",
    "ISSUER_ROGUE",
    "VANTAGE",
    "VANTAGE2",
    "VANTAGE2_RESOLVER",
    "VANTAGE_RESOLVER",
    "Behaviour",
    "ClientHello",
    "Connection",
    "DNSReply",
    "Host",
    "Lab",
    "Page",
    "Query",
    "Request",
    "RogueCA",
    "Site",
    "Zone",
    "client_context",
    "default_body",
    "parse_client_hello",
    "server_context",
]
