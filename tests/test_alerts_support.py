"""Shared pieces for the alerts tests (no tests here): a real SMTP server in this process
(aiosmtpd on 127.0.0.1, free port picked first: aiosmtpd refuses port 0), configs and database scenarios."""

from __future__ import annotations

import email
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from blockwatch.config import Config
from blockwatch.storage import Database
from blockwatch.storage.models import (
    Case,
    Event,
    Feed,
    FeedEntry,
    Incident,
    Target,
    UrlState,
    Vantage,
    Verdict,
)

T0 = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)  # 09:00 in Almaty
HOSTILE_TITLE = 'Ratel blocked <script>alert("x")</script> "><img src=x onerror=alert(1)>'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Recorder:
    """An aiosmtpd handler: records accepted messages; `replies` answer DATA first (e.g. 451)."""

    replies: list[str] = field(default_factory=list)
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[Any] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.replies:
            return self.replies.pop(0)
        self.envelopes.append(envelope)
        self.messages.append(email.message_from_bytes(envelope.original_content,
                                                      policy=default_policy))  # type: ignore[arg-type]
        return "250 OK"


@dataclass
class SmtpServer:
    host: str
    port: int
    handler: Recorder
    ca_pem: Path | None = None


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    handler = Recorder()
    port = free_port()
    c = Controller(handler, hostname="127.0.0.1", port=port)
    c.start()
    try:
        yield SmtpServer("127.0.0.1", port, handler)
    finally:
        c.stop()


USERS = {"bw-user": "s3cret"}


def _auth(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and USERS.get(data.login.decode()) == data.password.decode()
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp_starttls(tmp_path: Path) -> Iterator[SmtpServer]:
    """STARTTLS required, AUTH LOGIN/PLAIN required, with a trustme certificate for 127.0.0.1."""
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    pem = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(pem))
    handler = Recorder()
    port = free_port()
    c = Controller(handler, hostname="127.0.0.1", port=port, tls_context=server_ctx,
                   require_starttls=True, authenticator=_auth, auth_required=True)
    c.start()
    try:
        yield SmtpServer("127.0.0.1", port, handler, pem)
    finally:
        c.stop()


# one recipient per language, and a site in all three (tests of every language's output)
RECIPIENTS_3 = """
[[alerts.recipient]]
email = "desk@example.org"
language = "en"

[[alerts.recipient]]
email = "ru@example.org"
language = "ru"

[[alerts.recipient]]
email = "kk@example.org"
language = "kk"
"""
SITE_3 = '\n[site]\nlanguages = ["en", "ru", "kk"]\n'


def config_text(port: int, *, security: str = "none", extra: str = "", recipients: str | None = None,
                webhooks: str = "") -> str:
    if recipients is None:
        recipients = """
[[alerts.recipient]]
email = "desk@example.org"
language = "en"

[[alerts.recipient]]
email = "ru@example.org"
language = "ru"
targets = ["Ratel.kz"]
"""
    return f"""
[storage]
url = "sqlite:///blockwatch.db"

[[vantage]]
name = "vps"
kind = "local"

[[vantage]]
name = "almaty-1"
kind = "agent"
country = "KZ"
token_sha256 = "{'0' * 64}"

[alerts]
smtp_host = "127.0.0.1"
smtp_port = {port}
smtp_security = "{security}"
sender = "blockwatch@example.org"
timezone = "Asia/Almaty"
digest_at = "07:00"
group_window = "5m"
{extra}
{recipients}
{webhooks}
"""


# --- scenario rows -----------------------------------------------------------------------------

def add_target(db: Database, name: str, url: str, country: str = "KZ") -> int:
    with db.write() as s:
        t = Target(name=name, country=country, category="NEWS", urls=[url], aliases=[])
        s.add(t)
        s.flush()
        return t.id


def add_vantage(db: Database, name: str, kind: str = "agent", country: str = "KZ",
                last_seen_at: datetime | None = None) -> int:
    with db.write() as s:
        v = Vantage(name=name, kind=kind, country=country, created_at=T0 - timedelta(days=30),
                    last_seen_at=last_seen_at)
        s.add(v)
        s.flush()
        return v.id


def add_event(db: Database, target_id: int | None, vantage_id: int, url: str, state: str,
              previous: str | None, at: datetime, *, reason: str = "", confirmed: bool = False,
              with_state: bool = True) -> int:
    """An event plus (optionally) the url_state and latest verdict that go with it."""
    with db.write() as s:
        e = Event(target_id=target_id, vantage_id=vantage_id, url=url, state=state,
                  previous=previous, confirmed=confirmed, reason=reason,
                  started_at=at - timedelta(minutes=15), detected_at=at)
        s.add(e)
        s.flush()
        if with_state:
            from blockwatch.storage.models import Measurement

            m = Measurement(uid=f"m{e.id}", target_id=target_id, vantage_id=vantage_id, url=url,
                            measured_at=at, evidence={}, evidence_sha256="0" * 64)
            s.add(m)
            s.flush()
            v = Verdict(measurement_id=m.id, target_id=target_id, vantage_id=vantage_id, url=url,
                        verdict=state, confirmed=confirmed, reason=reason, measured_at=at)
            s.add(v)
            s.flush()
            st = s.get(UrlState, (url, vantage_id))
            if st is None:
                st = UrlState(url=url, vantage_id=vantage_id, pending_count=0, updated_at=at)
                s.add(st)
            st.target_id, st.state, st.since = target_id, state, e.started_at
            st.event_id, st.last_verdict_id, st.last_seen_at = e.id, v.id, at
        return e.id


def still_measured(db: Database, vantage_id: int, url: str, at: datetime) -> None:
    """The latest verdict of `url` at the vantage repeated until `at` (its state unchanged)."""
    with db.write() as s:
        st = s.get(UrlState, (url, vantage_id))
        assert st is not None and st.last_verdict_id is not None
        s.get(Verdict, st.last_verdict_id).repeated_until = at  # type: ignore[union-attr]
        st.last_seen_at = at


def add_incident(db: Database, *, title: str, link: str, outlets: list[str], at: datetime,
                 event_id: int | None = None, feed: str = "Adil Soz") -> int:
    with db.write() as s:
        f = s.query(Feed).filter_by(name=feed).one_or_none()
        if f is None:
            f = Feed(name=feed, url="https://example.org/feed", language="ru",
                     consecutive_failures=0)
            s.add(f)
            s.flush()
        en = FeedEntry(feed_id=f.id, entry_key=title[:200] + str(at), title=title, link=link,
                       summary="", published_at=at, first_seen_at=at, content_sha256="0" * 64)
        s.add(en)
        s.flush()
        inc = Incident(entry_id=en.id, types=["blocking"], outlets=outlets, people=[],
                       occurred_at=at, created_at=at)
        s.add(inc)
        s.flush()
        if event_id is not None:
            s.add(Case(incident_id=inc.id, event_id=event_id, created_at=at))
        return inc.id


def parts(msg: EmailMessage) -> tuple[str, str]:
    """(text, html) of a multipart/alternative message."""
    assert msg.get_content_type() == "multipart/alternative"
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None and html is not None
    return str(text.get_content()), str(html.get_content())


def cfg_for(write_config: Any, server: SmtpServer, **kw: Any) -> Config:
    return write_config(config_text(server.port, **kw))  # type: ignore[no-any-return]
