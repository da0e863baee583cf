"""The score store: every verdict per machine, for the dashboard and for drift monitoring.

SQLAlchemy Core on SQLite by default and PostgreSQL by configuration (``serving.score_store_url``).
Requests never wait for the database: :meth:`ScoreStore.record` puts the row on a bounded queue and a
background thread writes rows in batches. When the queue is full or the database is down, rows are
dropped and counted rather than slowing or failing the scoring path.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    event,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from vibrasense.errors import StoreError

log = logging.getLogger(__name__)

metadata = MetaData()
scores_table = Table(
    "scores",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("machine_id", String(128), nullable=False),
    Column("scored_at", DateTime(timezone=True), nullable=False),
    Column("score", Float, nullable=False),
    Column("threshold", Float, nullable=False),
    Column("is_anomaly", Boolean, nullable=False),
    Column("model_name", String(256), nullable=False),
    Column("model_version", String(64), nullable=False),
    Column("processing_ms", Float, nullable=False),
    Index("ix_scores_machine_id_id", "machine_id", "id"),
    Index("ix_scores_is_anomaly_id", "is_anomaly", "id"),
)


@dataclass(frozen=True)
class ScoreRow:
    """One verdict as stored."""

    machine_id: str
    scored_at: datetime
    score: float
    threshold: float
    is_anomaly: bool
    model_name: str
    model_version: str
    processing_ms: float

    @property
    def status(self) -> str:
        """``alarm`` when the verdict is an anomaly, else ``ok``."""
        return "alarm" if self.is_anomaly else "ok"


@dataclass(frozen=True)
class MachineStats:
    """A machine's latest verdict and how many recordings and anomalies it has."""

    latest: ScoreRow
    scores: int
    anomalies: int


_STOP = object()


class ScoreStore:
    """Records verdicts asynchronously and answers the dashboard's and the API's queries."""

    def __init__(
        self,
        url: str,
        queue_size: int = 10_000,
        batch_size: int = 500,
        on_drop: Callable[[int], None] | None = None,
    ) -> None:
        self.url = url
        self.batch_size = batch_size
        self.on_drop = on_drop
        self.last_error: str | None = None
        self._engine = _create_engine(url)
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._schema_ready = False
        self._schema_lock = threading.Lock()
        self._writer: threading.Thread | None = None

    # -- writing -------------------------------------------------------------------------------------

    def start(self) -> ScoreStore:
        """Create the table if needed (tolerating a database that is down) and start the writer."""
        try:
            self.ensure_schema()
        except StoreError as error:
            log.warning("score store unavailable at start-up, scores will be dropped until it is: %s", error)
        if self._writer is None:
            self._writer = threading.Thread(target=self._write_loop, name="score-store-writer", daemon=True)
            self._writer.start()
        return self

    def record(self, row: ScoreRow) -> bool:
        """Queue a verdict for writing without blocking; ``False`` when the queue is full (row dropped)."""
        try:
            self._queue.put_nowait(row)
        except queue.Full:
            self._dropped(1)
            return False
        return True

    def pending(self) -> int:
        """Rows queued and not yet written."""
        return self._queue.qsize()

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until every queued row has been written (or dropped)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                raise StoreError(f"score store {self.safe_url}: {self.pending()} rows still queued after {timeout} s")
            time.sleep(0.002)

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, stop the writer and release connections."""
        if self._writer is not None:
            self._queue.put(_STOP)
            self._writer.join(timeout)
            self._writer = None
        self._engine.dispose()

    def write(self, rows: Iterable[ScoreRow]) -> int:
        """Insert rows now, in one transaction; returns how many."""
        values = [asdict(row) for row in rows]
        if not values:
            return 0
        self.ensure_schema()
        try:
            with self._engine.begin() as connection:
                connection.execute(insert(scores_table), values)
        except SQLAlchemyError as error:
            raise StoreError(f"score store {self.safe_url}: cannot write scores: {_short(error)}") from None
        return len(values)

    def _write_loop(self) -> None:
        while True:
            first = self._queue.get()
            batch = [first]
            while len(batch) < self.batch_size:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = any(item is _STOP for item in batch)
            rows = [item for item in batch if item is not _STOP]
            try:
                self.write(rows)
                self.last_error = None
            except StoreError as error:
                self.last_error = str(error)
                log.warning("dropped %d scores: %s", len(rows), error)
                self._dropped(len(rows))
            finally:
                for _ in batch:
                    self._queue.task_done()
            if stop:
                return

    def _dropped(self, count: int) -> None:
        if self.on_drop is not None:
            self.on_drop(count)

    # -- reading -------------------------------------------------------------------------------------

    def ensure_schema(self) -> None:
        """Create the scores table and its indexes if they do not exist."""
        if self._schema_ready:
            return
        with self._schema_lock:
            if self._schema_ready:
                return
            try:
                metadata.create_all(self._engine)
            except SQLAlchemyError as error:
                raise StoreError(
                    f"score store {self.safe_url} is unreachable or unusable: {_short(error)}; "
                    "check serving.score_store_url"
                ) from None
            self._schema_ready = True

    def ping(self) -> None:
        """Raise :class:`StoreError` unless the database answers."""
        self.ensure_schema()
        self._read(lambda c: c.execute(text("SELECT 1")).scalar_one())

    def machines(self) -> list[MachineStats]:
        """Every machine with its latest verdict and counts, ordered by machine id."""
        counts = (
            select(
                scores_table.c.machine_id,
                func.max(scores_table.c.id).label("last_id"),
                func.count().label("n"),
                func.sum(scores_table.c.is_anomaly.cast(Integer)).label("anomalies"),
            )
            .group_by(scores_table.c.machine_id)
            .subquery()
        )
        query = (
            select(scores_table, counts.c.n, counts.c.anomalies)
            .join(counts, scores_table.c.id == counts.c.last_id)
            .order_by(scores_table.c.machine_id)
        )
        rows = self._read(lambda c: c.execute(query).all())
        return [MachineStats(_row(r), int(r.n), int(r.anomalies or 0)) for r in rows]

    def history(self, machine_id: str, limit: int = 200) -> list[ScoreRow]:
        """The latest ``limit`` verdicts of a machine, oldest first."""
        query = (
            select(scores_table)
            .where(scores_table.c.machine_id == machine_id)
            .order_by(scores_table.c.id.desc())
            .limit(limit)
        )
        rows = self._read(lambda c: c.execute(query).all())
        return [_row(r) for r in reversed(rows)]

    def histories(self, limit: int = 200) -> dict[str, list[ScoreRow]]:
        """The latest ``limit`` verdicts of every machine, oldest first, in one query."""
        rank = func.row_number().over(partition_by=scores_table.c.machine_id, order_by=scores_table.c.id.desc())
        ranked = select(scores_table, rank.label("rank")).subquery()
        query = select(ranked).where(ranked.c.rank <= limit).order_by(ranked.c.machine_id, ranked.c.id)
        result: dict[str, list[ScoreRow]] = {}
        for r in self._read(lambda c: c.execute(query).all()):
            result.setdefault(r.machine_id, []).append(_row(r))
        return result

    def alarms(self, limit: int = 20) -> list[ScoreRow]:
        """The latest anomalous verdicts over all machines, newest first."""
        query = (
            select(scores_table)
            .where(scores_table.c.is_anomaly.is_(True))
            .order_by(scores_table.c.id.desc())
            .limit(limit)
        )
        return [_row(r) for r in self._read(lambda c: c.execute(query).all())]

    def _read(self, run: Callable[[Any], Any]) -> Any:
        self.ensure_schema()
        try:
            with self._engine.connect() as connection:
                return run(connection)
        except SQLAlchemyError as error:
            raise StoreError(f"score store {self.safe_url}: cannot read scores: {_short(error)}") from None

    @property
    def safe_url(self) -> str:
        """The URL with any password hidden, for messages."""
        return self._engine.url.render_as_string(hide_password=True)


def _create_engine(url: str) -> Engine:
    try:
        if url.startswith("sqlite"):
            database = make_url(url).database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, connect_args={"timeout": 10})
            event.listen(engine, "connect", _sqlite_wal)
            return engine
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
        return create_engine(url, pool_pre_ping=True, pool_size=4, connect_args={"connect_timeout": 3})
    except (ArgumentError, ImportError, ValueError, OSError) as error:
        raise StoreError(
            f"serving.score_store_url {url!r} is not usable: {error}; use sqlite:///path or postgresql://user@host/db"
        ) from None


def _sqlite_wal(connection: Any, _record: Any) -> None:
    """Readers do not block the writer thread (and vice versa) in WAL mode."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _row(r: Any) -> ScoreRow:
    scored_at = r.scored_at if r.scored_at.tzinfo else r.scored_at.replace(tzinfo=UTC)
    return ScoreRow(
        machine_id=r.machine_id,
        scored_at=scored_at,
        score=r.score,
        threshold=r.threshold,
        is_anomaly=bool(r.is_anomaly),
        model_name=r.model_name,
        model_version=r.model_version,
        processing_ms=r.processing_ms,
    )


def _short(error: Exception) -> str:
    return str(error).splitlines()[0][:300]
