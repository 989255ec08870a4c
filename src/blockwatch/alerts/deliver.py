"""Send what is due in the outbox: claim, deliver, record; I/O only, no composition.

Each channel (email, webhooks, Telegram) claims and delivers its own rows, concurrently and with
its own error handling: an SMTP server that never answers holds back email only."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from blockwatch.alerts import email as mail
from blockwatch.alerts import outbox
from blockwatch.alerts import telegram as tg
from blockwatch.alerts import webhook as hook
from blockwatch.alerts.outbox import Row
from blockwatch.config import Config, SecretError
from blockwatch.storage import Database

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]


@dataclass
class DeliveryReport:
    sent: list[str] = field(default_factory=list)  # keys
    retry: list[tuple[str, str]] = field(default_factory=list)  # (key, error)
    failed: list[tuple[str, str]] = field(default_factory=list)
    uncertain: list[tuple[str, str]] = field(default_factory=list)
    secret_errors: list[str] = field(default_factory=list)

    def merge(self, other: DeliveryReport) -> None:
        for name in ("sent", "retry", "failed", "uncertain", "secret_errors"):
            getattr(self, name).extend(getattr(other, name))


def _now() -> datetime:
    return datetime.now(UTC)


def _email_row(cfg: Config, db: Database, st: mail.SmtpSettings, row: Row,
               report: DeliveryReport, clock: Clock) -> None:
    """One email, synchronously (runs in a worker thread)."""
    renewed = outbox.renew(db, row, clock())
    if renewed is None:  # another delivery claimed it after this batch's lease ran out
        return
    row = renewed
    recipients = {r.email.casefold() for r in cfg.settings.alerts.recipient}
    if row.kind != "test" and row.destination.casefold() not in recipients:
        err = "the recipient is no longer in [[alerts.recipient]]; not sent"
        outbox.mark_failed(db, row, err, clock(), permanent=True)
        report.failed.append((row.key, err))
        return
    p = row.payload
    msg = mail.build_message(sender=st.sender, to=row.destination, subject=row.subject,
                             text=p["text"], html=p["html"], message_id=p["message_id"],
                             date=row.created_at, lang=p.get("language", "en"))
    def sending() -> None:
        if not outbox.mark_sending(db, row, clock()):
            raise outbox.ClaimLost(row.key)  # no final ".": the server discards the message

    try:
        mail.send(st, msg, before_commit=sending,
                  on_accepted=lambda: outbox.mark_sent(db, row.id, clock()))
    except outbox.ClaimLost:
        return
    except mail.DeliveryError as exc:
        if exc.uncertain:
            outbox.mark_uncertain(db, row.id, str(exc))
            report.uncertain.append((row.key, str(exc)))
            log.warning("outbox %s: %s; not resent (at most once)", row.key, exc)
            return
        status = outbox.mark_failed(db, row, str(exc), clock(), permanent=exc.permanent)
        (report.failed if status == outbox.FAILED else report.retry).append((row.key, str(exc)))
        log.warning("outbox %s: %s (%s)", row.key, exc,
                    "given up" if status == outbox.FAILED else "will retry")
        return
    report.sent.append(row.key)


async def _webhook_row(cfg: Config, db: Database, http: httpx.AsyncClient, row: Row,
                       report: DeliveryReport, clock: Clock) -> None:
    renewed = await asyncio.to_thread(outbox.renew, db, row, clock())
    if renewed is None:  # another delivery claimed it after this batch's lease ran out
        return
    row = renewed
    hooks: dict[str, tuple[int, Any]] = {}
    for i, w in enumerate(cfg.settings.alerts.webhook):
        hooks[hook.hook_id(w)] = (i, w)
        if w.url:  # rows queued when the destination was the URL itself
            hooks.setdefault(w.url, (i, w))
    if row.destination not in hooks:
        err = "the webhook is no longer in [[alerts.webhook]]; not sent"
        await asyncio.to_thread(outbox.mark_failed, db, row, err, clock(), permanent=True)
        report.failed.append((row.key, err))
        return
    i, w = hooks[row.destination]
    try:
        secret = cfg.secret(w, "secret", f"alerts.webhook[{i}]")
        url = hook.resolve_url(cfg, w, f"alerts.webhook[{i}]")
    except SecretError as exc:
        await asyncio.to_thread(outbox.release, db, [row], str(exc), clock())
        report.secret_errors.append(str(exc))
        report.retry.append((row.key, str(exc)))
        return
    try:
        await hook.post(http, url, row.payload, key=row.key, secret=secret,
                        shown_as=hook.label(w, url))
    except mail.DeliveryError as exc:
        status = await asyncio.to_thread(outbox.mark_failed, db, row, str(exc), clock(),
                                         permanent=exc.permanent)
        (report.failed if status == outbox.FAILED else report.retry).append((row.key, str(exc)))
        log.warning("outbox %s: %s", row.key, exc)
        return
    await asyncio.to_thread(outbox.mark_sent, db, row.id, clock())
    report.sent.append(row.key)


async def _together(jobs: list[Coroutine[Any, Any, None]]) -> None:
    """Run concurrently; a KeyboardInterrupt/SystemExit in one is raised to our caller once all
    are done, as it would be without tasks (asyncio would end the whole loop with it)."""
    stopped: list[BaseException] = []

    async def guarded(job: Coroutine[Any, Any, None]) -> None:
        try:
            await job
        except (KeyboardInterrupt, SystemExit) as exc:
            stopped.append(exc)

    await asyncio.gather(*(guarded(j) for j in jobs))
    if stopped:
        raise stopped[0]


async def _telegram_chat(cfg: Config, db: Database, http: httpx.AsyncClient, rows: list[Row],
                         report: DeliveryReport, clock: Clock) -> None:
    """One chat's rows, in order. A part waits until the part before it was handed over; after
    a 429 the chat's other rows wait for the time Telegram named."""
    found = tg.find(cfg, rows[0].destination)
    slow_until: datetime | None = None
    bot_token: str | None = None
    for n, claimed in enumerate(rows):
        renewed = await asyncio.to_thread(outbox.renew, db, claimed, clock())
        if renewed is None:  # another delivery claimed it after this batch's lease ran out
            continue
        row = renewed
        if found is None:
            err = "the chat is no longer in [[alerts.telegram]]; not sent"
            await asyncio.to_thread(outbox.mark_failed, db, row, err, clock(), permanent=True)
            report.failed.append((row.key, err))
            continue
        i, chat = found
        if slow_until is not None:
            await asyncio.to_thread(outbox.defer, db, row, slow_until,
                                    "Telegram asked to slow down; waiting")
            report.retry.append((row.key, "Telegram asked to slow down"))
            continue
        prev = row.payload.get("prev")
        before = await asyncio.to_thread(outbox.state, db, prev) if prev else None
        if before is not None and before[0] in (outbox.PENDING, outbox.SENDING):
            # the earlier part first: due again when it is (or when its lease ends)
            until = max(before[1], clock() + timedelta(seconds=1))
            await asyncio.to_thread(outbox.defer, db, row, until,
                                    "waiting for the previous part of this message")
            report.retry.append((row.key, "waiting for the previous part"))
            continue
        if bot_token is None:
            try:
                bot_token = await asyncio.to_thread(tg.token, cfg, chat, f"alerts.telegram[{i}]")
            except SecretError as exc:
                rest = [row, *rows[n + 1:]]  # this one as renewed
                await asyncio.to_thread(outbox.release, db, rest, str(exc), clock())
                report.secret_errors.append(str(exc))
                report.retry.extend((r.key, str(exc)) for r in rest)
                return
        # Recorded as `sending` before the request, and a request whose answer was lost (read
        # timeout, dropped connection) becomes `uncertain`, not resent: the rule email follows.
        # Telegram has no idempotency key, so a resend after a lost answer is a visible duplicate
        # in a channel every subscriber reads; an uncertain row is counted by `blockwatch
        # health` and logged, so a person can look at the chat. Failures before the request was
        # written out (connect, 429, 5xx) are retried: nothing was posted.
        if not await asyncio.to_thread(outbox.mark_sending, db, row, clock()):
            continue  # claimed by another delivery meanwhile: it sends it
        try:
            await tg.send(http, chat, bot_token, row.payload["text"])
        except tg.TelegramError as exc:
            err = str(exc)
            if exc.uncertain:
                await asyncio.to_thread(outbox.mark_uncertain, db, row.id, err)
                report.uncertain.append((row.key, err))
                log.warning("outbox %s: %s; not resent (at most once)", row.key, err)
                continue
            if exc.retry_after is not None:
                slow_until = clock() + timedelta(seconds=exc.retry_after)
                status = await asyncio.to_thread(outbox.retry_at, db, row, err, slow_until)
            else:
                status = await asyncio.to_thread(outbox.mark_failed, db, row, err, clock(),
                                                 permanent=exc.permanent)
            (report.failed if status == outbox.FAILED else report.retry).append((row.key, err))
            if status == outbox.FAILED and exc.permanent:
                log.error("outbox %s: Telegram refused it for good, given up: %s", row.key, err)
            else:
                log.warning("outbox %s: %s (%s)", row.key, err,
                            "given up" if status == outbox.FAILED else "will retry")
            continue
        await asyncio.to_thread(outbox.mark_sent, db, row.id, clock())
        report.sent.append(row.key)


async def _telegram_rows(cfg: Config, db: Database, rows: list[Row], report: DeliveryReport,
                         clock: Clock, ssl_context: ssl.SSLContext | None) -> None:
    chats: dict[str, list[Row]] = {}
    for r in rows:
        chats.setdefault(r.destination, []).append(r)
    async with tg.client() as http:
        await _together([_telegram_chat(cfg, db, http, rs, report, clock)
                         for rs in chats.values()])


async def _email_rows(cfg: Config, db: Database, rows: list[Row], report: DeliveryReport,
                      clock: Clock, ssl_context: ssl.SSLContext | None) -> None:
    try:
        st = mail.smtp_settings(cfg, ssl_context=ssl_context)
    except SecretError as exc:
        await asyncio.to_thread(outbox.release, db, rows, str(exc), clock())
        report.secret_errors.append(str(exc))
        report.retry.extend((r.key, str(exc)) for r in rows)
        return
    for r in rows:
        await asyncio.to_thread(_email_row, cfg, db, st, r, report, clock)


async def _webhook_rows(cfg: Config, db: Database, rows: list[Row], report: DeliveryReport,
                        clock: Clock, ssl_context: ssl.SSLContext | None) -> None:
    async with hook.client() as http:
        for r in rows:
            await _webhook_row(cfg, db, http, r, report, clock)


async def _unknown_rows(cfg: Config, db: Database, rows: list[Row], report: DeliveryReport,
                        clock: Clock, ssl_context: ssl.SSLContext | None) -> None:
    for r in rows:
        err = f"unknown channel {r.channel!r}"
        await asyncio.to_thread(outbox.mark_failed, db, r, err, clock(), permanent=True)
        report.failed.append((r.key, err))


CHANNELS = {"email": _email_rows, "webhook": _webhook_rows, tg.CHANNEL: _telegram_rows}


async def _channel(cfg: Config, db: Database, channel: str | None, report: DeliveryReport,
                   clock: Clock, *, ids: list[int] | None, limit: int,
                   ssl_context: ssl.SSLContext | None, until_empty: bool) -> None:
    """Claim and deliver one channel's due rows (`None`: rows of unknown channels), in batches
    while `until_empty`. Whatever goes wrong stays in this channel: its claimed rows come back
    when their lease ends."""
    run = CHANNELS.get(channel or "", _unknown_rows)
    while True:
        rows = await asyncio.to_thread(
            outbox.claim, db, clock(), ids=ids, limit=limit,
            channels=[channel] if channel else None,
            other_than=None if channel else list(CHANNELS))
        if not rows:
            return
        try:
            await run(cfg, db, rows, report, clock, ssl_context)
        except Exception as exc:  # a bug or a database outage in one channel: not the others'
            log.exception("outbox: %s delivery stopped: %s; its rows are retried after %s",
                          channel or "unknown-channel", exc, outbox.LEASE)
            return
        if not until_empty or len(rows) < limit:
            return


async def deliver(cfg: Config, db: Database, *, ids: Iterable[int] | None = None,
                  now: datetime | None = None, limit: int = 100,
                  ssl_context: ssl.SSLContext | None = None,
                  until_empty: bool = False) -> DeliveryReport:
    """Deliver due rows (only `ids` when given), each channel on its own. Missing secrets are
    reported, not raised: the other channels still go out."""
    fixed = now

    def clock() -> datetime:
        # a given `now` (tests, a replay) is the clock for the whole batch
        return fixed if fixed is not None else _now()

    report = DeliveryReport()
    await asyncio.to_thread(outbox.expire_sending, db, clock())
    wanted = list(ids) if ids is not None else None
    await _together([_channel(cfg, db, ch, report, clock, ids=wanted, limit=limit,
                              ssl_context=ssl_context, until_empty=until_empty)
                     for ch in [*CHANNELS, None]])
    return report


async def deliver_outbox(cfg: Config, db: Database, *, now: datetime | None = None,
                         ssl_context: ssl.SSLContext | None = None) -> DeliveryReport:
    """The daemon's job: deliver everything due (each channel in batches until none is left). A
    missing secret is raised (naming it) after the other channels were served."""
    total = await deliver(cfg, db, now=now, ssl_context=ssl_context, until_empty=True)
    if total.sent or total.retry or total.failed:
        log.info("outbox: %d sent, %d to retry, %d failed, %d uncertain", len(total.sent),
                 len(total.retry), len(total.failed), len(total.uncertain))
    if total.secret_errors:
        raise SecretError(total.secret_errors[0])
    return total
