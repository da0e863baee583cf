"""Fixtures of the serving tests: settings in a fresh work directory, a fitted detector, a started app, and a
bearing prognosis written by the real pipeline."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from synthetic_machines import PROGNOSIS_MACHINE, BandEnergyScorer, fitted_scorer

from vibrasense.config import Settings, load_settings
from vibrasense.serving.app import create_app


@pytest.fixture(scope="session")
def scorer() -> BandEnergyScorer:
    return fitted_scorer()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Defaults in a fresh work directory, with an API key for the reload endpoint."""
    return load_settings(None, workdir=tmp_path, serving={"api_key": "test-key", "max_upload_mb": 2})


@pytest.fixture
def client(settings: Settings, scorer: BandEnergyScorer) -> Iterator[TestClient]:
    """The app with the test scorer, started (lifespan run) and stopped around the test."""
    with TestClient(create_app(settings, scorer)) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def prognosis_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``prognose`` on a small synthetic run to failure: the machine's ``*_prognosis.csv`` (alarm at the end)."""
    from vibrasense.prognostics.report import prognose
    from vibrasense.prognostics.runs import load_run
    from vibrasense.signals.synthetic import write_run_to_failure

    root = tmp_path_factory.mktemp("prognosis")
    # 120 snapshots: the run-in and the healthy baseline (65) come before the defect grows (60 % of life)
    folder = write_run_to_failure(root / "run", name=PROGNOSIS_MACHINE, n_snapshots=120, seed=3)
    run = load_run(folder, load_settings(None, workdir=root / "work"))
    (result,) = prognose(run, root / "work" / "prognostics")
    return result.files[0]
