"""Bearing defect diagnosis for score responses, when the request names a bearing preset."""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Any

import numpy as np

from vibrasense.errors import InputError

log = logging.getLogger(__name__)


def diagnose_bearing(samples: np.ndarray, sample_rate: float, bearing: str, shaft_hz: float | None) -> dict[str, Any]:
    """``vibrasense.prognostics.diagnose`` as a JSON-friendly dict; says so when prognostics is absent."""
    try:
        from vibrasense.prognostics import diagnose
    except ImportError as error:
        return {"available": False, "reason": f"vibrasense.prognostics cannot be imported ({error})"}
    try:
        result = diagnose(samples, sample_rate, bearing, shaft_hz)
    except InputError:
        raise
    except (KeyError, ValueError) as error:
        raise InputError("bearing", f"cannot diagnose bearing {bearing!r}: {error}") from None
    return {"available": True, **_plain(result)}


def _plain(value: Any) -> Any:
    """Dataclasses, pydantic models, numpy values and non-finite floats as plain JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    elif hasattr(value, "model_dump"):
        value = value.model_dump()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
