"""The score store: every verdict per machine, for the dashboard and for drift monitoring.

SQLAlchemy Core on SQLite by default and PostgreSQL by configuration (``serving.score_store_url``). The same
database keeps the alarm events (``alarm_events``: raised, escalated, acknowledged, shelved, unshelved, cleared,
with who and when), written through the same spool, in order with the scores.
Requests never wait for the database, and an answered verdict is never lost to it: verdicts go through a
local durable spool (:mod:`vibrasense.serving.spool`) and reach the database in order, each once (a unique
``score_id`` and an idempotent insert), whether the database is up, down, frozen or back from an outage.
"""

from __future__ import annotations

import functools
import itertools
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
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
    Text,
    case,
    create_engine,
    event,
    func,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from vibrasense.alarms import AlarmEvent
from vibrasense.alarms.lifecycle import SHELVINGS
from vibrasense.errors import StoreError, redact
from vibrasense.serving.spool import ScoreSpool

log = logging.getLogger(__name__)

metadata = MetaData()
scores_table = Table(
    "scores",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("machine_id", String(128), nullable=False),
    Column("scored_at", DateTime(timezone=True), nullable=False),
    Column("score", Float, nullable=True),  # null: the machine was not running, no model call
    Column("threshold", Float, nullable=True),
    Column("is_anomaly", Boolean, nullable=False),
    Column("model_name", String(256), nullable=False),
    Column("model_version", String(64), nullable=False),
    Column("processing_ms", Float, nullable=False),
    Column("score_id", String(36), nullable=True),  # null only in rows stored before score ids existed
    # null in rows stored before alarm management (``_migrate_scores`` adds every missing column)
    Column("sensor", String(128), nullable=True),
    Column("state", String(16), nullable=True),
    Column("zone", String(1), nullable=True),
    Column("velocity_rms_mm_s", Float, nullable=True),
    Column("explanation", Text, nullable=True),  # JSON of what drove the score (inference.Explanation)
    Index("ix_scores_machine_id_id", "machine_id", "id"),
    Index("ix_scores_is_anomaly_id", "is_anomaly", "id"),
    Index("ux_scores_score_id", "score_id", unique=True),
)

VERDICT_COLUMNS = tuple(column for column in scores_table.columns if column.name != "explanation")
"""Every column but the explanation (a few kB, tens with an error map): what the listing queries read."""


alarm_events_table = Table(
    "alarm_events",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False),
    Column("alarm_id", String(36), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("machine_id", String(128), nullable=False),
    Column("sensor", String(128), nullable=False),
    Column("condition", String(16), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("by", String(256), nullable=True),
    Column("reason", String(1024), nullable=True),
    Column("value", Float, nullable=True),
    Column("shelved_until", DateTime(timezone=True), nullable=True),
    Index("ux_alarm_events_event_id", "event_id", unique=True),
    Index("ix_alarm_events_alarm_id_id", "alarm_id", "id"),
    Index("ix_alarm_events_machine_id_id", "machine_id", "id"),
)
ALARM_EVENTS = "alarm_events"
EVENT_KEY_PREFIX = "event:"
"""An alarm event's key in the spool (its ``score_id`` column): never a score's."""
DEFAULT_SENSOR = "default"


def new_score_id() -> str:
    """A unique id for a verdict: the key that makes writing it twice store it once."""
    return uuid.uuid4().hex


@dataclass(frozen=True)
class ScoreRow:
    """One verdict as stored."""

    machine_id: str
    scored_at: datetime
    score: float | None
    threshold: float | None
    is_anomaly: bool
    model_name: str
    model_version: str
    processing_ms: float
    score_id: str | None = field(default_factory=new_score_id)
    sensor: str = DEFAULT_SENSOR
    state: str | None = None
    zone: str | None = None
    velocity_rms_mm_s: float | None = None
    explanation: str | None = None
    """JSON of what drove the score; only :meth:`ScoreStore.explanation` reads it back."""

    @property
    def status(self) -> str:
        """The sensor's alarm state after this verdict; for rows stored before alarm management (no state),
        ``warning`` when the score was above the threshold, else ``ok``."""
        if self.state is not None:
            return self.state
        return "warning" if self.is_anomaly else "ok"


@dataclass(frozen=True)
class MachineStats:
    """A machine's latest verdict and how many recordings and anomalies it has."""

    latest: ScoreRow
    scores: int
    anomalies: int


_STOP = object()


class ScoreStore:
    """Records verdicts through the spool and answers the dashboard's and the API's queries.

    :meth:`record` puts a verdict on a bounded in-memory queue and returns; a *spooler* thread appends what is
    queued to the :class:`~vibrasense.serving.spool.ScoreSpool` (local, durable), and a *writer* thread moves
    the spool's head into the database, in order, batch by batch, with an idempotent insert (each verdict has a
    unique ``score_id``, so a batch written twice is stored once). While the database is down the writer
    retries with backoff and the spool grows on disk, not in memory; when it answers again the spool is
    replayed. :meth:`status` says "degraded: N scores spooled" until it is empty.
    """

    def __init__(
        self,
        url: str,
        spool: Path | str,
        *,
        queue_size: int = 10_000,
        batch_size: int = 500,
        max_spooled: int = 1_000_000,
        enqueue_timeout_s: float = 2.0,
        retry_s: tuple[float, float] = (0.2, 5.0),
        probe_interval_s: float = 5.0,
        hung_after_s: float = 5.0,
        on_drop: Callable[[int], None] | None = None,
        on_replay: Callable[[int], None] | None = None,
    ) -> None:
        self.url = url
        self.batch_size = batch_size
        self.enqueue_timeout_s = enqueue_timeout_s
        self.retry_s = retry_s
        self.probe_interval_s = probe_interval_s
        self.hung_after_s = hung_after_s
        self.on_drop = on_drop
        self.on_replay = on_replay
        self.last_error: str | None = None
        self.replayed = 0
        self.dropped = 0
        self._engine = _create_engine(url)
        self._spool = ScoreSpool(spool, max_spooled)
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._schema_ready = False
        self._schema_lock = threading.Lock()
        self._spooled_event = threading.Event()
        self._stopping = threading.Event()
        self._outage = False
        self._attempt_started: float | None = None
        self._spooler: threading.Thread | None = None
        self._writer: threading.Thread | None = None

    # -- writing -------------------------------------------------------------------------------------

    def start(self) -> ScoreStore:
        """Open the spool (replaying what an earlier run left), check the database once, start both threads."""
        if self._writer is not None:
            return self
        self._spool.open()
        if len(self._spool):
            self._outage = True
            log.warning(
                "score spool %s holds %d scores from an earlier run: replaying", self._spool.path, self.spooled()
            )
        self._probe()
        if self.last_error:
            log.warning("score store unavailable at start-up, scores are spooled until it is: %s", self.last_error)
        self._stopping.clear()
        self._spooler = threading.Thread(target=self._spool_loop, name="score-spooler", daemon=True)
        self._writer = threading.Thread(target=self._write_loop, name="score-store-writer", daemon=True)
        self._spooler.start()
        self._writer.start()
        return self

    def record(self, row: ScoreRow | AlarmEvent) -> None:
        """Queue a verdict or an alarm event; waits at most ``enqueue_timeout_s`` for room, then raises
        :class:`StoreError`.

        The queue only fills when the local spool cannot keep up (a failing disk): refusing the request then
        keeps "answered" meaning "stored".
        """
        try:
            self._queue.put(row, timeout=self.enqueue_timeout_s)
        except queue.Full:
            raise StoreError(
                f"score store {self.safe_url}: {self.pending()} scores queued and the spool {self._spool.path} "
                "does not keep up; retry later"
            ) from None

    def pending(self) -> int:
        """Scores queued in memory, not yet in the spool."""
        return self._queue.qsize()

    def spooled(self) -> int:
        """Scores in the spool: answered, not yet confirmed by the database."""
        return len(self._spool)

    @property
    def healthy(self) -> bool:
        """The database takes writes and nothing waits for it from an outage."""
        return self.status() == "ok"

    def status(self) -> str:
        """``ok``; ``unavailable: why``; or ``degraded: N scores spooled (why)`` while an outage's scores wait.

        Read from the writer's state, never from a query, so it answers at once whatever the database does.
        """
        spooled = self.spooled()
        problem = self.last_error
        started = self._attempt_started
        if problem is None and started is not None and time.monotonic() - started > self.hung_after_s:
            problem = f"score store {self.safe_url} has not answered for {time.monotonic() - started:.0f} s"
        if problem is None and not (self._outage and spooled):
            return "ok"
        if not spooled:
            return f"unavailable: {problem}"
        return f"degraded: {spooled} score{'' if spooled == 1 else 's'} spooled ({problem or 'replaying'})"

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until every score recorded so far is in the database, or in the spool while the database fails."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks or (self.spooled() and self.last_error is None):
            if time.monotonic() > deadline:
                raise StoreError(
                    f"score store {self.safe_url}: {self.pending()} scores queued and {self.spooled()} spooled "
                    f"after {timeout} s"
                )
            time.sleep(0.002)

    def wait_stored(self, timeout: float = 30.0) -> None:
        """Wait until every score recorded so far is in the database (the spool is empty)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks or self.spooled():
            if time.monotonic() > deadline:
                raise StoreError(
                    f"score store {self.safe_url}: {self.spooled()} scores still spooled after {timeout} s "
                    f"({self.status()})"
                )
            self._spooled_event.set()
            time.sleep(0.01)

    def close(self, timeout: float = 10.0) -> None:
        """Spool what is queued, write what the database takes within ``timeout``, stop, release connections.

        Scores the database did not take stay in the spool for the next start.
        """
        if self._spooler is not None:
            self._queue.put(_STOP)
            self._spooler.join(timeout)
            self._spooler = None
        if self._writer is not None:
            deadline = time.monotonic() + timeout
            while self.spooled() and self.last_error is None and time.monotonic() < deadline:
                self._spooled_event.set()
                time.sleep(0.01)
            self._stopping.set()
            self._spooled_event.set()
            self._writer.join(max(0.0, deadline - time.monotonic()) + 1.0)
            if self._writer.is_alive():
                log.warning(
                    "score store %s did not answer at shutdown; %d scores stay spooled", self.safe_url, self.spooled()
                )
            self._writer = None
        if self.spooled():
            log.warning("%d scores stay in the spool %s for the next start", self.spooled(), self._spool.path)
        self._spool.close()
        self._engine.dispose()

    def write(self, rows: Iterable[ScoreRow]) -> int:
        """Insert rows now, in one transaction, skipping any already stored; returns how many were given."""
        return self._insert([asdict(row) for row in rows])

    def write_events(self, events: Iterable[AlarmEvent]) -> int:
        """Insert alarm events now, in one transaction, skipping any already stored."""
        return self._insert([_stored_row(_spooled_row(event)) for event in events])

    def _insert(self, values: list[dict[str, Any]]) -> int:
        """Insert spooled rows (scores, and alarm events marked ``table``) in their order, in one transaction."""
        if not values:
            return 0
        self.ensure_schema()
        try:
            with self._engine.begin() as connection:
                for table, rows in itertools.groupby(values, key=lambda row: row.get("table", "scores")):
                    if table == ALARM_EVENTS:
                        batch = [{k: v for k, v in row.items() if k not in ("table", "score_id")} for row in rows]
                        connection.execute(self._idempotent_insert(alarm_events_table, "event_id"), batch)
                    else:
                        connection.execute(self._idempotent_insert(scores_table, "score_id"), list(rows))
        except SQLAlchemyError as error:
            raise StoreError(f"score store {self.safe_url}: cannot write scores: {_short(error)}") from None
        return len(values)

    def _idempotent_insert(self, table: Table, key: str) -> Any:
        """``INSERT ... ON CONFLICT (key) DO NOTHING`` where the dialect has it."""
        dialect = self._engine.dialect.name
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        elif dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        else:
            return insert(table)
        return dialect_insert(table).on_conflict_do_nothing(index_elements=[key])

    def _spool_loop(self) -> None:
        """Move queued verdicts to the spool in batches, in the order they were recorded."""
        while True:
            batch = [self._queue.get()]
            while len(batch) < self.batch_size:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            rows = [_spooled_row(item) for item in batch if item is not _STOP]
            try:
                kept = self._spool.append(rows)
            except StoreError as error:
                kept = self._write_past_the_spool(rows, error)
            if kept < len(rows):
                self._dropped(len(rows) - kept)
            for _ in batch:
                self._queue.task_done()
            self._spooled_event.set()
            if any(item is _STOP for item in batch):
                return

    def _write_past_the_spool(self, rows: list[dict[str, Any]], error: StoreError) -> int:
        """The spool failed (a full or broken disk): write straight to the database, the last chance."""
        log.error("%s; writing %d scores straight to the database", error, len(rows))
        try:
            return self._insert(rows)
        except StoreError as also:
            log.error("scores lost: %s", also)
            return 0

    def _write_loop(self) -> None:
        """Write the spool's head to the database until stopped; retry with backoff while it fails."""
        backoff = self.retry_s[0]
        last_contact = time.monotonic()
        while not self._stopping.is_set():
            try:
                head = [(seq, _stored_row(row)) for seq, row in self._spool.head(self.batch_size)]
            except StoreError as error:
                log.error("%s", error)
                self._stopping.wait(self.retry_s[1])
                continue
            if not head:
                self._spooled_event.wait(self.probe_interval_s)
                self._spooled_event.clear()
                if self._stopping.is_set():
                    return
                if not self.spooled() and time.monotonic() - last_contact >= self.probe_interval_s:
                    self._probe()
                    last_contact = time.monotonic()
                continue
            try:
                self._attempt(functools.partial(self._insert, [row for _, row in head]))
            except StoreError as error:
                self._failed(error)
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, self.retry_s[1])
                continue
            backoff = self.retry_s[0]
            last_contact = time.monotonic()
            try:
                self._spool.remove(head[-1][0])
            except StoreError as error:  # stored but still spooled: the idempotent insert skips them later
                log.error("%s", error)
                continue
            if self._outage:
                self.replayed += len(head)
                if self.on_replay is not None:
                    self.on_replay(len(head))
                if not self.spooled():
                    self._outage = False
                    log.warning("score store %s is back: %d spooled scores replayed", self.safe_url, self.replayed)

    def _attempt(self, run: Callable[[], Any]) -> Any:
        """Run one database call, noting when it started (a call that hangs shows in :meth:`status`)."""
        self._attempt_started = time.monotonic()
        try:
            result = run()
        finally:
            self._attempt_started = None
        self.last_error = None
        return result

    def _probe(self) -> None:
        """Check the database when nothing is being written, so :meth:`status` knows it is up or down."""
        try:
            self._attempt(self.ping)
        except StoreError as error:
            self._failed(error)
            return
        if not self.spooled():
            self._outage = False

    def _failed(self, error: StoreError) -> None:
        if self.last_error is None:
            log.warning("score store failing, scores are spooled in %s: %s", self._spool.path, error)
        self.last_error = str(error)
        self._outage = True

    def _dropped(self, count: int) -> None:
        self.dropped += count
        if self.on_drop is not None:
            self.on_drop(count)

    # -- reading -------------------------------------------------------------------------------------

    def ensure_schema(self) -> None:
        """Create the scores and alarm events tables and their indexes if they do not exist; migrate old ones."""
        if self._schema_ready:
            return
        with self._schema_lock:
            if self._schema_ready:
                return
            try:
                metadata.create_all(self._engine)
                _add_score_ids(self._engine)
                _migrate_scores(self._engine)
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
            select(*VERDICT_COLUMNS, counts.c.n, counts.c.anomalies)
            .join(counts, scores_table.c.id == counts.c.last_id)
            .order_by(scores_table.c.machine_id)
        )
        rows = self._read(lambda c: c.execute(query).all())
        return [MachineStats(_row(r), int(r.n), int(r.anomalies or 0)) for r in rows]

    def history(self, machine_id: str, limit: int = 200) -> list[ScoreRow]:
        """The latest ``limit`` verdicts of a machine, oldest first."""
        query = (
            select(*VERDICT_COLUMNS)
            .where(scores_table.c.machine_id == machine_id)
            .order_by(scores_table.c.id.desc())
            .limit(limit)
        )
        rows = self._read(lambda c: c.execute(query).all())
        return [_row(r) for r in reversed(rows)]

    def scores_since(self, since: datetime, machine_id: str | None = None) -> list[ScoreRow]:
        """Every verdict scored at or after ``since`` (of one machine, or all), oldest first: drift's recent scores."""
        query = select(*VERDICT_COLUMNS).where(scores_table.c.scored_at >= since).order_by(scores_table.c.id)
        if machine_id is not None:
            query = query.where(scores_table.c.machine_id == machine_id)
        return [_row(r) for r in self._read(lambda c: c.execute(query).all())]

    def explanation(self, machine_id: str, score_id: str | None = None) -> ScoreRow | None:
        """The verdict ``score_id`` of a machine with its explanation, or its latest verdict that has one."""
        query = select(scores_table).where(scores_table.c.machine_id == machine_id)
        if score_id is None:
            query = query.where(scores_table.c.explanation.is_not(None)).order_by(scores_table.c.id.desc()).limit(1)
        else:
            query = query.where(scores_table.c.score_id == score_id)
        found = self._read(lambda c: c.execute(query).first())
        return None if found is None else replace(_row(found), explanation=found.explanation)

    def histories(self, limit: int = 200) -> dict[str, list[ScoreRow]]:
        """The latest ``limit`` verdicts of every machine, oldest first, in one query."""
        rank = func.row_number().over(partition_by=scores_table.c.machine_id, order_by=scores_table.c.id.desc())
        ranked = select(*VERDICT_COLUMNS, rank.label("rank")).subquery()
        query = select(ranked).where(ranked.c.rank <= limit).order_by(ranked.c.machine_id, ranked.c.id)
        result: dict[str, list[ScoreRow]] = {}
        for r in self._read(lambda c: c.execute(query).all()):
            result.setdefault(r.machine_id, []).append(_row(r))
        return result

    def latest_by_sensor(self, machine_id: str | None = None) -> dict[str, dict[str, ScoreRow]]:
        """The latest verdict of each sensor of each machine (or of one machine)."""
        sensor = func.coalesce(scores_table.c.sensor, DEFAULT_SENSOR)
        last = select(func.max(scores_table.c.id).label("last_id")).group_by(scores_table.c.machine_id, sensor)
        if machine_id is not None:
            last = last.where(scores_table.c.machine_id == machine_id)
        ids = last.subquery()
        query = select(*VERDICT_COLUMNS).join(ids, scores_table.c.id == ids.c.last_id).order_by(scores_table.c.id)
        result: dict[str, dict[str, ScoreRow]] = {}
        for r in self._read(lambda c: c.execute(query).all()):
            row = _row(r)
            result.setdefault(row.machine_id, {})[row.sensor] = row
        return result

    def alarm_events(
        self,
        *,
        alarm_id: str | None = None,
        machine_id: str | None = None,
        cleared: bool | None = None,
        limit: int = 100,
    ) -> list[AlarmEvent]:
        """The events of the latest ``limit`` alarms, in order: of one alarm, of one machine, only open ones
        (``cleared=False``) or only cleared ones (``cleared=True``)."""
        events = alarm_events_table.c
        chosen = select(events.alarm_id).group_by(events.alarm_id)
        if alarm_id is not None:
            chosen = chosen.where(events.alarm_id == alarm_id)
        if machine_id is not None:
            chosen = chosen.where(events.machine_id == machine_id)
        if cleared is not None:
            clears = func.sum(case((events.kind == "cleared", 1), else_=0))
            chosen = chosen.having(clears > 0 if cleared else clears == 0)
        chosen = chosen.order_by(func.max(events.id).desc()).limit(limit)
        query = select(alarm_events_table).where(events.alarm_id.in_(chosen.scalar_subquery())).order_by(events.id)
        return [_event(r) for r in self._read(lambda c: c.execute(query).all())]

    def latest_shelvings(self) -> list[AlarmEvent]:
        """Each condition's latest ``shelved`` or ``unshelved`` event (what decides whether it is shelved)."""
        events = alarm_events_table.c
        latest = (
            select(func.max(events.id))
            .where(events.kind.in_(SHELVINGS))
            .group_by(events.machine_id, events.sensor, events.condition)
        )
        query = select(alarm_events_table).where(events.id.in_(latest.scalar_subquery())).order_by(events.id)
        return [_event(r) for r in self._read(lambda c: c.execute(query).all())]

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
        # A bounded pool that fails fast: connecting, waiting for a pooled connection and a statement each
        # have a limit, and a silent peer is noticed by TCP keepalives / user timeout. A frozen server can
        # still hold a query that was sent (its kernel acknowledges it): at most the pool's five threads
        # wait on it, the writer among them, while the spool takes the scores.
        return create_engine(
            url,
            pool_pre_ping=True,
            pool_size=5,
            max_overflow=0,
            pool_timeout=3,
            connect_args={
                "connect_timeout": 3,
                "options": "-c statement_timeout=10000",
                "keepalives": 1,
                "keepalives_idle": 10,
                "keepalives_interval": 5,
                "keepalives_count": 3,
                "tcp_user_timeout": 10000,
            },
        )
    except (ArgumentError, ImportError, ValueError, OSError) as error:
        raise StoreError(
            redact(
                f"serving.score_store_url {url!r} is not usable: {error}; use sqlite:///path or postgresql://user@host/db"
            )
        ) from None


def _sqlite_wal(connection: Any, _record: Any) -> None:
    """Readers do not block the writer thread (and vice versa) in WAL mode."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _aware(moment: datetime) -> datetime:
    """A time read back from the database, in UTC (SQLite returns naive times)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _event(r: Any) -> AlarmEvent:
    return AlarmEvent(
        alarm_id=r.alarm_id,
        kind=r.kind,
        machine_id=r.machine_id,
        sensor=r.sensor,
        condition=r.condition,
        severity=r.severity,
        at=_aware(r.at),
        by=r.by,
        reason=r.reason,
        value=r.value,
        shelved_until=_aware(r.shelved_until) if r.shelved_until is not None else None,
        event_id=r.event_id,
    )


def _row(r: Any) -> ScoreRow:
    scored_at = _aware(r.scored_at)
    return ScoreRow(
        machine_id=r.machine_id,
        scored_at=scored_at,
        score=r.score,
        threshold=r.threshold,
        is_anomaly=bool(r.is_anomaly),
        model_name=r.model_name,
        model_version=r.model_version,
        processing_ms=r.processing_ms,
        score_id=r.score_id,
        sensor=r.sensor or DEFAULT_SENSOR,
        state=r.state,
        zone=r.zone,
        velocity_rms_mm_s=r.velocity_rms_mm_s,
    )


def _add_score_ids(engine: Engine) -> None:
    """Give a scores table made before score ids existed its ``score_id`` column and unique index."""
    columns = {column["name"] for column in inspect(engine).get_columns("scores")}
    if "score_id" not in columns:
        with engine.begin() as connection:
            connection.execute(text("ALTER TABLE scores ADD COLUMN score_id VARCHAR(36)"))
    next(index for index in scores_table.indexes if index.name == "ux_scores_score_id").create(engine, checkfirst=True)


def _migrate_scores(engine: Engine) -> None:
    """Give a scores table made before alarm management its new nullable columns, and let a score be null.

    Every column of :data:`scores_table` the table lacks is added (all later columns are nullable); a table
    whose ``score`` is still ``NOT NULL`` drops the constraint (PostgreSQL) or is rebuilt (SQLite, which cannot).
    """
    columns = {column["name"]: column for column in inspect(engine).get_columns("scores")}
    with engine.begin() as connection:
        for column in scores_table.columns:
            if column.name not in columns:
                kind = column.type.compile(dialect=engine.dialect)
                connection.execute(text(f"ALTER TABLE scores ADD COLUMN {column.name} {kind}"))
    if columns["score"]["nullable"] and columns["threshold"]["nullable"]:
        return
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.execute(text("ALTER TABLE scores ALTER COLUMN score DROP NOT NULL"))
            connection.execute(text("ALTER TABLE scores ALTER COLUMN threshold DROP NOT NULL"))
        return
    names = ", ".join(column.name for column in scores_table.columns)
    with engine.begin() as connection:
        connection.execute(text("ALTER TABLE scores RENAME TO scores_before_alarms"))
        for index in scores_table.indexes:
            connection.execute(text(f"DROP INDEX IF EXISTS {index.name}"))
        scores_table.create(connection)
        connection.execute(text(f"INSERT INTO scores ({names}) SELECT {names} FROM scores_before_alarms"))
        connection.execute(text("DROP TABLE scores_before_alarms"))


def _spooled_row(row: ScoreRow | AlarmEvent) -> dict[str, Any]:
    """A verdict or an alarm event as the spool keeps it (JSON: times as ISO 8601; an event marked ``table``)."""
    values = asdict(row)
    if isinstance(row, AlarmEvent):
        values["at"] = row.at.isoformat()
        values["shelved_until"] = row.shelved_until.isoformat() if row.shelved_until else None
        return {**values, "table": ALARM_EVENTS, "score_id": EVENT_KEY_PREFIX + row.event_id}
    values["scored_at"] = row.scored_at.isoformat()
    return values


def _stored_row(values: dict[str, Any]) -> dict[str, Any]:
    """A spooled verdict or event as the database takes it."""
    if values.get("table") == ALARM_EVENTS:
        until = values.get("shelved_until")
        return {
            **values,
            "at": datetime.fromisoformat(values["at"]),
            "shelved_until": datetime.fromisoformat(until) if until else None,
        }
    # a verdict spooled by an older version lacks the later (nullable) columns
    absent = {column.name: None for column in scores_table.columns if column.name != "id"} | {"sensor": DEFAULT_SENSOR}
    return {**absent, **values, "scored_at": datetime.fromisoformat(values["scored_at"])}


def _short(error: Exception) -> str:
    return str(error).splitlines()[0][:300]
