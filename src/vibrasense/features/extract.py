"""Feature extraction of one batch of recordings: the unit of work for a local process or a Dask worker."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vibrasense.config import Settings
from vibrasense.errors import InputError
from vibrasense.features import spectral, vibration
from vibrasense.signals.bearings import resolve_bearing
from vibrasense.signals.readers import read_signal
from vibrasense.signals.records import RecordingRef, Signal
from vibrasense.signals.resample import resample
from vibrasense.threads import one_native_thread

log = logging.getLogger(__name__)


@dataclass
class BatchResult:
    """Feature rows and log-mel spectrograms of the good recordings; (source, id, reason) of the others."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    logmels: dict[str, np.ndarray] = field(default_factory=dict)
    skipped: list[tuple[str, str, str]] = field(default_factory=list)


def extract_batch(refs: list[RecordingRef], settings: Settings) -> BatchResult:
    """Read and featurise each recording; a bad one is reported in ``skipped`` and the rest go on.

    BLAS runs single-threaded here: parallelism comes from the workers, and one thread gives bit-identical
    results wherever the batch runs (in-process, a local process or a Dask worker).
    """
    with one_native_thread():
        return _extract(refs, settings)


def _extract(refs: list[RecordingRef], settings: Settings) -> BatchResult:
    result = BatchResult()
    audio: dict[str, np.ndarray] = {}
    rows: dict[str, dict[str, Any]] = {}
    for ref in refs:
        try:
            signal = _read_checked(ref, settings)
            rows[ref.recording_id] = _record_row(ref, signal) | _vibration_row(ref, signal, settings)
            audio[ref.recording_id] = resample(signal.samples, signal.sample_rate, settings.signals.sample_rate)
        except InputError as error:
            result.skipped.append((ref.source, ref.recording_id, error.reason))
        except Exception as error:  # a reader or decoder failing in a way nobody foresaw: report, go on
            log.debug("unexpected failure on %s", ref.source, exc_info=True)
            result.skipped.append((ref.source, ref.recording_id, f"{type(error).__name__}: {error}"))
    for recording_id, (logmel, features) in _analyse_audio(audio, settings).items():
        result.rows.append(rows[recording_id] | features)
        result.logmels[recording_id] = logmel
    return result


def _read_checked(ref: RecordingRef, settings: Settings) -> Signal:
    signal = read_signal(ref)
    if signal.duration < settings.signals.min_duration_s:
        raise InputError(
            ref.source,
            f"recording is {signal.duration:.3f} s long, shorter than signals.min_duration_s="
            f"{settings.signals.min_duration_s}",
        )
    if not np.isfinite(signal.samples).all():
        raise InputError(ref.source, "samples contain NaN or inf")
    return signal


def _record_row(ref: RecordingRef, signal: Signal) -> dict[str, Any]:
    return {
        "recording_id": ref.recording_id,
        "machine_id": ref.machine_id,
        "machine_type": ref.machine_type,
        "event_timestamp": ref.event_timestamp,
        "label": ref.label,
        "split": ref.split,
        "source": ref.source,
        "kind": ref.kind,
        "sample_rate": float(signal.sample_rate),
        "channels": int(signal.channels),
        "duration": float(signal.duration),
        "_fingerprint": ref.fingerprint,
    }


def _vibration_row(ref: RecordingRef, signal: Signal, settings: Settings) -> dict[str, float]:
    bearing, shaft_hz = resolve_bearing(settings.features.vibration, ref)
    return vibration.vibration_features(
        signal.samples, signal.sample_rate, settings.features.vibration, bearing, shaft_hz
    )


def _analyse_audio(audio: dict[str, np.ndarray], settings: Settings) -> dict[str, tuple[np.ndarray, dict[str, float]]]:
    """Log-mel and the 13 features; equal-length clips go through the vectorised batch path together."""
    by_length: dict[int, list[str]] = {}
    for recording_id, samples in audio.items():
        by_length.setdefault(len(samples), []).append(recording_id)
    results: dict[str, tuple[np.ndarray, dict[str, float]]] = {}
    rate = settings.signals.sample_rate
    for ids in by_length.values():
        batch = np.stack([audio[i] for i in ids])
        logmels, features = spectral.analyse_batch(batch, rate, settings.features.logmel)
        for position, recording_id in enumerate(ids):
            results[recording_id] = (logmels[position], {k: float(v[position]) for k, v in features.items()})
    return results
