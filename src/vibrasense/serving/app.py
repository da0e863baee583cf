"""The FastAPI scoring service: score recordings, list machines, reload the model, serve the dashboard.

``create_app(settings)`` loads the champion from the registry at start-up; tests and benchmarks may pass
a ready ``scorer``. The hot path (``POST /v1/score``) reads the body on the event loop, then decodes and
scores in a worker thread, and hands the verdict to the score store's background writer.
"""

from __future__ import annotations

import logging
import secrets
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import resources
from typing import Annotated

from fastapi import FastAPI, Header, Path, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from vibrasense import __version__
from vibrasense.config import Settings
from vibrasense.errors import ConfigError, InputError, ModelError, StoreError, VibrasenseError
from vibrasense.monitoring.metrics import ServingMetrics
from vibrasense.serving import openapi
from vibrasense.serving.diagnosis import diagnose_bearing
from vibrasense.serving.health import PrognosisReader
from vibrasense.serving.instrumentation import MetricsMiddleware
from vibrasense.serving.model import ModelSlot, Scorer, ScorerLoader, load_registered_scorer, warm_up
from vibrasense.serving.online import FeatureClient, OnlineFeatures
from vibrasense.serving.requests import (
    MACHINE_ID_PATTERN,
    Decoder,
    Recording,
    batch_decoders,
    read_body,
    single_decoder,
)
from vibrasense.serving.schemas import (
    MAX_BATCH,
    BatchItemError,
    BatchResponse,
    DashboardMachine,
    DashboardResponse,
    MachineDetail,
    MachineHealth,
    MachinesResponse,
    MachineSummary,
    ModelInfo,
    Problem,
    Readiness,
    ReloadRequest,
    ReloadResponse,
    ScoreRecord,
    ScoreResponse,
)
from vibrasense.serving.scores import ScoreRow, ScoreStore

log = logging.getLogger(__name__)

MachineId = Annotated[str, Path(pattern=MACHINE_ID_PATTERN, description="Machine id.")]


class ModelUnavailable(ModelError):
    """No model is loaded yet: the service cannot score (503)."""

    http_status = 503


class UnknownMachine(InputError):
    """A machine the service has never scored and the feature store does not know (404)."""

    http_status = 404


class NoPrognosis(InputError):
    """No prognosis table names the machine: ``vibrasense prognose`` has not been run for it (404)."""

    http_status = 404


@dataclass
class Service:
    """Everything the endpoints share."""

    settings: Settings
    slot: ModelSlot
    store: ScoreStore
    online: OnlineFeatures
    metrics: ServingMetrics
    loader: ScorerLoader
    prognoses: PrognosisReader
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))


def create_app(
    settings: Settings,
    scorer: Scorer | None = None,
    *,
    score_store: ScoreStore | None = None,
    feature_client: FeatureClient | None = None,
    loader: ScorerLoader = load_registered_scorer,
    metrics: ServingMetrics | None = None,
) -> FastAPI:
    """The scoring service; loads (``scorer is None``) and warms the model when it starts."""
    metrics = metrics or ServingMetrics()
    store = score_store or ScoreStore(settings.score_store_url, on_drop=metrics.score_store_dropped.inc)
    metrics.score_store_queue.set_function(store.pending)
    service = Service(
        settings=settings,
        slot=ModelSlot(scorer),
        store=store,
        online=OnlineFeatures(settings, feature_client),
        metrics=metrics,
        loader=loader,
        prognoses=PrognosisReader(settings.workdir / "prognostics"),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(_start, service)
        try:
            yield
        finally:
            await run_in_threadpool(service.store.close)

    app = FastAPI(
        title="vibrasense scoring service",
        version=__version__,
        description="Scores machine recordings for anomalies with the registered champion model.",
        lifespan=lifespan,
        responses={
            400: {"model": Problem},
            404: {"model": Problem},
            413: {"model": Problem},
            415: {"model": Problem},
            422: {"model": Problem},
            503: {"model": Problem},
        },
    )
    app.state.service = service
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_exception_handler(VibrasenseError, _problem)
    _add_routes(app, service)
    static = resources.files("vibrasense.serving") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    return app


def _start(service: Service) -> None:
    """Load (if needed) and warm the model, start the score writer, keep torch single-threaded."""
    if service.slot.scorer is None:
        service.slot.reload(lambda: service.loader(service.settings, None), _warm_rate(service.settings))
    else:
        warm_up(service.slot.require(), _warm_rate(service.settings))
    _single_threaded_torch()
    scorer = service.slot.require()
    service.metrics.set_model(scorer.name, str(scorer.version))
    service.metrics.model_reloads.labels("startup").inc()
    service.store.start()


def _single_threaded_torch() -> None:
    """Requests already run in parallel worker threads; torch's intra-op threads would fight over cores."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != 1:
        torch.set_num_threads(1)


def _warm_rate(settings: Settings) -> float:
    """Warm-up recordings use the rate audio is featurised at, the one the model sees most."""
    return float(settings.signals.sample_rate)


def _problem(request: Request, error: Exception) -> JSONResponse:
    """Every vibrasense error becomes a 4xx (503 for a missing model or a store that is down)."""
    status = getattr(error, "http_status", None)
    if status is None:
        if isinstance(error, InputError | ModelError):
            status = 422
        elif isinstance(error, ConfigError):
            status = 400
        elif isinstance(error, StoreError):
            status = 503
        else:
            status = 400
    field_name = error.source if isinstance(error, InputError) else None
    detail = error.reason if isinstance(error, InputError) else str(error)
    service: Service = request.app.state.service
    if field_name is not None:
        service.metrics.rejected.labels(field_name.split(".")[-1].split("[")[0]).inc()
    body = Problem(error=type(error).__name__, field=field_name, detail=detail)
    return JSONResponse(body.model_dump(), status_code=status)


def _model_info(scorer: Scorer | None) -> ModelInfo | None:
    return None if scorer is None else ModelInfo(name=scorer.name, version=str(scorer.version))


def _score(service: Service, decode: Decoder, started: float) -> ScoreResponse:
    """Decode, check and score one recording, then queue it for the score store (worker thread)."""
    recording = decode()
    scorer = service.slot.scorer
    if scorer is None:
        raise ModelUnavailable("no model is loaded; register a champion and POST /v1/models/reload")
    began = time.perf_counter()
    try:
        score, threshold, is_anomaly = scorer.score(recording.samples, recording.sample_rate)
    except (ValueError, FloatingPointError) as error:
        raise InputError("samples", f"model {scorer.name} cannot score this recording: {error}") from None
    diagnosis = None
    if recording.bearing:
        diagnosis = diagnose_bearing(recording.samples, recording.sample_rate, recording.bearing, recording.shaft_hz)
    scored_at = datetime.now(UTC)
    processing_ms = (time.perf_counter() - started) * 1000
    response = ScoreResponse(
        machine_id=recording.machine_id,
        score=float(score),
        threshold=float(threshold),
        is_anomaly=bool(is_anomaly),
        model=ModelInfo(name=scorer.name, version=str(scorer.version)),
        processing_ms=processing_ms,
        sample_rate=recording.sample_rate,
        duration_s=recording.duration,
        scored_at=scored_at,
        diagnosis=diagnosis,
    )
    _record(service, recording, response, time.perf_counter() - began)
    return response


def _record(service: Service, recording: Recording, response: ScoreResponse, seconds: float) -> None:
    service.metrics.observe_score(recording.machine_id, response.is_anomaly, seconds)
    service.store.record(
        ScoreRow(
            machine_id=response.machine_id,
            scored_at=response.scored_at,
            score=response.score,
            threshold=response.threshold,
            is_anomaly=response.is_anomaly,
            model_name=response.model.name,
            model_version=response.model.version,
            processing_ms=response.processing_ms,
        )
    )


def _score_batch(service: Service, decoders: list[Decoder], started: float) -> BatchResponse:
    results: list[ScoreResponse] = []
    errors: list[BatchItemError] = []
    for index, decode in enumerate(decoders):
        try:
            results.append(_score(service, decode, time.perf_counter()))
        except InputError as error:
            service.metrics.rejected.labels(error.source.split(".")[-1].split("[")[0]).inc()
            errors.append(BatchItemError(index=index, field=error.source, detail=error.reason))
    return BatchResponse(results=results, errors=errors, processing_ms=(time.perf_counter() - started) * 1000)


def _record_of(row: ScoreRow) -> ScoreRecord:
    return ScoreRecord(**asdict(row))


def _status(row: ScoreRow) -> str:
    return "alarm" if row.is_anomaly else "ok"


def _add_routes(app: FastAPI, service: Service) -> None:
    settings = service.settings

    @app.get("/", include_in_schema=False)
    def dashboard() -> FileResponse:
        return FileResponse(resources.files("vibrasense.serving") / "static" / "index.html")

    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], response_model=Readiness, responses={503: {"model": Readiness}})
    def readyz() -> JSONResponse:
        """Readiness: a model is loaded (else 503); ``degraded``: a store is down, scoring still works."""
        try:
            service.store.ping()
            score_store = "ok"
        except StoreError as error:
            score_store = f"unavailable: {error}"
        feature_store = service.online.status()
        scorer = service.slot.scorer
        if scorer is None:
            status = "unready"
        elif score_store == "ok" and feature_store == "ok":
            status = "ready"
        else:
            status = "degraded"
        body = Readiness(status=status, model=_model_info(scorer), score_store=score_store, feature_store=feature_store)
        return JSONResponse(body.model_dump(), status_code=503 if scorer is None else 200)

    @app.get("/metrics", tags=["operations"], response_class=Response)
    def prometheus_metrics() -> Response:
        """Prometheus metrics: requests and latency per endpoint, anomalies per machine, the model."""
        payload, content_type = service.metrics.exposition()
        return Response(payload, media_type=content_type)

    @app.post(
        "/v1/score",
        tags=["scoring"],
        response_model=ScoreResponse,
        openapi_extra=openapi.score_body(settings),
    )
    async def score(request: Request) -> ScoreResponse:
        """Score one recording: a WAV upload (multipart ``file``) or JSON samples / base64 PCM."""
        started = time.perf_counter()
        body = await read_body(request, settings)
        decode = await single_decoder(request, body, settings)
        return await run_in_threadpool(_score, service, decode, started)

    @app.post(
        "/v1/score/batch",
        tags=["scoring"],
        response_model=BatchResponse,
        openapi_extra=openapi.batch_body(settings, MAX_BATCH),
    )
    async def score_batch(request: Request) -> BatchResponse:
        """Score several recordings; a bad one is reported in ``errors`` and the others are scored."""
        started = time.perf_counter()
        body = await read_body(request, settings)
        decoders = await batch_decoders(request, body, settings, MAX_BATCH)
        return await run_in_threadpool(_score_batch, service, decoders, started)

    @app.get("/v1/machines", tags=["machines"], response_model=MachinesResponse)
    def machines(
        features: Annotated[bool, Query(description="Add each machine's latest online features.")] = True,
    ) -> MachinesResponse:
        """Every machine scored, with its latest verdict, counts and latest online features."""
        summaries = []
        for stats in service.store.machines():
            machine_id = stats.latest.machine_id
            online, online_status = service.online.get(machine_id) if features else (None, "not requested")
            summaries.append(
                MachineSummary(
                    machine_id=machine_id,
                    status=_status(stats.latest),
                    latest=_record_of(stats.latest),
                    scores=stats.scores,
                    anomalies=stats.anomalies,
                    features=online,
                    features_status=online_status,
                )
            )
        return MachinesResponse(machines=summaries)

    @app.get("/v1/machines/{machine_id}", tags=["machines"], response_model=MachineDetail)
    def machine(
        machine_id: MachineId,
        history: Annotated[int, Query(ge=1, le=10_000, description="Latest scores returned.")] = 100,
    ) -> MachineDetail:
        """A machine's latest online features (Feast) and latest scores; 404 for a machine never seen."""
        store_error: StoreError | None = None
        try:
            rows = service.store.history(machine_id, history)
        except StoreError as error:
            rows, store_error = [], error
        features, features_status = service.online.get(machine_id)
        if not rows and features is None:
            if store_error is not None:
                raise store_error
            raise UnknownMachine("machine_id", f"machine {machine_id!r} has never been scored or featurised")
        latest = rows[-1] if rows else None
        return MachineDetail(
            machine_id=machine_id,
            status=_status(latest) if latest else "unknown",
            latest=_record_of(latest) if latest else None,
            history=[_record_of(row) for row in rows],
            features=features,
            features_status=features_status,
        )

    @app.get("/v1/machines/{machine_id}/health", tags=["machines"], response_model=MachineHealth)
    def machine_health(machine_id: MachineId) -> MachineHealth:
        """A machine's health index, alarm and remaining useful life from its latest prognosis, with the series.

        404 when no prognosis names the machine (run ``vibrasense prognose <run>``); 503 when its table is unusable.
        """
        health = service.prognoses.health(machine_id)
        if health is None:
            raise NoPrognosis(
                "machine_id",
                f"no prognosis for machine {machine_id!r}: run `vibrasense prognose <run>` with this service's "
                f"workdir (it writes <workdir>/prognostics/<machine>_prognosis.csv)",
            )
        return health

    @app.get("/v1/dashboard", tags=["machines"], response_model=DashboardResponse)
    def dashboard_data(
        history: Annotated[int, Query(ge=1, le=2_000, description="Scores per machine.")] = 100,
        alarms: Annotated[int, Query(ge=0, le=500, description="Latest alarms.")] = 20,
    ) -> DashboardResponse:
        """Everything the dashboard shows: each machine's status and score history, the latest alarms."""
        histories = service.store.histories(history)
        shown = []
        for machine_id, rows in histories.items():
            latest = rows[-1]
            shown.append(
                DashboardMachine(
                    machine_id=machine_id,
                    status=_status(latest),
                    score=latest.score,
                    threshold=latest.threshold,
                    scored_at=latest.scored_at,
                    history=[(row.scored_at, row.score, row.threshold) for row in rows],
                )
            )
        return DashboardResponse(
            machines=shown,
            alarms=[_record_of(row) for row in service.store.alarms(alarms)] if alarms else [],
            model=_model_info(service.slot.scorer),
            generated_at=datetime.now(UTC),
        )

    @app.get("/v1/model", tags=["models"], response_model=ModelInfo, responses={503: {"model": Problem}})
    def model() -> ModelInfo:
        """The model being served."""
        scorer = service.slot.scorer
        if scorer is None:
            raise ModelUnavailable("no model is loaded; register a champion and POST /v1/models/reload")
        return ModelInfo(name=scorer.name, version=str(scorer.version))

    @app.post(
        "/v1/models/reload",
        tags=["models"],
        response_model=ReloadResponse,
        responses={401: {"model": Problem}, 403: {"model": Problem}},
    )
    async def reload(
        request: ReloadRequest | None = None,
        x_api_key: Annotated[str | None, Header(description="serving.api_key")] = None,
    ) -> ReloadResponse:
        """Load the current champion (or the alias / version given), warm it, then swap it in.

        Requests in flight finish on the model they started with; none is dropped or failed.
        """
        _check_api_key(settings, x_api_key)
        target: str | int | None = None
        if request is not None:
            target = request.version if request.version is not None else request.alias
        started = time.perf_counter()
        try:
            scorer, previous = await run_in_threadpool(
                service.slot.reload, lambda: service.loader(settings, target), _warm_rate(settings)
            )
        except Exception as error:
            service.metrics.model_reloads.labels("failed").inc()
            current = service.slot.scorer
            still = f"still serving {current.name} v{current.version}" if current else "no model loaded"
            log.warning("model reload (%s) failed: %s", target, error)
            raise ModelError(f"cannot load model {target or 'from settings'} ({still}): {error}") from None
        _single_threaded_torch()
        service.metrics.model_reloads.labels("ok").inc()
        service.metrics.set_model(scorer.name, str(scorer.version))
        return ReloadResponse(
            model=ModelInfo(name=scorer.name, version=str(scorer.version)),
            previous=_model_info(previous),
            load_ms=(time.perf_counter() - started) * 1000,
        )


class Unauthorized(InputError):
    """The API key is missing or wrong (401)."""

    http_status = 401


class Forbidden(InputError):
    """The endpoint is disabled because no API key is configured (403)."""

    http_status = 403


def _check_api_key(settings: Settings, given: str | None) -> None:
    expected = settings.serving.api_key
    if expected is None or not expected.get_secret_value():
        raise Forbidden("X-API-Key", "model reload is disabled: set serving.api_key (VIBRASENSE_SERVING__API_KEY)")
    if given is None or not secrets.compare_digest(given.encode(), expected.get_secret_value().encode()):
        raise Unauthorized("X-API-Key", "missing or wrong API key; send the serving.api_key in X-API-Key")
