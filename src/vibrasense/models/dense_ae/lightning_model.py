"""Lightning wrapper of :class:`DenseAutoencoder` for training; inference uses the torch module alone."""

from __future__ import annotations

from vibrasense.models.dense_ae.torch_model import DenseAutoencoder
from vibrasense.models.lightning_autoencoder import ReconstructionLightning


class DenseAELightning(ReconstructionLightning):
    """MSE training of the DCASE 2020 baseline autoencoder on normalised frame-context vectors."""

    def __init__(self, n_inputs: int, z_dim: int, learning_rate: float) -> None:
        super().__init__(DenseAutoencoder(n_inputs, z_dim=z_dim), learning_rate)
        self.save_hyperparameters()
