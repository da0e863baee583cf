"""Log-mel and the 13 statistical features: physics on tones, agreement with librosa on real data."""

from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf

from vibrasense.config import LogMelSettings
from vibrasense.features.names import AUDIO_FEATURES
from vibrasense.features.spectral import analyse_batch, analyse_clip, extract_logmel

RATE = 16_000
SETTINGS = LogMelSettings()


def _tone(frequency: float, amplitude: float = 0.5, seconds: float = 1.0) -> np.ndarray:
    return (amplitude * np.sin(2 * np.pi * frequency * np.arange(int(seconds * RATE)) / RATE)).astype(
        np.float32
    )


def test_a_pure_tone_has_its_rms_centroid_and_zero_crossings() -> None:
    _, features = analyse_clip(_tone(1000.0), RATE, SETTINGS)
    assert list(features) == list(AUDIO_FEATURES)
    assert features["rms_mean"] == pytest.approx(0.5 / np.sqrt(2), rel=0.02)  # edge frames are half padding
    assert features["spectral_centroid"] == pytest.approx(1000.0, rel=0.05)
    assert features["zcr_mean"] == pytest.approx(2 * 1000 / RATE, rel=0.05)
    assert features["spectral_rolloff"] == pytest.approx(1000.0, abs=2 * RATE / 1024)


def test_logmel_shape_and_peak_band() -> None:
    logmel = extract_logmel(_tone(2000.0), RATE, SETTINGS)
    assert logmel.shape == (1 + RATE // 512, 128) and logmel.dtype == np.float32
    mel_centres = librosa.mel_frequencies(n_mels=130, fmax=RATE / 2)[1:-1]
    assert abs(mel_centres[int(np.argmax(logmel[10]))] - 2000.0) < 60.0


def test_batch_equals_clip_by_clip() -> None:
    clips = np.stack([_tone(f) for f in (300.0, 1200.0, 5000.0)])
    logmels, features = analyse_batch(clips, RATE, SETTINGS)
    for index, clip in enumerate(clips):
        single_logmel, single = analyse_clip(clip, RATE, SETTINGS)
        np.testing.assert_allclose(logmels[index], single_logmel, atol=1e-4)
        for name in AUDIO_FEATURES:
            assert features[name][index] == pytest.approx(single[name], rel=1e-5, abs=1e-6)


def _librosa_reference(y: np.ndarray, sr: int) -> tuple[np.ndarray, dict[str, float]]:
    magnitude = np.abs(librosa.stft(y, n_fft=1024, hop_length=512))
    mel = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=1024, hop_length=512, n_mels=128, power=2.0)
    rms = librosa.feature.rms(y=y, frame_length=1024, hop_length=512)[0]
    mfcc = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=6, n_fft=1024, hop_length=512, n_mels=128).mean(axis=1)
    reference = {
        "rms_mean": rms.mean(),
        "rms_std": rms.std(),
        "zcr_mean": librosa.feature.zero_crossing_rate(y, frame_length=1024, hop_length=512).mean(),
        "spectral_centroid": librosa.feature.spectral_centroid(S=magnitude, sr=sr).mean(),
        "spectral_bandwidth": librosa.feature.spectral_bandwidth(S=magnitude, sr=sr).mean(),
        "spectral_rolloff": librosa.feature.spectral_rolloff(S=magnitude, sr=sr).mean(),
        "spectral_contrast": librosa.feature.spectral_contrast(S=magnitude, sr=sr, n_fft=1024).mean(),
        **{f"mfcc_{i}": mfcc[i] for i in range(6)},
    }
    return (10 * np.log10(np.maximum(mel, np.finfo(float).eps))).T, reference


@pytest.mark.realdata
def test_values_agree_with_librosa_on_real_clips(shared_data: Path) -> None:
    """Tolerance: log-mel within 1e-3 dB; each feature within 1e-4 relative (mfcc: 1e-3 absolute)."""
    clips = [
        *sorted((shared_data / "mimii" / "fan" / "id_00" / "abnormal").glob("*.wav"))[:2],
        *sorted((shared_data / "dcase2020" / "unknown_machine" / "train").glob("*.wav"))[:2],
    ]
    for path in clips:
        y, sr = sf.read(path, dtype="float32")
        logmel, features = analyse_clip(y, sr, SETTINGS)
        reference_logmel, reference = _librosa_reference(y, sr)
        assert np.abs(logmel - reference_logmel).max() < 1e-3, path.name
        for name, value in reference.items():
            if name.startswith("mfcc"):
                assert features[name] == pytest.approx(value, abs=1e-3), (path.name, name)
            else:
                assert features[name] == pytest.approx(value, rel=1e-4), (path.name, name)
