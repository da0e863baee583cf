"""Evaluation figures as PNG files: ROC curve, score histogram with the threshold, confusion matrix."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import roc_curve


def roc_plot(labels: np.ndarray, scores: np.ndarray, path: Path, title: str) -> Path | None:
    """ROC curve with its AUC; ``None`` when the labels hold one class only."""
    if len(np.unique(labels)) < 2:
        return None
    fpr, tpr, _ = roc_curve(labels, scores)
    auc = float(np.trapezoid(tpr, fpr))
    figure, axes = plt.subplots(figsize=(4.5, 4.5))
    axes.plot(fpr, tpr, label=f"AUC {auc:.3f}")
    axes.plot([0, 1], [0, 1], "--", color="grey", linewidth=0.8)
    axes.axvspan(0, 0.1, color="orange", alpha=0.1, label="pAUC region (FPR ≤ 0.1)")
    axes.set(xlabel="false positive rate", ylabel="true positive rate", title=title)
    axes.legend(loc="lower right")
    return _save(figure, path)


def score_histogram(labels: np.ndarray, scores: np.ndarray, threshold: float, path: Path, title: str) -> Path:
    """Scores of normal and anomalous recordings, and the threshold as a vertical line."""
    figure, axes = plt.subplots(figsize=(6, 3.5))
    bins = np.histogram_bin_edges(scores[np.isfinite(scores)], bins=30)
    for value, name, colour in ((0, "normal", "tab:blue"), (1, "anomaly", "tab:red")):
        chosen = scores[labels == value]
        if len(chosen):
            axes.hist(chosen, bins=bins, alpha=0.6, color=colour, label=f"{name} ({len(chosen)})")
    axes.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.4g}")
    axes.set(xlabel="anomaly score", ylabel="recordings", title=title)
    axes.legend()
    return _save(figure, path)


def confusion_plot(metrics: dict[str, float], png: Path, json_path: Path) -> tuple[Path, Path]:
    """The confusion matrix at the threshold as a PNG and as JSON (tp, fp, tn, fn)."""
    counts = {k: int(metrics[k]) for k in ("tp", "fp", "tn", "fn")}
    json_path.write_text(json.dumps(counts, indent=2))
    matrix = np.array([[counts["tn"], counts["fp"]], [counts["fn"], counts["tp"]]])
    figure, axes = plt.subplots(figsize=(3.8, 3.4))
    axes.imshow(matrix, cmap="Blues")
    for (row, col), value in np.ndenumerate(matrix):
        axes.text(col, row, str(value), ha="center", va="center", fontsize=14)
    axes.set_xticks([0, 1], ["normal", "anomaly"])
    axes.set_yticks([0, 1], ["normal", "anomaly"])
    axes.set(xlabel="predicted", ylabel="true", title="confusion matrix at threshold")
    return _save(figure, png), json_path


def _save(figure: plt.Figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
