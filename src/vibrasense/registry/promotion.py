"""Promotion: the challenger becomes champion only if it beats the champion on the same evaluation set.

The registry knows versions and aliases, not data: the caller (training) passes how a model folder is
evaluated on a features folder, and both versions are evaluated the same way. The comparison is AUC,
then pAUC.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from vibrasense.config import Settings
from vibrasense.errors import ModelError
from vibrasense.registry.tracking import tracking_client
from vibrasense.registry.versions import CHALLENGER, CHAMPION, alias_version, detector_directory

log = logging.getLogger(__name__)

Evaluate = Callable[[Path, Path], dict[str, float]]
"""``(model folder, features folder) -> metrics`` with at least ``auc`` and ``pauc``."""


@dataclass
class Promotion:
    """What ``promote_if_better`` compared and decided."""

    champion_version: str | None
    challenger_version: str | None
    champion_metrics: dict[str, float] = field(default_factory=dict)
    challenger_metrics: dict[str, float] = field(default_factory=dict)
    promoted: bool = False
    reason: str = ""


def promote_if_better(settings: Settings, evaluate: Evaluate, features_dir: Path | str | None = None) -> Promotion:
    """Move ``champion`` to the challenger only if it wins on ``features_dir`` (default: its training features)."""
    client = tracking_client(settings)
    name = settings.tracking.registered_model
    champion = alias_version(client, name, CHAMPION)
    challenger = alias_version(client, name, CHALLENGER)
    if champion is None or challenger is None:
        return Promotion(
            str(champion.version) if champion else None,
            str(challenger.version) if challenger else None,
            reason=f"nothing to compare: needs both a {CHAMPION} and a {CHALLENGER} version",
        )
    folder = features_dir or client.get_run(challenger.run_id).data.params.get("features_dir")
    if not folder:
        raise ModelError("promote needs an evaluation set: pass --features DIR (output of `vibrasense features`)")
    results = {
        version.version: evaluate(detector_directory(client, settings, version), Path(folder))
        for version in (champion, challenger)
    }
    old, new = results[champion.version], results[challenger.version]
    promoted = (new["auc"], new["pauc"]) > (old["auc"], old["pauc"])
    if promoted:
        client.set_registered_model_alias(name, CHAMPION, challenger.version)
        client.delete_registered_model_alias(name, CHALLENGER)
        reason = f"v{challenger.version} beats v{champion.version} on {folder} (AUC, then pAUC)"
    else:
        reason = f"v{challenger.version} does not beat v{champion.version} on {folder}; champion kept"
    log.info(reason)
    return Promotion(str(champion.version), str(challenger.version), old, new, promoted, reason)
