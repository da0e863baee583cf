"""The JSON the API reads and writes; these models are also what the OpenAPI document shows."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from vibrasense.serving.requests import MACHINE_ID_PATTERN

MAX_BATCH = 64
"""Recordings in one batch request, at most."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScoreRequest(_Strict):
    """One recording as JSON: ``samples`` (floats) or ``pcm_base64`` (little-endian PCM of ``dtype``)."""

    sample_rate: float = Field(..., description="Samples per second (Hz).", examples=[16000])
    samples: list[float] | None = Field(None, description="Mono samples, any scale.")
    pcm_base64: str | None = Field(None, description="Base64 of interleaved little-endian PCM frames.")
    dtype: Literal["int16", "int32", "float32", "float64"] = Field("int16", description="PCM sample type.")
    channels: int = Field(1, ge=1, le=64, description="Interleaved channels in pcm_base64 (first is scored).")
    machine_id: str | None = Field(None, pattern=MACHINE_ID_PATTERN, description="Machine recorded.")
    bearing: str | None = Field(
        None, max_length=64, description="Bearing preset (e.g. cwru-6205-de): adds a defect diagnosis."
    )
    shaft_hz: float | None = Field(None, gt=0, le=1000, description="Shaft speed for the diagnosis (Hz).")


class BatchRequest(_Strict):
    """Several recordings as JSON."""

    recordings: list[ScoreRequest] = Field(..., min_length=1, max_length=MAX_BATCH)


class ModelInfo(BaseModel):
    """The registered model that produced a score."""

    name: str
    version: str


class ScoreResponse(BaseModel):
    """The verdict on one recording."""

    machine_id: str
    score: float = Field(..., description="Anomaly score: higher is more anomalous.")
    threshold: float = Field(..., description="Scores above this are anomalies (learned from normal data).")
    is_anomaly: bool
    model: ModelInfo
    processing_ms: float = Field(..., description="Server time from request to verdict, milliseconds.")
    sample_rate: float
    duration_s: float
    scored_at: datetime
    diagnosis: dict[str, Any] | None = Field(
        None, description="Bearing defect diagnosis, when the request names a bearing preset."
    )


class BatchItemError(BaseModel):
    """A recording of a batch that was refused, and why."""

    index: int
    field: str
    detail: str


class BatchResponse(BaseModel):
    """Verdicts on the good recordings of a batch, and the refused ones with the reason."""

    results: list[ScoreResponse]
    errors: list[BatchItemError]
    processing_ms: float


class ScoreRecord(BaseModel):
    """A score as recorded in the score store."""

    machine_id: str
    scored_at: datetime
    score: float
    threshold: float
    is_anomaly: bool
    model_name: str
    model_version: str
    processing_ms: float


class MachineSummary(BaseModel):
    """A machine the service has seen, with its latest score and status."""

    machine_id: str
    status: Literal["ok", "alarm"]
    latest: ScoreRecord
    scores: int
    anomalies: int
    features: dict[str, Any] | None = Field(None, description="Latest online features (Feast), if any.")
    features_status: str = Field(..., description="ok, missing, not requested, or why it is unavailable.")


class MachineDetail(BaseModel):
    """A machine's latest score, recent history and latest online features."""

    machine_id: str
    status: Literal["ok", "alarm", "unknown"]
    latest: ScoreRecord | None
    history: list[ScoreRecord]
    features: dict[str, Any] | None = Field(None, description="Latest online features (Feast), if any.")
    features_status: str = Field(..., description="ok, missing, or why the feature store is unavailable.")


class MachinesResponse(BaseModel):
    """Every machine seen."""

    machines: list[MachineSummary]


class DashboardMachine(BaseModel):
    """One machine on the dashboard: latest verdict and score history (oldest first)."""

    machine_id: str
    status: Literal["ok", "alarm"]
    score: float
    threshold: float
    scored_at: datetime
    history: list[tuple[datetime, float, float]] = Field(..., description="(scored_at, score, threshold).")


class DashboardResponse(BaseModel):
    """Everything the dashboard shows, in one poll."""

    machines: list[DashboardMachine]
    alarms: list[ScoreRecord]
    model: ModelInfo | None
    generated_at: datetime


class HealthSnapshot(BaseModel):
    """One snapshot of a machine's prognosis: health index, alarm and remaining useful life (RUL)."""

    event_timestamp: datetime
    health_index: float = Field(..., description="Distance from the machine's own healthy baseline.")
    smoothed: float = Field(..., description="Health index smoothed causally (running median); the alarm reads it.")
    threshold: float | None = Field(
        ..., description="Alarm threshold on the smoothed index (null in tables written before it was recorded)."
    )
    alarm: bool = Field(..., description="The k-of-n early-warning alarm is raised at this snapshot.")
    sensor_fault: bool = Field(..., description="The sensor looked disconnected at this snapshot.")
    rul_hours: float | None = Field(..., description="Remaining useful life, hours; null before any estimate.")
    rul_low_hours: float | None = Field(..., description="Low end of the 95 % RUL band, hours.")
    rul_high_hours: float | None = Field(..., description="High end of the 95 % RUL band, hours; null: unbounded.")
    rul_method: str = Field(..., description="How the RUL was estimated (exponential trend, past runs, unknown).")


class HealthSeries(BaseModel):
    """The smoothed health index over time, oldest first, for plotting (downsampled to at most 500 points)."""

    timestamps: list[datetime]
    smoothed: list[float | None] = Field(..., description="Null at a sensor fault.")
    alarm: list[bool] = Field(..., description="The alarm was raised at (or, downsampled, up to) this point.")


class MachineHealth(BaseModel):
    """A machine's latest prognosis (``vibrasense prognose``): health index, alarm, RUL and their history."""

    machine_id: str
    latest: HealthSnapshot = Field(..., description="The latest snapshot without a sensor fault.")
    sensor_fault_now: bool = Field(
        ..., description="The newest snapshot is a sensor fault: ``latest`` is an older snapshot."
    )
    onset: datetime | None = Field(
        ..., description="Degradation onset: first above-threshold snapshot of the window that raised the alarm."
    )
    first_alarm: datetime | None = Field(..., description="When the alarm was first raised, if it was.")
    snapshots: int
    sensor_faults: int
    series: HealthSeries
    source: str = Field(..., description="The prognosis table read (in <workdir>/prognostics).")
    updated_at: datetime = Field(..., description="When that table was written.")


class ReloadRequest(_Strict):
    """Which model to load: an alias or a version (default: what the settings name)."""

    alias: str | None = Field(None, min_length=1, max_length=64)
    version: int | None = Field(None, ge=1)


class ReloadResponse(BaseModel):
    """The model now served and the one it replaced."""

    model: ModelInfo
    previous: ModelInfo | None
    load_ms: float


class Readiness(BaseModel):
    """Whether the service can score; ``degraded`` when a store is down but scoring still works."""

    status: Literal["ready", "degraded", "unready"]
    model: ModelInfo | None
    score_store: str
    feature_store: str


class Problem(BaseModel):
    """A refused request: the field at fault and what to do."""

    error: str
    field: str | None
    detail: str
