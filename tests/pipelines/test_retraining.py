"""The retraining pipeline end to end on a synthetic plant: real features, Feast, MLflow and a real service.

Run 1 trains a deliberately weak champion (an isolation forest of one tree on two samples); run 2 finds nothing
new and does nothing; run 3 ingests recordings of rebuilt machines (another plant seed: drift), trains a
Mahalanobis challenger, promotes it because it beats the champion on the same labelled recordings, and tells
the running service, which then serves it. A run killed at the worst moment finishes on the next try with no
duplicate version; a challenger that fails to train leaves the champion alone.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from mlflow.tracking import MlflowClient

from vibrasense.config import Settings
from vibrasense.errors import ModelError
from vibrasense.features.pipeline import read_features
from vibrasense.serving.server import free_port
from vibrasense.signals.synthetic import write_audio_plant

pytestmark = pytest.mark.slow

WEAK = {"name": "isolation-forest", "params": {"n_estimators": 1, "max_samples": 2}}
STRONG = {"name": "mahalanobis"}
API_KEY = "pipeline-test-key"


def _plant(root: Path, seed: int, first_clip: int = 0) -> Path:
    """Two pumps; clips numbered from ``first_clip`` (later recordings of the same machines get later numbers)."""
    folder = write_audio_plant(
        root, n_machines=2, n_normal_train=16, n_test_normal=6, n_test_anomaly=6, seconds=1.0, seed=seed
    )
    for path in sorted(folder.rglob("*.wav"), reverse=True):
        *name, number = path.stem.split("_")
        path.rename(path.with_name(f"{'_'.join(name)}_{int(number) + first_clip:08d}.wav"))
    return folder


@pytest.fixture(scope="module")
def plants(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("plants")
    return _plant(root / "first", seed=5).parent, _plant(root / "rebuilt", seed=6, first_clip=1000).parent


def _settings(workdir: Path, inputs: list[Path], model: dict, **pipeline: object) -> Settings:
    return Settings(
        workdir=workdir,
        features={"workers": 1},
        training={"model": model},
        pipeline={"inputs": inputs, **pipeline},
        serving={"api_key": API_KEY},
    )


def _versions(settings: Settings) -> list[str]:
    client = MlflowClient(settings.tracking_uri, settings.tracking_uri)
    found = client.search_model_versions(f"name = '{settings.tracking.registered_model}'")
    return sorted(str(v.version) for v in found)


def _champion(settings: Settings) -> str:
    client = MlflowClient(settings.tracking_uri, settings.tracking_uri)
    return str(client.get_model_version_by_alias(settings.tracking.registered_model, "champion").version)


def _serve(settings: Settings, port: int) -> subprocess.Popen[str]:
    env = os.environ | {"VIBRASENSE_WORKDIR": str(settings.workdir), "VIBRASENSE_SERVING__API_KEY": API_KEY}
    command = [sys.executable, "-m", "vibrasense", "serve", "--host", "127.0.0.1", "--port", str(port)]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert server.poll() is None, server.stderr.read() if server.stderr else ""
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    server.kill()
    raise AssertionError("the service did not become ready")


def test_retrain_promote_and_reload_the_running_service(plants: tuple[Path, Path], tmp_path: Path) -> None:
    from vibrasense.pipelines.retraining import STEPS, pipeline_store, run_pipeline

    first, rebuilt = plants
    workdir = tmp_path / "work"
    weak = _settings(workdir, [first], WEAK)

    run1 = run_pipeline(weak)
    assert list(run1.steps) == list(STEPS) and run1.finished_at
    assert run1.result("drift")["drifted"] is None and run1.result("train")["alias"] == "champion"
    assert run1.result("promote") == {"promoted": True, "champion": "1", "reason": "v1 is the champion"}
    champion_auc = run1.result("train")["metrics"]["auc"]
    assert champion_auc < 0.9, f"the weak champion is not weak: AUC {champion_auc}"

    run2 = run_pipeline(weak)  # nothing new: every later step records that and does nothing
    assert run2.result("ingest")["processed"] == 0 and run2.result("ingest")["up_to_date"]
    assert all(run2.result(step)["skipped"] for step in STEPS[1:])
    assert _versions(weak) == ["1"]

    port = free_port()
    server = _serve(weak, port)
    try:
        assert httpx.get(f"http://127.0.0.1:{port}/v1/model").json()["version"] == "1"
        strong = _settings(workdir, [first, rebuilt], STRONG, service_url=f"http://127.0.0.1:{port}")
        run3 = run_pipeline(strong)
        assert run3.result("ingest")["processed"] == 2 * (16 + 6 + 6)
        drift = run3.result("drift")
        assert drift["drifted"] is True and sorted(drift["machines"]) == ["pump_id_00", "pump_id_01"]
        assert Path(drift["report"]).is_file()
        assert run3.result("train")["version"] == "2" and run3.result("train")["alias"] == "challenger"
        promotion = run3.result("promote")
        assert promotion["promoted"] is True, promotion["reason"]
        assert promotion["challenger_metrics"]["auc"] > promotion["champion_metrics"]["auc"]
        assert promotion["reason"] == f"v2 beats v1 on {workdir / 'features'} (AUC, then pAUC)"
        assert run3.result("reload")["reloaded"] is True and run3.result("reload")["model"]["version"] == "2"
        assert httpx.get(f"http://127.0.0.1:{port}/v1/model").json()["version"] == "2"
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    assert _champion(strong) == "2"
    history = (workdir / "pipeline" / "history.jsonl").read_text().splitlines()
    assert [json.loads(line)["run_id"] for line in history] == [run1.run_id, run2.run_id, run3.run_id]
    assert pipeline_store(strong).current().run_id == run3.run_id


def _pipeline(workdir: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "vibrasense", "--workdir", str(workdir), "pipeline", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, env=os.environ | (env or {}))


def test_a_run_killed_after_registering_finishes_without_a_duplicate(plants: tuple[Path, Path], tmp_path: Path) -> None:
    first, rebuilt = plants
    workdir = tmp_path / "work"
    env = {"VIBRASENSE_TRAINING__MODEL": json.dumps(STRONG), "VIBRASENSE_FEATURES__WORKERS": "1"}
    killed = _pipeline(workdir, "run", str(first), env=env | {"VIBRASENSE_PIPELINE_KILL_AFTER": "train"})
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    settings = _settings(workdir, [first], STRONG)
    assert _versions(settings) == ["1"]  # registered, but the step was not recorded

    resumed = _pipeline(workdir, "run", str(first), env=env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert 'train: {"trained": true, "version": "1", "reused": true}' in resumed.stdout
    assert _versions(settings) == ["1"] and _champion(settings) == "1"
    recordings = read_features(workdir / "features")["recording_id"]
    assert recordings.is_unique and len(recordings) == 2 * (16 + 6 + 6)

    # A challenger that cannot be trained: the run stops at train, the champion stays, the next try finishes.
    from vibrasense.pipelines.retraining import run_pipeline

    broken = _settings(workdir, [first, rebuilt], {"name": "mahalanobis", "params": {"no_such_param": 1}})
    with pytest.raises(ModelError, match="no_such_param"):
        run_pipeline(broken)
    assert _versions(settings) == ["1"] and _champion(settings) == "1"
    status = _pipeline(workdir, "status")
    assert "open" in status.stdout and "train" in status.stdout
    fixed = run_pipeline(_settings(workdir, [first, rebuilt], STRONG))
    assert fixed.result("ingest")["processed"] == 2 * (16 + 6 + 6)  # the rebuilt plant, ingested by the failed try
    assert fixed.result("train")["version"] == "2"
    # v1 never heard the rebuilt machines: their normal clips look anomalous to it, so v2 wins on the shared set
    assert fixed.result("promote")["promoted"] is True and _champion(settings) == "2", fixed.result("promote")
