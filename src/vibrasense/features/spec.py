"""The feature spec: everything that decides what a model's inputs are, versioned and hashed.

A spec is taken from the settings when features are extracted, written beside them (``feature_spec.json``)
and copied into every model folder trained on them. Extraction folds its hash into each file's
fingerprint (new settings re-extract), training refuses features whose spec differs from the one it is
asked for, and serving computes the inputs of a model from the spec in its folder, never from the
configuration of the process that serves it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from vibrasense.config import LogMelSettings, SegmentSettings, Settings, VibrationSettings
from vibrasense.errors import InputError
from vibrasense.features.names import AUDIO_FEATURES, ENVELOPE_FEATURES, vibration_feature_names

SPEC_FILE = "feature_spec.json"
SPEC_VERSION = 1
"""Bumped whenever the feature code changes what a spec's columns mean; part of the hash."""


class SignalSpec(BaseModel):
    """How samples are taken from a recording: the channel of a multi-channel file, the audio feature rate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sample_rate: int
    channel: int


class SegmentSpec(BaseModel):
    """Windows a recording is cut into at ingest: ``length_s`` long, one every ``hop_s`` seconds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    length_s: float = Field(gt=0)
    hop_s: float = Field(gt=0)


class FeatureSpec(BaseModel):
    """Sample rate, channel, log-mel, FFT bands, the bearing and speed rules and the windows that define the
    features. ``segment`` None (the default) means a recording is one row; a spec without segments hashes and
    saves as it did before the field existed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = SPEC_VERSION
    signals: SignalSpec
    logmel: LogMelSettings
    vibration: VibrationSettings
    segment: SegmentSpec | None = None

    @model_validator(mode="before")
    @classmethod
    def _saved_before_band_estimators(cls, data: Any) -> Any:
        """A spec saved before ``band_estimator`` existed has periodogram band energies."""
        if isinstance(data, dict) and isinstance(data.get("vibration"), dict):
            data = {**data, "vibration": {"band_estimator": "periodogram", **data["vibration"]}}
        return data

    @classmethod
    def from_settings(cls, settings: Settings) -> FeatureSpec:
        """The spec the configuration asks for."""
        signals = SignalSpec(sample_rate=settings.signals.sample_rate, channel=settings.signals.channel)
        cut = settings.features.segment
        segment = SegmentSpec(length_s=cut.length_s, hop_s=cut.hop_s or cut.length_s) if cut.length_s else None
        return cls(
            signals=signals, logmel=settings.features.logmel, vibration=settings.features.vibration, segment=segment
        )

    def applied_to(self, settings: Settings) -> Settings:
        """``settings`` with this spec's fields in place of theirs (extraction under a model's spec)."""
        signals = settings.signals.model_copy(
            update={"sample_rate": self.signals.sample_rate, "channel": self.signals.channel}
        )
        cut = {"length_s": self.segment.length_s, "hop_s": self.segment.hop_s} if self.segment else {}
        features = settings.features.model_copy(
            update={"logmel": self.logmel, "vibration": self.vibration, "segment": SegmentSettings(**cut)}
        )
        return settings.model_copy(update={"signals": signals, "features": features})

    def canonical(self) -> dict[str, Any]:
        """The spec as JSON data; ``segment`` only when set and the band estimator only when not the periodogram,
        so specs saved before those fields keep their hash."""
        data = self.model_dump(mode="json")
        if data["segment"] is None:
            del data["segment"]
        if data["vibration"]["band_estimator"] == "periodogram":  # as specs saved before the estimators
            del data["vibration"]["band_estimator"], data["vibration"]["band_frame"]
        return data

    @property
    def hash(self) -> str:
        """SHA-256 (first 16 hex digits) of the canonical JSON of the spec."""
        canonical = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @property
    def columns(self) -> tuple[str, ...]:
        """Every feature column this spec produces, in order."""
        return AUDIO_FEATURES + vibration_feature_names(self.vibration)

    @property
    def vibration_columns(self) -> tuple[str, ...]:
        """The vibration feature columns (statistics, bands, envelope lines)."""
        return vibration_feature_names(self.vibration)

    @property
    def envelope_columns(self) -> tuple[str, ...]:
        """The columns that need a bearing and a shaft speed."""
        return ENVELOPE_FEATURES

    def differences(self, other: FeatureSpec) -> list[str]:
        """``field: mine vs theirs`` for each field that differs, dotted as in the configuration."""
        mine, others = self.canonical(), other.canonical()
        for data in (mine, others):  # named even where the canonical form leaves it out
            data["vibration"].setdefault("band_estimator", "periodogram")
        if "periodogram" in (mine["vibration"]["band_estimator"], others["vibration"]["band_estimator"]):
            for data in (mine, others):  # a Welch frame means nothing beside the periodogram
                data["vibration"].pop("band_frame", None)
        return [f"{name}: {value!r} vs {theirs!r}" for name, value, theirs in _diff(mine, others)]

    def save(self, folder: Path | str) -> Path:
        """Write ``feature_spec.json`` (with its hash, for people and tools that read it) into ``folder``."""
        path = Path(folder) / SPEC_FILE
        path.write_text(json.dumps({"hash": self.hash, **self.canonical()}, indent=2))
        return path

    @classmethod
    def load(cls, folder: Path | str) -> FeatureSpec:
        """The spec written by :meth:`save` in ``folder``."""
        path = Path(folder) / SPEC_FILE
        if not path.is_file():
            raise InputError(
                path, "no feature spec here; the folder was not written by this version of `vibrasense features`"
            )
        try:
            data = json.loads(path.read_text())
            data.pop("hash", None)
            return cls.model_validate(data)
        except (ValueError, ValidationError) as error:
            raise InputError(path, f"unreadable feature spec: {error}") from None


def _diff(mine: Any, theirs: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    if isinstance(mine, dict) and isinstance(theirs, dict):
        found = []
        for key in sorted(set(mine) | set(theirs)):
            found += _diff(mine.get(key), theirs.get(key), f"{prefix}{key}.")
        return found
    return [] if mine == theirs else [(_config_name(prefix.rstrip(".")), mine, theirs)]


def _config_name(field: str) -> str:
    """The configuration key of a spec field (``logmel.n_mels`` is ``features.logmel.n_mels``)."""
    return field if field.startswith(("signals.", "version")) else f"features.{field}"
