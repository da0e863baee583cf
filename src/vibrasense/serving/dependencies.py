"""What the endpoints depend on: the service and its settings, the model, the API key, and the JSON bodies.

The cheap ones (no I/O, no CPU work) are ``async``: FastAPI runs them on the event loop, where a plain ``def``
would cost each request a hop to a worker thread and back per dependency.

JSON scoring bodies are validated by pydantic straight from the bytes (``model_validate_json``), their samples
arrays parsed apart into float32 (:mod:`~vibrasense.serving.json_body`, 4 bytes a sample instead of about 80):
for 10 s of samples that is about 15 ms against about 100 ms for FastAPI's ``json.loads`` then validation. The
OpenAPI still shows their typed schemas: :data:`JSON_BODIES` are added to its components (see
:func:`json_body_schemas`), and each operation's request body refers to its model.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from functools import partial
from typing import Annotated, Any, TypeVar

from anyio import CapacityLimiter, to_thread
from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema

from vibrasense.config import ServingSettings, Settings
from vibrasense.inference import Scorer
from vibrasense.serving.health import PrognosisReader
from vibrasense.serving.json_body import PARSED_SAMPLES_KEY, extract_samples
from vibrasense.serving.online import OnlineFeatures
from vibrasense.serving.problems import Forbidden, Unauthorized, validation_problem
from vibrasense.serving.recordings import UnsupportedFormat
from vibrasense.serving.schemas import BatchRequest, ScoreRequest, serving_json_schema
from vibrasense.serving.service import ScoringService

JSON_BODIES: tuple[type[BaseModel], ...] = (ScoreRequest, BatchRequest)
"""Bodies validated from the raw bytes; their schemas join the OpenAPI components."""
_COMPONENT = "#/components/schemas/{model}"


async def get_service(request: Request) -> ScoringService:
    """The app's scoring service."""
    return request.app.state.service


ServiceDep = Annotated[ScoringService, Depends(get_service)]


async def get_settings(service: ServiceDep) -> Settings:
    """The settings the app was built with."""
    return service.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_scorer(service: ServiceDep) -> Scorer:
    """The model in use, read once for the request; 503 when none is loaded."""
    return service.slot.require()


ScorerDep = Annotated[Scorer, Depends(get_scorer)]


T = TypeVar("T")


class ScoringThreads:
    """The worker threads recordings are scored in, ``count`` of them; a call waits for a free one."""

    def __init__(self, count: int) -> None:
        self.limiter = CapacityLimiter(count)

    async def run(self, call: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """``call(*args, **kwargs)`` in one of the scoring threads."""
        return await to_thread.run_sync(partial(call, *args, **kwargs), limiter=self.limiter)


async def get_scoring_threads(request: Request) -> ScoringThreads:
    """The app's scoring threads (serving.scoring_threads of them)."""
    return request.app.state.scoring_threads


ScoringThreadsDep = Annotated[ScoringThreads, Depends(get_scoring_threads)]


async def get_online_features(request: Request) -> OnlineFeatures:
    """Latest online features of machines (Feast), tolerating a store that is down."""
    return request.app.state.online


OnlineDep = Annotated[OnlineFeatures, Depends(get_online_features)]


async def get_prognoses(request: Request) -> PrognosisReader:
    """The prognosis tables ``vibrasense prognose`` wrote into the work directory."""
    return request.app.state.prognoses


PrognosesDep = Annotated[PrognosisReader, Depends(get_prognoses)]


api_key_header = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    description="Model reload: serving.api_key (VIBRASENSE_SERVING__API_KEY). Scoring, when "
    "serving.scoring_api_keys is set: one of those keys (VIBRASENSE_SERVING__SCORING_API_KEYS).",
)


async def require_api_key(given: Annotated[str | None, Security(api_key_header)], settings: SettingsDep) -> None:
    """403 when no serving.api_key is configured (the endpoint is disabled), 401 when the key is missing or wrong."""
    expected = settings.serving.api_key
    if expected is None or not expected.get_secret_value():
        raise Forbidden("X-API-Key", "model reload is disabled: set serving.api_key (VIBRASENSE_SERVING__API_KEY)")
    if given is None or not secrets.compare_digest(given.encode(), expected.get_secret_value().encode()):
        raise Unauthorized("X-API-Key", "missing or wrong API key; send the serving.api_key in X-API-Key")


async def require_scoring_key(given: Annotated[str | None, Security(api_key_header)], settings: SettingsDep) -> None:
    """401 unless ``X-API-Key`` is one of serving.scoring_api_keys (or serving.api_key); open when none is set."""
    allowed = [key.get_secret_value() for key in settings.serving.scoring_api_keys if key.get_secret_value()]
    if not allowed:
        return
    if settings.serving.api_key is not None and settings.serving.api_key.get_secret_value():
        allowed.append(settings.serving.api_key.get_secret_value())
    if given is None or not any(secrets.compare_digest(given.encode(), key.encode()) for key in allowed):
        raise Unauthorized(
            "X-API-Key", "scoring needs a key: send yours (one of serving.scoring_api_keys) in X-API-Key"
        )


async def json_bytes(request: Request) -> bytearray:
    """The raw body of an ``application/json`` request (415 for another media type)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json" and not kind.endswith("+json"):
        upload = " (uploads go to the /file endpoints as multipart/form-data)" if kind.startswith("multipart/") else ""
        raise UnsupportedFormat(
            "content-type", f"{kind or 'no content type'} is not accepted here; send application/json{upload}"
        )
    body = bytearray()  # grown in place: Request.body() would join the chunks into a second copy and keep both
    async for chunk in request.stream():
        body += chunk
    return body


def _validation_context(body: bytearray, service: ScoringService) -> tuple[bytes | bytearray, dict[str, Any]]:
    """The body with its samples arrays parsed out (:mod:`~vibrasense.serving.json_body`), and the context."""
    envelope, parsed = extract_samples(body, service.settings.serving.max_samples)
    return envelope, {**service.validation_context, PARSED_SAMPLES_KEY: parsed}


def score_request(body: Annotated[bytearray, Depends(json_bytes)], service: ServiceDep) -> ScoreRequest:
    """The validated :class:`ScoreRequest` of the body (in a worker thread: this is CPU work)."""
    envelope, context = _validation_context(body, service)
    try:
        return ScoreRequest.model_validate_json(envelope, context=context)
    except ValidationError as error:
        raise validation_problem(error) from None


def batch_request(body: Annotated[bytearray, Depends(json_bytes)], service: ServiceDep) -> list[ScoreRequest]:
    """The recordings of a :class:`BatchRequest` body; one that breaks the schema refuses the body (422).

    Every rule pydantic checks is in the OpenAPI, so a recording that breaks one is a malformed request, named
    by its field (``recordings[2].sample_rate``); a well-formed recording that cannot be scored (too short,
    undecodable PCM, a column the model cannot compute) is reported in the response's ``errors`` instead.
    """
    envelope, context = _validation_context(body, service)
    try:
        return list(BatchRequest.model_validate_json(envelope, context=context).recordings)
    except ValidationError as error:
        raise validation_problem(error) from None


ScoreRequestBody = Annotated[ScoreRequest, Depends(score_request)]
BatchRequestBody = Annotated[list[ScoreRequest], Depends(batch_request)]


def json_body_openapi(model: type[BaseModel]) -> dict[str, Any]:
    """The ``openapi_extra`` of an operation whose JSON body is ``model``, validated by a dependency."""
    schema = {"$ref": _COMPONENT.format(model=model.__name__)}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def json_body_schemas(serving: ServingSettings) -> dict[str, Any]:
    """OpenAPI component schemas of :data:`JSON_BODIES`, with these settings' sample-rate range."""
    _, definitions = models_json_schema(
        [(model, "validation") for model in JSON_BODIES],
        ref_template=_COMPONENT,
        schema_generator=serving_json_schema(serving),
    )
    return definitions["$defs"]
