"""Socket plumbing for the lab: addresses, port reservation, resets, peeking, task tracking."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import struct
from collections.abc import Coroutine, Iterator
from typing import Any

# Client sources and their resolvers (the clients bind these source addresses themselves).
VANTAGE = "127.0.2.1"
CONTROL = "127.0.3.1"
VANTAGE2 = "127.0.4.1"
VANTAGE_RESOLVER = "127.0.2.53"
CONTROL_RESOLVER = "127.0.3.53"
CONTROL_RESOLVER2 = "127.0.3.54"  # a second control resolver (the shipped list has two)
VANTAGE2_RESOLVER = "127.0.4.53"

# Bound (never listening) by each lab to reserve its http/https ports: nothing else in this
# process or another one can get the same port on it while the lab lives.
ANCHOR = "127.0.1.1"

_RESERVED_THIRD_OCTETS = {0, 2, 3, 4}


def site_addresses() -> Iterator[str]:
    """Candidate site addresses: 127.0.1.2-254, then 127.0.5.1 onwards (skipping client nets)."""
    for third in range(1, 256):
        if third in _RESERVED_THIRD_OCTETS:
            continue
        for fourth in range(1, 255):
            address = f"127.0.{third}.{fourth}"
            if address != ANCHOR:
                yield address


def is_addr_in_use(exc: OSError) -> bool:
    return exc.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL)


def bound_socket(address: str, port: int, kind: int = socket.SOCK_STREAM, *, reuse: bool = False):
    """A socket bound to (address, port) but not listening (for TCP: connects are refused)."""
    sock = socket.socket(socket.AF_INET, kind)
    try:
        if reuse:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
    except BaseException:
        sock.close()
        raise
    return sock


def listening_socket(address: str, port: int, backlog: int = 1024) -> socket.socket:
    sock = bound_socket(address, port, reuse=True)
    try:
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def blackhole_socket(address: str, port: int) -> list[socket.socket]:
    """A listener with backlog 0 that never accepts, its accept queue filled: SYNs are dropped.

    Returns the listener followed by the filler sockets (keep them all open).
    """
    listener = bound_socket(address, port, reuse=True)
    held = [listener]
    try:
        listener.listen(0)
        # The first filler completes and sits in the accept queue (backlog 0 holds one).
        held.append(socket.create_connection((address, port), timeout=1.0))
        # A second, non-blocking one to be sure the queue stays full; its SYN is dropped.
        extra = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        held.append(extra)
        extra.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            extra.connect((address, port))
    except BaseException:
        for sock in held:
            sock.close()
        raise
    return held


def rst_close(sock: Any) -> None:
    """Close with SO_LINGER (on, 0): the peer gets a TCP RST. Accepts a TransportSocket too."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


async def wait_readable(sock: socket.socket) -> None:
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[None] = loop.create_future()
    fd = sock.fileno()

    def ready() -> None:
        if not fut.done():
            fut.set_result(None)

    loop.add_reader(fd, ready)
    try:
        await fut
    finally:
        loop.remove_reader(fd)


async def peek_first_record(sock: socket.socket, max_polls: int = 200) -> bytes:
    """Peek (without consuming) the first bytes; for TLS wait for the whole first record.

    Returns b"" if the peer closes before sending anything.
    """
    data = b""
    for _ in range(max_polls):
        await wait_readable(sock)
        try:
            data = sock.recv(65536, socket.MSG_PEEK)
        except BlockingIOError:
            continue
        except OSError:
            return b""
        if not data:
            return b""
        if data[0] != 0x16:  # not TLS: nothing more to wait for
            return data
        if len(data) >= 5 and len(data) >= 5 + int.from_bytes(data[3:5], "big"):
            return data
        # A partial record (rare on loopback): poll briefly for the rest.
        await asyncio.sleep(0.005)
    return data


async def discard_until_eof(sock: socket.socket) -> None:
    """Read and drop everything until the peer closes (a silent peer: the 'black hole')."""
    loop = asyncio.get_running_loop()
    while True:
        try:
            data = await loop.sock_recv(sock, 65536)
        except OSError:
            return
        if not data:
            return


async def recv_exactly(sock: socket.socket, n: int) -> bytes | None:
    loop = asyncio.get_running_loop()
    buf = bytearray()
    while len(buf) < n:
        try:
            chunk = await loop.sock_recv(sock, n - len(buf))
        except OSError:
            return None
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


class TaskSet:
    """Tracks server tasks so that the lab can cancel every one of them at exit."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self.errors: list[BaseException] = []
        self.closed = False

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        if self.closed:
            coro.close()
            raise RuntimeError("lab is closed")
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.errors.append(task.exception())  # type: ignore[arg-type]

    def __len__(self) -> int:
        return len(self._tasks)

    async def close(self) -> None:
        self.closed = True
        for _ in range(10):
            if not self._tasks:
                return
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
