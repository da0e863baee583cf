"""The dashboard: its page at ``/`` and everything it shows in one poll (``/v1/dashboard``)."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse

from vibrasense.serving.dependencies import ServiceDep
from vibrasense.serving.schemas import DashboardMachine, DashboardResponse, ScoreRecord
from vibrasense.serving.service import model_info

router = APIRouter()
STATIC = resources.files("vibrasense.serving") / "static"


@router.get("/", include_in_schema=False)
def page() -> FileResponse:
    """The dashboard page (its script and style are under /static)."""
    return FileResponse(STATIC / "index.html")


@router.get("/v1/dashboard", tags=["machines"], response_model=DashboardResponse)
def dashboard(
    service: ServiceDep,
    history: Annotated[int, Query(ge=1, le=2_000, description="Scores per machine.")] = 100,
    alarms: Annotated[int, Query(ge=0, le=500, description="Latest alarms.")] = 20,
) -> DashboardResponse:
    """Everything the dashboard shows: each machine's status and score history, the latest alarms."""
    shown = []
    for machine_id, rows in service.store.histories(history).items():
        latest = rows[-1]
        shown.append(
            DashboardMachine(
                machine_id=machine_id,
                status=latest.status,
                score=latest.score,
                threshold=latest.threshold,
                scored_at=latest.scored_at,
                history=[(row.scored_at, row.score, row.threshold) for row in rows],
            )
        )
    return DashboardResponse(
        machines=shown,
        alarms=[ScoreRecord.model_validate(row, from_attributes=True) for row in service.store.alarms(alarms)]
        if alarms
        else [],
        model=model_info(service.slot.scorer),
        generated_at=datetime.now(UTC),
    )
