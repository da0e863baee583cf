"""Turn what a client sends into checked samples: a WAV/FLAC/OGG upload, JSON samples or base64 PCM.

Every problem is an :class:`~vibrasense.errors.InputError` whose ``source`` is the request field at
fault, so the API answers a 4xx that names it. Nothing here touches pandas: this is the hot path.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import soundfile as sf
from pydantic import ValidationError
from starlette.datastructures import FormData, Headers, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from vibrasense.config import Settings
from vibrasense.errors import InputError

MACHINE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$"
UNASSIGNED_MACHINE = "unassigned"
PCM_DTYPES: dict[str, np.dtype] = {
    "int16": np.dtype("<i2"),
    "int32": np.dtype("<i4"),
    "float32": np.dtype("<f4"),
    "float64": np.dtype("<f8"),
}
_PCM_SCALE = {"int16": 1 / 32768.0, "int32": 1 / 2147483648.0, "float32": 1.0, "float64": 1.0}
_MACHINE_ID = re.compile(MACHINE_ID_PATTERN)


class PayloadTooLarge(InputError):
    """The request body is above serving.max_upload_mb."""

    http_status = 413


class UnsupportedFormat(InputError):
    """The upload is not an audio format soundfile reads, or the content type is not accepted."""

    http_status = 415


@dataclass(frozen=True)
class Recording:
    """One checked recording of a request: float32 mono samples and what the client said about it."""

    samples: np.ndarray
    sample_rate: float
    machine_id: str = UNASSIGNED_MACHINE
    bearing: str | None = None
    shaft_hz: float | None = None

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.samples) / self.sample_rate


def max_upload_bytes(settings: Settings) -> int:
    """The largest request body accepted, from serving.max_upload_mb."""
    return int(settings.serving.max_upload_mb * 1024 * 1024)


def check_machine_id(machine_id: str | None, field: str = "machine_id") -> str:
    """A valid machine id, or ``unassigned`` when none is given."""
    if machine_id is None or machine_id == "":
        return UNASSIGNED_MACHINE
    if not _MACHINE_ID.match(machine_id):
        raise InputError(
            field,
            f"{machine_id[:40]!r} is not a machine id: use 1-128 letters, digits, '.', '_', ':' or '-', "
            "starting with a letter or digit",
        )
    return machine_id


def decode_audio(
    data: bytes, settings: Settings, field: str = "file", channel: int | None = None
) -> tuple[np.ndarray, float]:
    """Decode audio bytes (WAV, FLAC, OGG...) to float32 mono; returns ``(samples, sample_rate)``."""
    if not data:
        raise InputError(field, "the uploaded file is empty; send a WAV recording")
    try:
        with sf.SoundFile(io.BytesIO(data)) as audio:
            sample_rate = float(audio.samplerate)
            channels = audio.channels
            check_sample_rate(sample_rate, settings, field)
            if audio.frames > settings.serving.max_duration_s * sample_rate:
                raise InputError(
                    field,
                    f"recording is {audio.frames / sample_rate:.1f} s long, above serving.max_duration_s="
                    f"{settings.serving.max_duration_s:g}; send a shorter clip",
                )
            frames = audio.read(dtype="float32", always_2d=True)
    except sf.LibsndfileError as error:
        raise UnsupportedFormat(
            field, f"not a readable audio file ({error}); send WAV, FLAC or OGG (16-bit PCM WAV is fastest)"
        ) from None
    except (RuntimeError, ValueError, EOFError) as error:
        raise InputError(field, f"corrupt or truncated audio file: {error}") from None
    wanted = settings.signals.channel if channel is None else channel
    if wanted >= channels:
        if channel is not None:
            raise InputError("channel", f"channel {channel} asked for but the file has {channels} channel(s)")
        wanted = 0
    return np.ascontiguousarray(frames[:, wanted]), sample_rate


def decode_pcm(encoded: str, dtype: str, channels: int, field: str = "pcm_base64") -> np.ndarray:
    """Decode base64 little-endian interleaved PCM to float32 (first channel) in [-1, 1] for integers."""
    if dtype not in PCM_DTYPES:
        raise InputError("dtype", f"{dtype!r} is not supported; use one of {', '.join(PCM_DTYPES)}")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as error:
        raise InputError(field, f"not valid base64: {error}") from None
    itemsize = PCM_DTYPES[dtype].itemsize
    if len(raw) % (itemsize * channels):
        raise InputError(field, f"{len(raw)} bytes is not a whole number of {channels}-channel {dtype} frames")
    values = np.frombuffer(raw, dtype=PCM_DTYPES[dtype]).reshape(-1, channels)[:, 0]
    return (values.astype(np.float32) * np.float32(_PCM_SCALE[dtype])).astype(np.float32, copy=False)


def check_sample_rate(sample_rate: float, settings: Settings, field: str = "sample_rate") -> None:
    """Reject rates outside serving.min_sample_rate..serving.max_sample_rate."""
    low, high = settings.serving.min_sample_rate, settings.serving.max_sample_rate
    if not np.isfinite(sample_rate) or not low <= sample_rate <= high:
        raise InputError(
            field,
            f"sample rate {sample_rate:g} Hz is outside serving.min_sample_rate..max_sample_rate ({low}..{high} Hz)",
        )


def check_samples(samples: np.ndarray, sample_rate: float, settings: Settings, field: str) -> np.ndarray:
    """Float32 1-D samples that are finite, not empty, and of a duration the service accepts."""
    check_sample_rate(sample_rate, settings, "sample_rate" if field in ("samples", "pcm_base64") else field)
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim != 1:
        raise InputError(field, f"expected one channel of samples, got an array of shape {samples.shape}")
    if samples.size == 0:
        raise InputError(field, "the recording is empty (0 samples)")
    duration = samples.size / sample_rate
    if duration < settings.signals.min_duration_s:
        raise InputError(
            field,
            f"recording is {duration:.3f} s long, shorter than signals.min_duration_s="
            f"{settings.signals.min_duration_s:g}",
        )
    if duration > settings.serving.max_duration_s:
        raise InputError(
            field,
            f"recording is {duration:.1f} s long, above serving.max_duration_s="
            f"{settings.serving.max_duration_s:g}; send a shorter clip",
        )
    if not np.isfinite(samples).all():
        bad = int(np.count_nonzero(~np.isfinite(samples)))
        raise InputError(field, f"{bad} sample(s) are NaN or infinite; send finite numbers only")
    return samples


# -- HTTP bodies ------------------------------------------------------------------------------------

Decoder = Callable[[], Recording]
"""Turns a parsed request into a checked :class:`Recording`; run in a worker thread (CPU work)."""

JSON = "application/json"
MULTIPART = "multipart/form-data"


async def read_body(request: Request, settings: Settings) -> bytes:
    """The request body, refused with 413 as soon as it passes serving.max_upload_mb (declared or not)."""
    limit = max_upload_bytes(settings)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(int(declared), settings)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(size, settings)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: int, settings: Settings) -> PayloadTooLarge:
    return PayloadTooLarge(
        "body",
        f"request body of {size / 1048576:.1f} MB is above serving.max_upload_mb="
        f"{settings.serving.max_upload_mb:g}; send a shorter or compressed (FLAC) recording",
    )


def media_type(headers: Headers) -> str:
    """The request's media type, without parameters, lower case."""
    return headers.get("content-type", "").split(";")[0].strip().lower()


async def parse_form(headers: Headers, body: bytes, max_files: int) -> FormData:
    """Parse a multipart body already read (and size-checked) into fields and files."""

    async def stream() -> AsyncIterator[bytes]:
        yield body

    parser = MultiPartParser(headers, stream(), max_files=max_files, max_fields=100)
    try:
        return await parser.parse()
    except (MultiPartException, ValueError, KeyError) as error:
        raise InputError("body", f"malformed multipart/form-data body: {error}") from None


def unsupported_media(kind: str) -> UnsupportedFormat:
    """The error for a body that is neither JSON nor multipart."""
    return UnsupportedFormat(
        "content-type",
        f"{kind or 'no content type'} is not accepted; send multipart/form-data with a WAV 'file' or "
        "application/json with sample_rate and samples (or pcm_base64)",
    )


async def single_decoder(request: Request, body: bytes, settings: Settings) -> Decoder:
    """How to decode the one recording of a ``POST /v1/score`` body (JSON or multipart)."""
    kind = media_type(request.headers)
    if kind == JSON:
        return lambda: json_recording(body, settings)
    if kind == MULTIPART:
        form = await parse_form(request.headers, body, max_files=1)
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InputError("file", "multipart body has no 'file' part; attach the recording as 'file'")
        data = await upload.read()
        fields = _form_fields(form, 0, 1)
        return lambda: upload_recording(data, fields, settings, "file")
    raise unsupported_media(kind)


async def batch_decoders(request: Request, body: bytes, settings: Settings, max_items: int) -> list[Decoder]:
    """How to decode each recording of a ``POST /v1/score/batch`` body; one bad item fails only itself."""
    kind = media_type(request.headers)
    if kind == JSON:
        items = _json_items(body, max_items)
        return [_item_decoder(item, index, settings) for index, item in enumerate(items)]
    if kind == MULTIPART:
        form = await parse_form(request.headers, body, max_files=max_items)
        uploads = form.getlist("files")
        if not uploads:
            raise InputError("files", "multipart body has no 'files' parts; attach each recording as 'files'")
        if len(uploads) > max_items:
            raise InputError("files", f"{len(uploads)} recordings in one batch; at most {max_items}")
        decoders: list[Decoder] = []
        for index, upload in enumerate(uploads):
            field = f"files[{index}]"
            if not isinstance(upload, UploadFile):
                decoders.append(_failing(InputError(field, "is a text field, not an uploaded file")))
                continue
            data = await upload.read()
            fields = _form_fields(form, index, len(uploads))
            decoders.append(lambda d=data, f=fields, n=field: upload_recording(d, f, settings, n))
        return decoders
    raise unsupported_media(kind)


def json_recording(body: bytes, settings: Settings, prefix: str = "") -> Recording:
    """A checked recording from a JSON ``ScoreRequest`` body."""
    from vibrasense.serving.schemas import ScoreRequest

    try:
        request = ScoreRequest.model_validate_json(body)
    except ValidationError as error:
        raise _validation_error(error, prefix) from None
    return request_recording(request, settings, prefix)


def request_recording(request: Any, settings: Settings, prefix: str = "") -> Recording:
    """A checked recording from a validated ``ScoreRequest``."""
    check_sample_rate(request.sample_rate, settings, prefix + "sample_rate")
    if (request.samples is None) == (request.pcm_base64 is None):
        raise InputError(prefix + "samples", "give exactly one of 'samples' (numbers) or 'pcm_base64'")
    if request.samples is not None:
        field = prefix + "samples"
        samples = np.asarray(request.samples, dtype=np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            samples = samples.astype(np.float32)
    else:
        field = prefix + "pcm_base64"
        samples = decode_pcm(request.pcm_base64, request.dtype, request.channels, field)
    samples = check_samples(samples, request.sample_rate, settings, field)
    return Recording(
        samples=samples,
        sample_rate=float(request.sample_rate),
        machine_id=check_machine_id(request.machine_id, prefix + "machine_id"),
        bearing=request.bearing,
        shaft_hz=request.shaft_hz,
    )


def upload_recording(data: bytes, fields: dict[str, str], settings: Settings, field: str) -> Recording:
    """A checked recording from an uploaded audio file and its form fields."""
    channel = _optional_number(fields, "channel", int)
    if channel is not None and not 0 <= channel < 64:
        raise InputError("channel", f"channel {channel} is out of range 0..63")
    samples, sample_rate = decode_audio(data, settings, field, channel)
    samples = check_samples(samples, sample_rate, settings, field)
    shaft_hz = _optional_number(fields, "shaft_hz", float)
    if shaft_hz is not None and not 0 < shaft_hz <= 1000:
        raise InputError("shaft_hz", f"shaft speed {shaft_hz:g} Hz is out of range (0, 1000]")
    bearing = fields.get("bearing") or None
    if bearing is not None and len(bearing) > 64:
        raise InputError("bearing", "bearing preset names are at most 64 characters")
    return Recording(
        samples=samples,
        sample_rate=sample_rate,
        machine_id=check_machine_id(fields.get("machine_id"), "machine_id"),
        bearing=bearing,
        shaft_hz=shaft_hz,
    )


def _form_fields(form: FormData, index: int, count: int) -> dict[str, str]:
    """The text fields that go with the ``index``-th of ``count`` files: given once (all) or per file."""
    fields: dict[str, str] = {}
    for name in ("machine_id", "bearing", "shaft_hz", "channel"):
        values = [v for v in form.getlist(name) if isinstance(v, str)]
        if len(values) == 1:
            fields[name] = values[0]
        elif len(values) == count:
            fields[name] = values[index]
        elif values:
            raise InputError(name, f"given {len(values)} times for {count} files; give it once or once per file")
    return fields


def _optional_number(fields: dict[str, str], name: str, kind: type) -> Any:
    value = fields.get(name)
    if value is None or value == "":
        return None
    try:
        number = kind(value)
    except ValueError:
        raise InputError(name, f"{value[:40]!r} is not a {'whole ' if kind is int else ''}number") from None
    if kind is float and not np.isfinite(number):
        raise InputError(name, f"{value[:40]!r} is not a finite number")
    return number


def _json_items(body: bytes, max_items: int) -> list[Any]:
    from pydantic import TypeAdapter

    try:
        envelope = TypeAdapter(dict[str, Any]).validate_json(body)
    except ValidationError as error:
        raise InputError("body", f"not a JSON object: {error.errors()[0]['msg']}") from None
    unknown = set(envelope) - {"recordings"}
    if unknown:
        raise InputError(sorted(unknown)[0], 'unknown field; a batch body is {"recordings": [...]}')
    items = envelope.get("recordings")
    if not isinstance(items, list) or not items:
        raise InputError("recordings", "give a non-empty list of recordings")
    if len(items) > max_items:
        raise InputError("recordings", f"{len(items)} recordings in one batch; at most {max_items}")
    return items


def _item_decoder(item: Any, index: int, settings: Settings) -> Decoder:
    from vibrasense.serving.schemas import ScoreRequest

    prefix = f"recordings[{index}]."
    try:
        request = ScoreRequest.model_validate(item)
    except ValidationError as error:
        return _failing(_validation_error(error, prefix))
    return lambda: request_recording(request, settings, prefix)


def _failing(error: InputError) -> Decoder:
    def decode() -> Recording:
        raise error

    return decode


def _validation_error(error: ValidationError, prefix: str = "") -> InputError:
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "body"
    return InputError(prefix + field, f"{first['msg']} (got {_preview(first.get('input'))})")


def _preview(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
