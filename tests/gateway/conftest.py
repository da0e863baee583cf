"""Fixtures of the gateway tests: a small real champion trained on a synthetic plant, and topics of a test's own.

The champion is trained and registered the way ``vibrasense demo`` does it (features of synthetic machine
sounds, a tabular detector, MLflow on SQLite in the work directory), once per session; each test copies
nothing and gets settings on that work directory with a fresh score store and handled-message record.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from vibrasense.config import Settings, load_settings

CHAMPION_MODEL = "mahalanobis"
SOUND_SECONDS = 1.0


@pytest.fixture(scope="session")
def champion_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A work directory with a registered champion (alias ``champion``) trained on three synthetic pumps."""
    from vibrasense.features.pipeline import extract_features
    from vibrasense.signals.synthetic import write_audio_plant
    from vibrasense.training import train_and_register

    root = tmp_path_factory.mktemp("gateway-champion")
    workdir = root / "work"
    settings = load_settings(None, workdir=workdir, training={"model": CHAMPION_MODEL})
    plant = write_audio_plant(
        root / "plant",
        n_machines=3,
        n_normal_train=32,
        n_test_normal=4,
        n_test_anomaly=4,
        seconds=SOUND_SECONDS,
        seed=7,
    )
    run = extract_features([plant], workdir / "features", settings)
    train_and_register(settings, run.out_dir)
    return workdir


@pytest.fixture
def site() -> str:
    """A site name of the test's own, so retained statuses of other tests never show up."""
    return f"test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def gateway_settings(champion_workdir: Path, tmp_path: Path, site: str) -> Settings:
    """The champion's registry, with this test's own score store, spool, handled record and client id."""
    return load_settings(
        None,
        workdir=tmp_path / "work",
        tracking={"tracking_uri": f"sqlite:///{champion_workdir / 'mlflow.db'}"},
        serving={"score_store_url": f"sqlite:///{tmp_path / 'scores.db'}"},
        gateway={"client_id": f"gw-{site}"[:23], "site": site, "metrics_port": 0, "registry_poll_s": 0},
    )
