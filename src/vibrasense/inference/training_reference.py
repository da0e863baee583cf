"""The training reference in a model folder (``training_reference.parquet``), read without the training stack.

Training writes it (``vibrasense.training.reference``); drift monitoring reads it: per recording the model
learned from or was tested on, its machine, time, label and feature values, and the model's score on the test
recordings (the ones it did not fit).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

REFERENCE_FILE = "training_reference.parquet"


def read_reference(folder: Path) -> pd.DataFrame | None:
    """The reference saved with a model (every recording it learned from or was tested on, with its ``label``),
    or ``None`` for a model trained before references were kept."""
    path = Path(folder) / REFERENCE_FILE
    return pd.read_parquet(path) if path.is_file() else None


def normal_reference(reference: pd.DataFrame) -> pd.DataFrame:
    """The rows drift compares with: the normal ones (training rows and normal test rows)."""
    return reference[reference["label"] == "normal"] if "label" in reference else reference
