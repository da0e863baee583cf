"""The model as an MLflow pyfunc: a raw recording in, its score and anomaly flag out.

Input: a DataFrame with either ``path`` (a recording file any vibrasense reader understands; the model's
channel is read) or ``samples`` (1-D float array) and ``sample_rate``; optional ``bearing`` and ``shaft_hz``
for bearing models. Output: ``score``, ``threshold``, ``is_anomaly``, ``unknown_domain`` per row.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types.schema import Array, ColSpec, DataType, Schema

from vibrasense.errors import InputError
from vibrasense.registry.versions import DETECTOR_ARTIFACT
from vibrasense.signals.readers import read_path
from vibrasense.signals.records import SignalContext


class RecordingScorerModel(mlflow.pyfunc.PythonModel):
    """Wraps :class:`vibrasense.inference.ModelScorer` for ``mlflow.pyfunc.load_model``."""

    def load_context(self, context: Any) -> None:
        from vibrasense.inference import ModelScorer

        config = context.model_config or {}
        self.scorer = ModelScorer.from_directory(
            context.artifacts[DETECTOR_ARTIFACT], config.get("name", "vibrasense"), config.get("version", "")
        )

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        rows = []
        for record in model_input.to_dict("records"):
            samples, rate = _recording(record, self.scorer.channel)
            machine_id = record.get("machine_id")
            verdict = self.scorer.score(
                samples, rate, _context(record), machine_id=machine_id if isinstance(machine_id, str) else None
            )
            rows.append(
                {
                    "score": verdict.score,
                    "threshold": verdict.threshold,
                    "is_anomaly": verdict.is_anomaly,
                    "unknown_domain": verdict.unknown_domain,
                }
            )
        return pd.DataFrame(rows, columns=OUTPUT_COLUMNS)


OUTPUT_COLUMNS = ["score", "threshold", "is_anomaly", "unknown_domain"]


def _recording(record: dict[str, Any], channel: int) -> tuple[np.ndarray, float]:
    path = record.get("path")
    if isinstance(path, str) and path:
        signal = read_path(Path(path), channel)
        return signal.samples, float(signal.sample_rate)
    samples, rate = record.get("samples"), record.get("sample_rate")
    if samples is None or rate is None or (isinstance(rate, float) and np.isnan(rate)):
        raise InputError("<model input>", "each row needs `path`, or `samples` and `sample_rate`")
    return np.asarray(samples, dtype=np.float32), float(rate)


def _context(record: dict[str, Any]) -> SignalContext:
    bearing, shaft_hz = record.get("bearing"), record.get("shaft_hz")
    return SignalContext(
        bearing=bearing if isinstance(bearing, str) and bearing else None,
        shaft_hz=float(shaft_hz) if isinstance(shaft_hz, int | float) and np.isfinite(shaft_hz) else None,
    )


def signature() -> ModelSignature:
    """Input: path, or samples + sample_rate (and optionally bearing, shaft_hz, machine_id); output: score,
    threshold, is_anomaly, unknown_domain."""
    inputs = Schema(
        [
            ColSpec(DataType.string, "path", required=False),
            ColSpec(Array(DataType.double), "samples", required=False),
            ColSpec(DataType.double, "sample_rate", required=False),
            ColSpec(DataType.string, "bearing", required=False),
            ColSpec(DataType.double, "shaft_hz", required=False),
            ColSpec(DataType.string, "machine_id", required=False),
        ]
    )
    outputs = Schema(
        [
            ColSpec(DataType.double, "score"),
            ColSpec(DataType.double, "threshold"),
            ColSpec(DataType.boolean, "is_anomaly"),
            ColSpec(DataType.boolean, "unknown_domain"),
        ]
    )
    return ModelSignature(inputs=inputs, outputs=outputs)


def input_example(sample_rate: int) -> pd.DataFrame:
    """Half a second of low noise given as samples (a path example would not exist where it is read)."""
    rng = np.random.default_rng(0)
    samples = (0.01 * rng.standard_normal(sample_rate // 2)).astype(np.float64)
    return pd.DataFrame({"samples": [samples.tolist()], "sample_rate": [float(sample_rate)]})
