"""Bad input to the CLI ends in a message and the exit code of its error class, never in a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from vibrasense.errors import ConfigError, InputError, OutputError


def vibrasense(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vibrasense", "--workdir", str(cwd / "work"), *args],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=cwd,
    )


def refused(result: subprocess.CompletedProcess[str], exit_code: int) -> str:
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert result.returncode == exit_code, output
    return result.stderr


def test_a_yaml_syntax_error_in_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("workdir: [unclosed\n  serving: x\n")
    stderr = refused(vibrasense(tmp_path, "--config", "broken.yaml", "models", "list"), ConfigError.exit_code)
    assert "error: configuration file broken.yaml is not valid YAML" in stderr and "line 2, column 10" in stderr


@pytest.mark.parametrize("content", ["hello\n", "0.1\n0.2\n0.3\n"])
def test_a_single_text_file_that_is_no_recording(tmp_path: Path, content: str) -> None:
    (tmp_path / "notes.txt").write_text(content)
    stderr = refused(vibrasense(tmp_path, "features", "notes.txt", "--out", "out"), InputError.exit_code)
    assert "error: notes.txt:" in stderr
    assert (tmp_path / "out" / "ingest_report.json").is_file()  # the reason is in the report too


def test_an_output_folder_that_cannot_be_created(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file where a folder should go")
    (tmp_path / "notes.txt").write_text("hello\n")
    stderr = refused(vibrasense(tmp_path, "features", "notes.txt", "--out", "taken/features"), OutputError.exit_code)
    assert "cannot create the output folder taken/features: taken is a file; choose another --out" in stderr
