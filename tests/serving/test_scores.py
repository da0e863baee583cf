"""The score store: asynchronous recording, the queries behind the dashboard, a store that is down."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

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
        assert store.record(row(machine, minute, score))
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
    assert [(r.machine_id, r.score) for r in store.alarms(10)] == [("pump-1", 5.0), ("fan-1", 2.5)]
    assert store.alarms(1)[0].machine_id == "pump-1"
    store.ping()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[ScoreStore]:
    store = ScoreStore(f"sqlite:///{tmp_path / 'nested' / 'scores.db'}").start()
    yield store
    store.close()


def test_sqlite_store_answers_the_dashboard_queries(sqlite_store: ScoreStore) -> None:
    check_queries(sqlite_store)


def test_rows_survive_a_restart(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'scores.db'}"
    store = ScoreStore(url).start()
    store.record(row("fan-1", 0, 0.5))
    store.close()
    reopened = ScoreStore(url).start()
    try:
        assert [r.score for r in reopened.history("fan-1")] == [0.5]
    finally:
        reopened.close()


def test_full_queue_drops_and_counts_instead_of_blocking(tmp_path: Path) -> None:
    dropped: list[int] = []
    store = ScoreStore(f"sqlite:///{tmp_path / 's.db'}", queue_size=3, on_drop=dropped.append)
    # Writer not started: the queue fills up and further rows are dropped at once.
    accepted = [store.record(row("fan-1", i, 0.1)) for i in range(5)]
    assert accepted == [True, True, True, False, False] and sum(dropped) == 2
    store.start()
    store.flush()
    assert len(store.history("fan-1")) == 3
    store.close()


def test_many_rows_are_written_in_batches_quickly(sqlite_store: ScoreStore) -> None:
    for i in range(3000):
        sqlite_store.record(row(f"m{i % 7}", i, 0.1))
    sqlite_store.flush(timeout=20)
    assert sum(s.scores for s in sqlite_store.machines()) == 3000


def test_unreachable_store_raises_store_error_and_drops_rows() -> None:
    dropped: list[int] = []
    store = ScoreStore(UNREACHABLE_PG, on_drop=dropped.append).start()
    try:
        with pytest.raises(StoreError, match="unreachable"):
            store.ping()
        store.record(row("fan-1", 0, 0.1))
        store.flush()
        assert dropped == [1] and store.last_error is not None
        with pytest.raises(StoreError):
            store.machines()
    finally:
        store.close()


def test_unusable_url_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="score_store_url"):
        ScoreStore("nosuchdialect://x/y")


@pytest.mark.postgres
def test_postgres_store_answers_the_same_queries() -> None:
    name = f"vibrasense_scores_{uuid.uuid4().hex[:8]}"
    admin = create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    store = ScoreStore(f"postgresql://postgres@127.0.0.1:5432/{name}").start()
    try:
        check_queries(store)
    finally:
        store.close()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()
