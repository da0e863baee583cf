"""Property-based API test: schemathesis generates requests from the OpenAPI spec; none may get a 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance
from synthetic_machines import fitted_scorer

from vibrasense.config import load_settings
from vibrasense.serving.app import create_app

EXAMPLES_PER_OPERATION = 120


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    workdir: Path = tmp_path_factory.mktemp("schemathesis")
    # No minimum duration: generated recordings are short, and the model path must be fuzzed too.
    config = load_settings(None, workdir=workdir, serving={"api_key": "k"}, signals={"min_duration_s": 0})
    application = create_app(config, fitted_scorer(), loader=lambda s, t: fitted_scorer("2"))
    with TestClient(application) as client:  # one scored machine, so machine endpoints have data
        client.post("/v1/score", json={"sample_rate": 1000, "samples": [0.1, -0.2] * 500, "machine_id": "m1"})
        client.get("/readyz")  # the first feature-store lookup imports Feast: seconds, not to be timed below
    yield application
    schemathesis.python.asgi.shutdown_lifespans()


def fuzz(operation: Any, calls: dict[str, int]) -> None:
    """Call one operation with generated requests; raise on a server error or an undocumented response."""

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: schemathesis.Case) -> None:
        response = case.call()
        calls[operation.label] = calls.get(operation.label, 0) + 1
        server_error = response.status_code >= 500 and not (case.path == "/readyz" and response.status_code == 503)
        assert not server_error, f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}"
        # Valid-by-schema bodies can still be refused (too short, NaN...): that check is left out.
        case.validate_response(response, excluded_checks=[positive_data_acceptance])

    check()


def test_no_generated_request_gets_a_server_error(app: FastAPI) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {
        "/v1/score",
        "/v1/score/file",
        "/v1/score/batch",
        "/v1/score/batch/files",
        "/v1/machines/{machine_id}",
    }
    failures: list[str] = []
    calls: dict[str, int] = {}
    for operation in operations:
        try:
            fuzz(operation, calls)
        except Exception as error:
            failures.append(f"{operation.label}: {error}")
    assert not failures, "\n".join(failures)
    assert len(calls) == len(operations), calls
    scores = app.state.service.metrics.scores.collect()[0].samples
    assert sum(s.value for s in scores if s.name.endswith("_total")) >= 5, "the model path was not reached"
    for generated in (
        "POST /v1/score",
        "POST /v1/score/file",
        "POST /v1/score/batch",
        "POST /v1/score/batch/files",
        "GET /v1/machines/{machine_id}",
    ):
        assert calls[generated] >= EXAMPLES_PER_OPERATION // 2, calls
