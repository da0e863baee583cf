"""The FastAPI scoring service: a small factory, its lifespan, and the routers of each resource.

``create_app(settings)`` loads the champion from the registry when the app starts; tests and benchmarks
may pass a ready ``scorer``. The lifespan limits the native thread pools once for the process (requests
are scored in parallel worker threads), loads and warms the model and starts the score store's writer.
Scoring itself is :class:`~vibrasense.serving.service.ScoringService`, which knows no HTTP.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from vibrasense import __version__
from vibrasense.config import Settings
from vibrasense.inference import Scorer, limit_process_threads
from vibrasense.serving import problems
from vibrasense.serving.body_limit import BodySizeLimit
from vibrasense.serving.dependencies import ScoringThreads, json_body_schemas
from vibrasense.serving.health import PrognosisReader
from vibrasense.serving.instrumentation import MetricsMiddleware
from vibrasense.serving.metrics import ServingMetrics
from vibrasense.serving.model import ScorerLoader, load_registered_scorer
from vibrasense.serving.online import FeatureClient, OnlineFeatures
from vibrasense.serving.routers import alarms, dashboard, machines, models, operations, scoring
from vibrasense.serving.scores import ScoreStore
from vibrasense.serving.service import ScoringService

log = logging.getLogger(__name__)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Limit the thread pools, load and warm the model, start the score writer and the feature store's probe;
    write what is queued at the end. Recordings are scored in ``serving.scoring_threads`` worker threads of
    their own (one per core by default), so that neither a queue of them contends for the interpreter lock
    nor do they take the threads every other endpoint runs in.

    The pools are limited before any worker thread scores (torch and OpenMP keep a thread's count once it has
    used them); a model whose load brings torch limits it before its warm-up (:class:`ModelSlot`).
    """
    service: ScoringService = app.state.service
    online: OnlineFeatures = app.state.online
    app.state.scoring_threads = ScoringThreads(service.settings.serving.scoring_threads or _cores())
    limit_process_threads()
    await run_in_threadpool(service.start)
    await run_in_threadpool(online.start)
    limit_process_threads()  # the feature store's import brings torch
    try:
        yield
    finally:
        online.stop()
        await run_in_threadpool(service.close)


def create_app(
    settings: Settings,
    scorer: Scorer | None = None,
    *,
    score_store: ScoreStore | None = None,
    feature_client: FeatureClient | None = None,
    loader: ScorerLoader = load_registered_scorer,
    metrics: ServingMetrics | None = None,
) -> FastAPI:
    """The scoring service; it loads (``scorer is None``) and warms the model when it starts."""
    service = ScoringService(settings, scorer, store=score_store, metrics=metrics, loader=loader)
    if not settings.serving.scoring_api_keys and not _loopback(settings.serving.host):
        log.warning(
            "scoring is open to anyone who reaches %s:%d: set serving.scoring_api_keys "
            "(VIBRASENSE_SERVING__SCORING_API_KEYS) to require a key",
            settings.serving.host,
            settings.serving.port,
        )
    app = FastAPI(
        title="vibrasense scoring service",
        version=__version__,
        description="Scores machine recordings for anomalies with the registered champion model.",
        lifespan=lifespan,
        responses=problems.RESPONSES,
    )
    app.state.service = service
    app.state.online = OnlineFeatures(settings, feature_client)
    app.state.prognoses = PrognosisReader(settings.workdir / "prognostics")
    problems.install(app)
    app.add_middleware(
        BodySizeLimit, max_upload_mb=settings.serving.max_upload_mb, body_timeout_s=settings.serving.body_timeout_s
    )
    app.add_middleware(MetricsMiddleware, metrics=service.metrics)  # outermost: it sees every answer
    for router in (scoring.router, machines.router, alarms.router, models.router, operations.router, dashboard.router):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=str(resources.files("vibrasense.serving") / "static")), name="static")

    def openapi() -> dict[str, Any]:
        """FastAPI's document, plus the schemas of the JSON bodies validated from the raw bytes."""
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)
            schema.setdefault("components", {}).setdefault("schemas", {}).update(json_body_schemas(settings.serving))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
