"""Drift per machine: recent features and scores against the training reference, and the sensor's health.

The headline is the score: the distribution of recent scores against the scores of the training recordings.
Each feature is compared the same way (:mod:`vibrasense.monitoring.statistics`); a comparison drifts when it is
both significant (Kolmogorov–Smirnov, Bonferroni over the machine's comparisons) and large (Wasserstein
distance of at least ``min_shift`` reference robust standard deviations). A flat-lined, disconnected or
clipped channel (:mod:`vibrasense.monitoring.sensor_faults`) is drift too, named as such.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from vibrasense.config import DriftSettings
from vibrasense.errors import InputError
from vibrasense.monitoring.sensor_faults import SensorFault, sensor_faults
from vibrasense.monitoring.statistics import Comparison, compare
from vibrasense.signals.records import RECORD_COLUMNS

SCORE_COLUMN = "score"
MIN_VALUES = 2


@dataclass(frozen=True)
class Drift:
    """One compared quantity (a feature, or the score) of one machine."""

    name: str
    comparison: Comparison
    drifted: bool


@dataclass(frozen=True)
class MachineDrift:
    """What moved on one machine, and why it counts."""

    machine_id: str
    n_reference: int
    n_current: int
    score: Drift | None = None
    features: list[Drift] = field(default_factory=list)
    sensor_faults: list[SensorFault] = field(default_factory=list)
    note: str | None = None

    @property
    def drifted(self) -> bool:
        """The score or a feature drifted, or the sensor is faulty."""
        return bool(self.sensor_faults) or any(d.drifted for d in self.compared)

    @property
    def compared(self) -> list[Drift]:
        """The score comparison (if any) then the features'."""
        return ([self.score] if self.score else []) + self.features

    @property
    def reasons(self) -> list[str]:
        """One line per sensor fault and per drifted comparison, largest shift first."""
        lines = [f"sensor {fault.kind}: {fault.detail}" for fault in self.sensor_faults]
        drifted = sorted((d for d in self.compared if d.drifted), key=lambda d: -d.comparison.shift)
        return lines + [
            f"{d.name}: median {d.comparison.reference_median:.4g} -> {d.comparison.current_median:.4g} "
            f"({d.comparison.shift:.1f} SD, KS p={d.comparison.ks_pvalue:.1e}, PSI {d.comparison.psi:.2f})"
            for d in drifted
        ]


@dataclass(frozen=True)
class DriftReport:
    """Every machine compared, with the rule that was applied."""

    machines: list[MachineDrift]
    reference: str
    current: str
    alpha: float
    min_shift: float
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def drifted(self) -> bool:
        """Whether any machine drifted: the flag schedulers and the retraining pipeline act on."""
        return any(machine.drifted for machine in self.machines)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (``drifted`` and ``reasons`` included)."""
        return {
            "created_at": self.created_at.isoformat(),
            "reference": self.reference,
            "current": self.current,
            "rule": {"alpha": self.alpha, "min_shift": self.min_shift},
            "drifted": self.drifted,
            "machines": [
                asdict(machine) | {"drifted": machine.drifted, "reasons": machine.reasons} for machine in self.machines
            ],
        }


def feature_columns(reference: pd.DataFrame, current: pd.DataFrame) -> list[str]:
    """Numeric feature columns both tables hold (metadata and the score excluded)."""
    skip = {*RECORD_COLUMNS, SCORE_COLUMN}
    return [
        c
        for c in reference.columns
        if c not in skip and c in current.columns and pd.api.types.is_numeric_dtype(reference[c])
    ]


def detect_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    settings: DriftSettings,
    *,
    columns: Sequence[str] | None = None,
    reference_name: str = "reference",
    current_name: str = "current",
) -> DriftReport:
    """Compare ``current`` with ``reference`` machine by machine (both with ``machine_id`` and feature columns;
    a ``score`` column in both adds the score comparison)."""
    for name, table in ((reference_name, reference), (current_name, current)):
        if "machine_id" not in table.columns:
            raise InputError(name, "the table has no machine_id column: give a folder written by `vibrasense features`")
    columns = list(columns) if columns is not None else feature_columns(reference, current)
    machines = [
        _machine_drift(str(machine_id), reference[reference["machine_id"] == machine_id], rows, columns, settings)
        for machine_id, rows in current.groupby("machine_id", sort=True, observed=True)
    ]
    return DriftReport(machines, reference_name, current_name, settings.alpha, settings.min_shift)


def _machine_drift(
    machine_id: str, reference: pd.DataFrame, current: pd.DataFrame, columns: list[str], settings: DriftSettings
) -> MachineDrift:
    counts = {"machine_id": machine_id, "n_reference": len(reference), "n_current": len(current)}
    if reference.empty:
        return MachineDrift(**counts, note="no training reference for this machine: train on its normal recordings")
    faults = sensor_faults(reference, current)
    if len(current) < settings.min_recordings:
        note = f"{len(current)} recent recordings, fewer than drift.min_recordings ({settings.min_recordings})"
        return MachineDrift(**counts, sensor_faults=faults, note=note)
    scored = all(SCORE_COLUMN in table and _comparable(table[SCORE_COLUMN]) for table in (reference, current))
    names = [SCORE_COLUMN] if scored else []  # not a score column of missing scores (features recorded, none scored)
    names += [c for c in columns if _comparable(reference[c]) and _comparable(current[c])]
    level = settings.alpha / max(len(names), 1)

    def drift(name: str) -> Drift:
        result = compare(reference[name].to_numpy(), current[name].to_numpy())
        return Drift(name, result, result.ks_pvalue < level and result.shift >= settings.min_shift)

    compared = [drift(name) for name in names]
    score = compared.pop(0) if names[:1] == [SCORE_COLUMN] else None
    return MachineDrift(**counts, score=score, features=compared, sensor_faults=faults)


def _comparable(values: pd.Series) -> bool:
    return int(np.isfinite(values.to_numpy(dtype=np.float64)).sum()) >= MIN_VALUES
