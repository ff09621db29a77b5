"""The ConfigMap with the API's non-secret settings (environment variables it reads)."""

from __future__ import annotations

from taskmanager_operator.builders.common import (
    API,
    API_PORT,
    SECRETS_DIR,
    Manifest,
    config_name,
    metadata,
)
from taskmanager_operator.resource import TaskManager


def api_settings(tm: TaskManager) -> dict[str, str]:
    spec = tm.spec
    return {
        "TASKMANAGER_ENVIRONMENT": "production",
        "TASKMANAGER_HOST": "0.0.0.0",  # noqa: S104 - the pod's own interface; the Service fronts it
        "TASKMANAGER_PORT": str(API_PORT),
        "TASKMANAGER_SECRETS_DIR": SECRETS_DIR,
        "TASKMANAGER_ACCESS_TOKEN_TTL": spec.auth.access_token_ttl,
        "TASKMANAGER_REFRESH_TOKEN_TTL": spec.auth.refresh_token_ttl,
        "TASKMANAGER_RATE_LIMIT_PER_MINUTE": str(spec.rate_limits.requests_per_minute),
        "TASKMANAGER_LOGIN_RATE_LIMIT_PER_MINUTE": str(spec.rate_limits.login_per_minute),
        "TASKMANAGER_LOG_LEVEL": spec.log_level,
        "TASKMANAGER_LOG_JSON": "true",
    }


def build_config_map(tm: TaskManager) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(tm, config_name(tm), API),
        "data": api_settings(tm),
    }
