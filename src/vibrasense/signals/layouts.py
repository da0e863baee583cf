"""Dataset layouts, recognised automatically: each recording found becomes one ``RecordingRef``.

Recognised, per file, so a folder may hold several machines and a parent folder works as well as the
machine folder: DCASE 2020 (``<machine>/{train,test}/{normal,anomaly}_id_XX_NNNNNNNN.wav``), DCASE 2021+
(``section_XX_{source,target}_{train,test}_{normal,anomaly}_*.wav``), MIMII
(``[<snr>/]<machine>/id_XX/{normal,abnormal}/NNNNNNNN.wav``), a ``normal/`` + ``test/`` folder whose file
names say ``normal`` or ``anomaly``, IMS test folders (timestamp-named ASCII snapshots: one recording per
file and channel), FEMTO bearing folders or zips (``acc_NNNNN.csv``), the CWRU ``.mat`` tree, and any single
recording file. Folders and ``.zip``/``.tar.gz`` archives are walked alike, without unpacking.

An input in which no known layout matches any file is not refused: each audio or vibration file in it
(``.wav``/``.flac``/``.ogg``, ``.csv``, ``.npy``, ``.mat``) is a recording whose id is its path, labelled and
grouped by the ingest rules (unlabelled by default; see ``rules``), and the configured manifest is read as the list
of its recordings (see ``manifest``). In an input where a known layout matches, the other files are ignored.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath

from vibrasense.config import IngestSettings
from vibrasense.errors import InputError, LayoutError
from vibrasense.signals.archives import is_archive, list_members, read_bytes
from vibrasense.signals.manifest import read_manifest
from vibrasense.signals.readers import (
    AUDIO_SUFFIXES,
    CWRU_NORMAL_FOLDER,
    FEMTO_NAME,
    IMS_NAME,
)
from vibrasense.signals.records import RecordingRef
from vibrasense.signals.rules import IngestRules, rule_ref

log = logging.getLogger(__name__)

DCASE2020 = re.compile(r"^(normal|anomaly)_id_(\d+)_(\d+)$")
DCASE2021 = re.compile(r"^section_(\d+)_(source|target)_(train|test)_(normal|anomaly)_(.+)$")
FEMTO_EPOCH = datetime(2012, 1, 1, tzinfo=UTC)
FEMTO_PERIOD = timedelta(seconds=10)
CWRU_FAULTS = {"B": "ball", "IR": "inner_race", "OR": "outer_race"}
RULE_SUFFIXES = (*AUDIO_SUFFIXES, ".csv", ".npy", ".mat")
"""Files taken as recordings, by rule, in an input where no known layout matches."""


@dataclass(frozen=True)
class Entry:
    """A file seen while walking a folder or an archive."""

    source: str
    parts: tuple[str, ...]  # path relative to the walked root, the root's own name first
    size: int
    modified: datetime
    fingerprint: str

    @property
    def name(self) -> str:
        return self.parts[-1]

    @property
    def stem(self) -> str:
        return PurePosixPath(self.name).stem

    @property
    def folders(self) -> tuple[str, ...]:
        return self.parts[:-1]


def discover(
    path: Path | str, ignored: list[tuple[str, str]] | None = None, ingest: IngestSettings | None = None
) -> list[RecordingRef]:
    """Every recording under ``path`` (folder, archive, single file or ``ingest.manifest``), ordered by machine, time
    and id.

    ``ignored``, when given, receives ``(source, reason)`` for each file no layout matched and each bad manifest row,
    for the ingest report (also when no recording at all is found and :class:`LayoutError` is raised). ``ingest``
    gives the label and machine rules of recordings in no known layout, and the manifest.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "does not exist; give a folder, an archive (.zip, .tar.gz) or a recording file")
    rules = IngestRules.from_settings(ingest)
    if ingest is not None and ingest.manifest is not None and path.resolve() == ingest.manifest.resolve():
        refs, in_layout = read_manifest(path, rules, ignored), False
        entries: list[Entry] = []
    else:
        entries = list(_walk(path))
        refs = []
        for layout in _LAYOUTS:
            found, entries = layout(entries)
            refs.extend(found)
        in_layout = bool(refs)
        if in_layout and rules.labels:
            log.warning("%s is in a known layout: its labels come from the layout, not from the label rules", path)
        if not in_layout:
            refs, entries = _by_rules(entries, rules, path.is_file() and not is_archive(path), ignored)
    for entry in entries:
        log.debug("ignored %s: no known layout", entry.source)
        if ignored is not None:
            ignored.append((entry.source, _why_ignored(entry, in_layout)))
    if not refs:
        raise LayoutError(
            path,
            "no recordings in a known layout (looked for DCASE 2020/2021+, MIMII, normal/+test/, IMS, FEMTO "
            f"acc_*.csv, CWRU .mat) and no {'/'.join(RULE_SUFFIXES)} file to take as a recording; "
            f"{len(entries)} other files ignored",
        )
    if entries:
        log.info("%s: %d files matched no layout and were ignored", path, len(entries))
    return sorted(refs, key=lambda r: (r.machine_id, r.event_timestamp, r.recording_id))


def _by_rules(
    entries: list[Entry], rules: IngestRules, single: bool, ignored: list[tuple[str, str]] | None
) -> tuple[list[RecordingRef], list[Entry]]:
    """(recordings, files left) of an input in no known layout: a file given alone is a recording whatever its
    name (its reader says what is wrong with it), a file in a folder when a reader knows its suffix."""
    refs, rest = [], []
    for entry in entries:
        if not single and not entry.name.lower().endswith(RULE_SUFFIXES):
            rest.append(entry)
            continue
        try:
            refs.append(rule_ref(entry.source, entry.parts, entry.modified, entry.fingerprint, rules))
        except InputError as error:
            if single:
                raise
            log.warning("ignored %s: %s", entry.source, error.reason)
            if ignored is not None:
                ignored.append((entry.source, error.reason))
    for rule in rules.labels:
        if refs and not any(rule.matches(ref.recording_id.split("/")) for ref in refs):
            log.warning("label rule %r=%s matches no recording", rule.pattern, rule.label)
    return refs, rest


def _why_ignored(entry: Entry, in_layout: bool) -> str:
    suffix = PurePosixPath(entry.name).suffix.lower()
    if suffix in (*RULE_SUFFIXES, ".txt") and in_layout:
        return (
            f"a {suffix} file whose name and folders match no known dataset layout, beside files that do; pass its "
            "folder or itself alone to read it"
        )
    if suffix == ".txt":
        return "a .txt file (often notes) is not taken as a recording from a folder; pass it alone to read it"
    return f"not a recording format vibrasense reads ({suffix or 'no extension'}); expected .wav/.flac/.ogg, " + (
        "IMS snapshots, acc_*.csv, .mat, .csv or .npy"
    )


def _walk(path: Path) -> Iterator[Entry]:
    if is_archive(path):
        root = path.name.split(".")[0]
        for member in list_members(path):
            yield Entry(
                member.source,
                (root, *PurePosixPath(member.name).parts),
                member.size,
                member.modified,
                f"{member.size}-{member.checksum}",
            )
        return
    if path.is_file():
        yield _file_entry(path, (_folder_name(path.parent), path.name))
        return
    for folder, subfolders, files in os.walk(path):
        subfolders.sort()
        relative = Path(folder).relative_to(path).parts
        for name in sorted(files):
            if name.startswith("."):
                continue
            full = Path(folder) / name
            if is_archive(full):
                yield from _walk(full)
            else:
                yield _file_entry(full, (_folder_name(path), *relative, name))


def _folder_name(path: Path) -> str:
    """The name of a folder as a path component, also when it is given as ``.`` or ``..``."""
    return path.name if path.name not in ("", "..") else path.resolve().name


def _file_entry(path: Path, parts: tuple[str, ...]) -> Entry:
    try:
        stat = path.stat()
    except OSError:  # a broken link, or a file gone since the listing: its reader reports why, file by file
        return Entry(str(path), parts, 0, datetime.fromtimestamp(0, UTC), "unreadable")
    return Entry(
        str(path),
        parts,
        stat.st_size,
        datetime.fromtimestamp(stat.st_mtime, UTC),
        f"{stat.st_size}-{stat.st_mtime_ns}",
    )


Layout = Callable[[list[Entry]], tuple[list[RecordingRef], list[Entry]]]


def _per_file(match: Callable[[Entry], RecordingRef | None]) -> Layout:
    """A layout that decides file by file; what it does not claim goes on to the next layout."""

    def layout(entries: list[Entry]) -> tuple[list[RecordingRef], list[Entry]]:
        found, rest = [], []
        for entry in entries:
            ref = match(entry)
            (found if ref is not None else rest).append(ref if ref is not None else entry)
        return found, rest

    return layout


def _is_audio(entry: Entry) -> bool:
    return entry.name.lower().endswith(AUDIO_SUFFIXES)


def _audio_ref(
    entry: Entry,
    recording_id: str,
    machine_id: str,
    machine_type: str,
    label: str,
    split: str,
    **attributes: object,
) -> RecordingRef:
    return RecordingRef(
        recording_id=recording_id,
        source=entry.source,
        format="wav",
        machine_id=machine_id,
        machine_type=machine_type,
        event_timestamp=entry.modified,
        label=label,
        split=split,  # type: ignore[arg-type]
        kind="audio",
        fingerprint=entry.fingerprint,
        attributes=dict(attributes),
    )


def _dcase2021(entry: Entry) -> RecordingRef | None:
    match = DCASE2021.match(entry.stem)
    if not _is_audio(entry) or not match or len(entry.folders) < 2:
        return None
    section, domain, split, label, _ = match.groups()
    machine_type = entry.folders[-2] if entry.folders[-1] in ("train", "test") else entry.folders[-1]
    return _audio_ref(
        entry,
        f"{machine_type}_{entry.stem}",
        f"{machine_type}_section_{section}",
        machine_type,
        label,
        split,
        domain=domain,
        section=section,
    )


def _dcase2020(entry: Entry) -> RecordingRef | None:
    match = DCASE2020.match(entry.stem)
    if not _is_audio(entry) or not match or len(entry.folders) < 2 or entry.folders[-1] not in ("train", "test"):
        return None
    label, machine_number, _ = match.groups()
    machine_type, split = entry.folders[-2], entry.folders[-1]
    return _audio_ref(
        entry,
        f"{machine_type}_{split}_{entry.stem}",
        f"{machine_type}_id_{machine_number}",
        machine_type,
        label,
        split,
    )


def _mimii(entry: Entry) -> RecordingRef | None:
    folders = entry.folders
    if not _is_audio(entry) or len(folders) < 3 or folders[-1] not in ("normal", "abnormal"):
        return None
    if not re.fullmatch(r"id_\d+", folders[-2]):
        return None
    machine_type, machine = folders[-3], folders[-2]
    snr = folders[-4] if len(folders) >= 4 and re.fullmatch(r"-?\d+_?dB", folders[-4], re.IGNORECASE) else None
    label = "anomaly" if folders[-1] == "abnormal" else "normal"
    prefix = f"{snr}_" if snr else ""
    return _audio_ref(
        entry,
        f"{prefix}{machine_type}_{machine}_{folders[-1]}_{entry.stem}",
        f"{machine_type}_{machine}",
        machine_type,
        label,
        "unknown",
        **({"snr": snr} if snr else {}),
    )


def _normal_test(entry: Entry) -> RecordingRef | None:
    folders = entry.folders
    if not _is_audio(entry) or len(folders) < 2 or folders[-1] not in ("normal", "test"):
        return None
    name = entry.stem.lower()
    label = "anomaly" if ("anomaly" in name or "abnormal" in name) else "normal" if "normal" in name else None
    if label is None:
        return None
    machine = folders[-2]
    split = "train" if folders[-1] == "normal" else "test"
    return _audio_ref(entry, f"{machine}_{folders[-1]}_{entry.stem}", machine, machine, label, split)


def _ims(entries: list[Entry]) -> tuple[list[RecordingRef], list[Entry]]:
    found, rest = [], []
    for entry in entries:
        if not IMS_NAME.match(entry.name):
            rest.append(entry)
            continue
        test = entry.folders[-1] if entry.folders else "ims"
        stamp = datetime.strptime(entry.name, "%Y.%m.%d.%H.%M.%S").replace(tzinfo=UTC)
        for channel in range(_ims_channels(entry)):
            found.append(
                RecordingRef(
                    recording_id=f"{test}_{entry.name}_ch{channel + 1}",
                    source=entry.source,
                    format="ims",
                    machine_id=f"{test}_ch{channel + 1}",
                    machine_type="bearing",
                    event_timestamp=stamp,
                    kind="vibration",
                    channel=channel,
                    fingerprint=entry.fingerprint,
                    attributes={"test": test, "bearing_preset": "ims-za2115"},
                )
            )
    return found, rest


def _ims_channels(entry: Entry) -> int:
    """Channels of an IMS snapshot, from its first line (4 in tests 2 and 3, 8 in test 1)."""
    try:
        first_line = read_bytes(entry.source)[:512].split(b"\n", 1)[0]
    except InputError:
        return 1  # unreadable: one recording, whose reader then reports the reason
    return max(len(first_line.split()), 1)


def _femto(entry: Entry) -> RecordingRef | None:
    if not FEMTO_NAME.match(entry.name):
        return None
    bearing = entry.folders[-1] if entry.folders else "femto"
    index = int(re.findall(r"\d+", entry.name)[0])
    return RecordingRef(
        recording_id=f"{bearing}_{entry.stem}",
        source=entry.source,
        format="femto",
        machine_id=bearing,
        machine_type="bearing",
        event_timestamp=FEMTO_EPOCH + (index - 1) * FEMTO_PERIOD,
        kind="vibration",
        fingerprint=entry.fingerprint,
        attributes={"snapshot": index, "bearing_preset": "femto"},
    )


def _cwru(entry: Entry) -> RecordingRef | None:
    """A CWRU ``.mat``: the nearest fault folder (B, IR, OR) or ``Normal`` folder, or a ``..._Normal_...`` name,
    says its label; a word elsewhere in the path (``abnormal_tests/``) says nothing."""
    if not entry.name.lower().endswith(".mat"):
        return None
    folders = Path(entry.source.replace("::", "/")).parts[:-1]  # the whole path: the walked root may be deep
    named_normal = re.search(r"(^|_)normal(_|$)", entry.stem, re.IGNORECASE) is not None
    nearest = next((f for f in reversed(folders) if f in CWRU_FAULTS or CWRU_NORMAL_FOLDER.match(f)), None)
    fault = None if named_normal or nearest is None or nearest not in CWRU_FAULTS else nearest
    is_normal = named_normal or (nearest is not None and fault is None)
    if fault is None and not is_normal:
        return None
    size = next((f for f in reversed(folders) if re.fullmatch(r"0\d\d", f)), None)
    position = next((f.lstrip("@") for f in reversed(folders) if re.fullmatch(r"@\d+", f)), None)
    attributes: dict[str, object] = {
        "bearing_preset": "cwru-6205-de",
        "fault": CWRU_FAULTS.get(fault or "", "none"),
    }
    if size:
        attributes["fault_size_mils"] = int(size)
    if position:
        attributes["position"] = position
    return RecordingRef(
        recording_id=f"cwru_{entry.stem}",
        source=entry.source,
        format="cwru",
        machine_id="cwru_drive_end",
        machine_type="bearing",
        event_timestamp=entry.modified,
        label="normal" if is_normal else "anomaly",
        kind="vibration",
        channel="DE",
        fingerprint=entry.fingerprint,  # no rate hint: the reader takes it from the record number or folder
        attributes=attributes,
    )


_LAYOUTS: tuple[Layout, ...] = (
    _per_file(_dcase2021),
    _per_file(_dcase2020),
    _per_file(_mimii),
    _per_file(_normal_test),
    _ims,
    _per_file(_femto),
    _per_file(_cwru),
)
