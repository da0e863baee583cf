"""The dashboard: its page at ``/`` and everything it shows in one poll (``/v1/dashboard``)."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse

from vibrasense.alarms import machine_state
from vibrasense.serving.dependencies import ServiceDep
from vibrasense.serving.drift_status import read_drift_status
from vibrasense.serving.routers.machines import sensor_status
from vibrasense.serving.schemas import DashboardMachine, DashboardResponse, DashboardSensor
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
    alarms: Annotated[int, Query(ge=0, le=500, description="Alarms: every open one, then the latest cleared.")] = 20,
) -> DashboardResponse:
    """Everything the dashboard shows: each machine's state, its sensors' and its score history; the open alarms
    and the latest past ones (from the alarm events)."""
    shown = []
    drift = read_drift_status(service.settings.workdir)
    drift_by_machine = {m.machine_id: m for m in drift.machines} if drift else {}
    latest = service.store.latest_by_sensor()
    for machine_id, rows in service.store.histories(history).items():
        sensors = [
            DashboardSensor(sensor=sensor, **sensor_status(service.settings, row).model_dump())
            for sensor, row in sorted(latest.get(machine_id, {}).items())
        ]
        last = rows[-1]
        shown.append(
            DashboardMachine(
                machine_id=machine_id,
                status=machine_state(s.state for s in sensors),
                sensors=sensors,
                score=last.score,
                threshold=last.threshold,
                scored_at=last.scored_at,
                history=[(row.scored_at, row.score, row.threshold, row.status) for row in rows],
                drift=drift_by_machine.get(machine_id),
            )
        )
    shown_alarms = []
    if alarms:
        shown_alarms = service.alarms.alarms(status="open", limit=500)  # every open one, whatever ``alarms`` says
        past = alarms - len(shown_alarms)
        shown_alarms += service.alarms.alarms(status="cleared", limit=past) if past > 0 else []
    return DashboardResponse(
        machines=shown,
        alarms=shown_alarms,
        model=model_info(service.slot.scorer),
        drift_checked_at=drift.checked_at if drift else None,
        drift_report=drift.report if drift else None,
        generated_at=datetime.now(UTC),
    )
