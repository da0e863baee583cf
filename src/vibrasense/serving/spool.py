"""The score spool: a durable first-in first-out queue of verdicts in a local SQLite file.

Every verdict the service answers goes through it on its way to the score store, so a database that is
down, frozen or slow never costs a score and never grows the service's memory: verdicts wait on disk, in
the order they were answered, until the database has confirmed them. The spool survives a restart (what a
stopped service had not written is written by the next one). One process uses a spool at a time: it holds
an exclusive lock on ``<spool>.lock`` while it is open.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

from vibrasense.errors import StoreError


class ScoreSpool:
    """Rows (JSON-serialisable dicts with a ``score_id``) appended in order, read from the head, then removed."""

    def __init__(self, path: Path | str, max_rows: int = 1_000_000) -> None:
        self.path = Path(path)
        self.max_rows = max_rows
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self._lock_file: int | None = None
        self._count = 0

    def open(self) -> ScoreSpool:
        """Create or reopen the spool file and take its lock; rows left by an earlier run are kept."""
        if self._connection is not None:
            return self
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            lock_file = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise StoreError(f"score spool {self.path} cannot be created: {error.strerror}") from None
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(lock_file)
            raise StoreError(
                f"score spool {self.path} is in use by another process; give each service its own workdir"
            ) from None
        try:
            connection = sqlite3.connect(self.path, timeout=10, check_same_thread=False, isolation_level=None)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")  # a spooled verdict survives a power cut
            connection.execute(
                "CREATE TABLE IF NOT EXISTS spool "
                "(seq INTEGER PRIMARY KEY AUTOINCREMENT, score_id TEXT NOT NULL UNIQUE, row TEXT NOT NULL)"
            )
            (self._count,) = connection.execute("SELECT count(*) FROM spool").fetchone()
        except sqlite3.Error as error:
            os.close(lock_file)
            raise StoreError(f"score spool {self.path} is unusable: {error}; move it aside") from None
        self._connection, self._lock_file = connection, lock_file
        return self

    def __len__(self) -> int:
        return self._count

    def append(self, rows: list[dict[str, Any]]) -> int:
        """Append rows at the tail in one transaction; returns how many fit under ``max_rows``."""
        with self._lock:
            kept = rows[: max(0, self.max_rows - self._count)]
            if kept:
                # a verdict spooled twice (same score_id) is kept once
                self._count += self._execute_many(
                    "INSERT OR IGNORE INTO spool (score_id, row) VALUES (?, ?)",
                    [(row["score_id"], json.dumps(row, default=str)) for row in kept],
                )
            return len(kept)

    def head(self, limit: int) -> list[tuple[int, dict[str, Any]]]:
        """The oldest ``limit`` rows with their sequence numbers, oldest first."""
        with self._lock:
            try:
                found = self._require().execute("SELECT seq, row FROM spool ORDER BY seq LIMIT ?", (limit,)).fetchall()
            except sqlite3.Error as error:
                raise self._error("cannot be read", error) from None
        return [(seq, json.loads(row)) for seq, row in found]

    def remove(self, up_to: int) -> None:
        """Remove every row up to sequence number ``up_to`` (the database has confirmed them)."""
        with self._lock:
            try:
                removed = self._require().execute("DELETE FROM spool WHERE seq <= ?", (up_to,)).rowcount
            except sqlite3.Error as error:
                raise self._error("cannot be written", error) from None
            self._count = max(0, self._count - removed)

    def close(self) -> None:
        """Close the file and release the lock; unconfirmed rows stay for the next run."""
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
            if self._lock_file is not None:
                os.close(self._lock_file)
                self._lock_file = None

    def _execute_many(self, statement: str, values: list[tuple[Any, ...]]) -> int:
        """Run ``statement`` for every value in one transaction; returns the rows changed."""
        connection = self._require()
        try:
            before = connection.total_changes
            connection.execute("BEGIN")
            try:
                connection.executemany(statement, values)
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
        except sqlite3.Error as error:
            raise self._error("cannot be written", error) from None
        return connection.total_changes - before

    def _error(self, what: str, error: sqlite3.Error) -> StoreError:
        return StoreError(f"score spool {self.path} {what}: {error}")

    def _require(self) -> sqlite3.Connection:
        if self._connection is None:
            raise StoreError(f"score spool {self.path} is closed")
        return self._connection
