"""Lightning data over log-mel spectrograms: items are (recording, window offset), sliced lazily. Training only.

The spectrograms are usually memory-mapped views of the log-mel store; a window is read from the map only
when its batch is assembled, so a training set far larger than RAM streams from disk.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import lightning
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from vibrasense.models.windows import take_window, window_offsets

Prepare = Callable[[np.ndarray], np.ndarray]


class WindowDataset(Dataset):
    """Every window of the chosen recordings; item ``i`` is one prepared window as a float32 tensor."""

    def __init__(
        self, spectrograms: Sequence[np.ndarray], recordings: Sequence[int], window: int, hop: int, prepare: Prepare
    ) -> None:
        self.spectrograms = spectrograms
        self.window = window
        self.prepare = prepare
        pairs = [(r, int(o)) for r in recordings for o in window_offsets(len(spectrograms[r]), window, hop)]
        self.items = np.array(pairs, dtype=np.int64).reshape(-1, 2)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> torch.Tensor:
        recording, offset = self.items[index]
        frames = take_window(self.spectrograms[int(recording)], int(offset), self.window)
        return torch.from_numpy(self.prepare(frames[None])[0])


class LogMelDataModule(lightning.LightningDataModule):
    """Training windows from the training recordings, validation windows from held-out normal ones."""

    def __init__(
        self,
        spectrograms: Sequence[np.ndarray],
        train_recordings: Sequence[int],
        val_recordings: Sequence[int],
        window: int,
        hop: int,
        prepare: Prepare,
        batch_size: int = 64,
        seed: int = 42,
    ) -> None:
        super().__init__()
        self.train_set = WindowDataset(spectrograms, train_recordings, window, hop, prepare)
        self.val_set = WindowDataset(spectrograms, val_recordings, window, hop, prepare)
        self.batch_size = batch_size
        self.seed = seed

    def train_dataloader(self) -> DataLoader:
        generator = torch.Generator().manual_seed(self.seed)
        # drop_last avoids a final batch of one, which BatchNorm cannot normalise
        drop_last = len(self.train_set) > self.batch_size and len(self.train_set) % self.batch_size == 1
        return DataLoader(
            self.train_set, batch_size=self.batch_size, shuffle=True, generator=generator, drop_last=drop_last
        )

    def val_dataloader(self) -> DataLoader | list:
        if not len(self.val_set):
            return []
        return DataLoader(self.val_set, batch_size=self.batch_size, shuffle=False)
