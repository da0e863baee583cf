"""What a recording is: where it lives, what its layout says about it, and its samples."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np

Label = Literal["normal", "anomaly", "unknown"]
Split = Literal["train", "test", "unknown"]
Kind = Literal["audio", "vibration"]
Format = Literal["wav", "ims", "femto", "cwru", "csv", "npy"]

RECORD_COLUMNS = (
    "recording_id",
    "machine_id",
    "machine_type",
    "event_timestamp",
    "label",
    "split",
    "source",
    "kind",
    "sample_rate",
    "channels",
    "duration",
    "bearing",
    "shaft_hz",
)
"""Metadata columns of every features table, in order, before the feature columns."""


@dataclass(frozen=True)
class RecordingRef:
    """One recording found by a layout: its address and its metadata, before it is read.

    ``source`` is a file path, or ``<archive>::<member>`` for a member of a zip or tar archive.
    ``fingerprint`` changes whenever the bytes may have changed (size and modification time).
    """

    recording_id: str
    source: str
    format: Format
    machine_id: str
    machine_type: str
    event_timestamp: datetime
    label: Label = "unknown"
    split: Split = "unknown"
    kind: Kind = "audio"
    channel: int | str | None = None
    sample_rate_hint: float | None = None
    fingerprint: str = ""
    attributes: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class SignalContext:
    """What a recording's samples do not say but some features need: which bearing, at what shaft speed.

    It comes from the dataset layout at training and from the request (or the model's recorded default)
    at serving; ``None`` means unknown.
    """

    bearing: str | None = None
    shaft_hz: float | None = None


@dataclass(frozen=True)
class Signal:
    """Samples of one channel as float32 at ``sample_rate`` Hz, with the recording's channel count."""

    samples: np.ndarray
    sample_rate: float
    channels: int = 1

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.samples) / self.sample_rate
