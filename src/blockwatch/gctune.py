"""Fewer cyclic-GC passes for allocation-heavy work (probe rounds, collector ingest).

With the default threshold (700 allocations) the collector walks a large heap thousands of times
a minute; measured: about a tenth of a round's CPU, and half of ingest's."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def fewer_gc_passes() -> Iterator[None]:
    """Freeze what exists now (modules, config, tables: never re-scanned) and raise the
    threshold; both restored on exit."""
    old = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*old)
        gc.unfreeze()
