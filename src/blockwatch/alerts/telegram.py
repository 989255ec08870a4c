"""Telegram: alerts and the digest posted by a bot (Bot API `sendMessage`) to a chat, group or
channel.

Rendering reuses the composers (compose.py): the plain-text body is the source, every line
escaped with `html.escape` and laid out with the few tags Telegram's HTML knows (a bold subject
and headings, an italic footer). Messages are split at Telegram's 4096-character limit on line
boundaries (an over-long line at spaces), so each part is well-formed on its own: no tag or
entity ever spans two parts. Each part is its own outbox row (its own idempotency key) that
names the part before it; delivery keeps a part back until the one before it was handed over.

The bot token is a secret that sits in the request's URL path: it is read from `bot_token_env` /
`bot_token_file` only when sending, registered with the log scrubber, and no error or log line
here ever shows the request URL.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy.orm import Session

from blockwatch import __version__, redact
from blockwatch.alerts import compose as C
from blockwatch.alerts.email import DeliveryError
from blockwatch.alerts.outbox import enqueue
from blockwatch.config import Config, SecretError, Telegram

CHANNEL = "telegram"
LIMIT = 4096  # characters (UTF-16 code units) of one message
PART_MARK = 16  # room kept in every part for its "(12/13)" line
TIMEOUT = httpx.Timeout(20.0, connect=10.0)
TOKEN_MASK = "<telegram-bot-token>"  # noqa: S105  (what is shown instead)


class TelegramError(DeliveryError):
    """A refused or failed `sendMessage`; `retry_after` (seconds) when Telegram said when."""

    def __init__(self, message: str, *, permanent: bool = False, uncertain: bool = False,
                 retry_after: float | None = None):
        super().__init__(message, permanent=permanent, uncertain=uncertain)
        self.retry_after = retry_after


# --- rendering ---------------------------------------------------------------------------------

def units(s: str) -> int:
    """Length as Telegram counts it (UTF-16 code units)."""
    return len(s.encode("utf-16-le")) // 2


@dataclass(frozen=True)
class Line:
    text: str  # plain text, not yet escaped
    tag: str = ""  # "", "b" or "i": the whole line wrapped in it

    def html(self) -> str:
        body = html.escape(self.text, quote=False)  # text nodes: quotes need no escaping
        return f"<{self.tag}>{body}</{self.tag}>" if self.tag and body else body


_HEADING = re.compile(r"^== (.+) ==$")


def lines_of(msg: C.Message) -> list[Line]:
    """A composed message as Telegram lines: the subject bold, the text body's headings bold,
    its `-- ` signature dropped and the footer after it italic."""
    out = [Line(msg.subject, "b"), Line("")]
    body = msg.text.rstrip("\n").split("\n")
    footer = False
    for raw in body:
        if raw == "-- ":
            footer = True
            continue
        m = _HEADING.match(raw)
        if m:
            out.append(Line(m.group(1), "b"))
        elif raw.startswith("* "):
            out.append(Line("• " + raw[2:]))
        else:
            out.append(Line(raw, "i" if footer and raw else ""))
    while out and not out[-1].text:
        out.pop()
    return out


def _cut(line: Line, budget: int) -> list[Line]:
    """An over-long line in pieces whose HTML fits `budget`, cut at a space where there is one.
    The cut is made in the plain text, before escaping: never inside an entity."""
    pieces = []
    rest = line.text
    while rest:
        if units(Line(rest, line.tag).html()) <= budget:
            pieces.append(Line(rest, line.tag))
            break
        lo, hi = 1, len(rest)  # the longest prefix that fits
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if units(Line(rest[:mid], line.tag).html()) <= budget:
                lo = mid
            else:
                hi = mid - 1
        space = rest.rfind(" ", 0, lo + 1)
        n = space if space > lo // 2 else lo
        pieces.append(Line(rest[:n], line.tag))
        rest = rest[n:].lstrip(" ")
    return pieces


def split(lines: list[Line], limit: int = LIMIT) -> list[str]:
    """Lines packed into messages of at most `limit` units, numbered "(i/n)" when there are
    several; every part is whole lines of balanced tags."""
    budget = limit - PART_MARK
    parts: list[list[str]] = [[]]
    size = 0
    for line in lines:
        for piece in _cut(line, budget) if units(line.html()) > budget else [line]:
            h = piece.html()
            need = units(h) + (1 if parts[-1] else 0)
            if parts[-1] and size + need > budget:
                parts.append([])
                size, need = 0, units(h)
            if not parts[-1] and not h:
                continue  # a part does not start with a blank line
            parts[-1].append(h)
            size += need
    texts = ["\n".join(p) for p in parts if p]
    if len(texts) == 1:
        return texts
    return [f"<i>({i}/{len(texts)})</i>\n{t}" for i, t in enumerate(texts, 1)]


def render(msg: C.Message, limit: int = LIMIT) -> list[str]:
    return split(lines_of(msg), limit)


# --- the outbox --------------------------------------------------------------------------------

def queue(s: Session, chat: Telegram, *, kind: str, key: str, msg: C.Message,
          now: datetime) -> list[str]:
    """One outbox row per part; a part's payload names the part before it (`prev`), which must
    be handed over first. Returns the keys."""
    parts = render(msg)
    keys = []
    prev = None
    for i, text in enumerate(parts, 1):
        k = key if len(parts) == 1 else f"{key}:part{i}of{len(parts)}"
        if len(k) > C.KEY_MAX:
            k = C.outbox_key(kind, CHANNEL, k)  # hashed, whole
        enqueue(s, key=k, channel=CHANNEL, destination=chat.chat_id, kind=kind,
                subject=msg.subject, now=now,
                payload={"text": text, "language": chat.language, "part": i,
                         "parts": len(parts), "prev": prev})
        keys.append(k)
        prev = k
    return keys


def key(kind: str, chat: Telegram, *rest: str) -> str:
    return C.outbox_key(kind, CHANNEL, chat.chat_id, *rest)


def find(cfg: Config, chat_id: str) -> tuple[int, Telegram] | None:
    for i, t in enumerate(cfg.settings.alerts.telegram):
        if t.chat_id == chat_id:
            return i, t
    return None


def token(cfg: Config, chat: Telegram, where: str) -> str:
    """The bot token, read now; registered with the log scrubber before anything can show it."""
    value = cfg.secret(chat, "bot_token", where) or ""
    origin = (f"{where}.bot_token_env ${chat.bot_token_env}" if chat.bot_token_env
              else f"{where}.bot_token_file {chat.bot_token_file}")
    redact.register(value, TOKEN_MASK)
    if not re.fullmatch(r"\d+:[A-Za-z0-9_-]{20,}", value):
        # said without the value: a half-pasted token is still most of a secret
        raise SecretError(f"{origin} does not hold a bot token like 123456789:AAE... "
                          "(as @BotFather gives it)")
    return value


def label(chat: Telegram) -> str:
    """How a chat is shown in errors and output: its id and the API's host (never the URL)."""
    host = redact.host(chat.api_url)
    return f"chat {chat.chat_id}" + ("" if host == "api.telegram.org" else f" via {host}")


# --- the Bot API -------------------------------------------------------------------------------

def client() -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False,
                             headers={"User-Agent": f"blockwatch/{__version__}"})


def _clean(text: str, secret: str) -> str:
    return redact.scrub(text.replace(secret, TOKEN_MASK) if secret else text)


def _answer(resp: httpx.Response) -> dict[str, Any]:
    try:
        data = resp.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


async def send(http: httpx.AsyncClient, chat: Telegram, bot_token: str, text: str) -> int | None:
    """`sendMessage` once; returns Telegram's message id. Raises TelegramError:
    - 429: `retry_after` from `parameters.retry_after` (the caller schedules, nobody sleeps);
    - 5xx, and errors before the request was written out (connect, write, pool): retry;
    - 400/403 (chat not found, bot kicked or not an admin): permanent;
    - 401/404 (the token is wrong or revoked): retried, like an SMTP login refusal: the operator
      fixes the token, the messages wait;
    - the answer lost after the request was sent (read timeout, dropped connection): `uncertain`.
    """
    shown = f"Telegram {label(chat)}"
    url = f"{chat.api_url.rstrip('/')}/bot{bot_token}/sendMessage"
    body = {"chat_id": chat.chat_id, "text": text, "parse_mode": "HTML",
            "disable_web_page_preview": True}
    try:
        resp = await http.post(url, json=body)
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.WriteError,
            httpx.WriteTimeout, httpx.UnsupportedProtocol, httpx.ProxyError) as exc:
        # the request never reached Telegram whole: it cannot have been posted
        raise TelegramError(_clean(f"{shown}: {type(exc).__name__}: {exc}", bot_token)) from None
    except httpx.HTTPError as exc:
        # ReadTimeout, ReadError, RemoteProtocolError: sent, answer lost; it may have been posted
        raise TelegramError(_clean(f"{shown}: no answer after the message was sent "
                                   f"({type(exc).__name__}: {exc})", bot_token),
                            uncertain=True) from None
    data = _answer(resp)
    if resp.is_success and data.get("ok") is True:
        result = data.get("result")
        mid = result.get("message_id") if isinstance(result, dict) else None
        return mid if isinstance(mid, int) else None
    code = resp.status_code
    desc = str(data.get("description") or resp.text[:200] or resp.reason_phrase).strip()
    params = data.get("parameters") if isinstance(data.get("parameters"), dict) else {}
    what = _clean(f"{shown}: HTTP {code} {C.oneline(desc, 300)}", bot_token)
    if code == 429:
        after = params.get("retry_after")
        seconds = float(after) if isinstance(after, int | float) and after > 0 else None
        raise TelegramError(what, retry_after=seconds)
    if code in (400, 403):
        if "migrate_to_chat_id" in params:  # a group became a supergroup: it has a new id
            what += (f"; the group has a new id: set chat_id = \"{params['migrate_to_chat_id']}\""
                     " in [[alerts.telegram]]")
        elif code == 403:
            what += "; is the bot still a member of the chat (an admin of a channel)?"
        elif "chat not found" in desc.lower():
            what += "; is chat_id right, and was the bot added to the chat?"
        raise TelegramError(what, permanent=True)
    if code in (401, 404):
        raise TelegramError(what + " (check the bot token)")
    permanent = 400 <= code < 500 and code not in (408, 425)
    raise TelegramError(what, permanent=permanent)
