"""Turn what a client sends into one checked recording: an audio file, JSON samples or base64 PCM.

Every problem is an :class:`~vibrasense.errors.InputError` whose ``source`` is the request field at
fault. The field rules of the request itself are the schemas' (:mod:`vibrasense.serving.schemas`); what is
checked here is what only the decoded recording tells: its format, rate, channels, length and values.
Nothing here touches pandas or HTTP: this is the hot path, shared by the API and any other caller.
"""

from __future__ import annotations

import base64
import binascii
import io
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import soundfile as sf

from vibrasense.config import Settings
from vibrasense.errors import InputError
from vibrasense.serving.schemas import MAX_CHANNELS, UNASSIGNED_MACHINE, sample_rate_problem
from vibrasense.signals.readers import check_wav_complete, pcm16_wav_layout
from vibrasense.signals.records import SignalContext

NO_CONTEXT = SignalContext()

PCM_DTYPES: dict[str, np.dtype] = {
    "int16": np.dtype("<i2"),
    "int32": np.dtype("<i4"),
    "float32": np.dtype("<f4"),
    "float64": np.dtype("<f8"),
}
_PCM_SCALE = {"int16": 1 / 32768.0, "int32": 1 / 2147483648.0, "float32": 1.0, "float64": 1.0}


BLOCK_FRAMES = 65_536
"""Frames decoded at a time: an 8-channel block is 2 MB, whatever the length of the file."""
HEADER_BYTES = 65_536
"""Bytes of an upload read to check its WAV header against the frames it holds."""


class UnsupportedFormat(InputError):
    """The upload is not an audio format soundfile reads."""


class RecordingTooLarge(InputError):
    """The recording decodes to more samples than serving.max_samples (413)."""


def too_many_samples(samples: int, settings: Settings, field: str) -> RecordingTooLarge:
    """The refusal of a recording of ``samples`` samples (every channel counted), naming the limit."""
    return RecordingTooLarge(
        field,
        f"the recording holds {samples:,} samples (every channel counted), above serving.max_samples="
        f"{settings.serving.max_samples:,}; send a shorter clip, fewer channels or a lower sample rate",
    )


@dataclass(frozen=True)
class Recording:
    """One checked recording: float32 mono samples, the machine, its context, and the field it came from."""

    samples: np.ndarray
    sample_rate: float
    machine_id: str = UNASSIGNED_MACHINE
    context: SignalContext = NO_CONTEXT
    field: str = "samples"

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.samples) / self.sample_rate


def check_sample_rate(sample_rate: float, settings: Settings, field: str = "sample_rate") -> None:
    """Refuse a rate outside serving.min_sample_rate..serving.max_sample_rate (the schemas' rule)."""
    problem = (
        "not a finite number" if not np.isfinite(sample_rate) else sample_rate_problem(sample_rate, settings.serving)
    )
    if problem is not None:
        raise InputError(field, problem)


def channel_index(channels: int, asked: int | None, model_channel: int, field: str = "channel") -> int:
    """The channel to score of ``channels``: the one asked for, else the model's; mono is its own channel."""
    if channels == 1:
        return 0
    wanted = model_channel if asked is None else asked
    if wanted >= channels:
        whose = f"channel {asked} was asked for" if asked is not None else f"the model reads channel {wanted}"
        raise InputError(field, f"{whose} but the recording has {channels} channels; give channel 0..{channels - 1}")
    return wanted


def pick_channel(frames: np.ndarray, asked: int | None, model_channel: int, field: str = "channel") -> np.ndarray:
    """One channel of (frames, channels) samples: the one asked for, else the model's; mono is its own channel."""
    return np.ascontiguousarray(frames[:, channel_index(frames.shape[1], asked, model_channel, field)])


def decode_audio(
    data: bytes | BinaryIO,
    settings: Settings,
    *,
    channel: int | None = None,
    model_channel: int = 0,
    field: str = "file",
) -> tuple[np.ndarray, float]:
    """Decode an audio file (WAV, FLAC, OGG...) to float32 samples of one channel; ``(samples, sample_rate)``.

    ``data`` is the file's bytes or a binary file object (an upload's spooled file, read in place). Rate,
    channels, duration and sample count (serving.max_samples) are checked from the header before anything is
    decoded; then only the scored channel is kept, :data:`BLOCK_FRAMES` frames at a time, so a small file
    declaring hours of 8-channel audio costs neither memory nor time. A WAV holding fewer frames than its
    header declares is refused as truncated.
    """
    stream = io.BytesIO(data) if isinstance(data, bytes | bytearray) else data
    head = stream.read(HEADER_BYTES)
    if not head:
        raise InputError(field, "the uploaded file is empty; send a WAV recording")
    wav = pcm16_wav_layout(head)
    if wav is not None and wav.data_offset + wav.frames * 2 * wav.channels <= stream.seek(0, io.SEEK_END):
        # a whole 16-bit PCM WAV, the usual upload: its samples are read as they lie, without libsndfile (a 10-s
        # clip decodes in 0.08 ms instead of 0.23, the same samples)
        rate = float(wav.sample_rate)
        wanted = _checked_header(rate, wav.frames, wav.channels, settings, channel, model_channel, field)
        stream.seek(wav.data_offset)
        samples = np.empty(wav.frames, dtype=np.float32)
        buffer = np.empty((min(BLOCK_FRAMES, max(wav.frames, 1)), wav.channels), dtype="<i2")  # reused per block
        for start in range(0, wav.frames, len(buffer)):
            block = buffer[: min(len(buffer), wav.frames - start)]
            stream.readinto(memoryview(block).cast("B"))
            np.multiply(block[:, wanted], np.float32(1 / 32768), out=samples[start : start + len(block)])
        return samples, rate
    stream.seek(0)
    try:
        with sf.SoundFile(stream) as audio:
            sample_rate, frames, channels = float(audio.samplerate), audio.frames, audio.channels
            wanted = _checked_header(sample_rate, frames, channels, settings, channel, model_channel, field)
            samples = np.empty(frames, dtype=np.float32)
            # 16-bit PCM is read as it is stored and scaled here: libsndfile's own float conversion costs 5x more,
            # for the same values (x / 32768 is exact in float32)
            native = audio.subtype == "PCM_16"
            dtype, scale = ("int16", np.float32(1 / 32768)) if native else ("float32", None)
            buffer = np.empty((min(BLOCK_FRAMES, max(frames, 1)), channels), dtype=dtype)  # reused per block
            filled = 0
            while filled < frames:
                block = audio.read(dtype=dtype, always_2d=True, out=buffer[: min(len(buffer), frames - filled)])
                if not len(block):
                    break
                target = samples[filled : filled + len(block)]
                if scale is None:
                    target[:] = block[:, wanted]
                else:
                    np.multiply(block[:, wanted], scale, out=target)
                filled += len(block)
    except sf.LibsndfileError as error:
        raise UnsupportedFormat(
            field, f"not a readable audio file ({error}); send WAV, FLAC or OGG (16-bit PCM WAV is fastest)"
        ) from None
    except (RuntimeError, ValueError, EOFError) as error:
        raise InputError(field, f"corrupt or truncated audio file: {error}") from None
    if filled < frames:
        raise InputError(field, f"truncated audio file: its header declares {frames} frames, {filled} could be read")
    check_wav_complete(field, head, filled, sample_rate)
    return samples, sample_rate


def _checked_header(
    sample_rate: float,
    frames: int,
    channels: int,
    settings: Settings,
    channel: int | None,
    model_channel: int,
    field: str,
) -> int:
    """Check what an audio header declares against the service's limits; the index of the channel to score."""
    check_sample_rate(sample_rate, settings, field)
    if channels > MAX_CHANNELS:
        raise InputError(field, f"the recording has {channels} channels, more than {MAX_CHANNELS}")
    wanted = channel_index(channels, channel, model_channel)
    if frames > settings.serving.max_duration_s * sample_rate:
        raise InputError(field, _too_long(frames / sample_rate, settings))
    if frames * channels > settings.serving.max_samples:
        raise too_many_samples(frames * channels, settings, field)
    return wanted


def decode_pcm(
    encoded: str,
    dtype: str,
    channels: int,
    field: str = "pcm_base64",
    settings: Settings | None = None,
) -> np.ndarray:
    """Base64 little-endian interleaved PCM as float32 (frames, channels), integers scaled to [-1, 1].

    With ``settings``, a payload of more than serving.max_samples values is refused before it is decoded.
    """
    if dtype not in PCM_DTYPES:
        raise InputError("dtype", f"{dtype!r} is not supported; use one of {', '.join(PCM_DTYPES)}")
    if settings is not None:
        values = len(encoded) * 3 // 4 // PCM_DTYPES[dtype].itemsize
        if values > settings.serving.max_samples:
            raise too_many_samples(values, settings, field)
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as error:
        raise InputError(field, f"not valid base64: {error}") from None
    itemsize = PCM_DTYPES[dtype].itemsize
    if len(raw) % (itemsize * channels):
        raise InputError(field, f"{len(raw)} bytes is not a whole number of {channels}-channel {dtype} frames")
    values = np.frombuffer(raw, dtype=PCM_DTYPES[dtype]).reshape(-1, channels)
    with np.errstate(over="ignore", invalid="ignore"):
        return values.astype(np.float32) * np.float32(_PCM_SCALE[dtype])


def samples_array(values: list[float]) -> np.ndarray:
    """JSON numbers as float32; a value beyond float32 becomes infinite (and is refused by :func:`check_samples`)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return np.fromiter(values, dtype=np.float32, count=len(values))


def check_samples(samples: np.ndarray, sample_rate: float, settings: Settings, field: str) -> np.ndarray:
    """Float32 1-D samples that are finite, not empty, and of a duration the service accepts."""
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim != 1:
        raise InputError(field, f"expected one channel of samples, got an array of shape {samples.shape}")
    if samples.size == 0:
        raise InputError(field, "the recording is empty (0 samples)")
    if samples.size > settings.serving.max_samples:
        raise too_many_samples(samples.size, settings, field)
    duration = samples.size / sample_rate
    if duration < settings.signals.min_duration_s:
        raise InputError(
            field,
            f"recording is {duration:.3f} s long, shorter than signals.min_duration_s="
            f"{settings.signals.min_duration_s:g}",
        )
    if duration > settings.serving.max_duration_s:
        raise InputError(field, _too_long(duration, settings))
    if not np.isfinite(samples).all():
        bad = int(np.count_nonzero(~np.isfinite(samples)))
        raise InputError(field, f"{bad} sample(s) are NaN or infinite; send finite numbers only")
    return samples


def _too_long(seconds: float, settings: Settings) -> str:
    return (
        f"recording is {seconds:.1f} s long, above serving.max_duration_s={settings.serving.max_duration_s:g}; "
        "send a shorter clip"
    )
