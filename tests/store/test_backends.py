"""The store backends as configuration: one class per backend, chosen by ``type``, each giving Feast's own config."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from vibrasense.config import (
    FileRegistrySettings,
    PostgresOnlineStoreSettings,
    RedisOnlineStoreSettings,
    SqliteOnlineStoreSettings,
    SqlRegistrySettings,
    load_settings,
)
from vibrasense.errors import ConfigError
from vibrasense.store import write_repo
from vibrasense.store.repository import CONFIG_FILE, feast_repo_config, redact


def test_each_backend_is_chosen_by_type_and_gives_feasts_own_config(tmp_path: Path) -> None:
    from feast.infra.online_stores.postgres_online_store.postgres import PostgreSQLOnlineStoreConfig
    from feast.infra.online_stores.redis import RedisOnlineStoreConfig
    from feast.infra.online_stores.sqlite import SqliteOnlineStoreConfig
    from feast.infra.registry.sql import SqlRegistryConfig

    default = load_settings(None, workdir=tmp_path)
    assert isinstance(default.store.online_store, SqliteOnlineStoreSettings)
    assert isinstance(default.store.registry, FileRegistrySettings)
    assert isinstance(feast_repo_config(default, reveal_password=True).online_store, SqliteOnlineStoreConfig)

    config = tmp_path / "vibrasense.yaml"
    config.write_text(
        "store:\n"
        "  online_store: {type: postgres, host: pg.internal, database: features, user: vs, db_schema: online}\n"
        "  registry: {type: sql, host: pg.internal, database: registry, user: vs, sslmode: require}\n"
    )
    settings = load_settings(config, workdir=tmp_path)
    assert isinstance(settings.store.online_store, PostgresOnlineStoreSettings)
    assert isinstance(settings.store.registry, SqlRegistrySettings)
    feast = feast_repo_config(settings, reveal_password=True)
    assert isinstance(feast.online_store, PostgreSQLOnlineStoreConfig)
    assert (feast.online_store.host, feast.online_store.db_schema) == ("pg.internal", "online")
    assert isinstance(feast.registry, SqlRegistryConfig)
    assert feast.registry.path == "postgresql+psycopg://vs@pg.internal:5432/registry?sslmode=require"

    redis = load_settings(None, workdir=tmp_path, store={"online_store": "redis"})  # a plain name: the defaults
    assert isinstance(redis.store.online_store, RedisOnlineStoreSettings)
    redis_config = feast_repo_config(redis, reveal_password=True).online_store
    assert isinstance(redis_config, RedisOnlineStoreConfig)
    assert redis_config.connection_string == "127.0.0.1:6379"


def test_passwords_come_from_the_environment_and_never_reach_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIBRASENSE_STORE__ONLINE_STORE__TYPE", "postgres")
    monkeypatch.setenv("VIBRASENSE_STORE__ONLINE_STORE__PASSWORD", "online-pw")
    monkeypatch.setenv("VIBRASENSE_STORE__REGISTRY__TYPE", "sql")
    monkeypatch.setenv("VIBRASENSE_STORE__REGISTRY__PASSWORD", "reg/pw")
    settings = load_settings(None, workdir=tmp_path)
    assert settings.store.secrets() == ["online-pw", "reg/pw"]
    assert "online-pw" not in repr(settings) and "reg/pw" not in repr(settings)
    in_memory = feast_repo_config(settings, reveal_password=True)
    assert in_memory.online_store.password == "online-pw"
    assert in_memory.registry.path.startswith("postgresql+psycopg://postgres:reg%2Fpw@")  # URL-quoted
    assert redact(f"failed: {in_memory.registry.path}", settings) == (
        "failed: postgresql+psycopg://postgres:***@127.0.0.1:5432/vibrasense?sslmode=prefer"
    )

    written = (write_repo(settings) / CONFIG_FILE).read_text()
    assert "online-pw" not in written and "reg%2Fpw" not in written and "reg/pw" not in written
    feast_yaml = yaml.safe_load(written)
    assert feast_yaml["online_store"]["password"] == "${VIBRASENSE_STORE__ONLINE_STORE__PASSWORD}"
    assert "${VIBRASENSE_STORE__REGISTRY__PASSWORD}@" in feast_yaml["registry"]["path"]
    assert "$VIBRASENSE_STORE__ONLINE_STORE__PASSWORD and $VIBRASENSE_STORE__REGISTRY__PASSWORD" in written


def test_the_redis_connection_string_is_taken_whole_with_its_password_kept_secret(tmp_path: Path) -> None:
    whole = "redis.internal:6380,ssl=true,password=r3dis-pw,db=1,username=vs"
    settings = load_settings(
        None, workdir=tmp_path, store={"online_store": {"type": "redis", "connection_string": whole}}
    )
    online = settings.store.online_store
    assert online.connection_string == "redis.internal:6380,ssl=true,db=1,username=vs"
    assert online.servers() == [("redis.internal", 6380)]
    assert "r3dis-pw" not in repr(settings) and "r3dis-pw" not in online.describe(tmp_path)
    assert feast_repo_config(settings, reveal_password=True).online_store.connection_string == (
        "redis.internal:6380,ssl=true,db=1,username=vs,password=r3dis-pw"
    )
    written = yaml.safe_load((write_repo(settings) / CONFIG_FILE).read_text())
    assert written["online_store"] == {
        "type": "redis",
        "connection_string": (
            "redis.internal:6380,ssl=true,db=1,username=vs,password=${VIBRASENSE_STORE__ONLINE_STORE__PASSWORD}"
        ),
    }


@pytest.mark.parametrize(
    ("store", "message"),
    [
        ({"online_store": "cassandra"}, "store.online_store: Input tag 'cassandra'"),
        ({"online_store": {"host": "pg"}}, "store.online_store: Value error, needs a type"),
        ({"postgres": {"host": "pg"}}, "store: Value error, postgres moved into the backend they configure"),
        ({"online_store": {"type": "redis", "connection_string": "r:port"}}, "needs host:port first"),
        (
            {"online_store": {"type": "redis", "connection_string": "r:1,password=a", "password": "b"}},
            "the Redis password is given twice",
        ),
        ({"online_store": {"type": "sqlite", "password": "x"}}, "store.online_store.sqlite.password"),
    ],
)
def test_invalid_store_configuration_names_the_field(tmp_path: Path, store: dict, message: str) -> None:
    with pytest.raises(ConfigError, match="invalid configuration") as error:
        load_settings(None, workdir=tmp_path, store=store)
    assert message in str(error.value)
    assert "password=a" not in str(error.value)
