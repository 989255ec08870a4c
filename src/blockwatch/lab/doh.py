"""DNS over HTTPS (RFC 8484) on a resolver's own address, as public resolvers serve it
(https://1.1.1.1/dns-query): https://<resolver ip>:<lab https port>/dns-query, with a lab-CA
certificate for that IP, answering from the resolver's zone. Connections are kept alive, as a
DoH client expects; a `drop` name gets no answer at all."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Callable

from . import certs
from .dnsserver import Zone, doh_exchange
from .net import TaskSet
from .sites import _server_stream
from .web import read_request

PATH = "/dns-query"


class DoHServer:
    """Serves one Zone over DoH on a listening socket (address, lab https port)."""

    def __init__(self, zone: Zone, sock: socket.socket, tasks: TaskSet,
                 latency: Callable[[], float]) -> None:
        self.zone = zone
        self.sock = sock
        self.tasks = tasks
        self.latency = latency
        self.address, self.port = sock.getsockname()
        self.connections = 0  # TLS connections accepted (keep-alive: fewer than queries)

    @property
    def url(self) -> str:
        return f"https://{self.address}:{self.port}{PATH}"

    async def start(self) -> None:
        self.sock.setblocking(False)
        self.tasks.spawn(self._accept_loop())

    def close(self) -> None:
        self.sock.close()

    async def _accept_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, peer = await loop.sock_accept(self.sock)
            except OSError:
                if self.sock.fileno() < 0:
                    return
                await asyncio.sleep(0.01)
                continue
            conn.setblocking(False)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                self.tasks.spawn(self._connection(conn, peer[0]))
            except RuntimeError:  # the lab is closing
                conn.close()
                return

    async def _connection(self, sock: socket.socket, source: str) -> None:
        self.connections += 1
        writer: asyncio.StreamWriter | None = None
        try:
            reader, writer = await _server_stream(sock, certs.server_context([self.address]))
            while (request := await read_request(reader)) is not None:
                status, body = 404, b"not a DoH path"
                ctype = "text/plain"
                if request.path.split("?", 1)[0] == PATH:
                    try:
                        result = doh_exchange(self.zone, request.method, request.path,
                                              request.body, source)
                    except ValueError as exc:
                        status, body = 400, str(exc).encode()
                    else:
                        if result is None:  # drop: never answer
                            while await reader.read(65536):
                                pass
                            return
                        delay, body = result
                        if delay + self.latency() > 0:
                            await asyncio.sleep(delay + self.latency())
                        status, ctype = 200, "application/dns-message"
                head = (f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\n"
                        f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n")
                writer.write(head.encode("latin-1") + body)
                await writer.drain()
        except (OSError, ssl.SSLError, asyncio.IncompleteReadError, EOFError):
            return
        finally:
            if writer is None:
                with contextlib.suppress(OSError):
                    sock.close()
            else:
                writer.transport.abort()
