"""Recordings in no known layout: each file a reader knows is one, labelled and grouped by rule.

Its recording id is its path: the input's own name, its folders and the file name (``plant/LM_DEF/LM 1668.wav``;
a file given alone: its folder's name and its own), so files of one name in different folders stay apart.

Label rules (``--label-rule`` / ``ingest.label_rule``) are ``PATTERN=LABEL`` pairs separated by commas, LABEL one
of normal, anomaly, unknown. A pattern is matched, ignoring case, against the names on that path:

- a pattern with ``*``, ``?`` or ``[`` is a glob on one folder name or the file name (``BLADE_FAULT_*``); one with
  ``/`` is a glob on the whole path (``*/pump_2/*.wav``; ``*`` crosses folders);
- any other pattern is words: it matches a folder name, or a file name without its extension, in which those words
  follow one another, words being cut at ``_``, ``-``, ``.`` and spaces. ``DEF`` matches ``LM_DEF`` and
  ``LM_NON-DEF``; ``ON_`` (the same rule as ``ON``) matches ``ON_0001.wav``, not ``CONDITION_1.wav``.

Where several patterns match a recording the longest wins (``NON-DEF`` over ``DEF``); two equally long ones with
different labels, a pattern given two labels, or a pair that is no ``PATTERN=LABEL`` are a :class:`ConfigError`
naming the option. A recording no rule matches is ``unknown``.

The machine id (``--machine-from`` / ``ingest.machine_from``): ``folder`` (default) is the nearest folder on the
path that no label rule matched (``plant`` for ``plant/LM_DEF/x.wav`` under ``DEF=anomaly``), the outermost
when all are matched; ``input`` is the input's own name; anything else is a regular expression with one group,
searched in the path, whose group is the id (a file it does not match is reported and ignored).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from fnmatch import fnmatchcase
from pathlib import PurePosixPath
from typing import cast, get_args

from vibrasense.config import IngestSettings
from vibrasense.errors import ConfigError, InputError
from vibrasense.signals.readers import detect_format
from vibrasense.signals.records import Label, RecordingRef, Split

LABEL_OPTION = "--label-rule (ingest.label_rule)"
MACHINE_OPTION = "--machine-from (ingest.machine_from)"
LABELS: tuple[str, ...] = get_args(Label)
SPLITS: tuple[str, ...] = get_args(Split)
_WORD_BREAK = re.compile(r"[_\-.\s]+")
_GLOB = frozenset("*?[")


def _words(text: str) -> list[str]:
    return [word for word in _WORD_BREAK.split(text.lower()) if word]


@dataclass(frozen=True)
class LabelRule:
    """One ``PATTERN=LABEL`` pair."""

    pattern: str
    label: Label

    @property
    def on_path(self) -> bool:
        """Whether the pattern is a glob on the whole path rather than on one name."""
        return "/" in self.pattern

    @property
    def is_glob(self) -> bool:
        return self.on_path or any(char in _GLOB for char in self.pattern)

    @property
    def key(self) -> str:
        """What the pattern matches, normalised: two rules of one key are the same rule."""
        return self.pattern.lower() if self.is_glob else " ".join(_words(self.pattern))

    def matches_name(self, name: str, is_file: bool) -> bool:
        """Whether one folder name or file name matches (never, for a glob on the whole path)."""
        if self.on_path:
            return False
        if self.is_glob:
            return fnmatchcase(name.lower(), self.pattern.lower())
        words, own = _words(PurePosixPath(name).stem if is_file else name), _words(self.pattern)
        return any(words[i : i + len(own)] == own for i in range(len(words) - len(own) + 1))

    def matches(self, parts: Sequence[str]) -> bool:
        """Whether the recording at ``parts`` (input name, folders, file name) matches."""
        if self.on_path:
            return fnmatchcase("/".join(parts).lower(), self.pattern.lower())
        return any(self.matches_name(name, i == len(parts) - 1) for i, name in enumerate(parts))


def parse_label_rules(text: str | None) -> tuple[LabelRule, ...]:
    """The rules of ``PATTERN=LABEL,...``; a :class:`ConfigError` naming the option for a bad or ambiguous one."""
    rules: dict[str, LabelRule] = {}
    for pair in (text or "").split(","):
        if not pair.strip():
            continue
        pattern, sep, label = (part.strip() for part in pair.rpartition("="))
        if not sep or not pattern:
            raise ConfigError(
                f"{LABEL_OPTION}: {pair.strip()!r} is not PATTERN=LABEL; write e.g. 'DEF=anomaly,NON-DEF=normal'"
            )
        if label.lower() not in LABELS:
            raise ConfigError(f"{LABEL_OPTION}: label {label!r} of {pattern!r} is not one of {', '.join(LABELS)}")
        rule = LabelRule(pattern, cast(Label, label.lower()))
        if not rule.key:
            raise ConfigError(f"{LABEL_OPTION}: pattern {pattern!r} has no words to match (only _ - . or spaces)")
        earlier = rules.get(rule.key)
        if earlier is not None and earlier.label != rule.label:
            raise ConfigError(
                f"{LABEL_OPTION}: {earlier.pattern!r} and {pattern!r} are one pattern with two labels "
                f"({earlier.label}, {rule.label}); give it one"
            )
        rules[rule.key] = rule
    return tuple(rules.values())


@dataclass(frozen=True)
class IngestRules:
    """How files of no known layout become recordings: label rules and the machine-id rule."""

    labels: tuple[LabelRule, ...] = ()
    machine_from: str = "folder"
    machine_pattern: re.Pattern[str] | None = None

    @classmethod
    def from_settings(cls, settings: IngestSettings | None) -> IngestRules:
        """The rules ``settings`` give; a :class:`ConfigError` naming the option for an invalid one."""
        if settings is None:
            return cls()
        labels = parse_label_rules(settings.label_rule)
        if settings.machine_from in ("folder", "input"):
            return cls(labels, settings.machine_from)
        try:
            pattern = re.compile(settings.machine_from)
        except re.error as error:
            raise ConfigError(
                f"{MACHINE_OPTION}: {settings.machine_from!r} is not a regular expression ({error})"
            ) from None
        if pattern.groups != 1:
            raise ConfigError(
                f"{MACHINE_OPTION}: {settings.machine_from!r} has {pattern.groups} groups; give folder, input or a "
                r"regular expression with one group, e.g. 'machine_(\d+)'"
            )
        return cls(labels, "pattern", pattern)

    def label(self, parts: Sequence[str]) -> Label:
        """The label of the longest matching pattern; ``unknown`` when none matches."""
        matched = [rule for rule in self.labels if rule.matches(parts)]
        if not matched:
            return "unknown"
        longest = max(len(rule.pattern) for rule in matched)
        best = [rule for rule in matched if len(rule.pattern) == longest]
        if len({rule.label for rule in best}) > 1:
            raise ConfigError(
                f"{LABEL_OPTION}: {' and '.join(repr(rule.pattern) for rule in best)} both match {'/'.join(parts)} "
                "and give different labels; make one longer (a glob on the whole name, e.g. 'LM_DEF')"
            )
        return best[0].label

    def machine(self, source: str, parts: Sequence[str]) -> str:
        """The machine id of the recording at ``parts``; :class:`InputError` where the pattern does not match."""
        if self.machine_pattern is not None:
            found = self.machine_pattern.search("/".join(parts))
            if found is None or not found.group(1):
                raise InputError(source, f"{MACHINE_OPTION} {self.machine_pattern.pattern!r} does not match its path")
            return found.group(1)
        folders = parts[:-1]
        if self.machine_from == "input" or not folders:
            return parts[0] or "machine"
        unlabelled = [name for name in folders if not any(rule.matches_name(name, False) for rule in self.labels)]
        return (unlabelled or folders[:1])[-1] or "machine"


def rule_ref(
    source: str,
    parts: tuple[str, ...],
    modified: datetime,
    fingerprint: str,
    rules: IngestRules,
    *,
    label: Label | None = None,
    machine_id: str | None = None,
    split: Split = "unknown",
) -> RecordingRef:
    """The recording a file of no known layout is; ``label`` and ``machine_id``, when given, win over the rules.

    The fingerprint also changes with the metadata, so a changed rule re-extracts the recordings it relabels.
    """
    fmt = detect_format(parts[-1])
    label = label or rules.label(parts)
    machine_id = machine_id or rules.machine(source, parts)
    metadata = hashlib.sha1(f"{label}|{machine_id}|{split}|{modified.isoformat()}".encode()).hexdigest()[:12]
    return RecordingRef(
        recording_id="/".join(parts),
        source=source,
        format=fmt,
        machine_id=machine_id,
        machine_type="unknown",
        event_timestamp=modified,
        label=label,
        split=split,
        kind="audio" if fmt == "wav" else "vibration",
        fingerprint=f"{fingerprint}-{metadata}",
    )
