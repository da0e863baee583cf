"""Fault injection: the service's stores fail under it, on servers of the tests' own, and come back.

The PostgreSQL cluster and the Redis are throwaway servers on free loopback ports (``tests/throwaway_servers``),
started, stopped and frozen here, never the shared ones. Each case says what the service must answer while the
store is down and after it is back; for the score store: every answered score stored once, none lost.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pandas as pd
import psutil
import psycopg
import pytest
from mixed_load import SCORING, WAV, mixed_load
from synthetic_machines import BandEnergyScorer

from throwaway_servers import PostgresServer, RedisServer, free_port
from vibrasense.config import Settings, load_settings
from vibrasense.errors import StoreError
from vibrasense.features.names import feature_names
from vibrasense.serving.app import create_app
from vibrasense.serving.server import serve_in_thread
from vibrasense.signals.records import RECORD_COLUMNS
from vibrasense.store import apply, materialize, write_repo

pytestmark = pytest.mark.faults


@pytest.fixture
def postgres(throwaway_postgres: PostgresServer) -> Iterator[PostgresServer]:
    """The module's throwaway cluster, running when the test starts and again after it (tests stop it)."""
    if throwaway_postgres.process is None:
        throwaway_postgres.start()
    yield throwaway_postgres
    if throwaway_postgres.process is None:
        throwaway_postgres.start()


@pytest.fixture
def scores_db(postgres: PostgresServer) -> Iterator[str]:
    """A fresh database on the throwaway cluster for the score store; its SQLAlchemy URL."""
    name = f"scores_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres.dsn(), autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    yield postgres.url(name)
    if postgres.process is None:
        postgres.start()
    with psycopg.connect(postgres.dsn(), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def stored_ids(server: PostgresServer, url: str) -> list[str]:
    """The score ids in the score store, in the order they were inserted."""
    with psycopg.connect(server.dsn(url.rsplit("/", 1)[1])) as connection:
        return [row[0] for row in connection.execute("SELECT score_id FROM scores ORDER BY id")]


def stored_alarm_events(server: PostgresServer, url: str) -> int:
    """Alarm events in the score store's database (they travel through the spool with the scores)."""
    with psycopg.connect(server.dsn(url.rsplit("/", 1)[1])) as connection:
        return connection.execute("SELECT count(*) FROM alarm_events").fetchone()[0]


def readiness(base: str) -> tuple[dict, float]:
    started = time.monotonic()
    body = httpx.get(f"{base}/readyz", timeout=5).json()
    return body, time.monotonic() - started


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        time.sleep(0.1)


def metric(base: str, name: str) -> float:
    for line in httpx.get(f"{base}/metrics", timeout=5).text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    raise AssertionError(f"no metric {name}")


@contextmanager
def frozen(server: PostgresServer) -> Iterator[None]:
    """Every process of the cluster stopped (SIGSTOP): connections open and hang, as on a hung host."""
    postmaster = psutil.Process(server.server_pid())
    processes = [postmaster, *postmaster.children(recursive=True)]
    for process in processes:
        process.suspend()
    try:
        yield
    finally:
        for process in processes:
            process.resume()


def test_score_store_down_and_back_every_answered_score_is_stored_once(
    postgres: PostgresServer, scores_db: str, settings: Settings, scorer: BandEnergyScorer
) -> None:
    settings.serving.score_store_url = scores_db
    with serve_in_thread(create_app(settings, scorer), settings) as base:
        before = mixed_load(base, 60, 8, SCORING)
        wait_for(lambda: len(stored_ids(postgres, scores_db)) == len(before.score_ids), 10, "writing")
        events_before = stored_alarm_events(postgres, scores_db)
        postgres.stop()
        during = mixed_load(base, 200, 16, SCORING)
        service = httpx.get(f"{base}/v1/model").status_code  # the service itself is fine
        wait_for(lambda: readiness(base)[0]["score_store"].startswith("degraded: "), 15, "degraded readiness")
        ready, seconds = readiness(base)
        spooled = metric(base, "vibrasense_score_store_spooled")
        degraded = metric(base, "vibrasense_score_store_degraded")
        postgres.start()
        wait_for(lambda: readiness(base)[0]["score_store"] == "ok", 30, "the replay")
        replayed = metric(base, "vibrasense_score_store_replayed_total")
        dropped = metric(base, "vibrasense_score_store_dropped_total")
    stored = stored_ids(postgres, scores_db)
    events_during = stored_alarm_events(postgres, scores_db) - events_before  # spooled with the scores
    answered = before.score_ids + during.score_ids
    print(
        f"\nscore store outage: {len(answered)} scores answered ({len(during.score_ids)} while PostgreSQL was "
        f"down), {int(spooled)} spooled, {int(replayed)} replayed, {len(stored)} stored, "
        f"{len(set(answered) - set(stored))} lost, {int(dropped)} dropped"
    )
    assert not during.transport_errors and not during.unexpected() and service == 200
    assert ready["status"] == "degraded" and seconds < 1, (ready, seconds)
    assert ready["score_store"].startswith(f"degraded: {int(spooled)} scores spooled (score store postgresql")
    assert postgres.password not in ready["score_store"]
    assert spooled == len(during.score_ids) + events_during and degraded == 1
    assert replayed == spooled and dropped == 0
    assert len(stored) == len(set(stored)) == len(answered) and set(stored) == set(answered)
    assert set(stored[: len(before.score_ids)]) == set(before.score_ids)  # replayed after what came before


def test_a_frozen_score_store_costs_no_memory_and_no_answer(
    postgres: PostgresServer, scores_db: str, settings: Settings, scorer: BandEnergyScorer
) -> None:
    settings.serving.score_store_url = scores_db
    app = create_app(settings, scorer)
    store = app.state.service.store
    with serve_in_thread(app, settings) as base:
        service = httpx.get(f"{base}/readyz").status_code
        with frozen(postgres):
            started = time.monotonic()
            during = mixed_load(base, 300, 16, SCORING)
            answering_s = time.monotonic() - started
            wait_for(lambda: readiness(base)[0]["score_store"].startswith("degraded: "), 15, "degraded readiness")
            ready, seconds = readiness(base)
            queued, spooled = store.pending(), store.spooled()
        wait_for(lambda: readiness(base)[0]["score_store"] == "ok", 30, "the replay after the thaw")
    stored = stored_ids(postgres, scores_db)
    events = stored_alarm_events(postgres, scores_db)  # spooled with the scores
    print(
        f"\nfrozen score store: {len(during.score_ids)} scores answered in {answering_s:.1f} s, {queued} queued in "
        f"memory, {spooled} spooled on disk, {len(stored)} stored after the thaw"
    )
    assert service == 200 and not during.transport_errors and not during.unexpected()
    assert queued == 0 and spooled == len(during.score_ids) + events, (queued, spooled, events)
    assert seconds < 1 and "has not answered for" in ready["score_store"], ready
    assert sorted(stored) == sorted(during.score_ids)


def test_scores_spooled_by_a_service_stopped_during_the_outage_are_stored_by_the_next(
    postgres: PostgresServer, scores_db: str, settings: Settings, scorer: BandEnergyScorer
) -> None:
    settings.serving.score_store_url = scores_db
    postgres.stop()
    with serve_in_thread(create_app(settings, scorer), settings) as base:
        during = mixed_load(base, 40, 4, SCORING)
    postgres.start()
    with serve_in_thread(create_app(settings, scorer), settings) as base:
        wait_for(lambda: readiness(base)[0]["score_store"] == "ok", 30, "the replay at start-up")
    assert not during.transport_errors and not during.unexpected()
    assert sorted(stored_ids(postgres, scores_db)) == sorted(during.score_ids)


T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def online_store_on(redis_server: RedisServer, settings: Settings) -> Settings:
    """A Feast repository in the work directory with its online store on ``redis_server``, applied and filled."""
    store = {"project": f"faults_{uuid.uuid4().hex[:8]}", "online_store": {"type": "redis"}}
    store["online_store"]["connection_string"] = f"127.0.0.1:{redis_server.port}"
    configured = load_settings(None, workdir=settings.workdir, store=store, serving={"api_key": "test-key"})
    names = feature_names(configured.features.vibration)
    rows = []
    for hour in range(3):
        row = dict.fromkeys(RECORD_COLUMNS) | {name: hour + index for index, name in enumerate(names)}
        row |= {"recording_id": f"pump-7-{hour}", "machine_id": "pump-7", "machine_type": "pump", "label": "normal"}
        row |= {"event_timestamp": T0 + timedelta(hours=hour), "split": "train", "source": "x.wav", "kind": "audio"}
        row |= {"sample_rate": 16000, "channels": 1, "duration": 1.0}
        rows.append(row)
    frame = pd.DataFrame.from_records(rows, columns=[*RECORD_COLUMNS, *names])
    frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True)
    (configured.workdir / "features").mkdir(parents=True, exist_ok=True)
    frame.to_parquet(configured.workdir / "features" / "features.parquet", index=False)
    write_repo(configured)
    apply(configured)
    refill(configured)
    return configured


def refill(settings: Settings) -> None:
    """Materialise every row again (a Redis that restarted empty has nothing, whatever the registry recalls)."""
    materialize(settings, start=T0 - timedelta(days=1), end=datetime.now(UTC))


def test_online_store_down_and_back_scoring_goes_on_and_features_return(
    throwaway_redis: RedisServer, settings: Settings, scorer: BandEnergyScorer
) -> None:
    configured = online_store_on(throwaway_redis, settings)
    clip = {"file": ("clip.wav", WAV, "audio/wav")}
    with serve_in_thread(create_app(configured, scorer), configured) as base:
        assert httpx.post(f"{base}/v1/score/file", files=clip, data={"machine_id": "pump-7"}).status_code == 200
        wait_for(lambda: readiness(base)[0]["feature_store"] == "ok", 30, "feature store readiness")
        up = httpx.get(f"{base}/v1/machines/pump-7", timeout=10).json()
        throwaway_redis.stop()
        scored = httpx.post(f"{base}/v1/score/file", files=clip, data={"machine_id": "pump-7"}, timeout=10)
        down = httpx.get(f"{base}/v1/machines/pump-7", timeout=10)
        wait_for(lambda: readiness(base)[0]["feature_store"].startswith("unavailable"), 15, "degraded readiness")
        ready, seconds = readiness(base)
        throwaway_redis.start()
        refill(configured)
        wait_for(lambda: readiness(base)[0]["feature_store"] == "ok", 30, "the feature store's return")
        back = httpx.get(f"{base}/v1/machines/pump-7", timeout=10).json()
    assert up["features_status"] == "ok" and up["features"]["rms_mean"] == 2  # the latest of the three hours
    assert scored.status_code == 200 and down.status_code == 200
    assert down.json()["features"] is None and down.json()["features_status"].startswith("unavailable")
    assert len(down.json()["history"]) == 2  # the scores are there, from the score store
    assert ready["status"] == "degraded" and seconds < 1, (ready, seconds)
    assert back["features_status"] == "ok" and back["features"]["rms_mean"] == 2


def test_mlflow_store_unreachable_at_start_fails_in_seconds_naming_it(postgres: PostgresServer, tmp_path: Path) -> None:
    postgres.stop()  # the tracking store's server is down when the service starts
    uri = postgres.url("mlflow")
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "vibrasense", "--workdir", str(tmp_path), "serve", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "VIBRASENSE_TRACKING__TRACKING_URI": uri},
    )
    seconds = time.monotonic() - started
    output = result.stdout + result.stderr
    assert result.returncode == StoreError.exit_code and "Traceback" not in output, output
    assert f"tracking store postgresql+psycopg://postgres:***@127.0.0.1:{postgres.port}/mlflow" in output
    assert "unreachable" in output and postgres.password not in output
    assert seconds < 30, f"took {seconds:.0f} s"  # the interpreter and imports; the check itself is 3 s at most


def test_mlflow_store_unreachable_at_reload_keeps_the_model_serving(
    postgres: PostgresServer, settings: Settings, scorer: BandEnergyScorer
) -> None:
    postgres.stop()
    settings.tracking.tracking_uri = postgres.url("mlflow")
    with serve_in_thread(create_app(settings, scorer), settings) as base:
        reload = httpx.post(f"{base}/v1/models/reload", headers={"X-API-Key": "test-key"}, timeout=30)
        model = httpx.get(f"{base}/v1/model").json()
        scored = httpx.post(f"{base}/v1/score/file", files={"file": ("clip.wav", WAV, "audio/wav")})
    assert reload.status_code == 503, reload.text
    problem = reload.json()
    assert "still serving band-energy-test v1" in problem["detail"] and "tracking store" in problem["detail"]
    assert postgres.password not in reload.text
    assert model == {"name": "band-energy-test", "version": "1"} and scored.status_code == 200
