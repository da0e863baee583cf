"""Alarm management: states per machine and sensor, trigger and reset delays, alarm lifecycle, learned levels.

Pure logic, no web framework and no database: :class:`AlarmEngine` turns each snapshot (a score, a severity
reading, or "not running") into the sensor's and the machine's state and the alarm events it causes;
:class:`AlarmBook` holds the alarms (raised, acknowledged, shelved, cleared); :mod:`.levels` learns the
default levels from normal data at training and reads them back from a model folder.
"""

from vibrasense.alarms.engine import AlarmEngine, Snapshot, SnapshotResult
from vibrasense.alarms.levels import (
    LEVELS_FILE,
    AlarmLevels,
    LearnedLevels,
    ResolvedRules,
    learn_levels,
    load_learned_levels,
    resolve_rules,
    save_learned_levels,
)
from vibrasense.alarms.lifecycle import (
    Alarm,
    AlarmBook,
    AlarmConflict,
    AlarmEvent,
    UnknownAlarm,
    fold_events,
)
from vibrasense.alarms.monitor import LevelMonitor, slope
from vibrasense.alarms.states import STATES, State, machine_state, worst

__all__ = [
    "LEVELS_FILE",
    "STATES",
    "Alarm",
    "AlarmBook",
    "AlarmConflict",
    "AlarmEngine",
    "AlarmEvent",
    "AlarmLevels",
    "LearnedLevels",
    "LevelMonitor",
    "ResolvedRules",
    "Snapshot",
    "SnapshotResult",
    "State",
    "UnknownAlarm",
    "fold_events",
    "learn_levels",
    "load_learned_levels",
    "machine_state",
    "resolve_rules",
    "save_learned_levels",
    "slope",
    "worst",
]
