"""The one configuration: embedded defaults < ``vibrasense.yaml`` < ``VIBRASENSE_*`` variables < CLI flags.

Nested fields are reached from the environment with a double underscore, for example
``VIBRASENSE_STORE__ONLINE_STORE=redis`` or ``VIBRASENSE_TRAINING__MAX_EPOCHS=5``.
"""

from __future__ import annotations

import itertools
import json
import os
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import quote

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
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
    band_estimator: Literal["welch", "periodogram"] = Field(
        "welch",
        description="How band energies are estimated: 'welch' (mean of half-overlapping Hann frames of "
        "band_frame samples, each less its mean; shares the log-mel's frames when the recording is at the audio "
        "rate and band_frame is the log-mel's n_fft) or 'periodogram' (one FFT of the whole recording, as feature "
        "specs saved before this option).",
    )
    band_frame: int = Field(1024, ge=16, description="Samples per Welch frame (band_estimator 'welch').")
    bearing: str = Field("auto", description="Bearing preset (cwru-6205-de, ims-za2115, femto) or 'auto'.")
    shaft_hz: float | None = Field(None, gt=0, description="Shaft speed; else taken from the recording.")

    @field_validator("band_edges_hz")
    @classmethod
    def _ascending(cls, edges: list[float]) -> list[float]:
        if len(edges) < 2 or any(b <= a for a, b in itertools.pairwise(edges)):
            raise ValueError("needs at least two strictly ascending edges in Hz")
        return edges


class SegmentSettings(_Section):
    """Recordings cut into windows at ingest, each window a recording row of its own (none by default)."""

    length_s: float | None = Field(None, gt=0, description="Window length in seconds; None: a recording is one row.")
    hop_s: float | None = Field(None, gt=0, description="Seconds between window starts; None: the length.")

    @model_validator(mode="after")
    def _hop_needs_a_length(self) -> SegmentSettings:
        if self.hop_s is not None and self.length_s is None:
            raise ValueError("features.segment.hop_s needs features.segment.length_s")
        return self


class FeatureSettings(_Section):
    """Feature extraction and how it is scaled out."""

    logmel: LogMelSettings = LogMelSettings()
    vibration: VibrationSettings = VibrationSettings()
    segment: SegmentSettings = SegmentSettings()
    workers: int = Field(0, ge=0, description="Local worker processes; 0 uses every core.")
    batch_size: int = Field(64, gt=0, description="Recordings per task and per written part.")
    dask_scheduler: str | None = Field(None, description="Address of a Dask scheduler, e.g. tcp://host:8786.")


class IngestSettings(_Section):
    """Recordings in no known layout: labels and machine ids by rule, or a manifest (``vibrasense.signals.rules``)."""

    label_rule: str | None = Field(
        None, description="PATTERN=LABEL,... matched on folder and file names, e.g. 'DEF=anomaly,NON-DEF=normal'."
    )
    machine_from: str = Field("folder", description="folder | input | a regular expression with one group.")
    manifest: Path | None = Field(
        None, description="CSV of recordings: path (relative to it) and optionally machine_id, label, split, timestamp."
    )


class _StoreBackend(_Section):
    """One backend of the feature store, chosen by ``type`` as in Feast's own YAML.

    ``feast_config`` gives Feast's own config object for it (Feast is imported there, not when this module is):
    with ``reveal_password=False`` a password is the ``${VARIABLE}`` reference that Feast expands when it reads
    ``feature_store.yaml``, so the file never holds one.
    """

    title: ClassVar[str]
    password_env: ClassVar[str] = ""

    def feast_config(self, repo: Path, reveal_password: bool) -> Any:
        """Feast's config object for this backend, for the feature repository at ``repo``."""
        raise NotImplementedError

    def describe(self, repo: Path) -> str:
        """Which backend, and where, for messages (never a password)."""
        return self.title

    def servers(self) -> list[tuple[str, int]]:
        """``(host, port)`` of each server this backend needs; none for files."""
        return []

    def secret(self) -> str | None:
        """The password, for redacting messages."""
        password: SecretStr | None = getattr(self, "password", None)
        return (password.get_secret_value() or None) if password is not None else None

    def _password(self, reveal: bool) -> str:
        if not reveal:
            return f"${{{self.password_env}}}"
        return self.secret() or ""


class PostgresSettings(_StoreBackend):
    """A PostgreSQL server; the password comes from the environment, never from a committed file."""

    host: str = "127.0.0.1"
    port: int = Field(5432, gt=0, lt=65536)
    database: str = "vibrasense"
    user: str = "postgres"
    password: SecretStr | None = None
    sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] = "prefer"

    def describe(self, repo: Path) -> str:
        return f"{self.title} {self.user}@{self.host}:{self.port}/{self.database}"

    def servers(self) -> list[tuple[str, int]]:
        return [(self.host, self.port)]


class SqliteOnlineStoreSettings(_StoreBackend):
    """Feast's SQLite online store, a file in the feature repository: nothing to install (the default)."""

    title: ClassVar[str] = "SQLite online store"
    type: Literal["sqlite"] = "sqlite"

    def feast_config(self, repo: Path, reveal_password: bool) -> Any:
        from feast.infra.online_stores.sqlite import SqliteOnlineStoreConfig

        return SqliteOnlineStoreConfig(type="sqlite", path=str(repo / "data" / "online_store.db"))

    def describe(self, repo: Path) -> str:
        return f"{self.title} {repo / 'data' / 'online_store.db'}"


class PostgresOnlineStoreSettings(PostgresSettings):
    """Feast's PostgreSQL online store; the password also from ``VIBRASENSE_STORE__ONLINE_STORE__PASSWORD``."""

    title: ClassVar[str] = "PostgreSQL online store"
    password_env: ClassVar[str] = "VIBRASENSE_STORE__ONLINE_STORE__PASSWORD"
    type: Literal["postgres"] = "postgres"
    db_schema: str = "public"

    def feast_config(self, repo: Path, reveal_password: bool) -> Any:
        from feast.infra.online_stores.postgres_online_store.postgres import PostgreSQLOnlineStoreConfig

        return PostgreSQLOnlineStoreConfig(
            type="postgres",
            host=self.host,
            port=self.port,
            database=self.database,
            db_schema=self.db_schema,
            user=self.user,
            password=self._password(reveal_password),
            sslmode=self.sslmode,
        )

    def describe(self, repo: Path) -> str:
        return f"{super().describe(repo)} (schema {self.db_schema})"


class RedisOnlineStoreSettings(_StoreBackend):
    """Feast's Redis online store, reached through Feast's connection string taken whole.

    ``connection_string`` is ``host:port`` then Feast's parameters: ``db=1``, ``ssl=true``, ``username=...``,
    ``password=...``. A password written in it is moved into ``password`` (a secret; also
    ``VIBRASENSE_STORE__ONLINE_STORE__PASSWORD``), so neither a message nor a generated file shows it.
    """

    title: ClassVar[str] = "Redis online store"
    password_env: ClassVar[str] = "VIBRASENSE_STORE__ONLINE_STORE__PASSWORD"
    type: Literal["redis"] = "redis"
    connection_string: str = Field("127.0.0.1:6379", description="Feast's: host:port,db=0,ssl=true,password=...")
    password: SecretStr | None = None

    @model_validator(mode="after")
    def _password_apart(self) -> RedisOnlineStoreSettings:
        parts = [part.strip() for part in self.connection_string.split(",")]
        passwords = [part.partition("=")[2] for part in parts if part.startswith("password=")]
        if not passwords:
            return self
        if len(passwords) > 1 or self.password is not None:
            raise ValueError("the Redis password is given twice (in connection_string and as password); give it once")
        # set directly: assigning would validate again, and this is the validation
        object.__setattr__(self, "connection_string", ",".join(p for p in parts if not p.startswith("password=")))
        object.__setattr__(self, "password", SecretStr(passwords[0]))
        return self

    @field_validator("connection_string")
    @classmethod
    def _has_servers(cls, value: str) -> str:
        nodes = [part.strip() for part in value.split(",") if "=" not in part]
        if not nodes or not all(node.partition(":")[2].isdigit() for node in nodes if ":" in node):
            raise ValueError("needs host:port first, then Feast's parameters, e.g. redis.internal:6379,db=1,ssl=true")
        return value

    def feast_connection_string(self, reveal_password: bool) -> str:
        """The whole connection string Feast reads, with the password or its ``${VARIABLE}`` reference."""
        if self.password is None:
            return self.connection_string
        return f"{self.connection_string},password={self._password(reveal_password)}"

    def feast_config(self, repo: Path, reveal_password: bool) -> Any:
        from feast.infra.online_stores.redis import RedisOnlineStoreConfig

        return RedisOnlineStoreConfig(type="redis", connection_string=self.feast_connection_string(reveal_password))

    def describe(self, repo: Path) -> str:
        return f"{self.title} {self.connection_string}"

    def servers(self) -> list[tuple[str, int]]:
        nodes = [part.strip().partition(":") for part in self.connection_string.split(",") if "=" not in part]
        return [(host or "127.0.0.1", int(port or 6379)) for host, _, port in nodes]


class FileRegistrySettings(_StoreBackend):
    """Feast's file registry in the feature repository (the default)."""

    title: ClassVar[str] = "file registry"
    type: Literal["file"] = "file"

    def feast_config(self, repo: Path, reveal_password: bool) -> Any:
        from feast.repo_config import RegistryConfig

        return RegistryConfig(registry_type="file", path=str(repo / "data" / "registry.db"), cache_ttl_seconds=60)

    def describe(self, repo: Path) -> str:
        return f"{self.title} {repo / 'data' / 'registry.db'}"


class SqlRegistrySettings(PostgresSettings):
    """Feast's SQL registry on PostgreSQL; the password also from ``VIBRASENSE_STORE__REGISTRY__PASSWORD``."""

    title: ClassVar[str] = "PostgreSQL SQL registry"
    password_env: ClassVar[str] = "VIBRASENSE_STORE__REGISTRY__PASSWORD"
    type: Literal["sql"] = "sql"

    def url(self, reveal_password: bool) -> str:
        """SQLAlchemy URL of the database (psycopg 3 driver)."""
        password = quote(self._password(True), safe="") if reveal_password else self._password(False)
        credentials = quote(self.user, safe="") + (f":{password}" if password else "")
        return f"postgresql+psycopg://{credentials}@{self.host}:{self.port}/{self.database}?sslmode={self.sslmode}"

    def feast_config(self, repo: Path, reveal_password: bool) -> Any:
        from feast.infra.registry.sql import SqlRegistryConfig

        return SqlRegistryConfig(
            registry_type="sql",
            path=self.url(reveal_password),
            cache_ttl_seconds=60,
            sqlalchemy_config_kwargs={"echo": False, "pool_pre_ping": True},
        )


OnlineStoreSettings = Annotated[
    SqliteOnlineStoreSettings | PostgresOnlineStoreSettings | RedisOnlineStoreSettings, Field(discriminator="type")
]
RegistrySettings = Annotated[FileRegistrySettings | SqlRegistrySettings, Field(discriminator="type")]


class StoreSettings(_Section):
    """The Feast feature store: its online store and registry, each a backend chosen by ``type``.

    A plain name (``online_store: redis``, ``VIBRASENSE_STORE__ONLINE_STORE=redis``) is ``{type: redis}``
    with that backend's defaults; a JSON object from the environment is read as the whole section.
    """

    project: str = Field("vibrasense", pattern=r"^[a-z][a-z0-9_]*$")
    online_store: Annotated[OnlineStoreSettings, NoDecode] = SqliteOnlineStoreSettings()
    registry: Annotated[RegistrySettings, NoDecode] = FileRegistrySettings()
    ttl_days: int = Field(3650, gt=0, description="How far back a point-in-time join may look.")

    @model_validator(mode="before")
    @classmethod
    def _moved_fields(cls, data: Any) -> Any:
        moved = sorted({"postgres", "redis_connection"} & set(data)) if isinstance(data, dict) else []
        if moved:
            raise ValueError(
                f"{' and '.join(moved)} moved into the backend they configure: write online_store: {{type: postgres, "
                "host: ...} or {type: redis, connection_string: ...}, and registry: {type: sql, host: ...}"
            )
        return data

    @field_validator("online_store", "registry", mode="before")
    @classmethod
    def _backend_by_type(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = json.loads(value) if value.lstrip().startswith("{") else {"type": value}
        if isinstance(value, dict) and "type" not in value:
            raise ValueError(
                "needs a type; write the section as a mapping ({type: ..., ...}): a plain name is replaced, not "
                "completed, by VIBRASENSE_STORE__... variables that set its other fields"
            )
        return value

    def secrets(self) -> list[str]:
        """The passwords of the online store and the registry, for redacting messages."""
        return [secret for secret in (self.online_store.secret(), self.registry.secret()) if secret]


class ModelSettings(_Section):
    """The detector to train: a name (``vibrasense models list``) and its own hyper-parameters."""

    name: str = "cnn-ae"
    params: dict[str, Any] = Field(
        default_factory=dict, description="Constructor arguments of the detector, checked before training."
    )


class TrainingSettings(_Section):
    """Detector training.

    ``model`` is ``{name: mahalanobis, params: {covariance: min-cov-det}}``, or just a name (no params);
    from the environment ``VIBRASENSE_TRAINING__MODEL__NAME=lof`` and
    ``VIBRASENSE_TRAINING__MODEL__PARAMS='{"n_neighbors": 10}'``. The other fields are shared by the
    detectors: each one a detector's constructor accepts by name is passed to it (``seed`` also as
    ``random_state``), one left ``None`` keeps the detector's own default (``z_dim``: cnn-ae 40, dense-ae
    8, the DCASE baseline's), and ``model.params`` win over them all.
    """

    model: Annotated[ModelSettings, NoDecode] = ModelSettings()
    z_dim: int | None = Field(None, gt=0, description="Autoencoder bottleneck; None keeps each detector's own.")
    learning_rate: float = Field(1e-3, gt=0)
    max_epochs: int = Field(30, gt=0)
    batch_size: int = Field(64, gt=0)
    accelerator: str = "auto"
    threshold_method: Literal["percentile", "gamma"] = "percentile"
    threshold_percentile: float = Field(95.0, gt=0, lt=100)
    patch_frames: int | None = Field(None, gt=0, description="Log-mel frames per cnn-ae patch; None keeps 32.")
    validation_fraction: float = Field(0.2, gt=0, lt=1)
    early_stopping_patience: int = Field(5, ge=1)
    seed: int = 42
    domain_limit: float = Field(
        3.0,
        gt=0,
        description="Domain distance beyond which a recording is 'unknown domain' (another machine, another "
        "sensor): not judged an anomaly, a domain warning instead, unless it names a machine the model was trained "
        "on; recorded with the model.",
    )

    @field_validator("model", mode="before")
    @classmethod
    def _name_alone(cls, model: Any) -> Any:
        """A plain name means no params (``NoDecode`` lets ``VIBRASENSE_TRAINING__MODEL=lof`` through as one)."""
        if isinstance(model, str):
            return json.loads(model) if model.lstrip().startswith("{") else {"name": model}
        return model


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
    runtime: Literal["native", "onnx"] = Field(
        "native",
        description="What runs the detector: native (torch / scikit-learn) or onnx (ONNX Runtime; the version is "
        "exported to ONNX once, into the model cache, on first load).",
    )
    api_key: SecretStr | None = None
    scoring_api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Keys (one per client) that may score, sent in X-API-Key; empty: scoring is open. "
        "From the environment a JSON list or comma-separated keys.",
    )
    max_upload_mb: float = Field(50.0, gt=0)
    max_duration_s: float = Field(600.0, gt=0)
    max_samples: int = Field(
        10_000_000, gt=0, description="Samples one recording may decode to, every channel counted (40 MB as float32)."
    )
    min_sample_rate: int = Field(1_000, gt=0)
    max_sample_rate: int = Field(200_000, gt=0)
    score_store_url: str | None = Field(None, description="Default: sqlite:///<workdir>/scores.db")
    header_timeout_s: float = Field(10.0, gt=0, description="A request's line and headers must arrive within this.")
    body_timeout_s: float = Field(60.0, gt=0, description="A request's body must arrive within this (408 after).")
    keep_alive_s: float = Field(
        75.0,
        gt=0,
        description="An idle keep-alive connection is closed after this: longer than clients and load balancers keep "
        "one to reuse (httpx 5 s, aiohttp 15 s, ALB 60 s), else a request races the close and gets no answer.",
    )
    max_connections: int = Field(
        1000, gt=1, description="Open connections at most: the oldest idle ones are closed first, then 503."
    )
    max_header_kb: int = Field(16, gt=0, description="A request's line and headers, at most (431 above).")
    graceful_shutdown_s: float = Field(10.0, ge=0, description="Requests in flight get this long at shutdown.")
    scoring_threads: int = Field(
        0,
        ge=0,
        description="Recordings scored at once, each in a worker thread; the others wait their turn. 0: one per "
        "core (more threads than cores only contend for the interpreter lock and cost CPU per clip).",
    )

    @field_validator("scoring_api_keys", mode="before")
    @classmethod
    def _keys_list(cls, keys: Any) -> Any:
        if isinstance(keys, str):
            text = keys.strip()
            return json.loads(text) if text.startswith("[") else [key.strip() for key in text.split(",") if key.strip()]
        return keys


MachineClass = Literal["I", "II", "III", "IV"]
"""ISO 10816-1 machine classes: I small, II medium, III large rigid, IV large on soft foundations."""


class AlarmRules(_Section):
    """Alarm rules of one machine; a field left ``None`` comes from ``alarms`` (then from what training learned).

    Levels are on the model's score (higher is worse): ``warning_level`` <= ``alarm_level`` and ``reset_level``
    below ``warning_level`` (hysteresis). A level raises its state when ``trigger_count`` of the last
    ``trigger_window`` snapshots are above it; a warning or alarm returns to ok only after ``reset_count``
    consecutive snapshots below ``reset_level``.
    """

    warning_level: float | None = Field(None, description="Score of a warning; default learned: the model threshold.")
    alarm_level: float | None = Field(None, description="Score of an alarm; default learned: a high normal quantile.")
    reset_level: float | None = Field(None, description="A state resets below this; default learned: a low quantile.")
    running_rms: float | None = Field(
        None,
        ge=0,
        description="Overall RMS (units as sent) below which the machine is not running: no model call, no alarm; "
        "default learned: a fraction of the lowest normal RMS; 0 turns the gate off.",
    )
    trigger_count: int | None = Field(None, ge=1, description="k: snapshots above a level among the last n.")
    trigger_window: int | None = Field(None, ge=1, description="n: the snapshots the trigger delay looks at.")
    reset_count: int | None = Field(None, ge=1, description="m: consecutive snapshots below the reset level.")
    rate_window: int | None = Field(None, ge=2, description="Snapshots the score slope is fitted over.")
    rate_limit: float | None = Field(
        None, gt=0, description="Score rise per snapshot that raises a rate-of-change warning; default learned."
    )
    machine_class: MachineClass | None = Field(None, description="ISO 10816-1 class; none: no severity zone.")
    acceleration_unit: Literal["g", "m/s2"] | None = Field(None, description="Unit of accelerometer samples.")
    sound_sensors: list[str] | None = Field(None, description="Sensors that are microphones: no severity zone.")


class AlarmSettings(AlarmRules):
    """Alarm management: the defaults for every machine, and ``machines: {machine_id: {...}}`` overrides."""

    trigger_count: int | None = Field(2, ge=1, description="k: snapshots above a level among the last n.")
    trigger_window: int | None = Field(3, ge=1, description="n: the snapshots the trigger delay looks at.")
    reset_count: int | None = Field(3, ge=1, description="m: consecutive snapshots below the reset level.")
    rate_window: int | None = Field(10, ge=2, description="Snapshots the score slope is fitted over.")
    acceleration_unit: Literal["g", "m/s2"] | None = Field("g", description="Unit of accelerometer samples.")
    sound_sensors: list[str] | None = Field(
        default_factory=lambda: ["mic", "microphone"], description="Sensors that are microphones: no severity zone."
    )
    machines: dict[str, AlarmRules] = Field(default_factory=dict, description="Per-machine overrides, by machine id.")

    def rules(self, machine_id: str) -> AlarmRules:
        """The rules of ``machine_id``: its overrides over these defaults (``None`` still means "learned")."""
        defaults = self.model_dump(exclude={"machines"})
        override = self.machines.get(machine_id)
        given = override.model_dump(exclude_none=True) if override is not None else {}
        return AlarmRules(**(defaults | given))


class GatewaySettings(_Section):
    """The MQTT gateway (``vibrasense gateway``) and the plant simulator: the broker and how the gateway uses it.

    The password comes from ``VIBRASENSE_GATEWAY__PASSWORD`` (or the YAML file), never from the command line.
    """

    host: str = Field("127.0.0.1", description="MQTT broker host.")
    port: int = Field(1883, gt=0, lt=65536, description="MQTT broker port (8883 is usual with TLS).")
    protocol: Literal["5", "3.1.1"] = Field(
        "5", description="MQTT version; the embedded broker speaks 3.1.1 only, and is always used with it."
    )
    tls: bool = Field(False, description="Connect with TLS (on by itself when ca_file is given).")
    ca_file: Path | None = Field(None, description="CA certificates (PEM) the broker's certificate is checked against.")
    cert_file: Path | None = Field(None, description="Client certificate (PEM), for brokers that require one.")
    key_file: Path | None = Field(None, description="Private key (PEM) of cert_file.")
    user: str | None = Field(None, description="Broker user name.")
    password: SecretStr | None = Field(None, description="Broker password (VIBRASENSE_GATEWAY__PASSWORD).")
    client_id: str = Field(
        "vibrasense-gateway",
        min_length=1,
        max_length=23,
        description="Fixed client id: the broker keeps this session's subscriptions and unacknowledged messages.",
    )
    site: str = Field("+", description="Site subscribed to (the second topic level); + for every site.")
    session_expiry_s: int = Field(
        7 * 24 * 3600, ge=0, description="MQTT 5: how long the broker keeps the session while the gateway is away."
    )
    keepalive_s: int = Field(30, ge=5, description="MQTT keep-alive interval.")
    queue_size: int = Field(
        32, gt=0, le=65535, description="Messages received and not yet scored, at most (MQTT 5 Receive Maximum)."
    )
    registry_poll_s: float = Field(30.0, ge=0, description="How often the registry alias is checked; 0: never.")
    online_push_s: float = Field(1.0, gt=0, description="Features go to the online store in batches this often.")
    metrics_host: str = Field("127.0.0.1", description="Interface of the gateway's /metrics and /healthz.")
    metrics_port: int = Field(9108, ge=0, lt=65536, description="Port of /metrics and /healthz; 0: none.")

    @model_validator(mode="after")
    def _key_with_cert(self) -> GatewaySettings:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together: give both or neither")
        return self


class DriftSettings(_Section):
    """Drift monitoring: when recent features, scores or sensors have moved away from the training reference.

    A feature (or the score) drifts when the Kolmogorov–Smirnov test rejects "same distribution" at ``alpha``
    shared over the machine's tests (Bonferroni) *and* the Wasserstein distance is at least ``min_shift``
    robust standard deviations of the reference: significant and large enough to matter.
    """

    alpha: float = Field(0.01, gt=0, lt=1, description="Family-wise false-alarm rate per machine and comparison.")
    min_shift: float = Field(0.5, gt=0, description="Smallest Wasserstein distance, in reference robust SDs.")
    min_recordings: int = Field(5, ge=2, description="Recent recordings a machine needs before it is compared.")
    since: str = Field("7d", description="Default look-back of `vibrasense drift` (e.g. 24h, 7d).")


class PipelineSettings(_Section):
    """The retraining pipeline (`vibrasense pipeline run`, the Airflow DAG): where new recordings arrive, when to
    train, what the challenger is judged on, and which service to tell."""

    inputs: list[Path] = Field(
        default_factory=list, description="Folders or archives of recordings; default <workdir>/inbox."
    )
    retrain: Literal["always", "on_drift"] = Field(
        "always", description="Train a challenger every run, or only when drift is detected (or there is no champion)."
    )
    evaluation: Path | None = Field(
        None,
        description="Features folder with labelled test recordings both versions are judged on; default the "
        "pipeline's features.",
    )
    service_url: str | None = Field(
        None, description="The running service to tell to reload (e.g. http://127.0.0.1:8000); none: no reload step."
    )
    reload_timeout_s: float = Field(120.0, gt=0, description="How long the service may take to load the champion.")


class Settings(BaseSettings):
    """Everything vibrasense can be told; every field has a working default."""

    model_config = SettingsConfigDict(
        env_prefix="VIBRASENSE_", env_nested_delimiter="__", extra="forbid", validate_assignment=True
    )

    workdir: Path = Field(Path("vibrasense-work"), description="Where outputs, stores and models live.")
    signals: SignalSettings = SignalSettings()
    ingest: IngestSettings = IngestSettings()
    features: FeatureSettings = FeatureSettings()
    store: StoreSettings = StoreSettings()
    training: TrainingSettings = TrainingSettings()
    tracking: TrackingSettings = TrackingSettings()
    serving: ServingSettings = ServingSettings()
    gateway: GatewaySettings = GatewaySettings()
    alarms: AlarmSettings = AlarmSettings()
    drift: DriftSettings = DriftSettings()
    pipeline: PipelineSettings = PipelineSettings()

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
    except yaml.YAMLError as error:
        raise ConfigError(f"configuration file {path} is not valid YAML: {_yaml_problem(error)}") from None
    except (ValueError, OSError) as error:
        raise ConfigError(f"cannot read configuration {path}: {error}") from None
    finally:
        _config_file.reset(token)


def _yaml_problem(error: yaml.YAMLError) -> str:
    """What the YAML parser found and where, as an editor shows it (line and column from 1)."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else problem


def _describe(error: ValidationError, path: Path | None) -> str:
    where = f" (file {path}, environment VIBRASENSE_*, or flags)" if path else " (environment or flags)"
    lines = [f"invalid configuration{where}:"]
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or "<root>"
        lines.append(f"  {field}: {item['msg']}")
    return "\n".join(lines)
