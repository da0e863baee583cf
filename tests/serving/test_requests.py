"""Decoding and checking of uploaded recordings: every problem names the field at fault."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from synthetic_machines import RATE, healthy_clip, wav_bytes

from vibrasense.config import Settings
from vibrasense.errors import InputError
from vibrasense.serving.requests import (
    UNASSIGNED_MACHINE,
    UnsupportedFormat,
    check_machine_id,
    check_samples,
    decode_audio,
    decode_pcm,
    json_recording,
)


def test_decode_wav_matches_samples_to_16_bit_precision(settings: Settings) -> None:
    clip = healthy_clip(1)
    samples, rate = decode_audio(wav_bytes(clip), settings)
    assert rate == RATE
    assert samples.dtype == np.float32 and samples.shape == clip.shape
    assert np.max(np.abs(samples - clip)) < 1 / 32768 + 1e-7


def test_decode_multichannel_wav_takes_the_asked_channel(settings: Settings) -> None:
    stereo = np.stack([healthy_clip(1), -0.5 * healthy_clip(1)], axis=1)
    first, _ = decode_audio(wav_bytes(stereo), settings)
    second, _ = decode_audio(wav_bytes(stereo), settings, channel=1)
    np.testing.assert_allclose(second, -0.5 * first, atol=2 / 32768)
    with pytest.raises(InputError) as error:
        decode_audio(wav_bytes(stereo), settings, channel=2)
    assert error.value.source == "channel"


@pytest.mark.parametrize(
    ("data", "kind"),
    [(b"", InputError), (b"not a wav at all" * 10, UnsupportedFormat), (b"RIFF\x00\x00", UnsupportedFormat)],
)
def test_decode_refuses_empty_and_corrupt_files(settings: Settings, data: bytes, kind: type) -> None:
    with pytest.raises(kind) as error:
        decode_audio(data, settings)
    assert error.value.source == "file"


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
    np.testing.assert_allclose(decoded, [0, 0.5, -1, 32767 / 32768])


def test_pcm_interleaved_channels_keep_the_first() -> None:
    frames = np.array([[1.0, -1.0], [0.25, 9.0]], dtype="<f4")
    decoded = decode_pcm(base64.b64encode(frames.tobytes()).decode(), "float32", 2)
    np.testing.assert_array_equal(decoded, [1.0, 0.25])


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


@pytest.mark.parametrize(
    ("samples", "rate", "match"),
    [
        (np.zeros(0, np.float32), RATE, "empty"),
        (np.array([0.1, np.nan] * 1000, np.float32), RATE, "NaN"),
        (np.zeros(100, np.float32), RATE, "shorter than signals.min_duration_s"),
        (np.zeros(RATE, np.float32), 10, "sample rate"),
        (np.zeros((2, RATE), np.float32), RATE, "one channel"),
    ],
)
def test_check_samples_refuses_bad_recordings(settings: Settings, samples, rate, match) -> None:
    with pytest.raises(InputError, match=match):
        check_samples(samples, rate, settings, "samples")


def test_machine_ids() -> None:
    assert check_machine_id(None) == UNASSIGNED_MACHINE
    assert check_machine_id("fan-03:line_2") == "fan-03:line_2"
    for bad in ("../etc", "a b", "-lead", "x" * 129):
        with pytest.raises(InputError):
            check_machine_id(bad)


def test_json_recording_checks_every_field(settings: Settings) -> None:
    settings.signals.min_duration_s = 0
    good = json_recording(b'{"sample_rate": 16000, "samples": [0.5, -0.5], "machine_id": "m"}', settings)
    assert good.machine_id == "m" and good.samples.tolist() == [0.5, -0.5]
    cases = {
        b'{"sample_rate": 16000}': ("samples", "exactly one"),
        b'{"sample_rate": "fast", "samples": [1]}': ("sample_rate", "number"),
        b'{"sample_rate": 16000, "samples": [1e300, 1]}': ("samples", "infinite"),
        b'{"sample_rate": 16000, "samples": [1], "machine_id": "a b"}': ("machine_id", "pattern"),
        b'{"sample_rate": 16000, "samples": [1], "colour": 1}': ("colour", "Extra inputs"),
        b"{not json": ("body", "JSON"),
    }
    for body, (field, words) in cases.items():
        with pytest.raises(InputError) as error:
            json_recording(body, settings)
        assert error.value.source == field, body
        assert words in error.value.reason, (body, error.value.reason)
