"""Bearing defect diagnosis for score responses, when the request names a bearing preset."""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from vibrasense.errors import InputError
from vibrasense.signals.bearings import SHAFT_NEIGHBOURS

log = logging.getLogger(__name__)


def diagnose_bearing(samples: np.ndarray, sample_rate: float, bearing: str, shaft_hz: float | None) -> dict[str, Any]:
    """``vibrasense.prognostics.diagnose`` as a JSON-friendly dict (see ``schemas.BearingDiagnosis``); says so when
    prognostics is absent. Without ``shaft_hz`` the diagnosis searches the speed and says so."""
    try:
        from vibrasense.prognostics import diagnose
    except ImportError as error:
        return {"available": False, "reason": f"vibrasense.prognostics cannot be imported ({error})"}
    try:
        result = diagnose(samples, sample_rate, bearing, shaft_hz, "user", SHAFT_NEIGHBOURS.get(bearing, ()))
    except InputError:
        raise
    except (KeyError, ValueError) as error:
        raise InputError("bearing", f"cannot diagnose bearing {bearing!r}: {error}") from None
    return {"available": True, **_plain(result.as_dict())}


def _plain(value: Any) -> Any:
    """Numpy values and non-finite floats as plain JSON values."""
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
