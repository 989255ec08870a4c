"""The test suite runs on either loop: uvloop (the default where installed) and asyncio's own
(BLOCKWATCH_LOOP=asyncio), which a user may pick to rule the loop out."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import pytest_asyncio_loop_factories

ROOT = Path(__file__).resolve().parent.parent


def _kind(factory: object) -> str:
    assert callable(factory)
    loop = factory()
    try:
        assert isinstance(loop, asyncio.AbstractEventLoop)
        return type(loop).__module__.split(".")[0]
    finally:
        loop.close()


def test_the_async_tests_loop_factory_under_each_setting(
        monkeypatch: pytest.MonkeyPatch, pytestconfig: pytest.Config,
        request: pytest.FixtureRequest) -> None:
    monkeypatch.setenv("BLOCKWATCH_LOOP", "asyncio")
    got = pytest_asyncio_loop_factories(pytestconfig, request.node)
    assert got is not None and list(got) == ["loop"] and _kind(got["loop"]) == "asyncio"
    monkeypatch.delenv("BLOCKWATCH_LOOP")
    got = pytest_asyncio_loop_factories(pytestconfig, request.node)
    assert got is not None and list(got) == ["loop"]
    try:
        import uvloop  # noqa: F401
    except ImportError:
        assert _kind(got["loop"]) == "asyncio"
    else:
        assert _kind(got["loop"]) == "uvloop"


def test_the_suite_collects_and_runs_on_asyncios_loop() -> None:
    """A pytest of its own: the loop is chosen once per session, at collection."""
    env = {**os.environ, "BLOCKWATCH_LOOP": "asyncio"}
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "tests/test_aio.py"], cwd=ROOT, env=env, capture_output=True, text=True,
                       check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3 passed" in r.stdout
