"""The ConfigMap with the API's non-secret settings (environment variables it reads)."""

from __future__ import annotations

from taskmanager_api.core.config import SECRETS_DIR_VARIABLE, Settings, env_name
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
    }


def build_config_map(tm: TaskManager) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(tm, config_name(tm), API),
        "data": api_settings(tm),
    }
