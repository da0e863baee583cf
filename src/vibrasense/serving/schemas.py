"""What the API reads and writes, and every rule on a request field, stated once.

Each field rule is one ``Annotated`` type (:data:`MachineId`, :data:`BearingPreset`, :data:`ShaftHz`,
:data:`Channel`, :data:`SampleRate`) that the JSON models, the form fields of the uploads and the path
parameters all use, so a value is refused the same way wherever it is sent, and FastAPI generates the
OpenAPI from these types. Patterns match the whole value: ``"abc\\n"`` is not a machine id.

The sample-rate range is configuration (``serving.min_sample_rate`` .. ``serving.max_sample_rate``): it
comes with the validation context (``{"serving": ServingSettings}``) and, in the OpenAPI, with the JSON
schema generator :func:`serving_json_schema`; without either the defaults apply.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
)
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

from vibrasense.config import ServingSettings
from vibrasense.inference import Explanation
from vibrasense.serving.drift_status import MachineDriftStatus
from vibrasense.signals.bearings import PRESETS

MACHINE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$"
UNASSIGNED_MACHINE = "unassigned"
"""The machine id of a recording sent without one."""
MAX_BATCH = 64
"""Recordings in one batch request, at most."""
MAX_CHANNELS = 64
"""Channels of a multi-channel recording, at most."""
VALIDATION_CONTEXT_KEY = "serving"
_SERVING_RATES = "vibrasense_serving_sample_rates"
_DEFAULT_SERVING = ServingSettings()


# -- field rules ------------------------------------------------------------------------------------

MACHINE_ID_RULE = "1-128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit"


def _machine_id(value: Any, handler: ValidatorFunctionWrapHandler) -> str:
    try:
        return handler(value)
    except ValidationError:
        raise PydanticCustomError("machine_id", f"not a machine id: use {MACHINE_ID_RULE}") from None


MachineId = Annotated[
    str,
    StringConstraints(pattern=MACHINE_ID_PATTERN),
    WrapValidator(_machine_id),
    Field(description=f"Machine recorded: {MACHINE_ID_RULE}.", examples=["fan-03"]),
]
SensorId = Annotated[
    str,
    StringConstraints(pattern=MACHINE_ID_PATTERN),
    WrapValidator(_machine_id),
    Field(
        description=f"Sensor of the machine (x, y, z, mic...): {MACHINE_ID_RULE}; default 'default'.", examples=["x"]
    ),
]
DEFAULT_SENSOR = "default"
"""The sensor of a recording sent without one."""
State = Literal["not_running", "ok", "warning", "alarm"]
"""Alarm state of a sensor or a machine (see the README, "Alarm management")."""
BearingPreset = Annotated[
    Literal[tuple(PRESETS)],  # type: ignore[valid-type]
    Field(
        description="Bearing preset: the bearing features of the model use it, and the verdict carries a defect "
        "diagnosis."
    ),
]
ShaftHz = Annotated[
    float,
    Field(
        gt=0,
        le=1000,
        allow_inf_nan=False,
        description="Shaft speed in Hz, for the bearing features and the diagnosis (default: the preset's usual).",
    ),
]
Channel = Annotated[
    int,
    Field(
        ge=0,
        lt=MAX_CHANNELS,
        description="Channel of a multi-channel recording to score (default: the one the model was trained on); "
        "a mono recording is its own channel.",
    ),
]


def sample_rate_problem(sample_rate: float, serving: ServingSettings) -> str | None:
    """Why ``sample_rate`` is refused under ``serving``'s range, or ``None`` when it is accepted."""
    low, high = serving.min_sample_rate, serving.max_sample_rate
    if low <= sample_rate <= high:
        return None
    return f"sample rate {sample_rate:g} Hz is outside serving.min_sample_rate..max_sample_rate ({low}..{high} Hz)"


@dataclass(frozen=True)
class WithinServingRates:
    """Metadata of :data:`SampleRate`: the rate must lie in the serving settings' range (see the module)."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        schema = handler(source)
        schema.setdefault("metadata", {})[_SERVING_RATES] = True
        return core_schema.with_info_after_validator_function(_within_serving_rates, schema)


def _within_serving_rates(sample_rate: float, info: ValidationInfo) -> float:
    serving = (info.context or {}).get(VALIDATION_CONTEXT_KEY) or _DEFAULT_SERVING
    problem = sample_rate_problem(sample_rate, serving)
    if problem is not None:
        raise PydanticCustomError("sample_rate_range", problem)
    return sample_rate


SampleRate = Annotated[
    float,
    Field(gt=0, allow_inf_nan=False, description="Samples per second (Hz).", examples=[16000]),
    WithinServingRates(),
]


class ServingJsonSchema(GenerateJsonSchema):
    """JSON schemas whose :data:`SampleRate` fields state the range of :attr:`serving`."""

    serving: ClassVar[ServingSettings] = _DEFAULT_SERVING

    def float_schema(self, schema: core_schema.FloatSchema) -> JsonSchemaValue:
        json_schema = super().float_schema(schema)
        if schema.get("metadata", {}).get(_SERVING_RATES):
            json_schema |= {"minimum": self.serving.min_sample_rate, "maximum": self.serving.max_sample_rate}
        return json_schema


def serving_json_schema(serving: ServingSettings) -> type[GenerateJsonSchema]:
    """The JSON schema generator for an app with these serving settings."""
    return type("ServingJsonSchema", (ServingJsonSchema,), {"serving": serving})


@dataclass(frozen=True)
class Float32Samples:
    """Metadata of :data:`Samples`: a JSON list of numbers, validated into one float32 array.

    A list arriving in Python is converted (a number beyond float32 becomes infinite, and is refused later
    as such); a placeholder string that :mod:`vibrasense.serving.json_body` put in a body stands for the array
    it parsed, found in the validation context under :data:`PARSED_SAMPLES_KEY` (or the error it found).
    The JSON schema is the list's.
    """

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.with_info_wrap_validator_function(
            _float32_samples, core_schema.list_schema(core_schema.float_schema())
        )


PARSED_SAMPLES_KEY = "vibrasense_parsed_samples"
SAMPLES_ERRORS = frozenset({"too_many_samples", "not_a_number"})
"""Error types of parsed samples: their message is whole (the placeholder is not shown as the input)."""


def _float32_samples(value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> np.ndarray:
    if isinstance(value, str):
        parsed = (info.context or {}).get(PARSED_SAMPLES_KEY) or {}
        if value in parsed:
            found = parsed[value]
            if isinstance(found, PydanticCustomError):
                raise found
            return found
    values = handler(value)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.fromiter(values, dtype=np.float32, count=len(values))


Samples = Annotated[np.ndarray, Float32Samples()]


# -- request bodies ---------------------------------------------------------------------------------


def _json_integer(value: Any) -> Any:
    """JSON Schema's ``integer`` in a strict body: 3 and 3.0 are the same number; "3" and true are not numbers."""
    if isinstance(value, bool | str):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


JsonInteger = BeforeValidator(_json_integer)
"""With ``Field(strict=False)``: an integer field of a strict JSON body, as JSON Schema reads one."""
BASE64_PATTERN = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{4})$"

ONLY_SAMPLES: dict[str, Any] = {"required": ["samples"], "properties": {"samples": {"type": "array"}}}
ONLY_PCM: dict[str, Any] = {"required": ["pcm_base64"], "properties": {"pcm_base64": {"type": "string"}}}
"""A :class:`ScoreRequest` has exactly one of them, as the OpenAPI states with ``oneOf``."""


class _Strict(BaseModel):
    """A JSON body that takes what its schema says and nothing else: no unknown field, no "5" or true for 5."""

    model_config = ConfigDict(extra="forbid", strict=True)


class ScoreRequest(_Strict):
    """One recording as JSON: ``samples`` (mono, any scale) or ``pcm_base64`` (little-endian PCM of ``dtype``)."""

    model_config = ConfigDict(json_schema_extra={"oneOf": [ONLY_SAMPLES, ONLY_PCM]})

    sample_rate: SampleRate
    pcm_base64: str | None = Field(
        None, pattern=BASE64_PATTERN, description="Base64 of interleaved little-endian PCM frames."
    )
    dtype: Literal["int16", "int32", "float32", "float64"] = Field("int16", description="PCM sample type.")
    channels: Annotated[int, JsonInteger] = Field(
        1, ge=1, le=MAX_CHANNELS, strict=False, description="Interleaved channels in pcm_base64."
    )
    channel: Annotated[Channel, Field(strict=False), JsonInteger] | None = None
    samples: Samples | None = Field(None, validate_default=True, description="Mono samples, any scale.")
    machine_id: MachineId | None = None
    sensor: SensorId | None = None
    bearing: BearingPreset | None = None
    shaft_hz: ShaftHz | None = None

    @field_validator("samples")
    @classmethod
    def _one_source(cls, samples: np.ndarray | None, info: ValidationInfo) -> np.ndarray | None:
        if "pcm_base64" in info.data and (samples is None) == (info.data["pcm_base64"] is None):
            raise PydanticCustomError("one_source", "give exactly one of 'samples' (numbers) or 'pcm_base64'")
        return samples


class BatchRequest(_Strict):
    """Several recordings as JSON; a refused one is reported and the others are scored."""

    recordings: list[ScoreRequest] = Field(..., min_length=1, max_length=MAX_BATCH)


class ReloadRequest(_Strict):
    """Which model to load: an alias or a version (default: what the settings name)."""

    alias: str | None = Field(None, min_length=1, max_length=64)
    version: Annotated[int, Field(ge=1, strict=False), JsonInteger] | None = None


# -- responses --------------------------------------------------------------------------------------


class ModelInfo(BaseModel):
    """The registered model that produced a score."""

    name: str
    version: str


class SeverityReading(BaseModel):
    """ISO 10816-1: velocity RMS in 10-1000 Hz and its zone for the machine's class."""

    velocity_rms_mm_s: float
    zone: Literal["A", "B", "C", "D"]
    machine_class: Literal["I", "II", "III", "IV"]


class DiagnosisPeak(BaseModel):
    """One spectral line of a diagnosis's evidence."""

    label: str = Field(..., description="The line, e.g. BPFO, 2xBPFI, 1xBPFI-29.9 (a sideband at - the shaft rate).")
    kind: Literal["fundamental", "harmonic", "sideband", "modulation"]
    expected_hz: float = Field(..., description="Where the bearing's kinematics put the line at the shaft speed used.")
    found_hz: float = Field(..., description="The strongest envelope-spectrum bin within slip tolerance of it.")
    snr: float = Field(..., description="Its amplitude as a multiple of the local floor of the envelope spectrum.")


class BearingDiagnosis(BaseModel):
    """Which defect a bearing has, from its envelope spectrum, with the peak, harmonics and sidebands behind it."""

    available: bool = Field(..., description="False when the diagnosis module cannot be imported (see reason).")
    reason: str | None = None
    verdict: Literal["outer_race", "inner_race", "rolling_element", "cage", "none"] | None = None
    confidence: float | None = Field(None, ge=0, le=1)
    scores: dict[str, float] | None = Field(None, description="Each hypothesis's score; 2.5 is the detection level.")
    evidence: list[DiagnosisPeak] = Field(
        default_factory=list, description="The verdict's fundamental first, then its harmonics and sidebands found."
    )
    band_hz: tuple[float, float] | None = Field(None, description="The band whose envelope was analysed.")
    bearing: str | None = Field(
        None, description="The bearing the verdict is about: the one named, or another on its shaft (heard through it)."
    )
    sensor_bearing: str | None = Field(None, description="The bearing the request named (under the sensor).")
    shaft_hz: float | None = Field(None, description="The shaft speed the defect lines were computed at.")
    shaft_rpm: float | None = None
    speed_source: Literal["user", "file", "layout", "search", "nominal"] | None = Field(
        None,
        description="Where shaft_hz came from: the request (user), or searched around the preset's usual speed "
        "(search; nominal: searched, nothing supported, the usual speed shown).",
    )
    speed_basis: Literal["shaft_harmonics", "defect_lines"] | None = Field(
        None, description="What a searched speed rests on."
    )
    defect_hz: dict[str, float] | None = Field(None, description="BPFO, BPFI, BSF and FTF at shaft_hz.")


class ScoreResponse(BaseModel):
    """The verdict on one recording."""

    machine_id: str
    sensor: str = Field(DEFAULT_SENSOR, description="The machine's sensor recorded.")
    score: float | None = Field(
        ..., description="Anomaly score: higher is more anomalous; null when the machine was not running."
    )
    threshold: float | None = Field(
        ..., description="Scores above this are anomalies (learned from normal data); null when not running."
    )
    is_anomaly: bool
    unknown_domain: bool = Field(
        False,
        description="The recording lies far outside everything the model was trained on (another machine, another "
        "sensor) and names no machine it was trained on: its score says nothing about this machine, it is no anomaly "
        "and raises no score alarm; see detail.",
    )
    domain_distance: float | None = Field(
        None,
        description="Distance to the nearest normal training recording, in units of their own spacing (about 1 or "
        "less for the trained machines' recordings; beyond the model's domain limit, `training.domain_limit`, an "
        "unknown domain unless machine_id is a trained machine's); null for a model trained before it was kept.",
    )
    detail: str | None = Field(
        None,
        description="What to do about a recording beyond the domain limit (an unknown domain, or a trained machine's "
        "recording far from its training recordings); null otherwise.",
    )
    state: State = Field("ok", description="The sensor's alarm state after this recording.")
    machine_state: State = Field("ok", description="The machine's state: its worst running sensor's.")
    zone: SeverityReading | None = Field(
        None, description="ISO 10816-1 severity; null without a machine class configured, or for a microphone."
    )
    overall_rms: float | None = Field(
        None, description="RMS of the samples as sent (mean removed): below alarms.running_rms the machine is off."
    )
    model: ModelInfo
    processing_ms: float = Field(..., description="Time to decode, check and score the recording, milliseconds.")
    sample_rate: float
    duration_s: float
    scored_at: datetime
    score_id: str = Field(..., description="Unique id of this verdict in the score store.")
    diagnosis: BearingDiagnosis | None = Field(
        None, description="Bearing defect diagnosis, when the request names a bearing preset."
    )
    explanation: Explanation | None = Field(
        None,
        description="What drove the score: a tabular model's top feature contributions (every score), an "
        "autoencoder's worst mel bands, time span and band × time error map (with ?explain=true); null otherwise.",
    )


SCORE_ID_PATTERN = r"^[A-Za-z0-9._:\-]{1,36}$"


class ExplainedScore(BaseModel):
    """A stored verdict with what drove it."""

    machine_id: str
    sensor: str
    score_id: str | None
    scored_at: datetime
    score: float | None
    threshold: float | None
    is_anomaly: bool
    model: ModelInfo
    explanation: Explanation


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
    sensor: str = DEFAULT_SENSOR
    scored_at: datetime
    score: float | None
    threshold: float | None
    is_anomaly: bool
    state: State = Field(..., description="The sensor's alarm state after this score.", validation_alias="status")
    zone: str | None = None
    velocity_rms_mm_s: float | None = None
    model_name: str
    model_version: str
    processing_ms: float
    score_id: str | None = Field(None, description="Unique id of the verdict (null for scores stored before ids).")


class SensorStatus(BaseModel):
    """One sensor of a machine: its state and its latest reading."""

    state: State
    score: float | None = None
    threshold: float | None = None
    zone: SeverityReading | None = None
    scored_at: datetime | None = None
    values: dict[str, float] = Field(default_factory=dict, description="A smart sensor's summary values.")


class AlarmEventRecord(BaseModel):
    """One step of an alarm's life."""

    event_id: str
    kind: Literal["raised", "escalated", "acknowledged", "shelved", "unshelved", "cleared"]
    severity: str
    at: datetime
    by: str | None = None
    reason: str | None = None
    value: float | None = None
    shelved_until: datetime | None = None


class AlarmRecord(BaseModel):
    """An alarm of a machine's sensor and condition (score level, score rate of change, ISO zone, recordings
    outside the model's domain)."""

    alarm_id: str
    machine_id: str
    sensor: str
    condition: Literal["score", "rate", "zone", "domain"]
    severity: Literal["warning", "alarm"]
    status: Literal["active", "acknowledged", "shelved", "cleared"]
    raised_at: datetime
    value: float | None = Field(None, description="The score (or velocity, mm/s) that raised or escalated it.")
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    shelved_until: datetime | None = None
    shelved_by: str | None = None
    shelve_reason: str | None = None
    cleared_at: datetime | None = None
    cleared_reason: str | None = None
    events: list[AlarmEventRecord]


class AlarmsResponse(BaseModel):
    """Alarms, newest first."""

    alarms: list[AlarmRecord]


class MachineStatus(BaseModel):
    """A machine's managed state, each sensor's, and its open alarms (also the gateway's retained MQTT status)."""

    machine_id: str
    state: State
    sensors: dict[str, SensorStatus]
    active_alarms: list[AlarmRecord]
    updated_at: datetime


Engineer = Annotated[str, StringConstraints(min_length=1, max_length=256, strip_whitespace=True)]


class AckRequest(_Strict):
    """Who acknowledges the alarm."""

    by: Engineer = Field(..., description="The engineer acknowledging (recorded with the time).")


class ShelveRequest(_Strict):
    """Shelve an alarm: it raises no new alarm for its condition until the shelf expires."""

    by: Engineer
    reason: Annotated[str, StringConstraints(min_length=1, max_length=1024, strip_whitespace=True)]
    duration_s: Annotated[float, JsonInteger] = Field(
        ..., gt=0, le=30 * 24 * 3600, strict=False, description="How long, seconds (at most 30 days)."
    )


class MachineSummary(BaseModel):
    """A machine the service has seen, with its latest score and managed state."""

    machine_id: str
    status: State = Field(..., description="The machine's state: its worst running sensor's.")
    sensors: dict[str, SensorStatus] = Field(default_factory=dict)
    latest: ScoreRecord
    scores: int
    anomalies: int
    features: dict[str, Any] | None = Field(None, description="Latest online features (Feast), if any.")
    features_status: str = Field(..., description="ok, missing, not requested, or why it is unavailable.")


class MachineDetail(BaseModel):
    """A machine's latest score, recent history and latest online features."""

    machine_id: str
    status: State | Literal["unknown"]
    sensors: dict[str, SensorStatus] = Field(default_factory=dict)
    active_alarms: list[AlarmRecord] = Field(default_factory=list)
    latest: ScoreRecord | None
    history: list[ScoreRecord]
    features: dict[str, Any] | None = Field(None, description="Latest online features (Feast), if any.")
    features_status: str = Field(..., description="ok, missing, or why the feature store is unavailable.")


class MachinesResponse(BaseModel):
    """Every machine seen."""

    machines: list[MachineSummary]


class DashboardSensor(SensorStatus):
    """One sensor of a machine on the dashboard."""

    sensor: str


class DashboardMachine(BaseModel):
    """One machine on the dashboard: its state, its sensors, latest verdict and score history (oldest first)."""

    machine_id: str
    status: State
    sensors: list[DashboardSensor]
    score: float | None
    threshold: float | None
    scored_at: datetime
    history: list[tuple[datetime, float | None, float | None, str]] = Field(
        ..., description="(scored_at, score, threshold, state); the score null when the machine was not running."
    )
    drift: MachineDriftStatus | None = Field(None, description="The machine's verdict at the latest drift check.")


class DashboardResponse(BaseModel):
    """Everything the dashboard shows, in one poll."""

    machines: list[DashboardMachine]
    alarms: list[AlarmRecord] = Field(..., description="Open alarms first, then the latest cleared ones.")
    model: ModelInfo | None
    drift_checked_at: datetime | None = Field(None, description="When the latest drift check ran; null: none yet.")
    drift_report: str | None = Field(None, description="Folder of the latest drift check's report.")
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


class ReloadResponse(BaseModel):
    """The model now served and the one it replaced."""

    model: ModelInfo
    previous: ModelInfo | None
    load_ms: float


class Readiness(BaseModel):
    """Whether the service can score; ``degraded`` when a store is down but scoring still works."""

    status: Literal["ready", "degraded", "unready"]
    model: ModelInfo | None
    score_store: str = Field(
        ..., description="ok; unavailable: why; or degraded: N scores spooled (why), until the spool is replayed."
    )
    feature_store: str


class Problem(BaseModel):
    """A refused request: the field at fault and what to do."""

    error: str
    field: str | None
    detail: str
