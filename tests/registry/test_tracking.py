"""The MLflow tracking store fails in seconds, with a StoreError that names it without its password."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from throwaway_servers import PostgresServer, free_port
from vibrasense.config import load_settings
from vibrasense.errors import StoreError
from vibrasense.registry import tracking_client
from vibrasense.registry.tracking import check_reachable


def _refused(tmp_path: Path, uri: str) -> tuple[str, float]:
    settings = load_settings(None, workdir=tmp_path, tracking={"tracking_uri": uri})
    started = time.perf_counter()
    with pytest.raises(StoreError) as raised:
        tracking_client(settings)
    return str(raised.value), time.perf_counter() - started


@pytest.mark.postgres
def test_a_wrong_password_fails_in_seconds_naming_the_store_not_the_password(
    throwaway_postgres: PostgresServer, tmp_path: Path
) -> None:
    message, seconds = _refused(tmp_path, throwaway_postgres.url(password="not-the-pw"))
    assert seconds < 5, f"took {seconds:.1f} s (MLflow alone retries for about 100 s)"
    assert "password authentication failed" in message
    assert f"postgres:***@127.0.0.1:{throwaway_postgres.port}/postgres" in message
    assert "not-the-pw" not in message and "tracking.tracking_uri" in message


@pytest.mark.postgres
def test_a_missing_database_fails_in_seconds(throwaway_postgres: PostgresServer, tmp_path: Path) -> None:
    message, seconds = _refused(tmp_path, throwaway_postgres.url(database="no_such_mlflow_db"))
    assert seconds < 5, f"took {seconds:.1f} s"
    assert 'database "no_such_mlflow_db" does not exist' in message
    assert throwaway_postgres.password not in message


@pytest.mark.postgres
def test_a_frozen_server_fails_within_the_connect_timeout(throwaway_postgres: PostgresServer, tmp_path: Path) -> None:
    throwaway_postgres.freeze()
    try:
        message, seconds = _refused(tmp_path, throwaway_postgres.url())
    finally:
        throwaway_postgres.thaw()
    assert seconds < 8, f"took {seconds:.1f} s"
    assert "refuses the connection" in message and throwaway_postgres.password not in message


def test_an_unreachable_server_is_named_with_the_password_hidden(tmp_path: Path) -> None:
    port = free_port()
    message, seconds = _refused(tmp_path, f"postgresql+psycopg://vs:s3cret@127.0.0.1:{port}/mlflow")
    assert seconds < 5
    assert f"postgresql+psycopg://vs:***@127.0.0.1:{port}/mlflow is unreachable" in message
    assert "s3cret" not in message


@pytest.mark.postgres
def test_the_right_password_passes_the_check(throwaway_postgres: PostgresServer) -> None:
    check_reachable(throwaway_postgres.url())  # MLflow's own use of a PostgreSQL store: tests/training
