"""The scoring API end to end in process: scoring, machines, readiness, metrics, OpenAPI and refused input."""

from __future__ import annotations

import base64
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from synthetic_machines import RATE, BandEnergyScorer, faulty_clip, healthy_clip, wav_bytes

from vibrasense.config import Settings
from vibrasense.serving.app import create_app
from vibrasense.serving.schemas import MACHINE_ID_PATTERN, ScoreRequest
from vibrasense.serving.scores import ScoreStore
from vibrasense.serving.service import SCORE_SPOOL_FILE
from vibrasense.signals.bearings import PRESETS

UNREACHABLE_PG = "postgresql://postgres@127.0.0.1:1/nothing"


def upload(client: TestClient, samples: np.ndarray, machine: str = "fan-1", **fields: str):
    return client.post(
        "/v1/score/file",
        files={"file": ("clip.wav", wav_bytes(samples), "audio/wav")},
        data={"machine_id": machine, **fields},
    )


def flush(client: TestClient) -> None:
    client.app.state.service.store.flush()


def test_wav_upload_is_scored_with_the_model_verdict(client: TestClient, scorer: BandEnergyScorer) -> None:
    healthy, faulty = upload(client, healthy_clip(50)), upload(client, faulty_clip(51), "fan-2")
    assert healthy.status_code == 200 and faulty.status_code == 200
    body = healthy.json()
    expected, threshold, _ = scorer.score(healthy_clip(50), RATE)[:3]
    assert body["score"] == pytest.approx(expected, rel=1e-3)  # 16-bit WAV quantisation only
    assert body["threshold"] == pytest.approx(threshold) and body["is_anomaly"] is False
    assert body["model"] == {"name": "band-energy-test", "version": "1"}
    assert body["machine_id"] == "fan-1" and body["duration_s"] == 1.0 and body["sample_rate"] == RATE
    assert 0 < body["processing_ms"] < 1000
    assert faulty.json()["is_anomaly"] is True and faulty.json()["score"] > 10 * threshold


def test_json_samples_and_base64_pcm_give_the_same_score(client: TestClient) -> None:
    clip = healthy_clip(60)
    as_json = client.post("/v1/score", json={"sample_rate": RATE, "samples": clip.tolist(), "machine_id": "m"})
    pcm = base64.b64encode(clip.astype("<f4").tobytes()).decode()
    as_pcm = client.post(
        "/v1/score", json={"sample_rate": RATE, "pcm_base64": pcm, "dtype": "float32", "machine_id": "m"}
    )
    assert as_json.status_code == 200 and as_pcm.status_code == 200
    assert as_json.json()["score"] == pytest.approx(as_pcm.json()["score"], rel=1e-9)


def test_batch_scores_the_good_recordings_and_reports_the_bad(client: TestClient) -> None:
    odd_pcm = base64.b64encode(b"\x00\x01\x02").decode()  # well-formed base64, not whole int16 frames
    recordings = [
        {"sample_rate": RATE, "samples": healthy_clip(1).tolist(), "machine_id": "a"},
        {"sample_rate": RATE, "samples": [], "machine_id": "b"},
        {"sample_rate": RATE, "samples": faulty_clip(2).tolist(), "machine_id": "c"},
        {"sample_rate": RATE, "pcm_base64": odd_pcm},
    ]
    response = client.post("/v1/score/batch", json={"recordings": recordings})
    assert response.status_code == 200
    body = response.json()
    assert [(r["machine_id"], r["is_anomaly"]) for r in body["results"]] == [("a", False), ("c", True)]
    assert [(e["index"], e["field"]) for e in body["errors"]] == [
        (1, "recordings[1].samples"),
        (3, "recordings[3].pcm_base64"),
    ]


def test_batch_that_breaks_the_schema_is_refused_whole_naming_the_field(client: TestClient) -> None:
    good = {"sample_rate": RATE, "samples": healthy_clip(1).tolist()}
    for body, field in (
        ({"recordings": []}, "recordings"),
        ({"recordings": [good], "colour": 1}, "colour"),
        ({"recordings": [good, 7]}, "recordings[1]"),
        ({"recordings": [good, {"sample_rate": 5, "samples": [0.0] * 100}]}, "recordings[1].sample_rate"),
        ({"recordings": [good, {**good, "channels": "2"}]}, "recordings[1].channels"),
        ({"recordings": [{**good, "pcm_base64": "AAAA"}]}, "recordings[0].samples"),
    ):
        response = client.post("/v1/score/batch", json=body)
        assert response.status_code == 422 and response.json()["field"] == field, response.text


def test_multipart_batch_with_one_machine_id_per_file(client: TestClient) -> None:
    files = [
        ("files", ("a.wav", wav_bytes(healthy_clip(3)), "audio/wav")),
        ("files", ("b.wav", b"garbage" * 20, "audio/wav")),
        ("files", ("c.wav", wav_bytes(faulty_clip(4)), "audio/wav")),
    ]
    response = client.post("/v1/score/batch/files", files=files, data={"machine_id": ["x", "y", "z"]})
    assert response.status_code == 200
    body = response.json()
    assert [(r["machine_id"], r["is_anomaly"]) for r in body["results"]] == [("x", False), ("z", True)]
    assert body["errors"][0]["index"] == 1 and body["errors"][0]["field"] == "files[1]"
    shared = client.post("/v1/score/batch/files", files=files[::2], data={"machine_id": "line-1"})
    assert [r["machine_id"] for r in shared.json()["results"]] == ["line-1", "line-1"]
    miscounted = client.post("/v1/score/batch/files", files=files, data={"machine_id": ["x", "y"]})
    assert miscounted.status_code == 422 and miscounted.json()["field"] == "machine_id"
    assert "once per file" in miscounted.json()["detail"]


def test_machines_list_and_detail_show_the_latest_scores(client: TestClient) -> None:
    for seed in range(3):
        upload(client, healthy_clip(seed), "fan-1")
    upload(client, faulty_clip(9), "fan-1")
    upload(client, healthy_clip(5), "pump-7")
    flush(client)
    machines = {m["machine_id"]: m for m in client.get("/v1/machines").json()["machines"]}
    # one anomalous clip is no alarm: the trigger delay needs 2 of the last 3 above a level
    assert machines["fan-1"]["status"] == "ok" and machines["fan-1"]["scores"] == 4
    assert machines["fan-1"]["anomalies"] == 1 and machines["pump-7"]["status"] == "ok"
    assert client.get("/v1/dashboard").json()["alarms"] == []
    upload(client, faulty_clip(10), "fan-1")
    flush(client)
    machines = {m["machine_id"]: m for m in client.get("/v1/machines").json()["machines"]}
    assert machines["fan-1"]["status"] == "alarm" and machines["fan-1"]["sensors"]["default"]["state"] == "alarm"
    detail = client.get("/v1/machines/fan-1", params={"history": 2}).json()
    assert detail["status"] == "alarm" and len(detail["history"]) == 2
    assert [row["state"] for row in detail["history"]] == ["ok", "alarm"]
    assert detail["history"][-1]["is_anomaly"] is True and detail["latest"] == detail["history"][-1]
    assert [a["condition"] for a in detail["active_alarms"]] == ["score"]
    assert detail["features"] is None and detail["features_status"] != "ok"
    dashboard = client.get("/v1/dashboard").json()
    assert [m["machine_id"] for m in dashboard["machines"]] == ["fan-1", "pump-7"]
    assert len(dashboard["machines"][0]["history"]) == 5
    assert [(a["machine_id"], a["status"], a["severity"]) for a in dashboard["alarms"]] == [
        ("fan-1", "active", "alarm")
    ]


def test_unknown_machine_is_404_naming_the_field(client: TestClient) -> None:
    response = client.get("/v1/machines/never-seen")
    assert response.status_code == 404
    assert response.json()["field"] == "machine_id" and "never-seen" in response.json()["detail"]


WAV = wav_bytes(healthy_clip(0))


@pytest.mark.parametrize(
    ("path", "kwargs", "status", "field"),
    [
        (
            "/v1/score",
            {"content": b"x" * (2 * 1024 * 1024 + 1), "headers": {"content-type": "application/json"}},
            413,
            "body",
        ),
        ("/v1/score/file", {"files": {"file": ("a.wav", b"x" * (2 * 1024 * 1024 + 1), "audio/wav")}}, 413, "body"),
        ("/v1/score", {"content": b"hello", "headers": {"content-type": "text/plain"}}, 415, "content-type"),
        ("/v1/score", {"files": {"file": ("a.wav", WAV, "audio/wav")}}, 415, "content-type"),
        ("/v1/score/file", {"files": {"file": ("a.wav", b"RIFF....WAVEfmt garbage", "audio/wav")}}, 415, "file"),
        ("/v1/score/file", {"files": {"file": ("a.wav", b"", "audio/wav")}}, 422, "file"),
        ("/v1/score/file", {"files": {"other": ("a.wav", b"abc", "audio/wav")}}, 422, "file"),
        ("/v1/score/file", {"data": {"file": "not a file"}}, 422, "file"),
        ("/v1/score/file", {"files": {"file": ("a.wav", WAV, "audio/wav")}, "data": {"channel": "64"}}, 422, "channel"),
        (
            "/v1/score/file",
            {"files": {"file": ("a.wav", WAV, "audio/wav")}, "data": {"bearing": "skf"}},
            422,
            "bearing",
        ),
        ("/v1/score/file", {"files": {"file": ("a.wav", WAV, "audio/wav")}, "data": {"colour": "red"}}, 422, "colour"),
        ("/v1/score", {"json": {"sample_rate": RATE, "samples": []}}, 422, "samples"),
        ("/v1/score", {"json": {"sample_rate": RATE}}, 422, "samples"),
        ("/v1/score", {"json": {"sample_rate": 400, "samples": [0.1] * 400}}, 422, "sample_rate"),
        ("/v1/score", {"json": {"sample_rate": 1e9, "samples": [0.1] * 400}}, 422, "sample_rate"),
        ("/v1/score", {"json": {"sample_rate": RATE, "samples": [0.1] * 100}}, 422, "samples"),
        (
            "/v1/score",
            {
                "content": b'{"sample_rate": 16000, "samples": [NaN, 1, 2]}',
                "headers": {"content-type": "application/json"},
            },
            422,
            "samples",
        ),
        ("/v1/score", {"content": b"{not json", "headers": {"content-type": "application/json"}}, 422, "body"),
        ("/v1/score", {"json": {"sample_rate": RATE, "samples": [1e300] * 2000}}, 422, "samples"),
        ("/v1/score", {"json": {"sample_rate": RATE, "pcm_base64": "!!", "dtype": "int16"}}, 422, "pcm_base64"),
        (
            "/v1/score",
            {"json": {"sample_rate": RATE, "samples": [0.1] * 2000, "machine_id": "../x"}},
            422,
            "machine_id",
        ),
        ("/v1/score", {"json": {"sample_rate": RATE, "samples": [0.1] * 2000, "bearing": "skf"}}, 422, "bearing"),
        ("/v1/score", {"json": {"sample_rate": RATE, "samples": [0.1] * 2000, "shaft_hz": 0}}, 422, "shaft_hz"),
        ("/v1/score", {"json": {"sample_rate": RATE, "samples": [0.1] * 2000, "colour": 1}}, 422, "colour"),
    ],
)
def test_bad_input_is_a_4xx_problem_naming_the_field(
    client: TestClient, path: str, kwargs: dict, status: int, field: str
) -> None:
    response = client.post(path, **kwargs)
    assert response.status_code == status, response.text
    problem = response.json()
    assert problem["field"] == field and problem["detail"] and problem["error"], problem


def test_body_limit_names_the_setting_for_declared_and_streamed_bodies(client: TestClient) -> None:
    declared = client.post("/v1/score", content=b"x" * (3 * 1024 * 1024), headers={"content-type": "application/json"})

    def chunks():
        for _ in range(40):
            yield b"x" * 65536

    streamed = client.post("/v1/score", content=chunks(), headers={"content-type": "application/json"})
    for response in (declared, streamed):
        assert response.status_code == 413 and "serving.max_upload_mb=2" in response.json()["detail"]
    assert "content-length" not in {name.lower() for name in streamed.request.headers}


def test_a_machine_id_with_a_trailing_newline_is_refused_everywhere(client: TestClient) -> None:
    as_json = client.post(
        "/v1/score", json={"sample_rate": RATE, "samples": healthy_clip(1).tolist(), "machine_id": "abc\n"}
    )
    as_form = upload(client, healthy_clip(1), "abc\n")
    in_batch = client.post(
        "/v1/score/batch/files", files=[("files", ("a.wav", WAV, "audio/wav"))], data={"machine_id": "abc\n"}
    )
    for response in (as_json, as_form, in_batch):
        assert response.status_code == 422 and response.json()["field"] in ("machine_id", "machine_id[0]")
    assert client.get("/v1/machines/abc%0A").status_code == 422
    assert upload(client, healthy_clip(1), "abc").status_code == 200


def test_nan_samples_in_a_wav_are_refused(client: TestClient) -> None:
    clip = healthy_clip(1)
    clip[100] = np.nan
    response = client.post("/v1/score/file", files={"file": ("a.wav", wav_bytes(clip, subtype="FLOAT"), "audio/wav")})
    assert response.status_code == 422 and "NaN" in response.json()["detail"]


def test_too_long_recording_is_refused_before_decoding(settings: Settings, scorer: BandEnergyScorer) -> None:
    settings.serving.max_duration_s = 0.5
    with TestClient(create_app(settings, scorer)) as client:
        response = upload(client, healthy_clip(1))
    assert response.status_code == 422 and "max_duration_s" in response.json()["detail"]


def test_health_readiness_and_metrics(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    upload(client, healthy_clip(1), "fan-1")
    upload(client, faulty_clip(1), "fan-1")
    client.post("/v1/score", json={"sample_rate": RATE, "samples": []})
    client.get("/v1/machines/no-such")
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["score_store"] == "ok"
    assert ready.json()["model"] == {"name": "band-energy-test", "version": "1"}
    # No Feast repository in this work directory: degraded, but scoring works (above).
    assert ready.json()["status"] == "degraded" and ready.json()["feature_store"].startswith("unavailable")
    text = client.get("/metrics").text
    assert 'vibrasense_http_requests_total{endpoint="/v1/score/file",method="POST",status="200"} 2.0' in text
    assert 'vibrasense_http_requests_total{endpoint="/v1/score",method="POST",status="422"} 1.0' in text
    assert 'endpoint="/v1/machines/{machine_id}",method="GET",status="404"' in text
    assert 'vibrasense_anomalies_total{machine_id="fan-1"} 1.0' in text
    assert 'vibrasense_scores_total{machine_id="fan-1"} 2.0' in text
    assert 'vibrasense_model_info{name="band-energy-test",version="1"} 1.0' in text
    assert 'vibrasense_http_request_duration_seconds_count{endpoint="/v1/score/file",method="POST"} 2.0' in text
    assert 'vibrasense_rejected_recordings_total{field="samples"} 1.0' in text


def test_scoring_still_works_when_the_score_store_is_down(settings: Settings, scorer: BandEnergyScorer) -> None:
    settings.serving.score_store_url = UNREACHABLE_PG
    with TestClient(create_app(settings, scorer)) as client:
        idle = client.get("/readyz").json()
        scored = upload(client, faulty_clip(1))
        client.app.state.service.store.flush()
        ready = client.get("/readyz").json()
        machines = client.get("/v1/machines")
        metrics = client.get("/metrics").text
    assert scored.status_code == 200 and scored.json()["is_anomaly"] is True
    assert idle["status"] == "degraded" and idle["score_store"].startswith("unavailable: score store postgresql")
    assert ready["status"] == "degraded" and ready["score_store"].startswith("degraded: 1 score spooled (")
    assert machines.status_code == 503 and "score store" in machines.json()["detail"]
    assert "vibrasense_score_store_dropped_total 0.0" in metrics
    assert "vibrasense_score_store_spooled 1.0" in metrics and "vibrasense_score_store_degraded 1.0" in metrics
    # The answered score waits in the spool of the work directory for the store to come back.
    spool = sqlite3.connect(settings.workdir / SCORE_SPOOL_FILE)
    (spooled,) = spool.execute("SELECT row FROM spool").fetchone()
    spool.close()
    assert json.loads(spooled)["score_id"] == scored.json()["score_id"]


def test_scores_are_recorded_in_the_configured_store(settings: Settings, scorer: BandEnergyScorer) -> None:
    with TestClient(create_app(settings, scorer)) as client:
        scored = upload(client, faulty_clip(1), "fan-9")
    reopened = ScoreStore(settings.score_store_url, settings.workdir / SCORE_SPOOL_FILE)
    rows = reopened.history("fan-9")
    reopened.close()
    assert len(rows) == 1 and rows[0].is_anomaly and rows[0].model_version == "1"
    assert rows[0].score_id == scored.json()["score_id"]


def test_dashboard_page_and_assets_are_served_without_external_links(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    script = client.get("/static/dashboard.js")
    assert script.status_code == 200 and "/v1/dashboard" in script.text
    for text in (page.text, script.text, client.get("/static/dashboard.css").text):
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "") and "https://" not in text


def test_openapi_has_the_typed_request_bodies(settings: Settings, scorer: BandEnergyScorer) -> None:
    settings.serving.max_sample_rate = 48_000
    with TestClient(create_app(settings, scorer)) as client:
        spec = client.get("/openapi.json").json()
        assert client.get("/docs").status_code == 200
    schemas = spec["components"]["schemas"]
    bodies = {
        ("/v1/score", "application/json"): "ScoreRequest",
        ("/v1/score/batch", "application/json"): "BatchRequest",
        ("/v1/score/file", "multipart/form-data"): "FileForm",
        ("/v1/score/batch/files", "multipart/form-data"): "FilesForm",
    }
    for (path, media_type), model in bodies.items():
        content = spec["paths"][path]["post"]["requestBody"]["content"]
        assert content == {media_type: {"schema": {"$ref": f"#/components/schemas/{model}"}}}, path
    # Generated from the models: every field, with the rules of the schemas' types and of these settings.
    request = schemas["ScoreRequest"]
    assert set(request["properties"]) == set(ScoreRequest.model_fields)
    assert request["properties"]["sample_rate"]["minimum"] == settings.serving.min_sample_rate
    assert request["properties"]["sample_rate"]["maximum"] == 48_000
    assert schemas["BatchRequest"]["properties"]["recordings"]["items"] == {"$ref": "#/components/schemas/ScoreRequest"}
    machine_patterns = [
        json.dumps(request["properties"]["machine_id"]),
        json.dumps(schemas["FileForm"]["properties"]["machine_id"]),
        json.dumps(schemas["FilesForm"]["properties"]["machine_id"]),
        json.dumps(spec["paths"]["/v1/machines/{machine_id}"]["get"]["parameters"][0]["schema"]),
    ]
    assert all(json.dumps(MACHINE_ID_PATTERN)[1:-1] in text for text in machine_patterns)
    assert set(schemas["FileForm"]["properties"]["bearing"]["enum"]) == set(PRESETS)
    # Multipart has no null; a per-file field is one value (for every file) or one per file.
    assert "null" not in json.dumps(schemas["FileForm"]) + json.dumps(schemas["FilesForm"])
    channel = schemas["FilesForm"]["properties"]["channel"]["anyOf"]
    assert [choice["type"] for choice in channel] == ["array", "integer"]
    # Exactly one of samples or pcm_base64, as the validator says.
    assert [sorted(choice["required"]) for choice in request["oneOf"]] == [["samples"], ["pcm_base64"]]
    assert not [name for name in schemas if name.startswith("Body_")]
    api_key = spec["components"]["securitySchemes"]["APIKeyHeader"]
    assert (api_key["type"], api_key["in"], api_key["name"]) == ("apiKey", "header", "X-API-Key")
    assert spec["paths"]["/v1/models/reload"]["post"]["security"] == [{"APIKeyHeader": []}]
    for operation in (op for methods in spec["paths"].values() for op in methods.values()):
        assert operation["responses"]["422"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Problem"
        }
    json.dumps(spec)


def test_bearing_request_carries_a_diagnosis_section(client: TestClient) -> None:
    response = upload(client, healthy_clip(1), "bearing-1", bearing="cwru-6205-de", shaft_hz="29.95")
    assert response.status_code == 200
    diagnosis = response.json()["diagnosis"]
    assert isinstance(diagnosis, dict) and "available" in diagnosis
    if not diagnosis["available"]:
        assert "vibrasense.prognostics" in diagnosis["reason"]
    bad = upload(client, healthy_clip(1), "bearing-1", shaft_hz="fast")
    assert bad.status_code == 422 and bad.json()["field"] == "shaft_hz"


class ChannelScorer(BandEnergyScorer):
    """The test detector, trained (it says) on channel 1 of multi-channel recordings."""

    channel = 1


def test_multichannel_upload_is_scored_on_the_asked_channel_else_the_models(settings: Settings) -> None:
    scorer = ChannelScorer().fit([healthy_clip(seed) for seed in range(8)], RATE)
    healthy, faulty = healthy_clip(30), faulty_clip(30)
    stereo = wav_bytes(np.stack([faulty, healthy], axis=1))
    with TestClient(create_app(settings, scorer)) as client:

        def send(data: bytes, **fields: str):
            return client.post("/v1/score/file", files={"file": ("a.wav", data, "audio/wav")}, data=fields)

        model_channel, asked = send(stereo), send(stereo, channel="0")
        mono = send(wav_bytes(faulty))
        too_few = send(wav_bytes(np.stack([healthy, healthy, healthy], axis=1)), channel="3")
        pcm = base64.b64encode(np.stack([faulty, healthy], axis=1).astype("<f4").tobytes()).decode()
        as_pcm = client.post(
            "/v1/score", json={"sample_rate": RATE, "pcm_base64": pcm, "dtype": "float32", "channels": 2}
        )
    assert model_channel.json()["is_anomaly"] is False and as_pcm.json()["is_anomaly"] is False
    assert asked.json()["is_anomaly"] is True and mono.json()["is_anomaly"] is True  # a mono file is its channel
    assert too_few.status_code == 422 and too_few.json()["field"] == "channel"
    assert "3 channels" in too_few.json()["detail"]


def test_a_multichannel_file_without_the_models_channel_is_refused(settings: Settings) -> None:
    scorer = ChannelScorer().fit([healthy_clip(seed) for seed in range(8)], RATE)
    scorer.channel = 5
    stereo = wav_bytes(np.stack([healthy_clip(1), healthy_clip(2)], axis=1))
    with TestClient(create_app(settings, scorer)) as client:
        response = client.post("/v1/score/file", files={"file": ("a.wav", stereo, "audio/wav")})
    assert response.status_code == 422 and response.json()["field"] == "channel"
    assert "the model reads channel 5" in response.json()["detail"]


def test_the_native_thread_pools_are_limited_once_at_start_up(tmp_path: Path) -> None:
    """In a fresh process (this one loaded libraries after its first limit), with a model loaded at start-up:
    BLAS pools on one thread, and torch on one thread in the threads that score.

    OpenMP's own limit is per calling thread, so it is not checked here.
    """
    code = f"""
import sys, threading
sys.path.insert(0, {str(Path(__file__).parent)!r})
from fastapi.testclient import TestClient
from synthetic_machines import healthy_clip, wav_bytes
from test_bearing_model import bearing_scorer
from threadpoolctl import threadpool_info
from vibrasense.config import load_settings
from vibrasense.serving.app import create_app
settings = load_settings(None, workdir={str(tmp_path)!r})
with TestClient(create_app(settings, loader=lambda s, target: bearing_scorer(s))) as client:
    client.post("/v1/score/file", files={{"file": ("a.wav", wav_bytes(healthy_clip(1)), "audio/wav")}})
    import torch  # imported by the detectors' package when the model was loaded
    worker = []
    thread = threading.Thread(target=lambda: worker.append(torch.get_num_threads()))
    thread.start()
    thread.join()
blas = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
print(len(blas), sorted(set(blas)), worker[0])
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    pools, threads, torch_threads = result.stdout.strip().split(maxsplit=2)
    assert int(pools) >= 1 and threads == "[1]" and torch_threads == "1", result.stdout
