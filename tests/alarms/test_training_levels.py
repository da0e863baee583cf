"""Training learns the alarm levels from its normal recordings and writes them into the model folder; the
service loads them with the model and applies them, configuration first."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vibrasense.alarms import load_learned_levels
from vibrasense.config import load_settings
from vibrasense.features.pipeline import extract_features
from vibrasense.registry import load_scorer
from vibrasense.serving.schemas import ScoreRequest
from vibrasense.serving.service import ScoringService
from vibrasense.signals.synthetic import machine_sound, write_audio_plant
from vibrasense.training import train_and_register

RATE = 16_000


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("levels")
    folder = write_audio_plant(
        root / "recordings", n_machines=2, n_normal_train=12, n_test_normal=3, n_test_anomaly=3, seconds=1.0
    )
    settings = load_settings(None, workdir=root / "work", features={"workers": 1})
    run = extract_features([folder], root / "features", settings, progress=False)
    result = train_and_register(settings, run.out_dir, "isolation-forest")
    return settings, result


def test_the_model_folder_holds_levels_learned_globally_and_per_machine(trained) -> None:
    settings, result = trained
    scorer = load_scorer(settings, "champion")
    learned = load_learned_levels(scorer.directory)
    assert learned is not None and len(learned.machines) == 2
    for levels in (learned.default, *learned.machines.values()):
        assert levels.warning >= result.threshold  # never below the model's threshold; above it when the
        # cross-validated normal scores reach higher than the in-sample ones
        assert levels.reset < levels.warning < levels.alarm
        assert levels.running_rms is not None and levels.running_rms > 0 and levels.rate_limit > 0
    assert learned.default.recordings == 24 and {m.recordings for m in learned.machines.values()} == {12}


def test_the_service_gates_and_levels_by_what_was_learned_unless_configured(trained, tmp_path: Path) -> None:
    settings, _ = trained
    scorer = load_scorer(settings, "champion")
    learned = load_learned_levels(scorer.directory)
    machine_id = sorted(learned.machines)[0]
    service = ScoringService(settings.model_copy(update={"workdir": tmp_path}), scorer).start()
    try:
        rules = service.alarms.rules(machine_id, scorer, scorer.threshold)
        assert rules.levels.alarm == learned.machines[machine_id].alarm and rules.source["alarm"] == "learned"
        assert rules.running_rms == learned.machines[machine_id].running_rms
        quiet = (rules.running_rms / 10 * np.random.default_rng(0).standard_normal(RATE)).astype(np.float32)
        off = service.score(ScoreRequest(sample_rate=RATE, samples=quiet.tolist(), machine_id=machine_id))
        assert (off.state, off.score) == ("not_running", None)
        on = service.score(
            ScoreRequest(sample_rate=RATE, samples=machine_sound(1.0, RATE, clip=5).tolist(), machine_id=machine_id)
        )
        assert on.state == "ok" and on.score is not None
    finally:
        service.close()
    configured = settings.model_copy(
        update={"workdir": tmp_path / "b", "alarms": settings.alarms.model_copy(update={"running_rms": 0.0})}
    )
    service = ScoringService(configured, scorer).start()
    try:
        assert service.alarms.rules(machine_id, scorer, None).source["running_rms"] == "configured"
        off = service.score(ScoreRequest(sample_rate=RATE, samples=quiet.tolist(), machine_id=machine_id))
        assert off.score is not None  # the gate is off: scored. A faint hiss is no sound the machine made in
        # training; it is a machine the model knows, so it is judged (an anomaly), with a detail that says so
        assert not off.unknown_domain and off.is_anomaly and off.domain_distance > scorer.domain.limit
        assert off.detail is not None and f"far from machine {machine_id}'s training recordings" in off.detail
    finally:
        service.close()
