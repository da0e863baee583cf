"""Operations: liveness, readiness and the Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from vibrasense.errors import StoreError
from vibrasense.serving.dependencies import OnlineDep, ServiceDep
from vibrasense.serving.schemas import Readiness
from vibrasense.serving.service import model_info

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
def readyz(service: ServiceDep, online: OnlineDep) -> JSONResponse:
    """Readiness: a model is loaded (else 503); ``degraded``: a store is down, scoring still works."""
    try:
        service.store.ping()
        score_store = "ok"
    except StoreError as error:
        score_store = f"unavailable: {error}"
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
