"""The retraining pipeline's record of one run: which steps are done and what each produced.

Kept in ``<workdir>/pipeline/state.json`` and replaced atomically after every step, so a run killed at any point
resumes at the first step not recorded as done; finished runs are appended to ``history.jsonl``.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vibrasense.errors import OutputError

STATE_FILE = "state.json"
HISTORY_FILE = "history.jsonl"


@dataclass
class StepRecord:
    """A finished step: when, and what it produced (JSON-ready)."""

    done_at: str
    result: dict[str, Any]


@dataclass
class RunState:
    """One pipeline run."""

    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    steps: dict[str, StepRecord] = field(default_factory=dict)
    finished_at: str | None = None
    trigger: str = "manual"

    def done(self, step: str) -> bool:
        """Whether ``step`` finished in this run."""
        return step in self.steps

    def result(self, step: str) -> dict[str, Any]:
        """What ``step`` produced (empty when it has not run)."""
        record = self.steps.get(step)
        return record.result if record else {}


class RunStore:
    """Reads and writes the run state of a work directory."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @property
    def path(self) -> Path:
        """The state file."""
        return self.folder / STATE_FILE

    def current(self) -> RunState | None:
        """The latest run (finished or not), or ``None`` before the first."""
        if not self.path.is_file():
            return None
        data = json.loads(self.path.read_text())
        steps = {name: StepRecord(**record) for name, record in data.pop("steps").items()}
        return RunState(steps=steps, **data)

    def last_finished(self) -> dict[str, Any] | None:
        """The last finished run, as recorded in the history."""
        history = self.folder / HISTORY_FILE
        if not history.is_file():
            return None
        lines = [line for line in history.read_text().splitlines() if line.strip()]
        return json.loads(lines[-1]) if lines else None

    def save(self, state: RunState) -> None:
        """Replace the state file atomically: a crash leaves the previous state or this one, never half."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("w", dir=self.folder, suffix=".tmp", delete=False) as handle:
                json.dump(asdict(state), handle, indent=2)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(handle.name, self.path)
        except OSError as error:
            raise OutputError(f"cannot write the pipeline state {self.path}: {error.strerror or error}") from None

    def finish(self, state: RunState) -> None:
        """Mark the run finished, then record it in the history once (a crash in between is repaired by calling
        this again: the history never holds a run twice)."""
        if state.finished_at is None:
            state.finished_at = datetime.now(UTC).isoformat()
            self.save(state)
        last = self.last_finished()
        if last is None or last["run_id"] != state.run_id:
            with (self.folder / HISTORY_FILE).open("a") as history:
                history.write(json.dumps(asdict(state)) + "\n")
