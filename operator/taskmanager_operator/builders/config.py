"""The ConfigMap with the API's non-secret settings (environment variables it reads)."""

from __future__ import annotations

import json

from taskmanager_api.core.config import SECRETS_DIR_VARIABLE, Settings, env_name
from taskmanager_operator.api.v1alpha1 import Cors
from taskmanager_operator.builders.common import (
    API,
    API_PORT,
    SECRETS_DIR,
    Manifest,
    config_name,
    metadata,
)
from taskmanager_operator.resource import TaskManager

# Read by the API's command line (`serve --host/--port` default to them), not by its Settings.
# The Deployment passes no --host/--port, so this ConfigMap is the one place the pod's port is set.
HOST_VARIABLE = env_name("host")
PORT_VARIABLE = env_name("port")


def setting(field: str) -> str:
    """The variable the API reads for one of its Settings fields.

    Naming the field rather than spelling the variable means a field the API renames or drops
    fails here, at import, instead of leaving the API silently on its default.
    """
    if field not in Settings.model_fields:
        raise LookupError(f"the API has no setting {field!r}")
    return env_name(field)


ENVIRONMENT = setting("environment")
ACCESS_TOKEN_TTL = setting("access_token_ttl")
REFRESH_TOKEN_TTL = setting("refresh_token_ttl")
RATE_LIMIT_PER_MINUTE = setting("rate_limit_per_minute")
LOGIN_RATE_LIMIT_PER_MINUTE = setting("login_rate_limit_per_minute")
LOG_LEVEL = setting("log_level")
LOG_JSON = setting("log_json")
CORS_ALLOW_ORIGINS = setting("cors_allow_origins")
CORS_ALLOW_METHODS = setting("cors_allow_methods")
CORS_ALLOW_HEADERS = setting("cors_allow_headers")
CORS_ALLOW_CREDENTIALS = setting("cors_allow_credentials")
CORS_MAX_AGE_SECONDS = setting("cors_max_age_seconds")
SECURITY_HEADERS_ENABLED = setting("security_headers_enabled")
HSTS_MAX_AGE_SECONDS = setting("hsts_max_age_seconds")


def cors_settings(cors: Cors | None) -> dict[str, str]:
    """None without spec.cors: the API then installs no CORS middleware and sends no CORS header.
    Lists and booleans are JSON, which the API's settings parse."""
    if cors is None:
        return {}
    return {
        CORS_ALLOW_ORIGINS: json.dumps(cors.allow_origins),
        CORS_ALLOW_METHODS: json.dumps(cors.allow_methods),
        CORS_ALLOW_HEADERS: json.dumps(cors.allow_headers),
        CORS_ALLOW_CREDENTIALS: json.dumps(cors.allow_credentials),
        CORS_MAX_AGE_SECONDS: str(cors.max_age_seconds),
    }


def api_settings(tm: TaskManager) -> dict[str, str]:
    spec = tm.spec
    return {
        ENVIRONMENT: "production",
        HOST_VARIABLE: "0.0.0.0",  # noqa: S104 - the pod's own interface; the Service fronts it
        PORT_VARIABLE: str(API_PORT),
        SECRETS_DIR_VARIABLE: SECRETS_DIR,
        ACCESS_TOKEN_TTL: spec.auth.access_token_ttl,
        REFRESH_TOKEN_TTL: spec.auth.refresh_token_ttl,
        RATE_LIMIT_PER_MINUTE: str(spec.rate_limits.requests_per_minute),
        LOGIN_RATE_LIMIT_PER_MINUTE: str(spec.rate_limits.login_per_minute),
        LOG_LEVEL: spec.log_level,
        LOG_JSON: "true",
        SECURITY_HEADERS_ENABLED: json.dumps(spec.security_headers.enabled),
        HSTS_MAX_AGE_SECONDS: str(spec.security_headers.hsts_max_age_seconds),
        **cors_settings(spec.cors),
    }


def build_config_map(tm: TaskManager) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(tm, config_name(tm), API),
        "data": api_settings(tm),
    }
