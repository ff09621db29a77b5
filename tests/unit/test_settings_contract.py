"""The contract between the operator and the API it deploys, checked without a cluster.

The operator renders a ConfigMap and a Secret; the API reads environment variables and one file
per secret. Nothing but these tests makes the two agree, so they feed the rendered objects to the
API's own settings loader and command line exactly as a pod would see them, and compare what the
API ends up with to what the TaskManager asked for. They also hold the places that say the API
image and port, which cannot import Python, to the one constant each.
"""

from __future__ import annotations

import functools
import os
import re
import secrets
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from taskmanager_api.__main__ import _parser as api_command_line
from taskmanager_api.core.config import (
    SECRETS_DIR_VARIABLE,
    Settings,
    SettingsError,
    env_name,
    load_settings,
    parse_duration,
)
from taskmanager_operator.api.v1alpha1 import (
    ACCESS_TOKEN_TTL_MAX_SECONDS,
    ACCESS_TOKEN_TTL_MIN_SECONDS,
    DEFAULT_IMAGE_REPOSITORY,
    REFRESH_TOKEN_TTL_MAX_DAYS,
    TTL_UNIT_SECONDS,
    TaskManagerSpec,
)
from taskmanager_operator.builders import api, config
from taskmanager_operator.builders import secrets as secret_builder
from taskmanager_operator.builders.common import API_PORT, SECRETS_DIR, generated_secret_name
from taskmanager_operator.resource import TaskManager
from taskmanager_operator.settings import OperatorSettings

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "samples" / "taskmanager.yaml"
CRD = REPO / "crds" / "taskmanager.dev_taskmanagers.yaml"
CHART = REPO / "charts" / "taskmanager-operator"

NAMESPACE = "team-a"
USER_SIGNING_KEY = secrets.token_urlsafe(48)
USER_DATABASE_URL = "postgresql+asyncpg://tasks:p%40ss@db.example:6543/tasks"
USER_REDIS_URL = "rediss://:pw@cache.example:6380/3"
# The user's Secrets a TaskManager with every option refers to: name -> key -> value.
USER_SECRETS = {
    "jwt": {"signing-key": USER_SIGNING_KEY},
    "pg": {"url": USER_DATABASE_URL},
    "cache": {"dsn": USER_REDIS_URL},
}
# Every spec field set, each to something other than its default.
EVERY_OPTION: dict[str, Any] = {
    "version": "0.2.0",
    "image": "registry.example/taskmanager-operator:0.2.0",
    "imagePullPolicy": "Always",
    "replicas": 3,
    "resources": {
        "requests": {"cpu": "250m", "memory": "192Mi"},
        "limits": {"cpu": "1", "memory": "384Mi"},
    },
    "autoscaling": {
        "enabled": True,
        "minReplicas": 3,
        "maxReplicas": 7,
        "targetCPUUtilizationPercentage": 60,
        "targetMemoryUtilizationPercentage": 75,
        "behavior": {"scaleDown": {"stabilizationWindowSeconds": 120}},
    },
    "database": {"external": {"urlSecretRef": {"name": "pg", "key": "url"}}},
    "redis": {"external": {"urlSecretRef": {"name": "cache", "key": "dsn"}}},
    "auth": {
        "accessTokenTTL": "5m",
        "refreshTokenTTL": "30d",
        "signingKeySecretRef": {"name": "jwt", "key": "signing-key"},
    },
    "ingress": {
        "enabled": True,
        "className": "nginx",
        "host": "tasks.example.com",
        "tlsSecretName": "tasks-tls",
    },
    "networkPolicy": {"enabled": False},
    "podDisruptionBudget": {"maxUnavailable": 2},
    "rateLimits": {"requestsPerMinute": 250, "loginPerMinute": 3},
    "cors": {
        "allowOrigins": ["https://app.example.com", "http://localhost:3000"],
        "allowMethods": ["GET", "PUT"],
        "allowHeaders": ["Authorization", "X-Trace"],
        "allowCredentials": True,
        "maxAgeSeconds": 120,
    },
    "securityHeaders": {"enabled": False, "hstsMaxAgeSeconds": 300},
    "logLevel": "DEBUG",
    "paused": False,
}


def sample_spec() -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(SAMPLE.read_text())["spec"]
    return spec


def taskmanager(spec: Mapping[str, Any], name: str = "demo") -> TaskManager:
    return TaskManager(
        name=name,
        namespace=NAMESPACE,
        uid="7d0c4f7e-1f7a-4a8e-9d3b-2a6f1c9e8b40",
        generation=1,
        spec=TaskManagerSpec.model_validate(spec),
    )


def api_container(deployment: Mapping[str, Any]) -> dict[str, Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert isinstance(container, dict)
    return container


def mount_secrets(
    deployment: Mapping[str, Any],
    generated: Mapping[str, str],
    user: Mapping[str, Mapping[str, str]],
    directory: Path,
) -> None:
    """Write the files the Deployment's secrets volume would hold, following its projection."""
    mounts = {m["name"]: m["mountPath"] for m in api_container(deployment)["volumeMounts"]}
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    (volume_name,) = [name for name, path in mounts.items() if path == SECRETS_DIR]
    for source in volumes[volume_name]["projected"]["sources"]:
        secret = source["secret"]
        data = generated if secret["name"].endswith("-secrets") else user[secret["name"]]
        for item in secret["items"]:
            # The kubelet leaves out an optional source's key the Secret does not hold.
            if item["key"] in data or not secret.get("optional"):
                (directory / item["path"]).write_text(data[item["key"]])


class Pod:
    """What the API container sees: its environment and its secret files."""

    def __init__(self, tm: TaskManager, directory: Path) -> None:
        self.config_map = config.build_config_map(tm)
        secret = secret_builder.build_generated_secret(tm)
        self.generated = secret_builder.decode_secret_data(secret["data"] if secret else None)
        self.deployment = api.build_deployment(tm, image="unused:0", rollout_checksum="0")
        self.container = api_container(self.deployment)
        assert self.container["envFrom"] == [
            {"configMapRef": {"name": self.config_map["metadata"]["name"]}}
        ]
        mount_secrets(self.deployment, self.generated, USER_SECRETS, directory)
        environment: dict[str, str] = dict(self.config_map["data"])
        # The one difference from a real pod: the volume is mounted here instead of at SECRETS_DIR.
        assert environment[SECRETS_DIR_VARIABLE] == SECRETS_DIR
        environment[SECRETS_DIR_VARIABLE] = str(directory)
        self.environment = environment


@pytest.fixture
def pod_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """An environment holding no TASKMANAGER_* variable but those a test sets."""
    for variable in list(os.environ):
        if variable.startswith("TASKMANAGER_"):
            monkeypatch.delenv(variable)
    return monkeypatch


def start_like_the_pod(pod: Pod, monkeypatch: pytest.MonkeyPatch) -> tuple[Settings, Any]:
    for variable, value in pod.environment.items():
        monkeypatch.setenv(variable, value)
    return load_settings(), api_command_line().parse_args(pod.container["args"])


def http_port(container: Mapping[str, Any]) -> int:
    (port,) = [p["containerPort"] for p in container["ports"] if p["name"] == "http"]
    assert isinstance(port, int)
    return port


def test_the_sample_starts_the_api_with_what_it_asks_for(
    pod_environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    tm = taskmanager(sample_spec())
    pod = Pod(tm, tmp_path)
    settings, command = start_like_the_pod(pod, pod_environment)

    assert command.command == "serve"
    assert (command.host, command.port) == ("0.0.0.0", http_port(pod.container))  # noqa: S104
    assert settings.environment == "production"
    assert settings.access_token_ttl == timedelta(minutes=15)
    assert settings.refresh_token_ttl == timedelta(days=7)
    assert settings.rate_limit_per_minute == 100
    assert settings.login_rate_limit_per_minute == 5
    assert settings.log_level == "INFO"
    assert settings.log_json is True
    assert settings.cors_allow_origins == ()
    assert (settings.security_headers_enabled, settings.hsts_max_age_seconds) == (True, 31536000)
    host = f"demo-postgres.{NAMESPACE}.svc:5432"
    assert settings.sqlalchemy_url.startswith("postgresql+asyncpg://taskmanager:")
    assert settings.sqlalchemy_url.endswith(f"@{host}/taskmanager")
    assert settings.redis_url is not None
    assert settings.redis_url.get_secret_value().endswith(f"@demo-redis.{NAMESPACE}.svc:6379/0")
    assert settings.jwt_signing_key is not None
    generated_key = pod.generated[secret_builder.JWT_SIGNING_KEY]
    assert settings.jwt_signing_key.get_secret_value() == generated_key


def test_every_option_reaches_the_api(pod_environment: pytest.MonkeyPatch, tmp_path: Path) -> None:
    tm = taskmanager(EVERY_OPTION)
    pod = Pod(tm, tmp_path)
    settings, command = start_like_the_pod(pod, pod_environment)

    assert (command.host, command.port) == ("0.0.0.0", http_port(pod.container))  # noqa: S104
    assert settings.access_token_ttl == timedelta(minutes=5)
    assert settings.refresh_token_ttl == timedelta(days=30)
    assert settings.rate_limit_per_minute == 250
    assert settings.login_rate_limit_per_minute == 3
    assert settings.cors_allow_origins == ("https://app.example.com", "http://localhost:3000")
    assert settings.cors_allow_methods == ("GET", "PUT")
    assert settings.cors_allow_headers == ("Authorization", "X-Trace")
    assert settings.cors_allow_credentials is True
    assert settings.cors_max_age_seconds == 120
    assert settings.security_headers_enabled is False
    assert settings.hsts_max_age_seconds == 300
    assert settings.log_level == "DEBUG"
    assert settings.sqlalchemy_url == USER_DATABASE_URL
    assert settings.redis_url is not None
    assert settings.redis_url.get_secret_value() == USER_REDIS_URL
    assert settings.jwt_signing_key is not None
    assert settings.jwt_signing_key.get_secret_value() == USER_SIGNING_KEY
    # Every secret value came from the user's Secrets: the operator generated none.
    assert pod.generated == {}
    assert generated_secret_name(tm) not in str(pod.deployment["spec"]["template"]["spec"])


@pytest.mark.parametrize("spec", [sample_spec(), EVERY_OPTION], ids=["sample", "every-option"])
def test_the_api_reads_every_variable_and_file_the_operator_writes(
    spec: dict[str, Any], pod_environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A key renamed on one side only would be ignored by the API, which then runs on defaults."""
    pod = Pod(taskmanager(spec), tmp_path)
    settings_variables = {env_name(field) for field in Settings.model_fields}
    for variable in pod.config_map["data"]:
        if variable in settings_variables or variable == SECRETS_DIR_VARIABLE:
            continue
        # Not a setting: then the command line must read it (`serve`'s --host and --port).
        pod_environment.setenv(variable, "4711")
        command = api_command_line().parse_args(pod.container["args"])
        pod_environment.delenv(variable)
        assert "4711" in {str(value) for value in vars(command).values()}, (
            f"the ConfigMap sets {variable}, which the API does not read"
        )
    for secret_file in tmp_path.iterdir():
        assert secret_file.name in settings_variables, (
            f"the pod mounts {secret_file.name}, which the API does not read"
        )


# -- one source for the image and the port -------------------------------------------------------


def test_the_default_api_image_is_the_one_the_chart_and_make_image_name() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert OperatorSettings.model_fields["image_repository"].default == DEFAULT_IMAGE_REPOSITORY
    assert values["image"]["repository"] == DEFAULT_IMAGE_REPOSITORY
    # The tag is spec.version, so the default version is the chart's appVersion.
    assert TaskManagerSpec().version == chart["appVersion"]
    build = (REPO / "hack" / "image" / "build.sh").read_text()
    match = re.search(r"^IMAGE=\$\{IMAGE:-([^}:]+):([^}]+)\}$", build, re.MULTILINE)
    assert match is not None, "hack/image/build.sh no longer sets a default IMAGE"
    built = f"{match[1]}:{match[2]}"
    # `make image` builds locally (podman names it localhost/<name>): the name must agree.
    assert match[1] == DEFAULT_IMAGE_REPOSITORY.rsplit("/", 1)[1]
    assert built in (REPO / "Makefile").read_text()
    assert f"`{built}`" in (REPO / "README.md").read_text()


def test_the_dockerfile_serves_on_the_api_port() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.search(rf"^EXPOSE {API_PORT}$", dockerfile, re.MULTILINE)
    assert f'"--port", "{API_PORT}"' in dockerfile


# -- one TTL grammar -------------------------------------------------------------------------------


@functools.cache
def auth_schema() -> dict[str, Any]:
    crd = yaml.safe_load(CRD.read_text())
    (version,) = crd["spec"]["versions"]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return schema["properties"]["auth"]  # type: ignore[no-any-return]


def cel_as_python(rule: str) -> str:
    """The subset of CEL our TTL rules use, as Python (CEL's `a ? b : c` chains to the right, as
    Python's `b if a else c` does). Anything left untranslated fails the test loudly."""
    python = re.sub(
        r"([\w.]+)\.endsWith\('(\w+)'\) \? (\d+) : ", r"\3 if \1.endswith('\2') else ", rule
    )
    python = re.sub(r"\.substring\(0, ([\w.]+)\.size\(\) - 1\)", r"[: len(\1) - 1]", python)
    python = python.replace("&&", "and")
    assert not re.search(r"[?!|]| : |endsWith|substring|size\(", python), python
    return python


def crd_accepts(access: str, refresh: str) -> bool:
    """What the API server decides: the schema's pattern and length, then the CEL rules."""
    schema = auth_schema()
    for field, value in (("accessTokenTTL", access), ("refreshTokenTTL", refresh)):
        prop = schema["properties"][field]
        if len(value) > prop["maxLength"] or not re.search(prop["pattern"], value):
            return False
    this = SimpleNamespace(accessTokenTTL=access, refreshTokenTTL=refresh)
    names = {"__builtins__": {"int": int, "len": len}}
    return all(
        eval(cel_as_python(rule["rule"]), names, {"self": this})  # noqa: S307 - our CRD's rules
        for rule in schema["x-kubernetes-validations"]
        # The TTL rules; the others (signing-key rotation) do not read the TTLs.
        if "TokenTTL" in rule["rule"]
    )


def crd_seconds(value: str) -> int:
    return int(value[:-1]) * TTL_UNIT_SECONDS[value[-1]]


MAX_REFRESH = f"{REFRESH_TOKEN_TTL_MAX_DAYS}d"
# (access, refresh, accepted by the CRD): the bounds and the grammar, both sides.
TTL_TABLE = [
    ("15m", "7d", True),
    ("1m", "2m", True),
    ("60s", "61s", True),
    ("24h", MAX_REFRESH, True),
    ("1440m", "2160h", True),
    ("86400s", "7776000s", True),
    ("1d", "2d", True),
    ("59s", "7d", False),  # below the access minimum
    ("25h", "7d", False),  # above the access maximum
    ("2d", "7d", False),
    ("15m", "15m", False),  # refresh must be longer
    ("1h", "60m", False),  # equal in seconds
    ("2h", "90m", False),
    ("15m", "91d", False),  # above the refresh maximum
    ("15m", "2161h", False),
    ("15m", "7776001s", False),
    ("0m", "7d", False),
    ("015m", "7d", False),
    ("15", "7d", False),  # no unit
    ("15 m", "7d", False),
    (" 15m", "7d", False),
    ("PT15M", "7d", False),
    ("15M", "7d", False),
    ("1.5h", "7d", False),
    ("100ms", "7d", False),
    ("-15m", "7d", False),
    ("15m", "1w", False),
    ("15m", "99999999999s", False),  # longer than maxLength
    ("", "7d", False),
]


def test_the_bounds_in_the_table_are_the_crds() -> None:
    assert crd_seconds("1m") == ACCESS_TOKEN_TTL_MIN_SECONDS
    assert crd_seconds("24h") == ACCESS_TOKEN_TTL_MAX_SECONDS
    assert crd_seconds(MAX_REFRESH) == 90 * 86400


@pytest.mark.parametrize(("access", "refresh", "accepted"), TTL_TABLE)
def test_the_api_parses_every_ttl_the_crd_accepts_to_the_same_duration(
    access: str, refresh: str, accepted: bool, pod_environment: pytest.MonkeyPatch
) -> None:
    assert crd_accepts(access, refresh) is accepted
    if not accepted:
        return
    for value in (access, refresh):
        assert parse_duration(value) == timedelta(seconds=crd_seconds(value))
    pod_environment.setenv("TASKMANAGER_ENVIRONMENT", "development")
    pod_environment.setenv(config.ACCESS_TOKEN_TTL, access)
    pod_environment.setenv(config.REFRESH_TOKEN_TTL, refresh)
    settings = load_settings()
    assert settings.access_token_ttl.total_seconds() == crd_seconds(access)
    assert settings.refresh_token_ttl.total_seconds() == crd_seconds(refresh)


def in_the_grammar(*values: str) -> bool:
    pattern = auth_schema()["properties"]["accessTokenTTL"]["pattern"]
    return all(re.search(pattern, value) for value in values)


@pytest.mark.parametrize(
    ("access", "refresh", "accepted"), [row for row in TTL_TABLE if in_the_grammar(*row[:2])]
)
def test_the_api_and_the_crd_order_the_ttls_alike(
    access: str, refresh: str, accepted: bool, pod_environment: pytest.MonkeyPatch
) -> None:
    """Within the grammar, the API refuses exactly the pairs whose refresh TTL is not longer
    than the access TTL, as the CRD does. (Run alone, the API also takes TTLs outside the CRD's
    window, and seconds or ISO 8601, which the operator never hands it.)"""
    pod_environment.setenv("TASKMANAGER_ENVIRONMENT", "development")
    pod_environment.setenv(config.ACCESS_TOKEN_TTL, access)
    pod_environment.setenv(config.REFRESH_TOKEN_TTL, refresh)
    longer = crd_seconds(refresh) > crd_seconds(access)
    if longer:
        load_settings()
    else:
        with pytest.raises(SettingsError, match="REFRESH_TOKEN_TTL must be longer"):
            load_settings()
    if accepted:
        assert longer
