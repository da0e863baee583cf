"""The DCASE 2020 Task 2 baseline autoencoder as a plain torch module (inference needs no Lightning)."""

from __future__ import annotations

import torch
from torch import nn


def _dense(n_in: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, n_out), nn.BatchNorm1d(n_out), nn.ReLU())


class DenseAutoencoder(nn.Module):
    """Frame-context vectors (batch, n_mels * frames) -> 128-128-128-128-z-128-128-128-128 -> back (linear)."""

    def __init__(self, n_inputs: int = 640, hidden: int = 128, z_dim: int = 8) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            _dense(n_inputs, hidden),
            _dense(hidden, hidden),
            _dense(hidden, hidden),
            _dense(hidden, hidden),
            _dense(hidden, z_dim),
        )
        self.decoder = nn.Sequential(
            _dense(z_dim, hidden),
            _dense(hidden, hidden),
            _dense(hidden, hidden),
            _dense(hidden, hidden),
            nn.Linear(hidden, n_inputs),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))
