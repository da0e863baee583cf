"""Sensor message formats: waveforms as compact binary or JSON, summaries as JSON.

Binary waveform (all little-endian): a 28-byte header, then interleaved PCM frames::

    offset size type     field
    0      4    bytes    magic b"VSNS"
    4      1    uint8    version (1)
    5      1    uint8    dtype: 1 int16 (full scale 32768 = 1.0), 2 float32
    6      2    uint16   channels (1..MAX_CHANNELS)
    8      4    float32  sample rate, Hz
    12     8    float64  timestamp of the first sample, Unix seconds (UTC)
    20     8    uint64   message id (unique per machine and sensor; e.g. a counter)
    28     ...           PCM samples, frames of ``channels`` values

JSON waveform, for hand-written clients: ``{"sample_rate": 16000, "timestamp": "2026-01-05T06:00:00Z",
"samples": [...]}`` or, instead of ``samples``, ``"pcm_base64"`` with ``"dtype"`` (int16, float32) and
``"channels"``; ``timestamp`` is ISO 8601 or Unix seconds; ``message_id`` is optional (a number or a string).

JSON summary (a smart sensor's own scalars): ``{"timestamp": ..., "velocity_rms_mm_s": 2.1,
"peak_acceleration_g": 0.8, "temperature_c": 41.5}``, at least one of the three.

Every problem raises :class:`InputError` naming the field at fault (``header``, ``dtype``, ``samples``...).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr, ValidationError

from vibrasense.errors import InputError
from vibrasense.serving.schemas import MAX_CHANNELS

MAGIC = b"VSNS"
VERSION = 1
HEADER = struct.Struct("<4sBBHfdQ")
DTYPE_CODES: dict[int, str] = {1: "int16", 2: "float32"}
DTYPE_OF = {name: code for code, name in DTYPE_CODES.items()}
NUMPY_DTYPES = {"int16": np.dtype("<i2"), "float32": np.dtype("<f4")}
SUMMARY_FIELDS = ("velocity_rms_mm_s", "peak_acceleration_g", "temperature_c")
PcmDtype = Literal["int16", "float32"]


@dataclass(frozen=True)
class Waveform:
    """One snapshot as received: little-endian PCM of ``dtype`` and where in time and sequence it belongs."""

    sample_rate: float
    timestamp: datetime
    pcm: bytes
    dtype: PcmDtype
    channels: int
    message_id: str | None
    field: Literal["samples", "pcm_base64"]
    """The field the samples came in: a problem with them is reported under it."""

    def frames(self) -> np.ndarray:
        """The samples as float32 (frames, channels), int16 scaled to [-1, 1)."""
        values = np.frombuffer(self.pcm, dtype=NUMPY_DTYPES[self.dtype]).reshape(-1, self.channels)
        return values.astype(np.float32) / np.float32(32768.0 if self.dtype == "int16" else 1.0)

    def pcm_base64(self) -> str:
        """The PCM as base64, as the scoring service's JSON requests carry it."""
        return base64.b64encode(self.pcm).decode("ascii")


@dataclass(frozen=True)
class Summary:
    """A smart sensor's scalars at one time."""

    timestamp: datetime
    values: dict[str, float]
    message_id: str | None


# -- encoding --------------------------------------------------------------------------------------


def pcm_bytes(samples: np.ndarray, dtype: PcmDtype) -> bytes:
    """Samples (any shape of frames x channels, float in [-1, 1] for int16) as little-endian PCM."""
    values = np.asarray(samples, dtype=np.float64)
    if dtype == "int16":
        return np.clip(np.round(values * 32768.0), -32768, 32767).astype("<i2").tobytes()
    return values.astype("<f4").tobytes()


def encode_binary(
    samples: np.ndarray, sample_rate: float, timestamp: datetime, message_id: int, dtype: PcmDtype = "int16"
) -> bytes:
    """A binary waveform message of ``samples`` (1-D mono, or frames x channels)."""
    frames = np.asarray(samples)
    channels = 1 if frames.ndim == 1 else frames.shape[1]
    header = HEADER.pack(MAGIC, VERSION, DTYPE_OF[dtype], channels, sample_rate, timestamp.timestamp(), message_id)
    return header + pcm_bytes(frames, dtype)


def encode_json(
    samples: np.ndarray,
    sample_rate: float,
    timestamp: datetime,
    message_id: int | str | None = None,
    pcm: PcmDtype | None = None,
) -> bytes:
    """A JSON waveform message: ``samples`` as numbers, or as base64 PCM of ``pcm`` when given."""
    body: dict[str, Any] = {"sample_rate": sample_rate, "timestamp": timestamp.isoformat()}
    if message_id is not None:
        body["message_id"] = message_id
    frames = np.asarray(samples)
    if pcm is None:
        body["samples"] = [float(v) for v in frames.astype(np.float32).ravel()]
    else:
        body["pcm_base64"] = base64.b64encode(pcm_bytes(frames, pcm)).decode("ascii")
        body["dtype"] = pcm
        body["channels"] = 1 if frames.ndim == 1 else int(frames.shape[1])
    return json.dumps(body).encode()


def encode_summary(values: dict[str, float], timestamp: datetime, message_id: int | str | None = None) -> bytes:
    """A JSON summary message."""
    body: dict[str, Any] = {"timestamp": timestamp.isoformat(), **values}
    if message_id is not None:
        body["message_id"] = message_id
    return json.dumps(body).encode()


# -- decoding --------------------------------------------------------------------------------------


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    timestamp: Annotated[datetime, Field(strict=False)] | StrictFloat | StrictInt
    message_id: StrictInt | Annotated[StrictStr, Field(min_length=1, max_length=64)] | None = None


class _JsonWaveform(_Message):
    sample_rate: StrictFloat | StrictInt = Field(..., gt=0)
    samples: list[StrictFloat | StrictInt] | None = None
    pcm_base64: StrictStr | None = None
    dtype: PcmDtype = "int16"
    channels: StrictInt = Field(1, ge=1, le=MAX_CHANNELS)


class _JsonSummary(_Message):
    velocity_rms_mm_s: StrictFloat | StrictInt | None = None
    peak_acceleration_g: StrictFloat | StrictInt | None = None
    temperature_c: StrictFloat | StrictInt | None = None


def decode_waveform(payload: bytes, max_samples: int) -> Waveform:
    """A waveform message, binary (by its magic) or JSON; at most ``max_samples`` values, all finite."""
    if payload[:4] == MAGIC:
        waveform = _decode_binary(payload, max_samples)
    elif payload.lstrip()[:1] == b"{":
        waveform = _decode_json(payload, max_samples)
    else:
        raise InputError("header", f"neither a binary waveform (magic {MAGIC!r}) nor a JSON object")
    _check_finite(waveform)
    return waveform


def decode_summary(payload: bytes) -> Summary:
    """A summary message: finite scalars, at least one of :data:`SUMMARY_FIELDS`."""
    body = _validated(_JsonSummary, payload)
    values = {name: float(getattr(body, name)) for name in SUMMARY_FIELDS if getattr(body, name) is not None}
    if not values:
        raise InputError("summary", f"needs at least one of {', '.join(SUMMARY_FIELDS)}")
    for name, value in values.items():
        if not math.isfinite(value):
            raise InputError(name, f"{value} is not a finite number")
    return Summary(_timestamp(body.timestamp), values, _message_id(body.message_id))


def _decode_binary(payload: bytes, max_samples: int) -> Waveform:
    if len(payload) < HEADER.size:
        raise InputError("header", f"{len(payload)} bytes is shorter than the {HEADER.size}-byte header")
    _, version, dtype_code, channels, sample_rate, stamp, message_id = HEADER.unpack_from(payload)
    if version != VERSION:
        raise InputError("version", f"version {version} is not supported; this gateway reads version {VERSION}")
    if dtype_code not in DTYPE_CODES:
        codes = ", ".join(f"{code} ({name})" for code, name in DTYPE_CODES.items())
        raise InputError("dtype", f"dtype code {dtype_code} is not one of {codes}")
    dtype: PcmDtype = DTYPE_CODES[dtype_code]  # type: ignore[assignment]
    if not 1 <= channels <= MAX_CHANNELS:
        raise InputError("channels", f"{channels} channels; send 1 to {MAX_CHANNELS}")
    if not (math.isfinite(sample_rate) and sample_rate > 0):
        raise InputError("sample_rate", f"{sample_rate} is not a positive sample rate")
    pcm = payload[HEADER.size :]
    _check_pcm(pcm, dtype, channels, "samples", max_samples)
    return Waveform(float(sample_rate), _timestamp(stamp), pcm, dtype, channels, str(message_id), "samples")


def _decode_json(payload: bytes, max_samples: int) -> Waveform:
    body = _validated(_JsonWaveform, payload)
    if (body.samples is None) == (body.pcm_base64 is None):
        raise InputError("samples", "give exactly one of 'samples' (numbers) or 'pcm_base64'")
    if body.samples is not None:
        if len(body.samples) > max_samples:
            raise InputError("samples", f"{len(body.samples)} samples is more than serving.max_samples={max_samples}")
        with np.errstate(over="ignore", invalid="ignore"):
            pcm = np.asarray(body.samples, dtype="<f4").tobytes()
        dtype: PcmDtype = "float32"
        channels, field = 1, "samples"
    else:
        try:
            pcm = base64.b64decode(body.pcm_base64 or "", validate=True)
        except (binascii.Error, ValueError) as error:
            raise InputError("pcm_base64", f"not valid base64: {error}") from None
        dtype, channels, field = body.dtype, body.channels, "pcm_base64"
        _check_pcm(pcm, dtype, channels, "pcm_base64", max_samples)
    stamp = _timestamp(body.timestamp)
    return Waveform(float(body.sample_rate), stamp, pcm, dtype, channels, _message_id(body.message_id), field)


def _validated(model: type[BaseModel], payload: bytes) -> Any:
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, ValueError) as error:
        raise InputError("payload", f"not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise InputError("payload", f"expected a JSON object, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "payload"
        message = "field required" if first["type"] == "missing" else first["msg"]
        raise InputError(field, message) from None


def _check_pcm(pcm: bytes, dtype: PcmDtype, channels: int, field: str, max_samples: int) -> None:
    frame = NUMPY_DTYPES[dtype].itemsize * channels
    if not pcm:
        raise InputError(field, "no samples")
    if len(pcm) % frame:
        raise InputError(field, f"{len(pcm)} bytes is not a whole number of {channels}-channel {dtype} frames")
    values = len(pcm) // NUMPY_DTYPES[dtype].itemsize
    if values > max_samples:
        raise InputError(field, f"{values} samples is more than serving.max_samples={max_samples}")


def _check_finite(waveform: Waveform) -> None:
    if waveform.dtype != "float32":
        return
    values = np.frombuffer(waveform.pcm, dtype="<f4")
    bad = int(np.count_nonzero(~np.isfinite(values)))
    if bad:
        raise InputError(waveform.field, f"{bad} sample(s) are NaN or infinite; send finite numbers only")


def _timestamp(value: datetime | float) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InputError("timestamp", "needs a time zone (e.g. ...Z or +00:00)")
        return value.astimezone(UTC)
    if not math.isfinite(value) or value <= 0:
        raise InputError("timestamp", f"{value} is not a positive number of Unix seconds")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        raise InputError("timestamp", f"{value} is out of range as Unix seconds") from None


def _message_id(value: int | str | None) -> str | None:
    return None if value is None else str(value)
