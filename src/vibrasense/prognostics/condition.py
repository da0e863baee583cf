"""Operating conditions of a bearing run, and how they stretch or shrink its life.

ISO 281: a bearing's basic rating life in hours is (C/P)^p x 10^6 / (60 n), with P the equivalent load, n the
speed and p = 3 for ball bearings. The dynamic capacity C is the same for two bearings of one kind, so a past
run's life, seen under another condition, scales by (P_past / P)^3 x n_past / n. The FEMTO PRONOSTIA runs come
under three conditions, named by the first digit of the bearing (``Bearing2_1`` runs under condition 2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

LIFE_EXPONENT = 3.0  # ISO 281, ball bearings


@dataclass(frozen=True)
class OperatingCondition:
    """Shaft speed and radial load of a run."""

    rpm: float
    load_n: float

    def life_ratio(self, other: OperatingCondition) -> float:
        """How many times longer a bearing lives under this condition than under ``other`` (ISO 281)."""
        return (other.load_n / self.load_n) ** LIFE_EXPONENT * other.rpm / self.rpm


FEMTO_CONDITIONS = {
    "1": OperatingCondition(1800.0, 4000.0),
    "2": OperatingCondition(1650.0, 4200.0),
    "3": OperatingCondition(1500.0, 5000.0),
}
FEMTO_NAME = re.compile(r"^Bearing(\d)_\d+$")


def condition_of(machine_id: str) -> OperatingCondition | None:
    """The operating condition a machine's name tells (FEMTO ``BearingK_N``), else None (unknown)."""
    match = FEMTO_NAME.match(str(machine_id))
    return FEMTO_CONDITIONS.get(match.group(1)) if match else None
