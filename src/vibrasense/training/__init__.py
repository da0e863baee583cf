"""Training and evaluation: fit a detector on normal recordings, evaluate it, track and register it.

``train_and_register(settings, features_dir)`` trains and registers a detector; ``promote(settings)``
moves ``champion`` when the challenger wins on labelled data. Loading models for scoring is the
inference and registry packages' work, not this one's.
"""

from vibrasense.training.promotion import promote
from vibrasense.training.train import TrainingResult, build_detector, evaluate, train_and_register

__all__ = ["TrainingResult", "build_detector", "evaluate", "promote", "train_and_register"]
