"""A bearing model served: the request's bearing and shaft speed reach the model as its context.

The detector is fitted here on rows of the one featurizer, so the served score must equal ``featurize`` +
``detector.score`` offline; a model whose envelope features cannot be computed refuses, naming the field.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient
from synthetic_machines import RATE, faulty_clip, healthy_clip, wav_bytes

from vibrasense.config import Settings
from vibrasense.features.featurize import featurize
from vibrasense.features.spec import FeatureSpec
from vibrasense.inference import ModelInputs, ModelScorer
from vibrasense.models import get_detector
from vibrasense.serving.app import create_app
from vibrasense.signals.records import SignalContext

BEARING = SignalContext(bearing="cwru-6205-de", shaft_hz=29.95)


def bearing_scorer(settings: Settings, default_context: SignalContext = SignalContext()) -> ModelScorer:
    """Mahalanobis on every vibration feature, envelope lines included, fitted on healthy clips of one bearing."""
    spec = FeatureSpec.from_settings(settings)
    columns = spec.vibration_columns
    assert set(spec.envelope_columns) <= set(columns)
    rows = [featurize(healthy_clip(seed), RATE, spec, BEARING, columns=columns, logmel=False) for seed in range(24)]
    detector = get_detector("mahalanobis").fit(np.array([[row.values[c] for c in columns] for row in rows]))
    inputs = ModelInputs(kind="tabular", columns=columns, default_context=default_context)
    return ModelScorer(detector, spec, inputs, "bearing-test", "1")


def offline_score(scorer: ModelScorer, clip: np.ndarray, context: SignalContext) -> float:
    row = featurize(clip, RATE, scorer.spec, context, columns=scorer.inputs.columns, logmel=False)
    return float(scorer.detector.score(np.array([[row.values[c] for c in scorer.inputs.columns]]))[0])


@pytest.fixture
def bearing_client(settings: Settings) -> Iterator[tuple[TestClient, ModelScorer]]:
    scorer = bearing_scorer(settings)
    with TestClient(create_app(settings, scorer)) as client:  # warms a model that needs a context in each request
        yield client, scorer


def test_served_score_equals_featurize_and_detector_offline(bearing_client) -> None:
    client, scorer = bearing_client
    clip = faulty_clip(40)
    fields = {"bearing": BEARING.bearing, "shaft_hz": BEARING.shaft_hz}
    as_json = client.post("/v1/score", json={"sample_rate": RATE, "samples": clip.tolist(), **fields})
    as_file = client.post(
        "/v1/score/file",
        files={"file": ("b.wav", wav_bytes(clip, subtype="FLOAT"), "audio/wav")},
        data={key: str(value) for key, value in fields.items()},
    )
    expected = offline_score(scorer, clip, BEARING)
    for response in (as_json, as_file):
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["score"] == pytest.approx(expected, rel=1e-9) and np.isfinite(body["score"])
        assert body["threshold"] == pytest.approx(scorer.threshold) and isinstance(body["diagnosis"], dict)
    other_speed = client.post(
        "/v1/score", json={"sample_rate": RATE, "samples": clip.tolist(), **fields, "shaft_hz": 25}
    )
    assert other_speed.json()["score"] == pytest.approx(
        offline_score(scorer, clip, SignalContext(BEARING.bearing, 25.0))
    )
    assert other_speed.json()["score"] != pytest.approx(expected)


def test_without_bearing_or_default_context_the_model_refuses_naming_the_field(bearing_client) -> None:
    client, _ = bearing_client
    clip = healthy_clip(41)
    response = client.post("/v1/score", json={"sample_rate": RATE, "samples": clip.tolist(), "machine_id": "b-1"})
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["field"] in ("bearing", "shaft_hz") and "vib_env_" in problem["detail"]
    upload = client.post("/v1/score/file", files={"file": ("b.wav", wav_bytes(clip), "audio/wav")})
    assert upload.status_code == 422 and upload.json()["field"] in ("bearing", "shaft_hz")
    recordings = [
        {"sample_rate": RATE, "samples": clip.tolist(), "bearing": BEARING.bearing},
        {"sample_rate": RATE, "samples": clip.tolist()},
    ]
    batch = client.post("/v1/score/batch", json={"recordings": recordings}).json()
    assert len(batch["results"]) == 1 and batch["errors"][0]["field"] in (
        "recordings[1].bearing",
        "recordings[1].shaft_hz",
    )


def test_a_model_with_a_recorded_context_scores_requests_that_do_not_say(settings: Settings) -> None:
    scorer = bearing_scorer(settings, default_context=BEARING)
    clip = faulty_clip(42)
    with TestClient(create_app(settings, scorer)) as client:
        response = client.post("/v1/score", json={"sample_rate": RATE, "samples": clip.tolist()})
    assert response.status_code == 200, response.text
    assert response.json()["score"] == pytest.approx(offline_score(scorer, clip, BEARING), rel=1e-9)
    assert response.json()["diagnosis"] is None  # the request named no bearing
