"""Detection metrics at the threshold, overall and per machine type and machine id.

AUC and pAUC (``roc_auc_score(max_fpr=0.1)``, McClish-standardised) need both normal and anomalous
recordings; where a group has one class only they are left out (and said so), the others are kept.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

PAUC_MAX_FPR = 0.1
HEADLINE = ("auc", "pauc", "f1", "precision", "recall", "accuracy")


def detection_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    """auc, pauc (when both classes occur), f1, precision, recall, accuracy, tp, fp, tn, fn."""
    y = np.asarray(labels, dtype=np.int64)
    s = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=np.inf)
    predicted = (s > threshold).astype(np.int64)
    metrics: dict[str, float] = {}
    if len(np.unique(y)) == 2:
        metrics["auc"] = float(roc_auc_score(y, s))
        metrics["pauc"] = float(roc_auc_score(y, s, max_fpr=PAUC_MAX_FPR))
    metrics |= {
        "f1": float(f1_score(y, predicted, zero_division=0)),
        "precision": float(precision_score(y, predicted, zero_division=0)),
        "recall": float(recall_score(y, predicted, zero_division=0)),
        "accuracy": float(accuracy_score(y, predicted)),
    }
    tn, fp, fn, tp = confusion_matrix(y, predicted, labels=[0, 1]).ravel()
    metrics |= {"tp": float(tp), "fp": float(fp), "tn": float(tn), "fn": float(fn)}
    return metrics


def grouped_metrics(rows: pd.DataFrame, scores: np.ndarray, threshold: float) -> dict[str, float]:
    """Overall metrics, then ``type.<machine_type>.<metric>`` and ``machine.<machine_id>.<metric>``."""
    labels = (rows["label"] == "anomaly").to_numpy(dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    metrics = detection_metrics(labels, scores, threshold)
    for column, prefix in (("machine_type", "type"), ("machine_id", "machine")):
        for value, group in rows.groupby(column, sort=True):
            position = rows.index.get_indexer(group.index)
            for key, number in detection_metrics(labels[position], scores[position], threshold).items():
                metrics[f"{prefix}.{metric_safe(str(value))}.{key}"] = number
    return metrics


def metric_safe(name: str) -> str:
    """A group name as MLflow accepts it in a metric key."""
    return re.sub(r"[^A-Za-z0-9_\-]", "_", name)
