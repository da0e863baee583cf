"""Real MIMII recordings uploaded as they are: 16-bit mono and the original 8-channel format."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient
from synthetic_machines import BandEnergyScorer

from vibrasense.config import Settings
from vibrasense.serving.app import create_app

pytestmark = pytest.mark.realdata


def scorer(client: TestClient) -> BandEnergyScorer:
    return client.app.state.service.slot.require()


@pytest.fixture
def mimii(shared_data: Path) -> Path:
    return shared_data / "mimii" / "fan" / "id_00"


@pytest.fixture
def real_client(settings: Settings, mimii: Path) -> Iterator[TestClient]:
    """The app with a band-energy detector fitted on ten real healthy fan clips."""
    normal = sorted((mimii / "normal").glob("*.wav"))
    clips = [sf.read(path, dtype="float32")[0] for path in normal[:10]]
    scorer = BandEnergyScorer(name="mimii-band-energy").fit(clips, 16_000)
    settings.serving.max_upload_mb = 50
    with TestClient(create_app(settings, scorer)) as client:
        yield client


def test_real_uploads_score_like_the_in_process_model(real_client: TestClient, mimii: Path) -> None:
    for path in sorted((mimii / "normal").glob("*.wav"))[10:13] + sorted((mimii / "abnormal").glob("*.wav"))[:3]:
        response = real_client.post(
            "/v1/score/file",
            files={"file": (path.name, path.read_bytes(), "audio/wav")},
            data={"machine_id": "fan-00"},
        )
        assert response.status_code == 200, response.text
        samples, rate = sf.read(path, dtype="float32")
        expected, threshold, _ = scorer(real_client).score(samples, rate)[:3]
        body = response.json()
        assert body["score"] == pytest.approx(expected, rel=1e-6) and body["duration_s"] == pytest.approx(10.0)
        assert body["threshold"] == pytest.approx(threshold)


def test_eight_channel_mimii_file_is_scored_on_the_asked_channel(real_client: TestClient, shared_data: Path) -> None:
    path = next((shared_data / "mimii_8ch" / "fan" / "id_00" / "abnormal").glob("*.wav"))
    frames, rate = sf.read(path, dtype="float32", always_2d=True)
    assert frames.shape[1] == 8
    for channel in (0, 5):
        response = real_client.post(
            "/v1/score/file",
            files={"file": (path.name, path.read_bytes(), "audio/wav")},
            data={"machine_id": "fan-00-array", "channel": str(channel)},
        )
        assert response.status_code == 200, response.text
        expected, _, _ = scorer(real_client).score(np.ascontiguousarray(frames[:, channel]), rate)[:3]
        assert response.json()["score"] == pytest.approx(expected, rel=1e-6)
    too_far = real_client.post(
        "/v1/score/file", files={"file": (path.name, path.read_bytes(), "audio/wav")}, data={"channel": "8"}
    )
    assert too_far.status_code == 422 and too_far.json()["field"] == "channel"
