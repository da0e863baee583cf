"""Early-warning rule: k of the last n snapshots over a threshold, latched until an operator resets it.

An isolated spike never satisfies k of n. Once satisfied the state stays on (latched): a wearing bearing
whose index dips back under the threshold for a while is no healthier, and an alarm that switches on and off
tells an operator nothing. A reset (an acknowledgement) clears it; the count then starts again from the
snapshots after the reset, so a condition that persists raises it again k snapshots later.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np


def k_of_n_alarm(above: np.ndarray, k: int, n: int) -> np.ndarray:
    """True at each snapshot where at least ``k`` of the last ``n`` (this one included) were above threshold."""
    if not 1 <= k <= n:
        raise ValueError(f"alarm rule needs 1 <= k <= n, got k={k}, n={n}")
    flags = np.asarray(above, dtype=bool).astype(int)
    counts = np.convolve(flags, np.ones(n, dtype=int))[: len(flags)]
    return counts >= k


def latched_alarm(above: np.ndarray, k: int, n: int, resets: Sequence[int] = ()) -> np.ndarray:
    """On from the first snapshot where ``k`` of the last ``n`` were above threshold until the next reset.

    ``resets`` are positions: a reset at ``r`` clears the state from snapshot ``r`` on, and the k-of-n count
    looks only at snapshots from ``r`` on.
    """
    flags = np.asarray(above, dtype=bool)
    alarm = np.zeros(len(flags), dtype=bool)
    bounds = sorted({0, len(flags), *(min(max(int(r), 0), len(flags)) for r in resets)})
    for start, stop in itertools.pairwise(bounds):
        fired = first_alarm(k_of_n_alarm(flags[start:stop], k, n))
        if fired is not None:
            alarm[start + fired : stop] = True
    return alarm


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


def switches(state: np.ndarray) -> int:
    """How many times a state turned on or off (starting from off)."""
    flags = np.asarray(state, dtype=bool).astype(int)
    return int(np.abs(np.diff(flags, prepend=0)).sum())
