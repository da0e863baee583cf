"""The latest drift check as the service shows it: Prometheus gauges on /metrics and drift per machine on the
dashboard's poll, read from the file `vibrasense drift` writes, without a restart."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from synthetic_machines import healthy_clip, wav_bytes

from vibrasense.config import Settings
from vibrasense.serving.drift_status import DriftStatus, MachineDriftStatus, drift_status_path

CHECKED_AT = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)


def write_status(settings: Settings, *machines: MachineDriftStatus) -> None:
    status = DriftStatus(checked_at=CHECKED_AT, reference="models/v3", report="drift/20261130", machines=machines)
    path = drift_status_path(settings.workdir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(status.model_dump_json())


def drift_samples(client: TestClient) -> dict[tuple[str, tuple], float]:
    text = client.get("/metrics").text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith("vibrasense_drift")
    }


def score(client: TestClient, machine: str, seed: int) -> None:
    response = client.post(
        "/v1/score/file",
        files={"file": ("clip.wav", wav_bytes(healthy_clip(seed)), "audio/wav")},
        data={"machine_id": machine},
    )
    assert response.status_code == 200, response.text
    client.app.state.service.store.flush()


def test_metrics_export_the_latest_drift_check_once_one_ran(client: TestClient, settings: Settings) -> None:
    assert drift_samples(client) == {}  # no check yet: no gauge, so an alert on staleness cannot misfire
    write_status(
        settings,
        MachineDriftStatus(machine_id="fan-1", drifted=True, score_shift=2.75, drifted_features=4),
        MachineDriftStatus(machine_id="pump-2", drifted=False, score_shift=0.12),
    )
    assert drift_samples(client) == {
        ("vibrasense_drift_detected", (("machine_id", "fan-1"),)): 1.0,
        ("vibrasense_drift_detected", (("machine_id", "pump-2"),)): 0.0,
        ("vibrasense_drift_score_shift", (("machine_id", "fan-1"),)): 2.75,
        ("vibrasense_drift_score_shift", (("machine_id", "pump-2"),)): 0.12,
        ("vibrasense_drift_checked_timestamp_seconds", ()): CHECKED_AT.timestamp(),
    }
    write_status(settings, MachineDriftStatus(machine_id="fan-1", drifted=False, score_shift=0.3))
    assert drift_samples(client)[("vibrasense_drift_detected", (("machine_id", "fan-1"),))] == 0.0


def test_dashboard_shows_each_machines_drift(client: TestClient, settings: Settings) -> None:
    score(client, "fan-1", 1)
    score(client, "pump-2", 2)
    before = client.get("/v1/dashboard").json()
    assert before["drift_checked_at"] is None and [m["drift"] for m in before["machines"]] == [None, None]

    write_status(
        settings,
        MachineDriftStatus(
            machine_id="fan-1",
            drifted=True,
            score_shift=3.1,
            sensor_faults=["clipped"],
            reasons=["ch0 clipped: 4.0 % of samples at full scale"],
        ),
    )
    page = client.get("/v1/dashboard").json()
    assert datetime.fromisoformat(page["drift_checked_at"]) == CHECKED_AT
    assert page["drift_report"] == "drift/20261130"
    drift = {m["machine_id"]: m["drift"] for m in page["machines"]}
    assert drift["pump-2"] is None  # not in the check: shown as not checked, never as "no drift"
    assert drift["fan-1"]["drifted"] is True and drift["fan-1"]["sensor_faults"] == ["clipped"]
    assert drift["fan-1"]["score_shift"] == 3.1
