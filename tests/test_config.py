"""The configuration: defaults < YAML file < environment < flags, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from vibrasense.config import load_settings
from vibrasense.errors import ConfigError


def test_embedded_defaults_need_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.signals.sample_rate == 16_000
    assert (settings.features.logmel.n_mels, settings.features.logmel.n_fft) == (128, 1024)
    assert settings.features.logmel.hop_length == 512
    assert settings.store.online_store.type == "sqlite"
    assert settings.tracking_uri == f"sqlite:///{tmp_path / 'vibrasense-work' / 'mlflow.db'}"


def test_file_then_environment_then_flags_win(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "vibrasense.yaml"
    config.write_text("training:\n  z_dim: 16\n  max_epochs: 3\nstore:\n  online_store: redis\n")
    monkeypatch.setenv("VIBRASENSE_TRAINING__MAX_EPOCHS", "7")
    settings = load_settings(config, training={"learning_rate": 0.01})
    assert settings.training.z_dim == 16  # file
    assert settings.training.max_epochs == 7  # environment beats file
    assert settings.training.learning_rate == 0.01  # flag
    assert settings.store.online_store.type == "redis"
    flagged = load_settings(config, training={"max_epochs": 2})
    assert flagged.training.max_epochs == 2  # flag beats environment
    assert flagged.training.z_dim == 16  # a nested flag keeps the file's siblings


def test_default_file_in_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("vibrasense.yaml").write_text("signals:\n  sample_rate: 22050\n")
    assert load_settings().signals.sample_rate == 22050


def test_password_from_environment_is_secret(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VIBRASENSE_STORE__ONLINE_STORE__TYPE", "postgres")
    monkeypatch.setenv("VIBRASENSE_STORE__ONLINE_STORE__PASSWORD", "hunter2")
    settings = load_settings()
    assert settings.store.online_store.password.get_secret_value() == "hunter2"
    assert "hunter2" not in repr(settings)


@pytest.mark.parametrize(
    ("yaml_text", "field"),
    [
        ("training:\n  z_dim: -1\n", "training.z_dim"),
        ("store:\n  online_store: cassandra\n", "store.online_store"),
        ("features:\n  vibration:\n    band_edges_hz: [100, 50]\n", "features.vibration.band_edges_hz"),
        ("trainig:\n  z_dim: 3\n", "trainig"),
    ],
)
def test_invalid_values_name_the_field(tmp_path: Path, yaml_text: str, field: str) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(yaml_text)
    with pytest.raises(ConfigError) as raised:
        load_settings(config)
    assert field in str(raised.value)
    assert str(config) in str(raised.value)


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.yaml")


def test_a_yaml_syntax_error_is_a_config_error_naming_the_file_and_line(tmp_path: Path) -> None:
    config = tmp_path / "vibrasense.yaml"
    config.write_text("workdir: [unclosed\n  serving: x\n")
    with pytest.raises(ConfigError) as error:
        load_settings(config)
    message = str(error.value)
    assert f"configuration file {config} is not valid YAML" in message and "line 2, column 10" in message
