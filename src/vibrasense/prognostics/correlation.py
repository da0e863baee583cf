"""Which features follow wear: correlation of each feature's trend with the approach of failure.

For each feature (FFT band energies included) the causally smoothed trend is correlated with the time
elapsed towards failure, linearly (Pearson) and monotonically (Spearman); a heat-map shows how the band
energies move over frequency and time. The table is how the health index picks its features, and a user
reads it to see where in the spectrum a bearing wears.
"""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats

from vibrasense.prognostics.runs import numeric_features

BAND = re.compile(r"^vib_band_([\dp.]+)_([\dp.]+)hz$")


def degradation_correlation(run: pd.DataFrame, smoothing: int = 9) -> pd.DataFrame:
    """Pearson and Spearman correlation of each smoothed feature trend with elapsed life, strongest first."""
    ordered = run.sort_values("event_timestamp")
    elapsed = (ordered["event_timestamp"] - ordered["event_timestamp"].iloc[0]).dt.total_seconds().to_numpy()
    rows = []
    for feature in numeric_features(ordered):
        trend = ordered[feature].astype(float).rolling(smoothing, min_periods=1).median().to_numpy()
        finite = np.isfinite(trend)
        if finite.sum() < 3 or np.nanstd(trend[finite]) == 0:
            continue
        pearson = stats.pearsonr(elapsed[finite], trend[finite]).statistic
        spearman = stats.spearmanr(elapsed[finite], trend[finite]).statistic
        rows.append({"feature": feature, "pearson": float(pearson), "spearman": float(spearman)})
    table = pd.DataFrame(rows, columns=["feature", "pearson", "spearman"])
    return table.reindex(table["spearman"].abs().sort_values(ascending=False).index).reset_index(drop=True)


def select_features(tables: list[pd.DataFrame], count: int = 3) -> list[str]:
    """Features that follow wear most consistently across past runs (mean |Spearman|)."""
    merged = pd.concat(tables).groupby("feature")["spearman"].apply(lambda s: s.abs().mean())
    return list(merged.sort_values(ascending=False).index[:count])


def band_heatmap(run: pd.DataFrame, path: Path, title: str) -> Path | None:
    """PNG of band energy (dB against the run's first tenth) over frequency and time; None without bands."""
    bands = [c for c in run.columns if BAND.match(c)]
    if not bands:
        return None
    ordered = run.sort_values("event_timestamp")
    energy = ordered[bands].astype(float).to_numpy()
    baseline = np.nanmedian(energy[: max(len(energy) // 10, 1)], axis=0)
    relative = 10 * np.log10(np.maximum(energy, 1e-20) / np.maximum(baseline, 1e-20))
    hours = (ordered["event_timestamp"] - ordered["event_timestamp"].iloc[0]).dt.total_seconds() / 3600
    labels = [f"{BAND.match(b).group(1)}-{BAND.match(b).group(2)}".replace("p", ".") for b in bands]  # type: ignore[union-attr]
    figure, axis = plt.subplots(figsize=(9, 4))
    image = axis.imshow(
        relative.T,
        aspect="auto",
        origin="lower",
        cmap="magma",
        extent=(float(hours.iloc[0]), float(hours.iloc[-1]), -0.5, len(bands) - 0.5),
    )
    axis.set_yticks(range(len(bands)), labels)
    axis.set_xlabel("hours since the first snapshot")
    axis.set_ylabel("band (Hz)")
    axis.set_title(title)
    figure.colorbar(image, label="dB relative to the start")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
