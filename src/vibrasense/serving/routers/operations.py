"""Operations: liveness, readiness and the Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from vibrasense.serving.dependencies import ServiceDep
from vibrasense.serving.online import OnlineFeatures
from vibrasense.serving.schemas import Readiness
from vibrasense.serving.service import ScoringService, model_info

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process answers.

    ``async`` and touching nothing: it runs on the event loop, never queued behind scoring in the worker threads.
    """
    return {"status": "ok"}


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
async def readyz(request: Request) -> JSONResponse:
    """Readiness: a model is loaded (else 503); ``degraded``: a store is down or scores wait in the spool.

    Answered from state the background probes keep, on the event loop: never waits on a store or a worker thread.
    """
    service: ScoringService = request.app.state.service
    online: OnlineFeatures = request.app.state.online
    score_store = service.store.status()  # the writer's state, no query: "degraded: N scores spooled (...)"
    feature_store = online.status()
    scorer = service.slot.scorer
    if scorer is None:
        status = "unready"
    elif score_store == "ok" and feature_store == "ok":
        status = "ready"
    else:
        status = "degraded"
    body = Readiness(status=status, model=model_info(scorer), score_store=score_store, feature_store=feature_store)
    return JSONResponse(body.model_dump(), status_code=503 if scorer is None else 200)


@router.get("/metrics", response_class=Response)
def prometheus_metrics(service: ServiceDep) -> Response:
    """Prometheus metrics: requests and latency per endpoint, anomalies per machine, the model."""
    payload, content_type = service.metrics.exposition()
    return Response(payload, media_type=content_type)
