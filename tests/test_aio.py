"""Commands and async tests run on the same event loop (uvloop where it is installed)."""

from __future__ import annotations

import asyncio

import pytest

from blockwatch import aio


def _kind() -> str:
    return type(asyncio.get_running_loop()).__module__.split(".")[0]


async def test_async_tests_run_on_the_commands_loop() -> None:
    factory = aio.loop_factory()
    assert _kind() == ("asyncio" if factory is None else factory.__module__.split(".")[0])


def test_loop_can_be_switched_to_asyncio(monkeypatch: pytest.MonkeyPatch) -> None:
    async def kind() -> str:
        return _kind()

    monkeypatch.setenv("BLOCKWATCH_LOOP", "asyncio")
    assert aio.run(kind()) == "asyncio"
    monkeypatch.delenv("BLOCKWATCH_LOOP")
    assert aio.run(kind()) == ("uvloop" if aio.loop_factory() else "asyncio")


def test_sigint_handler_is_put_back_after_a_run() -> None:
    import signal

    async def with_handler() -> None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGINT, lambda: None)

    before = signal.getsignal(signal.SIGINT)
    aio.run(with_handler())
    assert signal.getsignal(signal.SIGINT) is before
