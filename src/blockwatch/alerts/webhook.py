"""Webhook delivery: a JSON POST, signed with HMAC-SHA256 over the exact bytes sent.

Receivers verify with:
    expected = "sha256=" + hmac.new(secret, raw_body, sha256).hexdigest()
    hmac.compare_digest(expected, request.headers["X-Blockwatch-Signature"])
and deduplicate on `X-Blockwatch-Delivery` (the outbox key, also the body's `id`): a webhook is
delivered at least once (a crash while the request is in flight means it is sent again).

A webhook's URL may be a credential (user:password@, ?token=, or the path itself): outbox rows
name a webhook by `hook_id` (a hash of how the config names it), errors and output by `label`.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any
from urllib.parse import urlsplit

import httpx

from blockwatch import __version__, redact
from blockwatch.alerts.email import DeliveryError
from blockwatch.alerts.telegram import TOKEN_MASK
from blockwatch.config import Config, SecretError, Webhook
from blockwatch.textsafe import dumps

SIGNATURE_HEADER = "X-Blockwatch-Signature"
DELIVERY_HEADER = "X-Blockwatch-Delivery"
TIMEOUT = httpx.Timeout(20.0, connect=10.0)


def hook_id(w: Webhook) -> str:
    """The outbox's name for a webhook (key and destination): stable, and no secret in it."""
    return "webhook-" + hashlib.sha256(w.ref.encode("utf-8")).hexdigest()[:16]


def resolve_url(cfg: Config, w: Webhook, where: str) -> str:
    """The URL to post to; SecretError names a missing or malformed `url_env` / `url_file`."""
    if w.url:
        redact.register(w.url, redact.url(w.url))
        return w.url
    value = cfg.secret(w, "url", where)
    origin = f"{where}.url_env ${w.url_env}" if w.url_env else f"{where}.url_file {w.url_file}"
    parts = urlsplit(value or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SecretError(f"{origin} does not hold an http:// or https:// URL")
    redact.register(value, label(w, value))
    return value or ""


def label(w: Webhook, resolved: str | None = None) -> str:
    """How a webhook is shown: its URL redacted, or only the host of one from env/file."""
    if w.url:
        return redact.url(w.url)
    return redact.source(resolved, env=w.url_env, file=w.url_file)


def label_in(cfg: Config, destination: str) -> str:
    """An outbox row's destination as shown (rows queued before ids named the raw URL)."""
    for i, w in enumerate(cfg.settings.alerts.webhook):
        if destination in (hook_id(w), w.url):
            try:
                return label(w, resolve_url(cfg, w, f"alerts.webhook[{i}]"))
            except SecretError:
                return label(w)
    return redact.url(destination) if "://" in destination else destination


def register_secrets(cfg: Config) -> None:
    """Tell the log scrubber every webhook URL and secret, the SMTP credentials and the Telegram
    bot tokens this config resolves to; missing ones are reported where they are needed."""
    a = cfg.settings.alerts
    for i, w in enumerate(a.webhook):
        try:
            resolve_url(cfg, w, f"alerts.webhook[{i}]")
        except SecretError:
            pass
        try:
            redact.register(cfg.secret(w, "secret", f"alerts.webhook[{i}]"))
        except SecretError:
            pass
    for base in ("smtp_password", "smtp_username"):
        try:
            redact.register(cfg.secret(a, base, "alerts"))
        except SecretError:
            pass
    # a bot token sits in the request URL's path, which httpx logs: known before any request
    for i, chat in enumerate(a.telegram):
        try:
            redact.register(cfg.secret(chat, "bot_token", f"alerts.telegram[{i}]"), TOKEN_MASK)
        except SecretError:
            pass


def encode(body: dict[str, Any]) -> bytes:
    # strict JSON of printable text (textsafe): a receiver's parser must never choke on it
    return dumps(body, sort_keys=True, separators=(",", ":")).encode()


def sign(secret: str, raw: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode("utf-8"), raw, hashlib.sha256).hexdigest()


def verify(secret: str, raw: bytes, header: str) -> bool:
    return hmac.compare_digest(sign(secret, raw), header)


def client() -> httpx.AsyncClient:
    # redirects are not followed: a POST silently turning into a GET elsewhere is a lost alert
    return httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False,
                             headers={"User-Agent": f"blockwatch/{__version__}"})


async def post(http: httpx.AsyncClient, url: str, body: dict[str, Any], *, key: str,
               secret: str | None, shown_as: str | None = None) -> None:
    """POST once; DeliveryError names the webhook as `shown_as` (default: the URL redacted)."""
    shown = shown_as or redact.url(url)
    raw = encode(body)
    headers = {"Content-Type": "application/json; charset=utf-8", DELIVERY_HEADER: key}
    if secret:
        headers[SIGNATURE_HEADER] = sign(secret, raw)
    try:
        resp = await http.post(url, content=raw, headers=headers)
    except httpx.HTTPError as exc:
        # httpx puts the URL in some messages: redact any URL in the text, and this one wholly
        detail = redact.urls_in(str(exc).replace(url, shown))
        raise DeliveryError(f"webhook {shown}: {type(exc).__name__}: {detail}") from None
    if resp.is_success:
        return
    # 408/429 and 5xx are the receiver's temporary trouble; other 4xx will not get better
    permanent = 400 <= resp.status_code < 500 and resp.status_code not in (408, 425, 429)
    text = redact.urls_in(resp.text[:200].replace(url, shown))
    raise DeliveryError(f"webhook {shown}: HTTP {resp.status_code} {text}".strip(),
                        permanent=permanent)
