"""Alarm events in the score store: spooled while the database is down, replayed once; old databases migrated;
open alarms taken over by the next start; the gateway's calls (summary values, machine status, idempotent ids)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alarm_clips import alarm_settings, sine_g
from sqlalchemy import create_engine, inspect, text
from synthetic_machines import RATE, faulty_clip, fitted_scorer, healthy_clip

from vibrasense.alarms import AlarmEvent
from vibrasense.errors import InputError
from vibrasense.serving.schemas import ScoreRequest
from vibrasense.serving.scores import ScoreRow, ScoreStore
from vibrasense.serving.service import ScoringService

UNREACHABLE_PG = "postgresql://postgres@127.0.0.1:1/nothing"
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
OLD_SCORES = """CREATE TABLE scores (
    id INTEGER PRIMARY KEY, machine_id VARCHAR(128) NOT NULL, scored_at TIMESTAMP NOT NULL,
    score FLOAT NOT NULL, threshold FLOAT NOT NULL, is_anomaly BOOLEAN NOT NULL, model_name VARCHAR(256) NOT NULL,
    model_version VARCHAR(64) NOT NULL, processing_ms FLOAT NOT NULL)"""


def event(kind: str, minute: int, alarm_id: str = "a" * 32, **details: object) -> AlarmEvent:
    return AlarmEvent(alarm_id, kind, "fan-1", "x", "score", "alarm", T0 + timedelta(minutes=minute), **details)


def verdict(minute: int, score: float | None = 0.5, **fields: object) -> ScoreRow:
    return ScoreRow(
        machine_id="fan-1",
        scored_at=T0 + timedelta(minutes=minute),
        score=score,
        threshold=None if score is None else 1.0,
        is_anomaly=False,
        model_name="m",
        model_version="1",
        processing_ms=1.0,
        **fields,
    )


def test_alarm_events_wait_in_the_spool_while_the_database_is_down_and_are_stored_once(tmp_path: Path) -> None:
    spool = tmp_path / "spool.db"
    down = ScoreStore(UNREACHABLE_PG, spool).start()
    recorded = [event("raised", 0, value=12.0), event("acknowledged", 1, by="ana"), event("cleared", 2)]
    down.record(verdict(0, sensor="x", state="alarm"))
    for each in recorded:
        down.record(each)
    down.record(recorded[1])  # redelivered: kept once
    down.flush()
    assert down.spooled() == 4 and down.dropped == 0
    down.close(timeout=0.5)
    back = ScoreStore(f"sqlite:///{tmp_path / 'scores.db'}", spool).start()
    try:
        back.wait_stored(timeout=10)
        assert back.alarm_events() == recorded  # in order, each once, who and when kept
        assert back.history("fan-1")[0].state == "alarm"
        assert back.write_events(recorded) == 3 and back.alarm_events() == recorded  # idempotent
        assert back.alarm_events(cleared=False) == [] and back.alarm_events(cleared=True) == recorded
    finally:
        back.close()


def test_an_old_sqlite_scores_table_is_migrated_in_place(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text(OLD_SCORES))
        connection.execute(
            text(
                "INSERT INTO scores (machine_id, scored_at, score, threshold, is_anomaly, model_name, model_version, "
                "processing_ms) VALUES ('fan-1', '2024-01-01 00:00:00', 2.0, 1.0, 1, 'm', '1', 1.0)"
            )
        )
    store = ScoreStore(url, tmp_path / "spool.db").start()
    try:
        store.write([verdict(1, None, sensor="y", state="not_running")])
        columns = {c["name"]: c for c in inspect(engine).get_columns("scores")}
        assert {"sensor", "state", "zone", "velocity_rms_mm_s", "score_id"} <= set(columns)
        assert columns["score"]["nullable"]
        old, new = store.history("fan-1")
        assert (old.score, old.sensor, old.state, old.status) == (2.0, "default", None, "warning")
        assert (new.score, new.sensor, new.status) == (None, "y", "not_running")
    finally:
        store.close()
        engine.dispose()


@pytest.mark.postgres
def test_an_old_postgres_scores_table_is_migrated_in_place(tmp_path: Path) -> None:
    name = f"vibrasense_migrate_{uuid.uuid4().hex[:8]}"
    admin = create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}")
    try:
        with engine.begin() as connection:
            connection.execute(text(OLD_SCORES.replace("INTEGER PRIMARY KEY", "SERIAL PRIMARY KEY")))
        store = ScoreStore(f"postgresql://postgres@127.0.0.1:5432/{name}", tmp_path / "spool.db").start()
        try:
            store.write([verdict(1, None, sensor="y", state="not_running")])
            assert [(r.score, r.sensor) for r in store.history("fan-1")] == [(None, "y")]
        finally:
            store.close()
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def service(workdir: Path) -> ScoringService:
    return ScoringService(alarm_settings(workdir), fitted_scorer()).start()


def score(svc: ScoringService, samples, **fields: object):
    request = ScoreRequest.model_validate({"sample_rate": RATE, "samples": list(map(float, samples)), **fields})
    return svc.score(request)


def test_the_next_start_takes_over_the_open_alarms_and_clears_them(tmp_path: Path) -> None:
    first = service(tmp_path)
    try:
        states = [score(first, faulty_clip(s), machine_id="fan-1").state for s in range(2)]
        first.store.wait_stored()
    finally:
        first.close()
    assert states == ["ok", "alarm"]
    second = service(tmp_path)
    try:
        assert [a.machine_id for a in second.alarms.open_alarms()] == ["fan-1"]
        assert [score(second, healthy_clip(s), machine_id="fan-1").state for s in range(3)] == ["alarm", "alarm", "ok"]
        second.store.wait_stored()
        (alarm,) = second.alarms.alarms()
        assert [e.kind for e in alarm.events] == ["raised", "cleared"]
    finally:
        second.close()


def test_an_acknowledgement_made_in_another_process_reaches_the_one_holding_the_alarm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("vibrasense.serving.alarm_manager.SYNC_INTERVAL_S", 0.05)
    shared = {"score_store_url": f"sqlite:///{tmp_path / 'scores.db'}"}  # one database, a workdir each
    gateway = ScoringService(alarm_settings(tmp_path / "gateway", **shared), fitted_scorer()).start()
    api = ScoringService(alarm_settings(tmp_path / "api", **shared), fitted_scorer()).start()
    try:
        assert [score(gateway, faulty_clip(s), machine_id="fan-1").state for s in range(2)] == ["ok", "alarm"]
        gateway.store.wait_stored()
        (held,) = gateway.machine_status("fan-1").active_alarms
        assert held.status == "active"
        acknowledged = api.alarms.acknowledge(held.alarm_id, "ana")
        api.store.wait_stored()
        assert acknowledged.status == "acknowledged"
        deadline = time.monotonic() + 10
        while gateway.machine_status("fan-1").active_alarms[0].status != "acknowledged":
            assert time.monotonic() < deadline, "the acknowledgement never reached the process holding the alarm"
            time.sleep(0.05)
        (shown,) = gateway.machine_status("fan-1").active_alarms
        assert (shown.alarm_id, shown.status, shown.acknowledged_by) == (held.alarm_id, "acknowledged", "ana")
        assert [e.kind for e in shown.events] == ["raised", "acknowledged"]
        time.sleep(0.3)  # several more syncs: the event is taken once however often they run
        assert gateway.machine_status("fan-1").active_alarms[0].events == shown.events
        assert [score(gateway, healthy_clip(s), machine_id="fan-1").state for s in range(3)] == ["alarm", "alarm", "ok"]
        gateway.store.wait_stored()
        (cleared,) = api.alarms.alarms(status="cleared")
        assert [e.kind for e in cleared.events] == ["raised", "acknowledged", "cleared"]
    finally:
        gateway.close()
        api.close()


def test_a_shelf_and_an_unshelve_made_in_another_process_reach_the_one_watching_the_machine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("vibrasense.serving.alarm_manager.SYNC_INTERVAL_S", 0.05)
    shared = {"score_store_url": f"sqlite:///{tmp_path / 'scores.db'}"}
    gateway = ScoringService(alarm_settings(tmp_path / "gateway", **shared), fitted_scorer()).start()
    api = ScoringService(alarm_settings(tmp_path / "api", **shared), fitted_scorer()).start()

    def synced() -> None:
        api.store.wait_stored()
        time.sleep(0.3)  # several syncs of the gateway

    try:
        assert [score(gateway, faulty_clip(s), machine_id="fan-1").state for s in range(2)] == ["ok", "alarm"]
        gateway.store.wait_stored()
        (held,) = gateway.machine_status("fan-1").active_alarms
        api.alarms.shelve(held.alarm_id, "ana", "bearing swap tonight", 3600)
        synced()
        assert [score(gateway, healthy_clip(s), machine_id="fan-1").state for s in range(3)][-1] == "ok"
        assert [score(gateway, faulty_clip(s), machine_id="fan-1").state for s in range(2)][-1] == "alarm"
        assert gateway.machine_status("fan-1").active_alarms == []  # in alarm, shelved: nothing raised
        api.alarms.unshelve(held.alarm_id, "bob")  # of the cleared alarm, which the gateway holds no more
        synced()
        score(gateway, faulty_clip(7), machine_id="fan-1")
        (raised,) = gateway.machine_status("fan-1").active_alarms
        assert raised.alarm_id != held.alarm_id and raised.status == "active"
    finally:
        gateway.close()
        api.close()


def test_a_given_score_id_is_stored_once_and_the_snapshot_keeps_its_own_time(tmp_path: Path) -> None:
    svc = service(tmp_path)
    try:
        request = ScoreRequest.model_validate({"sample_rate": RATE, "samples": healthy_clip(1).tolist()})
        first = svc.score(request, score_id="b" * 32, scored_at=T0)
        svc.score(request, score_id="b" * 32, scored_at=T0)
        svc.store.wait_stored()
        (row,) = svc.store.history("unassigned")
        assert first.scored_at == T0 and (row.score_id, row.scored_at) == ("b" * 32, T0)
    finally:
        svc.close()


def test_summary_values_get_the_iso_zone_and_a_velocity_trend_without_a_model(tmp_path: Path) -> None:
    svc = service(tmp_path)
    try:
        unknown = svc.machine_status("motor-1")
        assert (unknown.state, unknown.sensors, unknown.active_alarms) == ("not_running", {}, [])
        status = None
        for minute, velocity in enumerate([1.0, 3.0, 3.2]):  # class II: 2.8 mm/s is zone C
            values = {"velocity_rms_mm_s": velocity, "temperature_c": 41.5}
            status = svc.observe_summary("motor-1", "edge", values, T0 + timedelta(minutes=minute))
        assert status is not None and status.state == "warning"
        edge = status.sensors["edge"]
        assert edge.zone is not None and (edge.zone.zone, edge.zone.machine_class) == ("C", "II")
        assert edge.values == {"velocity_rms_mm_s": 3.2, "temperature_c": 41.5} and edge.score is None
        assert [(a.condition, a.severity) for a in status.active_alarms] == [("zone", "warning")]
        assert status.updated_at == T0 + timedelta(minutes=2)
        trend = None
        for minute in range(10):  # +0.2 mm/s a snapshot in zone A/B: faster than (2.8 - 1.12) / 10 per snapshot
            trend = svc.observe_summary("pump-9", "edge", {"velocity_rms_mm_s": 0.1 + 0.2 * minute}, T0)
        assert trend is not None and trend.sensors["edge"].zone is None  # pump-9 has no class: no zone, no trend
        with pytest.raises(InputError) as error:
            svc.observe_summary("motor-1", "edge", {"rpm": 1500.0}, T0)
        assert error.value.source == "values.rpm"
        with pytest.raises(InputError) as error:
            svc.observe_summary("motor-1", "edge", {"velocity_rms_mm_s": float("nan")}, T0)
        assert error.value.source == "values.velocity_rms_mm_s"
    finally:
        svc.close()


def test_summary_velocity_rising_fast_raises_a_rate_of_change_warning(tmp_path: Path) -> None:
    svc = service(tmp_path)
    try:
        status = None
        for minute in range(12):  # 0.5 .. 2.7 mm/s: zone A/B only, rising 0.2 per snapshot > 0.168
            status = svc.observe_summary("motor-1", "edge", {"velocity_rms_mm_s": 0.5 + 0.2 * minute}, T0)
        assert status is not None and status.state == "warning"
        assert [(a.condition, a.severity) for a in status.active_alarms] == [("rate", "warning")]
        assert score(svc, sine_g(0.05), machine_id="motor-1", sensor="x").zone.zone == "A"
    finally:
        svc.close()
