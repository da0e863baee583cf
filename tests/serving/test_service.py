"""The scoring service without HTTP, as a script or a gateway uses it: decode, score, diagnose, record."""

from __future__ import annotations

import numpy as np
import pytest
from synthetic_machines import RATE, BandEnergyScorer, faulty_clip, healthy_clip, wav_bytes

from vibrasense.config import Settings
from vibrasense.errors import InputError
from vibrasense.serving.model import ModelUnavailable
from vibrasense.serving.schemas import UNASSIGNED_MACHINE, ScoreRequest
from vibrasense.serving.service import ScoringService, Upload


def test_a_script_scores_files_and_samples_and_the_scores_are_recorded(
    settings: Settings, scorer: BandEnergyScorer
) -> None:
    service = ScoringService(settings, scorer).start()
    try:
        clip = healthy_clip(70)
        from_file = service.score(Upload(wav_bytes(clip, subtype="FLOAT"), machine_id="fan-1"))
        from_samples = service.score(ScoreRequest(sample_rate=RATE, samples=clip.tolist()))
        batch = service.score_batch(
            [Upload(wav_bytes(faulty_clip(71)), machine_id="fan-1", field="files[0]"), Upload(b"", field="files[1]")]
        )
        service.store.flush()
        rows = service.store.history("fan-1")
    finally:
        service.close()
    expected = scorer.score(clip, RATE)
    assert from_file.score == pytest.approx(expected.score) == from_samples.score
    assert from_samples.machine_id == UNASSIGNED_MACHINE and from_file.model.name == scorer.name
    assert [r.is_anomaly for r in batch.results] == [True] and batch.errors[0].field == "files[1]"
    assert [row.is_anomaly for row in rows] == [False, True]


def test_refusals_name_the_field_and_no_model_is_unavailable(settings: Settings, scorer: BandEnergyScorer) -> None:
    service = ScoringService(settings, scorer)
    with pytest.raises(InputError) as error:
        service.score(ScoreRequest(sample_rate=RATE, samples=[float("nan")] * 2000), prefix="recordings[3].")
    assert error.value.source == "recordings[3].samples"
    stereo = wav_bytes(np.stack([healthy_clip(1), healthy_clip(2)], axis=1))
    with pytest.raises(InputError) as error:
        service.score(Upload(stereo, channel=2))
    assert error.value.source == "channel"
    service.close()
    empty = ScoringService(settings)
    with pytest.raises(ModelUnavailable):
        empty.score(Upload(wav_bytes(healthy_clip(1))))
    empty.close()


@pytest.mark.parametrize("offset", [0.0, 1.0, 10.0])
def test_the_machine_off_gate_reads_the_rms_the_features_stage_computes(offset: float) -> None:
    from vibrasense.config import VibrationSettings
    from vibrasense.features.vibration import vibration_features
    from vibrasense.serving.alarm_manager import overall_rms

    samples = (offset + 0.01 * np.random.default_rng(3).standard_normal(160_000)).astype(np.float32)
    vib_rms = vibration_features(samples, RATE, VibrationSettings())["vib_rms"]
    assert overall_rms(samples) == pytest.approx(vib_rms, rel=1e-5)
    assert overall_rms(samples.astype(np.float64)) == pytest.approx(vib_rms, rel=1e-12)
    assert overall_rms(np.zeros(0, np.float32)) == 0.0
