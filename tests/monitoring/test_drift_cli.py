"""`vibrasense drift` end to end: feature folders compared by exit status, and the served champion's drift.

Synthetic pump sound (one machine, 1-s clips): the reference is its training clips, "unshifted" other clips
of the same machine, "shifted" those clips 6 dB louder.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import mlflow
import numpy as np
import pytest
import soundfile as sf

from vibrasense.config import Settings, load_settings
from vibrasense.errors import ConfigError, InputError
from vibrasense.features.pipeline import extract_features
from vibrasense.signals.synthetic import PLANT_EPOCH, machine_sound

RATE = 16_000
MACHINE = "pump_id_00"


def _write_clips(root: Path, split: str, clips: range, gain: float = 1.0, anomaly: str | None = None) -> None:
    folder = root / "pump" / split
    folder.mkdir(parents=True, exist_ok=True)
    for clip in clips:
        label = "anomaly" if anomaly else "normal"
        samples = machine_sound(1.0, RATE, machine=0, anomaly=anomaly, seed=3, clip=clip) * gain
        sf.write(folder / f"{label}_id_00_{clip:08d}.wav", samples, RATE, subtype="FLOAT")


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("drift")
    settings = load_settings(None, workdir=root / "work", features={"workers": 1})
    recordings = {"reference": (range(0, 30), 1.0), "unshifted": (range(30, 50), 1.0), "louder": (range(30, 50), 2.0)}
    out = {}
    for name, (clips, gain) in recordings.items():
        _write_clips(root / "recordings" / name, "train", clips, gain)
        out[name] = extract_features([root / "recordings" / name], root / "features" / name, settings).out_dir
    return out


def _drift(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "vibrasense", "--workdir", str(cwd / "work"), "drift", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=cwd)


def test_two_feature_folders_exit_zero_without_drift_and_ten_with_it(folders: dict[str, Path], tmp_path: Path) -> None:
    same = _drift(tmp_path, "--reference", str(folders["reference"]), "--current", str(folders["unshifted"]),
                  "--out", str(tmp_path / "same"), "--no-mlflow")  # fmt: skip
    assert same.returncode == 0, same.stdout + same.stderr
    assert f"{MACHINE}: no drift" in same.stdout
    assert json.loads((tmp_path / "same" / "drift.json").read_text())["drifted"] is False

    louder = _drift(tmp_path, "--reference", str(folders["reference"]), "--current", str(folders["louder"]),
                    "--out", str(tmp_path / "louder"), "--no-mlflow")  # fmt: skip
    assert louder.returncode == 10, louder.stdout + louder.stderr
    assert f"{MACHINE}: drift" in louder.stdout and "rms_mean: median" in louder.stdout
    report = json.loads((tmp_path / "louder" / "drift.json").read_text())
    (machine,) = report["machines"]
    rms = next(f for f in machine["features"] if f["name"] == "rms_mean")
    assert rms["drifted"] and rms["comparison"]["current_median"] == pytest.approx(
        2 * rms["comparison"]["reference_median"], rel=0.1
    )
    page = (tmp_path / "louder" / "drift.html").read_text()
    assert "<h1>Drift: drift detected</h1>" in page and "<tr class='drifted'><td>rms_mean</td>" in page
    status = json.loads((tmp_path / "work" / "drift" / "latest.json").read_text())  # what the service shows
    assert status["machines"][0]["machine_id"] == MACHINE and status["machines"][0]["drifted"] is True


def test_bad_arguments_are_refused_with_the_reason(folders: dict[str, Path], tmp_path: Path) -> None:
    alone = _drift(tmp_path, "--reference", str(folders["reference"]))
    assert alone.returncode == ConfigError.exit_code and "--reference and --current go together" in alone.stderr
    missing = _drift(tmp_path, "--reference", str(tmp_path / "nowhere"), "--current", str(folders["unshifted"]))
    assert missing.returncode == InputError.exit_code
    assert "--reference: " in missing.stderr and "holds no features.parquet" in missing.stderr
    assert "Traceback" not in missing.stderr + alone.stderr


def test_the_served_champion_s_scores_drift_when_the_machine_gets_louder(tmp_path: Path) -> None:
    """Train a real champion, score clips through the scoring service, check drift on the recorded scores."""
    from vibrasense.monitoring.publish import log_to_mlflow, publish_status
    from vibrasense.monitoring.recent import recent_drift
    from vibrasense.serving.drift_status import read_drift_status
    from vibrasense.serving.service import ScoringService, Upload
    from vibrasense.training import train_and_register

    recordings = tmp_path / "recordings"
    _write_clips(recordings, "train", range(0, 30))
    _write_clips(recordings, "test", range(30, 45))
    _write_clips(recordings, "test", range(45, 49), anomaly="bearing")
    settings = Settings(workdir=tmp_path / "work", training={"model": "mahalanobis"}, features={"workers": 1})
    run = extract_features([recordings], settings.workdir / "features", settings)
    train_and_register(settings, run.out_dir)

    def score_clips(clips: range, gain: float) -> None:
        service = ScoringService(settings).start()
        try:
            for clip in clips:
                samples = machine_sound(1.0, RATE, machine=0, seed=3, clip=clip) * gain
                buffer = tmp_path / "clip.wav"
                sf.write(buffer, samples, RATE, subtype="FLOAT")
                service.score(Upload(buffer.read_bytes(), machine_id=MACHINE))
            service.store.wait_stored()
        finally:
            service.close()

    score_clips(range(100, 115), 1.0)
    unshifted = recent_drift(settings, PLANT_EPOCH)
    (machine,) = unshifted.machines
    assert machine.score is not None and machine.score.comparison.n_current == 15, machine
    assert machine.score.comparison.n_reference == 15  # the held-out normal test clips, not the fitted ones
    assert not unshifted.drifted, machine.reasons

    louder_since = datetime.now(UTC)
    score_clips(range(115, 130), 2.0)
    shifted = recent_drift(settings, louder_since)
    (machine,) = shifted.machines
    assert machine.score is not None and machine.score.drifted and shifted.drifted, machine.reasons
    assert machine.score.comparison.n_current == 15 and machine.reasons[0].startswith("score: median")

    publish_status(settings, shifted, tmp_path / "report")
    status = read_drift_status(settings.workdir)
    assert status is not None and status.machines[0].drifted and status.machines[0].score_shift > 1

    run_id = log_to_mlflow(settings, shifted, ())
    logged = mlflow.get_run(run_id)
    assert logged.data.tags["vibrasense.drifted"] == "true" and logged.data.metrics[f"drifted.{MACHINE}"] == 1.0
    assert np.isfinite(logged.data.metrics[f"score_shift.{MACHINE}"])


def test_a_champion_of_another_feature_spec_sees_the_new_recordings_under_its_own(tmp_path: Path) -> None:
    """The champion was trained before the band estimator changed; the workdir's features are today's (Welch).
    Its drift check extracts the recordings again under its own spec (periodogram) and compares those."""
    from vibrasense.features.pipeline import SPECS_DIR, read_features, read_spec
    from vibrasense.monitoring.recent import recent_drift
    from vibrasense.training import train_and_register

    recordings = tmp_path / "recordings"
    _write_clips(recordings, "train", range(0, 30))
    _write_clips(recordings, "test", range(30, 45))
    _write_clips(recordings, "test", range(45, 49), anomaly="bearing")
    periodogram = {"workers": 1, "vibration": {"band_estimator": "periodogram"}}
    old = Settings(workdir=tmp_path / "work", training={"model": "mahalanobis"}, features=periodogram)
    trained_on = extract_features([recordings], tmp_path / "old-features", old)
    train_and_register(old, trained_on.out_dir)

    _write_clips(recordings, "train", range(100, 115))  # recorded since, never seen by the champion
    settings = Settings(workdir=tmp_path / "work", training={"model": "mahalanobis"}, features={"workers": 1})
    today = extract_features([recordings], settings.workdir / "features", settings).out_dir
    assert read_spec(today).vibration.band_estimator == "welch"
    report = recent_drift(settings, PLANT_EPOCH)
    again = today / SPECS_DIR / read_spec(trained_on.out_dir).hash
    assert read_spec(again) == read_spec(trained_on.out_dir)
    assert len(read_features(again)) == 30 + 15 + 4 + 15
    (machine,) = report.machines
    band = next(d for d in machine.features if d.name == "vib_band_500_1000hz")
    assert band.comparison.n_current == 15 and not report.drifted, machine.reasons
