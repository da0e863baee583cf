"""What every sub-command shares: the global options and how settings are built from them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from vibrasense.config import Settings, load_settings

console = Console(stderr=False)
_global: dict[str, Path | None] = {"config": None, "workdir": None}


def set_global_options(config: Path | None, workdir: Path | None) -> None:
    """Remember ``--config`` and ``--workdir`` for the sub-command that follows."""
    _global["config"] = config
    _global["workdir"] = workdir


def settings(**overrides: Any) -> Settings:
    """Settings from defaults, the YAML file, the environment and the given flag values.

    Flags left at ``None`` do not override; nested sections are dicts, e.g. ``training={"z_dim": 8}``.
    """
    merged: dict[str, Any] = {}
    if _global["workdir"] is not None:
        merged["workdir"] = _global["workdir"]
    for key, value in overrides.items():
        if isinstance(value, dict):
            value = {k: v for k, v in value.items() if v is not None}
            if value:
                merged[key] = value
        elif value is not None:
            merged[key] = value
    return load_settings(_global["config"], **merged)
