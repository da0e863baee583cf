"""Scoring: one recording or a batch, as JSON samples / PCM or as uploaded audio files.

JSON and uploads are separate operations, each with its own typed body (the forms are pydantic models of
the schemas' field types). The endpoints hand the recordings to the scoring service in one of the scoring
worker threads (serving.scoring_threads; a request waits for a free one). When serving.scoring_api_keys is
set, every one needs one of those keys in ``X-API-Key`` (401 otherwise): scores are writes, recorded for the
machine they name.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, File, Query, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from vibrasense.errors import InputError
from vibrasense.serving.dependencies import (
    BatchRequestBody,
    ScorerDep,
    ScoreRequestBody,
    ScoringThreadsDep,
    ServiceDep,
    json_body_openapi,
    require_scoring_key,
)
from vibrasense.serving.schemas import (
    MAX_BATCH,
    BatchRequest,
    BatchResponse,
    BearingPreset,
    Channel,
    MachineId,
    Problem,
    ScoreRequest,
    ScoreResponse,
    SensorId,
    ShaftHz,
)
from vibrasense.serving.service import Upload

router = APIRouter(
    prefix="/v1/score",
    tags=["scoring"],
    dependencies=[Depends(require_scoring_key)],  # before a JSON body is read; a form is read before any dependency
    responses={401: {"model": Problem}},
)

ONCE_OR_PER_FILE = "Once for every file, or once per file in the order of the files."
ExplainQuery = Annotated[
    bool,
    Query(
        description="Explain an autoencoder's score too: its worst mel bands, time span and band × time error map "
        "(one more pass through the model, about 30 kB stored). A tabular model explains every score."
    ),
]
T = TypeVar("T")


def multipart_json_schema(schema: dict[str, Any]) -> None:
    """The OpenAPI of a form as it travels: no field is null (an absent one is ``None``), a list may come once.

    Multipart has no null, so the schema does not offer one; a field repeated per file is a list, and a field
    sent once is that one value (for every file).
    """
    for field in schema["properties"].values():
        choices = [choice for choice in field.pop("anyOf", []) if choice.get("type") != "null"]
        if not choices:
            continue
        (value,) = choices
        field.update({"anyOf": [value, value["items"]]} if value.get("type") == "array" else value)


class FileForm(BaseModel):
    """One audio file and what is known about its recording, as multipart/form-data."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=multipart_json_schema)

    file: UploadFile = Field(description="The recording: WAV, FLAC or OGG (16-bit PCM WAV is fastest).")
    machine_id: MachineId | None = None
    sensor: SensorId | None = None
    bearing: BearingPreset | None = None
    shaft_hz: ShaftHz | None = None
    channel: Channel | None = None


class FilesForm(BaseModel):
    """Several audio files as multipart/form-data; each other field is given once for all or once per file."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=multipart_json_schema)

    files: list[UploadFile] = Field(min_length=1, max_length=MAX_BATCH, description="The recordings.")
    machine_id: list[MachineId] | None = Field(None, description=ONCE_OR_PER_FILE)
    sensor: list[SensorId] | None = Field(None, description=ONCE_OR_PER_FILE)
    bearing: list[BearingPreset] | None = Field(None, description=ONCE_OR_PER_FILE)
    shaft_hz: list[ShaftHz] | None = Field(None, description=ONCE_OR_PER_FILE)
    channel: list[Channel] | None = Field(None, description=ONCE_OR_PER_FILE)


@router.post("", response_model=ScoreResponse, openapi_extra=json_body_openapi(ScoreRequest))
async def score(
    request: ScoreRequestBody,
    service: ServiceDep,
    scorer: ScorerDep,
    threads: ScoringThreadsDep,
    explain: ExplainQuery = False,
) -> ScoreResponse:
    """Score one recording sent as JSON samples or base64 PCM."""
    return await threads.run(service.score, request, scorer, explain=explain)


@router.post("/file", response_model=ScoreResponse)
async def score_file(
    form: Annotated[FileForm, File()],
    service: ServiceDep,
    scorer: ScorerDep,
    threads: ScoringThreadsDep,
    explain: ExplainQuery = False,
) -> ScoreResponse:
    """Score one uploaded audio file."""
    upload = Upload(  # read in place
        form.file.file, form.machine_id, form.bearing, form.shaft_hz, form.channel, sensor=form.sensor
    )
    return await threads.run(service.score, upload, scorer, explain=explain)


@router.post("/batch", response_model=BatchResponse, openapi_extra=json_body_openapi(BatchRequest))
async def score_batch(
    recordings: BatchRequestBody,
    service: ServiceDep,
    scorer: ScorerDep,
    threads: ScoringThreadsDep,
    explain: ExplainQuery = False,
) -> BatchResponse:
    """Score several JSON recordings; a refused one is reported in ``errors`` and the others are scored."""
    return await threads.run(service.score_batch, recordings, scorer, explain=explain)


@router.post("/batch/files", response_model=BatchResponse)
async def score_files(
    form: Annotated[FilesForm, File()],
    service: ServiceDep,
    scorer: ScorerDep,
    threads: ScoringThreadsDep,
    explain: ExplainQuery = False,
) -> BatchResponse:
    """Score several uploaded audio files; a refused one is reported in ``errors`` and the others are scored."""
    count = len(form.files)
    fields = zip(
        per_file("machine_id", form.machine_id, count),
        per_file("bearing", form.bearing, count),
        per_file("shaft_hz", form.shaft_hz, count),
        per_file("channel", form.channel, count),
        strict=True,
    )
    sensors = per_file("sensor", form.sensor, count)
    uploads = [
        Upload(upload.file, *values, field=f"files[{index}]", sensor=sensors[index])
        for index, (upload, values) in enumerate(zip(form.files, fields, strict=True))
    ]
    return await threads.run(service.score_batch, uploads, scorer, explain=explain)


def per_file(name: str, values: list[T] | None, count: int) -> list[T | None]:
    """A form field's value for each of ``count`` files: given once (for all) or once per file."""
    if not values:
        return [None] * count
    if len(values) == 1:
        return values * count
    if len(values) == count:
        return values
    raise InputError(name, f"given {len(values)} times for {count} files; give it once or once per file")
