"""Machines: every machine scored, one machine's scores and online features, its health from its prognosis."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from vibrasense.errors import StoreError
from vibrasense.serving.dependencies import OnlineDep, PrognosesDep, ServiceDep
from vibrasense.serving.problems import NotFound
from vibrasense.serving.schemas import (
    MachineDetail,
    MachineHealth,
    MachineId,
    MachinesResponse,
    MachineSummary,
    Problem,
    ScoreRecord,
)
from vibrasense.serving.scores import ScoreRow

router = APIRouter(prefix="/v1/machines", tags=["machines"], responses={404: {"model": Problem}})

MachineIdPath = Annotated[MachineId, Path()]


class UnknownMachine(NotFound):
    """A machine the service has never scored and the feature store does not know."""


class NoPrognosis(NotFound):
    """No prognosis table names the machine: ``vibrasense prognose`` has not been run for it."""


def score_record(row: ScoreRow) -> ScoreRecord:
    """A stored verdict as the API shows it."""
    return ScoreRecord.model_validate(row, from_attributes=True)


@router.get("", response_model=MachinesResponse)
def machines(
    service: ServiceDep,
    online: OnlineDep,
    features: Annotated[bool, Query(description="Add each machine's latest online features.")] = True,
) -> MachinesResponse:
    """Every machine scored, with its latest verdict, counts and latest online features."""
    summaries = []
    for stats in service.store.machines():
        machine_id = stats.latest.machine_id
        found, found_status = online.get(machine_id) if features else (None, "not requested")
        summaries.append(
            MachineSummary(
                machine_id=machine_id,
                status=stats.latest.status,
                latest=score_record(stats.latest),
                scores=stats.scores,
                anomalies=stats.anomalies,
                features=found,
                features_status=found_status,
            )
        )
    return MachinesResponse(machines=summaries)


@router.get("/{machine_id}", response_model=MachineDetail)
def machine(
    machine_id: MachineIdPath,
    service: ServiceDep,
    online: OnlineDep,
    history: Annotated[int, Query(ge=1, le=10_000, description="Latest scores returned.")] = 100,
) -> MachineDetail:
    """A machine's latest online features (Feast) and latest scores; 404 for a machine never seen."""
    store_error: StoreError | None = None
    try:
        rows = service.store.history(machine_id, history)
    except StoreError as error:
        rows, store_error = [], error
    features, features_status = online.get(machine_id)
    if not rows and features is None:
        if store_error is not None:
            raise store_error
        raise UnknownMachine("machine_id", f"machine {machine_id!r} has never been scored or featurised")
    latest = rows[-1] if rows else None
    return MachineDetail(
        machine_id=machine_id,
        status=latest.status if latest else "unknown",
        latest=score_record(latest) if latest else None,
        history=[score_record(row) for row in rows],
        features=features,
        features_status=features_status,
    )


@router.get("/{machine_id}/health", response_model=MachineHealth)
def machine_health(machine_id: MachineIdPath, prognoses: PrognosesDep) -> MachineHealth:
    """A machine's health index, alarm and remaining useful life from its latest prognosis, with the series.

    404 when no prognosis names the machine (run ``vibrasense prognose <run>``); 503 when its table is unusable.
    """
    health = prognoses.health(machine_id)
    if health is None:
        raise NoPrognosis(
            "machine_id",
            f"no prognosis for machine {machine_id!r}: run `vibrasense prognose <run>` with this service's "
            f"workdir (it writes <workdir>/prognostics/<machine>_prognosis.csv)",
        )
    return health
