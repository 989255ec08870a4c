"""The agent's link to the collector. The state may intercept TLS (it has tried a national
root CA before), so the documented set-up pins the collector's public key: the pin is checked
on every TLS connection right after the handshake, before a single request byte is written,
and a mismatch stops everything."""

from __future__ import annotations

import json
import logging
import ssl
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from blockwatch import __version__
from blockwatch.agent.pin import format_pin, spki_sha256

log = logging.getLogger(__name__)


class PinMismatch(Exception):
    """The collector presented a different key: someone is in the middle, or it was re-keyed."""


class AuthRejected(Exception):
    """401/403: the token is wrong or was revoked."""


class CollectorError(Exception):
    """The collector could not be reached or failed: worth retrying later."""


class Rejected(Exception):
    """4xx for the payload itself (413, 422): retrying the same bytes will not help."""

    def __init__(self, status: int, detail: str):
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status


class _PinnedStream(httpcore.AsyncNetworkStream):
    def __init__(self, inner: httpcore.AsyncNetworkStream, pin: bytes | None):
        self._inner = inner
        self._pin = pin

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                        timeout: float | None = None) -> httpcore.AsyncNetworkStream:
        tls = await self._inner.start_tls(ssl_context, server_hostname, timeout)
        if self._pin is not None:
            obj = tls.get_extra_info("ssl_object")
            der = obj.getpeercert(binary_form=True) if obj is not None else None
            got = spki_sha256(der) if der else b""
            if got != self._pin:
                await tls.aclose()
                raise PinMismatch(
                    f"the collector's public key is {format_pin(got) if got else 'missing'}, "
                    f"expected {format_pin(self._pin)}")
        return tls

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _PinningBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, pin: bytes | None):
        self._inner = httpcore.AnyIOBackend()
        self._pin = pin

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Any = None) -> httpcore.AsyncNetworkStream:
        s = await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return _PinnedStream(s, self._pin)

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Any = None) -> httpcore.AsyncNetworkStream:
        raise NotImplementedError

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class Collector:
    """One collector: GET the targets, POST batches. A fresh connection per run of the agent,
    kept alive across the batches of one delivery."""

    def __init__(self, url: str, token: str, *, pin: bytes | None = None, timeout: float = 60.0,
                 ca_bundle: str | None = None):
        self.base = url.rstrip("/")
        self.token = token
        self.pin = pin
        parts = urlsplit(self.base)
        if parts.scheme == "https":
            if pin is not None:
                # The pin is the trust: a self-signed collector certificate is fine, and the
                # handshake still proves the server holds the pinned key.
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            else:
                ctx = ssl.create_default_context(cafile=ca_bundle)
        else:
            ctx = ssl.create_default_context()
        self.ssl_context = ctx
        transport = httpx.AsyncHTTPTransport(verify=ctx, retries=0)
        # httpx has no public hook for the network backend; build the pool as it does, plus ours
        transport._pool = httpcore.AsyncConnectionPool(
            ssl_context=ctx, max_connections=1, max_keepalive_connections=1, http1=True,
            http2=False, network_backend=_PinningBackend(pin), retries=0)
        self.client = httpx.AsyncClient(
            transport=transport, trust_env=False, timeout=httpx.Timeout(timeout),
            headers={"authorization": f"Bearer {token}",
                     "user-agent": f"blockwatch-agent/{__version__}"})

    async def aclose(self) -> None:
        await self.client.aclose()

    async def _request(self, method: str, path: str, body: bytes | None = None) -> Any:
        try:
            r = await self.client.request(
                method, self.base + path, content=body,
                headers={"content-type": "application/json"} if body is not None else None)
        except PinMismatch:
            raise
        except httpx.HTTPError as exc:
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, PinMismatch):
                raise cause from None
            raise CollectorError(f"{type(exc).__name__}: {exc}") from None
        if r.status_code in (401, 403):
            raise AuthRejected(_detail(r))
        if r.status_code in (400, 413, 422):
            raise Rejected(r.status_code, _detail(r))
        if r.status_code != 200:
            raise CollectorError(f"HTTP {r.status_code}: {_detail(r)}")
        try:
            return r.json()
        except ValueError:
            raise CollectorError("the collector's answer is not JSON") from None

    async def targets(self) -> dict[str, Any]:
        return await self._request("GET", "/api/v1/targets")

    async def upload(self, measurements: list[str], *, asn: str | None = None) -> dict[str, Any]:
        """`measurements` are JSON texts as queued: joined, not re-parsed (memory, CPU)."""
        head = '{"agent_version":' + json.dumps(__version__)
        if asn:
            head += ',"asn":' + json.dumps(asn)
        body = (head + ',"measurements":[' + ",".join(measurements) + "]}").encode()
        return await self._request("POST", "/api/v1/measurements", body)


def _detail(r: httpx.Response) -> str:
    try:
        d = r.json()
    except ValueError:
        return r.text[:200]
    if isinstance(d, dict):
        return str(d.get("fields") or d.get("detail") or d)[:300]
    return str(d)[:300]
