"""Webhook delivery: a JSON POST, signed with HMAC-SHA256 over the exact bytes sent.

Receivers verify with:
    expected = "sha256=" + hmac.new(secret, raw_body, sha256).hexdigest()
    hmac.compare_digest(expected, request.headers["X-Blockwatch-Signature"])
and deduplicate on `X-Blockwatch-Delivery` (the outbox key, also the body's `id`): a webhook is
delivered at least once (a crash while the request is in flight means it is sent again).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import httpx

from blockwatch import __version__
from blockwatch.alerts.email import DeliveryError

SIGNATURE_HEADER = "X-Blockwatch-Signature"
DELIVERY_HEADER = "X-Blockwatch-Delivery"
TIMEOUT = httpx.Timeout(20.0, connect=10.0)


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def sign(secret: str, raw: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode("utf-8"), raw, hashlib.sha256).hexdigest()


def verify(secret: str, raw: bytes, header: str) -> bool:
    return hmac.compare_digest(sign(secret, raw), header)


def client() -> httpx.AsyncClient:
    # redirects are not followed: a POST silently turning into a GET elsewhere is a lost alert
    return httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False,
                             headers={"User-Agent": f"blockwatch/{__version__}"})


async def post(http: httpx.AsyncClient, url: str, body: dict[str, Any], *, key: str,
               secret: str | None) -> None:
    raw = encode(body)
    headers = {"Content-Type": "application/json; charset=utf-8", DELIVERY_HEADER: key}
    if secret:
        headers[SIGNATURE_HEADER] = sign(secret, raw)
    try:
        resp = await http.post(url, content=raw, headers=headers)
    except httpx.HTTPError as exc:
        raise DeliveryError(f"webhook {url}: {type(exc).__name__}: {exc}") from None
    if resp.is_success:
        return
    # 408/429 and 5xx are the receiver's temporary trouble; other 4xx will not get better
    permanent = 400 <= resp.status_code < 500 and resp.status_code not in (408, 425, 429)
    raise DeliveryError(f"webhook {url}: HTTP {resp.status_code} {resp.text[:200]}".strip(),
                        permanent=permanent)
