"""A one-line progress bar with an ETA for long commands on a terminal (`blockwatch check`).
Drawn on stderr only when stderr is a terminal: piped output and JSON stay clean."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import TextIO

from blockwatch.durations import format_duration

REDRAW = 0.1  # seconds between two redraws at most (a round reports results in bursts)


def columns(stream: TextIO, default: int = 80) -> int:
    """The terminal's width: $COLUMNS when set (as shutil.get_terminal_size reads it), else the
    terminal `stream` is on, else `default`."""
    try:
        env = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        env = 0
    if env > 0:
        return env
    try:
        return os.get_terminal_size(stream.fileno()).columns or default
    except (OSError, ValueError, AttributeError):
        return default


def bar_text(done: int, total: int, elapsed: float, width: int, label: str = "URLs") -> str:
    """"[#######·······]  37/52 URLs  24s  ETA 10s", at most `width` characters. The ETA is the
    pace so far carried over the rest ("ETA --" before the first result)."""
    done = min(done, total)
    if done and total:
        eta = f"ETA {format_duration(elapsed / done * (total - done))}"
    else:
        eta = "ETA --"
    parts = [f"{done}/{total} {label}", format_duration(elapsed), eta]
    tail = "  " + "  ".join(parts)
    inner = max(0, min(40, width - len(tail) - 2))
    if inner < 5:  # no room for a bar: as many of the numbers as fit, whole
        while len(parts) > 1 and len("  ".join(parts)) > width:
            parts.pop()
        return "  ".join(parts)[:width]
    filled = inner * done // total if total else 0
    return "[" + "#" * filled + "·" * (inner - filled) + "]" + tail


class ProgressBar:
    """Redraws `bar_text` in place on `stream` (a terminal); `close` wipes it."""

    def __init__(self, total: int, stream: TextIO, *, label: str = "URLs",
                 clock: Callable[[], float] = time.monotonic):
        self.total, self.stream, self.label, self.clock = total, stream, label, clock
        self.done = 0
        self.started = clock()
        self._drawn_at: float | None = None
        self.on_screen = False  # the bar is the text of the cursor's line now
        self._note = ""

    def advance(self, n: int = 1) -> None:
        self.done += n
        self.draw(force=self.done >= self.total)

    def note(self, text: str) -> None:
        """A phase after the counted work ("importing OONI measurements"), shown instead."""
        self._note = text
        self.draw(force=True)

    def draw(self, *, force: bool = False) -> None:
        now = self.clock()
        if not force and self._drawn_at is not None and now - self._drawn_at < REDRAW:
            return
        self._drawn_at = now
        width = columns(self.stream)
        elapsed = now - self.started
        text = (f"{self._note}  {format_duration(elapsed)}"[: width - 1] if self._note
                else bar_text(self.done, self.total, elapsed, width - 1, self.label))
        # \r and erase-to-end-of-line: the line is rewritten, never scrolled
        self.stream.write("\r" + text + "\x1b[K")
        self.stream.flush()
        self.on_screen = True

    def wipe(self) -> None:
        if self.on_screen:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.on_screen = False

    def close(self) -> None:
        self.wipe()


class _Above:
    """stderr while a bar is shown: other text (log lines, warnings) wipes the bar's line first
    and the bar is drawn again below it, so the two never run into each other."""

    def __init__(self, bar: ProgressBar, real: TextIO):
        self.bar, self.real = bar, real

    def write(self, s: str) -> int:
        self.bar.wipe()
        n = self.real.write(s)
        if s.endswith("\n"):
            self.bar.draw(force=True)
        return n

    def flush(self) -> None:
        self.real.flush()

    def __getattr__(self, name: str) -> object:
        return getattr(self.real, name)


@contextlib.contextmanager
def shown(bar: ProgressBar | None) -> Iterator[None]:
    """While inside, `bar` is on the last line of stderr (nothing when None); wiped at the end."""
    if bar is None:
        yield
        return
    real = sys.stderr
    sys.stderr = _Above(bar, real)  # type: ignore[assignment]
    try:
        bar.draw(force=True)
        yield
    finally:
        sys.stderr = real
        bar.close()
