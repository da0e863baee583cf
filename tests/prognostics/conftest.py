"""Runs to failure for the prognostics tests, each made or featurised once per session.

The six FEMTO learning runs (IEEE PHM 2012, Nectoux et al.) are featurised once (the level features the health
index uses) and kept in the prognostics feature cache inside pytest's cache folder: later sessions read them
back in a second; a changed zip or feature spec misses the cache and featurises again.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from vibrasense.config import load_settings
from vibrasense.prognostics.runs import load_run
from vibrasense.signals.synthetic import write_run_to_failure

FEMTO = ("Bearing1_1", "Bearing1_2", "Bearing2_1", "Bearing2_2", "Bearing3_1", "Bearing3_2")
HEALTH_COLUMNS = ("vib_rms", "vib_peak")


@pytest.fixture(scope="session")
def femto_runs(
    shared_data: Path, pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, pd.DataFrame]:
    """vib_rms and vib_peak of every snapshot of the six FEMTO learning runs, by bearing."""
    store = getattr(pytestconfig, "cache", None)  # absent under -p no:cacheprovider
    cache = store.mkdir("vibrasense-femto-features") if store else None
    folder = Path(cache) if cache else tmp_path_factory.mktemp("femto-features")
    settings = load_settings(None)
    return {
        name: load_run(
            shared_data / "femto" / f"{name}.zip", settings, columns=HEALTH_COLUMNS, cache_dir=folder, workers=2
        )
        for name in FEMTO
    }


@pytest.fixture(scope="session")
def synthetic_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """Synthetic runs to failure of 120 and 150 snapshots (FEMTO layout), by length."""
    root = tmp_path_factory.mktemp("runs")
    return {n: write_run_to_failure(root, f"bearing_{n}", n, seed=n) for n in (120, 150)}
