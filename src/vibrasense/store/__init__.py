"""The Feast feature store: repository generation, apply, materialisation, online lookups, training sets."""

from vibrasense.store.online import OnlineFeatureClient
from vibrasense.store.operations import Materialization, apply, check_source, materialize, open_store
from vibrasense.store.repository import repo_path, write_repo
from vibrasense.store.training_set import build_training_set

__all__ = [
    "Materialization",
    "OnlineFeatureClient",
    "apply",
    "build_training_set",
    "check_source",
    "materialize",
    "open_store",
    "repo_path",
    "write_repo",
]
