"""The model registry: MLflow tracking, registered versions, aliases champion / challenger, promotion.

Training registers versions here; serving and the pipelines load them (through the inference package);
prognostics tracks its runs here. Nothing here trains or reads features.
"""

from vibrasense.registry.promotion import Promotion, promote_if_better
from vibrasense.registry.tracking import experiment_id, tracking_client
from vibrasense.registry.versions import (
    CHALLENGER,
    CHAMPION,
    DETECTOR_ARTIFACT,
    VersionInfo,
    assign_alias,
    list_versions,
    load_registered_detector,
    load_scorer,
    resolve_version,
)

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "DETECTOR_ARTIFACT",
    "Promotion",
    "VersionInfo",
    "assign_alias",
    "experiment_id",
    "list_versions",
    "load_registered_detector",
    "load_scorer",
    "promote_if_better",
    "resolve_version",
    "tracking_client",
]
