"""Feature extraction of one batch of recordings: the unit of work for a local process or a Dask worker."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import numpy as np

from vibrasense.config import Settings
from vibrasense.errors import InputError
from vibrasense.features.featurize import RawRecording, featurize_batch, resolve_bearing
from vibrasense.features.spec import FeatureSpec, SegmentSpec
from vibrasense.features.threads import limit_process_threads, one_native_thread
from vibrasense.signals.bearings import layout_context
from vibrasense.signals.readers import read_signal
from vibrasense.signals.records import RecordingRef, Signal, SignalContext

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


def extract_batch_on_worker(refs: list[RecordingRef], settings: Settings) -> BatchResult:
    """:func:`extract_batch` for a Dask worker, whose task threads share the pools: they are limited once."""
    limit_process_threads()
    return _extract(refs, settings)


def _extract(refs: list[RecordingRef], settings: Settings) -> BatchResult:
    result = BatchResult()
    spec = FeatureSpec.from_settings(settings)
    good: list[tuple[RecordingRef, Signal]] = []
    for ref in refs:
        try:
            signal = _read_checked(ref, spec, settings)
            good.extend(segments(ref, signal, spec.segment) if spec.segment else [(ref, signal)])
        except InputError as error:
            result.skipped.append((ref.source, ref.recording_id, error.reason))
        except Exception as error:  # a reader or decoder failing in a way nobody foresaw: report, go on
            log.debug("unexpected failure on %s", ref.source, exc_info=True)
            result.skipped.append((ref.source, ref.recording_id, f"{type(error).__name__}: {error}"))
    recordings = [RawRecording(signal.samples, signal.sample_rate, layout_context(ref)) for ref, signal in good]
    for recording, (ref, signal), features in zip(recordings, good, featurize_batch(recordings, spec), strict=True):
        result.rows.append(_record_row(ref, signal, spec, recording.context) | features.values)
        result.logmels[ref.recording_id] = features.logmel
    return result


def segments(ref: RecordingRef, signal: Signal, segment: SegmentSpec) -> list[tuple[RecordingRef, Signal]]:
    """The windows of a recording that lie wholly inside it, each a recording of its own: id
    ``<id>@<start in ms>``, time the recording's plus the start, the file's fingerprint and attributes."""
    length = round(segment.length_s * signal.sample_rate)
    hop = max(round(segment.hop_s * signal.sample_rate), 1)
    if len(signal.samples) < length:
        raise InputError(
            ref.source,
            f"recording is {signal.duration:.3f} s long, shorter than one window (features.segment.length_s="
            f"{segment.length_s:g})",
        )
    windows = []
    for start in range(0, len(signal.samples) - length + 1, hop):
        offset_ms = round(1000 * start / signal.sample_rate)
        window = replace(
            ref,
            recording_id=f"{ref.recording_id}@{offset_ms}",
            event_timestamp=ref.event_timestamp + timedelta(milliseconds=offset_ms),
            attributes={**ref.attributes, "recording": ref.recording_id, "offset_s": start / signal.sample_rate},
        )
        windows.append((window, Signal(signal.samples[start : start + length], signal.sample_rate, signal.channels)))
    return windows


def _read_checked(ref: RecordingRef, spec: FeatureSpec, settings: Settings) -> Signal:
    """The recording's channel (the layout's, else ``signals.channel``), checked for length and finite values."""
    signal = read_signal(ref, ref.channel if ref.channel is not None else spec.signals.channel)
    if signal.duration < settings.signals.min_duration_s:
        raise InputError(
            ref.source,
            f"recording is {signal.duration:.3f} s long, shorter than signals.min_duration_s="
            f"{settings.signals.min_duration_s}",
        )
    if not np.isfinite(signal.samples).all():
        raise InputError(ref.source, "samples contain NaN or inf")
    return signal


def _record_row(ref: RecordingRef, signal: Signal, spec: FeatureSpec, context: SignalContext) -> dict[str, Any]:
    bearing, shaft_hz = resolve_bearing(spec, context)
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
        "bearing": bearing.name if bearing else None,
        "shaft_hz": float(shaft_hz) if shaft_hz else float("nan"),
        "_fingerprint": file_fingerprint(ref, spec),
        "_recording": ref.attributes.get("recording", ref.recording_id),  # the file's id when this is a window
    }


def file_fingerprint(ref: RecordingRef, spec: FeatureSpec) -> str:
    """Changes when the file may have changed or the spec its features follow has."""
    return f"{ref.fingerprint}/{spec.hash}"
