"""The event loop every command runs on: uvloop where it is installed (Linux and macOS), else
asyncio's own. A probe round is mostly event-loop work (thousands of connections, datagrams and
TLS records); uvloop does that work in C and cut a `check` round's CPU by about an eighth.
Set BLOCKWATCH_LOOP=asyncio to use asyncio's loop (to rule the loop out when debugging)."""

from __future__ import annotations

import asyncio
import os
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
    """`asyncio.run` on the chosen loop."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
