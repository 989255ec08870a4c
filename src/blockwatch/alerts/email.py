"""SMTP delivery with the standard library, run in a worker thread.

The DATA phase is written out by hand (instead of `smtplib.sendmail`) so the outbox can record the
point of no return: the message body is on the wire, but until the final "." the server cannot
accept it, and a dropped connection makes it discard the message. `before_commit` runs just
before that final "." and `on_accepted` immediately after the server's 250, before QUIT or
anything else that could fail.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.policy import Policy
from email.utils import format_datetime
from typing import Any

from blockwatch import redact
from blockwatch.config import Config

TIMEOUT = 60.0
# 530/534/535/538: authentication problems are configuration the operator will fix; retry.
AUTH_CODES = {530, 534, 535, 538}


class DeliveryError(Exception):
    """A delivery that did not happen. `permanent`: do not retry. `uncertain`: the message was
    handed over and the server's answer was lost (it may have been accepted)."""

    def __init__(self, message: str, *, permanent: bool = False, uncertain: bool = False):
        super().__init__(message)
        self.permanent = permanent
        self.uncertain = uncertain


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: str  # none | starttls | tls
    sender: str
    username: str | None = None
    password: str | None = None
    timeout: float = TIMEOUT
    ssl_context: ssl.SSLContext | None = None


def smtp_settings(cfg: Config, *, ssl_context: ssl.SSLContext | None = None) -> SmtpSettings:
    """Settings with credentials resolved now; SecretError names a missing variable or file."""
    a = cfg.settings.alerts
    user = cfg.secret(a, "smtp_username", "alerts")
    password = cfg.secret(a, "smtp_password", "alerts")
    redact.register(user)  # the log scrubber's safety net: never shown, whoever logs them
    redact.register(password)
    return SmtpSettings(a.smtp_host, a.smtp_port, a.smtp_security, a.sender, user, password,
                        ssl_context=ssl_context)


def build_message(*, sender: str, to: str, subject: str, text: str, html: str, message_id: str,
                  date: Any, lang: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = message_id
    # RFC 3834: vacation responders and ticket systems must not answer (or loop)
    msg["Auto-Submitted"] = "auto-generated"
    # quoted-printable keeps Cyrillic 7-bit clean for servers without 8BITMIME
    msg.set_content(text, cte="quoted-printable")
    msg.add_alternative(html, subtype="html", cte="quoted-printable")
    msg["Content-Language"] = lang  # after the parts: making multipart moves Content-* down
    return msg


def _policy(msg: EmailMessage) -> Policy:
    # The stdlib folder sometimes breaks an ASCII subject right after "Subject:", which readers
    # show with a leading space; ASCII subjects (at most 160 characters) need no folding, and
    # RFC 5322 allows 998. Non-ASCII ones become encoded words, folded at 78 as usual.
    if str(msg["Subject"]).isascii():
        return SMTP_POLICY.clone(max_line_length=998)
    return SMTP_POLICY


def _quote_periods(data: bytes) -> bytes:
    return re.sub(rb"(?m)^\.", b"..", data)


def _reply_error(stage: str, code: int, reply: bytes | str) -> DeliveryError:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    permanent = code >= 500 and code not in AUTH_CODES
    return DeliveryError(f"SMTP {stage}: {code} {text}".strip(), permanent=permanent)


def _connect(st: SmtpSettings) -> smtplib.SMTP:
    ctx = st.ssl_context or ssl.create_default_context()
    if st.security == "tls":
        conn: smtplib.SMTP = smtplib.SMTP_SSL(st.host, st.port, timeout=st.timeout, context=ctx)
    else:
        conn = smtplib.SMTP(st.host, st.port, timeout=st.timeout)
    try:
        conn.ehlo()
        if st.security == "starttls":
            if not conn.has_extn("starttls"):
                raise DeliveryError(f"{st.host}:{st.port} does not offer STARTTLS; set "
                                    "alerts.smtp_security to \"tls\" or (on a trusted link) \"none\"")
            conn.starttls(context=ctx)
            conn.ehlo()
        if st.username is not None or st.password is not None:
            conn.login(st.username or "", st.password or "")
    except BaseException:
        conn.close()
        raise
    return conn


def send(st: SmtpSettings, msg: EmailMessage, *, before_commit: Callable[[], None],
         on_accepted: Callable[[], None]) -> None:
    """Deliver one message to its one recipient. Raises DeliveryError on failure."""
    to = str(msg["To"])
    try:
        conn = _connect(st)
    except DeliveryError:
        raise
    except smtplib.SMTPAuthenticationError as exc:
        raise DeliveryError(f"SMTP login refused: {exc.smtp_code} "
                            f"{exc.smtp_error.decode('utf-8', 'replace')}") from None
    except smtplib.SMTPResponseException as exc:
        raise _reply_error("connect", exc.smtp_code, exc.smtp_error) from None
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryError(f"cannot reach the SMTP server {st.host}:{st.port}: "
                            f"{type(exc).__name__}: {exc}") from None
    handed_over = False
    try:
        code, reply = conn.mail(st.sender)
        if code != 250:
            raise _reply_error("MAIL FROM", code, reply)
        code, reply = conn.rcpt(to)
        if code not in (250, 251):
            raise _reply_error(f"RCPT TO {to}", code, reply)
        conn.putcmd("data")
        code, reply = conn.getreply()
        if code != 354:
            raise _reply_error("DATA", code, reply)
        body = _quote_periods(msg.as_bytes(policy=_policy(msg)))
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        conn.send(body)
        before_commit()  # from here on the server may accept at any moment
        handed_over = True
        conn.send(b".\r\n")
        code, reply = conn.getreply()
        if code != 250:
            raise _reply_error("end of data", code, reply)
        on_accepted()  # recorded before QUIT, which may fail and does not matter any more
    except DeliveryError:
        conn.close()
        raise
    except (OSError, smtplib.SMTPException) as exc:
        conn.close()
        what = f"{type(exc).__name__}: {exc}"
        if handed_over:
            raise DeliveryError(f"the SMTP server's answer to the message was lost ({what})",
                                uncertain=True) from None
        raise DeliveryError(f"SMTP conversation with {st.host}:{st.port} failed: {what}") from None
    except BaseException:
        # before_commit failed (database) or we are being stopped: drop the connection without
        # the final "." so the server discards the message
        conn.close()
        raise
    try:
        conn.quit()
    except (OSError, smtplib.SMTPException):
        conn.close()
