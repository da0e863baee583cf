"""Alarm management over the real app: states, alarms raised and cleared, acknowledge and shelve with the API
key, the machine-off gate, ISO zones, several sensors, and the metrics; on SQLite and on PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from alarm_clips import RATE, alarm_settings, mild_clip, quiet_clip, sine_g
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from synthetic_machines import faulty_clip, fitted_scorer, healthy_clip, wav_bytes

from vibrasense.serving.app import create_app

KEY = {"X-API-Key": "test-key"}
PG = "postgresql+psycopg://postgres@127.0.0.1:5432"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestClient]:
    """The app with alarm settings, its score store on SQLite or on a fresh PostgreSQL database."""
    url, admin, name = None, None, f"vibrasense_alarms_{uuid.uuid4().hex[:8]}"
    if request.param == "postgresql":
        admin = create_engine(f"{PG}/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    settings = alarm_settings(tmp_path, score_store_url=url)
    try:
        with TestClient(create_app(settings, fitted_scorer())) as test_client:
            yield test_client
    finally:
        if admin is not None:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            admin.dispose()


def upload(client: TestClient, samples: np.ndarray, machine: str = "pump-1", sensor: str | None = None) -> dict:
    data = {"machine_id": machine} | ({"sensor": sensor} if sensor else {})
    response = client.post("/v1/score/file", files={"file": ("c.wav", wav_bytes(samples), "audio/wav")}, data=data)
    assert response.status_code == 200, response.text
    return response.json()


def states(client: TestClient, clips: list[np.ndarray], machine: str = "pump-1", sensor: str | None = None):
    return [upload(client, clip, machine, sensor)["state"] for clip in clips]


def alarms(client: TestClient, **params: str) -> list[dict]:
    client.app.state.service.store.flush()
    response = client.get("/v1/alarms", params=params)
    assert response.status_code == 200, response.text
    return response.json()["alarms"]


def test_ok_warning_alarm_then_cleared_only_after_the_reset_delay(client: TestClient) -> None:
    assert states(client, [healthy_clip(0), mild_clip(1), mild_clip(2)]) == ["ok", "ok", "warning"]
    assert states(client, [faulty_clip(3), faulty_clip(4)]) == ["warning", "alarm"]
    (alarm,) = alarms(client)
    assert (alarm["machine_id"], alarm["sensor"], alarm["condition"]) == ("pump-1", "default", "score")
    assert (alarm["severity"], alarm["status"]) == ("alarm", "active")
    assert [e["kind"] for e in alarm["events"]] == ["raised", "escalated"] and alarm["value"] > 10
    assert states(client, [healthy_clip(5), healthy_clip(6)]) == ["alarm", "alarm"]  # reset delay: 3 in a row
    assert alarms(client, state="open")[0]["alarm_id"] == alarm["alarm_id"]
    assert states(client, [healthy_clip(7)]) == ["ok"]
    (cleared,) = alarms(client)
    assert cleared["status"] == "cleared" and cleared["cleared_reason"] == "back below the reset level"
    assert alarms(client, state="open") == [] and alarms(client, state="cleared")[0]["alarm_id"] == alarm["alarm_id"]
    machine = client.get("/v1/machines/pump-1").json()
    assert machine["status"] == "ok" and machine["active_alarms"] == []
    expected = ["ok", "ok", "warning", "warning", "alarm", "alarm", "alarm", "ok"]
    assert [row["state"] for row in machine["history"]] == expected


def raise_alarm(client: TestClient, machine: str = "pump-1") -> dict:
    states(client, [faulty_clip(1), faulty_clip(2)], machine)
    (alarm,) = alarms(client, machine_id=machine, state="open")
    return alarm


def test_acknowledge_needs_the_key_records_who_and_refuses_twice_and_after_clearing(client: TestClient) -> None:
    alarm = raise_alarm(client)
    path = f"/v1/alarms/{alarm['alarm_id']}/ack"
    assert client.post(path, json={"by": "ana"}).status_code == 401
    assert client.post(path, json={"by": "ana"}, headers={"X-API-Key": "wrong"}).status_code == 401
    missing = client.post(path, json={}, headers=KEY)
    assert missing.status_code == 422 and missing.json()["field"] == "by"
    acked = client.post(path, json={"by": "ana"}, headers=KEY)
    assert acked.status_code == 200, acked.text
    body = acked.json()
    assert (body["status"], body["acknowledged_by"]) == ("acknowledged", "ana") and body["acknowledged_at"]
    again = client.post(path, json={"by": "bob"}, headers=KEY)
    assert again.status_code == 409 and "already acknowledged by ana" in again.json()["detail"]
    assert alarms(client, state="acknowledged")[0]["events"][-1] | {"at": None, "event_id": None} == {
        "event_id": None,
        "kind": "acknowledged",
        "severity": "alarm",
        "at": None,
        "by": "ana",
        "reason": None,
        "value": None,
        "shelved_until": None,
    }
    states(client, [healthy_clip(s) for s in range(3)])
    late = client.post(path, json={"by": "ana"}, headers=KEY)
    assert late.status_code == 409 and late.json()["field"] == "alarm_id" and "was cleared" in late.json()["detail"]


def test_unknown_alarm_is_404_and_a_bad_id_422(client: TestClient) -> None:
    unknown = client.post(f"/v1/alarms/{uuid.uuid4().hex}/ack", json={"by": "ana"}, headers=KEY)
    assert unknown.status_code == 404 and unknown.json()["field"] == "alarm_id"
    assert client.get(f"/v1/alarms/{uuid.uuid4().hex}").status_code == 404
    assert client.post("/v1/alarms/not-an-id/ack", json={"by": "ana"}, headers=KEY).status_code == 422
    bad = client.get("/v1/alarms", params={"state": "sleeping"})
    assert bad.status_code == 422 and bad.json()["field"] == "state"


def test_a_shelved_alarm_does_not_raise_again_until_unshelved(client: TestClient) -> None:
    alarm = raise_alarm(client)
    path = f"/v1/alarms/{alarm['alarm_id']}"
    body = {"by": "ana", "reason": "bearing on order", "duration_s": 3600}
    assert client.post(f"{path}/shelve", json=body).status_code == 401
    assert client.post(f"{path}/shelve", json=body | {"duration_s": 0}, headers=KEY).status_code == 422
    shelved = client.post(f"{path}/shelve", json=body, headers=KEY).json()
    assert (shelved["status"], shelved["shelved_by"], shelved["shelve_reason"]) == ("shelved", "ana", body["reason"])
    states(client, [healthy_clip(s) for s in range(3)])  # cleared
    assert states(client, [faulty_clip(8), faulty_clip(9)]) == ["ok", "alarm"]  # the state, but no new alarm
    assert [a["alarm_id"] for a in alarms(client)] == [alarm["alarm_id"]]
    unshelved = client.post(f"{path}/unshelve", json={"by": "bob"}, headers=KEY)
    assert unshelved.status_code == 200 and unshelved.json()["shelved_until"] is None
    assert client.post(f"{path}/unshelve", json={"by": "bob"}, headers=KEY).status_code == 409
    states(client, [faulty_clip(10)])  # still in alarm, no longer shelved: raised again
    (again,) = alarms(client, state="active")
    assert again["alarm_id"] != alarm["alarm_id"]


def test_actions_are_forbidden_without_a_configured_key(tmp_path: Path) -> None:
    settings = alarm_settings(tmp_path)
    settings.serving.api_key = None
    with TestClient(create_app(settings, fitted_scorer())) as client:
        alarm = raise_alarm(client)
        response = client.post(f"/v1/alarms/{alarm['alarm_id']}/ack", json={"by": "ana"}, headers=KEY)
        assert response.status_code == 403 and response.json()["field"] == "X-API-Key"


def test_a_machine_that_is_off_is_not_scored_and_raises_nothing(client: TestClient) -> None:
    raise_alarm(client)
    verdict = upload(client, quiet_clip(1))
    assert (verdict["state"], verdict["machine_state"], verdict["score"], verdict["threshold"]) == (
        "not_running",
        "not_running",
        None,
        None,
    )
    assert verdict["overall_rms"] == pytest.approx(0.001, rel=0.1) and verdict["is_anomaly"] is False
    (alarm,) = alarms(client)
    assert alarm["status"] == "cleared" and alarm["cleared_reason"] == "machine not running"
    assert states(client, [quiet_clip(s) for s in range(2, 6)]) == ["not_running"] * 4
    assert alarms(client, state="open") == []
    assert client.get("/v1/machines").json()["machines"][0]["status"] == "not_running"
    dashboard = client.get("/v1/dashboard").json()["machines"][0]
    assert dashboard["status"] == "not_running" and dashboard["score"] is None and dashboard["history"][-1][1] is None


def test_each_sensor_has_its_state_and_the_machine_takes_the_worst_running_one(client: TestClient) -> None:
    assert states(client, [faulty_clip(1), faulty_clip(2)], sensor="x") == ["ok", "alarm"]
    assert states(client, [healthy_clip(3)], sensor="mic") == ["ok"]
    verdict = upload(client, quiet_clip(4), sensor="y")
    assert (verdict["sensor"], verdict["state"], verdict["machine_state"]) == ("y", "not_running", "alarm")
    client.app.state.service.store.flush()
    machine = client.get("/v1/machines/pump-1").json()
    assert machine["status"] == "alarm"
    assert {name: s["state"] for name, s in machine["sensors"].items()} == {
        "mic": "ok",
        "x": "alarm",
        "y": "not_running",
    }
    assert [(a["sensor"], a["condition"]) for a in machine["active_alarms"]] == [("x", "score")]
    status = client.app.state.service.machine_status("pump-1")
    assert status.state == "alarm" and status.sensors["x"].score > 10 and len(status.active_alarms) == 1
    dashboard = client.get("/v1/dashboard").json()["machines"][0]
    assert [(s["sensor"], s["state"]) for s in dashboard["sensors"]] == [
        ("mic", "ok"),
        ("x", "alarm"),
        ("y", "not_running"),
    ]


def test_an_accelerometer_gets_its_iso_zone_beside_the_score(client: TestClient) -> None:
    body = {"sample_rate": RATE, "samples": sine_g(0.05), "machine_id": "motor-1", "sensor": "x"}
    low = client.post("/v1/score", json=body).json()
    assert low["zone"] == {"velocity_rms_mm_s": pytest.approx(1.1036, abs=1e-3), "zone": "A", "machine_class": "II"}
    high = client.post("/v1/score", json=body | {"samples": sine_g(0.2)}).json()
    assert high["zone"]["zone"] == "C" and high["zone"]["velocity_rms_mm_s"] == pytest.approx(4.4145, abs=1e-3)
    mic = client.post("/v1/score", json=body | {"sensor": "mic"}).json()
    assert mic["zone"] is None  # a microphone has no vibration severity
    other = client.post("/v1/score", json=body | {"machine_id": "pump-1"}).json()
    assert other["zone"] is None  # no machine class configured
    client.app.state.service.store.flush()
    sensor = client.get("/v1/machines/motor-1").json()["sensors"]["x"]
    assert sensor["zone"]["zone"] == "C" and sensor["zone"]["machine_class"] == "II"


def test_metrics_count_machines_per_state_active_alarms_and_events(client: TestClient) -> None:
    raise_alarm(client)
    upload(client, healthy_clip(1), "fan-1")
    alarm = alarms(client)[0]
    client.post(f"/v1/alarms/{alarm['alarm_id']}/ack", json={"by": "ana"}, headers=KEY)
    text_ = client.get("/metrics").text
    assert 'vibrasense_machines{state="alarm"} 1.0' in text_ and 'vibrasense_machines{state="ok"} 1.0' in text_
    assert "vibrasense_active_alarms 1.0" in text_
    assert 'vibrasense_alarm_events_total{kind="raised"} 1.0' in text_
    assert 'vibrasense_alarm_events_total{kind="acknowledged"} 1.0' in text_
