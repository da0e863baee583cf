"""Rolling-element bearing geometry and the defect frequencies it implies.

For a bearing with ``n`` rolling elements of diameter ``d`` on pitch diameter ``D`` and contact angle ``θ``,
at shaft frequency ``fr``, with ``r = d/D·cos θ``:
BPFO = n/2·fr·(1 − r), BPFI = n/2·fr·(1 + r), FTF = fr/2·(1 − r), BSF = D/(2d)·fr·(1 − r²)
(ball spin; a ball defect strikes both races per spin, so it shows at 2·BSF).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from vibrasense.errors import ConfigError
from vibrasense.signals.records import RecordingRef, SignalContext


@dataclass(frozen=True)
class BearingGeometry:
    """Geometry of one bearing, in any consistent length unit, and its usual shaft speed."""

    name: str
    n_elements: int
    element_diameter: float
    pitch_diameter: float
    contact_angle_deg: float = 0.0
    shaft_rpm: float | None = None

    @property
    def ratio(self) -> float:
        """d/D·cos θ."""
        return self.element_diameter / self.pitch_diameter * math.cos(math.radians(self.contact_angle_deg))


def defect_frequencies(bearing: BearingGeometry, shaft_hz: float) -> dict[str, float]:
    """BPFO, BPFI, BSF (ball spin, 1×) and FTF in Hz at ``shaft_hz``."""
    r = bearing.ratio
    half = bearing.n_elements / 2 * shaft_hz
    return {
        "bpfo": half * (1 - r),
        "bpfi": half * (1 + r),
        "bsf": bearing.pitch_diameter / (2 * bearing.element_diameter) * shaft_hz * (1 - r**2),
        "ftf": shaft_hz / 2 * (1 - r),
    }


PRESETS: dict[str, BearingGeometry] = {
    # CWRU drive end, SKF 6205-2RS JEM deep-groove ball bearing (inches); 0 HP load runs at ~1797 rpm.
    "cwru-6205-de": BearingGeometry("cwru-6205-de", 9, 0.3126, 1.537, 0.0, 1797.0),
    # CWRU fan end, SKF 6203-2RS JEM (inches): 8 balls; the data center's multiples of running speed are BPFI
    # 4.9469, BPFO 3.0530, FTF 0.3817, BSF 1.9944, which these dimensions give to four digits.
    "cwru-6203-fe": BearingGeometry("cwru-6203-fe", 8, 0.2656, 1.122, 0.0, 1797.0),
    # IMS test rig, Rexnord ZA-2115 double-row roller bearing (inches), 2000 rpm.
    "ims-za2115": BearingGeometry("ims-za2115", 16, 0.331, 2.815, 15.17, 2000.0),
    # FEMTO-ST PRONOSTIA test bearing (mm), as the IEEE PHM 2012 challenge literature describes it: 13 balls
    # of 3.5 mm, outer race 29.1 mm, inner race 22.1 mm, so pitch (29.1 + 22.1) / 2 = 25.6 mm, contact angle
    # 0. BPFO ~ 5.61 x shaft. Shaft speed depends on the operating condition, see FEMTO_CONDITION_RPM.
    "femto": BearingGeometry("femto", 13, 3.5, 25.6, 0.0, 1800.0),
}

FEMTO_CONDITION_RPM = {"1": 1800.0, "2": 1650.0, "3": 1500.0}
# The CWRU rig's accelerometer positions and the bearing each one sits on: drive end and fan end.
CWRU_POSITION_PRESETS = {"DE": "cwru-6205-de", "FE": "cwru-6203-fe"}
# The other bearings on the same shaft as a preset's: every sensor there hears them too.
SHAFT_NEIGHBOURS = {"cwru-6205-de": ("cwru-6203-fe",), "cwru-6203-fe": ("cwru-6205-de",)}


def get_bearing(name: str) -> BearingGeometry:
    """A preset by name; unknown names are a configuration error listing the presets."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(
            f"features.vibration.bearing: unknown bearing preset {name!r}; presets are {sorted(PRESETS)} or 'auto'"
        ) from None


def position_preset(preset: str | None, channel: int | str | None) -> str | None:
    """The preset of the bearing under the sensor ``channel`` reads, where the rig has one per position.

    A CWRU recording's ``FE`` channel sits on the fan-end 6203, its ``DE`` channel on the drive-end 6205; any
    other preset or channel (``BA``: the base plate, no bearing of its own) keeps ``preset``.
    """
    if preset not in CWRU_POSITION_PRESETS.values() or not isinstance(channel, str):
        return preset
    return CWRU_POSITION_PRESETS.get(channel.upper(), preset)


def layout_context(ref: RecordingRef) -> SignalContext:
    """What a recording's dataset layout says about its bearing and shaft speed (nothing for audio clips)."""
    name = ref.attributes.get("bearing_preset")
    rpm = ref.attributes.get("shaft_rpm")
    if rpm is None and name == "femto":
        rpm = FEMTO_CONDITION_RPM.get(ref.machine_id.removeprefix("Bearing")[:1])
    return SignalContext(bearing=str(name) if name else None, shaft_hz=float(rpm) / 60.0 if rpm else None)
