"""``vibrasense pipeline run|step|status``: the retraining pipeline, locally (the Airflow DAG runs the same steps)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from vibrasense.cli.common import console, settings

pipeline_app = typer.Typer(
    help="The retraining pipeline: ingest, features, store, drift, challenger, promotion, reload.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    """Add the ``pipeline`` group."""
    app.add_typer(pipeline_app, name="pipeline")


def _config(inputs: list[Path] | None, service_url: str | None, retrain: str | None) -> Any:
    return settings(pipeline={"inputs": inputs or None, "service_url": service_url, "retrain": retrain})


@pipeline_app.command("run")
def run(
    inputs: list[Path] | None = typer.Argument(
        None, help="Recordings to ingest (default: pipeline.inputs, else <workdir>/inbox)."
    ),
    force: bool = typer.Option(False, help="Retrain even when no recording is new since the last run."),
    service_url: str | None = typer.Option(None, help="The running service to tell to reload (pipeline.service_url)."),
    retrain: str | None = typer.Option(None, help="always | on_drift (pipeline.retrain)."),
) -> None:
    """Run every step, resuming a run that was interrupted; a step already done is not redone.

    Steps: ingest (features of new recordings) -> materialize (Feast online store) -> drift (against the champion's
    training reference) -> train (a challenger) -> promote (only if it beats the champion on the same labelled set)
    -> reload (tell the service). Exit status 0 when the run finished (promoted or not), the error's otherwise.
    """
    from vibrasense.pipelines.retraining import run_pipeline

    config = _config(inputs, service_url, retrain)

    def show(step: str, result: dict[str, Any]) -> None:
        console.print(f"[bold]{step}[/]: {_summary(result)}", highlight=False)

    state = run_pipeline(config, trigger="forced" if force else "manual", on_step=show)
    console.print(f"run {state.run_id} finished; state: {config.workdir / 'pipeline' / 'state.json'}")


@pipeline_app.command("step")
def step(
    name: str = typer.Argument(..., help="ingest | materialize | drift | train | promote | reload"),
    trigger: str = typer.Option("manual", help="What started the run (scheduled, drift, manual, forced)."),
) -> None:
    """Run one step of the open run (``ingest`` opens one): what a scheduler calls, task by task."""
    from vibrasense.pipelines.retraining import run_step

    result = run_step(_config(None, None, None), name, trigger)
    console.print(f"[bold]{name}[/]: {_summary(result)}", highlight=False)


@pipeline_app.command("status")
def status() -> None:
    """The latest run: its steps, when each finished, and what it produced."""
    from vibrasense.pipelines.retraining import STEPS, pipeline_store

    state = pipeline_store(settings()).current()
    if state is None:
        console.print("no pipeline run yet")
        return
    table = Table("step", "done at", "result", title=f"run {state.run_id} ({state.trigger}), "
                  + (f"finished {state.finished_at}" if state.finished_at else "open"))  # fmt: skip
    for name in STEPS:
        record = state.steps.get(name)
        table.add_row(name, record.done_at if record else "-", _summary(record.result) if record else "")
    console.print(table)


SHOWN_METRICS = ("auc", "pauc", "f1")


def _summary(result: dict[str, Any]) -> str:
    """The step's result in one line: metrics cut to the headline ones."""
    shown = {
        key: {m: round(v, 4) for m, v in value.items() if m in SHOWN_METRICS} if key.endswith("metrics") else value
        for key, value in result.items()
    }
    return json.dumps(shown)
