"""cnn-ae training speed (seconds per epoch) and scoring speed (ms per clip) on CPU, each against its floor.

Part 1: seconds per training epoch of cnn-ae over N 10-s 16 kHz clips (default 1,000: 10 patches of
128 x 32 log-mel frames each), from a memory-mapped log-mel store as ``vibrasense train`` reads it, with the
same Lightning module, data module and batch size (64). Reference in the same run: one pass of the
DataLoader alone (slicing and normalising the windows, no model), the data floor.
Part 2: ms per 10-s clip through ``ModelScorer.score`` (raw samples -> log-mel -> cnn-ae -> score), the
path of the scoring service and the MLflow pyfunc, on one thread. Reference: the log-mel extraction alone.

    .venv/bin/python benchmarks/bench_training.py [--clips 1000] [--epochs 2] [--inference-clips 20]

The spectrograms are those of 16 synthetic machine clips (4 machines, normal and anomalous), each copy
shifted in time and level, so no two training clips are equal. Training uses every core torch sees;
scoring runs on one, as the service does.
"""

from __future__ import annotations

import argparse
import logging
import resource
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import lightning
import numpy as np
import torch
from threadpoolctl import threadpool_limits

from vibrasense.config import load_settings
from vibrasense.features import spectral
from vibrasense.features.logmel_store import LogMelStore, write_index, write_shard
from vibrasense.features.spec import FeatureSpec
from vibrasense.inference import ModelInputs, ModelScorer, limit_process_threads
from vibrasense.models.autoencoder import _band_statistics as band_statistics
from vibrasense.models.cnn_ae import CnnAEDetector
from vibrasense.models.lightning_data import LogMelDataModule
from vibrasense.signals.synthetic import ANOMALIES, machine_sound

RATE = 16_000
SECONDS = 10.0
SHARD_CLIPS = 256
GOAL_EPOCH_S = 60.0


class EpochTimer(lightning.Callback):
    """Wall-clock seconds of each training epoch."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._started = 0.0

    def on_train_epoch_start(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule) -> None:
        self._started = time.perf_counter()

    def on_train_epoch_end(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule) -> None:
        self.seconds.append(time.perf_counter() - self._started)


def write_store(root: Path, clips: int) -> LogMelStore:
    """A log-mel store of ``clips`` distinct 10-s spectrograms, written shard by shard."""
    settings = load_settings(None).features.logmel
    pool = [
        spectral.extract_logmel(machine_sound(SECONDS, RATE, machine=k % 4, anomaly=anomaly, clip=k), RATE, settings)
        for k, anomaly in enumerate([None] * 12 + list(ANOMALIES))
    ]
    rng = np.random.default_rng(0)
    rows = []
    for first in range(0, clips, SHARD_CLIPS):
        shard = {
            f"clip_{k:06d}": np.roll(pool[k % len(pool)], rng.integers(0, pool[0].shape[0]), axis=0)
            + rng.normal(0.0, 1.0)
            for k in range(first, min(first + SHARD_CLIPS, clips))
        }
        rows.append(write_shard(root, f"{first:06d}", shard))
    write_index(root, rows)
    return LogMelStore(root)


def epoch_seconds(store: LogMelStore, epochs: int) -> tuple[list[float], float, int]:
    """(seconds of each training epoch, seconds of one DataLoader pass alone, training windows)."""
    spectrograms = [store[r] for r in store.recording_ids]
    detector = CnnAEDetector()
    detector.mean_, detector.std_ = band_statistics(spectrograms)  # what fit computes before training
    data = LogMelDataModule(
        spectrograms,
        list(range(len(spectrograms))),
        [],
        detector.window,
        detector.train_hop,
        detector.prepare,
        detector.batch_size,
    )
    started = time.perf_counter()
    for batch in data.train_dataloader():
        batch.sum()
    floor = time.perf_counter() - started
    timer = EpochTimer()
    trainer = lightning.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        devices=1,
        callbacks=[timer],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        deterministic="warn",  # as the detector's own fit
    )
    trainer.fit(detector.build_lightning(store.n_mels), datamodule=data)
    return timer.seconds, floor, len(data.train_set)


def scorer_for(store: LogMelStore, folder: Path) -> ModelScorer:
    """A cnn-ae fitted (one epoch) on 32 clips of the store, saved and loaded as ``vibrasense train`` does."""
    settings = load_settings(None, workdir=folder)
    detector = CnnAEDetector(max_epochs=1, accelerator="cpu")
    detector.fit([store[r] for r in store.recording_ids[:32]])
    directory = detector.save(folder / "detector")
    FeatureSpec.from_settings(settings).save(directory)
    ModelInputs(kind="logmel").save(directory)
    return ModelScorer.from_directory(directory, "bench", "1")


def best_ms_per_clip(run: Callable[[np.ndarray], object], clips: list[np.ndarray], repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for clip in clips:
            run(clip)
        best = min(best, (time.perf_counter() - started) * 1000 / len(clips))
    return best


def inference(scorer: ModelScorer, clips: int) -> tuple[float, float]:
    """(ms per clip of ModelScorer.score, ms per clip of the log-mel alone), one thread."""
    samples = [machine_sound(SECONDS, RATE, machine=k % 4, clip=1000 + k) for k in range(clips)]
    settings = scorer.spec.logmel
    limit_process_threads()  # as the service does once at start-up
    scorer.score(samples[0], RATE)
    with threadpool_limits(limits=1):
        spectral.extract_logmel(samples[0], RATE, settings)
        floor = best_ms_per_clip(lambda x: spectral.extract_logmel(x, RATE, settings), samples)
    ours = best_ms_per_clip(lambda x: scorer.score(x, RATE), samples)
    return ours, floor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=1000, help="10-s clips in the training epoch")
    parser.add_argument("--epochs", type=int, default=2, help="epochs timed (the first includes warm-up)")
    parser.add_argument("--inference-clips", type=int, default=20, help="clips scored per timing")
    args = parser.parse_args()
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module="lightning")
    lightning.seed_everything(0, verbose=False)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        started = time.perf_counter()
        store = write_store(root / "logmel", args.clips)
        print(f"log-mel store of {args.clips} clips written in {time.perf_counter() - started:.1f} s")
        epochs, floor, windows = epoch_seconds(store, args.epochs)
        scorer = scorer_for(store, root)
        ms, logmel_ms = inference(scorer, args.inference_clips)

    best = min(epochs)
    print(f"\n# cnn-ae training on CPU ({torch.get_num_threads()} torch threads), {args.clips} 10-s clips")
    print(f"  = {windows} patches of 128 x 32 log-mel frames, batch 64")
    print(f"{'step':<40}{'seconds':>10}{'ratio':>8}")
    print(f"{'DataLoader pass alone (data floor)':<40}{floor:>10.2f}{1.0:>8.1f}")
    for number, seconds in enumerate(epochs, 1):
        print(f"{f'training epoch {number}':<40}{seconds:>10.2f}{seconds / floor:>8.1f}")
    projected = best * 1000 / args.clips
    print(f"goal: <= {GOAL_EPOCH_S:.0f} s per epoch over 1000 clips; best epoch projects to {projected:.1f} s per 1000")

    print("\n# scoring one 10-s 16 kHz clip with cnn-ae (ModelScorer.score), one thread")
    print(f"{'step':<40}{'ms per clip':>12}{'ratio':>8}")
    print(f"{'log-mel extraction alone (floor)':<40}{logmel_ms:>12.2f}{1.0:>8.1f}")
    print(f"{'raw samples -> score':<40}{ms:>12.2f}{ms / logmel_ms:>8.1f}")
    print(f"(max RSS of this script: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)")


if __name__ == "__main__":
    main()
