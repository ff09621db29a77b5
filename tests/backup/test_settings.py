"""The backup settings: the variables and files the operator's Jobs will set, read as named."""

from __future__ import annotations

from pathlib import Path

import pytest

from taskmanager_api.core.config import (
    S3_ACCESS_KEY_ID_FILE,
    S3_SECRET_ACCESS_KEY_FILE,
    BackupSettings,
    SettingsError,
    backup_env_name,
    load_backup_settings,
)


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for field in BackupSettings.model_fields:
        monkeypatch.delenv(backup_env_name(field), raising=False)
    return monkeypatch


def test_every_setting_is_read_from_its_variable(
    environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / S3_ACCESS_KEY_ID_FILE).write_text("AKIAFROMFILE\n")
    (credentials / S3_SECRET_ACCESS_KEY_FILE).write_text("secret-from-file")
    values = {
        "s3_endpoint": "https://minio.storage.svc:9000",
        "s3_region": "eu-central-1",
        "s3_path_style": "true",
        "s3_ca_bundle": str(bundle),
        "s3_credentials_dir": str(credentials),
        "work_dir": str(tmp_path),
    }
    assert set(values) | {"s3_access_key_id", "s3_secret_access_key"} == set(
        BackupSettings.model_fields
    )
    for field, value in values.items():
        environment.setenv(backup_env_name(field), value)
    assert backup_env_name("s3_endpoint") == "TASKMANAGER_BACKUP_S3_ENDPOINT"
    settings = load_backup_settings()
    assert settings.s3_endpoint == values["s3_endpoint"]
    assert settings.s3_region == "eu-central-1"
    assert settings.s3_path_style is True
    assert settings.s3_ca_bundle == bundle
    assert settings.work_dir == tmp_path
    # Files win, and are read at use: a rotated Secret needs no restart.
    environment.setenv(backup_env_name("s3_access_key_id"), "AKIAFROMENV")
    environment.setenv(backup_env_name("s3_secret_access_key"), "secret-from-env")
    assert settings.s3_credentials() == ("AKIAFROMFILE", "secret-from-file")
    (credentials / S3_SECRET_ACCESS_KEY_FILE).write_text("rotated")
    assert settings.s3_credentials() == ("AKIAFROMFILE", "rotated")


def test_credentials_from_variables_are_the_fallback(environment: pytest.MonkeyPatch) -> None:
    assert load_backup_settings().s3_credentials() is None  # boto3's own chain decides
    environment.setenv(backup_env_name("s3_access_key_id"), "AKIAFROMENV")
    with pytest.raises(SettingsError, match="TASKMANAGER_BACKUP_S3_SECRET_ACCESS_KEY go together"):
        load_backup_settings()
    environment.setenv(backup_env_name("s3_secret_access_key"), "secret-from-env")
    assert load_backup_settings().s3_credentials() == ("AKIAFROMENV", "secret-from-env")


def test_wrong_settings_are_named_without_their_values(
    environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    environment.setenv(backup_env_name("s3_endpoint"), "minio:9000")
    environment.setenv(backup_env_name("s3_ca_bundle"), str(tmp_path / "missing.pem"))
    with pytest.raises(SettingsError) as error:
        load_backup_settings()
    message = str(error.value)
    assert "TASKMANAGER_BACKUP_S3_ENDPOINT" in message
    assert "TASKMANAGER_BACKUP_S3_CA_BUNDLE" in message
    assert "minio:9000" not in message


def test_a_credentials_directory_without_the_keys_is_refused(
    environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / S3_ACCESS_KEY_ID_FILE).write_text("AKIA")
    environment.setenv(backup_env_name("s3_credentials_dir"), str(tmp_path))
    with pytest.raises(
        SettingsError,
        match=f"TASKMANAGER_BACKUP_S3_CREDENTIALS_DIR has no file {S3_SECRET_ACCESS_KEY_FILE}",
    ):
        load_backup_settings()
