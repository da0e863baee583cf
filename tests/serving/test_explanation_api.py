"""Explanations through the API: every score of a tabular model carries one, an autoencoder's when asked, the score
store keeps it (SQLite and PostgreSQL, tables from before explanations migrated), and
``GET /v1/machines/{id}/explanation`` returns it or says why there is none."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from explained_models import autoencoder_scorer, tabular_scorer
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, inspect, text
from synthetic_machines import RATE, faulty_clip, healthy_clip, wav_bytes

from vibrasense.config import Settings
from vibrasense.inference import Explanation
from vibrasense.inference.explanation import FeatureContribution
from vibrasense.serving.app import create_app
from vibrasense.serving.scores import ScoreRow, ScoreStore


def stored(client: TestClient) -> None:
    client.app.state.service.store.wait_stored()


@pytest.fixture
def tabular_client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, tabular_scorer(settings))) as client:
        yield client


def test_every_tabular_score_is_explained_and_the_explanation_is_stored(tabular_client: TestClient) -> None:
    first = tabular_client.post(
        "/v1/score", json={"sample_rate": RATE, "samples": faulty_clip(3).tolist(), "machine_id": "pump-1"}
    )
    assert first.status_code == 200, first.text
    body = first.json()
    explanation = body["explanation"]
    assert explanation["kind"] == "features" and explanation["method"] == "mahalanobis-decomposition"
    assert explanation["total"] == pytest.approx(body["score"], rel=1e-9) and body["is_anomaly"]
    top = explanation["contributions"][0]
    assert len(explanation["contributions"]) == 8 and not top["normal_low"] <= top["value"] <= top["normal_high"]
    second = tabular_client.post(
        "/v1/score/file",
        files={"file": ("h.wav", wav_bytes(healthy_clip(40)), "audio/wav")},
        data={"machine_id": "pump-1"},
    ).json()
    stored(tabular_client)

    latest = tabular_client.get("/v1/machines/pump-1/explanation")
    assert latest.status_code == 200 and latest.json()["score_id"] == second["score_id"]
    assert latest.json()["explanation"] == second["explanation"]
    asked = tabular_client.get("/v1/machines/pump-1/explanation", params={"score_id": body["score_id"]}).json()
    assert asked["explanation"] == explanation and asked["score"] == body["score"]
    assert asked["model"] == {"name": "explained-tabular", "version": "1"} and asked["is_anomaly"] is True
    assert "explanation" not in tabular_client.get("/v1/machines/pump-1").json()["latest"]  # listings stay small


def test_a_batch_explains_each_recording(tabular_client: TestClient) -> None:
    recordings = [{"sample_rate": RATE, "samples": clip.tolist()} for clip in (healthy_clip(1), faulty_clip(2))]
    results = tabular_client.post("/v1/score/batch", json={"recordings": recordings}).json()["results"]
    assert [r["explanation"]["kind"] for r in results] == ["features", "features"]
    assert all(r["explanation"]["total"] == pytest.approx(r["score"], rel=1e-9) for r in results)


def test_no_explanation_is_a_404_that_says_why(tabular_client: TestClient) -> None:
    unknown = tabular_client.get("/v1/machines/never-seen/explanation")
    assert unknown.status_code == 404 and unknown.json()["field"] == "machine_id"
    assert "never-seen" in unknown.json()["detail"]
    tabular_client.post("/v1/score", json={"sample_rate": RATE, "samples": healthy_clip(1).tolist(), "machine_id": "m"})
    stored(tabular_client)
    missing = tabular_client.get("/v1/machines/m/explanation", params={"score_id": "0123abcd"})
    assert (
        missing.status_code == 404 and missing.json()["field"] == "score_id" and "no score" in missing.json()["detail"]
    )
    bad = tabular_client.get("/v1/machines/m/explanation", params={"score_id": "not an id"})
    assert bad.status_code == 422


def test_a_scorer_that_cannot_explain_stores_none_and_the_404_says_why(client: TestClient) -> None:
    # the serving tests' scorer has no explanations
    plain = client.post("/v1/score", json={"sample_rate": RATE, "samples": healthy_clip(1).tolist(), "machine_id": "f"})
    assert plain.json()["explanation"] is None
    stored(client)
    none = client.get("/v1/machines/f/explanation")
    assert none.status_code == 404 and "an autoencoder only when asked" in none.json()["detail"]
    unexplained = client.get("/v1/machines/f/explanation", params={"score_id": plain.json()["score_id"]})
    assert unexplained.status_code == 404 and "has no explanation" in unexplained.json()["detail"]


def test_an_autoencoder_explains_when_asked_with_its_error_map(settings: Settings) -> None:
    with TestClient(create_app(settings, autoencoder_scorer(settings))) as client:
        upload = {"file": ("f.wav", wav_bytes(faulty_clip(5)), "audio/wav")}
        plain = client.post("/v1/score/file", files=upload, data={"machine_id": "fan-9"}).json()
        upload = {"file": ("f.wav", wav_bytes(faulty_clip(5)), "audio/wav")}
        asked = client.post("/v1/score/file", params={"explain": "true"}, files=upload, data={"machine_id": "fan-9"})
        later = client.post(
            "/v1/score", json={"sample_rate": RATE, "samples": faulty_clip(6).tolist(), "machine_id": "fan-9"}
        )
        stored(client)
        latest = client.get("/v1/machines/fan-9/explanation").json()
    assert plain["explanation"] is None and later.json()["explanation"] is None
    body = asked.json()
    assert body["score"] == pytest.approx(plain["score"], rel=1e-6)
    explanation = body["explanation"]
    assert explanation["kind"] == "spectrogram" and len(explanation["bands"]) == 5
    grid = explanation["error_map"]
    assert len(grid["error"]) == 32 and len(grid["error"][0]) == len(grid["logmel_db"][0]) == 32  # 1 s: 32 frames
    assert latest["score_id"] == body["score_id"] and latest["explanation"] == explanation  # latest explained


def explained_row(machine: str) -> ScoreRow:
    explanation = Explanation(
        kind="features",
        method="robust-z",
        summary="f0 = 9 (normal 0 to 1): 90% of the deviation (sum of robust z²)",
        total=10.0,
        contributions=[
            FeatureContribution(feature="f0", value=9.0, normal_low=0.0, normal_high=1.0, contribution=9.0, share=0.9)
        ],
    )
    return ScoreRow(
        machine, datetime.now(UTC), 3.0, 1.0, True, "m", "1", 2.0, explanation=explanation.model_dump_json()
    )


def test_a_scores_table_from_before_explanations_gets_the_column_and_keeps_its_rows(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "CREATE TABLE scores (id INTEGER PRIMARY KEY AUTOINCREMENT, machine_id VARCHAR(128) NOT NULL, "
                "scored_at DATETIME NOT NULL, score FLOAT NOT NULL, threshold FLOAT NOT NULL, is_anomaly BOOLEAN "
                "NOT NULL, model_name VARCHAR(256) NOT NULL, model_version VARCHAR(64) NOT NULL, "
                "processing_ms FLOAT NOT NULL, score_id VARCHAR(36))"
            )
        )
        connection.execute(
            text("INSERT INTO scores VALUES (1, 'fan-1', '2024-05-01 12:00:00.000000', 0.3, 1, 0, 'm', '1', 2, 'a1')")
        )
    store = ScoreStore(url, tmp_path / "spool.db").start()
    try:
        new = explained_row("fan-1")
        store.write([new])
        assert "explanation" in {c["name"] for c in inspect(engine).get_columns("scores")}
        old = store.explanation("fan-1", "a1")
        assert old is not None and old.explanation is None and old.score == 0.3
        assert store.explanation("fan-1") == new
    finally:
        store.close()
        engine.dispose()


@pytest.mark.postgres
def test_explanations_recorded_by_one_process_are_read_by_another_on_postgres(tmp_path: Path) -> None:
    name = f"vibrasense_explanations_{uuid.uuid4().hex[:8]}"
    admin = create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    gateway, api = ScoreStore(url, tmp_path / "gateway.db").start(), ScoreStore(url, tmp_path / "api.db").start()
    try:
        row = explained_row("press-2")
        gateway.record(row)  # through the gateway's spool
        gateway.wait_stored()
        assert api.explanation("press-2") == row
        assert api.explanation("press-2", row.score_id) == row
    finally:
        gateway.close()
        api.close()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()
