"""The Lightning side of the autoencoders: MSE reconstruction, Adam, per-epoch losses. Training only."""

from __future__ import annotations

import lightning
import torch
from torch import nn


class ReconstructionLightning(lightning.LightningModule):
    """Trains a torch autoencoder (``self.model``) to reconstruct its input under MSE."""

    def __init__(self, model: nn.Module, learning_rate: float) -> None:
        super().__init__()
        self.model = model
        self.learning_rate = learning_rate

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return self.model(batch)

    def _loss(self, batch: torch.Tensor) -> torch.Tensor:
        return nn.functional.mse_loss(self.model(batch), batch)

    def training_step(self, batch: torch.Tensor, batch_index: int) -> torch.Tensor:
        loss = self._loss(batch)
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(batch))
        return loss

    def validation_step(self, batch: torch.Tensor, batch_index: int) -> torch.Tensor:
        loss = self._loss(batch)
        self.log("val_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(batch))
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.model.parameters(), lr=self.learning_rate)


class LossHistory(lightning.Callback):
    """Keeps train_loss and val_loss of every epoch, for tracking."""

    def __init__(self) -> None:
        self.epochs: list[dict[str, float]] = []

    def on_train_epoch_end(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule) -> None:
        metrics = trainer.callback_metrics
        row = {"epoch": float(trainer.current_epoch)}
        for key in ("train_loss", "val_loss"):
            if key in metrics:
                row[key] = float(metrics[key])
        self.epochs.append(row)
