"""The stack's pipeline job: a small synthetic plant in the inbox (once), then `vibrasense pipeline run`.

Arguments are passed to `vibrasense pipeline run` (e.g. --force). A real deployment mounts its recordings
at the inbox (or sets VIBRASENSE_PIPELINE__INPUTS) and skips the synthetic plant with VIBRASENSE_JOB_SYNTHETIC=0.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from vibrasense.cli import main
from vibrasense.signals.synthetic import write_audio_plant


def synthetic_inbox(inbox: Path) -> None:
    """Two pumps: 16 normal training clips each, 4 normal and 4 anomalous test clips, 4 s long."""
    if any(inbox.rglob("*.wav")):
        return
    write_audio_plant(inbox, n_machines=2, n_normal_train=16, n_test_normal=4, n_test_anomaly=4, seconds=4.0, seed=11)


if __name__ == "__main__":
    workdir = Path(os.environ.get("VIBRASENSE_WORKDIR", "vibrasense-work"))
    if os.environ.get("VIBRASENSE_JOB_SYNTHETIC", "1") != "0":
        synthetic_inbox(workdir / "inbox")
    sys.argv = ["vibrasense", "pipeline", "run", *sys.argv[1:]]
    main()
