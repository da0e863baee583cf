"""Lightning wrapper of :class:`CnnAutoencoder` for training; inference uses the torch module alone."""

from __future__ import annotations

from vibrasense.models.cnn_ae.torch_model import CnnAutoencoder
from vibrasense.models.lightning_autoencoder import ReconstructionLightning


class CnnAELightning(ReconstructionLightning):
    """MSE training of the convolutional autoencoder on normalised log-mel patches."""

    def __init__(self, n_mels: int, frames: int, z_dim: int, base_channels: int, learning_rate: float) -> None:
        super().__init__(CnnAutoencoder(n_mels, frames, z_dim, base_channels), learning_rate)
        self.save_hyperparameters()
