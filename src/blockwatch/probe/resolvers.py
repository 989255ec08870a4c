"""The resolvers of one network view, ready to ask over UDP, TCP or DoH alike.

Every probe reaches DNS through a `ResolverSet`, so a DoH resolver always has its HTTP client:
the set builds it (verified with the system trust store plus `probe.ca_bundle`, from the view's
source address) and closes it with itself. Use it as an async context manager."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING

from blockwatch.probe import dnsprobe
from blockwatch.probe.dnsprobe import ResolverSpec
from blockwatch.probe.records import DnsQuery

if TYPE_CHECKING:
    from blockwatch.probe.runner import NetworkView, ProbeSettings


DOH_CONNECTIONS = 16  # per view that has a DoH resolver


class ResolverSet:
    """Resolvers (the system's when none are given) asked from one source address."""

    def __init__(self, specs: Sequence[ResolverSpec], settings: ProbeSettings, *,
                 source: str | None = None):
        self.specs = tuple(specs) or tuple(dnsprobe.system_resolvers())
        self.source = source
        self.timeout = settings.timeout
        self.allow = settings.allow_networks
        self._http: dnsprobe.DoHClient | None = None
        if any(s.transport == "doh" for s in self.specs):
            verified, _ = settings.ssl_contexts()
            # HTTP/1.1 has one query in flight per connection: a round's burst (two types per
            # URL, `concurrency` URLs) waits for one of a few kept-alive connections rather
            # than opening a hundred to one public resolver. No proxy from the environment:
            # it would ask DNS from another network.
            self._http = dnsprobe.DoHClient(verified, DOH_CONNECTIONS,
                                            user_agent=settings.user_agent, source=source)

    @classmethod
    def for_view(cls, view: NetworkView, settings: ProbeSettings) -> ResolverSet:
        return cls(view.resolvers, settings, source=view.source_address)

    @property
    def labels(self) -> list[str]:
        return [s.label for s in self.specs]

    async def resolve(self, host: str, qtypes: tuple[str, ...] = ("A", "AAAA")) -> list[DnsQuery]:
        """Every type through every resolver, concurrently; [] for an IP-literal host."""
        return await dnsprobe.resolve_all(list(self.specs), host, timeout=self.timeout,
                                          source=self.source, http=self._http, qtypes=qtypes,
                                          allow=self.allow)

    async def query(self, qname: str, qtype: str, *, linger: float = 0.0) -> list[DnsQuery]:
        """One query of one type to each resolver (`linger`: see `dnsprobe.query`)."""
        return list(await asyncio.gather(*(
            dnsprobe.query(s, qname, qtype, timeout=self.timeout, source=self.source,
                           http=self._http, linger=linger, allow=self.allow)
            for s in self.specs)))

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()

    async def __aenter__(self) -> ResolverSet:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()
