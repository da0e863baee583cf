"""What every sub-command shares: the global options and how settings are built from them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from rich.console import Console

from vibrasense.config import Settings, load_settings
from vibrasense.errors import ConfigError, OutputError

console = Console(soft_wrap=True)
error_console = Console(stderr=True, soft_wrap=True)
_global: dict[str, Path | None] = {"config": None, "workdir": None}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(ms|sec|s|min|m|h|d)", re.IGNORECASE)
_SECONDS = {"ms": 0.001, "s": 1.0, "sec": 1.0, "min": 60.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


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


def parse_duration(text: str) -> float:
    """Seconds in a duration such as ``1s``, ``250ms``, ``25min``, ``2h30m``, ``7d`` (a bare number: seconds)."""
    spec = text.strip().replace(" ", "")
    try:
        return float(spec)
    except ValueError:
        pass
    parts = list(_DURATION_PART.finditer(spec))
    if not parts or "".join(p.group(0) for p in parts) != spec:
        raise ConfigError(f"{text!r} is not a duration; write e.g. 1s, 0.1s, 250ms, 25min, 2h30m or 7d")
    return sum(float(p.group(1)) * _SECONDS[p.group(2).lower()] for p in parts)


def output_folder(path: Path, option: str = "--out") -> Path:
    """``path`` created if needed; :class:`OutputError` naming it, the reason and the option when it cannot be."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        blocker = next((parent for parent in (path, *path.parents) if parent.is_file()), None)
        why = f"{blocker} is a file" if blocker is not None else error.strerror or str(error)
        raise OutputError(f"cannot create the output folder {path}: {why}; choose another {option}") from None
    return path
