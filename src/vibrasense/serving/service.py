"""Scoring without HTTP: decode a recording, check it, score it, diagnose its bearing, record the verdict.

The API's scoring endpoints are thin calls into :class:`ScoringService`; a script or a gateway (MQTT)
uses it the same way, with no web framework::

    service = ScoringService(settings, scorer).start()
    verdict = service.score(Upload(Path("clip.wav").read_bytes(), machine_id="fan-1"))
    service.close()

The request's bearing and shaft speed go to the model as its :class:`SignalContext` (the model falls back to
the context recorded at training); a column the model needs but cannot compute is refused naming the field.

Every verdict goes through alarm management (:class:`~vibrasense.serving.alarm_manager.AlarmManager`): a
recording quieter than the machine's running RMS is not scored (state ``not_running``), an accelerometer of a
machine with an ISO class gets its severity zone, and the sensor's and the machine's states come back with the
verdict; :meth:`ScoringService.observe_summary` and :meth:`ScoringService.machine_status` serve a gateway.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, BinaryIO

from vibrasense.config import Settings
from vibrasense.errors import InputError, ModelError, StoreError, redact
from vibrasense.inference import Scorer, explained_verdict
from vibrasense.inference.domain import far_from_machine_message, unknown_domain_message
from vibrasense.serving.alarm_manager import AlarmManager, overall_rms
from vibrasense.serving.diagnosis import diagnose_bearing
from vibrasense.serving.drift_status import DriftCollector
from vibrasense.serving.metrics import ServingMetrics
from vibrasense.serving.model import ModelSlot, ScorerLoader, describe, load_registered_scorer, warm_up
from vibrasense.serving.recordings import (
    Recording,
    check_sample_rate,
    check_samples,
    decode_audio,
    decode_pcm,
    pick_channel,
)
from vibrasense.serving.schemas import (
    DEFAULT_SENSOR,
    UNASSIGNED_MACHINE,
    VALIDATION_CONTEXT_KEY,
    BatchItemError,
    BatchResponse,
    MachineStatus,
    ModelInfo,
    ReloadResponse,
    ScoreRequest,
    ScoreResponse,
)
from vibrasense.serving.scores import ScoreRow, ScoreStore, new_score_id
from vibrasense.signals.records import SignalContext

log = logging.getLogger(__name__)

SCORE_SPOOL_FILE = "score-spool.db"
"""The score spool in the work directory: verdicts answered and not yet confirmed by the score store."""


@dataclass(frozen=True)
class Upload:
    """An audio file as sent (WAV, FLAC, OGG...) and what the sender said about it; ``field`` names it in errors.

    ``data`` is the file's bytes or a binary file object (an upload's spooled file), read in place.
    """

    data: bytes | BinaryIO
    machine_id: str | None = None
    bearing: str | None = None
    shaft_hz: float | None = None
    channel: int | None = None
    field: str = "file"
    sensor: str | None = None


ScoringItem = ScoreRequest | Upload
"""One recording to score: JSON samples or PCM (a validated :class:`ScoreRequest`), or an audio file."""


def domain_detail(verdict: tuple, model: str, machine_id: str) -> str | None:
    """What to tell about a recording beyond the model's domain limit: an unknown domain, or a machine the model
    was trained on sounding far from its training recordings; ``None`` within the limit (or for a custom scorer's
    plain tuple)."""
    distance = getattr(verdict, "domain_distance", None)
    if getattr(verdict, "unknown_domain", False):
        return unknown_domain_message(model, distance)
    if getattr(verdict, "far_from_training", False):
        return far_from_machine_message(model, machine_id, distance)
    return None


def model_info(scorer: Scorer | None) -> ModelInfo | None:
    """Name and version of a scorer, for responses."""
    return None if scorer is None else ModelInfo(name=scorer.name, version=str(scorer.version))


class ScoringService:
    """The model slot, the score store and the metrics, and what turns one recording into a recorded verdict."""

    def __init__(
        self,
        settings: Settings,
        scorer: Scorer | None = None,
        *,
        store: ScoreStore | None = None,
        metrics: ServingMetrics | None = None,
        loader: ScorerLoader = load_registered_scorer,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or ServingMetrics()
        self.store = store or ScoreStore(
            settings.score_store_url,
            settings.workdir / SCORE_SPOOL_FILE,
            on_drop=self.metrics.score_store_dropped.inc,
            on_replay=self.metrics.score_store_replayed.inc,
        )
        self.metrics.watch_score_store(self.store)
        self.metrics.registry.register(DriftCollector(settings.workdir))
        self.alarms = AlarmManager(settings, self.store, self.metrics)
        self.slot = ModelSlot(scorer)
        self.loader = loader
        self.started_at = datetime.now(UTC)

    @property
    def validation_context(self) -> dict[str, Any]:
        """The pydantic validation context of request bodies: these serving settings (the sample-rate range)."""
        return {VALIDATION_CONTEXT_KEY: self.settings.serving}

    @property
    def warm_rate(self) -> float:
        """Warm-up recordings use the rate audio is featurised at, the one the model sees most."""
        return float(self.settings.signals.sample_rate)

    def start(self) -> ScoringService:
        """Load (if none was given) and warm the model, then start the score store's writer."""
        if self.slot.scorer is None:
            self.slot.reload(lambda: self.loader(self.settings, None), self.warm_rate)
        else:
            warm_up(self.slot.require(), self.warm_rate)
        scorer = self.slot.require()
        self.metrics.set_model(scorer.name, str(scorer.version))
        self.metrics.model_reloads.labels("startup").inc()
        self.store.start()
        self.alarms.start()
        return self

    def close(self) -> None:
        """Stop the alarm sync, write the scores still queued and release the store."""
        self.alarms.close()
        self.store.close()

    def reload(self, target: str | int | None = None) -> ReloadResponse:
        """Load the model ``target`` names (default: the settings'), warm it, then swap it in.

        Requests in flight finish on the model they started with; a failed load keeps the current model.
        """
        started = time.perf_counter()
        try:
            scorer, previous = self.slot.reload(lambda: self.loader(self.settings, target), self.warm_rate)
        except Exception as error:  # a loader may fail in many ways; the current model keeps serving
            self.metrics.model_reloads.labels("failed").inc()
            current = self.slot.scorer
            still = f"still serving {describe(current)}" if current else "no model loaded"
            reason = redact(error)  # a store's error may carry its URI, password and all
            log.warning("model reload (%s) failed: %s", target, reason)
            kind = StoreError if isinstance(error, StoreError) else ModelError  # a store down: 503, retry later
            raise kind(f"cannot load model {target or 'from settings'} ({still}): {reason}") from None
        self.metrics.model_reloads.labels("ok").inc()
        self.metrics.set_model(scorer.name, str(scorer.version))
        return ReloadResponse(
            model=ModelInfo(name=scorer.name, version=str(scorer.version)),
            previous=model_info(previous),
            load_ms=(time.perf_counter() - started) * 1000,
        )

    def decode(self, item: ScoringItem, scorer: Scorer, prefix: str = "") -> Recording:
        """The checked recording of an item: one channel (the one asked for, else the model's), finite samples."""
        model_channel = getattr(scorer, "channel", self.settings.signals.channel)
        if isinstance(item, Upload):
            samples, sample_rate = decode_audio(
                item.data, self.settings, channel=item.channel, model_channel=model_channel, field=item.field
            )
            field, machine_id, context = item.field, item.machine_id, SignalContext(item.bearing, item.shaft_hz)
        else:
            sample_rate = item.sample_rate
            check_sample_rate(sample_rate, self.settings, prefix + "sample_rate")
            if item.samples is not None:
                field, samples = prefix + "samples", item.samples  # float32 already (schemas.Samples)
            else:
                field = prefix + "pcm_base64"
                frames = decode_pcm(item.pcm_base64 or "", item.dtype, item.channels, field, self.settings)
                samples = pick_channel(frames, item.channel, model_channel, prefix + "channel")
            machine_id, context = item.machine_id, SignalContext(item.bearing, item.shaft_hz)
        return Recording(
            samples=check_samples(samples, sample_rate, self.settings, field),
            sample_rate=float(sample_rate),
            machine_id=machine_id or UNASSIGNED_MACHINE,
            context=context,
            field=field,
        )

    def score(
        self,
        item: ScoringItem,
        scorer: Scorer | None = None,
        prefix: str = "",
        *,
        score_id: str | None = None,
        scored_at: datetime | None = None,
        explain: bool = False,
    ) -> ScoreResponse:
        """Decode, check and score one recording, diagnose its bearing if named, and record the verdict.

        The verdict is on its way to the score store (through the durable spool) before it is returned; when it
        cannot be queued the call raises :class:`StoreError` rather than answer a score that would be lost.

        ``scorer`` (default: the one in use now) is read once, so a reload never changes a recording in flight.
        ``score_id`` (default: a new one) makes a verdict sent twice stored once; ``scored_at`` (default: now)
        is the snapshot's own time. A machine that is not running (overall RMS below ``alarms.running_rms``) is
        not scored: its score and threshold are null and its state ``not_running``. A tabular model explains every
        score; ``explain`` asks an autoencoder for its explanation too (one more pass through it).
        """
        started = time.perf_counter()
        scorer = scorer or self.slot.require()
        recording = self.decode(item, scorer, prefix)
        context = recording.context
        sensor = item.sensor or DEFAULT_SENSOR
        machine_id = recording.machine_id
        rms = overall_rms(recording.samples)
        if not self.alarms.running(machine_id, scorer, rms):
            return self._not_running(recording, sensor, scorer, rms, started, score_id, scored_at)
        try:
            zone = self.alarms.severity(machine_id, sensor, recording.samples, recording.sample_rate)
            verdict = explained_verdict(
                scorer, recording.samples, recording.sample_rate, context, machine_id, explain=explain
            )
            score, threshold, is_anomaly = verdict[:3]
            unknown_domain = getattr(verdict, "unknown_domain", False)  # a custom scorer may return a plain tuple
            diagnosis = None
            if context.bearing:
                diagnosis = diagnose_bearing(
                    recording.samples, recording.sample_rate, context.bearing, context.shaft_hz
                )
        except InputError as error:
            raise InputError(
                recording.field if error.source == "samples" else prefix + error.source, error.reason
            ) from None
        except (ValueError, FloatingPointError) as error:
            raise InputError(
                recording.field, f"model {describe(scorer)} cannot score this recording: {error}"
            ) from None
        at = scored_at or datetime.now(UTC)
        result = self.alarms.observe(
            machine_id,
            sensor,
            at,
            running=True,
            scorer=scorer,
            score=float(score),
            threshold=float(threshold),
            zone=zone,
            score_withheld=unknown_domain,
        )
        seconds = time.perf_counter() - started
        response = ScoreResponse(
            machine_id=machine_id,
            sensor=sensor,
            score=float(score),
            threshold=float(threshold),
            is_anomaly=bool(is_anomaly),
            unknown_domain=unknown_domain,
            domain_distance=getattr(verdict, "domain_distance", None),
            detail=domain_detail(verdict, describe(scorer), machine_id),
            state=result.state,
            machine_state=result.machine_state,
            zone=zone,
            overall_rms=rms,
            model=ModelInfo(name=scorer.name, version=str(scorer.version)),
            processing_ms=seconds * 1000,
            sample_rate=recording.sample_rate,
            duration_s=recording.duration,
            scored_at=at,
            score_id=score_id or new_score_id(),
            diagnosis=diagnosis,
            explanation=verdict.explanation,
        )
        self._record(response, seconds)
        return response

    def _not_running(
        self,
        recording: Recording,
        sensor: str,
        scorer: Scorer,
        rms: float,
        started: float,
        score_id: str | None,
        scored_at: datetime | None,
    ) -> ScoreResponse:
        """The verdict on a machine that is off: no model call, no alarm, state ``not_running``."""
        at = scored_at or datetime.now(UTC)
        result = self.alarms.observe(recording.machine_id, sensor, at, running=False, scorer=scorer)
        seconds = time.perf_counter() - started
        response = ScoreResponse(
            machine_id=recording.machine_id,
            sensor=sensor,
            score=None,
            threshold=None,
            is_anomaly=False,
            state=result.state,
            machine_state=result.machine_state,
            overall_rms=rms,
            model=ModelInfo(name=scorer.name, version=str(scorer.version)),
            processing_ms=seconds * 1000,
            sample_rate=recording.sample_rate,
            duration_s=recording.duration,
            scored_at=at,
            score_id=score_id or new_score_id(),
        )
        self._record(response, seconds)
        return response

    def observe_summary(self, machine_id: str, sensor: str, values: dict[str, float], at: datetime) -> MachineStatus:
        """A summary-only smart sensor's values (``velocity_rms_mm_s``, ``peak_acceleration_g``,
        ``temperature_c``): ISO zone and trend alarms without a model; returns the machine's status."""
        return self.alarms.observe_summary(machine_id, sensor, values, at)

    def machine_status(self, machine_id: str) -> MachineStatus:
        """The machine's managed state, each sensor's, and its open alarms (the gateway publishes it)."""
        return self.alarms.machine_status(machine_id)

    def score_batch(
        self, items: Sequence[ScoringItem | InputError], scorer: Scorer | None = None, *, explain: bool = False
    ) -> BatchResponse:
        """Score every item with one model; a refused item (or one given as its :class:`InputError`) is reported."""
        started = time.perf_counter()
        scorer = scorer or self.slot.require()
        results: list[ScoreResponse] = []
        errors: list[BatchItemError] = []
        for index, item in enumerate(items):
            try:
                if isinstance(item, InputError):
                    raise item
                prefix = "" if isinstance(item, Upload) else f"recordings[{index}]."
                results.append(self.score(item, scorer, prefix, explain=explain))
            except InputError as error:
                self.metrics.reject(error.source)
                errors.append(BatchItemError(index=index, field=error.source, detail=error.reason))
        return BatchResponse(results=results, errors=errors, processing_ms=(time.perf_counter() - started) * 1000)

    def _record(self, response: ScoreResponse, seconds: float) -> None:
        self.metrics.observe_score(response.machine_id, response.is_anomaly, seconds, response.unknown_domain)
        self.store.record(
            ScoreRow(
                machine_id=response.machine_id,
                scored_at=response.scored_at,
                score=response.score,
                threshold=response.threshold,
                is_anomaly=response.is_anomaly,
                model_name=response.model.name,
                model_version=response.model.version,
                processing_ms=response.processing_ms,
                score_id=response.score_id,
                explanation=response.explanation.model_dump_json() if response.explanation else None,
                sensor=response.sensor,
                state=response.state,
                zone=response.zone.zone if response.zone else None,
                velocity_rms_mm_s=response.zone.velocity_rms_mm_s if response.zone else None,
            )
        )
