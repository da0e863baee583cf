"""``cnn-ae``: convolutional autoencoder on log-mel patches (batch, 1, n_mels, patch_frames)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from vibrasense.errors import ModelError
from vibrasense.models.autoencoder import AutoencoderDetector
from vibrasense.models.cnn_ae.torch_model import CnnAutoencoder


class CnnAEDetector(AutoencoderDetector):
    """Trains on non-overlapping ``patch_frames`` patches; scores one every ``score_hop_frames`` (overlapping
    when less than the patch; None: one patch after another). ``base_channels`` is the width of the first
    convolution (doubling after it)."""

    name = "cnn-ae"
    added_params: ClassVar[dict[str, Any]] = {"base_channels": 32}

    def __init__(
        self,
        z_dim: int = 40,
        base_channels: int = 8,
        patch_frames: int = 32,
        score_hop_frames: int | None = None,
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
        self.base_channels = base_channels
        self.patch_frames = patch_frames
        self.score_hop_frames = score_hop_frames

    @property
    def window(self) -> int:
        return self.patch_frames

    @property
    def train_hop(self) -> int:
        return self.patch_frames

    @property
    def score_hop(self) -> int:
        return self.patch_frames if self.score_hop_frames is None else self.score_hop_frames

    def _fit(self, X: Any, **fit_options: Any) -> np.ndarray:
        if self.base_channels < 1:
            raise ModelError(f"{self.name}: base_channels={self.base_channels}; the first convolution needs at least 1")
        return super()._fit(X, **fit_options)

    def legacy_params(self) -> dict[str, Any]:
        return super().legacy_params() | {"score_hop_frames": self.patch_frames}

    def build_module(self, n_mels: int) -> CnnAutoencoder:
        return CnnAutoencoder(n_mels, self.patch_frames, self.z_dim, self.base_channels)

    def build_lightning(self, n_mels: int) -> Any:
        from vibrasense.models.cnn_ae.lightning_model import CnnAELightning

        return CnnAELightning(n_mels, self.patch_frames, self.z_dim, self.base_channels, self.learning_rate)

    def to_input(self, windows: np.ndarray) -> np.ndarray:
        # (batch, frames, mels) -> (batch, 1, mels, frames): mel bands are the image height
        return np.ascontiguousarray(windows.transpose(0, 2, 1)[:, None], dtype=np.float32)

    def from_input(self, batch: np.ndarray) -> np.ndarray:
        return batch[:, 0].transpose(0, 2, 1)
