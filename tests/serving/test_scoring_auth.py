"""Scoring is a write: with serving.scoring_api_keys set, only a client with one of those keys records verdicts."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from synthetic_machines import RATE, BandEnergyScorer, healthy_clip, wav_bytes

from vibrasense.config import Settings, load_settings
from vibrasense.serving.app import create_app


def score(client: TestClient, key: str | None = None):
    headers = {"X-API-Key": key} if key else {}
    return client.post(
        "/v1/score/file",
        files={"file": ("a.wav", wav_bytes(healthy_clip(1)))},
        data={"machine_id": "fan-1"},
        headers=headers,
    )


def test_scoring_is_open_by_default_on_the_loopback_demo(client: TestClient) -> None:
    assert score(client).status_code == 200


def test_with_keys_only_a_client_holding_one_may_score(settings: Settings, scorer: BandEnergyScorer) -> None:
    settings.serving.scoring_api_keys = ["line-1-key", "line-2-key"]
    with TestClient(create_app(settings, scorer)) as client:
        missing = score(client)
        assert missing.status_code == 401 and missing.json()["field"] == "X-API-Key"
        assert "serving.scoring_api_keys" in missing.json()["detail"]
        assert score(client, "nope").status_code == 401
        json_body = client.post("/v1/score", json={"sample_rate": RATE, "samples": [0.0] * 1600})
        assert json_body.status_code == 401
        assert score(client, "line-2-key").status_code == 200
        assert score(client, "test-key").status_code == 200  # the admin key (serving.api_key) may too
        assert client.get("/v1/machines").status_code == 200  # reads stay open
        assert client.get("/healthz").status_code == 200
        spec = client.get("/openapi.json").json()
    assert spec["paths"]["/v1/score/file"]["post"]["security"] == [{"APIKeyHeader": []}]


@pytest.mark.parametrize(("given", "keys"), [("a, b", ["a", "b"]), ('["x,y"]', ["x,y"]), ("", [])])
def test_keys_come_from_the_environment_as_a_list_or_comma_separated(
    given: str, keys: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIBRASENSE_SERVING__SCORING_API_KEYS", given)
    settings = load_settings(None)
    assert [key.get_secret_value() for key in settings.serving.scoring_api_keys] == keys
    assert "a, b" not in repr(settings)
