"""Configuration from the environment and a secrets directory, refused when unsafe."""

from __future__ import annotations

import json
import os
import secrets
from datetime import timedelta
from pathlib import Path

import pytest

from taskmanager_api.core.config import Environment, SettingsError, key_id_for, load_settings
from taskmanager_api.core.security import KeyRing

STRONG = secrets.token_urlsafe(48)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("TASKMANAGER_"):
            monkeypatch.delenv(name)


def test_production_is_the_default_and_refuses_to_start_without_a_key() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "TASKMANAGER_JWT_SIGNING_KEY is missing" in str(caught.value)


@pytest.mark.parametrize("weak", ["secret", "changeme", "short-key", "a" * 64, "ab" * 40])
def test_weak_keys_are_refused_with_the_setting_named(
    monkeypatch: pytest.MonkeyPatch, weak: str
) -> None:
    monkeypatch.setenv("TASKMANAGER_JWT_SIGNING_KEY", weak)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert "TASKMANAGER_JWT_SIGNING_KEY is too weak" in message
    assert weak not in message


def test_weak_previous_keys_are_refused_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKMANAGER_JWT_SIGNING_KEY", STRONG)
    monkeypatch.setenv("TASKMANAGER_JWT_PREVIOUS_KEYS", json.dumps({"old": "password"}))
    with pytest.raises(SettingsError, match=r"TASKMANAGER_JWT_PREVIOUS_KEYS\[old\] is too weak"):
        load_settings()


def test_development_runs_without_a_key_on_sqlite() -> None:
    settings = load_settings(environment="development")
    assert settings.environment is Environment.DEVELOPMENT
    assert settings.sqlalchemy_url == "sqlite+aiosqlite:///taskmanager.db"
    assert settings.redis_url is None
    ring = KeyRing.from_settings(settings)
    assert len(ring.signing_key) >= 32


def test_environment_and_secret_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "TASKMANAGER_JWT_SIGNING_KEY").write_text(STRONG + "\n")
    (tmp_path / "TASKMANAGER_DATABASE_URL").write_text("postgresql+asyncpg://u:p@db/tm")
    (tmp_path / "TASKMANAGER_REDIS_URL").write_text("redis://:pw@cache:6379/0")
    monkeypatch.setenv("TASKMANAGER_SECRETS_DIR", str(tmp_path))
    monkeypatch.setenv("TASKMANAGER_ACCESS_TOKEN_TTL", "5m")
    monkeypatch.setenv("TASKMANAGER_REFRESH_TOKEN_TTL", "2d")
    monkeypatch.setenv("TASKMANAGER_RATE_LIMIT_PER_MINUTE", "250")
    settings = load_settings()
    assert settings.jwt_signing_key is not None
    assert settings.jwt_signing_key.get_secret_value() == STRONG
    assert settings.sqlalchemy_url == "postgresql+asyncpg://u:p@db/tm"
    assert settings.access_token_ttl == timedelta(minutes=5)
    assert settings.refresh_token_ttl == timedelta(days=2)
    assert settings.rate_limit_per_minute == 250
    # Secrets never appear in the settings' representation.
    assert STRONG not in repr(settings)
    assert "pw@cache" not in repr(settings)
    # An environment variable wins over a file.
    monkeypatch.setenv("TASKMANAGER_REDIS_URL", "redis://other:6379/1")
    assert load_settings().redis_url.get_secret_value() == "redis://other:6379/1"  # type: ignore[union-attr]


def test_a_missing_secrets_directory_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKMANAGER_SECRETS_DIR", "/nonexistent/secrets")
    with pytest.raises(SettingsError, match="TASKMANAGER_SECRETS_DIR=/nonexistent/secrets"):
        load_settings(environment="development")


def test_bad_values_name_their_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKMANAGER_JWT_SIGNING_KEY", STRONG)
    monkeypatch.setenv("TASKMANAGER_ACCESS_TOKEN_TTL", "forever")
    monkeypatch.setenv("TASKMANAGER_LOG_LEVEL", "chatty")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "TASKMANAGER_ACCESS_TOKEN_TTL" in str(caught.value)
    assert "TASKMANAGER_LOG_LEVEL" in str(caught.value)
    monkeypatch.setenv("TASKMANAGER_ACCESS_TOKEN_TTL", "8d")
    monkeypatch.setenv("TASKMANAGER_LOG_LEVEL", "info")
    with pytest.raises(SettingsError, match="REFRESH_TOKEN_TTL must be longer"):
        load_settings()


def test_key_ids_are_stable_and_rotation_keeps_previous_keys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    old = secrets.token_urlsafe(48)
    monkeypatch.setenv("TASKMANAGER_JWT_SIGNING_KEY", STRONG)
    monkeypatch.setenv("TASKMANAGER_JWT_PREVIOUS_KEYS", json.dumps({"2025-01": old}))
    ring = KeyRing.from_settings(load_settings())
    assert ring.signing_kid == key_id_for(STRONG)
    assert ring.verification_keys == {key_id_for(STRONG): STRONG, "2025-01": old}
