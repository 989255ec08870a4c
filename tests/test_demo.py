"""`blockwatch demo` as a newcomer runs it: a subprocess on what a base install has (no test,
postgres or server extra importable), then its printed paths, the status site and the digest."""

from __future__ import annotations

import errno
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from blockwatch.cli import main

# what `pip install -e .` does not install: the test extras and the optional groups
NOT_IN_BASE = ["pytest", "_pytest", "pytest_asyncio", "respx", "aiosmtpd", "hypothesis",
               "schemathesis", "psycopg", "fastapi", "uvicorn", "starlette"]
BLOCKER = f"""
import sys

BLOCKED = {NOT_IN_BASE!r}


class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{{name}} is not in a base install (blocked by the test)")
        return None


sys.meta_path.insert(0, Blocker())
"""

# outlet -> (the index's state class, the status.json state)
EXPECTED = {
    "Open Herald": ("o", "ok"),
    "DNS Gazette": ("b", "dns"),
    "IP-blocked Times": ("b", "tcp_ip"),
    "TLS Reset News": ("b", "tls"),
    "Intercepted Review": ("b", "tls"),
    "Blockpage Weekly": ("b", "http_blockpage"),
    "Changed Page Post": ("i", "http_diff"),
    "Throttled Tribune": ("t", "throttled"),
    "Offline Observer": ("d", "down"),
}


def base_env(tmp: Path) -> dict[str, str]:
    (tmp / "blocker").mkdir()
    (tmp / "blocker" / "sitecustomize.py").write_text(BLOCKER, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BLOCKWATCH_", "PYTHON"))}
    env["PYTHONPATH"] = str(tmp / "blocker")
    return env


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("demo")
    env = base_env(tmp)
    run = subprocess.run([sys.executable, "-X", "importtime", "-m", "blockwatch", "demo",
                          "--out", "out"], cwd=tmp, env=env, capture_output=True, text=True,
                         timeout=300)
    return {"tmp": tmp, "env": env, "run": run, "out": tmp / "out"}


def printed(stdout: str, label: str) -> Path:
    found = re.findall(rf"^{label}:\s+(\S.*)$", stdout, re.M)
    assert len(found) == 1, stdout
    return Path(found[0])


def test_demo_shows_every_verdict(demo: dict[str, Any]) -> None:
    run, out = demo["run"], demo["out"]
    assert run.returncode == 0, run.stderr[-3000:]
    site, digest = printed(run.stdout, "status site"), printed(run.stdout, "digest")
    assert site.is_absolute() and digest.is_absolute()
    assert site == out.resolve() / "site" / "index.html" and site.is_file()
    assert digest.parent == out.resolve() / "digest" and digest.suffix == ".html" and digest.is_file()
    # the round's table: every outlet with its verdict, the interception certificate confirmed
    rows = {ln.split("  ")[0]: ln for ln in run.stdout.splitlines()}
    for name, (_cls, state) in EXPECTED.items():
        assert re.search(rf"\s{state}\b", rows[name]), rows[name]
    assert "tls (confirmed)" in rows["Intercepted Review"]
    assert "http_blockpage (confirmed)" in rows["Blockpage Weekly"]

    index = site.read_text(encoding="utf-8")
    for name, (cls, _state) in EXPECTED.items():
        row = re.search(rf'<tr id="[^"]+"><th scope="row"><a [^>]+>{re.escape(name)}</a>.*?</tr>',
                        index, re.S)
        assert row, name
        assert f'<td class="{cls}">' in row[0], (name, row[0])
    status = {t["name"]: t for t in json.loads((site.parent / "status.json").read_text())["targets"]}
    assert {n: t["state"] for n, t in status.items()} == {n: s for n, (_c, s) in EXPECTED.items()}
    # two rounds, confirm_after = 2: every state is an event with a start ("blocked since"),
    # nothing pending; "confirmed" is the evidence's word (a fingerprint, a state CA)
    for name, (_cls, state) in EXPECTED.items():
        (v,) = status[name]["vantages"]
        assert (v["last_confirmed_state"], v["pending"]) == (state, None), v
        assert status[name]["since"] and not v["stale"], v
    assert {n for n, t in status.items() if t["confirmed"]} == {"Intercepted Review", "Blockpage Weekly"}
    outlet = (site.parent / status["Intercepted Review"]["page"]).read_text(encoding="utf-8")
    assert "TLS (SNI) interference · confirmed · since" in outlet
    text = digest.with_suffix(".txt").read_text(encoding="utf-8")
    assert "Intercepted Review" in text and "Information Security Certification Authority" in text
    assert "down everywhere (not censorship)" in text
    # the folder keeps a config any other command can read
    assert (out / "blockwatch.toml").is_file() and (out / "lab-ca.pem").is_file()


def test_demo_site_is_in_every_language_the_product_ships(demo: dict[str, Any]) -> None:
    from blockwatch.site.i18n import LANG_NAMES

    assert demo["run"].returncode == 0, demo["run"].stderr[-3000:]
    site = demo["out"] / "site"
    assert set(LANG_NAMES) == {"en", "ru", "kk"}
    index = (site / "index.html").read_text(encoding="utf-8")
    for lang in LANG_NAMES:
        page = (site / lang / "index.html").read_text(encoding="utf-8")
        assert f'<html lang="{lang}"' in page
        if lang != "en":  # the English root links the others
            assert f'hreflang="{lang}" href="{lang}/index.html"' in index
    assert "Intercepted Review" in (site / "kk" / "index.html").read_text(encoding="utf-8")


def test_demo_needs_no_extra(demo: dict[str, Any]) -> None:
    run, env = demo["run"], demo["env"]
    assert run.returncode == 0, run.stderr[-3000:]
    # the blocker was in force in that environment ...
    for name in ("pytest", "respx", "aiosmtpd"):
        probe = subprocess.run([sys.executable, "-c", f"import {name}"], env=env, cwd=demo["tmp"],
                               capture_output=True, text=True, timeout=60)
        assert probe.returncode != 0 and "not in a base install" in probe.stderr
    # ... and the demo did not even try one (-X importtime lists every import)
    imported = {m.group(1).split(".")[0]
                for m in re.finditer(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)", run.stderr, re.M)}
    assert "blockwatch.lab" in run.stderr and "trustme" in imported
    assert not imported & set(NOT_IN_BASE)
    assert "Traceback" not in run.stderr


def test_out_must_be_new(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "keep.txt").write_text("mine", encoding="utf-8")
    assert main(["demo", "--out", str(tmp_path)]) == 2
    assert "not an empty folder" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_without_loopback_aliases_it_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """What macOS does: 127.0.0.1 is there, the rest of 127.0.0.0/8 is not."""
    real_bind = socket.socket.bind

    def bind(self: socket.socket, address: Any) -> None:
        if isinstance(address, tuple) and address[0].startswith("127.") and address[0] != "127.0.0.1":
            raise OSError(errno.EADDRNOTAVAIL, os.strerror(errno.EADDRNOTAVAIL))
        real_bind(self, address)

    monkeypatch.setattr(socket.socket, "bind", bind)
    assert main(["demo", "--out", str(tmp_path / "d")]) == 1
    err = capsys.readouterr().err
    assert "cannot bind the loopback address 127.0.2.1" in err and "127.0.0.0/8" in err
    assert not (tmp_path / "d").exists()
