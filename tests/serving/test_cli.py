"""``vibrasense serve`` without a registered champion fails at start-up with a clear error, not a trace."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_serve_without_a_champion_exits_with_a_model_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "vibrasense", "--workdir", str(tmp_path), "serve", "--port", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 5, result.stdout + result.stderr
    assert "error:" in result.stderr and "Traceback" not in result.stdout + result.stderr
    assert "model" in result.stderr.lower()
