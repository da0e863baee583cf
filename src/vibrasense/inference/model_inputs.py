"""What a model consumes, recorded in its folder at training: input kind, feature columns, default context.

``model_inputs.json`` sits beside the detector's files and the ``feature_spec.json`` it was trained on.
The default context is the bearing and shaft speed shared by every training recording, if they share one:
serving uses it when a request does not say, and refuses a recording whose needed columns it cannot
compute.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from vibrasense.errors import ModelError
from vibrasense.signals.records import SignalContext

INPUTS_FILE = "model_inputs.json"
InputKind = Literal["logmel", "tabular"]


@dataclass(frozen=True)
class ModelInputs:
    """The input kind of a model, the feature columns it reads (in order), its default context, and the lowest
    sample rate it was trained and evaluated on (a recording sampled slower lacks frequencies the model reads)."""

    kind: InputKind
    columns: tuple[str, ...] = ()
    default_context: SignalContext = field(default_factory=SignalContext)
    min_sample_rate: float | None = None

    def save(self, folder: Path | str) -> Path:
        """Write ``model_inputs.json`` into ``folder``."""
        path = Path(folder) / INPUTS_FILE
        context = {"bearing": self.default_context.bearing, "shaft_hz": self.default_context.shaft_hz}
        path.write_text(
            json.dumps(
                {
                    "kind": self.kind,
                    "columns": list(self.columns),
                    "default_context": context,
                    "min_sample_rate": self.min_sample_rate,
                },
                indent=2,
            )
        )
        return path

    @classmethod
    def load(cls, folder: Path | str) -> ModelInputs:
        """The inputs recorded by :meth:`save` in ``folder``."""
        path = Path(folder) / INPUTS_FILE
        if not path.is_file():
            raise ModelError(f"{folder}: {INPUTS_FILE} missing; the model was not saved by `vibrasense train`")
        data = json.loads(path.read_text())
        context = data.get("default_context") or {}
        return cls(
            kind=data["kind"],
            columns=tuple(data.get("columns", ())),
            default_context=SignalContext(context.get("bearing"), context.get("shaft_hz")),
            min_sample_rate=data.get("min_sample_rate"),
        )


def shared_context(bearings: Iterable[object], shaft_speeds: Iterable[object]) -> SignalContext:
    """The bearing and shaft speed common to every training recording; ``None`` where they differ or are unknown."""
    names = {b for b in bearings if isinstance(b, str) and b}
    speeds = {round(float(s), 9) for s in shaft_speeds if s is not None and not math.isnan(float(s))}
    return SignalContext(
        bearing=names.pop() if len(names) == 1 else None,
        shaft_hz=speeds.pop() if len(speeds) == 1 else None,
    )
