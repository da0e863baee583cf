"""Which defect a bearing has, from the physics of its envelope spectrum; needs no labels.

A localised defect makes impacts at a characteristic rate, which appear in the envelope spectrum of the
resonance band as a line at that rate and its harmonics: BPFO for the outer race; BPFI for the inner race,
with sidebands at ± the shaft rate because the defect turns in and out of the load zone; 2·BSF for a rolling
element, with sidebands at ± the cage rate (FTF); FTF itself for the cage. Each hypothesis is scored by how
far its lines stand above the local noise floor of the spectrum; the strongest one above the detection level
is the verdict, else "none".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vibrasense.features.vibration import envelope_spectrum
from vibrasense.signals.bearings import BearingGeometry, defect_frequencies

DEFECTS = ("outer_race", "inner_race", "rolling_element", "cage")
DETECTION_LEVEL = 6.0  # a line must stand this many times above the local floor to count
HARMONICS = 3


@dataclass(frozen=True)
class Peak:
    """One spectral line looked for: where it was expected, where it was found, how strong."""

    label: str
    expected_hz: float
    found_hz: float
    snr: float


@dataclass
class Diagnosis:
    """The verdict, its confidence in [0, 1], the score of every hypothesis and the evidence for the verdict."""

    verdict: str
    confidence: float
    scores: dict[str, float]
    evidence: list[Peak] = field(default_factory=list)
    band_hz: tuple[float, float] | None = None

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form (for the CLI and the API)."""
        return {
            "verdict": self.verdict,
            "confidence": round(self.confidence, 3),
            "scores": {k: round(v, 2) for k, v in self.scores.items()},
            "evidence": [peak.__dict__ for peak in self.evidence],
            "band_hz": self.band_hz,
        }


def diagnose(samples: np.ndarray, sample_rate: float, bearing: BearingGeometry, shaft_hz: float) -> Diagnosis:
    """Name the likely defect of a bearing recording (outer race, inner race, rolling element, cage or none)."""
    freqs, amplitudes = envelope_spectrum(samples, sample_rate)
    lines = defect_frequencies(bearing, shaft_hz)
    floor = _local_floor(freqs, amplitudes)
    hypotheses = {
        "outer_race": _evidence(freqs, amplitudes, floor, "BPFO", lines["bpfo"], None),
        "inner_race": _evidence(freqs, amplitudes, floor, "BPFI", lines["bpfi"], shaft_hz),
        "rolling_element": _evidence(freqs, amplitudes, floor, "2xBSF", 2 * lines["bsf"], lines["ftf"]),
        "cage": _evidence(freqs, amplitudes, floor, "FTF", lines["ftf"], None),
    }
    scores = {name: _score(peaks) for name, peaks in hypotheses.items()}
    best = max(scores, key=scores.get)  # type: ignore[arg-type]
    if scores[best] < DETECTION_LEVEL:
        margin = scores[best] / DETECTION_LEVEL
        return Diagnosis("none", float(np.clip(1 - margin, 0.0, 1.0) * 0.5 + 0.5), scores)
    ranked = sorted(scores.values(), reverse=True)
    confidence = 1 - ranked[1] / ranked[0] if ranked[0] > 0 else 0.0
    return Diagnosis(best, float(np.clip(0.5 + confidence / 2, 0.0, 1.0)), scores, hypotheses[best])


def _local_floor(freqs: np.ndarray, amplitudes: np.ndarray, width_hz: float = 20.0) -> np.ndarray:
    """Running median of the envelope spectrum: the level a line must rise above."""
    step = freqs[1] - freqs[0]
    half = max(int(width_hz / step / 2), 2)
    limit = min(len(amplitudes), int(1_500 / step) + half)
    padded = np.pad(amplitudes[:limit], half, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1)
    floor = np.full(len(amplitudes), np.inf)
    floor[:limit] = np.median(windows, axis=1)[:limit]
    return np.maximum(floor, 1e-12)


def _line(freqs: np.ndarray, amplitudes: np.ndarray, floor: np.ndarray, label: str, hz: float) -> Peak:
    tolerance = max(2 * (freqs[1] - freqs[0]), 0.015 * hz)
    near = np.flatnonzero(np.abs(freqs - hz) <= tolerance)
    if hz <= 0 or near.size == 0:
        return Peak(label, round(hz, 2), round(hz, 2), 0.0)
    index = near[np.argmax(amplitudes[near])]
    return Peak(
        label, round(hz, 2), round(float(freqs[index]), 2), round(float(amplitudes[index] / floor[index]), 2)
    )


def _evidence(
    freqs: np.ndarray,
    amplitudes: np.ndarray,
    floor: np.ndarray,
    name: str,
    hz: float,
    sideband_hz: float | None,
) -> list[Peak]:
    peaks = [
        _line(freqs, amplitudes, floor, f"{k}x{name}" if k > 1 else name, k * hz)
        for k in range(1, HARMONICS + 1)
    ]
    if sideband_hz:
        peaks += [
            _line(freqs, amplitudes, floor, f"{name}{sign}{sideband_hz:.1f}", hz + s * sideband_hz)
            for sign, s in (("-", -1), ("+", 1))
        ]
    return peaks


def _score(peaks: list[Peak]) -> float:
    """Strength of a hypothesis: its fundamental, helped by harmonics and sidebands that are really there."""
    fundamental = peaks[0].snr
    support = [p.snr for p in peaks[1:] if p.snr >= DETECTION_LEVEL / 2]
    return fundamental * (1 + 0.25 * len(support)) if fundamental >= DETECTION_LEVEL / 2 else fundamental
