"""Inference: load a model folder and score raw samples, with nothing from training (no Lightning, no MLflow).

The scoring service, the pipeline and an edge box share this package; ``ModelScorer.from_directory`` reads
the detector, the feature spec it was trained on and the inputs it needs.
"""

from vibrasense.features.threads import limit_process_threads
from vibrasense.inference.model_inputs import ModelInputs
from vibrasense.inference.scorer import ModelScorer, Scorer, Verdict

__all__ = ["ModelInputs", "ModelScorer", "Scorer", "Verdict", "limit_process_threads"]
