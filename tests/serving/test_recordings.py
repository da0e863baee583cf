"""Decoding and checking of recordings (files, PCM, samples): every problem names the field at fault."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from synthetic_machines import RATE, healthy_clip, wav_bytes

from vibrasense.config import Settings
from vibrasense.errors import InputError
from vibrasense.serving.recordings import (
    UnsupportedFormat,
    check_samples,
    decode_audio,
    decode_pcm,
    pick_channel,
    samples_array,
)


def test_decode_wav_matches_samples_to_16_bit_precision(settings: Settings) -> None:
    clip = healthy_clip(1)
    samples, rate = decode_audio(wav_bytes(clip), settings)
    assert rate == RATE
    assert samples.dtype == np.float32 and samples.shape == clip.shape
    assert np.max(np.abs(samples - clip)) < 1 / 32768 + 1e-7


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "FLOAT"])
def test_decode_gives_libsndfiles_own_float_values(settings: Settings, subtype: str) -> None:
    import io

    import soundfile as sf

    stereo = np.stack([healthy_clip(1), -0.5 * healthy_clip(1)], axis=1)
    buffer = io.BytesIO()
    sf.write(buffer, stereo, RATE, format="WAV", subtype=subtype)
    expected = sf.read(io.BytesIO(buffer.getvalue()), dtype="float32", always_2d=True)[0]
    for channel in (0, 1):
        samples, _ = decode_audio(buffer.getvalue(), settings, channel=channel)
        np.testing.assert_array_equal(samples, expected[:, channel])  # bit for bit, whichever way it was read


def test_multichannel_wav_gives_the_asked_channel_else_the_models(settings: Settings) -> None:
    stereo = wav_bytes(np.stack([healthy_clip(1), -0.5 * healthy_clip(1)], axis=1))
    first, _ = decode_audio(stereo, settings)
    second, _ = decode_audio(stereo, settings, channel=1)
    np.testing.assert_allclose(second, -0.5 * first, atol=2 / 32768)
    np.testing.assert_array_equal(decode_audio(stereo, settings, model_channel=1)[0], second)
    np.testing.assert_array_equal(decode_audio(stereo, settings, channel=0, model_channel=1)[0], first)
    for asked, model in ((2, 0), (None, 2)):
        with pytest.raises(InputError) as error:
            decode_audio(stereo, settings, channel=asked, model_channel=model)
        assert error.value.source == "channel" and "2 channels" in error.value.reason


def test_a_mono_recording_is_its_own_channel() -> None:
    mono = np.arange(6, dtype=np.float32).reshape(-1, 1)
    np.testing.assert_array_equal(pick_channel(mono, None, 3), mono[:, 0])
    np.testing.assert_array_equal(pick_channel(mono, 7, 0), mono[:, 0])


@pytest.mark.parametrize(
    ("data", "kind"),
    [(b"", InputError), (b"not a wav at all" * 10, UnsupportedFormat), (b"RIFF\x00\x00", UnsupportedFormat)],
)
def test_decode_refuses_empty_and_corrupt_files(settings: Settings, data: bytes, kind: type) -> None:
    with pytest.raises(kind) as error:
        decode_audio(data, settings, field="files[2]")
    assert error.value.source == "files[2]"


def test_truncated_wav_is_refused_or_read_short_never_crashes(settings: Settings) -> None:
    data = wav_bytes(healthy_clip(1))[:1000]
    try:
        samples, _ = decode_audio(data, settings)
    except InputError as error:
        assert error.source == "file"
    else:
        assert samples.size < RATE


def test_decode_refuses_rates_and_durations_out_of_range(settings: Settings) -> None:
    with pytest.raises(InputError, match=r"serving\.min_sample_rate"):
        decode_audio(wav_bytes(healthy_clip(1, rate=500), rate=500), settings)
    limited = settings.model_copy(deep=True)
    limited.serving.max_duration_s = 0.5
    with pytest.raises(InputError, match="max_duration_s"):
        decode_audio(wav_bytes(healthy_clip(1)), limited)


def test_pcm_int16_round_trip() -> None:
    values = np.array([0, 16384, -32768, 32767], dtype="<i2")
    decoded = decode_pcm(base64.b64encode(values.tobytes()).decode(), "int16", 1)
    np.testing.assert_allclose(decoded[:, 0], [0, 0.5, -1, 32767 / 32768])


def test_pcm_interleaved_channels_are_frames_by_channels() -> None:
    frames = np.array([[1.0, -1.0], [0.25, 9.0]], dtype="<f4")
    decoded = decode_pcm(base64.b64encode(frames.tobytes()).decode(), "float32", 2)
    np.testing.assert_array_equal(decoded, frames)


@pytest.mark.parametrize(
    ("payload", "dtype", "field"),
    [
        ("@@@", "int16", "pcm_base64"),
        (base64.b64encode(b"abc").decode(), "int16", "pcm_base64"),
        ("", "int8", "dtype"),
    ],
)
def test_bad_pcm_names_the_field(payload: str, dtype: str, field: str) -> None:
    with pytest.raises(InputError) as error:
        decode_pcm(payload, dtype, 1)
    assert error.value.source == field


def test_json_numbers_beyond_float32_become_infinite_and_are_refused(settings: Settings) -> None:
    samples = samples_array([0.5, 1e300] * 1000)
    assert samples.dtype == np.float32 and np.isinf(samples[1])
    with pytest.raises(InputError, match="infinite"):
        check_samples(samples, RATE, settings, "samples")


@pytest.mark.parametrize(
    ("samples", "rate", "match"),
    [
        (np.zeros(0, np.float32), RATE, "empty"),
        (np.array([0.1, np.nan] * 1000, np.float32), RATE, "NaN"),
        (np.zeros(100, np.float32), RATE, "shorter than signals.min_duration_s"),
        (np.zeros((2, RATE), np.float32), RATE, "one channel"),
    ],
)
def test_check_samples_refuses_bad_recordings(settings: Settings, samples, rate, match) -> None:
    with pytest.raises(InputError, match=match):
        check_samples(samples, rate, settings, "samples")


def _wav_with_list_chunk(pcm: bytes, channels: int, rate: int) -> bytes:
    """A 16-bit PCM WAV with a LIST chunk (odd-sized, padded) between ``fmt `` and ``data``, as editors write."""
    import struct

    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * 2 * channels, 2 * channels, 16)
    info = b"INFOISFT\x03\x00\x00\x00vs\x00"  # 15 bytes: one pad byte follows
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt
    chunks += b"LIST" + struct.pack("<I", len(info)) + info + b"\x00"
    chunks += b"data" + struct.pack("<I", len(pcm)) + pcm
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


@pytest.mark.parametrize(("format", "channels", "channel"), [("WAV", 1, None), ("WAV", 2, 1), ("WAVEX", 3, 2)])
def test_16_bit_pcm_read_without_libsndfile_gives_its_values(
    settings: Settings, format: str, channels: int, channel: int | None
) -> None:
    import io

    import soundfile as sf

    from vibrasense.signals.readers import pcm16_wav_layout

    rng = np.random.default_rng(channels)
    frames = rng.uniform(-1, 1, (70_001, channels))  # more than one block, an odd count
    buffer = io.BytesIO()
    sf.write(buffer, frames, RATE, format=format, subtype="PCM_16")
    data = buffer.getvalue()
    layout = pcm16_wav_layout(data[:65_536])
    assert layout is not None and (layout.frames, layout.channels, layout.sample_rate) == (70_001, channels, RATE)
    expected = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)[0][:, channel or 0]
    samples, rate = decode_audio(data, settings, channel=channel)
    assert rate == RATE and np.array_equal(samples, expected)


def test_a_wav_with_other_chunks_before_its_data_decodes_the_same(settings: Settings) -> None:
    import io

    import soundfile as sf

    pcm = (np.arange(-500, 500, dtype="<i2") * 30).tobytes()
    data = _wav_with_list_chunk(pcm, 2, RATE)
    samples, rate = decode_audio(data, settings, channel=1)
    expected = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)[0][:, 1]
    assert rate == RATE and np.array_equal(samples, expected) and samples.size == 500


def test_formats_the_fast_path_does_not_read_are_left_to_libsndfile() -> None:
    import io

    import soundfile as sf

    from vibrasense.signals.readers import pcm16_wav_layout

    for subtype in ("PCM_24", "FLOAT", "PCM_U8"):
        buffer = io.BytesIO()
        sf.write(buffer, np.zeros(100), RATE, format="WAV", subtype=subtype)
        assert pcm16_wav_layout(buffer.getvalue()) is None, subtype
    assert pcm16_wav_layout(b"fLaC" + bytes(100)) is None
