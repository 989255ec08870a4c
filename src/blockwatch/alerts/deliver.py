"""Send what is due in the outbox: claim, deliver, record; I/O only, no composition."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from blockwatch.alerts import email as mail
from blockwatch.alerts import outbox
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
    try:
        mail.send(st, msg, before_commit=lambda: outbox.mark_sending(db, row.id, clock()),
                  on_accepted=lambda: outbox.mark_sent(db, row.id, clock()))
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


async def deliver(cfg: Config, db: Database, *, ids: Iterable[int] | None = None,
                  now: datetime | None = None, limit: int = 100,
                  ssl_context: ssl.SSLContext | None = None) -> DeliveryReport:
    """Deliver due rows (only `ids` when given). Missing secrets are reported, not raised: the
    other channels still go out."""
    fixed = now

    def clock() -> datetime:
        # a given `now` (tests, a replay) is the clock for the whole batch
        return fixed if fixed is not None else _now()

    now = clock()
    report = DeliveryReport()
    await asyncio.to_thread(outbox.expire_sending, db, now)
    rows = await asyncio.to_thread(outbox.claim, db, now, ids=ids, limit=limit)
    emails = [r for r in rows if r.channel == "email"]
    hooks = [r for r in rows if r.channel == "webhook"]
    others = [r for r in rows if r.channel not in ("email", "webhook")]
    for r in others:
        err = f"unknown channel {r.channel!r}"
        await asyncio.to_thread(outbox.mark_failed, db, r, err, now, permanent=True)
        report.failed.append((r.key, err))
    if emails:
        try:
            st = mail.smtp_settings(cfg, ssl_context=ssl_context)
        except SecretError as exc:
            await asyncio.to_thread(outbox.release, db, emails, str(exc), now)
            report.secret_errors.append(str(exc))
            report.retry.extend((r.key, str(exc)) for r in emails)
        else:
            for r in emails:
                await asyncio.to_thread(_email_row, cfg, db, st, r, report, clock)
    if hooks:
        async with hook.client() as http:
            for r in hooks:
                await _webhook_row(cfg, db, http, r, report, clock)
    return report


async def deliver_outbox(cfg: Config, db: Database, *, now: datetime | None = None,
                         ssl_context: ssl.SSLContext | None = None) -> DeliveryReport:
    """The daemon's job: deliver everything due (in batches until none is left). A missing
    secret is raised (naming it) after the other channels were served."""
    total = DeliveryReport()
    while True:
        rep = await deliver(cfg, db, now=now, ssl_context=ssl_context)
        total.merge(rep)
        done = len(rep.sent) + len(rep.retry) + len(rep.failed) + len(rep.uncertain)
        if done < 100:
            break
    if total.sent or total.retry or total.failed:
        log.info("outbox: %d sent, %d to retry, %d failed, %d uncertain", len(total.sent),
                 len(total.retry), len(total.failed), len(total.uncertain))
    if total.secret_errors:
        raise SecretError(total.secret_errors[0])
    return total
