"""The API against its own OpenAPI: schemathesis runs every check it has (``--checks all``) on every operation.

The run is schemathesis's own engine, as ``st run --checks all --mode all`` drives it (examples, coverage,
fuzzing and stateful phases; positive and negative data), in process against the app and deterministic, with
a bounded number of examples per operation. Every failure fails the test but one kind: a schema-valid
request refused with 422 by a rule the OpenAPI states in words because JSON Schema cannot: the recording's
content (random bytes are no WAV file; PCM must be whole frames of ``channels`` x ``dtype``; a recording
cannot be empty) and a form field given neither once nor once per file. Those refusals are counted, and each
must name its field.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from schemathesis.checks import CHECKS
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events, from_schema
from schemathesis.generation import GenerationMode
from synthetic_machines import fitted_scorer

from vibrasense.config import load_settings
from vibrasense.serving.app import create_app

EXAMPLES_PER_OPERATION = 40
MAX_RESPONSE_S = 10.0
OPERATIONS = 19  # 13, the 5 alarm operations (H-alarms) and the explanation (H-explain)
RECORDING_CONTENT = re.compile(r"^(recordings\[\d+\]\.)?(samples|pcm_base64)$|^files?(\[\d+\])?$")
"""Fields whose content (not form) may be refused: audio bytes, PCM frames, an empty recording."""
ONCE_OR_PER_FILE = "give it once or once per file"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    workdir: Path = tmp_path_factory.mktemp("schemathesis")
    # No minimum duration: generated recordings are short, and the model path must be fuzzed too. Scoring takes
    # a key, as in production, so the authentication checks have something to check.
    config = load_settings(
        None, workdir=workdir, serving={"api_key": "k", "scoring_api_keys": ["k"]}, signals={"min_duration_s": 0}
    )
    application = create_app(config, fitted_scorer(), loader=lambda s, t: fitted_scorer("2"))
    with TestClient(application) as client:  # one scored machine, so machine endpoints have data
        seed = {"sample_rate": 1000, "samples": [0.1, -0.2] * 500, "machine_id": "m1"}
        assert client.post("/v1/score", json=seed, headers={"X-API-Key": "k"}).status_code == 200
        client.get("/readyz")  # the first feature-store lookup imports Feast: seconds, not to be timed below
    yield application
    schemathesis.python.asgi.shutdown_lifespans()


@dataclass
class Run:
    """What one engine run did and found."""

    operations: set[str] = field(default_factory=set)
    checks: set[str] = field(default_factory=set)
    cases: int = 0
    failures: dict[tuple[str, str, int, str], str] = field(default_factory=dict)
    beyond_the_schema: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def stated_beyond_the_schema(check: str, status: int, problem: dict | None) -> bool:
    """A schema-valid request refused by a rule the OpenAPI can only state in words (see the module)."""
    if check != "positive_data_acceptance" or status not in (415, 422) or not problem:
        return False
    named = problem.get("field") or ""
    if RECORDING_CONTENT.match(named):  # 415: not audio at all; 422: audio, or PCM, that cannot be used
        return True
    return status == 422 and ONCE_OR_PER_FILE in problem.get("detail", "")


def run_every_check(app: FastAPI) -> Run:
    config = SchemathesisConfig()
    config.projects.override.update(headers={"X-API-Key": "k"}, workers=1, continue_on_failure=True)
    config.projects.override.checks.update(included_check_names=["all"], max_response_time=MAX_RESPONSE_S)
    config.projects.override.generation.update(
        modes=list(GenerationMode), max_examples=EXAMPLES_PER_OPERATION, deterministic=True
    )
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config)
    run = Run()
    for event in from_schema(schema).execute():
        if isinstance(event, events.NonFatalError | events.FatalError):
            run.errors.append(str(getattr(event, "info", None) or getattr(event, "exception", event)))
        if not isinstance(event, events.ScenarioFinished) or event.label is None:
            continue
        run.operations.add(event.label)
        run.cases += len(event.recorder.cases)
        for case_id, nodes in event.recorder.checks.items():
            interaction = event.recorder.interactions.get(case_id)
            response = interaction.response if interaction is not None else None
            for node in nodes:
                run.checks.add(node.name)
                if node.status != Status.FAILURE or node.failure_info is None:
                    continue
                status = response.status_code if response is not None else 0
                problem = _json(response)
                if stated_beyond_the_schema(node.name, status, problem):
                    key = f"{event.label} {problem['field']}"
                    run.beyond_the_schema[key] = run.beyond_the_schema.get(key, 0) + 1
                    continue
                failure = node.failure_info.failure
                key = (event.label, node.name, status, failure.title)
                body = response.content[:200] if response is not None else b""
                run.failures[key] = f"{failure.message[:300]}\n  got: {body!r}\n  {node.failure_info.code_sample[:500]}"
    return run


def _json(response: object) -> dict | None:
    try:
        found = response.json()  # type: ignore[attr-defined]
    except Exception:
        return None
    return found if isinstance(found, dict) else None


def test_the_api_passes_every_schemathesis_check_on_every_operation(app: FastAPI) -> None:
    run = run_every_check(app)
    print(
        f"\nschemathesis: {len(run.operations)} operations, {len(run.checks)} checks, {run.cases} test cases; "
        f"refused by rules beyond the schema: {run.beyond_the_schema}"
    )
    assert not run.errors, run.errors
    failures = "\n".join(
        f"{label} [{check}] -> {status} {title}: {why}"
        for (label, check, status, title), why in sorted(run.failures.items())
    )
    assert not run.failures, failures
    assert len(run.operations) == OPERATIONS, sorted(run.operations)
    registered = {check.__name__ for check in CHECKS.get_all() if not isinstance(check, type)}
    assert run.checks >= registered - {"object_level_authorization"}, registered - run.checks
    assert run.cases >= OPERATIONS * EXAMPLES_PER_OPERATION
    scores = app.state.service.metrics.scores.collect()[0].samples
    assert sum(s.value for s in scores if s.name.endswith("_total")) >= 20, "the model path was not reached"
