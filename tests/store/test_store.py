"""The feature store against real SQLite, PostgreSQL and Redis online stores: one suite, three backends.

Feature tables are built here with known values, so every assertion can name the exact number expected.
PostgreSQL tests create and drop their own database; Redis tests use their own project and tear it down,
and the password test starts its own ``redis-server --requirepass`` on a free port.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pytest
import redis
from typer.testing import CliRunner

from vibrasense.cli import app
from vibrasense.config import Settings, load_settings
from vibrasense.errors import StoreError
from vibrasense.features.names import feature_names
from vibrasense.features.spec import FeatureSpec
from vibrasense.serving.server import free_port
from vibrasense.signals.records import RECORD_COLUMNS
from vibrasense.store import (
    OnlineFeatureClient,
    apply,
    build_training_set,
    materialize,
    open_store,
    operations,
    repo_path,
    write_repo,
)
from vibrasense.store.definitions import VIBRATION_VIEW, Definitions
from vibrasense.store.repository import CONFIG_FILE

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def feature_table(settings: Settings, rows: list[tuple[str, datetime, float]]) -> pd.DataFrame:
    """A features-stage table: every feature of row ``(machine, time, v)`` is ``v`` plus its column index."""
    names = feature_names(settings.features.vibration)
    records = []
    for index, (machine, moment, value) in enumerate(rows):
        record = {
            "recording_id": f"{machine}-{index}",
            "machine_id": machine,
            "machine_type": "pump",
            "event_timestamp": pd.Timestamp(moment),
            "label": "normal",
            "split": "train",
            "source": f"/data/{machine}-{index}.wav",
            "kind": "audio",
            "sample_rate": 16000,
            "channels": 1,
            "duration": 1.0,
        }
        record |= {name: value + column for column, name in enumerate(names)}
        records.append(record)
    frame = pd.DataFrame.from_records(records, columns=[*RECORD_COLUMNS, *names])
    frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True)
    return frame


def write_features(settings: Settings, frame: pd.DataFrame) -> Path:
    path = settings.workdir / "features" / "features.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    return path


PLANT = [(m, T0 + k * HOUR, 10.0 * (i + 1) + k) for i, m in enumerate(("pump_a", "pump_b", "fan_c")) for k in range(4)]


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("redis", marks=pytest.mark.redis),
    ]
)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """Settings for a fresh, empty store of each kind; removed afterwards."""
    kind = request.param
    project = f"vs_{uuid.uuid4().hex[:10]}"
    store: dict = {"project": project, "online_store": {"type": kind}}
    database = None
    if kind == "postgres":
        database = project
        with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{database}"')
        server = {"database": database, "sslmode": "disable"}
        store |= {"online_store": {"type": "postgres", **server}, "registry": {"type": "sql", **server}}
    settings = load_settings(None, workdir=tmp_path / "work", store=store)
    yield settings
    if (repo_path(settings) / CONFIG_FILE).is_file():
        with contextlib.suppress(StoreError):
            open_store(settings).teardown()
    if kind == "redis":
        client = redis.Redis(host="127.0.0.1", port=6379)
        leftover = [k for k in client.scan_iter(count=1000) if project.encode() in k]
        if leftover:
            client.delete(*leftover)
    if database:
        with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{database}" WITH (FORCE)')


def ready_store(settings: Settings, rows: list[tuple[str, datetime, float]] = PLANT) -> pd.DataFrame:
    frame = feature_table(settings, rows)
    write_features(settings, frame)
    write_repo(settings)
    apply(settings)
    return frame


def online_row_count(settings: Settings) -> int:
    """Rows the online store holds for this project, read with the store's own client (no Feast)."""
    project = settings.store.project
    if settings.store.online_store.type == "sqlite":
        import sqlite3

        with sqlite3.connect(repo_path(settings) / "data" / "online_store.db") as conn:
            tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
            return sum(
                conn.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables if t.startswith(project)
            )
    if settings.store.online_store.type == "postgres":
        pg = settings.store.online_store
        with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={pg.database}") as conn:
            tables = [
                r[0]
                for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname='public'")
                if r[0].startswith(project)
            ]
            return sum(conn.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables)
    client = redis.Redis(host="127.0.0.1", port=6379)
    return sum(client.hlen(k) for k in client.scan_iter(count=1000) if project.encode() in k)


def test_apply_materialize_and_online_get_return_each_machines_latest_row(backend: Settings) -> None:
    frame = ready_store(backend)
    result = materialize(backend)
    assert (result.rows, result.machines) == (12, 3)
    client = OnlineFeatureClient(backend)
    for machine, base in (("pump_a", 10.0), ("pump_b", 20.0), ("fan_c", 30.0)):
        got = client.get(machine)
        assert got is not None
        latest = frame[frame.machine_id == machine].iloc[-1]
        assert got["rms_mean"] == pytest.approx(base + 3)  # the fourth (latest) recording
        assert got["mfcc_5"] == pytest.approx(base + 3 + 12)
        assert got["vib_env_ftf"] == pytest.approx(latest["vib_env_ftf"])
        assert pd.Timestamp(got["event_timestamp"]) == latest["event_timestamp"]
    assert client.get("no_such_machine") is None
    through_feast = client.get_online_features("pump_b")  # Feast's public path gives the same answer
    fast = client.get("pump_b")
    assert {k: v[0] for k, v in through_feast.items() if k != "machine_id"} == pytest.approx(
        {k: v for k, v in fast.items() if k not in ("machine_id", "event_timestamp")}, nan_ok=True
    )


def test_a_missing_value_is_none_online_and_the_rest_of_its_vector_is_kept(tmp_path: Path) -> None:
    settings = load_settings(None, workdir=tmp_path)
    frame = feature_table(settings, PLANT)
    frame.loc[frame.index[-1], ["vib_env_bpfo", "mfcc_5"]] = np.nan  # fan_c's latest recording: no bearing
    write_features(settings, frame)
    write_repo(settings)
    apply(settings)
    materialize(settings)
    client = OnlineFeatureClient(settings)
    got = client.get("fan_c")
    assert got is not None and (got["vib_env_bpfo"], got["mfcc_5"]) == (None, None)
    assert (got["rms_mean"], got["vib_env_bpfi"]) == pytest.approx(
        (33.0, 33.0 + frame.columns.get_loc("vib_env_bpfi") - len(RECORD_COLUMNS))
    )
    assert np.isnan(client.get_online_features("fan_c")["vib_env_bpfo"][0])
    assert client.get("pump_a")["vib_env_bpfo"] is not None


def test_materialize_is_incremental_and_idempotent(backend: Settings) -> None:
    ready_store(backend)
    first = materialize(backend, end=T0 + 5 * HOUR)
    assert (first.rows, first.machines) == (12, 3)
    count = online_row_count(backend)
    per_machine = 3 if backend.store.online_store.type == "redis" else 2  # two vectors (and Redis's time stamp)
    assert count == 3 * per_machine
    materialize(backend, start=T0 - HOUR, end=T0 + 5 * HOUR)  # the same range again: an upsert, no duplicate
    assert online_row_count(backend) == count

    later = [("pump_a", T0 + 10 * HOUR, 99.0), ("new_pump", T0 + 11 * HOUR, 50.0)]
    write_features(backend, feature_table(backend, PLANT + later))
    result = materialize(backend, end=T0 + 12 * HOUR)  # incremental: from the last run's end
    assert (result.start, result.rows, result.machines) == (T0 + 5 * HOUR, 2, 2)
    client = OnlineFeatureClient(backend)
    assert client.get("pump_a")["rms_mean"] == pytest.approx(99.0)
    assert client.get("new_pump")["rms_mean"] == pytest.approx(50.0)
    assert client.get("pump_b")["rms_mean"] == pytest.approx(23.0)


def test_historical_retrieval_never_sees_a_later_value(backend: Settings) -> None:
    ready_store(backend)
    entities = pd.DataFrame(
        {
            "machine_id": ["pump_a", "pump_a", "pump_a", "pump_a", "pump_b"],
            "event_timestamp": [
                T0 - HOUR,
                T0 + 30 * timedelta(minutes=1),
                T0 + 2 * HOUR,
                T0 + 3 * HOUR - timedelta(seconds=1),
                T0 + 9 * HOUR,
            ],
            "label": ["a", "b", "c", "d", "e"],
        }
    )
    rows = build_training_set(backend, entities)
    assert rows["label"].tolist() == ["a", "b", "c", "d", "e"]  # order and carried columns kept
    assert np.isnan(rows["rms_mean"].iloc[0])  # before the first recording: nothing, not a later value
    assert rows["rms_mean"].iloc[1:].tolist() == pytest.approx([10.0, 12.0, 12.0, 23.0])
    assert rows["vib_rms"].iloc[2] == pytest.approx(12.0 + 13)


def test_store_that_cannot_be_reached_fails_fast_naming_it(tmp_path: Path) -> None:
    settings = load_settings(
        None, workdir=tmp_path, store={"online_store": {"type": "postgres", "port": 1, "password": "s3cret-pw"}}
    )
    write_features(settings, feature_table(settings, PLANT))
    write_repo(settings)
    started = datetime.now(UTC)
    with pytest.raises(StoreError, match=r"PostgreSQL online store at 127\.0\.0\.1:1 cannot be reached") as error:
        apply(settings)
    assert (datetime.now(UTC) - started).total_seconds() < 5
    assert "s3cret-pw" not in str(error.value)
    written = (repo_path(settings) / CONFIG_FILE).read_text()
    assert "s3cret-pw" not in written and "${VIBRASENSE_STORE__ONLINE_STORE__PASSWORD}" in written

    redis_settings = load_settings(
        None,
        workdir=tmp_path / "r",
        store={"online_store": {"type": "redis", "connection_string": "127.0.0.1:1,password=s3cret-pw,db=2"}},
    )
    write_repo(redis_settings)
    with pytest.raises(StoreError, match=r"Redis online store at 127\.0\.0\.1:1") as error:
        OnlineFeatureClient(redis_settings)
    assert "s3cret-pw" not in str(error.value)
    assert "s3cret-pw" not in (repo_path(redis_settings) / CONFIG_FILE).read_text()


def test_schema_mismatch_names_the_columns(tmp_path: Path) -> None:
    settings = load_settings(None, workdir=tmp_path)
    frame = feature_table(settings, PLANT).drop(columns=["mfcc_3", "vib_kurtosis"])
    write_features(settings, frame)
    write_repo(settings)
    with pytest.raises(StoreError, match=r"lacks columns \['mfcc_3', 'vib_kurtosis'\]"):
        apply(settings)
    wrong = feature_table(settings, PLANT)
    wrong["rms_mean"] = "loud"
    write_features(settings, wrong)
    with pytest.raises(StoreError, match=r"rms_mean \(string\)"):
        apply(settings)


def test_missing_repository_and_unapplied_store_say_what_to_run(tmp_path: Path) -> None:
    settings = load_settings(None, workdir=tmp_path)
    with pytest.raises(StoreError, match="vibrasense store init"):
        OnlineFeatureClient(settings)
    write_features(settings, feature_table(settings, PLANT))
    write_repo(settings)
    with pytest.raises(StoreError, match="vibrasense store apply"):
        OnlineFeatureClient(settings)
    with pytest.raises(StoreError, match="vibrasense store apply"):
        materialize(settings)


def test_the_generated_repository_is_a_plain_feast_repository(tmp_path: Path) -> None:
    from feast import FeatureStore

    settings = load_settings(None, workdir=tmp_path)
    ready_store(settings)
    materialize(settings)
    store = FeatureStore(repo_path=str(repo_path(settings)))  # as the Feast SDK or CLI would open it
    assert sorted(s.name for s in store.list_feature_services()) == [
        "audio_detector_features",
        "bearing_features",
        "detector_features",
        "online_features",
    ]
    online = store.get_online_features(
        features=store.get_feature_service("online_features"), entity_rows=[{"machine_id": "pump_b"}]
    ).to_dict()
    view = store.get_feature_view("machine_online_features")  # the view's tags name each vector's columns
    audio = json.loads(view.tags["vibrasense.columns.audio_features"])
    vibration = json.loads(view.tags["vibrasense.columns.vibration_features"])
    assert online["audio_features"][0][audio.index("rms_mean")] == pytest.approx(23.0)
    assert online["vibration_features"][0][vibration.index("vib_rms")] == pytest.approx(23.0 + 13)
    assert len(online["audio_features"][0]) == len(audio) and "vib_rms" not in audio
    training = store.get_historical_features(  # offline, a feature per column
        entity_df=pd.DataFrame({"machine_id": ["pump_b"], "event_timestamp": [T0 + 9 * HOUR]}),
        features=store.get_feature_service("audio_detector_features"),
    ).to_df()
    assert training["rms_mean"].tolist() == [pytest.approx(23.0)] and "vib_rms" not in training


def test_cli_init_apply_materialize_get(tmp_path: Path) -> None:
    runner = CliRunner()
    workdir = tmp_path / "work"
    settings = load_settings(None, workdir=workdir)
    write_features(settings, feature_table(settings, PLANT))
    base = ["--workdir", str(workdir), "store"]
    result = runner.invoke(app, [*base, "init"])
    assert result.exit_code == 0, result.output
    assert (workdir / "feature_repo" / "vibrasense_features.py").is_file()
    result = runner.invoke(app, [*base, "apply"])
    assert result.exit_code == 0 and "machine_audio_features" in result.output, result.output
    result = runner.invoke(app, [*base, "materialize"])
    assert result.exit_code == 0 and "12 rows of 3 machines" in result.output, result.output
    result = runner.invoke(app, [*base, "get", "fan_c"])
    assert result.exit_code == 0 and "33" in result.output, result.output
    result = runner.invoke(app, [*base, "get", "ghost"])
    assert result.exit_code == 1 and "no features for machine 'ghost'" in result.output

    entities = tmp_path / "entities.csv"
    pd.DataFrame({"machine_id": ["pump_a"], "event_timestamp": [(T0 + HOUR).isoformat()]}).to_csv(entities, index=False)
    out = tmp_path / "set.parquet"
    result = runner.invoke(app, [*base, "training-set", str(entities), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert pd.read_parquet(out)["rms_mean"].tolist() == [pytest.approx(11.0)]


def test_a_long_materialisation_runs_in_windows_under_a_progress_bar(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = load_settings(None, workdir=tmp_path)
    archive = [(f"pump_{k:02d}", T0 + k * HOUR, float(k)) for k in range(12)]  # each machine once: windows are free
    ready_store(settings, [*archive, ("pump_00", T0 + 12 * HOUR, 100.0)])
    monkeypatch.setattr(operations, "WINDOW_ROWS", 4)
    result = materialize(settings, end=T0 + 13 * HOUR, progress=True)
    assert (result.start, result.rows, result.machines) == (T0, 13, 12)
    bar = capsys.readouterr().err
    assert "materialise" in bar and "13/13" in bar  # 13 rows into the one online view
    store = open_store(settings)
    assert store.get_feature_view("machine_online_features").most_recent_end_time == T0 + 13 * HOUR
    client = OnlineFeatureClient(settings)  # the latest row wins across windows, oldest first
    assert [client.get(m)["rms_mean"] for m in ("pump_00", "pump_05", "pump_11")] == pytest.approx([100.0, 5.0, 11.0])


def test_windows_are_only_as_many_as_cost_few_extra_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(operations, "WINDOW_ROWS", 4)
    times = np.array([np.datetime64("2026-03-01T08:00") + np.timedelta64(k, "h") for k in range(12)])
    start, end = T0, T0 + 12 * HOUR
    distinct = operations._windows(times, np.array([f"m{k}" for k in range(12)]), start, end)
    assert [(a, b, n) for a, b, n in distinct] == [
        (T0, T0 + 4 * HOUR, 4),
        (T0 + 4 * HOUR, T0 + 8 * HOUR, 4),
        (T0 + 8 * HOUR, end, 4),
    ]
    repeated = operations._windows(times, np.array(["a", "b", "c"] * 4), start, end)  # every window: all three
    assert repeated == [(start, end, 12)]
    assert operations._windows(times, np.array(["a"] * 12), end, end) == []
    assert operations._windows(times, np.array(["a"] * 12), end, end + HOUR) == [(end, end + HOUR, 0)]


def test_definitions_take_the_columns_of_the_tables_own_feature_spec(tmp_path: Path) -> None:
    settings = load_settings(None, workdir=tmp_path)
    extracted = load_settings(None, workdir=tmp_path, features={"vibration": {"band_edges_hz": [0, 1000, 4000]}})
    spec = FeatureSpec.from_settings(extracted)
    parquet = write_features(settings, feature_table(extracted, PLANT))
    spec.save(parquet.parent)
    write_repo(settings)
    apply(settings)
    views = {v.name: [f.name for f in v.features] for v in open_store(settings).list_feature_views()}
    assert views[VIBRATION_VIEW] == list(spec.vibration_columns)
    assert "vib_band_1000_4000hz" in views[VIBRATION_VIEW] and "vib_band_500_1000hz" not in views[VIBRATION_VIEW]
    materialize(settings)
    got = OnlineFeatureClient(settings).get("pump_a")
    assert got["vib_band_1000_4000hz"] == pytest.approx(13.0 + spec.columns.index("vib_band_1000_4000hz"))


def test_the_definitions_file_says_what_apply_registers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from feast.repo_operations import parse_repo

    settings = load_settings(None, workdir=tmp_path)
    write_features(settings, feature_table(settings, PLANT))
    root = write_repo(settings)
    monkeypatch.chdir(root)  # as `feast plan` loads it
    monkeypatch.syspath_prepend(str(root))
    parsed = parse_repo(root)
    ours = {o.name: o for o in Definitions.load(root).feast_objects()}
    theirs = [*parsed.data_sources, *parsed.feature_views, *parsed.feature_services]
    theirs += [e for e in parsed.entities if e.name != "__dummy"]  # Feast's own placeholder entity
    assert sorted(o.name for o in theirs) == sorted(ours)
    assert all(o == ours[o.name] for o in theirs)


@pytest.fixture
def redis_with_password(tmp_path: Path) -> Iterator[tuple[int, str]]:
    """A real redis-server of this test's own that requires a password: ``(port, password)``."""
    binary = shutil.which("redis-server")
    if binary is None:
        reason = "needs the redis-server binary on PATH to start a Redis that requires a password"
        if os.environ.get("VIBRASENSE_REQUIRE_SERVERS", "") not in ("", "0"):
            pytest.fail(reason)
        pytest.skip(reason)
    port, password = free_port(), f"pw-{uuid.uuid4().hex[:12]}"
    args = ["--bind", "127.0.0.1", "--port", str(port), "--requirepass", password]
    args += ["--save", "", "--appendonly", "no", "--dir", str(tmp_path)]
    server = subprocess.Popen([binary, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(host="127.0.0.1", port=port, password=password).ping()
                break
            except redis.ConnectionError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"redis-server on port {port} did not start: {server.stdout.read()!r}")
                time.sleep(0.05)
        yield port, password
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_redis_that_requires_a_password_takes_the_connection_string_whole(
    tmp_path: Path, redis_with_password: tuple[int, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, password = redis_with_password
    project = f"vs_{uuid.uuid4().hex[:10]}"

    def settings_with(secret: str) -> Settings:
        connection = f"127.0.0.1:{port},db=3,password={secret}"
        store = {"project": project, "online_store": {"type": "redis", "connection_string": connection}}
        return load_settings(None, workdir=tmp_path / "work", store=store)

    settings = settings_with(password)
    ready_store(settings)
    written = (repo_path(settings) / CONFIG_FILE).read_text()
    assert password not in written
    assert f"127.0.0.1:{port},db=3,password=${{VIBRASENSE_STORE__ONLINE_STORE__PASSWORD}}" in written
    assert (materialize(settings).rows, OnlineFeatureClient(settings).get("pump_b")["rms_mean"]) == (12, 23.0)
    assert OnlineFeatureClient(settings).get_online_features("pump_b")["rms_mean"] == [pytest.approx(23.0)]
    in_db = {db: list(redis.Redis(port=port, password=password, db=db).scan_iter()) for db in (0, 3)}
    assert in_db[0] == [] and any(project.encode() in key for key in in_db[3])  # db=3 was honoured

    wrong = settings_with("not-the-pw")
    for attempt in (lambda: OnlineFeatureClient(wrong), lambda: materialize(wrong, start=T0 - HOUR)):
        with pytest.raises(StoreError, match=rf"Redis online store 127\.0\.0\.1:{port},db=3") as error:
            attempt()
        assert "not-the-pw" not in str(error.value) and password not in str(error.value)

    # the plain Feast way: the generated file names the variable, and Feast expands it
    from feast import FeatureStore

    monkeypatch.setenv("VIBRASENSE_STORE__ONLINE_STORE__PASSWORD", password)
    store = FeatureStore(repo_path=str(repo_path(settings)))
    online = store.get_online_features(
        features=["machine_online_features:audio_features"], entity_rows=[{"machine_id": "fan_c"}]
    )
    audio = json.loads(store.get_feature_view("machine_online_features").tags["vibrasense.columns.audio_features"])
    assert online.to_dict()["audio_features"][0][audio.index("rms_mean")] == pytest.approx(33.0)
