"""What drove a score: the explanation a verdict carries, in numbers a person (and the dashboard) can read.

- A tabular model (``mahalanobis``, ``isolation-forest``, ``one-class-svm``, ``lof``, or ``auto`` choosing one)
  names the features that contributed most, each with its value, its normal range (5th-95th percentile of the
  normal training data) and its share of the total. ``mahalanobis`` splits its squared distance exactly over the
  features; the others report how far each feature lies outside its normal spread (robust z², see
  :mod:`vibrasense.models.explain`). Cheap: no model call, well under a millisecond.
- An autoencoder names the mel bands (with their frequency range in Hz) and the time span (seconds) with the
  largest reconstruction error, and carries a compact band × time error map beside the log-mel at the same
  resolution, for a spectrogram with the error drawn over it. It costs one more pass through the autoencoder,
  so it is computed when asked for.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import BaseModel, Field

from vibrasense.config import LogMelSettings
from vibrasense.features.spec import FeatureSpec
from vibrasense.features.spectral import mel_filterbank

if TYPE_CHECKING:  # the detectors (scikit-learn, torch): loaded with a native model, never for the schema alone
    from vibrasense.models.autoencoder import AutoencoderDetector
    from vibrasense.models.base import Detector
    from vibrasense.models.tabular import TabularDetector

TOP_FEATURES = 8
TOP_BANDS = 5
MAP_BANDS = 32
MAP_TIMES = 64
SPAN_LEVEL = 0.5
"""The time span is the run of frames around the worst one whose error stays above this fraction of the way
from the clip's median frame error to its worst."""


class FeatureContribution(BaseModel):
    """One feature column's part in a tabular score."""

    feature: str = Field(..., description="Feature column, as the model inputs name it.")
    value: float | None = Field(..., description="Its value in this recording (null: missing, imputed).")
    normal_low: float = Field(..., description="5th percentile of the feature over the normal training data.")
    normal_high: float = Field(..., description="95th percentile of the feature over the normal training data.")
    contribution: float = Field(
        ..., description="Its part of the total: r_i (P r)_i of the Mahalanobis distance, or its robust z squared."
    )
    share: float = Field(..., description="contribution / total (the shares of all features sum to 1).")


class BandError(BaseModel):
    """One mel band's reconstruction error over the whole recording."""

    band: int = Field(..., description="Mel band index, 0 the lowest.")
    low_hz: float = Field(..., description="Lowest frequency the band's mel filter takes in, Hz.")
    high_hz: float = Field(..., description="Highest frequency the band's mel filter takes in, Hz.")
    error: float = Field(..., description="Mean squared reconstruction error of the band (standardised log-mel).")
    share: float = Field(..., description="error / the sum of every band's error.")


class TimeSpan(BaseModel):
    """The part of the recording the autoencoder reconstructs worst."""

    start_s: float
    end_s: float
    error: float = Field(..., description="Mean reconstruction error over the span's frames and every band.")
    share: float = Field(..., description="The span's part of the recording's summed frame error.")


class ErrorMap(BaseModel):
    """Reconstruction error and log-mel downsampled to at most 32 band rows × 64 time columns (block means)."""

    band_low_hz: list[float] = Field(..., description="Lowest frequency of each row, lowest row first.")
    band_high_hz: list[float] = Field(..., description="Highest frequency of each row.")
    time_edges_s: list[float] = Field(..., description="Column boundaries in seconds (columns + 1 values).")
    error: list[list[float]] = Field(..., description="Rows × columns mean squared reconstruction error.")
    logmel_db: list[list[float]] = Field(..., description="Rows × columns mean log-mel, dB.")


class Explanation(BaseModel):
    """What drove one score (see :mod:`vibrasense.inference.explanation`)."""

    kind: Literal["features", "spectrogram"] = Field(
        ..., description="features: a tabular model's feature columns; spectrogram: an autoencoder's log-mel."
    )
    method: Literal["mahalanobis-decomposition", "robust-z", "reconstruction-error"] = Field(
        ...,
        description="mahalanobis-decomposition: exact split of the squared distance (contributions sum to the "
        "score); robust-z: distance of each feature from its normal median in robust standard deviations, squared; "
        "reconstruction-error: the autoencoder's squared error per mel band and frame.",
    )
    summary: str = Field(..., description="The main drivers in one line.")
    total: float = Field(
        ..., description="Sum of every feature's contribution, or the mean reconstruction error over bands and frames."
    )
    contributions: list[FeatureContribution] = Field(
        default_factory=list, description=f"The {TOP_FEATURES} largest contributions, largest first."
    )
    bands: list[BandError] = Field(
        default_factory=list, description=f"The {TOP_BANDS} bands with the largest error, largest first."
    )
    time_span: TimeSpan | None = None
    error_map: ErrorMap | None = Field(None, description="An autoencoder's band × time error map and log-mel.")


def explain_score(
    detector: Detector, model_input: np.ndarray | Sequence[np.ndarray], columns: Sequence[str], spec: FeatureSpec
) -> Explanation | None:
    """The explanation of one recording's score from the model's input for it; ``None`` when the model cannot say.

    ``model_input`` is a (1, ``columns``) row for a tabular model, ``[log-mel]`` for an autoencoder; the feature
    ``spec`` places mel bands in Hz and frames in seconds.
    """
    from vibrasense.models.auto import AutoDetector
    from vibrasense.models.tabular import TabularDetector

    if isinstance(detector, AutoDetector):
        detector = detector.best_
    if isinstance(detector, TabularDetector):
        return explain_features(detector, np.asarray(model_input, dtype=np.float64), columns)
    if detector.input_kind == "logmel":  # an autoencoder
        return explain_spectrogram(detector, np.asarray(model_input[0]), spec.logmel, spec.signals.sample_rate)
    return None


def explain_features(detector: TabularDetector, row: np.ndarray, columns: Sequence[str]) -> Explanation | None:
    """The top feature contributions of one (1, columns) row; ``None`` for a model saved without normal ranges."""
    ranges = detector.normal_ranges_
    if ranges is None:
        return None
    contributions = detector.feature_contributions(row)[0]
    total = float(contributions.sum())
    top = np.argsort(-contributions, kind="stable")[:TOP_FEATURES]
    if len(columns) == len(detector.columns_):
        names = [columns[j] for j in detector.keep_index_[top].tolist()]
    else:  # a row of the kept columns only
        names = [detector.kept_columns_[i] for i in top.tolist()]
    values = detector.select(row)[0][top]
    shares = contributions[top] / total if total else np.zeros(len(top))
    listed = [
        FeatureContribution(
            feature=name,
            value=None if value != value else value,  # NaN: missing
            normal_low=low,
            normal_high=high,
            contribution=contribution,
            share=share,
        )
        for name, value, low, high, contribution, share in zip(
            names,
            values.tolist(),
            ranges.low[top].tolist(),
            ranges.high[top].tolist(),
            contributions[top].tolist(),
            shares.tolist(),
            strict=True,
        )
    ]
    of_what = "score" if detector.attribution == "mahalanobis-decomposition" else "deviation (sum of robust z²)"
    summary = "; ".join(
        f"{c.feature} = {_number(c.value)} (normal {c.normal_low:.4g} to {c.normal_high:.4g}): {c.share:.0%}"
        for c in listed[:3]
    )
    return Explanation(
        kind="features",
        method=detector.attribution,
        summary=f"{summary} of the {of_what}",
        total=total,
        contributions=listed,
    )


def explain_spectrogram(
    detector: AutoencoderDetector,
    spectrogram: np.ndarray,
    logmel: LogMelSettings,
    sample_rate: float,
) -> Explanation:
    """The bands and time span an autoencoder reconstructs worst in one log-mel (frames, n_mels), and its map."""
    errors = detector.error_map(spectrogram)
    low_hz, high_hz = mel_band_ranges(sample_rate, logmel)
    seconds_per_frame = logmel.hop_length / sample_rate
    by_band = errors.mean(axis=0)
    band_total = float(by_band.sum())
    bands = [
        BandError(
            band=int(b),
            low_hz=float(low_hz[b]),
            high_hz=float(high_hz[b]),
            error=float(by_band[b]),
            share=float(by_band[b] / band_total) if band_total else 0.0,
        )
        for b in np.argsort(-by_band, kind="stable")[:TOP_BANDS]
    ]
    span = _worst_span(errors.mean(axis=1), seconds_per_frame)
    top = bands[0]
    summary = (
        f"{_hz(top.low_hz)}–{_hz(top.high_hz)} (mel band {top.band}): {top.share:.0%} of the error; "
        f"worst {span.start_s:.2f}–{span.end_s:.2f} s"
    )
    return Explanation(
        kind="spectrogram",
        method="reconstruction-error",
        summary=summary,
        total=float(errors.mean()),
        bands=bands,
        time_span=span,
        error_map=_error_map(errors, np.asarray(spectrogram, dtype=np.float64), low_hz, high_hz, seconds_per_frame),
    )


def mel_band_ranges(sample_rate: float, logmel: LogMelSettings) -> tuple[np.ndarray, np.ndarray]:
    """Lowest and highest frequency (Hz) of the FFT bins each mel filter of these settings takes in.

    A filter narrower than one bin takes in none; its range is interpolated from its neighbours'.
    """
    return _mel_band_ranges(float(sample_rate), logmel.n_fft, logmel.n_mels, logmel.fmin, logmel.fmax)


@functools.lru_cache(maxsize=16)
def _mel_band_ranges(
    sample_rate: float, n_fft: int, n_mels: int, fmin: float, fmax: float | None
) -> tuple[np.ndarray, np.ndarray]:
    taken = mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax) > 0
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    bands = np.arange(n_mels)
    filled = taken.any(axis=1)
    low = np.array([freqs[row].min() if row.any() else np.nan for row in taken])
    high = np.array([freqs[row].max() if row.any() else np.nan for row in taken])
    low = np.interp(bands, bands[filled], low[filled])
    high = np.interp(bands, bands[filled], high[filled])
    low.setflags(write=False)
    high.setflags(write=False)
    return low, high


def _worst_span(frame_error: np.ndarray, seconds_per_frame: float) -> TimeSpan:
    """The run of frames around the worst one above :data:`SPAN_LEVEL` (frame centres ± half a hop)."""
    worst = int(np.argmax(frame_error))
    level = np.median(frame_error) + SPAN_LEVEL * (frame_error[worst] - np.median(frame_error))
    below = frame_error < level
    first = worst - int(np.argmax(below[worst::-1])) + 1 if below[: worst + 1].any() else 0
    last = worst + int(np.argmax(below[worst:])) - 1 if below[worst:].any() else len(frame_error) - 1
    total = float(frame_error.sum())
    return TimeSpan(
        start_s=max(0.0, (first - 0.5) * seconds_per_frame),
        end_s=(last + 0.5) * seconds_per_frame,
        error=float(frame_error[first : last + 1].mean()),
        share=float(frame_error[first : last + 1].sum() / total) if total else 0.0,
    )


def _error_map(
    errors: np.ndarray, spectrogram: np.ndarray, low_hz: np.ndarray, high_hz: np.ndarray, seconds_per_frame: float
) -> ErrorMap:
    """Block means over at most :data:`MAP_BANDS` band groups × :data:`MAP_TIMES` frame groups, bands as rows."""
    n_frames, n_mels = errors.shape
    band_starts = _group_starts(n_mels, MAP_BANDS)
    time_starts = _group_starts(n_frames, MAP_TIMES)

    def blocks(values: np.ndarray) -> np.ndarray:
        summed = np.add.reduceat(np.add.reduceat(values, time_starts, axis=0), band_starts, axis=1)
        counts = np.outer(np.diff(np.r_[time_starts, n_frames]), np.diff(np.r_[band_starts, n_mels]))
        return (summed / counts).T  # bands as rows

    band_ends = np.r_[band_starts[1:], n_mels] - 1
    time_edges = np.maximum(0.0, (np.r_[time_starts, n_frames] - 0.5) * seconds_per_frame)
    return ErrorMap(
        band_low_hz=low_hz[band_starts].round(1).tolist(),
        band_high_hz=high_hz[band_ends].round(1).tolist(),
        time_edges_s=time_edges.round(4).tolist(),
        error=blocks(errors).round(4).tolist(),
        logmel_db=blocks(spectrogram).round(2).tolist(),
    )


def _group_starts(n: int, groups: int) -> np.ndarray:
    """First index of each of ``min(n, groups)`` near-equal consecutive groups of ``n`` items."""
    return np.linspace(0, n, min(n, groups) + 1).astype(np.int64)[:-1]


def _number(value: float | None) -> str:
    return "missing" if value is None else f"{value:.4g}"


def _hz(value: float) -> str:
    return f"{value / 1000:.2f} kHz" if value >= 1000 else f"{value:.0f} Hz"
