"""The one configuration: embedded defaults < ``vibrasense.yaml`` < ``VIBRASENSE_*`` variables < CLI flags.

Nested fields are reached from the environment with a double underscore, for example
``VIBRASENSE_STORE__ONLINE_STORE=redis`` or ``VIBRASENSE_TRAINING__MAX_EPOCHS=5``.
"""

from __future__ import annotations

import itertools
import os
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from vibrasense.errors import ConfigError

DEFAULT_CONFIG_FILE = Path("vibrasense.yaml")
_config_file: ContextVar[Path | None] = ContextVar("vibrasense_config_file", default=None)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SignalSettings(_Section):
    """How recordings are read."""

    sample_rate: int = Field(16_000, gt=0, description="Rate audio is resampled to before audio features.")
    channel: int = Field(0, ge=0, description="Channel taken from multi-channel files (MIMII has 8).")
    min_duration_s: float = Field(0.05, ge=0, description="Shorter recordings are rejected as empty.")


class LogMelSettings(_Section):
    """Log-mel spectrograms for the deep models (defaults of the DCASE 2020 baseline)."""

    n_mels: int = Field(128, gt=0)
    n_fft: int = Field(1024, gt=0)
    hop_length: int = Field(512, gt=0)
    fmin: float = Field(0.0, ge=0)
    fmax: float | None = Field(None, gt=0)
    power: float = Field(2.0, gt=0)


class VibrationSettings(_Section):
    """Vibration features: FFT band energies and envelope amplitudes at bearing defect frequencies."""

    band_edges_hz: list[float] = Field(
        default=[0, 500, 1000, 1500, 2000, 3000, 4000, 5000, 6000],
        description="Edges of the FFT bands whose energies become features (ascending, Hz).",
    )
    bearing: str = Field("auto", description="Bearing preset (cwru-6205-de, ims-za2115, femto) or 'auto'.")
    shaft_hz: float | None = Field(None, gt=0, description="Shaft speed; else taken from the recording.")

    @field_validator("band_edges_hz")
    @classmethod
    def _ascending(cls, edges: list[float]) -> list[float]:
        if len(edges) < 2 or any(b <= a for a, b in itertools.pairwise(edges)):
            raise ValueError("needs at least two strictly ascending edges in Hz")
        return edges


class FeatureSettings(_Section):
    """Feature extraction and how it is scaled out."""

    logmel: LogMelSettings = LogMelSettings()
    vibration: VibrationSettings = VibrationSettings()
    workers: int = Field(0, ge=0, description="Local worker processes; 0 uses every core.")
    batch_size: int = Field(64, gt=0, description="Recordings per task and per written part.")
    dask_scheduler: str | None = Field(None, description="Address of a Dask scheduler, e.g. tcp://host:8786.")


class PostgresSettings(_Section):
    """A PostgreSQL server; the password comes from the environment, never from a committed file."""

    host: str = "127.0.0.1"
    port: int = 5432
    database: str = "vibrasense"
    user: str = "postgres"
    password: SecretStr | None = None
    db_schema: str = "public"
    sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] = "prefer"


class StoreSettings(_Section):
    """The Feast feature store."""

    project: str = Field("vibrasense", pattern=r"^[a-z][a-z0-9_]*$")
    online_store: Literal["sqlite", "postgres", "redis"] = "sqlite"
    registry: Literal["file", "sql"] = "file"
    postgres: PostgresSettings = PostgresSettings()
    redis_connection: str = Field("127.0.0.1:6379", description="Feast Redis connection string.")
    ttl_days: int = Field(3650, gt=0, description="How far back a point-in-time join may look.")


class TrainingSettings(_Section):
    """Detector training."""

    model: str = "cnn-ae"
    z_dim: int = Field(40, gt=0)
    learning_rate: float = Field(1e-3, gt=0)
    max_epochs: int = Field(30, gt=0)
    batch_size: int = Field(64, gt=0)
    accelerator: str = "auto"
    threshold_method: Literal["percentile", "gamma"] = "percentile"
    threshold_percentile: float = Field(95.0, gt=0, lt=100)
    patch_frames: int = Field(32, gt=0, description="Log-mel frames per autoencoder patch.")
    validation_fraction: float = Field(0.1, gt=0, lt=1)
    early_stopping_patience: int = Field(5, ge=1)
    seed: int = 42


class TrackingSettings(_Section):
    """MLflow tracking and model registry."""

    tracking_uri: str | None = Field(None, description="Default: sqlite:///<workdir>/mlflow.db")
    experiment: str = "vibrasense"
    registered_model: str = "vibrasense-detector"


class ServingSettings(_Section):
    """The scoring service."""

    host: str = "127.0.0.1"
    port: int = Field(8000, gt=0, lt=65536)
    model_alias: str = "champion"
    model_version: int | None = None
    api_key: SecretStr | None = None
    max_upload_mb: float = Field(50.0, gt=0)
    max_duration_s: float = Field(600.0, gt=0)
    min_sample_rate: int = Field(1_000, gt=0)
    max_sample_rate: int = Field(200_000, gt=0)
    score_store_url: str | None = Field(None, description="Default: sqlite:///<workdir>/scores.db")


class Settings(BaseSettings):
    """Everything vibrasense can be told; every field has a working default."""

    model_config = SettingsConfigDict(
        env_prefix="VIBRASENSE_", env_nested_delimiter="__", extra="forbid", validate_assignment=True
    )

    workdir: Path = Field(Path("vibrasense-work"), description="Where outputs, stores and models live.")
    signals: SignalSettings = SignalSettings()
    features: FeatureSettings = FeatureSettings()
    store: StoreSettings = StoreSettings()
    training: TrainingSettings = TrainingSettings()
    tracking: TrackingSettings = TrackingSettings()
    serving: ServingSettings = ServingSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        yaml_file = _config_file.get()
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if yaml_file is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=yaml_file))
        return tuple(sources)

    @property
    def tracking_uri(self) -> str:
        """The MLflow tracking URI, SQLite in the work directory unless configured."""
        return self.tracking.tracking_uri or f"sqlite:///{self.workdir.resolve() / 'mlflow.db'}"

    @property
    def score_store_url(self) -> str:
        """Where the service records scores, SQLite in the work directory unless configured."""
        return self.serving.score_store_url or f"sqlite:///{self.workdir.resolve() / 'scores.db'}"


def load_settings(config_file: Path | str | None = None, **overrides: Any) -> Settings:
    """Read the configuration; ``overrides`` (nested dicts allowed) win over everything else.

    The file is ``config_file``, else ``$VIBRASENSE_CONFIG``, else ``./vibrasense.yaml`` if it exists.
    """
    explicit = config_file or os.environ.get("VIBRASENSE_CONFIG")
    path = Path(explicit) if explicit else DEFAULT_CONFIG_FILE
    if explicit and not path.is_file():
        raise ConfigError(f"configuration file {path} does not exist; pass an existing YAML file")
    token = _config_file.set(path if path.is_file() else None)
    try:
        return Settings(**overrides)
    except ValidationError as error:
        raise ConfigError(_describe(error, path if path.is_file() else None)) from None
    except (ValueError, OSError) as error:
        raise ConfigError(f"cannot read configuration {path}: {error}") from None
    finally:
        _config_file.reset(token)


def _describe(error: ValidationError, path: Path | None) -> str:
    where = f" (file {path}, environment VIBRASENSE_*, or flags)" if path else " (environment or flags)"
    lines = [f"invalid configuration{where}:"]
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or "<root>"
        lines.append(f"  {field}: {item['msg']}")
    return "\n".join(lines)
