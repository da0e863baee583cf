"""What the two autoencoders share: normalisation, windowing, Lightning training, scoring, state on disk.

Input ``X`` is a sequence of log-mel spectrograms (frames, n_mels), typically lazy memory-mapped views of
the log-mel store: windows are sliced one batch at a time, never all stacked in RAM. Windows are
standardised per mel band with the mean and standard deviation of the training frames (saved with the
model). The score of a recording aggregates the reconstruction residuals of its windows over time
(``score_aggregation``):

- ``band-offset-spread`` (default): the larger of the two scores below, each in units of what a new normal
  clip scores (its mean over the held-out validation clips, which the weights and band statistics never
  saw; over the training clips when none is held out). A fault shows in one or the other: on MIMII fan id_00
  the faulty clips' bands fluctuate less (``band-spread`` AUC 1.000 with cnn-ae, ``band-offset`` 0.925),
  while a clogged filter or a new tone shifts a band's mean (``band-offset``). Each part alone misses the
  other kind; their sum lets the offsets, which an autoencoder fits closely on its own clips (a new clip's
  offset score is 3-80x a training clip's), drown the spread.
- ``band-offset``: the mean signed residual of each mel band over the clip, standardised by its spread over
  the normal training clips (at least the median spread of the bands: a band the model fits too closely on
  its training clips would weigh far more on new ones); the score is the mean of their squares. Frame
  noise averages out while a persistent change of the spectrum (a fan's imbalance, a clogged filter) stays.
- ``band-spread``: the log standard deviation of each band's residual over the clip, standardised the same
  way; the score is the mean of their squares. It follows a change in how the sound fluctuates (steadier or
  rougher) that leaves the mean spectrum alone.
- ``mean``: the mean reconstruction MSE over windows, as the DCASE 2020 Task 2 baseline scores.

Folders saved before ``band-offset`` existed (no offset statistics) load with the scoring they were
trained and thresholded with: ``mean`` over the windows of their time (:meth:`AutoencoderDetector.legacy_params`);
folders saved with another aggregation keep it (it is one of their saved parameters).
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vibrasense.errors import ModelError
from vibrasense.models.base import Detector
from vibrasense.models.windows import take_window, window_offsets

log = logging.getLogger(__name__)

WEIGHTS_FILE = "weights.pt"
STATE_FILE = "normalisation.json"
SCORE_BATCH = 256
AGGREGATIONS: tuple[str, ...] = ("band-offset-spread", "band-offset", "band-spread", "mean")
MIN_OFFSET_STD = 1e-3  # floor of the offsets' spread when it is zero in most bands (e.g. one training clip)
MIN_RESIDUAL_VARIANCE = 1e-12  # keeps the log of a band's residual variance finite
MIN_REFERENCE_SCORE = 1e-12  # keeps a part of band-offset-spread finite when normal clips score 0 on it


class AutoencoderDetector(Detector):
    """Base of the log-mel autoencoders; subclasses define the window, the torch module and its input shape.

    A subclass's constructor lists every hyper-parameter (its own and these), as scikit-learn's
    ``get_params`` reads them from that signature.
    """

    input_kind = "logmel"

    def __init__(
        self,
        z_dim: int,
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
        super().__init__(threshold_method, threshold_percentile)
        self.score_aggregation = score_aggregation
        self.z_dim = z_dim
        self.learning_rate = learning_rate
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.validation_fraction = validation_fraction
        self.early_stopping_patience = early_stopping_patience
        self.accelerator = accelerator
        self.seed = seed

    # -- what each autoencoder defines -------------------------------------------------------------

    @property
    def window(self) -> int:
        """Frames per window."""
        raise NotImplementedError

    @property
    def train_hop(self) -> int:
        """Frames between training windows."""
        raise NotImplementedError

    @property
    def score_hop(self) -> int:
        """Frames between scored windows."""
        return self.train_hop

    def legacy_params(self) -> dict[str, Any]:
        """Hyper-parameters that score as folders saved before ``band-offset`` scoring were scored."""
        return {"score_aggregation": "mean"}

    def build_module(self, n_mels: int) -> nn.Module:
        """The torch module (inference)."""
        raise NotImplementedError

    def build_lightning(self, n_mels: int) -> Any:
        """The Lightning module wrapping a new torch module (training)."""
        raise NotImplementedError

    def to_input(self, windows: np.ndarray) -> np.ndarray:
        """Normalised windows (batch, window, n_mels) shaped as the module's input."""
        raise NotImplementedError

    def from_input(self, batch: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`to_input`: module-shaped values back as (batch, window, n_mels)."""
        raise NotImplementedError

    # -- fitting ---------------------------------------------------------------------------------------

    def _fit(self, X: Sequence[np.ndarray], checkpoint_dir: Path | str | None = None, **_: Any) -> np.ndarray:
        import lightning

        from vibrasense.models.lightning_autoencoder import LossHistory
        from vibrasense.models.lightning_data import LogMelDataModule

        if not log.isEnabledFor(logging.DEBUG):
            # Lightning sets its own loggers to INFO when imported; its device banners and tips are noise here
            for name in ("lightning.pytorch", "lightning.fabric"):
                logging.getLogger(name).setLevel(logging.WARNING)

        if self.score_aggregation not in AGGREGATIONS:
            raise ModelError(
                f"{self.name}: score_aggregation={self.score_aggregation!r} is unknown; "
                f"choose one of {list(AGGREGATIONS)}"
            )
        if not 1 <= self.score_hop <= self.window:
            raise ModelError(
                f"{self.name}: the scoring hop is {self.score_hop} frames; it must lie between 1 and the "
                f"{self.window} frames of a window, or frames go unscored"
            )
        lightning.seed_everything(self.seed, verbose=False)
        n_mels = _check_logmel(X, self.name)
        self.n_mels_ = n_mels
        self.mean_, self.std_ = _band_statistics(X)
        train_ids, val_ids = _split_validation(len(X), self.validation_fraction, self.seed)
        data = LogMelDataModule(
            X, train_ids, val_ids, self.window, self.train_hop, self.prepare, self.batch_size, self.seed
        )
        model = self.build_lightning(n_mels)
        history = LossHistory()
        monitor = "val_loss" if len(val_ids) else "train_loss"
        with tempfile.TemporaryDirectory() as scratch:
            checkpoints = Path(checkpoint_dir) if checkpoint_dir else Path(scratch)
            best = lightning.pytorch.callbacks.ModelCheckpoint(
                dirpath=checkpoints, filename=f"{self.name}-{{epoch}}", monitor=monitor, mode="min", save_top_k=1
            )
            trainer = lightning.Trainer(
                max_epochs=self.max_epochs,
                accelerator=self.accelerator,
                devices=1,
                callbacks=[
                    lightning.pytorch.callbacks.EarlyStopping(
                        monitor=monitor, patience=self.early_stopping_patience, mode="min"
                    ),
                    best,
                    history,
                ],
                logger=False,
                enable_progress_bar=log.isEnabledFor(logging.INFO) and _interactive(),
                enable_model_summary=False,
                num_sanity_val_steps=0,
                deterministic="warn",
            )
            trainer.fit(model, datamodule=data)
            if best.best_model_path:
                state = torch.load(best.best_model_path, map_location="cpu", weights_only=True)["state_dict"]
                model.load_state_dict(state)
            self.best_checkpoint_ = best.best_model_path if checkpoint_dir else None
        self.history_ = history.epochs
        self.epochs_trained_ = len(history.epochs)
        self.module_ = model.model.to("cpu").eval()
        # the band statistics from the recordings the weights were fitted on; the validation ones then score as
        # new normal recordings do, and set the threshold (see calibration_ids)
        residuals = [self._residuals(spectrogram) for spectrogram in X]  # one pass: statistics, then the scores
        fitted = [residuals[i] for i in train_ids]
        self.offset_mean_, self.offset_std_ = _clip_statistics(np.stack([r[1] for r in fitted]))
        self.spread_mean_, self.spread_std_ = _clip_statistics(np.stack([r[2] for r in fitted]))
        new = [residuals[i] for i in val_ids] if val_ids else fitted  # as new normal clips score
        self.offset_reference_ = float(np.mean([self._offset_score(r[1]) for r in new]))
        self.spread_reference_ = float(np.mean([self._spread_score(r[2]) for r in new]))
        return np.array([self._aggregate(*r) for r in residuals], dtype=np.float64)

    def calibration_ids(self, X: Sequence[np.ndarray]) -> list[int]:
        """The validation recordings of ``X``, which the weights and band statistics never saw."""
        return _split_validation(len(X), self.validation_fraction, self.seed)[1]

    def prepare(self, windows: np.ndarray) -> np.ndarray:
        """Standardise raw windows (batch, window, n_mels) and shape them for the module."""
        return self.to_input((windows - self.mean_) / self.std_)

    # -- scoring ---------------------------------------------------------------------------------------

    def _score(self, X: Sequence[np.ndarray]) -> np.ndarray:
        return np.array([self.score_one(spectrogram) for spectrogram in X], dtype=np.float64)

    def score_one(self, spectrogram: np.ndarray) -> float:
        """The anomaly score of one spectrogram (frames, n_mels), aggregated as ``score_aggregation`` says."""
        self._check_fitted()
        return self._aggregate(*self._residuals(spectrogram))

    def _aggregate(self, mse: float, offset: np.ndarray, spread: np.ndarray) -> float:
        """The clip score from its residual summaries (:meth:`_residuals`), as ``score_aggregation`` says."""
        if self.score_aggregation == "mean":
            return mse
        if self.score_aggregation == "band-offset":
            return self._offset_score(offset)
        if self.score_aggregation == "band-spread":
            return self._spread_score(spread)
        return max(
            self._offset_score(offset) / max(self.offset_reference_, MIN_REFERENCE_SCORE),
            self._spread_score(spread) / max(self.spread_reference_, MIN_REFERENCE_SCORE),
        )

    def _offset_score(self, offset: np.ndarray) -> float:
        return float(np.mean(((offset - self.offset_mean_) / self.offset_std_) ** 2))

    def _spread_score(self, spread: np.ndarray) -> float:
        return float(np.mean(((spread - self.spread_mean_) / self.spread_std_) ** 2))

    def _residuals(self, spectrogram: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """Mean reconstruction MSE over the windows of one spectrogram, and each band's residual over them all:
        its mean (signed) and the log of its standard deviation."""
        self._check_spectrogram(spectrogram)
        offsets = window_offsets(spectrogram.shape[0], self.window, self.score_hop)
        squared, signed, band_squared = 0.0, np.zeros(self.n_mels_), np.zeros(self.n_mels_)
        with torch.no_grad():
            for start in range(0, len(offsets), SCORE_BATCH):
                chunk = offsets[start : start + SCORE_BATCH]
                windows = np.stack([take_window(spectrogram, int(o), self.window) for o in chunk])
                batch = torch.from_numpy(self.prepare(windows))
                residual = self.module_(batch) - batch
                squared += float((residual**2).flatten(1).mean(dim=1).sum())
                values = self.from_input(residual.numpy())
                signed += values.sum(axis=(0, 1), dtype=np.float64)
                band_squared += (values**2).sum(axis=(0, 1), dtype=np.float64)
        count = len(offsets) * self.window
        offset = signed / count
        variance = np.maximum(band_squared / count - offset**2, MIN_RESIDUAL_VARIANCE)
        return squared / len(offsets), offset, 0.5 * np.log(variance)

    def _check_spectrogram(self, spectrogram: np.ndarray) -> None:
        if spectrogram.ndim != 2 or spectrogram.shape[1] != self.n_mels_ or spectrogram.shape[0] == 0:
            raise ModelError(
                f"{self.name}: expected a log-mel spectrogram (frames, {self.n_mels_}); got {spectrogram.shape}"
            )

    def error_map(self, spectrogram: np.ndarray) -> np.ndarray:
        """Reconstruction error of each frame and band of one spectrogram: (frames, n_mels), float64.

        The squared error of the standardised log-mel, in the windows the score averages, each frame's error the
        mean over the windows that cover it (padding of a recording shorter than a window is left out). One more
        pass through the module than :meth:`score_one`: explanations ask for it, scoring does not.
        """
        self._check_fitted()
        self._check_spectrogram(spectrogram)
        n_frames = spectrogram.shape[0]
        offsets = window_offsets(n_frames, self.window, self.score_hop)
        total = np.zeros((n_frames, self.n_mels_))
        covered = np.zeros(n_frames)
        with torch.no_grad():
            for start in range(0, len(offsets), SCORE_BATCH):
                chunk = offsets[start : start + SCORE_BATCH]
                batch = torch.from_numpy(
                    self.prepare(np.stack([take_window(spectrogram, int(o), self.window) for o in chunk]))
                )
                squared = self.from_input(((self.module_(batch) - batch) ** 2).numpy())  # (chunk, window, n_mels)
                for step in range(min(self.window, n_frames)):
                    np.add.at(total, chunk + step, squared[:, step])
                    np.add.at(covered, chunk + step, 1.0)
        return total / covered[:, None]

    # -- persistence -----------------------------------------------------------------------------------

    def _save_state(self, directory: Path) -> None:
        torch.save(self.module_.state_dict(), directory / WEIGHTS_FILE)
        state = {
            "n_mels": self.n_mels_,
            "mean": self.mean_.tolist(),
            "std": self.std_.tolist(),
            "offset_mean": self.offset_mean_.tolist(),
            "offset_std": self.offset_std_.tolist(),
            "history": self.history_,
        }
        if hasattr(self, "spread_mean_"):  # absent from a folder saved before band-spread, loaded and saved again
            state |= {
                "spread_mean": self.spread_mean_.tolist(),
                "spread_std": self.spread_std_.tolist(),
                "offset_reference": self.offset_reference_,
                "spread_reference": self.spread_reference_,
            }
        (directory / STATE_FILE).write_text(json.dumps(state))

    def _load_state(self, directory: Path) -> None:
        state = json.loads((directory / STATE_FILE).read_text())
        self.n_mels_ = int(state["n_mels"])
        self.mean_ = np.asarray(state["mean"], dtype=np.float32)
        self.std_ = np.asarray(state["std"], dtype=np.float32)
        if "offset_mean" in state:
            self.offset_mean_ = np.asarray(state["offset_mean"], dtype=np.float32)
            self.offset_std_ = np.asarray(state["offset_std"], dtype=np.float32)
            if "spread_mean" in state:
                self.spread_mean_ = np.asarray(state["spread_mean"], dtype=np.float32)
                self.spread_std_ = np.asarray(state["spread_std"], dtype=np.float32)
                self.offset_reference_ = float(state["offset_reference"])
                self.spread_reference_ = float(state["spread_reference"])
        else:
            log.info("%s: %s predates band-offset scoring; scored as it was trained", self.name, directory)
            self.set_params(**self.legacy_params())
        self.history_ = state.get("history", [])
        self.epochs_trained_ = len(self.history_)
        module = self.build_module(self.n_mels_)
        module.load_state_dict(torch.load(directory / WEIGHTS_FILE, map_location="cpu", weights_only=True))
        self.module_ = module.eval()


def _check_logmel(X: Sequence[np.ndarray], name: str) -> int:
    shapes = {np.shape(x)[1] if np.ndim(x) == 2 else None for x in X}
    if None in shapes or len(shapes) != 1:
        raise ModelError(
            f"{name}: needs log-mel spectrograms (frames, n_mels) with one n_mels; got n_mels {shapes} "
            "(pass the log-mel store of `vibrasense features`)"
        )
    if any(len(x) == 0 for x in X):
        raise ModelError(f"{name}: a training spectrogram has no frames; re-run `vibrasense features`")
    return int(shapes.pop())


def _band_statistics(X: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per-band mean and standard deviation over every training frame, streamed one recording at a time."""
    total = sq = None
    count = 0
    for spectrogram in X:
        frames = np.asarray(spectrogram, dtype=np.float64)
        total = frames.sum(0) if total is None else total + frames.sum(0)
        sq = (frames**2).sum(0) if sq is None else sq + (frames**2).sum(0)
        count += len(frames)
    mean = total / count
    std = np.sqrt(np.maximum(sq / count - mean**2, 0.0))
    return mean.astype(np.float32), np.maximum(std, 1e-3).astype(np.float32)


def _clip_statistics(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-band mean and spread of per-clip values (clips, n_mels); the spread at least the bands' median."""
    spread = values.std(0)
    floor = max(float(np.median(spread)), MIN_OFFSET_STD)
    return values.mean(0).astype(np.float32), np.maximum(spread, floor).astype(np.float32)


def _split_validation(n: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Recordings for training and for validation (held-out normal recordings; none when n < 2)."""
    order = np.random.default_rng(seed).permutation(n)
    n_val = min(n - 1, max(1, round(n * fraction))) if n >= 2 else 0
    return sorted(order[n_val:].tolist()), sorted(order[:n_val].tolist())


def _interactive() -> bool:
    return sys.stderr.isatty()
