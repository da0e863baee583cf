"""No password leaves the process: every path that prints, logs or returns a store's address hides it.

One helper (``vibrasense.errors.redact``) does it; each path that shows an address is tested here: the model
reload's error body and log, ``vibrasense serve`` failing at start-up, ``vibrasense prognose``'s output, the
score store's URL, the tracking store's and the feature store's errors.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from throwaway_servers import PostgresServer, free_port
from vibrasense.cli import app as cli
from vibrasense.config import load_settings
from vibrasense.errors import StoreError, redact
from vibrasense.inference import Verdict
from vibrasense.serving.app import create_app
from vibrasense.serving.scores import ScoreStore
from vibrasense.signals.synthetic import write_run_to_failure
from vibrasense.store.repository import redact as redact_store

SECRET = "hunter2-%40x"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (
            "postgresql+psycopg://vs:s3cr%40t@pg:5432/db?sslmode=require",
            "postgresql+psycopg://vs:***@pg:5432/db?sslmode=require",
        ),
        ("redis://:pw@cache:6379/0 then redis://u:p2@other/1", "redis://:***@cache:6379/0 then redis://u:***@other/1"),
        ("cache:6379,db=1,password=abc,ssl=true", "cache:6379,db=1,password=***,ssl=true"),
        ("host=pg password='two words' user=vs", "host=pg password='***' user=vs"),
        ('{"password": "x y", "user": "vs"}', '{"password": "***", "user": "vs"}'),
        ("sqlite:///work/mlflow.db and http://vs@host/x", "sqlite:///work/mlflow.db and http://vs@host/x"),
        ('password authentication failed for user "vs"', 'password authentication failed for user "vs"'),
    ],
)
def test_redact_hides_passwords_in_urls_and_pairs(text: str, shown: str) -> None:
    assert redact(text) == shown


def test_redact_hides_known_secrets_written_or_url_quoted() -> None:
    assert redact("login hunter2/x failed; url=u:hunter2%2Fx", ["hunter2/x"]) == "login *** failed; url=u:***"


class RmsScorer:
    """A scorer that needs nothing: the reload is what is tested."""

    name, version = "rms", "1"

    def score(
        self, samples: np.ndarray, sample_rate: float, context: object = None, *, machine_id: str | None = None
    ) -> Verdict:
        value = float(np.sqrt(np.mean(np.square(samples))))
        return Verdict(value, 1.0, value > 1.0)


def test_a_failed_reload_answers_and_logs_no_password(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    def failing_loader(settings: object, target: object) -> None:
        raise RuntimeError(f"(psycopg.OperationalError) connection to postgresql+psycopg://mlflow:{SECRET}@db/mlflow")

    settings = load_settings(None, workdir=tmp_path, serving={"api_key": "k"})
    caplog.set_level(logging.WARNING)
    with TestClient(create_app(settings, RmsScorer(), loader=failing_loader)) as client:
        response = client.post("/v1/models/reload", headers={"X-API-Key": "k"})
    assert response.status_code == 422
    assert "postgresql+psycopg://mlflow:***@db/mlflow" in response.json()["detail"]
    assert SECRET not in response.text and SECRET not in caplog.text and "mlflow:***@db" in caplog.text


@pytest.mark.postgres
def test_serve_failing_at_start_up_shows_no_password(throwaway_postgres: PostgresServer, tmp_path: Path) -> None:
    uri = throwaway_postgres.url(password=SECRET)  # the wrong password
    result = subprocess.run(
        [sys.executable, "-m", "vibrasense", "--workdir", str(tmp_path), "serve", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "VIBRASENSE_TRACKING__TRACKING_URI": uri},
    )
    output = result.stdout + result.stderr
    assert result.returncode == 4, output
    assert "password authentication failed" in output and "postgres:***@127.0.0.1" in output
    assert SECRET not in output and "Traceback" not in output


@pytest.mark.postgres
def test_prognose_prints_the_tracking_store_without_its_password(
    throwaway_postgres: PostgresServer, tmp_path: Path
) -> None:
    run = write_run_to_failure(tmp_path / "runs", "bearing_r", 120, seed=4)
    uri = throwaway_postgres.url()
    result = CliRunner().invoke(
        cli, ["--workdir", str(tmp_path / "work"), "prognose", str(run)], env={"VIBRASENSE_TRACKING__TRACKING_URI": uri}
    )
    assert result.exit_code == 0, result.output
    assert f"postgres:***@127.0.0.1:{throwaway_postgres.port}/postgres" in result.output
    assert throwaway_postgres.password not in result.output


def test_an_unusable_score_store_url_is_named_without_its_password(tmp_path: Path) -> None:
    for url in (f"postgresql+psycopg://vs:{SECRET}@pg:notaport/scores", f"nosuchdb://vs:{SECRET}@pg/scores"):
        with pytest.raises(StoreError) as refused:
            ScoreStore(url, tmp_path / "spool.db")
        assert SECRET not in str(refused.value) and "vs:***@pg" in str(refused.value), refused.value


def test_feature_store_errors_hide_configured_and_foreign_passwords(tmp_path: Path) -> None:
    settings = load_settings(None, workdir=tmp_path, store={"online_store": {"type": "postgres", "password": SECRET}})
    feast_said = f"could not connect with password={SECRET} to postgresql://feast:other-pw@pg/registry"
    shown = redact_store(feast_said, settings)
    assert shown == "could not connect with password=*** to postgresql://feast:***@pg/registry"
