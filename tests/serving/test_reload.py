"""Model reload: guarded by the API key, and swapping models never fails or changes requests in flight."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from fastapi.testclient import TestClient
from synthetic_machines import RATE, BandEnergyScorer, fitted_scorer, healthy_clip, wav_bytes

from vibrasense.config import Settings
from vibrasense.errors import ModelError
from vibrasense.inference import Verdict
from vibrasense.serving.app import create_app
from vibrasense.signals.records import SignalContext


class GatedScorer(BandEnergyScorer):
    """The test detector, which can be made to wait inside ``score`` to hold a request in flight."""

    def __init__(self, version: str) -> None:
        super().__init__(version=version)
        self.fit([healthy_clip(seed) for seed in range(8)], RATE)
        self.entered = threading.Event()
        self.gate: threading.Event | None = None

    def score(
        self,
        samples: np.ndarray,
        sample_rate: float,
        context: SignalContext | None = None,
        *,
        machine_id: str | None = None,
    ) -> Verdict:
        if self.gate is not None:
            self.entered.set()
            assert self.gate.wait(10)
        return super().score(samples, sample_rate, context)


class RegistryOfVersions:
    """Hands out a new fitted scorer per load, like a registry whose champion moves on."""

    def __init__(self) -> None:
        self.loads: list[str | int | None] = []

    def __call__(self, settings: Settings, target: str | int | None) -> BandEnergyScorer:
        self.loads.append(target)
        if target == "missing":
            raise ModelError("registered model has no alias 'missing'")
        return fitted_scorer(version=str(target if isinstance(target, int) else len(self.loads) + 1))


def reload(client: TestClient, key: str | None = "test-key", **body: object):
    headers = {"X-API-Key": key} if key is not None else {}
    return client.post("/v1/models/reload", headers=headers, json=body or None)


def test_reload_needs_the_api_key(settings: Settings) -> None:
    registry = RegistryOfVersions()
    with TestClient(create_app(settings, fitted_scorer(), loader=registry)) as client:
        assert reload(client, key=None).status_code == 401
        wrong = reload(client, key="nope")
        assert wrong.status_code == 401 and wrong.json()["field"] == "X-API-Key"
        assert registry.loads == []
    settings.serving.api_key = None
    with TestClient(create_app(settings, fitted_scorer(), loader=registry)) as client:
        disabled = reload(client)
    assert disabled.status_code == 403 and "serving.api_key" in disabled.json()["detail"]


def test_reload_swaps_in_the_new_champion(settings: Settings) -> None:
    registry = RegistryOfVersions()
    with TestClient(create_app(settings, fitted_scorer("1"), loader=registry)) as client:
        response = reload(client)
        assert response.status_code == 200, response.text
        assert response.json()["model"]["version"] == "2" and response.json()["previous"]["version"] == "1"
        assert client.get("/v1/model").json()["version"] == "2"
        assert reload(client, version=7).json()["model"]["version"] == "7"
        failed = reload(client, alias="missing")
        assert failed.status_code == 422 and "still serving band-energy-test v7" in failed.json()["detail"]
        assert client.get("/v1/model").json()["version"] == "7"
        metrics = client.get("/metrics").text
    assert registry.loads == [None, 7, "missing"]
    assert 'vibrasense_model_info{name="band-energy-test",version="7"} 1.0' in metrics
    assert 'version="1"' not in metrics.split("vibrasense_model_info")[-1]
    assert 'vibrasense_model_reloads_total{outcome="failed"} 1.0' in metrics


def test_request_in_flight_finishes_on_its_model_during_a_reload(settings: Settings) -> None:
    old = GatedScorer("1")
    new = GatedScorer("2")
    with TestClient(create_app(settings, old, loader=lambda s, t: new)) as client:
        old.gate = threading.Event()
        with ThreadPoolExecutor(1) as pool:
            in_flight = pool.submit(
                client.post, "/v1/score/file", files={"file": ("a.wav", wav_bytes(healthy_clip(1)), "audio/wav")}
            )
            assert old.entered.wait(10)
            swapped = reload(client)  # completes while the request is still inside the old model
            assert swapped.status_code == 200 and swapped.json()["model"]["version"] == "2"
            old.gate.set()
            response = in_flight.result(10)
        assert response.status_code == 200 and response.json()["model"]["version"] == "1"
        after = client.post("/v1/score/file", files={"file": ("a.wav", wav_bytes(healthy_clip(2)), "audio/wav")})
        assert after.json()["model"]["version"] == "2"


def test_no_request_fails_while_models_are_reloaded_repeatedly(settings: Settings) -> None:
    registry = RegistryOfVersions()
    clip = wav_bytes(healthy_clip(3))
    with TestClient(create_app(settings, fitted_scorer("1"), loader=registry)) as client:
        stop = threading.Event()

        def hammer() -> list[tuple[int, str]]:
            seen = []
            while not stop.is_set():
                r = client.post("/v1/score/file", files={"file": ("a.wav", clip, "audio/wav")})
                seen.append((r.status_code, r.json()["model"]["version"]))
            return seen

        with ThreadPoolExecutor(4) as pool:
            workers = [pool.submit(hammer) for _ in range(4)]
            reloads = [reload(client).status_code for _ in range(6)]
            stop.set()
            results = [item for worker in workers for item in worker.result()]
    assert reloads == [200] * 6
    assert len(results) > 10 and {status for status, _ in results} == {200}
    assert {version for _, version in results} <= {str(v) for v in range(1, 8)}
