"""The score store: recording through the spool, the queries behind the dashboard, a store that is down."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from vibrasense.errors import StoreError
from vibrasense.serving.scores import ScoreRow, ScoreStore

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
UNREACHABLE_PG = "postgresql://postgres@127.0.0.1:1/nothing"


def row(machine: str, minute: int, score: float, threshold: float = 1.0) -> ScoreRow:
    return ScoreRow(
        machine_id=machine,
        scored_at=T0 + timedelta(minutes=minute),
        score=score,
        threshold=threshold,
        is_anomaly=score > threshold,
        model_name="m",
        model_version="3",
        processing_ms=1.5,
    )


def check_queries(store: ScoreStore) -> None:
    """The same checks for every backend."""
    for minute, (machine, score) in enumerate(
        [("fan-1", 0.2), ("fan-2", 0.4), ("fan-1", 2.5), ("fan-1", 0.3), ("pump-1", 5.0)]
    ):
        store.record(row(machine, minute, score))
    store.flush()
    stats = {s.latest.machine_id: s for s in store.machines()}
    assert sorted(stats) == ["fan-1", "fan-2", "pump-1"]
    assert (stats["fan-1"].scores, stats["fan-1"].anomalies, stats["fan-1"].latest.score) == (3, 1, 0.3)
    assert stats["pump-1"].latest.is_anomaly and stats["pump-1"].latest.scored_at == T0 + timedelta(minutes=4)
    assert [r.score for r in store.history("fan-1")] == [0.2, 2.5, 0.3]
    assert [r.score for r in store.history("fan-1", limit=2)] == [2.5, 0.3]
    assert store.history("never-seen") == []
    histories = store.histories(limit=2)
    assert {k: [r.score for r in v] for k, v in histories.items()} == {
        "fan-1": [2.5, 0.3],
        "fan-2": [0.4],
        "pump-1": [5.0],
    }
    latest = store.latest_by_sensor()
    assert {m: {s: r.score for s, r in sensors.items()} for m, sensors in latest.items()} == {
        "fan-1": {"default": 0.3},
        "fan-2": {"default": 0.4},
        "pump-1": {"default": 5.0},
    }
    assert latest["pump-1"]["default"].status == "warning"  # no state recorded: above the threshold
    store.ping()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[ScoreStore]:
    store = ScoreStore(f"sqlite:///{tmp_path / 'nested' / 'scores.db'}", tmp_path / "spool.db").start()
    yield store
    store.close()


def stored(engine: Engine) -> list[tuple[str, float]]:
    """(score_id, score) of every stored row in the order of insertion."""
    with engine.connect() as connection:
        return [tuple(r) for r in connection.execute(text("SELECT score_id, score FROM scores ORDER BY id"))]


def test_sqlite_store_answers_the_dashboard_queries(sqlite_store: ScoreStore) -> None:
    check_queries(sqlite_store)


def test_rows_survive_a_restart(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'scores.db'}"
    store = ScoreStore(url, tmp_path / "spool.db").start()
    store.record(row("fan-1", 0, 0.5))
    store.close()
    reopened = ScoreStore(url, tmp_path / "spool.db").start()
    try:
        assert [r.score for r in reopened.history("fan-1")] == [0.5]
        assert reopened.spooled() == 0 and reopened.status() == "ok"
    finally:
        reopened.close()


def test_a_full_queue_refuses_after_a_bounded_wait_and_drops_nothing(tmp_path: Path) -> None:
    store = ScoreStore(f"sqlite:///{tmp_path / 's.db'}", tmp_path / "spool.db", queue_size=3, enqueue_timeout_s=0.05)
    # Spooler not started: the queue fills up; the fourth verdict is refused (the request answers 503), not lost.
    for i in range(3):
        store.record(row("fan-1", i, 0.1))
    with pytest.raises(StoreError, match="retry later"):
        store.record(row("fan-1", 3, 0.1))
    store.start()
    store.flush()
    assert len(store.history("fan-1")) == 3 and store.dropped == 0
    store.close()


def test_many_rows_are_written_in_batches_quickly(sqlite_store: ScoreStore) -> None:
    for i in range(3000):
        sqlite_store.record(row(f"m{i % 7}", i, 0.1))
    sqlite_store.flush(timeout=20)
    assert sum(s.scores for s in sqlite_store.machines()) == 3000
    assert sqlite_store.spooled() == 0 and sqlite_store.pending() == 0


def test_an_unreachable_store_spools_every_score_and_says_degraded(tmp_path: Path) -> None:
    store = ScoreStore(UNREACHABLE_PG, tmp_path / "spool.db").start()
    try:
        with pytest.raises(StoreError, match="unreachable"):
            store.ping()
        assert store.status().startswith("unavailable: score store postgresql")
        for minute in range(3):
            store.record(row("fan-1", minute, 0.1))
        store.flush()
        assert store.spooled() == 3 and store.dropped == 0 and not store.healthy
        assert store.status().startswith("degraded: 3 scores spooled (score store postgresql")
        with pytest.raises(StoreError):
            store.machines()
    finally:
        store.close(timeout=0.5)


def test_spooled_scores_are_replayed_in_order_exactly_once_by_the_next_start(tmp_path: Path) -> None:
    spool = tmp_path / "spool.db"
    down = ScoreStore(UNREACHABLE_PG, spool).start()
    answered = [row("fan-1", minute, float(minute)) for minute in range(7)]
    for verdict in answered:
        down.record(verdict)
    down.flush()
    down.close(timeout=0.5)  # the service stops during the outage: its scores stay in the spool file
    url = f"sqlite:///{tmp_path / 'scores.db'}"
    back = ScoreStore(url, spool).start()
    try:
        assert back.status().startswith("degraded: 7 scores spooled")
        back.wait_stored(timeout=10)
        assert back.status() == "ok" and back.replayed == 7 and back.dropped == 0
        assert stored(back._engine) == [(v.score_id, v.score) for v in answered]
    finally:
        back.close()


def test_a_batch_written_twice_is_stored_once(sqlite_store: ScoreStore) -> None:
    batch = [row("fan-1", minute, 0.2) for minute in range(4)]
    assert sqlite_store.write(batch) == 4
    sqlite_store.write(batch[2:])  # a retry after a commit whose acknowledgement was lost
    assert [r.score_id for r in sqlite_store.history("fan-1")] == [r.score_id for r in batch]


def test_a_table_from_before_score_ids_gets_them_and_keeps_its_rows(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "CREATE TABLE scores (id INTEGER PRIMARY KEY AUTOINCREMENT, machine_id VARCHAR(128) NOT NULL, "
                "scored_at DATETIME NOT NULL, score FLOAT NOT NULL, threshold FLOAT NOT NULL, is_anomaly BOOLEAN "
                "NOT NULL, model_name VARCHAR(256) NOT NULL, model_version VARCHAR(64) NOT NULL, "
                "processing_ms FLOAT NOT NULL)"
            )
        )
        connection.execute(
            text("INSERT INTO scores VALUES (1, 'fan-1', '2024-05-01 12:00:00.000000', 0.3, 1, 0, 'm', '1', 2)")
        )
    engine.dispose()
    store = ScoreStore(url, tmp_path / "spool.db").start()
    try:
        new = row("fan-1", 5, 0.4)
        store.write([new, new])
        assert [(r.score, r.score_id) for r in store.history("fan-1")] == [(0.3, None), (0.4, new.score_id)]
    finally:
        store.close()


def test_one_process_at_a_time_uses_a_spool(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'scores.db'}"
    first = ScoreStore(url, tmp_path / "spool.db").start()
    try:
        with pytest.raises(StoreError, match="in use by another process"):
            ScoreStore(url, tmp_path / "spool.db").start()
    finally:
        first.close()


def test_unusable_url_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="score_store_url"):
        ScoreStore("nosuchdialect://x/y", "spool.db")


@pytest.mark.postgres
def test_postgres_store_answers_the_same_queries(tmp_path: Path) -> None:
    name = f"vibrasense_scores_{uuid.uuid4().hex[:8]}"
    admin = create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    store = ScoreStore(f"postgresql://postgres@127.0.0.1:5432/{name}", tmp_path / "spool.db").start()
    try:
        check_queries(store)
    finally:
        store.close()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()
