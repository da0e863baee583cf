"""The one featurizer: raw samples plus a feature spec plus a context in, a model's inputs out.

Extraction, scoring, prognostics and the benchmarks all call :func:`featurize` (or its batched form), so a
model sees in production exactly the inputs it was trained on. Audio features and the log-mel spectrogram
are computed after resampling to ``spec.signals.sample_rate``; vibration features at the recording's own
rate. Envelope features need a bearing and a shaft speed: the spec's fixed values win, then the context's
(layout at training, request or the model's recorded default at serving), then the preset's usual speed.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vibrasense.config import VibrationSettings
from vibrasense.errors import InputError
from vibrasense.features import spectral, vibration, welch
from vibrasense.features.names import AUDIO_FEATURES, ENVELOPE_FEATURES, vibration_feature_names
from vibrasense.features.spec import FeatureSpec
from vibrasense.signals.bearings import BearingGeometry, get_bearing
from vibrasense.signals.records import SignalContext
from vibrasense.signals.resample import resample

NO_CONTEXT = SignalContext()


@dataclass(frozen=True)
class Featurized:
    """The feature values of one recording (named as the spec's columns) and its log-mel spectrogram."""

    values: dict[str, float]
    logmel: np.ndarray | None


@dataclass(frozen=True)
class RawRecording:
    """One channel of samples at its own rate, with what is known about its machine."""

    samples: np.ndarray
    sample_rate: float
    context: SignalContext = NO_CONTEXT


def resolve_bearing(spec: FeatureSpec, context: SignalContext) -> tuple[BearingGeometry | None, float | None]:
    """The bearing and shaft speed (Hz) the envelope features use: spec first, then the context, then the preset."""
    settings = spec.vibration
    name = settings.bearing if settings.bearing != "auto" else context.bearing
    bearing = get_bearing(name) if name else None
    shaft_hz = settings.shaft_hz or context.shaft_hz
    if shaft_hz is None and bearing is not None and bearing.shaft_rpm:
        shaft_hz = bearing.shaft_rpm / 60.0
    return bearing, shaft_hz


def require_context(spec: FeatureSpec, context: SignalContext, columns: Sequence[str]) -> None:
    """Raise :class:`InputError` naming the missing field when a needed envelope column cannot be computed."""
    needed = [c for c in columns if c in spec.envelope_columns]
    if not needed:
        return
    bearing, shaft_hz = resolve_bearing(spec, context)
    if bearing is None:
        raise InputError(
            "bearing",
            f"bearing is needed for {needed[0]}: give a bearing preset in the request (e.g. cwru-6205-de) or "
            "train with features.vibration.bearing set",
        )
    if not shaft_hz:
        raise InputError("shaft_hz", f"shaft_hz is needed for {needed[0]}: give the shaft speed in Hz in the request")


def featurize(
    samples: np.ndarray,
    sample_rate: float,
    spec: FeatureSpec,
    context: SignalContext = NO_CONTEXT,
    *,
    columns: Sequence[str] | None = None,
    logmel: bool = True,
    strict: bool | None = None,
) -> Featurized:
    """Features of one recording; ``columns`` (default: all) and ``logmel`` say what to compute."""
    recording = RawRecording(samples, sample_rate, context)
    return featurize_batch([recording], spec, columns=columns, logmel=logmel, strict=strict)[0]


def featurize_batch(
    recordings: Sequence[RawRecording],
    spec: FeatureSpec,
    *,
    columns: Sequence[str] | None = None,
    logmel: bool = True,
    strict: bool | None = None,
) -> list[Featurized]:
    """Features of several recordings; equal-length audio goes through the vectorised STFT together.

    When ``strict`` (the default when ``columns`` are named) an envelope column without a bearing or a
    shaft speed is an :class:`InputError` naming the field to give; otherwise such a column is NaN, as in
    a features table of mixed recordings.
    """
    layout = _layout(tuple(spec.vibration.band_edges_hz))
    wanted = layout.columns if columns is None else tuple(columns)
    unknown = [c for c in wanted if c not in layout.known]
    if unknown:
        raise InputError("columns", f"{unknown[0]} is not a feature of this spec; it has {list(layout.columns)}")
    if columns is not None if strict is None else strict:
        for recording in recordings:
            require_context(spec, recording.context, wanted)
    want_audio = logmel or not layout.audio.isdisjoint(wanted)
    want_vibration = not layout.vibration.isdisjoint(wanted)
    values: list[dict[str, float]] = [{} for _ in recordings]
    logmels: list[np.ndarray | None] = [None] * len(recordings)
    shared_bands: dict[int, dict[str, float]] = {}
    if want_audio:
        want_features = not layout.audio.isdisjoint(wanted)
        share = want_vibration and welch.shares_logmel_frames(spec.vibration, spec.logmel)
        for position, (spectrogram, features, bands) in _audio(recordings, spec, logmel, want_features, share).items():
            values[position] |= features
            logmels[position] = spectrogram
            if bands:
                shared_bands[position] = bands
    if want_vibration:
        want_envelope = not layout.envelope.isdisjoint(wanted)
        for position, recording in enumerate(recordings):
            values[position] |= _vibration(recording, spec, want_envelope, shared_bands.get(position))
    return [
        Featurized({c: found[c] for c in wanted}, spectrogram)
        for found, spectrogram in zip(values, logmels, strict=True)
    ]


@dataclass(frozen=True)
class _Layout:
    """The columns of a spec in order, and as sets by kind (looked up on every call: built once per band set)."""

    columns: tuple[str, ...]
    known: frozenset[str]
    audio: frozenset[str]
    vibration: frozenset[str]
    envelope: frozenset[str]


@functools.lru_cache(maxsize=32)
def _layout(band_edges_hz: tuple[float, ...]) -> _Layout:
    vibration_columns = vibration_feature_names(VibrationSettings(band_edges_hz=list(band_edges_hz)))
    columns = AUDIO_FEATURES + vibration_columns
    return _Layout(
        columns,
        frozenset(columns),
        frozenset(AUDIO_FEATURES),
        frozenset(vibration_columns),
        frozenset(ENVELOPE_FEATURES),
    )


def _vibration(
    recording: RawRecording, spec: FeatureSpec, envelope: bool, bands: dict[str, float] | None
) -> dict[str, float]:
    """Vibration features; the envelope ones (most of the cost) only when asked for, else NaN and dropped."""
    bearing, shaft_hz = resolve_bearing(spec, recording.context) if envelope else (None, None)
    return vibration.vibration_features(
        recording.samples, recording.sample_rate, spec.vibration, bearing, shaft_hz, bands=bands
    )


def _audio(
    recordings: Sequence[RawRecording], spec: FeatureSpec, logmel: bool, features: bool, share_bands: bool
) -> dict[int, tuple[np.ndarray | None, dict[str, float], dict[str, float]]]:
    """Log-mel (``None`` unless ``logmel``), audio features (none unless ``features``) and, with ``share_bands``,
    the Welch band energies from the same frames of each recording already at the audio rate; equal lengths
    batched."""
    rate = spec.signals.sample_rate
    audio = [resample(r.samples, r.sample_rate, rate) for r in recordings]
    by_length: dict[int, list[int]] = {}
    for position, samples in enumerate(audio):
        by_length.setdefault(len(samples), []).append(position)
    band_names = set(welch.band_names(tuple(spec.vibration.band_edges_hz)))
    results: dict[int, tuple[np.ndarray | None, dict[str, float], dict[str, float]]] = {}
    for positions in by_length.values():
        batch = audio[positions[0]][None, :] if len(positions) == 1 else np.stack([audio[p] for p in positions])
        at_own_rate = [recordings[p].sample_rate == rate for p in positions]
        edges = spec.vibration.band_edges_hz if share_bands and any(at_own_rate) else None
        spectrograms, columns = spectral.analyse_batch(
            batch, rate, spec.logmel, logmel=logmel, features=features, band_edges=edges
        )
        for row, position in enumerate(positions):
            spectrogram = spectrograms[row] if spectrograms is not None else None
            found = {name: float(column[row]) for name, column in columns.items()}
            bands = {name: found.pop(name) for name in band_names & found.keys()}
            results[position] = (spectrogram, found, bands if at_own_rate[row] else {})
    return results
