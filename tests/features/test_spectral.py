"""Log-mel and the 13 statistical features: physics on tones, agreement with librosa on real data."""

from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf

from vibrasense.config import LogMelSettings
from vibrasense.features.names import AUDIO_FEATURES
from vibrasense.features.spectral import (
    analyse_batch,
    analyse_clip,
    audio_features,
    extract_logmel,
    mel_filterbank,
)

RATE = 16_000
SETTINGS = LogMelSettings()


def _tone(frequency: float, amplitude: float = 0.5, seconds: float = 1.0) -> np.ndarray:
    return (amplitude * np.sin(2 * np.pi * frequency * np.arange(int(seconds * RATE)) / RATE)).astype(np.float32)


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
    """Tolerance: log-mel within 2e-4 dB everywhere; each feature within 1e-5 relative (MFCCs, which sit
    near zero: 2e-4 absolute). Measured: 3e-5 dB, 4e-7 relative, 3e-5 absolute."""
    clips = [
        *sorted((shared_data / "mimii" / "fan" / "id_00" / "abnormal").glob("*.wav"))[:2],
        *sorted((shared_data / "mimii" / "fan" / "id_00" / "normal").glob("*.wav"))[:1],
        *sorted((shared_data / "dcase2020" / "unknown_machine" / "train").glob("*.wav"))[:2],
        shared_data / "dcase2020" / "unknown_machine" / "test" / "anomaly_id_00_00000000.wav",
    ]
    for path in clips:
        y, sr = sf.read(path, dtype="float32")
        logmel, features = analyse_clip(y, sr, SETTINGS)
        reference_logmel, reference = _librosa_reference(y, sr)
        assert np.abs(logmel - reference_logmel).max() < 2e-4, path.name
        for name, value in reference.items():
            if name.startswith("mfcc"):
                assert features[name] == pytest.approx(value, abs=2e-4), (path.name, name)
            else:
                assert features[name] == pytest.approx(value, rel=1e-5), (path.name, name)


def test_mel_filterbank_equals_librosa_slaney() -> None:
    for rate, n_fft, n_mels, fmin, fmax in [(16_000, 1024, 128, 0.0, None), (22_050, 2048, 64, 50.0, 8000.0)]:
        ours = mel_filterbank(rate, n_fft, n_mels, fmin, fmax)
        reference = librosa.filters.mel(sr=rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
        np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("hop", [256, 300])
def test_other_hops_match_librosa_frame_features(hop: int) -> None:
    """The block-sum path (hop divides n_fft) and the cumulative-sum path (it does not) both hold."""
    rng = np.random.default_rng(1)
    y = (0.3 * rng.standard_normal(RATE) + _tone(440.0, 0.2)).astype(np.float32)
    y[:2000] = 0.0  # silence: edge handling of ZCR and roll-off
    settings = LogMelSettings(hop_length=hop)
    logmel, features = analyse_clip(y, RATE, settings)
    mel = librosa.feature.melspectrogram(y=y, sr=RATE, n_fft=1024, hop_length=hop, n_mels=128)
    rms = librosa.feature.rms(y=y, frame_length=1024, hop_length=hop)[0]
    zcr = librosa.feature.zero_crossing_rate(y, frame_length=1024, hop_length=hop)[0]
    rolloff = librosa.feature.spectral_rolloff(y=y, sr=RATE, n_fft=1024, hop_length=hop)[0]
    assert logmel.shape == (len(rms), 128)
    assert np.abs(logmel - 10 * np.log10(np.maximum(mel, np.finfo(float).eps)).T).max() < 1e-3
    assert features["rms_mean"] == pytest.approx(rms.mean(), rel=1e-5)
    assert features["rms_std"] == pytest.approx(rms.std(), rel=1e-4)
    assert features["zcr_mean"] == pytest.approx(zcr.mean(), rel=1e-6)
    assert features["spectral_rolloff"] == pytest.approx(rolloff.mean(), rel=1e-6)


def test_silence_gives_finite_features_and_the_log_floor() -> None:
    logmel, features = analyse_clip(np.zeros(RATE, dtype=np.float32), RATE, SETTINGS)
    assert np.all(logmel == pytest.approx(10 * np.log10(np.finfo(float).eps)))
    assert all(np.isfinite(value) for value in features.values())
    assert features["rms_mean"] == 0.0 and features["zcr_mean"] == 0.0 and features["spectral_centroid"] == 0.0


def test_a_pure_tone_is_narrow_and_noise_is_broad() -> None:
    tone = audio_features(_tone(3000.0), RATE, SETTINGS)
    noise = audio_features(np.random.default_rng(2).uniform(-0.5, 0.5, RATE).astype(np.float32), RATE, SETTINGS)
    assert tone["spectral_bandwidth"] < 150.0  # a Hann main lobe, not the whole band
    assert noise["spectral_centroid"] == pytest.approx(RATE / 4, rel=0.02)  # white: mean of 0..Nyquist
    assert noise["spectral_bandwidth"] == pytest.approx(RATE / 2 / np.sqrt(12), rel=0.02)  # uniform spread
    assert noise["spectral_contrast"] < tone["spectral_contrast"]
