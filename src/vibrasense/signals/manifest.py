"""A manifest: a CSV that lists the recordings, for sets whose folders and names say nothing a rule can read.

Columns, named in a header in any order: ``path`` (required; relative to the manifest's folder, or absolute) and,
optionally, ``machine_id``, ``label`` (normal, anomaly, unknown), ``split`` (train, test, unknown) and ``timestamp``
(ISO 8601; UTC unless it names its zone). An empty cell takes the label or machine rule (see ``rules``), split
``unknown`` or the file's modification time. A bad row, or one whose path does not exist, is reported with its line
number (``<manifest>:<line>``) and skipped; the other rows are ingested. Recording ids are the paths, the manifest's
folder name first, as when that folder is walked.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from vibrasense.errors import InputError
from vibrasense.signals.records import Label, RecordingRef, Split
from vibrasense.signals.rules import LABELS, SPLITS, IngestRules, rule_ref

log = logging.getLogger(__name__)

COLUMNS = ("path", "machine_id", "label", "split", "timestamp")


def read_manifest(
    manifest: Path, rules: IngestRules, ignored: list[tuple[str, str]] | None = None
) -> list[RecordingRef]:
    """The recordings ``manifest`` lists; ``ignored`` receives ``(<manifest>:<line>, reason)`` for each bad row."""
    try:
        text = manifest.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(manifest, f"cannot read the manifest ({error})") from None
    reader = csv.DictReader(io.StringIO(text))
    header = [name.strip().lower() for name in reader.fieldnames or []]
    if "path" not in header:
        raise InputError(manifest, f"a manifest needs a header with a 'path' column (columns: {', '.join(COLUMNS)})")
    reader.fieldnames = header
    if extra := sorted(set(header) - set(COLUMNS)):
        log.warning("%s: columns %s are not read (columns: %s)", manifest, ", ".join(extra), ", ".join(COLUMNS))
    folder = manifest.resolve().parent
    refs: list[RecordingRef] = []
    lines: dict[str, int] = {}
    for row in reader:
        where = f"{manifest}:{reader.line_num}"
        try:
            ref = _row_ref(folder, {key: (value or "").strip() for key, value in row.items() if key}, rules)
            if ref.source in lines:
                raise InputError(ref.source, f"is listed on line {lines[ref.source]} already")
        except InputError as error:
            log.warning("%s: %s; row skipped", where, error.reason)
            if ignored is not None:
                ignored.append((where, error.reason))
            continue
        lines[ref.source] = reader.line_num
        refs.append(ref)
    return refs


def _row_ref(folder: Path, row: dict[str, str], rules: IngestRules) -> RecordingRef:
    listed = row.get("path", "")
    if not listed:
        raise InputError(listed, "the path is empty")
    label, split = row.get("label", "").lower(), row.get("split", "").lower() or "unknown"
    if label and label not in LABELS:
        raise InputError(listed, f"label {label!r} is not one of {', '.join(LABELS)}")
    if split not in SPLITS:
        raise InputError(listed, f"split {split!r} is not one of {', '.join(SPLITS)}")
    relative = Path(os.path.normpath(listed))
    path = folder / relative
    if not path.is_file():
        problem = "is no file" if path.exists() else "does not exist"
        raise InputError(path, f"path {listed!r} {problem} (looked at {path})")
    stat = path.stat()
    parts = relative.parts[1:] if relative.is_absolute() else (folder.name, *relative.parts)
    return rule_ref(
        str(path),
        tuple(parts),
        _timestamp(row.get("timestamp", "")) or datetime.fromtimestamp(stat.st_mtime, UTC),
        f"{stat.st_size}-{stat.st_mtime_ns}",
        rules,
        label=cast(Label, label) if label else None,
        machine_id=row.get("machine_id") or None,
        split=cast(Split, split),
    )


def _timestamp(text: str) -> datetime | None:
    if not text:
        return None
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(text, f"timestamp {text!r} is not ISO 8601 (e.g. 2024-05-01T12:00:00Z)") from None
    return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)
