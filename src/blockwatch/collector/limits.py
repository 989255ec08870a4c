"""Connection limits for `serve`, at the protocol level (below ASGI, where a request that never
finishes its headers is invisible).

uvicorn's h11 protocol keeps a connection that sent half a request's headers open forever
(h11 has no deadline of its own, and uvicorn's keep-alive timer runs only between requests):
about 20,000 such connections, no token needed, used up the file descriptors and the health
check stopped answering. So:

- a request's headers must arrive within `request_timeout` of its first byte (of the
  connection, for the first request), and its body must not pause longer than that between
  two reads;
- one client address (an IPv6 /64, which one subscriber usually has whole) holds at most
  `per_client` connections; more are closed at once;
- all clients together hold at most `total` connections (kept under the process's file limit).

A connection whose request was read whole is never cut by the deadline: judging an upload
may take longer, and uvicorn's keep-alive timeout covers the wait for the next request."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import resource
import time
from dataclasses import dataclass, field
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)

FD_RESERVE = 128  # descriptors kept for the database, log files and the site's static files


def client_key(host: str | None) -> str:
    """The address a cap counts against: the IPv4 address, or the IPv6 /64."""
    if not host:
        return ""
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def fd_budget(wanted: int) -> int:
    """`wanted`, lowered to what the process's file-descriptor limit leaves room for."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(16, min(wanted, soft - FD_RESERVE))


@dataclass
class Limits:
    request_timeout: float = 10.0
    per_client: int = 64  # 0: no cap (behind a reverse proxy every client is the proxy)
    total: int = 4096
    open: dict[str, int] = field(default_factory=dict)  # client key -> open connections
    count: int = 0
    refused: int = 0  # connections closed at once (over a cap), since start
    timed_out: int = 0  # connections closed by the deadline, since start
    _last_warning: float = 0.0

    def admit(self, key: str) -> bool:
        if self.count >= self.total or (self.per_client and self.open.get(key, 0) >= self.per_client):
            self.refused += 1
            now = time.monotonic()
            if now - self._last_warning > 60:  # one line a minute, not one per connection
                self._last_warning = now
                log.warning("connection limit reached (%d open, at most %d per client, %d in "
                            "all): refusing new connections (%d refused so far)",
                            self.count, self.per_client, self.total, self.refused)
            return False
        self.open[key] = self.open.get(key, 0) + 1
        self.count += 1
        return True

    def release(self, key: str) -> None:
        n = self.open.get(key, 0) - 1
        if n > 0:
            self.open[key] = n
        else:
            self.open.pop(key, None)
        self.count -= 1


def guarded_protocol(limits: Limits) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol with `limits` (a class per server: uvicorn instantiates it)."""

    class GuardedH11Protocol(H11Protocol):
        _key: str | None = None
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            key = client_key(self.client[0] if self.client else None)
            if not limits.admit(key):
                transport.abort()  # no lingering close: the descriptor is what is short
                return
            self._key = key
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            if self._key is not None:
                limits.release(self._key)
                self._key = None
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            waiting = self.conn.their_state in (h11.IDLE, h11.SEND_BODY)
            if waiting and self._deadline is None:
                self._arm()  # the first byte of the next request on a kept-alive connection
            elif self.conn.their_state is h11.SEND_BODY:
                self._arm()  # the body moves: another full period for its next piece
            super().data_received(data)
            if self.conn.their_state not in (h11.IDLE, h11.SEND_BODY):
                self._disarm()  # read whole (or closing): the app's time is not ours to cut

        def _arm(self) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(limits.request_timeout, self._expire)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expire(self) -> None:
            self._deadline = None
            if self.flow is not None and self.flow.read_paused:
                self._arm()  # we stopped reading (the app is behind): not the client's delay
                return
            if self.conn.their_state in (h11.IDLE, h11.SEND_BODY) and not self.transport.is_closing():
                limits.timed_out += 1
                self.transport.abort()

        def on_response_complete(self) -> None:
            self._disarm()  # uvicorn's keep-alive timer runs until the next request's first byte
            super().on_response_complete()
            if self.conn.their_state is h11.SEND_BODY and self.timeout_keep_alive_task is None:
                self._arm()  # a pipelined request, read up to its body

    return GuardedH11Protocol


def limits_for(server: Any) -> Limits:
    """Limits from a `[server]` table (None: the defaults)."""
    if server is None:
        return Limits(total=fd_budget(Limits.total))
    return Limits(request_timeout=server.request_timeout.total_seconds(),
                  per_client=server.max_connections_per_client,
                  total=fd_budget(server.max_connections))


__all__ = ["Limits", "client_key", "fd_budget", "guarded_protocol", "limits_for"]
