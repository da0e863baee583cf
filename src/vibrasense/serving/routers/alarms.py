"""Alarms: the active and past alarms, and the engineer's actions on one (acknowledge, shelve, unshelve).

Reading is open like the other machine views; every action needs the API key (``X-API-Key``:
serving.api_key, as model reload) and names the engineer in the body (``by``), recorded with the time.
Unknown alarm id: 404; an action the alarm's state does not allow (acknowledging a cleared alarm): 409.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from starlette.exceptions import HTTPException

from vibrasense.alarms import AlarmConflict, UnknownAlarm
from vibrasense.serving.dependencies import ServiceDep, require_api_key
from vibrasense.serving.problems import NotFound
from vibrasense.serving.schemas import AckRequest, AlarmRecord, AlarmsResponse, MachineId, Problem, ShelveRequest

router = APIRouter(prefix="/v1/alarms", tags=["alarms"], responses={404: {"model": Problem}})
ALARM_ID = r"^[0-9a-f]{32}$"
AlarmIdPath = Annotated[str, Path(pattern=ALARM_ID, description="The alarm's id (32 hex digits).")]
ACTION = {
    "dependencies": [Depends(require_api_key)],
    "responses": {401: {"model": Problem}, 403: {"model": Problem}, 409: {"model": Problem}},
}


class Conflict(HTTPException):
    """409: the alarm is in no state for the action; ``field`` names the alarm id for the Problem body."""

    def __init__(self, error: AlarmConflict) -> None:
        super().__init__(409, error.reason)
        self.field = error.source


def _checked(action: Callable[[], AlarmRecord]) -> AlarmRecord:
    try:
        return action()
    except UnknownAlarm as error:
        raise NotFound(error.source, error.reason) from None
    except AlarmConflict as error:
        raise Conflict(error) from None


@router.get("", response_model=AlarmsResponse)
def alarms(
    service: ServiceDep,
    machine_id: Annotated[MachineId | None, Query(description="Only this machine's alarms.")] = None,
    state: Annotated[
        Literal["open", "active", "acknowledged", "shelved", "cleared"] | None,
        Query(description="open (not cleared), active (unacknowledged), acknowledged, shelved or cleared."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Alarms returned, at most.")] = 100,
) -> AlarmsResponse:
    """Active and past alarms, open ones first (newest first), each with its events."""
    return AlarmsResponse(alarms=service.alarms.alarms(machine_id, state, limit))


@router.get("/{alarm_id}", response_model=AlarmRecord)
def alarm(alarm_id: AlarmIdPath, service: ServiceDep) -> AlarmRecord:
    """One alarm and its events."""
    return _checked(lambda: service.alarms.alarm(alarm_id))


@router.post("/{alarm_id}/ack", response_model=AlarmRecord, **ACTION)
def acknowledge(alarm_id: AlarmIdPath, body: AckRequest, service: ServiceDep) -> AlarmRecord:
    """Acknowledge an open alarm (409 when it was cleared or is already acknowledged)."""
    return _checked(lambda: service.alarms.acknowledge(alarm_id, body.by))


@router.post("/{alarm_id}/shelve", response_model=AlarmRecord, **ACTION)
def shelve(alarm_id: AlarmIdPath, body: ShelveRequest, service: ServiceDep) -> AlarmRecord:
    """Shelve an open alarm for ``duration_s`` with a reason: its condition raises no new alarm meanwhile."""
    return _checked(lambda: service.alarms.shelve(alarm_id, body.by, body.reason, body.duration_s))


@router.post("/{alarm_id}/unshelve", response_model=AlarmRecord, **ACTION)
def unshelve(alarm_id: AlarmIdPath, body: AckRequest, service: ServiceDep) -> AlarmRecord:
    """End a shelf before it expires (409 when the alarm is not shelved)."""
    return _checked(lambda: service.alarms.unshelve(alarm_id, body.by))
