"""The durable record of handled messages: what makes a redelivered MQTT message a no-op.

QoS 1 delivers at least once: after a crash between scoring a message and acknowledging it, the broker
delivers it again. Each handled message's key (the score id derived from its machine, sensor and message
id) is written here, in SQLite in the work directory, before the message is acknowledged; a message whose
key is here is acknowledged and dropped. A crash after the score was queued and before this record leaves
the score store's own guard: the same derived ``score_id`` is stored once.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from vibrasense.errors import StoreError

LEDGER_FILE = "gateway-handled.db"
KEEP_DAYS = 30.0
"""Keys older than this are forgotten: a broker redelivers within a session, not a month later."""


class HandledLedger:
    """Keys of handled messages, kept on disk (SQLite, synchronous commits)."""

    def __init__(self, path: Path | str, keep_days: float = KEEP_DAYS) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("CREATE TABLE IF NOT EXISTS handled (key TEXT PRIMARY KEY, at REAL NOT NULL)")
            self._db.execute("DELETE FROM handled WHERE at < ?", (time.time() - keep_days * 86400,))
        except sqlite3.Error as error:
            raise StoreError(f"cannot open the gateway's record of handled messages {self.path}: {error}") from None

    def seen(self, key: str) -> bool:
        """Whether a message of this key was handled already."""
        with self._lock:
            return self._db.execute("SELECT 1 FROM handled WHERE key = ?", (key,)).fetchone() is not None

    def mark(self, key: str) -> None:
        """Record a message as handled, durably, before it is acknowledged."""
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO handled (key, at) VALUES (?, ?)", (key, time.time()))

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM handled").fetchone()[0])

    def close(self) -> None:
        """Release the database."""
        with self._lock:
            self._db.close()
