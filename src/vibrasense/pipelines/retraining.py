"""One retraining pipeline: new recordings → features → feature store → drift check → challenger → promotion
→ the running service reloads. ``vibrasense pipeline run`` and the Airflow DAG (``dags/``) both call
:func:`run_step` for each step, so there is one definition of what each step does.

Idempotent: a step's record is written only after its effects, and each effect can be redone without a
duplicate — features are incremental (a recording already extracted is not extracted again), materialising
writes each machine's latest values, the challenger is found again by its MLflow tag
``vibrasense.pipeline_run`` (a version registered by a killed run is reused, not trained twice), promotion
compares the two aliases as they are. A failed or worse challenger never moves ``champion``; the service
keeps serving the old champion until it is told to reload, and a reload that fails leaves it serving.

Fault injection for tests: ``VIBRASENSE_PIPELINE_KILL_AFTER=<step>`` kills the process (SIGKILL) right after
that step's effects and before its record, the worst moment to die.
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from vibrasense.config import Settings
from vibrasense.errors import InputError, ModelError, OutputError, StoreError, redact
from vibrasense.features.pipeline import extract_features, features_under_spec, read_features
from vibrasense.inference.training_reference import normal_reference
from vibrasense.monitoring.drift import detect_drift
from vibrasense.monitoring.publish import record_check
from vibrasense.monitoring.recent import champion_reference
from vibrasense.pipelines.run_state import RunState, RunStore, StepRecord

log = logging.getLogger(__name__)

STEPS = ("ingest", "materialize", "drift", "train", "promote", "reload")
RUN_TAG = "vibrasense.pipeline_run"
KILL_AFTER_ENV = "VIBRASENSE_PIPELINE_KILL_AFTER"


@dataclass(frozen=True)
class StepContext:
    """What a step reads: the settings, the run so far, and the folders of this pipeline."""

    settings: Settings
    state: RunState

    @property
    def features_dir(self) -> Path:
        """Where the pipeline's features accumulate."""
        return self.settings.workdir / "features"

    @property
    def run_dir(self) -> Path:
        """Outputs of this run (the drift report)."""
        return self.settings.workdir / "pipeline" / "runs" / self.state.run_id

    @property
    def up_to_date(self) -> bool:
        """The ingest step found nothing new since the last finished run."""
        return bool(self.state.result("ingest").get("up_to_date"))


def pipeline_store(settings: Settings) -> RunStore:
    """The run records of this work directory."""
    return RunStore(settings.workdir / "pipeline")


def inputs(settings: Settings) -> list[Path]:
    """Where new recordings are read from: ``pipeline.inputs``, else ``<workdir>/inbox``."""
    return list(settings.pipeline.inputs) or [settings.workdir / "inbox"]


def ingest(ctx: StepContext) -> dict[str, Any]:
    """Extract features of every new or changed recording (incremental); note whether anything is new."""
    sources = [path for path in inputs(ctx.settings) if path.exists()]
    if not sources:
        raise InputError(
            "pipeline.inputs",
            f"none of {[str(p) for p in inputs(ctx.settings)]} exists: put recordings there or set pipeline.inputs",
        )
    run = extract_features(sources, ctx.features_dir, ctx.settings, progress=False)
    dataset = dataset_hash(ctx.features_dir)
    last = pipeline_store(ctx.settings).last_finished()
    previous = (last or {}).get("steps", {}).get("ingest", {}).get("result", {}).get("dataset")
    return {
        "processed": run.processed,
        "unchanged": run.unchanged,
        "skipped": len(run.skipped),
        "dataset": dataset,
        "up_to_date": previous == dataset and ctx.state.trigger != "forced",
    }


def dataset_hash(features_dir: Path) -> str:
    """SHA-256 (16 hex digits) of the recordings and feature values in a features folder."""
    table = read_features(features_dir).sort_values("recording_id", kind="stable")
    hashed = pd.util.hash_pandas_object(table.drop(columns=["event_timestamp"]), index=False)
    return hashlib.sha256(hashed.to_numpy().tobytes()).hexdigest()[:16]


def materialize(ctx: StepContext) -> dict[str, Any]:
    """Write the Feast repository for the features, apply it, and materialise the latest values online."""
    from vibrasense.store import apply, materialize, write_repo

    write_repo(ctx.settings, ctx.features_dir / "features.parquet")
    apply(ctx.settings)
    result = materialize(ctx.settings, progress=False)
    return {"rows": result.rows, "machines": result.machines, "seconds": round(result.seconds, 3)}


def drift(ctx: StepContext) -> dict[str, Any]:
    """Compare the recordings the champion has never seen, under its own feature spec, with its training reference."""
    if _alias_version(ctx.settings, "champion") is None:
        return {"drifted": None, "reason": "no champion yet: nothing to compare with"}
    champion = champion_reference(ctx.settings, "champion")
    name, reference = champion.name, champion.table
    table = read_features(features_under_spec(ctx.features_dir, champion.spec, ctx.settings))  # as it sees them
    new = table[~table["recording_id"].isin(reference["recording_id"])]
    if new.empty:
        return {"drifted": False, "reason": f"every recording was known to {name}"}
    report = detect_drift(
        normal_reference(reference),
        new,
        ctx.settings.drift,
        reference_name=f"training reference of {name}",
        current_name=f"{len(new)} recordings new to it",
    )
    record_check(ctx.settings, report, ctx.run_dir / "drift")
    drifted = [m.machine_id for m in report.machines if m.drifted]
    return {"drifted": report.drifted, "machines": drifted, "report": str(ctx.run_dir / "drift" / "drift.html")}


def train(ctx: StepContext) -> dict[str, Any]:
    """Train and register a challenger (the first version becomes champion), unless retraining waits for drift."""
    from vibrasense.training import train_and_register

    drifted = ctx.state.result("drift").get("drifted")
    if ctx.settings.pipeline.retrain == "on_drift" and drifted is False:
        return {"trained": False, "reason": "pipeline.retrain is on_drift and no drift was detected"}
    existing = _version_of_run(ctx.settings, ctx.state.run_id)
    if existing is not None:
        return {"trained": True, "version": existing, "reused": True}
    result = train_and_register(ctx.settings, ctx.features_dir, tags={RUN_TAG: ctx.state.run_id})
    return {"trained": True, "version": result.model_version, "alias": result.alias, "metrics": result.metrics}


def promote(ctx: StepContext) -> dict[str, Any]:
    """Make the challenger champion only if it beats the champion on the same labelled recordings."""
    from vibrasense.training import promote as promote_if_better

    trained = ctx.state.result("train")
    if not trained.get("trained"):
        return {"promoted": False, "reason": "no challenger was trained"}
    version = str(trained["version"])
    champion = _alias_version(ctx.settings, "champion")
    if champion == version and _alias_version(ctx.settings, "challenger") is None:
        return {"promoted": True, "champion": version, "reason": f"v{version} is the champion"}
    result = promote_if_better(ctx.settings, ctx.settings.pipeline.evaluation or ctx.features_dir)
    return {
        "promoted": result.promoted,
        "champion": result.challenger_version if result.promoted else result.champion_version,
        "reason": result.reason,
        "champion_metrics": result.champion_metrics,
        "challenger_metrics": result.challenger_metrics,
    }


def reload(ctx: StepContext) -> dict[str, Any]:
    """Tell the running service to load the champion (when the champion changed and a service is configured)."""
    url = ctx.settings.pipeline.service_url
    if url is None:
        return {"reloaded": False, "reason": "no pipeline.service_url: the service loads the champion when it starts"}
    if not ctx.state.result("promote").get("promoted"):
        return {"reloaded": False, "reason": "the champion did not change"}
    key = ctx.settings.serving.api_key
    headers = {"X-API-Key": key.get_secret_value()} if key else {}
    try:
        response = httpx.post(
            f"{url.rstrip('/')}/v1/models/reload", headers=headers, timeout=ctx.settings.pipeline.reload_timeout_s
        )
    except httpx.HTTPError as error:
        raise StoreError(f"cannot reach the service at {redact(url)} to reload it: {error}") from None
    if response.status_code != 200:
        raise ModelError(f"the service at {redact(url)} refused the reload ({response.status_code}): {response.text}")
    return {"reloaded": True, "model": response.json()["model"]}


STEP_FUNCTIONS: dict[str, Callable[[StepContext], dict[str, Any]]] = {
    "ingest": ingest,
    "materialize": materialize,
    "drift": drift,
    "train": train,
    "promote": promote,
    "reload": reload,
}


def run_step(settings: Settings, step: str, trigger: str = "manual") -> dict[str, Any]:
    """Run ``step`` of the current run (starting a run at ``ingest`` when none is open); a done step is not redone.

    After ``ingest`` found nothing new, the later steps record that and do nothing.
    """
    if step not in STEP_FUNCTIONS:
        raise InputError("step", f"{step!r} is not a pipeline step; the steps are {', '.join(STEPS)}")
    store = pipeline_store(settings)
    state = open_run(store, trigger) if step == STEPS[0] else store.current()
    if state is None or state.finished_at is not None:
        raise InputError("step", f"no pipeline run is open: run the {STEPS[0]!r} step first")
    missing = [s for s in STEPS[: STEPS.index(step)] if not state.done(s)]
    if missing:
        raise InputError("step", f"{step!r} needs {missing[0]!r} first in run {state.run_id}")
    if state.done(step):
        return state.result(step)
    ctx = StepContext(settings, state)
    if step != STEPS[0] and ctx.up_to_date:
        result: dict[str, Any] = {"skipped": True, "reason": "no new or changed recordings since the last run"}
    else:
        result = STEP_FUNCTIONS[step](ctx)
    if os.environ.get(KILL_AFTER_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)
    state.steps[step] = _record(result)
    store.save(state)
    if step == STEPS[-1]:
        store.finish(state)
    return result


def open_run(store: RunStore, trigger: str) -> RunState:
    """The unfinished run to resume, else a new one (a finished run's history is completed first)."""
    state = store.current()
    if state is not None and state.finished_at is None:
        return state
    if state is not None:
        store.finish(state)
    state = RunState(trigger=trigger)
    store.save(state)
    return state


def run_pipeline(
    settings: Settings, trigger: str = "manual", on_step: Callable[[str, dict[str, Any]], None] | None = None
) -> RunState:
    """Every step in order, resuming an interrupted run; returns the finished run."""
    for step in STEPS:
        result = run_step(settings, step, trigger)
        if on_step is not None:
            on_step(step, result)
    state = pipeline_store(settings).current()
    if state is None:
        raise OutputError(f"the pipeline state in {pipeline_store(settings).path} disappeared during the run")
    return state


def _record(result: dict[str, Any]) -> StepRecord:
    return StepRecord(done_at=datetime.now(UTC).isoformat(), result=result)


def _alias_version(settings: Settings, alias: str) -> str | None:
    from vibrasense.registry import tracking_client
    from vibrasense.registry.versions import alias_version

    if not _registry_exists(settings):
        return None
    found = alias_version(tracking_client(settings), settings.tracking.registered_model, alias)
    return str(found.version) if found else None


def _registry_exists(settings: Settings) -> bool:
    uri = settings.tracking_uri
    return not uri.startswith("sqlite:///") or Path(uri.removeprefix("sqlite:///")).is_file()


def _version_of_run(settings: Settings, run_id: str) -> str | None:
    """The version a (possibly killed) earlier attempt of this pipeline run registered; orphan runs are closed."""
    from vibrasense.registry import experiment_id, tracking_client

    if not _registry_exists(settings):
        return None
    client = tracking_client(settings)
    experiment = experiment_id(client, settings, settings.tracking.experiment)
    runs = client.search_runs([experiment], filter_string=f"tags.`{RUN_TAG}` = '{run_id}'")
    name = settings.tracking.registered_model
    for run in runs:
        versions = client.search_model_versions(f"name = '{name}' and run_id = '{run.info.run_id}'")
        if versions:
            return str(versions[0].version)
        if run.info.status == "RUNNING":
            client.set_terminated(run.info.run_id, "KILLED")  # a killed attempt: closed, never registered
    return None
