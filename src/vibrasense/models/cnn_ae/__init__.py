"""Convolutional autoencoder on log-mel patches."""

from vibrasense.models.cnn_ae.detector import CnnAEDetector

__all__ = ["CnnAEDetector"]
