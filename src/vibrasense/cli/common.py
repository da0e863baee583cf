"""What every sub-command shares: the global options and how settings are built from them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from vibrasense.config import Settings, load_settings

console = Console(soft_wrap=True)
error_console = Console(stderr=True, soft_wrap=True)
_global: dict[str, Path | None] = {"config": None, "workdir": None}


def set_global_options(config: Path | None, workdir: Path | None) -> None:
    """Remember ``--config`` and ``--workdir`` for the sub-command that follows."""
    _global["config"] = config
    _global["workdir"] = workdir


def settings(**overrides: Any) -> Settings:
    """Settings from defaults, the YAML file, the environment and the given flag values.

    Flags left at ``None`` do not override; nested sections are dicts, e.g. ``training={"z_dim": 8}``.
    """
    merged = _without_none(overrides)
    if _global["workdir"] is not None:
        merged["workdir"] = _global["workdir"]
    return load_settings(_global["config"], **merged)


def _without_none(values: dict[str, Any]) -> dict[str, Any]:
    """Drop flags left unset, at every depth, so they do not hide the file or the environment."""
    kept: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            value = _without_none(value)
            if value:
                kept[key] = value
        elif value is not None:
            kept[key] = value
    return kept
