"""Airflow DAGs of the retraining pipeline: the same steps as `vibrasense pipeline run`, one task each.

Airflow lives in its own virtual environment (``.venv-airflow``, `make airflow`); every task runs its step in the
project's environment (``VIBRASENSE_PYTHON``, default ``.venv/bin/python`` beside this folder) through
``@task.external_python``, calling :func:`vibrasense.pipelines.retraining.run_step`. The configuration comes from
the environment as for the CLI (``VIBRASENSE_CONFIG``, ``VIBRASENSE_WORKDIR``, ``VIBRASENSE_<SECTION>__<FIELD>``).

- ``vibrasense_retraining``: daily, and whenever the drift watch triggers it; one run at a time. A task retried
  after a crash resumes its step (steps are idempotent and recorded in ``<workdir>/pipeline/state.json``).
- ``vibrasense_drift_watch``: hourly, checks recent recordings and scores against the champion's reference
  (`vibrasense drift`) and triggers the retraining when a machine drifted.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import dag, task

PYTHON = os.environ.get("VIBRASENSE_PYTHON", str(Path(__file__).resolve().parents[1] / ".venv" / "bin" / "python"))
STEPS = ("ingest", "materialize", "drift", "train", "promote", "reload")
"""The pipeline's steps in order (tests check this equals ``vibrasense.pipelines.retraining.STEPS``)."""
TRIGGER = "{{ (dag_run.conf or {}).get('trigger', 'scheduled') }}"
DEFAULTS = {"retries": 2, "retry_delay": timedelta(minutes=1)}


def run_step(step: str, trigger: str) -> dict:
    """One pipeline step in the project's environment (imports happen there, not in Airflow's)."""
    from vibrasense.cli import quiet_libraries
    from vibrasense.config import load_settings
    from vibrasense.pipelines.retraining import run_step as run

    quiet_libraries()
    return run(load_settings(os.environ.get("VIBRASENSE_CONFIG")), step, trigger)


def check_drift() -> bool:
    """Recent features and scores against the champion's reference; True when a machine drifted."""
    from datetime import UTC, datetime, timedelta

    from vibrasense.cli.common import parse_duration
    from vibrasense.config import load_settings
    from vibrasense.errors import InputError
    from vibrasense.monitoring.publish import record_check
    from vibrasense.monitoring.recent import recent_drift

    settings = load_settings(os.environ.get("VIBRASENSE_CONFIG"))
    now = datetime.now(UTC)
    try:
        report = recent_drift(settings, now - timedelta(seconds=parse_duration(settings.drift.since)))
    except InputError as error:  # nothing recorded or scored lately: nothing has drifted
        print(f"no drift check: {error}")
        return False
    record_check(settings, report, settings.workdir / "drift" / now.strftime("%Y%m%dT%H%M%SZ"))
    return report.drifted


@dag(
    dag_id="vibrasense_retraining",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULTS,
    tags=["vibrasense"],
    doc_md=__doc__,
)
def vibrasense_retraining() -> None:
    """Ingest → features → materialise → drift → challenger → promotion → reload, each step once."""
    previous = None
    for step in STEPS:
        current = task.external_python(task_id=step, python=PYTHON, expect_airflow=False)(run_step)(step, TRIGGER)
        if previous is not None:
            previous >> current
        previous = current


@dag(
    dag_id="vibrasense_drift_watch",
    schedule="@hourly",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULTS,
    tags=["vibrasense"],
)
def vibrasense_drift_watch() -> None:
    """Check drift; when a machine drifted, trigger the retraining with ``trigger=drift``."""
    drifted = task.short_circuit(task_id="drifted")(lambda value: bool(value))
    checked = task.external_python(task_id="check_drift", python=PYTHON, expect_airflow=False)(check_drift)()
    retrain = TriggerDagRunOperator(
        task_id="trigger_retraining", trigger_dag_id="vibrasense_retraining", conf={"trigger": "drift"}
    )
    drifted(checked) >> retrain


vibrasense_retraining()
vibrasense_drift_watch()
