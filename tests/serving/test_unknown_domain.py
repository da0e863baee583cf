"""A recording of another machine over the real app: "unknown domain", no anomaly, its own warning and metric."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient
from synthetic_machines import RATE, healthy_clip, wav_bytes

from vibrasense.config import load_settings
from vibrasense.features.featurize import featurize
from vibrasense.features.spec import FeatureSpec
from vibrasense.inference import ModelInputs, ModelScorer
from vibrasense.inference.domain import DomainReference, signatures_of
from vibrasense.models import get_detector
from vibrasense.serving.app import create_app
from vibrasense.signals.synthetic import machine_sound

LIMIT = 4.0


def hum_model(spec: FeatureSpec, machine: str | None = None) -> ModelScorer:
    """Mahalanobis on the audio and vibration features of healthy hums, with the hums' domain reference (the hums
    of ``machine``, if named)."""
    columns = tuple(c for c in spec.columns if c not in spec.envelope_columns)
    clips = [featurize(healthy_clip(seed), RATE, spec, columns=columns) for seed in range(30)]
    detector = get_detector("mahalanobis").fit(np.array([[f.values[c] for c in columns] for f in clips]))
    scorer = ModelScorer(detector, spec, ModelInputs("tabular", columns), "hum", "1")
    machines = [machine] * len(clips) if machine else None
    scorer.domain = DomainReference.fit(signatures_of([f.logmel for f in clips]), LIMIT, machines, "logmel")
    return scorer


def upload(client: TestClient, samples: np.ndarray, machine_id: str = "pump-7") -> dict:
    response = client.post(
        "/v1/score/file", files={"file": ("c.wav", wav_bytes(samples), "audio/wav")}, data={"machine_id": machine_id}
    )
    assert response.status_code == 200, response.text
    return response.json()


def domain_alarms(client: TestClient) -> list[dict]:
    client.app.state.service.store.flush()
    return [a for a in client.get("/v1/alarms").json()["alarms"] if a["condition"] == "domain"]


def test_another_machine_is_an_unknown_domain_with_a_warning_that_clears_on_the_machine_s_own_sound(
    tmp_path: Path,
) -> None:
    settings = load_settings(None, workdir=tmp_path)
    scorer = hum_model(FeatureSpec.from_settings(settings))
    pump = machine_sound(1.0, RATE, machine=2, clip=5)
    with TestClient(create_app(settings, scorer)) as client:
        own = upload(client, healthy_clip(40))
        assert own["unknown_domain"] is False and own["domain_distance"] < 1.5 and own["detail"] is None
        other = upload(client, pump)
        assert other["score"] > other["threshold"]  # the score alone would call it an anomaly
        assert other["unknown_domain"] is True and other["is_anomaly"] is False
        assert other["domain_distance"] > LIMIT and other["state"] == "warning"
        assert "far outside everything model hum v1 was trained on" in other["detail"]
        assert "vibrasense train" in other["detail"]
        (alarm,) = domain_alarms(client)
        assert (alarm["condition"], alarm["severity"], alarm["status"]) == ("domain", "warning", "active")
        metrics = client.get("/metrics").text
        assert 'vibrasense_unknown_domain_total{machine_id="pump-7"} 1.0' in metrics
        anomalies = 'vibrasense_anomalies_total{machine_id="pump-7"} 1.0' in metrics
        assert anomalies == own["is_anomaly"]  # the other machine's clip is not counted as one
        back = upload(client, healthy_clip(41))
        assert back["unknown_domain"] is False
        (cleared,) = domain_alarms(client)
        assert cleared["status"] == "cleared" and [e["kind"] for e in cleared["events"]] == ["raised", "cleared"]


def test_a_machine_the_model_was_trained_on_is_judged_however_far_its_recording_lies(tmp_path: Path) -> None:
    settings = load_settings(None, workdir=tmp_path)
    scorer = hum_model(FeatureSpec.from_settings(settings), machine="hum-1")
    far = machine_sound(1.0, RATE, machine=2, clip=5)  # as far as a severe fault (or a moved sensor) moves it
    with TestClient(create_app(settings, scorer)) as client:
        known = upload(client, far, machine_id="hum-1")
        assert known["domain_distance"] > LIMIT and known["unknown_domain"] is False
        assert known["is_anomaly"] is True
        assert "far from machine hum-1's training recordings" in known["detail"]
        assert "judged as that machine's" in known["detail"]
        assert domain_alarms(client) == []
        other = upload(client, far, machine_id="pump-7")
        assert other["unknown_domain"] is True and other["is_anomaly"] is False
        assert "far outside everything model hum v1 was trained on" in other["detail"]
        metrics = client.get("/metrics").text
        assert 'vibrasense_anomalies_total{machine_id="hum-1"} 1.0' in metrics
        assert 'vibrasense_unknown_domain_total{machine_id="hum-1"}' not in metrics
        assert 'vibrasense_unknown_domain_total{machine_id="pump-7"} 1.0' in metrics
