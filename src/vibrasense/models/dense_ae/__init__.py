"""The DCASE 2020 Task 2 baseline dense autoencoder."""

from vibrasense.models.dense_ae.detector import DenseAEDetector

__all__ = ["DenseAEDetector"]
