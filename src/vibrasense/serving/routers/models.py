"""Models: the model being served, and reloading the registry's current one (guarded by the API key)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from vibrasense.serving.dependencies import ScorerDep, ServiceDep, require_api_key
from vibrasense.serving.schemas import ModelInfo, Problem, ReloadRequest, ReloadResponse

router = APIRouter(tags=["models"])


@router.get("/v1/model", response_model=ModelInfo)
def model(scorer: ScorerDep) -> ModelInfo:
    """The model being served."""
    return ModelInfo(name=scorer.name, version=str(scorer.version))


@router.post(
    "/v1/models/reload",
    response_model=ReloadResponse,
    dependencies=[Depends(require_api_key)],
    responses={401: {"model": Problem}, 403: {"model": Problem}},
)
def reload(service: ServiceDep, request: ReloadRequest | None = None) -> ReloadResponse:
    """Load the current champion (or the alias / version given), warm it, then swap it in.

    Requests in flight finish on the model they started with; none is dropped or failed.
    """
    target = None if request is None else request.version if request.version is not None else request.alias
    return service.reload(target)
