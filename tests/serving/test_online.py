"""The online store as the service sees it: down at start-up, back empty, refilled, frozen, thawed.

A throwaway ``redis-server`` on a free port (never the shared one) is stopped, restarted without its data
and frozen (SIGSTOP) under a real Feast repository; the service's :class:`OnlineFeatures` must answer at
once throughout, heal by itself and say when the store came back empty.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from synthetic_machines import BandEnergyScorer

from throwaway_servers import RedisServer
from vibrasense.config import Settings, load_settings
from vibrasense.features.names import feature_names
from vibrasense.serving.app import create_app
from vibrasense.serving.online import OnlineFeatures
from vibrasense.signals.records import RECORD_COLUMNS
from vibrasense.store import apply, materialize, write_repo

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
MACHINES = ("pump_a", "pump_b", "fan_c")


def feature_store(tmp_path: Path, redis: RedisServer) -> Settings:
    """A Feast repository on the throwaway Redis, features written and applied (not materialised)."""
    settings = load_settings(
        None,
        workdir=tmp_path,
        store={"online_store": {"type": "redis", "connection_string": f"127.0.0.1:{redis.port}"}},
    )
    names = feature_names(settings.features.vibration)
    rows = []
    for index, machine in enumerate(MACHINES):
        record = {
            "recording_id": f"{machine}-0",
            "machine_id": machine,
            "machine_type": "pump",
            "event_timestamp": pd.Timestamp(T0 + timedelta(hours=index)),
            "label": "normal",
            "split": "train",
            "source": f"/data/{machine}.wav",
            "kind": "audio",
            "sample_rate": 16000,
            "channels": 1,
            "duration": 1.0,
        }
        rows.append(record | {name: 10.0 * (index + 1) + column for column, name in enumerate(names)})
    frame = pd.DataFrame.from_records(rows, columns=[*RECORD_COLUMNS, *names])
    frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True)
    path = settings.workdir / "features" / "features.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    write_repo(settings)
    apply(settings)
    return settings


def timed(call: Callable[[], object]) -> tuple[object, float]:
    started = time.monotonic()
    return call(), time.monotonic() - started


def wait_for(condition: Callable[[], bool], limit_s: float) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < limit_s, f"not within {limit_s} s"
        time.sleep(0.05)
    return time.monotonic() - started


@pytest.mark.redis
def test_redis_down_at_start_up_is_used_once_back_and_an_empty_return_is_told(
    throwaway_redis: RedisServer, tmp_path: Path
) -> None:
    settings = feature_store(tmp_path, throwaway_redis)
    throwaway_redis.stop()
    online = OnlineFeatures(settings, probe_interval_s=0.2, probe_timeout_s=3.0).start()
    try:
        assert online.status().startswith("unavailable: StoreError: feature store: the Redis online store")
        (features, status), seconds = timed(lambda: online.get("pump_a"))
        assert features is None and status.startswith("unavailable") and seconds < 0.1  # the backoff answers

        throwaway_redis.start()  # back, and empty: it kept nothing
        wait_for(lambda: online.status().startswith("empty"), 10)
        assert online.status().startswith("empty: no online features for machine 'pump_a'")

        materialize(settings)
        recovered = wait_for(lambda: online.status() == "ok", 10)
        assert recovered < 10
        features, status = online.get("pump_b")
        assert status == "ok" and features["rms_mean"] == pytest.approx(20.0)

        throwaway_redis.freeze()  # accepts connections, answers nothing
        (features, status), seconds = timed(lambda: online.get("fan_c"))
        assert features is None and "Timeout" in status and seconds < 2, (status, seconds)
        (_, status), seconds = timed(lambda: online.get("fan_c"))
        assert status.startswith("unavailable") and seconds < 0.1
        _, seconds = timed(online.status)
        assert seconds < 0.05
        wait_for(lambda: online.status().startswith("unavailable"), 6)

        throwaway_redis.thaw()
        wait_for(lambda: online.status() == "ok", 10)
        assert online.get("fan_c")[0]["rms_mean"] == pytest.approx(30.0)
    finally:
        online.stop()


@pytest.mark.redis
def test_readiness_answers_within_a_second_while_redis_is_frozen(
    throwaway_redis: RedisServer, tmp_path: Path, scorer: BandEnergyScorer
) -> None:
    settings = feature_store(tmp_path, throwaway_redis)
    materialize(settings)
    with TestClient(create_app(settings, scorer)) as client:
        assert client.get("/readyz").json()["feature_store"] == "ok"
        throwaway_redis.freeze()
        try:
            answers = []
            for _ in range(8):
                response, seconds = timed(lambda: client.get("/readyz"))
                answers.append((response.json()["feature_store"], seconds))
                time.sleep(1.0)
            machine, seconds = timed(lambda: client.get("/v1/machines/pump_a"))
        finally:
            throwaway_redis.thaw()
    assert max(seconds for _, seconds in answers) < 1.0, answers
    assert answers[-1][0].startswith("unavailable"), answers
    assert seconds < 1.0 and machine.status_code == 404, (machine.text, seconds)  # never scored, no features now
