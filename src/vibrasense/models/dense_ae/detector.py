"""``dense-ae``: the DCASE 2020 Task 2 baseline, a dense autoencoder on 5-frame log-mel context vectors."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from vibrasense.models.autoencoder import AutoencoderDetector
from vibrasense.models.dense_ae.torch_model import DenseAutoencoder


class DenseAEDetector(AutoencoderDetector):
    """Context vectors of n_mels x ``context_frames``: trained on one every ``train_hop_frames``, scored on one
    every ``score_hop_frames`` (the DCASE baseline scores every frame: 1)."""

    name = "dense-ae"
    added_params: ClassVar[dict[str, Any]] = {"score_hop_frames": 1}

    def __init__(
        self,
        z_dim: int = 8,
        context_frames: int = 5,
        train_hop_frames: int = 1,
        score_hop_frames: int = 4,
        learning_rate: float = 1e-3,
        max_epochs: int = 30,
        batch_size: int = 64,
        validation_fraction: float = 0.2,
        early_stopping_patience: int = 5,
        accelerator: str = "auto",
        seed: int = 42,
        threshold_method: str = "percentile",
        threshold_percentile: float = 95.0,
        score_aggregation: str = "band-offset-spread",
    ) -> None:
        super().__init__(
            z_dim,
            learning_rate,
            max_epochs,
            batch_size,
            validation_fraction,
            early_stopping_patience,
            accelerator,
            seed,
            threshold_method,
            threshold_percentile,
            score_aggregation,
        )
        self.context_frames = context_frames
        self.train_hop_frames = train_hop_frames
        self.score_hop_frames = score_hop_frames

    @property
    def window(self) -> int:
        return self.context_frames

    @property
    def train_hop(self) -> int:
        return self.train_hop_frames

    @property
    def score_hop(self) -> int:
        return self.score_hop_frames

    def build_module(self, n_mels: int) -> DenseAutoencoder:
        return DenseAutoencoder(n_mels * self.context_frames, z_dim=self.z_dim)

    def build_lightning(self, n_mels: int) -> Any:
        from vibrasense.models.dense_ae.lightning_model import DenseAELightning

        return DenseAELightning(n_mels * self.context_frames, self.z_dim, self.learning_rate)

    def to_input(self, windows: np.ndarray) -> np.ndarray:
        # frames concatenated one after another, as the baseline's vector of 5 x 128 = 640 values
        return np.ascontiguousarray(windows.reshape(len(windows), -1), dtype=np.float32)

    def from_input(self, batch: np.ndarray) -> np.ndarray:
        return batch.reshape(len(batch), self.context_frames, -1)
