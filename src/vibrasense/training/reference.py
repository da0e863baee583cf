"""The training reference kept in a model folder: what drift monitoring compares recent recordings with.

``training_reference.parquet`` holds, per recording the model learned from, its machine, time and feature
values, plus the model's score on the recordings it did **not** fit (the test rows, labelled): scores of
fitted rows are lower than any new recording's, and would make every machine look drifted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from vibrasense.inference.training_reference import REFERENCE_FILE
from vibrasense.training.data import TrainingData

META_COLUMNS = ("recording_id", "machine_id", "event_timestamp")


def write_reference(data: TrainingData, test_rows: pd.DataFrame, test_scores: np.ndarray | None, folder: Path) -> Path:
    """Write the training rows (score NaN) and the test rows with their scores into ``folder``.

    ``test_scores`` are the model's scores of ``test_rows`` in order (``None`` when there were none). Drift
    compares with the normal rows only; the anomalous test rows are kept so that they are known, not "recent".
    """
    columns = [*META_COLUMNS, *(c for c in data.spec.columns if c in data.train.columns)]
    train = data.train[columns].assign(label="normal", score=np.nan, fitted=True)
    tested = test_rows[columns].assign(
        label=test_rows["label"].to_numpy(), score=np.nan if test_scores is None else test_scores, fitted=False
    )
    path = folder / REFERENCE_FILE
    pd.concat([train, tested], ignore_index=True).to_parquet(path, index=False)
    return path
