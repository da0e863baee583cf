"""The waveform and summary formats: binary and JSON round-trip, and every malformed message names its field."""

from __future__ import annotations

import base64
import json
import struct
from datetime import UTC, datetime

import numpy as np
import pytest

from vibrasense.errors import InputError
from vibrasense.gateway import topics
from vibrasense.gateway.codec import (
    HEADER,
    MAGIC,
    decode_summary,
    decode_waveform,
    encode_binary,
    encode_json,
    encode_summary,
)
from vibrasense.signals.synthetic import machine_sound

STAMP = datetime(2026, 1, 5, 6, 0, 0, 250_000, tzinfo=UTC)
MAX = 10_000_000


def test_binary_int16_round_trip_keeps_samples_to_one_lsb() -> None:
    samples = machine_sound(0.5, 16_000, machine=1, seed=3)
    payload = encode_binary(samples, 16_000, STAMP, 42, "int16")
    assert len(payload) == HEADER.size + 2 * samples.size
    waveform = decode_waveform(payload, MAX)
    assert (waveform.sample_rate, waveform.timestamp, waveform.message_id) == (16_000.0, STAMP, "42")
    assert (waveform.dtype, waveform.channels, waveform.field) == ("int16", 1, "samples")
    assert np.abs(waveform.frames()[:, 0] - samples).max() <= 1 / 32768


def test_binary_float32_multichannel_round_trip_is_exact() -> None:
    frames = np.random.default_rng(0).uniform(-1, 1, size=(800, 3)).astype(np.float32)
    waveform = decode_waveform(encode_binary(frames, 25_600, STAMP, 7, "float32"), MAX)
    assert waveform.channels == 3
    np.testing.assert_array_equal(waveform.frames(), frames)


def test_json_samples_and_base64_round_trip() -> None:
    samples = machine_sound(0.2, 16_000, machine=0, seed=1)
    as_numbers = decode_waveform(encode_json(samples, 16_000, STAMP, "clip-9"), MAX)
    np.testing.assert_array_equal(as_numbers.frames()[:, 0], samples)
    assert (as_numbers.message_id, as_numbers.timestamp, as_numbers.field) == ("clip-9", STAMP, "samples")
    as_pcm = decode_waveform(encode_json(samples, 16_000, STAMP, pcm="int16"), MAX)
    assert as_pcm.message_id is None and as_pcm.field == "pcm_base64"
    assert np.abs(as_pcm.frames()[:, 0] - samples).max() <= 1 / 32768


def test_json_timestamp_may_be_unix_seconds() -> None:
    body = {"sample_rate": 8000, "timestamp": STAMP.timestamp(), "samples": [0.1] * 800}
    assert decode_waveform(json.dumps(body).encode(), MAX).timestamp == STAMP


def test_summary_round_trip() -> None:
    values = {"velocity_rms_mm_s": 2.5, "peak_acceleration_g": 0.75, "temperature_c": 41.0}
    summary = decode_summary(encode_summary(values, STAMP, 3))
    assert (summary.values, summary.timestamp, summary.message_id) == (values, STAMP, "3")


def _refused(payload: bytes) -> InputError:
    with pytest.raises(InputError) as caught:
        decode_waveform(payload, MAX)
    return caught.value


def test_bad_header_is_refused() -> None:
    assert _refused(b"\x00\x01garbage").source == "header"
    assert _refused(MAGIC + b"\x01\x01").source == "header"  # shorter than the header


def test_unknown_version_and_dtype_are_refused() -> None:
    good = encode_binary(np.zeros(100), 16_000, STAMP, 1)
    assert _refused(good[:4] + bytes([9]) + good[5:]).source == "version"
    error = _refused(good[:5] + bytes([7]) + good[6:])
    assert error.source == "dtype" and "1 (int16), 2 (float32)" in error.reason


def test_nan_samples_are_refused_in_every_encoding() -> None:
    samples = np.zeros(1000, dtype=np.float32)
    samples[10] = np.nan
    assert _refused(encode_binary(samples, 16_000, STAMP, 1, "float32")).source == "samples"
    body = {"sample_rate": 16_000, "timestamp": STAMP.isoformat(), "samples": [0.0] * 10 + [float("nan")]}
    error = _refused(json.dumps(body).encode())  # Python writes NaN, as many clients do
    assert error.source == "samples" and "NaN" in error.reason
    pcm = base64.b64encode(samples.tobytes()).decode()
    body = {"sample_rate": 16_000, "timestamp": STAMP.isoformat(), "pcm_base64": pcm, "dtype": "float32"}
    assert _refused(json.dumps(body).encode()).source == "pcm_base64"


def test_json_without_sample_rate_names_it() -> None:
    error = _refused(json.dumps({"timestamp": STAMP.isoformat(), "samples": [0.0] * 100}).encode())
    assert error.source == "sample_rate" and "required" in error.reason


def test_other_json_problems_name_their_field() -> None:
    def body(**fields: object) -> bytes:
        return json.dumps({"sample_rate": 16_000, "timestamp": STAMP.isoformat(), **fields}).encode()

    assert _refused(body(samples=[0.0], dtype="int8")).source == "dtype"
    assert _refused(body()).source == "samples"  # neither samples nor pcm_base64
    assert _refused(body(pcm_base64="AAA")).source == "pcm_base64"  # not base64
    assert _refused(body(pcm_base64=base64.b64encode(b"\0\0\0").decode())).source == "pcm_base64"  # half a frame
    naive = json.dumps({"sample_rate": 16_000, "timestamp": "2026-01-05T06:00:00", "samples": [0.0]}).encode()
    assert _refused(naive).source == "timestamp"
    assert _refused(b"{not json").source == "payload"


def test_a_payload_beyond_max_samples_is_refused_before_decoding() -> None:
    with pytest.raises(InputError, match="max_samples"):
        decode_waveform(encode_binary(np.zeros(5000), 16_000, STAMP, 1), 4000)


def test_summary_needs_a_known_finite_scalar() -> None:
    with pytest.raises(InputError) as caught:
        decode_summary(json.dumps({"timestamp": STAMP.isoformat()}).encode())
    assert caught.value.source == "summary"
    with pytest.raises(InputError) as caught:
        decode_summary(json.dumps({"timestamp": STAMP.isoformat(), "rpm": 3}).encode())
    assert caught.value.source == "rpm"
    with pytest.raises(InputError) as caught:
        decode_summary(b'{"timestamp": 1767592800, "temperature_c": NaN}')
    assert caught.value.source == "temperature_c"


def test_topics_parse_and_refuse_bad_names() -> None:
    parsed = topics.parse("vibrasense/plant-1/pump-00/mic/waveform")
    assert (parsed.site, parsed.machine_id, parsed.sensor, parsed.kind) == ("plant-1", "pump-00", "mic", "waveform")
    assert str(parsed) == "vibrasense/plant-1/pump-00/mic/waveform"
    with pytest.raises(InputError) as caught:
        topics.parse("vibrasense/plant-1/pump 00!/mic/waveform")
    assert caught.value.source == "machine_id"
    with pytest.raises(InputError) as caught:
        topics.parse("vibrasense/plant-1/pump-00/waveform")
    assert caught.value.source == "topic"
    assert topics.site_of("vibrasense/plant-1/x y/mic/waveform") == "plant-1"
    assert topics.dead_letter_topic("plant-1") == "vibrasense/plant-1/dead-letter"


def test_header_layout_is_the_documented_one() -> None:
    payload = encode_binary(np.zeros(4, dtype=np.float32), 12_000, STAMP, 2**40 + 5, "float32")
    magic, version, dtype, channels, rate, stamp, message_id = struct.unpack_from("<4sBBHfdQ", payload)
    assert (magic, version, dtype, channels, rate, message_id) == (b"VSNS", 1, 2, 1, 12_000.0, 2**40 + 5)
    assert stamp == STAMP.timestamp() and HEADER.size == 28
