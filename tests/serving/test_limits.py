"""Bounded memory per request: recordings are checked from their header before decoding, one channel is kept,
JSON samples are parsed straight into float32, and what is above serving.max_samples is refused with 413."""

from __future__ import annotations

import base64
import io
import json
import time
import tracemalloc

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient
from synthetic_machines import RATE, BandEnergyScorer, healthy_clip, wav_bytes

from vibrasense.config import Settings
from vibrasense.errors import InputError
from vibrasense.serving.app import create_app
from vibrasense.serving.json_body import INLINE_BYTES, extract_samples
from vibrasense.serving.recordings import RecordingTooLarge, decode_audio
from vibrasense.serving.schemas import PARSED_SAMPLES_KEY, ScoreRequest


def silence(channels: int, seconds: float, rate: int, format: str = "WAV") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, np.zeros((int(seconds * rate), channels), np.int16), rate, format=format, subtype="PCM_16")
    return buffer.getvalue()


def samples_body(count: int, value: str = "0.25") -> bytes:
    return b'{"sample_rate": 16000, "samples": [' + b",".join([value.encode()] * count) + b"]}"


def test_a_small_file_declaring_a_huge_recording_is_refused_from_its_header(
    settings: Settings, scorer: BandEnergyScorer
) -> None:
    settings.serving.max_samples = 1_000_000
    flac = silence(8, 20.0, 48_000, "FLAC")  # 7.7 M samples of silence: a few kB
    assert len(flac) < 200_000
    with TestClient(create_app(settings, scorer)) as client:
        started = time.perf_counter()
        response = client.post("/v1/score/file", files={"file": ("big.flac", flac, "audio/flac")})
    assert time.perf_counter() - started < 2
    assert response.status_code == 413, response.text
    assert response.json()["field"] == "file"
    assert (
        "7,680,000 samples" in response.json()["detail"]
        and "serving.max_samples=1,000,000" in response.json()["detail"]
    )


def test_decoding_keeps_one_channel_a_block_at_a_time(settings: Settings) -> None:
    wav = silence(8, 30.0, RATE)  # 3.84 M samples: 15 MB as float32 on every channel, 1.9 MB on one
    tracemalloc.start()
    try:
        samples, rate = decode_audio(wav, settings, channel=5)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (samples.shape, samples.dtype, rate) == ((480_000,), np.float32, RATE)
    assert peak < 5_000_000, f"{peak / 1e6:.1f} MB traced while decoding"


def test_a_wav_cut_short_is_refused_as_truncated(settings: Settings, scorer: BandEnergyScorer) -> None:
    whole = wav_bytes(healthy_clip(1, seconds=2.0))
    with TestClient(create_app(settings, scorer)) as client:
        response = client.post("/v1/score/file", files={"file": ("cut.wav", whole[: len(whole) // 2], "audio/wav")})
    assert response.status_code == 422
    assert "truncated WAV: the header declares 32000 frames (2.00 s)" in response.json()["detail"]


def test_pcm_above_the_limit_is_refused_before_it_is_decoded(settings: Settings, scorer: BandEnergyScorer) -> None:
    settings.serving.max_samples = 10_000
    pcm = base64.b64encode(np.zeros(20_000, "<i2").tobytes()).decode()
    with TestClient(create_app(settings, scorer)) as client:
        response = client.post("/v1/score", json={"sample_rate": RATE, "pcm_base64": pcm})
    assert response.status_code == 413 and response.json()["field"] == "pcm_base64"
    assert "serving.max_samples=10,000" in response.json()["detail"]


def test_large_json_samples_are_parsed_into_float32_in_bounded_memory(settings: Settings) -> None:
    body = bytearray(samples_body(2_000_000))  # 10 MB: pydantic alone would hold ~160 MB of trees and lists
    tracemalloc.start()
    try:
        envelope, parsed = extract_samples(body, settings.serving.max_samples)
        request = ScoreRequest.model_validate_json(envelope, context={PARSED_SAMPLES_KEY: parsed})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert request.samples.dtype == np.float32 and request.samples.shape == (2_000_000,)
    assert np.all(request.samples == np.float32(0.25))
    assert len(envelope) < 100 and peak < 30_000_000, f"{peak / 1e6:.1f} MB traced"  # the array itself: 8 MB


def test_json_samples_over_the_limit_or_not_numbers_are_refused_naming_the_limit_or_the_element(
    settings: Settings, scorer: BandEnergyScorer
) -> None:
    settings.serving.max_samples, settings.serving.max_upload_mb = 300_000, 20
    count = INLINE_BYTES // 4 + 1000  # long enough to be parsed apart
    headers = {"content-type": "application/json"}
    with TestClient(create_app(settings, scorer)) as client:
        too_many = client.post("/v1/score", content=samples_body(count, "0.0"), headers=headers)
        assert too_many.status_code == 413 and too_many.json()["field"] == "samples"
        assert f"{count:,} samples, above serving.max_samples=300,000" in too_many.json()["detail"]
        settings.serving.max_samples = 10_000_000
        bad = samples_body(count, "0.0").replace(b"0.0,0.0]", b"0.0,null]")
        refused = client.post("/v1/score", content=bad, headers=headers)
        assert refused.status_code == 422 and refused.json()["field"] == "samples"
        assert refused.json()["detail"] == f"element {count - 1} is not a number (got 'null')"
        batch = b'{"recordings": [' + samples_body(count, "0.5") + b"]}"
        scored = client.post("/v1/score/batch", content=batch, headers=headers)
        assert scored.status_code == 200, scored.text
        assert scored.json()["results"][0]["duration_s"] == pytest.approx(count / 16000)


def test_parsed_samples_score_as_pydantic_read_them(settings: Settings, scorer: BandEnergyScorer) -> None:
    clip = np.tile(healthy_clip(3), 25)  # 25 s: above INLINE_BYTES as JSON
    body = json.dumps({"sample_rate": RATE, "samples": clip.tolist(), "machine_id": "fan-1"}).encode()
    assert len(body) > INLINE_BYTES
    settings.serving.max_upload_mb = 20
    with TestClient(create_app(settings, scorer)) as client:
        parsed_apart = client.post("/v1/score", content=body, headers={"content-type": "application/json"})
    assert parsed_apart.status_code == 200, parsed_apart.text
    assert parsed_apart.json()["score"] == pytest.approx(scorer.score(clip, RATE).score, rel=1e-6)


def test_the_scan_names_where_a_body_holds_what_no_field_takes() -> None:
    with pytest.raises(RecordingTooLarge) as huge:
        extract_samples(b'{"recordings": [{"channel": [' + b"0," * 50_000 + b"0]}]}", 1000)
    assert huge.value.source == "recordings[0].channel" and "64 KB" in huge.value.reason
    with pytest.raises(InputError) as structure:
        extract_samples(b'{"recordings": [' + b"{}," * 60_000 + b"{}]}", 1000)
    assert structure.value.source == "body" and "50,000" in structure.value.reason
    envelope, parsed = extract_samples(b'{"machine_id": "[1, 2]", "samples": [1, 2]}', 10)
    assert envelope == b'{"machine_id": "[1, 2]", "samples": [1, 2]}' and parsed == {}  # short: left to pydantic
