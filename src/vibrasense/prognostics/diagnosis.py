"""Which defect a bearing has, from the physics of its envelope spectrum; needs no labels.

A localised defect makes impacts at a characteristic rate, which show in the squared-envelope spectrum of
the band the impacts excite as a line at that rate and its harmonics: BPFO for the outer race; BPFI for the
inner race, with sidebands at ± the shaft rate (the defect turns in and out of the load zone); 2·BSF for a
rolling element (it strikes both races once per spin; BSF itself is often visible), with sidebands at ± the
cage rate; FTF and its harmonics for the cage.

The signal is first cepstrally prewhitened (spectrum divided by its magnitude), which removes the shaft and
gear harmonics that would otherwise dominate; its ends are tapered before and trimmed after, since the FFT
treats the record as circular and the jump from its last sample to its first would whiten into the largest
impulse of the record. It is then enveloped in two views: the whole band (less the anti-alias edges, which
whitening lifts to the level of the rest), and the band of largest spectral kurtosis (``kurtogram_band``, a
light kurtogram over a few STFT resolutions). Smith & Randall (2015) found this pair the most reliable on the
CWRU data. Every hypothesis is scored in each view by how far its lines stand above the local floor of the
spectrum; the verdict is the best hypothesis above the detection level, else "none". A rolling element's
impacts are also amplitude-modulated at the cage rate (the element carries load only in the load zone), so
an FTF line supports that hypothesis as its sidebands do.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.fft
import scipy.signal

from vibrasense.errors import InputError
from vibrasense.signals.bearings import BearingGeometry, defect_frequencies, get_bearing

DEFECTS = ("outer_race", "inner_race", "rolling_element", "cage")
# A hypothesis must score this much (line amplitude over local floor, with support). On noise and on healthy
# synthetic records of 0.5-50 s the best of the four scores stays below 1.55 (the score of a hypothesis whose
# fundamental is not a line is that fundamental's ratio alone), so 2.5 leaves a margin of 1.6x over chance.
DETECTION_LEVEL = 2.5
LINE_LEVEL = 1.5  # a single line counts (as fundamental, sideband or evidence) from this ratio over the floor
HARMONICS = 3
ENVELOPE_RESOLUTION_HZ = 0.25  # Welch segments of the squared envelope are 1 / this long (at most a quarter)
MIN_SECONDS = 0.05
EDGE_SHARE = 0.02  # share of the record tapered at each end before whitening and trimmed after
BAND_EDGES = (0.02, 0.45)  # shares of the sample rate: below and above lie DC and anti-alias roll-off


@dataclass(frozen=True)
class Peak:
    """One spectral line looked for: where it was expected, where it was found, how far above the floor."""

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


def diagnose(
    samples: np.ndarray,
    sample_rate: float,
    bearing: BearingGeometry | str,
    shaft_hz: float | None = None,
) -> Diagnosis:
    """Name the likely defect of a bearing recording (outer race, inner race, rolling element, cage or none).

    ``bearing`` is a geometry or a preset name; ``shaft_hz`` defaults to the preset's usual speed.
    """
    geometry = get_bearing(bearing) if isinstance(bearing, str) else bearing
    if shaft_hz is None:
        if not geometry.shaft_rpm:
            raise InputError("shaft_hz", f"bearing {geometry.name} has no usual speed; give the shaft speed")
        shaft_hz = geometry.shaft_rpm / 60.0
    x = np.asarray(samples, dtype=np.float64).ravel()
    if len(x) < MIN_SECONDS * sample_rate or not np.isfinite(x).all() or np.std(x) == 0:
        raise InputError("samples", f"need at least {MIN_SECONDS} s of finite, non-constant samples")
    lines = defect_frequencies(geometry, shaft_hz)
    whitened = prewhiten(x, trim=True)
    full_band = (BAND_EDGES[0] * sample_rate, BAND_EDGES[1] * sample_rate)
    views = {full_band: whitened, kurtogram_band(whitened, sample_rate): whitened}
    best: tuple[float, str, dict[str, float], dict[str, list[Peak]], tuple[float, float]] | None = None
    for band, signal in views.items():
        freqs, spectrum = squared_envelope_spectrum(signal, sample_rate, band)
        floor = local_floor(freqs, spectrum)
        hypotheses = {
            "outer_race": _evidence(freqs, spectrum, floor, "BPFO", lines["bpfo"], None),
            "inner_race": _evidence(freqs, spectrum, floor, "BPFI", lines["bpfi"], shaft_hz),
            "rolling_element": [
                *_evidence(freqs, spectrum, floor, "2xBSF", 2 * lines["bsf"], lines["ftf"]),
                find_line(freqs, spectrum, floor, "FTF", lines["ftf"]),  # the cage-rate modulation itself
            ],
            "cage": _evidence(freqs, spectrum, floor, "FTF", lines["ftf"], None),
        }
        scores = {name: _score(peaks) for name, peaks in hypotheses.items()}
        top = max(scores.values())
        if best is None or top > best[0]:
            best = (top, max(scores, key=scores.__getitem__), scores, hypotheses, band)
    assert best is not None
    top, name, scores, hypotheses, band = best
    band_hz = (round(band[0], 1), round(band[1], 1))
    if top < DETECTION_LEVEL:
        return Diagnosis("none", float(0.5 + 0.5 * (1 - top / DETECTION_LEVEL)), scores, [], band_hz)
    runner_up = sorted(scores.values())[-2]
    margin = 1 - runner_up / top
    strength = 1 - DETECTION_LEVEL / top
    confidence = float(np.clip(0.5 + 0.5 * min(margin, 1.0) * (0.5 + 0.5 * strength), 0.0, 1.0))
    evidence = [peak for peak in hypotheses[name] if peak.snr >= LINE_LEVEL]
    return Diagnosis(name, confidence, scores, evidence, band_hz)


def prewhiten(x: np.ndarray, trim: bool = False) -> np.ndarray:
    """Cepstral prewhitening: keep only the phase of the spectrum, which flattens every discrete line.

    The ends are tapered (``EDGE_SHARE`` of the record each) so that the circular jump from the last sample to
    the first does not whiten into a large spurious impulse; ``trim`` drops the tapered ends from the result.
    """
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    edge = int(EDGE_SHARE * n)
    taper = scipy.signal.windows.tukey(n, 2 * edge / n) if edge else np.ones(n)
    spectrum = scipy.fft.rfft((x - x.mean()) * taper)
    magnitude = np.abs(spectrum)
    whitened = scipy.fft.irfft(spectrum / np.maximum(magnitude, 1e-12 * magnitude.max()), n=n)
    return whitened[edge : n - edge] if trim and edge else whitened


def kurtogram_band(x: np.ndarray, sample_rate: float) -> tuple[float, float]:
    """The frequency band of largest spectral kurtosis over a few STFT resolutions (a light kurtogram).

    Spectral kurtosis SK(f) = <|X(t,f)|⁴> / <|X(t,f)|²>² − 2 is zero for stationary noise and large where
    transients (defect impacts) live; the band is centred on the best bin, two bins wide.
    """
    best_band, best_kurtosis = (0.0, sample_rate / 2), -np.inf
    for nperseg in (16, 32, 64, 128, 256):
        if nperseg * 8 > len(x):
            continue
        freqs, _, stft = scipy.signal.stft(x, sample_rate, nperseg=nperseg, noverlap=3 * nperseg // 4)
        power = np.abs(stft) ** 2
        kurtosis = (power**2).mean(axis=1) / np.maximum(power.mean(axis=1) ** 2, 1e-300) - 2
        # the edges hold anti-alias roll-off, which prewhitening lifts into spurious kurtosis
        kurtosis[(freqs < BAND_EDGES[0] * sample_rate) | (freqs > BAND_EDGES[1] * sample_rate)] = -np.inf
        index = int(np.argmax(kurtosis))
        if kurtosis[index] > best_kurtosis:
            width = sample_rate / nperseg
            low = max(freqs[index] - width, 0.0)
            best_band, best_kurtosis = (low, min(low + 2 * width, sample_rate / 2)), kurtosis[index]
    return float(best_band[0]), float(best_band[1])


def squared_envelope_spectrum(
    x: np.ndarray, sample_rate: float, band: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """(frequencies, amplitude) of the squared envelope of ``x`` band-passed to ``band``, Welch-averaged."""
    spectrum = scipy.fft.fft(x)
    freqs = np.abs(scipy.fft.fftfreq(len(x), 1.0 / sample_rate))
    keep = (freqs >= band[0]) & (freqs <= band[1]) & (scipy.fft.fftfreq(len(x)) >= 0)
    analytic = np.zeros_like(spectrum)
    analytic[keep] = 2 * spectrum[keep]
    envelope = np.abs(scipy.fft.ifft(analytic)) ** 2
    nperseg = min(len(x) // 4, int(sample_rate / ENVELOPE_RESOLUTION_HZ))  # at least ~7 averages
    out_freqs, power = scipy.signal.welch(
        envelope - envelope.mean(), sample_rate, nperseg=nperseg, noverlap=nperseg // 2, detrend=False
    )
    return out_freqs, np.sqrt(power)


def local_floor(freqs: np.ndarray, amplitudes: np.ndarray, width_hz: float = 20.0) -> np.ndarray:
    """Running median of the spectrum over ``width_hz`` (up to 1.5 kHz): the level a line must rise above."""
    step = freqs[1] - freqs[0]
    half = max(int(width_hz / step / 2), 2)
    limit = min(len(amplitudes), int(1_500 / step) + half)
    padded = np.pad(amplitudes[:limit], half, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1)
    floor = np.full(len(amplitudes), np.inf)
    floor[:limit] = np.median(windows, axis=1)[:limit]
    return np.maximum(floor, 1e-300)


def find_line(freqs: np.ndarray, amplitudes: np.ndarray, floor: np.ndarray, label: str, hz: float) -> Peak:
    """The strongest bin within slip tolerance (1 % or 1.5 bins) of ``hz``, as a multiple of the floor."""
    tolerance = max(1.5 * (freqs[1] - freqs[0]), 0.01 * hz)
    near = np.flatnonzero(np.abs(freqs - hz) <= tolerance)
    if hz <= 0 or near.size == 0:
        return Peak(label, round(hz, 2), round(hz, 2), 0.0)
    ratio = amplitudes[near] / floor[near]
    index = int(np.argmax(ratio))
    return Peak(label, round(hz, 2), round(float(freqs[near[index]]), 2), round(float(ratio[index]), 2))


def _evidence(
    freqs: np.ndarray,
    amplitudes: np.ndarray,
    floor: np.ndarray,
    name: str,
    hz: float,
    sideband_hz: float | None,
) -> list[Peak]:
    """The fundamental, its harmonics, and the sidebands around the fundamental and second harmonic."""
    peaks = [
        find_line(freqs, amplitudes, floor, f"{k}x{name}" if k > 1 else name, k * hz) for k in range(1, HARMONICS + 1)
    ]
    if sideband_hz:
        for k in (1, 2):
            peaks += [
                find_line(freqs, amplitudes, floor, f"{k}x{name}{sign}{sideband_hz:.1f}", k * hz + s * sideband_hz)
                for sign, s in (("-", -1), ("+", 1))
            ]
    return peaks


def _score(peaks: list[Peak]) -> float:
    """Strength of a hypothesis: its fundamental with its strongest harmonic, helped by sidebands present.

    The fundamental must stand out (harmonics of different defects coincide: 2·BPFI ≈ 3·BPFO on a 9-ball
    bearing), and pairing it with a harmonic keeps a single stray line from naming a defect; each sideband
    that stands out adds 10 %.
    """
    fundamental = peaks[0].snr
    if fundamental < LINE_LEVEL:
        return fundamental
    base = (fundamental + max(p.snr for p in peaks[1:HARMONICS])) / 2
    sidebands = [p for p in peaks[HARMONICS:] if p.snr >= LINE_LEVEL]
    return base * (1 + 0.1 * len(sidebands))
