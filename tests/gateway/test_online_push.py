"""The gateway's online push: each machine's newest snapshot into the real Feast online store (SQLite)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vibrasense.config import Settings, load_settings
from vibrasense.features.featurize import featurize
from vibrasense.features.names import feature_names
from vibrasense.features.spec import FeatureSpec
from vibrasense.gateway.online_push import OnlinePusher, Snapshot
from vibrasense.signals.records import RECORD_COLUMNS
from vibrasense.store import OnlineFeatureClient, apply, write_repo

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
RATE = 16_000


def applied_store(tmp_path: Path) -> Settings:
    """A SQLite feature repository applied over a one-row feature table (nothing materialised)."""
    settings = load_settings(None, workdir=tmp_path)
    names = feature_names(settings.features.vibration)
    record = {c: None for c in RECORD_COLUMNS} | {"recording_id": "r0", "machine_id": "old", "event_timestamp": T0}
    frame = pd.DataFrame([record | dict.fromkeys(names, 1.0)], columns=[*RECORD_COLUMNS, *names])
    frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True)
    path = settings.workdir / "features" / "features.parquet"
    path.parent.mkdir(parents=True)
    frame.to_parquet(path, index=False)
    write_repo(settings)
    apply(settings)
    return settings


def tone(hz: float, amplitude: float) -> np.ndarray:
    t = np.arange(RATE) / RATE
    return amplitude * np.sin(2 * np.pi * hz * t) + 0.01 * np.random.default_rng(int(hz)).normal(size=RATE)


def test_the_newest_snapshot_of_each_machine_is_pushed_as_the_features_it_has(tmp_path: Path) -> None:
    settings = applied_store(tmp_path)
    pushes: list[tuple[str, int]] = []
    pusher = OnlinePusher(settings, on_push=lambda outcome, rows: pushes.append((outcome, rows))).start()
    pusher.add("pump_a", Snapshot(tone(120, 0.5), RATE, T0))
    pusher.add("pump_a", Snapshot(tone(300, 2.0), RATE, T0 + timedelta(seconds=1)))  # replaces the first
    pusher.add("fan_b", Snapshot(tone(50, 1.0), RATE, T0))
    pusher.stop()  # pushes what is pending
    assert (pusher.status, pusher.pushed, pushes[-1]) == ("ok", 2, ("ok", 2))

    client = OnlineFeatureClient(settings)
    got = client.get("pump_a")
    assert got is not None and pd.Timestamp(got["event_timestamp"]) == pd.Timestamp(T0 + timedelta(seconds=1))
    spec = FeatureSpec.from_settings(settings)
    expected = featurize(tone(300, 2.0), RATE, spec, logmel=False, strict=False).values
    assert got["vib_rms"] == pytest.approx(expected["vib_rms"]) and got["vib_rms"] == pytest.approx(2.0 / 2**0.5, 1e-3)
    assert got["rms_mean"] == pytest.approx(expected["rms_mean"])
    assert got["vib_env_bpfo"] is None  # no bearing given: no envelope feature, not a made-up number
    assert client.get("fan_b")["vib_rms"] == pytest.approx(1.0 / 2**0.5, 1e-3)
    assert client.get("old") is None  # never materialised


def test_a_store_that_is_not_applied_keeps_the_rows_and_says_why(tmp_path: Path) -> None:
    settings = load_settings(None, workdir=tmp_path)
    write_repo(settings)  # a repository, never applied: the online view is not registered
    pusher = OnlinePusher(settings).start()
    pusher.add("pump_a", Snapshot(tone(120, 0.5), RATE, T0))
    pusher.stop()
    assert pusher.degraded and pusher.pushed == 0
    assert "machine_online_features" in pusher.status
