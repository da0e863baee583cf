"""Machines: every machine scored, one machine's scores and online features, its health from its prognosis.

A machine's ``status`` is its managed state (alarm management, see the README): each sensor's state after its
latest verdict in the score store (the database every scoring process writes), combined by the rule of
:func:`vibrasense.alarms.machine_state` (the worst running sensor; ``not_running`` only when all are).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from vibrasense.alarms import machine_state
from vibrasense.config import Settings
from vibrasense.errors import StoreError
from vibrasense.inference import Explanation
from vibrasense.serving.dependencies import OnlineDep, PrognosesDep, ServiceDep
from vibrasense.serving.problems import NotFound
from vibrasense.serving.schemas import (
    SCORE_ID_PATTERN,
    ExplainedScore,
    MachineDetail,
    MachineHealth,
    MachineId,
    MachinesResponse,
    MachineSummary,
    ModelInfo,
    Problem,
    ScoreRecord,
    SensorStatus,
    SeverityReading,
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


def sensor_statuses(settings: Settings, rows: dict[str, ScoreRow]) -> dict[str, SensorStatus]:
    """Each sensor's state and reading from its latest stored verdict."""
    return {sensor: sensor_status(settings, row) for sensor, row in sorted(rows.items())}


def sensor_status(settings: Settings, row: ScoreRow) -> SensorStatus:
    """A sensor's state and reading from a stored verdict (its zone under the machine's configured class)."""
    machine_class = settings.alarms.rules(row.machine_id).machine_class
    zone = None
    if row.zone is not None and row.velocity_rms_mm_s is not None and machine_class is not None:
        zone = SeverityReading(velocity_rms_mm_s=row.velocity_rms_mm_s, zone=row.zone, machine_class=machine_class)
    return SensorStatus(state=row.status, score=row.score, threshold=row.threshold, zone=zone, scored_at=row.scored_at)


@router.get("", response_model=MachinesResponse)
def machines(
    service: ServiceDep,
    online: OnlineDep,
    features: Annotated[bool, Query(description="Add each machine's latest online features.")] = True,
) -> MachinesResponse:
    """Every machine scored, with its latest verdict, counts and latest online features."""
    summaries = []
    latest = service.store.latest_by_sensor()
    for stats in service.store.machines():
        machine_id = stats.latest.machine_id
        found, found_status = online.get(machine_id) if features else (None, "not requested")
        sensors = sensor_statuses(service.settings, latest.get(machine_id, {}))
        summaries.append(
            MachineSummary(
                machine_id=machine_id,
                status=machine_state(s.state for s in sensors.values()),
                sensors=sensors,
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
        sensors = sensor_statuses(service.settings, service.store.latest_by_sensor(machine_id).get(machine_id, {}))
    except StoreError as error:
        rows, sensors, store_error = [], {}, error
    features, features_status = online.get(machine_id)
    if not rows and features is None:
        if store_error is not None:
            raise store_error
        raise UnknownMachine("machine_id", f"machine {machine_id!r} has never been scored or featurised")
    latest = rows[-1] if rows else None
    return MachineDetail(
        machine_id=machine_id,
        status=machine_state(s.state for s in sensors.values()) if sensors else "unknown",
        sensors=sensors,
        active_alarms=service.alarms.alarms(machine_id, "open"),
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


class NoExplanation(NotFound):
    """No stored verdict of the machine has an explanation, or the one asked for is not the machine's."""


WHY_UNEXPLAINED = (
    "a tabular model explains every score, an autoencoder only when asked (POST /v1/score?explain=true), "
    "and a scorer that cannot explain never does"
)


@router.get("/{machine_id}/explanation", response_model=ExplainedScore)
def machine_explanation(
    machine_id: MachineIdPath,
    service: ServiceDep,
    score_id: Annotated[
        str | None,
        Query(pattern=SCORE_ID_PATTERN, description="The verdict to explain (default: the latest explained one)."),
    ] = None,
) -> ExplainedScore:
    """What drove a machine's latest explained score (or the score ``score_id``), as stored with it.

    404 with the reason when the machine has no explained score, or no score ``score_id``.
    """
    row = service.store.explanation(machine_id, score_id)
    if row is None and score_id is not None:
        raise NoExplanation("score_id", f"machine {machine_id!r} has no score {score_id!r}")
    if row is None:
        raise NoExplanation(
            "machine_id", f"no stored score of machine {machine_id!r} has an explanation: {WHY_UNEXPLAINED}"
        )
    if row.explanation is None:
        raise NoExplanation(
            "score_id", f"score {score_id!r} of machine {machine_id!r} has no explanation: {WHY_UNEXPLAINED}"
        )
    return ExplainedScore(
        machine_id=row.machine_id,
        sensor=row.sensor,
        score_id=row.score_id,
        scored_at=row.scored_at,
        score=row.score,
        threshold=row.threshold,
        is_anomaly=row.is_anomaly,
        model=ModelInfo(name=row.model_name, version=row.model_version),
        explanation=Explanation.model_validate_json(row.explanation),
    )
