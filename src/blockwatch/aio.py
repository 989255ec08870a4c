"""The event loop every command runs on: uvloop where it is installed (Linux and macOS), else
asyncio's own. A probe round is mostly event-loop work (thousands of connections, datagrams and
TLS records); uvloop does that work in C and cut a `check` round's CPU by about an eighth.
Set BLOCKWATCH_LOOP=asyncio to use asyncio's loop (to rule the loop out when debugging)."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    if os.environ.get("BLOCKWATCH_LOOP", "").lower() == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop  # type: ignore[no-any-return]


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run` on the chosen loop. The SIGINT handler is put back afterwards: uvloop,
    unlike asyncio, leaves a handler that a coroutine added bound to the closed loop, and Ctrl-C
    would then be ignored for the rest of the process."""
    main_thread = threading.current_thread() is threading.main_thread()
    before = signal.getsignal(signal.SIGINT) if main_thread else None
    try:
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            return runner.run(main)
    finally:
        if main_thread and before is not None:
            signal.signal(signal.SIGINT, before)
