"""`blockwatch digest` and `blockwatch alerts-test` (wired into cli.py by the lead).

Exit codes (as in the README): 0 done; 1 a message was refused for good; 2 configuration (including a
missing secret); 75 queued for retry but not delivered (the daemon will retry).
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select

from blockwatch import aio, redact
from blockwatch.alerts import compose as C
from blockwatch.alerts import telegram as tg
from blockwatch.alerts import webhook as hook
from blockwatch.alerts.deliver import DeliveryReport, deliver
from blockwatch.alerts.digest import collect, languages_in_use, queue_for_recipients
from blockwatch.alerts.outbox import enqueue
from blockwatch.config import Config
from blockwatch.durations import DurationTooLong, parse_duration
from blockwatch.storage import Database, open_database
from blockwatch.storage.models import Outbox

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_TEMPFAIL = 0, 1, 2, 75


def parse_since(text: str, now: datetime, tz: str) -> datetime:
    """"48h" (a duration back from now) or ISO 8601; a time without an offset (or a bare date)
    is read in `alerts.timezone`, the zone the digest is written in."""
    try:
        return now - parse_duration(text)
    except DurationTooLong as exc:
        raise ValueError(f"--since {exc}") from None
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"--since {text!r}: expected a duration like 48h or an ISO 8601 time "
                         "like 2026-11-27T07:00 or 2026-11-27T02:00Z") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=ZoneInfo(tz))
    return dt.astimezone(UTC)


def default_out(cfg: Config) -> Path:
    """`digests` beside the status site's folder: reports/digests with the shipped config (whose
    site is ../reports/site), ./reports/digests with built-in defaults."""
    return cfg.resolve(cfg.settings.site.out).parent / "digests"


def write_files(data: C.DigestData, out: Path, langs: list[str], tz: str) -> list[Path]:
    """YYYY-MM-DD.html/.txt in the first language in use; YYYY-MM-DD.<lang>.html/.txt for each
    further one. Written to a temporary name and renamed: a reader never sees half a file."""
    out.mkdir(parents=True, exist_ok=True)
    date = C.digest_date(data, tz)
    paths = []
    for n, lang in enumerate(langs):
        msg = C.compose_digest(data, lang, tz)
        stem = date if n == 0 else f"{date}.{lang}"
        for ext, body in (("html", msg.html), ("txt", msg.text)):
            p = out / f"{stem}.{ext}"
            tmp = p.with_name(p.name + ".tmp")
            tmp.write_text(body, encoding="utf-8")
            tmp.replace(p)
            paths.append(p)
    return paths


def _report(cfg: Config, db: Database, ids: list[int], rep: DeliveryReport) -> int:
    with db.read() as s:
        rows = {r.key: r for r in s.scalars(select(Outbox).where(Outbox.id.in_(ids)))}
    for _key, row in sorted(rows.items()):
        dest = hook.label_in(cfg, row.destination) if row.channel == "webhook" else row.destination
        if row.channel == tg.CHANNEL:
            found = tg.find(cfg, row.destination)
            dest = tg.label(found[1]) if found else f"chat {row.destination}"
            if (row.payload or {}).get("parts", 1) > 1:
                dest += f" (part {row.payload['part']}/{row.payload['parts']})"
        where = redact.scrub(f"{row.channel} {dest}")
        error = redact.scrub(str(row.last_error))
        if row.status == "sent":
            print(f"{where}: delivered")
        elif row.status == "pending":
            print(f"{where}: not delivered, queued for retry: {error}", file=sys.stderr)
        else:
            print(f"{where}: {row.status}: {error}", file=sys.stderr)
    statuses = {r.status for r in rows.values()}
    if rep.secret_errors:
        for e in dict.fromkeys(rep.secret_errors):
            print(f"blockwatch: missing secret: {redact.scrub(e)}", file=sys.stderr)
        return EXIT_USAGE
    if statuses & {"failed", "uncertain"}:
        return EXIT_FAIL
    if statuses - {"sent"}:
        return EXIT_TEMPFAIL
    return EXIT_OK


def cmd_digest(cfg: Config, args: argparse.Namespace) -> int:
    """`blockwatch digest [--send] [--out DIR] [--since T]`"""
    a = cfg.settings.alerts
    now = datetime.now(UTC)
    try:
        since = parse_since(args.since, now, a.timezone) if args.since else now - timedelta(hours=24)
    except ValueError as exc:
        print(f"blockwatch digest: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if since >= now:
        print(f"blockwatch digest: --since {args.since} is not in the past", file=sys.stderr)
        return EXIT_USAGE
    if args.send and not any(r.digest for r in [*a.recipient, *a.telegram]):
        # a usage error is said before anything is done
        print("blockwatch digest: --send: no [[alerts.recipient]] or [[alerts.telegram]] "
              f"with digest = true in {cfg.source}", file=sys.stderr)
        return EXIT_USAGE
    out = Path(args.out) if args.out else default_out(cfg)
    db = open_database(cfg.database_url)
    try:
        with db.read() as s:
            data = collect(s, cfg, since, now)
        for p in write_files(data, out, languages_in_use(cfg), a.timezone):
            print(p)
        if not args.send:
            return EXIT_OK
        # an explicit --send goes out even on a quiet day; the key names the period, so a second
        # run is a second digest, while a retry of this one is not
        prefix = f"digest:{since.isoformat(timespec='seconds')}/{now.isoformat(timespec='microseconds')}"
        with db.write() as s:
            ids = queue_for_recipients(s, cfg, data, prefix, now, force=True)
        rep = aio.run(deliver(cfg, db, ids=ids))
        return _report(cfg, db, ids, rep)
    finally:
        db.close()


def queue_test(db: Database, cfg: Config, now: datetime) -> list[int]:
    a = cfg.settings.alerts
    stamp = now.isoformat(timespec="microseconds")
    keys = []
    with db.write() as s:
        for r in a.recipient:
            msg = C.compose_test(r.language, a.timezone, now)
            key = C.outbox_key("test", stamp, "email", r.email)
            enqueue(s, key=key, channel="email", destination=r.email, kind="test",
                    subject=msg.subject, now=now,
                    payload={"text": msg.text, "html": msg.html, "language": r.language,
                             "message_id": C.message_id(key, a.sender)})
            keys.append(key)
        for w in a.webhook:
            msg = C.compose_test(w.language, a.timezone, now)
            dest = hook.hook_id(w)
            key = C.outbox_key("test", stamp, "webhook", dest)
            enqueue(s, key=key, channel="webhook", destination=dest, kind="test",
                    subject=msg.subject, now=now,
                    payload=C.webhook_body(key, "test", [], msg, now, w.language))
            keys.append(key)
        for chat in a.telegram:
            keys += tg.queue(s, chat, kind="test", key=tg.key("test", chat, stamp), now=now,
                             msg=C.compose_test(chat.language, a.timezone, now))
        return list(s.scalars(select(Outbox.id).where(Outbox.key.in_(keys))))


def cmd_alerts_test(cfg: Config, args: argparse.Namespace) -> int:
    """`blockwatch alerts-test`: a test message to every recipient, webhook and Telegram chat."""
    a = cfg.settings.alerts
    if not a.recipient and not a.webhook and not a.telegram:
        print(f"blockwatch alerts-test: no [[alerts.recipient]], [[alerts.webhook]] or "
              f"[[alerts.telegram]] in {cfg.source}", file=sys.stderr)
        return EXIT_USAGE
    db = open_database(cfg.database_url)
    try:
        ids = queue_test(db, cfg, datetime.now(UTC))
        rep = aio.run(deliver(cfg, db, ids=ids))
        return _report(cfg, db, ids, rep)
    finally:
        db.close()
