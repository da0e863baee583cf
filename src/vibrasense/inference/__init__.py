"""Inference: load a model folder and score raw samples, with nothing from training (no Lightning, no MLflow).

The scoring service, the pipeline and an edge box share this package; ``ModelScorer.from_directory`` reads
the detector, the feature spec it was trained on and the inputs it needs.
"""

from vibrasense.features.threads import limit_process_threads
from vibrasense.inference.model_inputs import ModelInputs
from vibrasense.inference.scorer import ExplainingScorer, ModelScorer, Scorer, Verdict, explained_verdict


def __getattr__(name: str) -> object:
    """``Explanation`` on first use: its module imports the detectors (scikit-learn, torch), which ONNX scoring
    (:mod:`vibrasense.inference.onnx_runtime`) does without."""
    if name == "Explanation":
        from vibrasense.inference.explanation import Explanation

        return Explanation
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ExplainingScorer",
    "Explanation",
    "ModelInputs",
    "ModelScorer",
    "Scorer",
    "Verdict",
    "explained_verdict",
    "limit_process_threads",
]
