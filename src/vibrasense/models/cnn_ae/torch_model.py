"""The convolutional autoencoder as a plain torch module: what inference loads, without Lightning."""

from __future__ import annotations

import itertools

import torch
from torch import nn

STAGES = 4  # stride-2 convolutions, each doubling the channels of the one before


def _down(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel_size=3, stride=2, padding=1), nn.BatchNorm2d(c_out), nn.ReLU())


def _up(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ConvTranspose2d(c_in, c_out, kernel_size=3, stride=2, padding=1, output_padding=1),
        nn.BatchNorm2d(c_out),
        nn.ReLU(),
    )


class CnnAutoencoder(nn.Module):
    """Log-mel patches (batch, 1, n_mels, frames) -> four stride-2 convolutions of ``base_channels`` doubling
    (1-8-16-32-64 by default) -> z_dim -> back.

    ``n_mels`` and ``frames`` must be multiples of 16 (four halvings); the output has the input's shape.
    """

    def __init__(self, n_mels: int = 128, frames: int = 32, z_dim: int = 40, base_channels: int = 8) -> None:
        super().__init__()
        if n_mels % 16 or frames % 16:
            raise ValueError(f"n_mels ({n_mels}) and patch frames ({frames}) must be multiples of 16")
        widths = tuple(base_channels * 2**stage for stage in range(STAGES))
        self.code_shape = (widths[-1], n_mels // 16, frames // 16)
        flat = widths[-1] * (n_mels // 16) * (frames // 16)
        channels = (1, *widths)
        self.encoder = nn.Sequential(*(_down(a, b) for a, b in itertools.pairwise(channels)))
        self.to_code = nn.Linear(flat, z_dim)
        self.from_code = nn.Sequential(nn.Linear(z_dim, flat), nn.ReLU())
        reversed_channels = channels[::-1]
        ups = [_up(a, b) for a, b in itertools.pairwise(reversed_channels[:-1])]
        self.decoder = nn.Sequential(
            *ups,
            nn.ConvTranspose2d(widths[0], 1, kernel_size=3, stride=2, padding=1, output_padding=1),
        )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The z_dim code of each patch."""
        return self.to_code(self.encoder(x).flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        code = self.from_code(self.encode(x)).view(-1, *self.code_shape)
        return self.decoder(code)
