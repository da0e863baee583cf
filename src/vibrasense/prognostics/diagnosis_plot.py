"""The envelope spectrum behind a bearing verdict, with the defect lines marked, as a PNG."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from vibrasense.errors import InputError
from vibrasense.prognostics.diagnosis import Diagnosis

LINE_COLOURS = {"bpfo": "tab:red", "bpfi": "tab:blue", "bsf": "tab:green", "ftf": "tab:purple"}
HARMONICS_SHOWN = 3


def plot_envelope_spectrum(result: Diagnosis, path: Path | str, title: str = "") -> Path:
    """Write the squared-envelope spectrum (as a multiple of its floor) with BPFO/BPFI/2xBSF/FTF and harmonics
    dashed and the verdict's evidence circled; returns the path written."""
    if result.view is None:
        raise InputError("plot", "this diagnosis carries no envelope spectrum to plot")
    view, target = result.view, Path(path)
    top_hz = 1.15 * HARMONICS_SHOWN * max(result.defect_hz.get("bpfi", 0.0), 2 * result.defect_hz.get("bsf", 0.0))
    keep = (view.freqs > 0) & (view.freqs <= max(top_hz, 50.0))
    figure, axis = plt.subplots(figsize=(10, 4.5))
    axis.plot(view.freqs[keep], view.amplitudes[keep] / view.floor[keep], color="0.3", linewidth=0.7)
    for name, hz in result.defect_hz.items():
        base = 2 * hz if name == "bsf" else hz
        label = "2xBSF" if name == "bsf" else name.upper()
        for k in range(1, HARMONICS_SHOWN + 1):
            legend = f"{label} {base:.1f} Hz" if k == 1 else None
            axis.axvline(k * base, color=LINE_COLOURS[name], linestyle="--", linewidth=0.8, alpha=0.7, label=legend)
    if result.evidence:
        found = [p.found_hz for p in result.evidence], [p.snr for p in result.evidence]
        axis.scatter(*found, s=60, facecolors="none", edgecolors="black", zorder=3, label="evidence")
    verdict = f"{result.verdict}, {result.confidence:.2f}; {result.bearing} at {result.shaft_hz * 60:.0f} rpm"
    axis.set_title(f"{title + ': ' if title else ''}{verdict} ({result.speed_source})")
    axis.set_xlabel(f"frequency (Hz); envelope of band {result.band_hz} Hz")
    axis.set_ylabel("amplitude / local floor")
    axis.legend(loc="upper right", fontsize=8)
    figure.tight_layout()
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, dpi=110)
    plt.close(figure)
    return target
