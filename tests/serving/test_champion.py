"""Integration: train a real champion into a real SQLite MLflow registry, then ``vibrasense serve`` it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import soundfile as sf

from vibrasense.config import load_settings
from vibrasense.serving.server import free_port

pytestmark = [pytest.mark.realdata, pytest.mark.slow]


def test_serve_loads_the_registered_champion_and_scores_real_clips(tmp_path: Path, dcase_subset: Path) -> None:
    # Imported here: the rest of tests/serving collects without the training stack (Lightning, MLflow).
    from vibrasense.features.pipeline import extract_features
    from vibrasense.registry import load_scorer
    from vibrasense.training import train_and_register

    anomaly = dcase_subset

    workdir = tmp_path / "work"
    settings = load_settings(None, workdir=workdir, training={"model": "isolation-forest"})
    run = extract_features([tmp_path / "recordings"], workdir / "features", settings)
    assert run.processed == 17, run.skipped
    train_and_register(settings, run.out_dir)  # the first version registered is the champion

    champion = load_scorer(settings, "champion")
    samples, rate = sf.read(anomaly, dtype="float32")
    expected = champion.score(samples, rate)

    port = free_port()
    env = os.environ | {"VIBRASENSE_SERVING__API_KEY": "integration-key"}
    server = subprocess.Popen(
        [sys.executable, "-m", "vibrasense", "--workdir", str(workdir), "serve", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, server.stdout.read()
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "server not ready in 180 s"
            time.sleep(0.5)
        response = httpx.post(
            f"{base}/v1/score/file",
            files={"file": (anomaly.name, anomaly.read_bytes(), "audio/wav")},
            data={"machine_id": "unknown-00"},
            timeout=60,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["model"]["name"] == champion.name and body["model"]["version"] == str(champion.version)
        assert body["score"] == pytest.approx(expected.score, rel=1e-5)
        assert body["threshold"] == pytest.approx(expected.threshold, rel=1e-6)
        reload = httpx.post(f"{base}/v1/models/reload", headers={"X-API-Key": "integration-key"}, timeout=120)
        assert reload.status_code == 200 and reload.json()["model"]["version"] == str(champion.version)
        metrics = httpx.get(f"{base}/metrics").text
        assert f'vibrasense_model_info{{name="{champion.name}",version="{champion.version}"}} 1.0' in metrics
    finally:
        server.terminate()
        server.wait(30)
