"""spec.cors and spec.securityHeaders: the CRD's checks, the ConfigMap the operator renders from
them, and the settings the API reads from it. Without spec.cors the ConfigMap says nothing of CORS
and the API installs no CORS middleware; security headers are on unless the spec turns them off."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from pydantic.alias_generators import to_snake
from starlette.middleware.cors import CORSMiddleware

from taskmanager_api.core.config import Settings
from taskmanager_api.core.http_headers import SecurityHeadersMiddleware
from taskmanager_api.main import create_app
from taskmanager_operator.api.v1alpha1 import TaskManagerSpec
from taskmanager_operator.builders import config
from tests.unit.test_builders import taskmanager
from tests.unit.test_scheduling import rejected
from tests.unit.test_settings_contract import (
    Pod,
    pod_environment,  # noqa: F401 - the fixture
    start_like_the_pod,
)

APP = "https://app.example.com"
CORS_VARIABLES = {
    config.CORS_ALLOW_ORIGINS,
    config.CORS_ALLOW_METHODS,
    config.CORS_ALLOW_HEADERS,
    config.CORS_ALLOW_CREDENTIALS,
    config.CORS_MAX_AGE_SECONDS,
}
FULL_CORS = {
    "allowOrigins": [APP, "http://localhost:3000"],
    "allowMethods": ["GET", "PUT"],
    "allowHeaders": ["Authorization", "X-Trace"],
    "allowCredentials": True,
    "maxAgeSeconds": 120,
}


def settings_from(
    spec: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    """What the API reads in a pod of a TaskManager with this spec."""
    settings, _ = start_like_the_pod(Pod(taskmanager(spec), tmp_path), monkeypatch)
    return settings


def middleware_of(settings: Settings) -> list[type]:
    return [entry.cls for entry in create_app(settings).user_middleware]  # type: ignore[misc]


# -- the ConfigMap and what the API reads from it ------------------------------------------------


@pytest.mark.usefixtures("pod_environment")
def test_without_spec_cors_there_is_no_cors_setting_and_no_cors_middleware(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = config.build_config_map(taskmanager())["data"]
    assert not CORS_VARIABLES & data.keys()
    assert not [variable for variable in data if "CORS" in variable]
    settings = settings_from({}, tmp_path, monkeypatch)
    assert settings.cors_allow_origins == ()
    assert CORSMiddleware not in middleware_of(settings)


@pytest.mark.usefixtures("pod_environment")
def test_spec_cors_reaches_the_api_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = config.build_config_map(taskmanager({"cors": FULL_CORS}))["data"]
    assert {variable: data[variable] for variable in CORS_VARIABLES} == {
        config.CORS_ALLOW_ORIGINS: json.dumps(FULL_CORS["allowOrigins"]),
        config.CORS_ALLOW_METHODS: '["GET", "PUT"]',
        config.CORS_ALLOW_HEADERS: '["Authorization", "X-Trace"]',
        config.CORS_ALLOW_CREDENTIALS: "true",
        config.CORS_MAX_AGE_SECONDS: "120",
    }
    settings = settings_from({"cors": FULL_CORS}, tmp_path, monkeypatch)
    assert settings.cors_allow_origins == (APP, "http://localhost:3000")
    assert settings.cors_allow_methods == ("GET", "PUT")
    assert settings.cors_allow_headers == ("Authorization", "X-Trace")
    assert settings.cors_allow_credentials is True
    assert settings.cors_max_age_seconds == 120
    assert CORSMiddleware in middleware_of(settings)


@pytest.mark.usefixtures("pod_environment")
def test_spec_cors_defaults_are_the_apis(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_from({"cors": {"allowOrigins": [APP]}}, tmp_path, monkeypatch)
    defaults = Settings.model_fields
    for field in ("cors_allow_methods", "cors_allow_headers", "cors_max_age_seconds"):
        assert getattr(settings, field) == defaults[field].default, field
    assert settings.cors_allow_credentials is False


@pytest.mark.usefixtures("pod_environment")
@pytest.mark.parametrize(
    ("security_headers", "enabled", "hsts"),
    [
        pytest.param(None, True, 365 * 86400, id="default"),
        pytest.param({"hstsMaxAgeSeconds": 300}, True, 300, id="short-hsts"),
        pytest.param({"enabled": False}, False, 365 * 86400, id="off"),
    ],
)
def test_spec_security_headers_reach_the_api(
    security_headers: dict[str, Any] | None,
    enabled: bool,
    hsts: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = {} if security_headers is None else {"securityHeaders": security_headers}
    data = config.build_config_map(taskmanager(spec))["data"]
    assert data[config.SECURITY_HEADERS_ENABLED] == json.dumps(enabled)
    assert data[config.HSTS_MAX_AGE_SECONDS] == str(hsts)
    settings = settings_from(spec, tmp_path, monkeypatch)
    assert (settings.security_headers_enabled, settings.hsts_max_age_seconds) == (enabled, hsts)
    assert (SecurityHeadersMiddleware in middleware_of(settings)) is enabled


def test_the_api_defaults_are_the_specs() -> None:
    """A TaskManager without securityHeaders asks for what the API does by default."""
    spec = TaskManagerSpec().security_headers
    defaults = Settings.model_fields
    assert spec.enabled is defaults["security_headers_enabled"].default
    assert spec.hsts_max_age_seconds == defaults["hsts_max_age_seconds"].default


# -- the CRD: checked at `kubectl apply` ----------------------------------------------------------

ORIGIN = "spec.cors.allowOrigins[0]: Invalid value"
STAR_WITH_CREDENTIALS = "allowOrigins must list the origins, not '*', when allowCredentials is true"


def cors(**fields: Any) -> dict[str, Any]:
    return {"cors": {"allowOrigins": [APP]} | fields}


def origin(value: str) -> dict[str, Any]:
    return cors(allowOrigins=[value])


# (spec, what the API server's message says, id)
INVALID_CASES: list[tuple[dict[str, Any], str, str]] = [
    (origin("https://app.example.com/"), ORIGIN, "trailing-slash"),
    (origin("https://app.example.com/app"), ORIGIN, "path"),
    (origin("app.example.com"), ORIGIN, "no-scheme"),
    (origin("https://App.example.com"), ORIGIN, "upper-case"),
    (origin("null"), ORIGIN, "null-origin"),
    (origin("https://*.example.com"), ORIGIN, "wildcard-subdomain"),
    (origin("https://app.example.com:http"), ORIGIN, "port-not-a-number"),
    (origin("*.example.com"), ORIGIN, "star-and-more"),
    (
        cors(allowOrigins=["*"], allowCredentials=True),
        f"spec.cors.allowOrigins: {STAR_WITH_CREDENTIALS}",
        "star-with-credentials",
    ),
    (
        cors(allowOrigins=[APP, "*"], allowCredentials=True),
        f"spec.cors.allowOrigins: {STAR_WITH_CREDENTIALS}",
        "star-among-others-with-credentials",
    ),
    (cors(allowOrigins=[]), "spec.cors.allowOrigins: should have at least 1 items", "no-origin"),
    ({"cors": {}}, "spec.cors.allowOrigins: Required value", "origins-left-out"),
    (cors(allowMethods=["FETCH"]), "spec.cors.allowMethods[0]: Unsupported value", "method"),
    (cors(allowMethods=["get"]), "spec.cors.allowMethods[0]: Unsupported value", "lower-case"),
    (cors(allowMethods=[]), "spec.cors.allowMethods: should have at least 1 items", "no-method"),
    (cors(allowHeaders=["X Trace"]), "spec.cors.allowHeaders[0]: Invalid value", "header"),
    (cors(maxAgeSeconds=86401), "spec.cors.maxAgeSeconds: should be less than", "max-age"),
    (cors(maxAgeSeconds=-1), "spec.cors.maxAgeSeconds: should be greater than", "negative-age"),
    (
        {"securityHeaders": {"hstsMaxAgeSeconds": -1}},
        "spec.securityHeaders.hstsMaxAgeSeconds: should be greater than or equal to 0",
        "negative-hsts",
    ),
    (
        {"securityHeaders": {"hstsMaxAgeSeconds": 2 * 365 * 86400 + 1}},
        "spec.securityHeaders.hstsMaxAgeSeconds: should be less than or equal to",
        "hsts-over-two-years",
    ),
    (
        {"securityHeaders": {"frameOptions": "SAMEORIGIN"}},
        'unknown field "spec.securityHeaders.frameOptions"',
        "unknown-field",
    ),
]
INVALID = [pytest.param(spec, message, id=id_) for spec, message, id_ in INVALID_CASES]

VALID: list[Any] = [
    pytest.param(cors(allowOrigins=["*"]), id="any-origin-without-credentials"),
    pytest.param(
        cors(
            allowOrigins=[
                APP,
                "http://localhost:3000",
                "http://127.0.0.1:8080",
                "http://[::1]:5173",
                "capacitor://localhost",
            ],
            allowCredentials=True,
        ),
        id="listed-origins-with-credentials",
    ),
    pytest.param({"cors": FULL_CORS}, id="every-field"),
    pytest.param(
        cors(
            allowMethods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            allowHeaders=["*"],
            maxAgeSeconds=0,
        ),
        id="every-method-any-header",
    ),
    pytest.param({"securityHeaders": {"enabled": False, "hstsMaxAgeSeconds": 0}}, id="off"),
]


def api_refuses(spec: dict[str, Any]) -> bool:
    """Whether the API, run on its own, refuses the same CORS settings at start."""
    fields = {f"cors_{to_snake(name)}": value for name, value in spec["cors"].items()}
    try:
        Settings(environment="development", **fields)
    except ValidationError:
        return True
    return False


@pytest.mark.parametrize(("spec", "message"), INVALID)
def test_the_crd_rejects_bad_cors_and_security_headers_naming_the_field(
    spec: dict[str, Any], message: str
) -> None:
    errors = rejected(spec)
    assert any(message in error for error in errors), errors
    # The values themselves; the API takes empty lists (no origin: CORS off).
    if "cors" in spec and spec["cors"] and "at least" not in message:
        assert api_refuses(spec)


@pytest.mark.usefixtures("pod_environment")
@pytest.mark.parametrize("spec", VALID)
def test_the_crd_the_operator_and_the_api_accept_good_cors(
    spec: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert rejected(spec) == []
    settings_from(spec, tmp_path, monkeypatch)
