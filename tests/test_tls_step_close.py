"""The TLS step tells a server that closes (FIN) during the handshake from one that resets
(RST): the loop's TLS reports both as ConnectionResetError, the FIN without an errno. Real
servers on 127/8 that read the start of the ClientHello and then close or reset."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from lab.net import rst_close

from blockwatch.probe import failures as F
from blockwatch.probe.netsteps import connect, make_ssl_context


@contextlib.asynccontextmanager
async def after_hello(host: str, rst: bool) -> AsyncIterator[int]:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(5)
        if rst:
            rst_close(writer.get_extra_info("socket"))
            writer.transport.abort()
            return
        writer.write_eof()  # FIN, the connection otherwise left to the client
        while await reader.read(65536):
            pass
        writer.close()

    listener = await asyncio.start_server(serve, host, 0)
    try:
        yield listener.sockets[0].getsockname()[1]
    finally:
        listener.close()


async def handshake_failure(host: str, rst: bool) -> str | None:
    async with after_hello(host, rst) as port:
        tcp, tls, kept = await connect(host, port, "site.test", timeout=2.0, source=None,
                                       verified=make_ssl_context(None),
                                       unverified=make_ssl_context(None, verify=False))
    assert tcp.status == "ok" and tls is not None and kept is None
    assert tls.verify_error is None and tls.chain == []
    return tls.failure


async def test_a_fin_after_the_client_hello_is_an_eof() -> None:
    assert await handshake_failure("127.0.9.92", rst=False) == F.EOF_ERROR


async def test_a_reset_after_the_client_hello_stays_a_reset() -> None:
    assert await handshake_failure("127.0.9.93", rst=True) == F.CONNECTION_RESET
