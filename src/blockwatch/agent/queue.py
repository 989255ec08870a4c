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
REJECTED_MAX = 10_000


def default_path() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "blockwatch-agent" / "queue.db"


class Queue:
    def __init__(self, path: str | os.PathLike[str], *, max_items: int = DEFAULT_MAX):
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # measurements say where the volunteer is: the owner's only (-wal/-shm inherit the mode)
        os.close(os.open(p, os.O_RDWR | os.O_CREAT, 0o600))
        self.max_items = max_items
        self.db = sqlite3.connect(str(p), isolation_level=None, timeout=10)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS queue (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
                        "uid TEXT UNIQUE NOT NULL, body TEXT NOT NULL, queued_at REAL NOT NULL)")
        self.db.execute("CREATE TABLE IF NOT EXISTS plan (id INTEGER PRIMARY KEY CHECK (id = 1), "
                        "body TEXT NOT NULL, saved_at REAL NOT NULL)")
        # measurements the collector refused for what they are (resending cannot help): kept
        # aside for whoever looks into it, out of the way of the rest
        self.db.execute("CREATE TABLE IF NOT EXISTS rejected (seq INTEGER PRIMARY KEY "
                        "AUTOINCREMENT, uid TEXT NOT NULL, body TEXT NOT NULL, error TEXT NOT NULL, "
                        "rejected_at REAL NOT NULL)")

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
        try:
            body = json.dumps(measurement, separators=(",", ":"), allow_nan=False)
        except ValueError:  # NaN or Infinity: not JSON, the collector would refuse it
            log.error("measurement %s holds a number that is not JSON: set aside",
                      measurement.get("uid"))
            self._set_aside([(str(measurement.get("uid")), json.dumps(measurement),
                              "NaN or Infinity in the measurement (not sent)")])
            return
        self.db.execute("INSERT OR IGNORE INTO queue (uid, body, queued_at) VALUES (?, ?, ?)",
                        (measurement["uid"], body, time.time()))
        self._trim()

    def _trim(self) -> None:
        over = len(self) - self.max_items
        if over > 0:
            self.db.execute("DELETE FROM queue WHERE seq IN "
                            "(SELECT seq FROM queue ORDER BY seq LIMIT ?)", (over,))
            log.error("the queue is full (%d measurements): dropped the %d oldest undelivered",
                      self.max_items, over)
        cutoff = time.time() - MAX_AGE.total_seconds()
        oldest = self.db.execute("SELECT queued_at FROM queue ORDER BY seq LIMIT 1").fetchone()
        if oldest is None or oldest[0] >= cutoff:  # the usual case: one primary-key lookup
            return
        cur = self.db.execute("DELETE FROM queue WHERE queued_at < ?", (cutoff,))
        if cur.rowcount > 0:
            log.error("dropped %d undelivered measurements older than %d days (the collector "
                      "refuses them)", cur.rowcount, MAX_AGE.days)

    def reject(self, refused: dict[int, str]) -> None:
        """Move queued measurements (seq -> the collector's reason) to the rejected table."""
        if not refused:
            return
        self.db.execute("BEGIN")
        try:
            for seq, error in refused.items():
                row = self.db.execute("SELECT uid, body FROM queue WHERE seq = ?", (seq,)).fetchone()
                if row is not None:
                    self._set_aside([(row[0], row[1], error)])
                    self.db.execute("DELETE FROM queue WHERE seq = ?", (seq,))
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def _set_aside(self, rows: list[tuple[str, str, str]]) -> None:
        now = time.time()
        self.db.executemany("INSERT INTO rejected (uid, body, error, rejected_at) VALUES (?, ?, ?, ?)",
                            [(uid, body, error[:1000], now) for uid, body, error in rows])
        # bounded like the queue: the newest refusals are the ones worth reading
        self.db.execute("DELETE FROM rejected WHERE seq <= (SELECT max(seq) FROM rejected) - ?",
                        (REJECTED_MAX,))

    def rejected(self) -> list[tuple[str, str]]:
        """(uid, the collector's reason) of the measurements set aside, oldest first."""
        return list(self.db.execute("SELECT uid, error FROM rejected ORDER BY seq"))

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
