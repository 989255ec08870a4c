"""The agent's outbox: every measurement is written here first and deleted only once the
collector acknowledged it, so an offline week or a crash loses nothing and a re-delivery is
only a duplicate the collector recognises by its uid. stdlib sqlite3: the ORM is not needed
for one table."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_MAX = 100_000  # ~a week of 200 targets every 15 min; a Pi's SD card is not endless
# The oldest measurement worth delivering: the collector refuses older ones (they would be judged
# against today's controls and could rewrite what is known of that week).
MAX_AGE = timedelta(days=7)


def default_path() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "blockwatch-agent" / "queue.db"


class Queue:
    def __init__(self, path: str | os.PathLike[str], *, max_items: int = DEFAULT_MAX):
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.max_items = max_items
        self.db = sqlite3.connect(str(p), isolation_level=None, timeout=10)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS queue (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
                        "uid TEXT UNIQUE NOT NULL, body TEXT NOT NULL, queued_at REAL NOT NULL)")
        self.db.execute("CREATE TABLE IF NOT EXISTS plan (id INTEGER PRIMARY KEY CHECK (id = 1), "
                        "body TEXT NOT NULL, saved_at REAL NOT NULL)")

    def save_plan(self, plan: dict[str, Any]) -> None:
        """The collector's last target list: measured from while the collector is unreachable."""
        self.db.execute("INSERT OR REPLACE INTO plan (id, body, saved_at) VALUES (1, ?, ?)",
                        (json.dumps(plan), time.time()))

    def load_plan(self) -> dict[str, Any] | None:
        row = self.db.execute("SELECT body FROM plan WHERE id = 1").fetchone()
        return json.loads(row[0]) if row else None

    def close(self) -> None:
        self.db.close()

    def put(self, measurement: dict[str, Any]) -> None:
        self.db.execute("INSERT OR IGNORE INTO queue (uid, body, queued_at) VALUES (?, ?, ?)",
                        (measurement["uid"], json.dumps(measurement, separators=(",", ":")),
                         time.time()))
        self._trim()

    def _trim(self) -> None:
        over = len(self) - self.max_items
        if over > 0:
            self.db.execute("DELETE FROM queue WHERE seq IN "
                            "(SELECT seq FROM queue ORDER BY seq LIMIT ?)", (over,))
            log.error("the queue is full (%d measurements): dropped the %d oldest undelivered",
                      self.max_items, over)

    def __len__(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM queue").fetchone()[0])

    def oldest(self, n: int) -> list[tuple[int, str]]:
        """The n oldest (seq, JSON text), in the order they were measured."""
        return list(self.db.execute("SELECT seq, body FROM queue ORDER BY seq LIMIT ?", (n,)))

    def remove(self, seqs: list[int]) -> None:
        self.db.execute("BEGIN")
        try:
            self.db.executemany("DELETE FROM queue WHERE seq = ?", [(s,) for s in seqs])
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")
