"""Early-warning alarm: the k-of-n rule, which an isolated spike never satisfies, and the onset it implies."""

from __future__ import annotations

import numpy as np


def k_of_n_alarm(above: np.ndarray, k: int, n: int) -> np.ndarray:
    """True at each snapshot where at least ``k`` of the last ``n`` (this one included) were above threshold."""
    if not 1 <= k <= n:
        raise ValueError(f"alarm rule needs 1 <= k <= n, got k={k}, n={n}")
    flags = np.asarray(above, dtype=bool).astype(int)
    counts = np.convolve(flags, np.ones(n, dtype=int))[: len(flags)]
    return counts >= k


def first_alarm(alarm: np.ndarray) -> int | None:
    """Position of the first snapshot in alarm, or None."""
    positions = np.flatnonzero(np.asarray(alarm, dtype=bool))
    return int(positions[0]) if positions.size else None


def onset_position(above: np.ndarray, alarm: np.ndarray, n: int) -> int | None:
    """Degradation onset: the first above-threshold snapshot of the window that raised the first alarm."""
    first = first_alarm(alarm)
    if first is None:
        return None
    start = max(0, first - n + 1)
    return start + int(np.flatnonzero(np.asarray(above, dtype=bool)[start : first + 1])[0])
