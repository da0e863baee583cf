"""Names of the feature columns, shared by the features stage, the feature store and the models."""

from __future__ import annotations

import itertools

from vibrasense.config import VibrationSettings

AUDIO_FEATURES: tuple[str, ...] = (
    "rms_mean",
    "rms_std",
    "zcr_mean",
    "spectral_centroid",
    "spectral_bandwidth",
    "spectral_rolloff",
    "spectral_contrast",
    "mfcc_0",
    "mfcc_1",
    "mfcc_2",
    "mfcc_3",
    "mfcc_4",
    "mfcc_5",
)
"""The 13 statistical features of a recording, in column order."""

VIBRATION_STATISTICS: tuple[str, ...] = (
    "vib_rms",
    "vib_peak",
    "vib_crest_factor",
    "vib_kurtosis",
    "vib_skewness",
)
ENVELOPE_FEATURES: tuple[str, ...] = ("vib_env_bpfo", "vib_env_bpfi", "vib_env_bsf", "vib_env_ftf")


def band_feature_name(low_hz: float, high_hz: float) -> str:
    """Column name of the FFT band energy between two edges, e.g. ``vib_band_1000_1500hz``."""

    def fmt(value: float) -> str:
        return f"{value:g}".replace(".", "p")

    return f"vib_band_{fmt(low_hz)}_{fmt(high_hz)}hz"


def vibration_feature_names(settings: VibrationSettings) -> tuple[str, ...]:
    """Vibration feature columns for the configured bands, in column order."""
    edges = settings.band_edges_hz
    bands = tuple(band_feature_name(lo, hi) for lo, hi in itertools.pairwise(edges))
    return VIBRATION_STATISTICS + bands + ENVELOPE_FEATURES


def feature_names(settings: VibrationSettings) -> tuple[str, ...]:
    """Every feature column of ``features.parquet``, in order."""
    return AUDIO_FEATURES + vibration_feature_names(settings)
