"""Settings, from environment variables and from a directory of secret files.

Every setting is read from `TASKMANAGER_<NAME>` in the environment or, for a secret, from a file of
the same name in `TASKMANAGER_SECRETS_DIR` (a mounted Kubernetes Secret): environment variables
win over files. Nothing here runs at import time; `load_settings()` is called by the CLI and by
whoever builds the app.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "TASKMANAGER_"
SECRETS_DIR_VARIABLE = f"{ENV_PREFIX}SECRETS_DIR"
# HS256 keys shorter than the hash output make brute-forcing a token's signature the weak link.
MIN_SIGNING_KEY_BYTES = 32
# Values that appear in tutorials and default configs: never accept them outside development.
_KNOWN_WEAK_KEYS = {"secret", "changeme", "change-me", "changethis", "password", "development"}

_DURATION = re.compile(r"^\s*(\d+)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_duration(value: Any) -> Any:
    """Accept what the TaskManager resource says (`15m`, `7d`) as well as seconds or ISO 8601."""
    if isinstance(value, str) and (match := _DURATION.match(value)):
        amount, unit = match.groups()
        return timedelta(seconds=int(amount) * _UNIT_SECONDS[unit])
    return value


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]

# CORS and security headers. The TaskManager's spec.cors and spec.securityHeaders take these types
# too, so the CRD refuses at `kubectl apply` what the API would refuse at start.
# An origin as browsers send it (`scheme://host[:port]`, lower case, no path), or `*` for any.
CORS_ORIGIN_PATTERN = (
    r"^(\*|[a-z][a-z0-9+.-]*://"
    r"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*|\[[0-9a-f:.]+\])"
    r"(:[0-9]{1,5})?)$"
)
CorsOrigin = Annotated[str, Field(pattern=CORS_ORIGIN_PATTERN, max_length=300)]
HttpMethod = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
# A header name is an HTTP token (RFC 9110); `*` is one too, and lets any header through.
HeaderName = Annotated[str, Field(pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$", max_length=128)]
# Browsers cap a preflight's cache below this anyway (Firefox 24 h, Chromium 2 h).
CorsMaxAgeSeconds = Annotated[int, Field(ge=0, le=86400)]
HstsMaxAgeSeconds = Annotated[int, Field(ge=0, le=2 * 365 * 86400)]
# The methods and headers the API's own routes need from a browser on another origin.
DEFAULT_CORS_METHODS: tuple[HttpMethod, ...] = ("GET", "POST", "PATCH", "DELETE")
DEFAULT_CORS_HEADERS = ("Authorization", "Content-Type", "X-Request-ID")
DEFAULT_CORS_MAX_AGE_SECONDS = 600
DEFAULT_HSTS_MAX_AGE_SECONDS = 365 * 86400


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class SettingsError(Exception):
    """The configuration is unusable; the message names each wrong setting."""


def env_name(field: str) -> str:
    return f"{ENV_PREFIX}{field.upper()}"


def key_id_for(key: str) -> str:
    """A stable, non-secret id for a key, so a deployment need not invent key ids."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        case_sensitive=False,
        extra="ignore",
        frozen=True,
    )

    environment: Environment = Field(
        default=Environment.PRODUCTION,
        description="development relaxes the signing-key checks; anything else enforces them.",
    )

    database_url: SecretStr | None = Field(
        default=None,
        description="SQLAlchemy async URL; without one, a local SQLite file (sqlite_path) is used.",
    )
    sqlite_path: Path = Path("taskmanager.db")
    db_pool_size: int = Field(default=10, ge=1, le=200)
    db_max_overflow: int = Field(default=10, ge=0, le=200)
    db_pool_timeout: float = Field(default=10.0, gt=0)
    db_echo: bool = False
    # Off by default: it costs a round trip per request, while a dropped connection already
    # invalidates the whole pool on first error, so a Postgres restart fails one request at most.
    db_pool_pre_ping: bool = False

    redis_url: SecretStr | None = Field(
        default=None,
        description="Without one, revocation, cache and rate limits live in this process only.",
    )
    redis_key_prefix: str = "tm:"
    redis_timeout: float = Field(default=2.0, gt=0)
    redis_max_connections: int = Field(default=50, ge=1)

    jwt_signing_key: SecretStr | None = None
    jwt_signing_key_id: str | None = Field(
        default=None, description="kid of the signing key; derived from the key when unset."
    )
    jwt_previous_keys: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="JSON object kid -> key of keys that still verify (after a rotation).",
    )
    jwt_issuer: str = "taskmanager-api"
    jwt_audience: str = "taskmanager-api"
    access_token_ttl: Duration = timedelta(minutes=15)
    refresh_token_ttl: Duration = timedelta(days=7)

    rate_limit_per_minute: int = Field(default=100, ge=1)
    login_rate_limit_per_minute: int = Field(
        default=5, ge=1, description="Login attempts per e-mail address and window."
    )
    login_ip_rate_limit_per_minute: int = Field(
        default=20, ge=1, description="Login attempts per client address (one NAT, many users)."
    )
    rate_limit_window: Duration = timedelta(minutes=1)

    cache_ttl: Duration = timedelta(seconds=60)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)

    log_level: str = "INFO"
    log_json: bool = True
    docs_enabled: bool = True

    # Lists are JSON in the environment: TASKMANAGER_CORS_ALLOW_ORIGINS='["https://app.example"]'.
    cors_allow_origins: tuple[CorsOrigin, ...] = Field(
        default=(),
        description="Origins whose browser scripts may call the API; none: no CORS headers at all.",
    )
    cors_allow_methods: tuple[HttpMethod, ...] = DEFAULT_CORS_METHODS
    cors_allow_headers: tuple[HeaderName, ...] = DEFAULT_CORS_HEADERS
    cors_allow_credentials: bool = False
    cors_max_age_seconds: CorsMaxAgeSeconds = DEFAULT_CORS_MAX_AGE_SECONDS
    security_headers_enabled: bool = Field(
        default=True, description="nosniff, frame and referrer policies, and HSTS over TLS."
    )
    hsts_max_age_seconds: HstsMaxAgeSeconds = DEFAULT_HSTS_MAX_AGE_SECONDS

    @field_validator("access_token_ttl", "refresh_token_ttl", "rate_limit_window", "cache_ttl")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value.total_seconds() <= 0:
            raise ValueError("must be a positive duration, e.g. 15m, 7d or 900")
        return value

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems: list[str] = []
        if self.refresh_token_ttl <= self.access_token_ttl:
            problems.append(
                f"{env_name('refresh_token_ttl')} must be longer than "
                f"{env_name('access_token_ttl')}"
            )
        if self.cors_allow_credentials and "*" in self.cors_allow_origins:
            # Browsers refuse credentialed responses that allow every origin.
            problems.append(
                f"{env_name('cors_allow_origins')} must list the origins, not *, while "
                f"{env_name('cors_allow_credentials')} is true"
            )
        if self.environment is not Environment.DEVELOPMENT:
            problems.extend(self._signing_key_problems())
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _signing_key_problems(self) -> list[str]:
        name = env_name("jwt_signing_key")
        if self.jwt_signing_key is None:
            return [
                f"{name} is missing: set it (or a file {name} in {SECRETS_DIR_VARIABLE}) to a "
                f"random value of at least {MIN_SIGNING_KEY_BYTES} bytes; only "
                f"{env_name('environment')}=development runs without one"
            ]
        problems = []
        keys = {name: self.jwt_signing_key} | {
            f"{env_name('jwt_previous_keys')}[{kid}]": key
            for kid, key in self.jwt_previous_keys.items()
        }
        for label, key in keys.items():
            raw = key.get_secret_value()
            if len(raw.encode()) < MIN_SIGNING_KEY_BYTES or raw.strip().lower() in _KNOWN_WEAK_KEYS:
                problems.append(
                    f"{label} is too weak: use a random value of at least "
                    f"{MIN_SIGNING_KEY_BYTES} bytes (e.g. `openssl rand -base64 48`)"
                )
            elif len(set(raw)) < 8:
                problems.append(f"{label} is too weak: it repeats too few distinct characters")
        return problems

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite+aiosqlite:///{self.sqlite_path}"

    @property
    def is_sqlite(self) -> bool:
        return self.sqlalchemy_url.startswith("sqlite")


def load_settings(**overrides: Any) -> Settings:
    """Read the settings; a bad configuration raises SettingsError naming the settings at fault."""
    secrets_dir = overrides.pop("_secrets_dir", None) or os.environ.get(SECRETS_DIR_VARIABLE)
    if secrets_dir is not None and not Path(secrets_dir).is_dir():
        raise SettingsError(f"{SECRETS_DIR_VARIABLE}={secrets_dir} is not a directory")
    try:
        return Settings(_secrets_dir=secrets_dir, **overrides)
    except ValidationError as error:
        raise SettingsError(describe_validation_error(error)) from None


def describe_validation_error(error: ValidationError, name: Callable[[str], str] = env_name) -> str:
    """One line per wrong setting, named as the operator would set it; never the value itself."""
    lines = []
    for item in error.errors(include_input=False, include_url=False):
        field = ".".join(str(part) for part in item["loc"])
        message = str(item["msg"]).removeprefix("Value error, ")
        # Whole-model checks name their settings in the message already.
        lines.extend(message.split("; ") if not field else [f"{name(field)}: {message}"])
    return "invalid configuration:\n  " + "\n  ".join(lines)


# -- backups ---------------------------------------------------------------------------------------
# `python -m taskmanager_api backup ...` reads the database from Settings (as `serve` does) and its
# storage from these. The operator builds backup Jobs from the same names: none is spelled twice.

BACKUP_ENV_PREFIX = f"{ENV_PREFIX}BACKUP_"
# Where the backup command also writes its result line: Kubernetes reads /dev/termination-log.
TERMINATION_LOG_VARIABLE = env_name("termination_log")
# The keys of the mounted Secret with the object store's credentials (one file per key).
S3_ACCESS_KEY_ID_FILE = "access-key-id"
S3_SECRET_ACCESS_KEY_FILE = "secret-access-key"  # noqa: S105 - a file's name


def backup_env_name(field: str) -> str:
    return f"{BACKUP_ENV_PREFIX}{field.upper()}"


class BackupSettings(BaseSettings):
    """The object store of `s3://` locations and the scratch space; `file://` needs none of it."""

    model_config = SettingsConfigDict(
        env_prefix=BACKUP_ENV_PREFIX, case_sensitive=False, extra="ignore", frozen=True
    )

    s3_endpoint: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s/]+(/\S*)?$",
        description="URL of an S3-compatible endpoint; unset: AWS S3 of s3_region.",
    )
    s3_region: str | None = None
    s3_path_style: bool = Field(
        default=False,
        description="bucket in the path, not the host name: what most S3-compatible stores need.",
    )
    s3_ca_bundle: Path | None = Field(
        default=None, description="PEM file of the CAs that sign the endpoint's certificate."
    )
    s3_credentials_dir: Path | None = Field(
        default=None,
        description=(
            f"a mounted Secret: files {S3_ACCESS_KEY_ID_FILE} and {S3_SECRET_ACCESS_KEY_FILE}."
        ),
    )
    # Fallbacks for a run outside Kubernetes; without any, boto3's own chain (AWS_*, web identity).
    s3_access_key_id: SecretStr | None = None
    s3_secret_access_key: SecretStr | None = None
    work_dir: Path | None = Field(
        default=None,
        description="where dumps are staged (unset: the temporary directory, /tmp in the image).",
    )

    @field_validator("s3_ca_bundle")
    @classmethod
    def _readable_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"{value} is not a file")
        return value

    @field_validator("s3_credentials_dir", "work_dir")
    @classmethod
    def _directory(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_dir():
            raise ValueError(f"{value} is not a directory")
        return value

    @model_validator(mode="after")
    def _credentials(self) -> Self:
        if self.s3_credentials_dir is not None:
            missing = [
                name
                for name in (S3_ACCESS_KEY_ID_FILE, S3_SECRET_ACCESS_KEY_FILE)
                if not (self.s3_credentials_dir / name).is_file()
            ]
            if missing:
                raise ValueError(
                    f"{backup_env_name('s3_credentials_dir')} has no file {' or '.join(missing)}"
                )
        elif (self.s3_access_key_id is None) != (self.s3_secret_access_key is None):
            raise ValueError(
                f"{backup_env_name('s3_access_key_id')} and "
                f"{backup_env_name('s3_secret_access_key')} go together"
            )
        return self

    def s3_credentials(self) -> tuple[str, str] | None:
        """(access key id, secret key); None leaves the choice to boto3's credential chain.
        Files are read on each call: a rotated Secret is picked up by the next run."""
        if self.s3_credentials_dir is not None:
            return (
                (self.s3_credentials_dir / S3_ACCESS_KEY_ID_FILE).read_text().strip(),
                (self.s3_credentials_dir / S3_SECRET_ACCESS_KEY_FILE).read_text().strip(),
            )
        if self.s3_access_key_id is not None and self.s3_secret_access_key is not None:
            return (
                self.s3_access_key_id.get_secret_value(),
                self.s3_secret_access_key.get_secret_value(),
            )
        return None


def load_backup_settings(**overrides: Any) -> BackupSettings:
    try:
        return BackupSettings(**overrides)
    except ValidationError as error:
        raise SettingsError(describe_validation_error(error, backup_env_name)) from None
