"""Secrets stay out of logs and output: the redaction helper, the log scrubber, and a real
failing webhook delivery and SMTP login in a subprocess whose every byte of output is searched."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from blockwatch import logs, redact
from test_alerts_support import Recorder, _auth, config_text, free_port


def test_url_userinfo_and_query_values() -> None:
    assert (redact.url("https://bw:pa55@chat.example.org:8443/hook?token=T0K&ch=ops")
            == "https://***:***@chat.example.org:8443/hook?token=***&ch=***")
    assert redact.url("https://user@h.example/p") == "https://***@h.example/p"
    assert redact.url("https://h.example/p") == "https://h.example/p"
    assert redact.url("https://[::1]:9/p?x") == "https://[::1]:9/p?x=***"
    assert redact.url("http://[broken") == "***"


def test_source_names_only_the_host() -> None:
    slack = "https://hooks.slack.com/services/T0/B0/SECRETPATH"
    assert redact.source(slack, env="SLACK_HOOK") == "hooks.slack.com (from $SLACK_HOOK)"
    assert redact.source(None, file="/etc/bw/hook") == "(from /etc/bw/hook)"


def test_urls_in_free_text() -> None:
    text = 'POST "https://a:b@x.example/p?k=v" failed; see https://docs.example/faq'
    assert redact.urls_in(text) == ('POST "https://***:***@x.example/p?k=***" failed; '
                                    "see https://docs.example/faq")


@pytest.fixture
def scrubbed() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    redact.forget_all()
    root.handlers[:], root.level = handlers, level  # not left writing to a closed capture


def test_log_lines_are_scrubbed_text_and_json(capsys: pytest.CaptureFixture[str],
                                              scrubbed: None) -> None:
    secret = 'pa"ss\\wörd-42'
    redact.register(secret)
    redact.register("https://hooks.example/services/ABC", "hooks.example (from $H)")
    for fmt in ("text", "json"):
        logs.setup(logging.INFO, fmt)
        log = logging.getLogger("blockwatch.test")
        log.info("login with %s to https://hooks.example/services/ABC/x", secret)
        try:
            raise RuntimeError(f"refused {secret}")
        except RuntimeError:
            log.exception("failed")
        err = capsys.readouterr().err
        assert "wörd-42" not in err and "services/ABC" not in err, err
        assert "hooks.example (from $H)/x" in err and err.count("***") >= 2
        if fmt == "json":
            assert all(json.loads(line) for line in err.splitlines())


# --- end to end ----------------------------------------------------------------------------------

SECRETS = {
    "BW_HOOK_URL": "http://127.0.0.1:{closed}/services/T0SECRET/B0SECRET/xoxSECRETPATH",
    "BW_SMTP_USER": "bw-user",
    "BW_SMTP_PASSWORD": "wr0ng-Pa55phrase",
}


@pytest.fixture
def smtp_auth() -> Iterator[int]:
    """AUTH required over a plain connection (loopback): any login but bw-user:s3cret fails."""
    port = free_port()
    c = Controller(Recorder(), hostname="127.0.0.1", port=port, authenticator=_auth,
                   auth_required=True, auth_require_tls=False)
    c.start()
    try:
        yield port
    finally:
        c.stop()


def _run(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "blockwatch", "--config",
                           str(tmp_path / "blockwatch.toml"), *args],
                          capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_failing_webhooks_and_smtp_login_leak_nothing(tmp_path: Path, smtp_auth: int) -> None:
    closed = free_port()  # nothing listens: every webhook attempt fails
    inline = f"http://bw:pa55word-inline@127.0.0.1:{closed}/hook?token=T0KEN-inline"
    env = {**os.environ, **{k: v.format(closed=closed) for k, v in SECRETS.items()}}
    webhooks = (f'[[alerts.webhook]]\nurl = "{inline}"\n\n'
                '[[alerts.webhook]]\nurl_env = "BW_HOOK_URL"\n')
    (tmp_path / "blockwatch.toml").write_text(config_text(
        smtp_auth, extra='smtp_username_env = "BW_SMTP_USER"\n'
                         'smtp_password_env = "BW_SMTP_PASSWORD"',
        recipients='[[alerts.recipient]]\nemail = "desk@example.org"\n', webhooks=webhooks)
        + "[asn]\nenabled = false\n")
    outputs: list[str] = []
    for args in (("-v", "alerts-test"), ("-vv", "--log-format", "json", "alerts-test")):
        r = _run(tmp_path, env, *args)
        assert r.returncode == 75, r.stderr  # queued for retry, not delivered
        outputs.append(r.stdout + r.stderr)
    text = "\n".join(outputs)
    # the failures did happen and are explained...
    assert "login refused" in text and "535" in text
    assert f"https://***:***@127.0.0.1:{closed}/hook?token=***".replace("https", "http") in text
    assert "127.0.0.1 (from $BW_HOOK_URL)" in text and "ConnectError" in text
    # ...and no secret is in any of it
    for secret in ("pa55word-inline", "T0KEN-inline", "SECRETPATH", "T0SECRET",
                   SECRETS["BW_SMTP_PASSWORD"]):
        assert secret not in text, secret
    # nor in the outbox's keys, destinations and bodies (the URL-in-config one included)
    db = sqlite3.connect(tmp_path / "blockwatch.db")
    rows: list[Any] = db.execute("SELECT key, destination, payload, last_error FROM outbox"
                                 " WHERE channel = 'webhook'").fetchall()
    db.close()
    assert len(rows) == 4
    stored = json.dumps(rows)
    assert f"{closed}/hook" not in "".join(r[0] + r[1] for r in rows)  # keys: a hash, no URL
    for secret in ("pa55word-inline", "T0KEN-inline", "SECRETPATH", "T0SECRET"):
        assert secret not in stored, secret


def test_telegram_bot_tokens_are_known_from_the_start(tmp_path: Path, scrubbed: None,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A bot token sits in the request URL's path (which httpx logs): the scrubber knows it as
    soon as the config is loaded, before any message is sent."""
    from blockwatch.alerts.webhook import register_secrets
    from blockwatch.config import load

    token = "123456789:AAEhBOweik6ad6PsWjpQ5l0x9Cwq_ut1rZk"
    monkeypatch.setenv("BW_TG", token)
    path = tmp_path / "blockwatch.toml"
    path.write_text('[[alerts.telegram]]\nchat_id = "-1001234567890"\nbot_token_env = "BW_TG"\n',
                    encoding="utf-8")
    register_secrets(load(path))
    line = redact.scrub(f"HTTP Request: POST https://api.telegram.org/bot{token}/sendMessage")
    assert token not in line
    assert "api.telegram.org" in line
