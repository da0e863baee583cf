"""Training, evaluation, MLflow tracking and the model registry.

``train_and_register(settings, features_dir)`` trains and registers a detector; ``load_scorer(settings,
"champion")`` returns what the scoring service needs; ``promote_if_better(settings)`` moves ``champion``.
"""

from vibrasense.training.registry import (
    Promotion,
    VersionInfo,
    list_versions,
    load_registered_detector,
    load_scorer,
    promote_if_better,
)
from vibrasense.training.train import TrainingResult, build_detector, evaluate, train_and_register

__all__ = [
    "Promotion",
    "TrainingResult",
    "VersionInfo",
    "build_detector",
    "evaluate",
    "list_versions",
    "load_registered_detector",
    "load_scorer",
    "promote_if_better",
    "train_and_register",
]
