"""The builders, one kind of child at a time: what a cluster admin or the API would notice if a
manifest came out wrong. Pure functions, so no cluster: a TaskManager in, dicts out."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from taskmanager_api.core.redis_policy import RECOMMENDED_POLICY, evicts_revocations
from taskmanager_operator import render
from taskmanager_operator.api.v1alpha1 import DEFAULT_IMAGE_REPOSITORY, TaskManagerSpec
from taskmanager_operator.builders import api, availability, config, managed, migration, network
from taskmanager_operator.builders import secrets as secret_builder
from taskmanager_operator.builders.common import (
    API,
    CACHE,
    DATABASE,
    MIGRATION,
    SECRETS_DIR,
    Capabilities,
    Manifest,
    checksum,
    image,
    labels,
    owner_reference,
    selector_labels,
)
from taskmanager_operator.builders.secrets import (
    DATABASE_URL,
    JWT_PREVIOUS_KEYS,
    JWT_SIGNING_KEY,
    POSTGRES_PASSWORD,
    REDIS_CONFIG,
    REDIS_PASSWORD,
    REDIS_URL,
)
from taskmanager_operator.resource import TaskManager

NAME = "demo"
NAMESPACE = "team-a"
UID = "0b6f3c0e-2f4e-4d8e-9a51-7c1d3e5f9a10"
IMAGE = "registry.example/taskmanager-api:0.1.0"
SECRET_FILES = {JWT_SIGNING_KEY, DATABASE_URL, REDIS_URL}

SIGNING_KEY_REF = {"name": "jwt", "key": "signing-key"}
DB_REF = {"name": "pg", "key": "url"}
REDIS_REF = {"name": "cache", "key": "dsn"}
EXTERNAL_DB = {"external": {"urlSecretRef": DB_REF}}
EXTERNAL_REDIS = {"external": {"urlSecretRef": REDIS_REF}}

# Representative specs: the defaults (everything managed), everything from the user's Secrets,
# and a mix; ids name them in test reports.
SPECS: list[Any] = [
    pytest.param({}, id="managed"),
    pytest.param(
        {
            "database": EXTERNAL_DB,
            "redis": EXTERNAL_REDIS,
            "auth": {"signingKeySecretRef": SIGNING_KEY_REF},
        },
        id="all-external",
    ),
    pytest.param(
        {"database": EXTERNAL_DB, "autoscaling": {"enabled": True}}, id="external-db-autoscaling"
    ),
    pytest.param(
        {"redis": EXTERNAL_REDIS, "auth": {"signingKeySecretRef": SIGNING_KEY_REF}},
        id="external-redis-user-key",
    ),
]


def taskmanager(spec: dict[str, Any] | None = None, **identity: str) -> TaskManager:
    return TaskManager(
        name=identity.get("name", NAME),
        namespace=identity.get("namespace", NAMESPACE),
        uid=identity.get("uid", UID),
        generation=1,
        spec=TaskManagerSpec.model_validate(spec or {}),
    )


class Tokens:
    """A deterministic stand-in for secrets.token_urlsafe that records what was asked of it."""

    def __init__(self, *values: str) -> None:
        self.values = list(values)
        self.requested: list[int] = []

    def __call__(self, nbytes: int) -> str:
        self.requested.append(nbytes)
        if self.values:
            return self.values.pop(0)
        return f"token-{len(self.requested)}-{nbytes}"


def no_tokens(nbytes: int) -> str:
    raise AssertionError(f"a new {nbytes}-byte secret was generated where one should be kept")


def generated_values(tm: TaskManager, existing: dict[str, str] | None = None) -> dict[str, str]:
    secret = secret_builder.build_generated_secret(tm, existing, Tokens())
    assert secret is not None
    return secret_builder.decode_secret_data(secret["data"])


def deployment(tm: TaskManager, rollout_checksum: str = "abc") -> Manifest:
    return api.build_deployment(tm, image=IMAGE, rollout_checksum=rollout_checksum)


def pod_spec(workload: Manifest) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def only_container(workload: Manifest) -> dict[str, Any]:
    containers: list[dict[str, Any]] = pod_spec(workload)["containers"]
    assert len(containers) == 1
    return containers[0]


def volume(workload: Manifest, name: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [v for v in pod_spec(workload)["volumes"] if v["name"] == name]
    assert len(found) == 1, f"volume {name!r}: {found}"
    return found[0]


def children(tm: TaskManager) -> Iterator[Manifest]:
    """Every child the builders render for one TaskManager (as `render` prints them)."""
    yield from render.children(tm, image_repository=IMAGE.rpartition(":")[0], token=Tokens())


def workloads(tm: TaskManager) -> list[Manifest]:
    """The children that carry a Pod template."""
    return [child for child in children(tm) if "template" in child.get("spec", {})]


EVERYTHING_ON = {
    "autoscaling": {"enabled": True},
    "backup": {"enabled": True},
    "ingress": {"enabled": True, "host": "tasks.example.com", "tlsSecretName": "tasks-tls"},
}


# -- common -------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", [*SPECS, pytest.param(EVERYTHING_ON, id="everything-on")])
def test_every_child_is_owned_by_and_labelled_for_its_taskmanager(spec: dict[str, Any]) -> None:
    tm = taskmanager(spec)
    kinds = []
    for child in children(tm):
        what = f"{child['kind']} {child['metadata']['name']}"
        kinds.append(child["kind"])
        assert child["metadata"]["namespace"] == NAMESPACE, what
        assert child["metadata"]["ownerReferences"] == [owner_reference(tm)], what
        assert child["metadata"]["name"].startswith(f"{NAME}-"), what
        child_labels = child["metadata"]["labels"]
        assert child_labels["app.kubernetes.io/instance"] == NAME, what
        assert child_labels["app.kubernetes.io/managed-by"] == "taskmanager-operator", what
        assert child_labels["app.kubernetes.io/version"] == "0.1.0", what
        assert {
            "app.kubernetes.io/name",
            "app.kubernetes.io/component",
            "app.kubernetes.io/part-of",
        } <= child_labels.keys(), what
    assert {"ConfigMap", "Deployment", "Service", "Job"} <= set(kinds)


def test_owner_reference_makes_the_taskmanager_the_controller() -> None:
    assert owner_reference(taskmanager()) == {
        "apiVersion": "taskmanager.dev/v1alpha1",
        "kind": "TaskManager",
        "name": NAME,
        "uid": UID,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def test_labels_carry_the_recommended_kubernetes_labels() -> None:
    tm = taskmanager({"version": "1.2.3"})
    assert labels(tm, API) == {
        "app.kubernetes.io/name": "taskmanager-api",
        "app.kubernetes.io/instance": NAME,
        "app.kubernetes.io/component": API,
        "app.kubernetes.io/part-of": "taskmanager",
        "app.kubernetes.io/managed-by": "taskmanager-operator",
        "app.kubernetes.io/version": "1.2.3",
    }
    assert selector_labels(tm, API).items() <= labels(tm, API).items()


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"version": "9.9.9"}, id="version"),
        pytest.param({"image": "elsewhere/api:dev"}, id="image"),
        pytest.param({"replicas": 7}, id="replicas"),
        pytest.param({"autoscaling": {"enabled": True}}, id="autoscaling"),
        pytest.param({"database": EXTERNAL_DB, "redis": EXTERNAL_REDIS}, id="external-services"),
    ],
)
def test_selectors_do_not_change_when_the_spec_does(change: dict[str, Any]) -> None:
    """Deployment and StatefulSet selectors are immutable: an upgrade must not need a recreate."""
    before, after = taskmanager(), taskmanager(change)
    for component in (API, DATABASE, CACHE, MIGRATION):
        assert selector_labels(before, component) == selector_labels(after, component)
    assert deployment(before)["spec"]["selector"] == deployment(after)["spec"]["selector"]


def test_selectors_tell_instances_and_components_apart() -> None:
    one, other = taskmanager(), taskmanager(name="other")
    assert selector_labels(one, API) != selector_labels(other, API)
    components = [API, DATABASE, CACHE, MIGRATION]
    distinct = {json.dumps(selector_labels(one, c), sort_keys=True) for c in components}
    assert len(distinct) == len(components)


def test_checksum_is_stable_and_ignores_key_order() -> None:
    assert checksum({"a": "1", "b": "2"}, None) == checksum({"b": "2", "a": "1"}, None)
    assert len(checksum({})) == 64


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param({"LOG": "INFO"}, {"LOG": "DEBUG"}, id="value"),
        pytest.param({"LOG": "INFO"}, {"LOG": "INFO", "NEW": "1"}, id="added-key"),
        pytest.param({"LOG": "INFO"}, {"LEVEL": "INFO"}, id="renamed-key"),
    ],
)
def test_checksum_changes_with_any_input(before: dict[str, str], after: dict[str, str]) -> None:
    assert checksum(before) != checksum(after)


def test_checksum_tells_apart_which_part_changed() -> None:
    assert checksum({"a": "1"}, None) != checksum(None, {"a": "1"})


def test_image_comes_from_version_unless_spec_image_is_set() -> None:
    assert image(taskmanager({"version": "0.4.2"}), "repo/api") == "repo/api:0.4.2"
    assert image(taskmanager({"image": "mine/api@sha256:ab"}), "repo/api") == "mine/api@sha256:ab"
    assert image(taskmanager(), DEFAULT_IMAGE_REPOSITORY).startswith(DEFAULT_IMAGE_REPOSITORY)


# -- secrets ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected_keys", "requested"),
    [
        pytest.param(
            {},
            {JWT_SIGNING_KEY, POSTGRES_PASSWORD, DATABASE_URL, REDIS_PASSWORD, REDIS_URL},
            [48, 24, 24],
            id="all-generated",
        ),
        pytest.param(
            {"auth": {"signingKeySecretRef": SIGNING_KEY_REF}},
            {POSTGRES_PASSWORD, DATABASE_URL, REDIS_PASSWORD, REDIS_URL},
            [24, 24],
            id="user-signing-key",
        ),
        pytest.param(
            {"database": EXTERNAL_DB, "redis": EXTERNAL_REDIS},
            {JWT_SIGNING_KEY},
            [48],
            id="external-services",
        ),
        pytest.param(
            {"database": EXTERNAL_DB},
            {JWT_SIGNING_KEY, REDIS_PASSWORD, REDIS_URL},
            [48, 24],
            id="external-database",
        ),
        pytest.param(
            {"redis": EXTERNAL_REDIS},
            {JWT_SIGNING_KEY, POSTGRES_PASSWORD, DATABASE_URL},
            [48, 24],
            id="external-redis",
        ),
    ],
)
def test_generated_secret_holds_only_what_the_user_did_not_give(
    spec: dict[str, Any], expected_keys: set[str], requested: list[int]
) -> None:
    tokens = Tokens()
    secret = secret_builder.build_generated_secret(taskmanager(spec), None, tokens)
    assert secret is not None
    assert secret["metadata"]["name"] == f"{NAME}-secrets"
    assert secret["type"] == "Opaque"
    keys = set(secret["data"]) - {REDIS_CONFIG}
    assert keys == expected_keys
    assert (REDIS_CONFIG in secret["data"]) == (REDIS_PASSWORD in expected_keys)
    assert tokens.requested == requested


def test_no_generated_secret_when_every_value_comes_from_the_user() -> None:
    spec = {
        "database": EXTERNAL_DB,
        "redis": EXTERNAL_REDIS,
        "auth": {"signingKeySecretRef": SIGNING_KEY_REF},
    }
    assert secret_builder.build_generated_secret(taskmanager(spec), None, no_tokens) is None


def test_generated_values_are_kept_across_reconciles() -> None:
    tm = taskmanager()
    first = secret_builder.build_generated_secret(tm, None, Tokens())
    assert first is not None
    existing = secret_builder.decode_secret_data(first["data"])
    again = secret_builder.build_generated_secret(tm, existing, no_tokens)
    assert again == first


def test_only_missing_values_are_generated() -> None:
    tm = taskmanager()
    existing = {JWT_SIGNING_KEY: "kept-key", POSTGRES_PASSWORD: "kept-pg", REDIS_PASSWORD: ""}
    tokens = Tokens("new-redis")
    secret = secret_builder.build_generated_secret(tm, existing, tokens)
    assert secret is not None
    values = secret_builder.decode_secret_data(secret["data"])
    assert values[JWT_SIGNING_KEY] == "kept-key"
    assert values[POSTGRES_PASSWORD] == "kept-pg"
    # An empty password is as good as none: it is replaced, never served.
    assert values[REDIS_PASSWORD] == "new-redis"
    assert tokens.requested == [24]


def test_default_token_factory_makes_long_distinct_secrets() -> None:
    one = secret_builder.build_generated_secret(taskmanager())
    other = secret_builder.build_generated_secret(taskmanager())
    assert one is not None
    assert other is not None
    first, second = (secret_builder.decode_secret_data(s["data"]) for s in (one, other))
    for key in (JWT_SIGNING_KEY, POSTGRES_PASSWORD, REDIS_PASSWORD):
        assert first[key] != second[key], key
    assert len(first[JWT_SIGNING_KEY]) >= 64  # 48 random bytes, URL-safe base64
    assert len(first[POSTGRES_PASSWORD]) >= 32


def test_connection_urls_point_at_the_managed_services() -> None:
    values = generated_values(taskmanager())
    database = urlsplit(values[DATABASE_URL])
    assert database.scheme == "postgresql+asyncpg"
    assert (database.username, database.password) == ("taskmanager", values[POSTGRES_PASSWORD])
    assert (database.hostname, database.port) == (f"{NAME}-postgres.{NAMESPACE}.svc", 5432)
    assert database.path == "/taskmanager"
    cache = urlsplit(values[REDIS_URL])
    assert cache.scheme == "redis"
    assert cache.password == values[REDIS_PASSWORD]
    assert (cache.hostname, cache.port, cache.path) == (f"{NAME}-redis.{NAMESPACE}.svc", 6379, "/0")


@pytest.mark.parametrize("password", ["p@ss/w:rd?#%", "with space+plus", "ünïcødé&="])
def test_passwords_are_url_quoted_in_connection_urls(password: str) -> None:
    tm = taskmanager()
    existing = {POSTGRES_PASSWORD: password, REDIS_PASSWORD: password, JWT_SIGNING_KEY: "k"}
    values = generated_values(tm, existing)
    for key in (DATABASE_URL, REDIS_URL):
        url = urlsplit(values[key])
        assert url.password is not None
        assert unquote(url.password) == password, key
        assert url.hostname is not None
        assert url.hostname.endswith(f".{NAMESPACE}.svc"), key


def test_redis_config_requires_the_generated_password() -> None:
    values = generated_values(taskmanager(), {REDIS_PASSWORD: "s3cret", JWT_SIGNING_KEY: "k"})
    lines = values[REDIS_CONFIG].splitlines()
    assert "requirepass s3cret" in lines
    assert "port 6379" in lines


def test_redis_evicts_only_keys_with_a_ttl_before_its_memory_limit() -> None:
    tm = taskmanager()
    lines = generated_values(tm)[REDIS_CONFIG].splitlines()
    # The revocation set has no TTL: the policy the API relies on never evicts it.
    assert f"maxmemory-policy {RECOMMENDED_POLICY}" in lines
    assert not evicts_revocations(RECOMMENDED_POLICY)
    maxmemory = next(
        int(line.split()[1].removesuffix("mb")) for line in lines if line.startswith("maxmemory ")
    )
    limit = only_container(managed.build_redis(tm)[0])["resources"]["limits"]["memory"]
    assert 0 < maxmemory < int(limit.removesuffix("Mi"))
    # No persistence: the database holds the record of revocations.
    assert {'save ""', "appendonly no"} <= set(lines)


def test_a_changed_redis_config_rolls_the_redis_pod_without_exposing_the_password() -> None:
    tm = taskmanager()
    assert tm.spec.redis.managed is not None
    settings = secret_builder.redis_settings(tm.spec.redis.managed)
    template = managed.build_redis(tm)[0]["spec"]["template"]
    annotation = template["metadata"]["annotations"]["taskmanager.dev/config-checksum"]
    assert annotation == checksum(settings)
    values = generated_values(tm, {REDIS_PASSWORD: "s3cret", JWT_SIGNING_KEY: "k"})
    assert values[REDIS_CONFIG] == f"requirepass s3cret\n{settings}"


def test_decode_secret_data_reads_what_the_api_server_returns() -> None:
    data = {"a": base64.b64encode(b"value one").decode(), "b": base64.b64encode(b"").decode()}
    assert secret_builder.decode_secret_data(data) == {"a": "value one", "b": ""}
    assert secret_builder.decode_secret_data(None) == {}
    assert secret_builder.decode_secret_data({}) == {}


# -- config -------------------------------------------------------------------------------------


def test_settings_follow_the_spec() -> None:
    tm = taskmanager(
        {
            "auth": {"accessTokenTTL": "5m", "refreshTokenTTL": "30d"},
            "rateLimits": {"requestsPerMinute": 250, "loginPerMinute": 3},
            "logLevel": "DEBUG",
        }
    )
    settings = config.build_config_map(tm)["data"]
    assert settings["TASKMANAGER_ACCESS_TOKEN_TTL"] == "5m"
    assert settings["TASKMANAGER_REFRESH_TOKEN_TTL"] == "30d"
    assert settings["TASKMANAGER_RATE_LIMIT_PER_MINUTE"] == "250"
    assert settings["TASKMANAGER_LOGIN_RATE_LIMIT_PER_MINUTE"] == "3"
    assert settings["TASKMANAGER_LOG_LEVEL"] == "DEBUG"
    assert settings["TASKMANAGER_PORT"] == "8000"
    assert settings["TASKMANAGER_ENVIRONMENT"] == "production"
    assert settings["TASKMANAGER_SECRETS_DIR"] == SECRETS_DIR
    assert all(isinstance(value, str) for value in settings.values())


def test_config_map_defaults() -> None:
    config_map = config.build_config_map(taskmanager())
    assert config_map["metadata"]["name"] == f"{NAME}-config"
    assert config_map["data"]["TASKMANAGER_ACCESS_TOKEN_TTL"] == "15m"
    assert config_map["data"]["TASKMANAGER_LOG_LEVEL"] == "INFO"


@pytest.mark.parametrize("spec", SPECS)
def test_config_map_holds_no_secret(spec: dict[str, Any]) -> None:
    tm = taskmanager(spec)
    settings = config.build_config_map(tm)["data"]
    assert not SECRET_FILES & settings.keys()
    assert not [key for key in settings if "PASSWORD" in key or key.endswith("_URL")]
    secret = secret_builder.build_generated_secret(tm, None, Tokens())
    rendered = json.dumps(settings)
    for value in secret_builder.decode_secret_data((secret or {}).get("data")).values():
        assert value not in rendered


# -- api: Deployment and Service ----------------------------------------------------------------


@pytest.mark.parametrize("replicas", [0, 1, 5])
def test_deployment_runs_spec_replicas_without_autoscaling(replicas: int) -> None:
    assert deployment(taskmanager({"replicas": replicas}))["spec"]["replicas"] == replicas


def test_deployment_leaves_replicas_to_the_autoscaler() -> None:
    tm = taskmanager({"replicas": 5, "autoscaling": {"enabled": True}})
    assert "replicas" not in deployment(tm)["spec"]


def test_deployment_runs_the_api_image_and_reads_the_config_map() -> None:
    tm = taskmanager({"imagePullPolicy": "Always"})
    built = deployment(tm)
    assert built["metadata"]["name"] == f"{NAME}-api"
    container = only_container(built)
    assert container["image"] == IMAGE
    assert container["imagePullPolicy"] == "Always"
    assert container["args"][0] == "serve"
    assert container["envFrom"] == [{"configMapRef": {"name": f"{NAME}-config"}}]
    assert container["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    # Secrets come from files only, never from env literals.
    assert "env" not in container


@pytest.mark.parametrize(
    ("probe", "path"),
    [("startupProbe", "/health"), ("livenessProbe", "/health"), ("readinessProbe", "/ready")],
)
def test_api_probes(probe: str, path: str) -> None:
    container = only_container(deployment(taskmanager()))
    assert container[probe]["httpGet"]["path"] == path
    assert container[probe]["httpGet"]["port"] == "http"
    assert container[probe]["failureThreshold"] >= 1


def test_startup_probe_gives_the_api_time_before_liveness_counts() -> None:
    startup = only_container(deployment(taskmanager()))["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 30


def test_rolling_update_never_drops_below_the_desired_ready_count() -> None:
    strategy = deployment(taskmanager())["spec"]["strategy"]
    assert strategy == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }


@pytest.mark.parametrize("spec", SPECS)
def test_every_pod_meets_the_restricted_pod_security_standard(spec: dict[str, Any]) -> None:
    for workload in workloads(taskmanager(spec)):
        what = f"{workload['kind']} {workload['metadata']['name']}"
        pod = pod_spec(workload)
        assert pod["securityContext"]["runAsNonRoot"] is True, what
        assert pod["securityContext"]["runAsUser"] > 0, what
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, what
        assert pod["automountServiceAccountToken"] is False, what
        assert not {"hostNetwork", "hostPID", "hostIPC"} & pod.keys(), what
        assert all("hostPath" not in v for v in pod.get("volumes", [])), what
        for container in pod["containers"] + pod.get("initContainers", []):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, what
            assert context["capabilities"] == {"drop": ["ALL"]}, what
            assert context["runAsNonRoot"] is True, what
            assert context["readOnlyRootFilesystem"] is True, what
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}, what
            assert context.get("privileged") is not True, what
            assert {"cpu", "memory"} <= container["resources"]["requests"].keys(), what
            assert "memory" in container["resources"]["limits"], what


def test_api_resources_follow_the_spec() -> None:
    tm = taskmanager(
        {"resources": {"requests": {"cpu": "250m", "memory": "200Mi"}, "limits": {"cpu": "1"}}}
    )
    assert only_container(deployment(tm))["resources"] == {
        "requests": {"cpu": "250m", "memory": "200Mi", "ephemeral-storage": "64Mi"},
        "limits": {"cpu": "1", "memory": "256Mi", "ephemeral-storage": "256Mi"},
    }
    default = only_container(deployment(taskmanager()))["resources"]
    assert default == {
        "requests": {"cpu": "100m", "memory": "128Mi", "ephemeral-storage": "64Mi"},
        "limits": {"memory": "256Mi", "ephemeral-storage": "256Mi"},
    }


def test_read_only_root_filesystem_still_has_a_writable_tmp() -> None:
    built = deployment(taskmanager())
    mounts = {m["mountPath"]: m for m in only_container(built)["volumeMounts"]}
    tmp = mounts["/tmp"]  # noqa: S108 - the pod's own emptyDir, which is the point of the test
    assert not tmp.get("readOnly", False)
    assert "emptyDir" in volume(built, tmp["name"])


def test_api_pods_spread_over_nodes_and_zones() -> None:
    tm = taskmanager()
    constraints = pod_spec(deployment(tm))["topologySpreadConstraints"]
    assert {c["topologyKey"] for c in constraints} == {
        "kubernetes.io/hostname",
        "topology.kubernetes.io/zone",
    }
    for constraint in constraints:
        assert constraint["labelSelector"] == {"matchLabels": selector_labels(tm, API)}
        assert constraint["maxSkew"] == 1
        # A single-node cluster must still schedule every replica.
        assert constraint["whenUnsatisfiable"] == "ScheduleAnyway"


def test_rollout_checksum_annotation_rolls_the_pods() -> None:
    tm = taskmanager()
    one, other = deployment(tm, "one"), deployment(tm, "two")
    assert one["spec"]["template"]["metadata"]["annotations"] == {
        api.ROLLOUT_CHECKSUM_ANNOTATION: "one"
    }
    assert one["spec"]["template"] != other["spec"]["template"]
    one["spec"]["template"]["metadata"]["annotations"] = {}
    other["spec"]["template"]["metadata"]["annotations"] = {}
    assert one == other


def test_deployment_selects_its_own_pods() -> None:
    built = deployment(taskmanager())
    selector = built["spec"]["selector"]["matchLabels"]
    assert selector.items() <= built["spec"]["template"]["metadata"]["labels"].items()


# The keys that verify beside the signing key during a rotation: absent outside one, so optional.
PREVIOUS_KEYS_SOURCE = {
    "secret": {
        "name": f"{NAME}-secrets",
        "items": [{"key": JWT_PREVIOUS_KEYS, "path": JWT_PREVIOUS_KEYS}],
        "optional": True,
    }
}


@pytest.mark.parametrize(
    ("spec", "sources"),
    [
        pytest.param(
            {},
            [
                {
                    "secret": {
                        "name": f"{NAME}-secrets",
                        "items": [
                            {"key": JWT_SIGNING_KEY, "path": JWT_SIGNING_KEY},
                            {"key": DATABASE_URL, "path": DATABASE_URL},
                            {"key": REDIS_URL, "path": REDIS_URL},
                        ],
                    }
                },
                PREVIOUS_KEYS_SOURCE,
            ],
            id="managed",
        ),
        pytest.param(
            {
                "database": EXTERNAL_DB,
                "redis": EXTERNAL_REDIS,
                "auth": {"signingKeySecretRef": SIGNING_KEY_REF},
            },
            [
                {
                    "secret": {
                        "name": "jwt",
                        "items": [{"key": "signing-key", "path": JWT_SIGNING_KEY}],
                    }
                },
                {"secret": {"name": "pg", "items": [{"key": "url", "path": DATABASE_URL}]}},
                {"secret": {"name": "cache", "items": [{"key": "dsn", "path": REDIS_URL}]}},
            ],
            id="all-external",
        ),
        pytest.param(
            {"database": EXTERNAL_DB},
            [
                {
                    "secret": {
                        "name": f"{NAME}-secrets",
                        "items": [
                            {"key": JWT_SIGNING_KEY, "path": JWT_SIGNING_KEY},
                            {"key": REDIS_URL, "path": REDIS_URL},
                        ],
                    }
                },
                PREVIOUS_KEYS_SOURCE,
                {"secret": {"name": "pg", "items": [{"key": "url", "path": DATABASE_URL}]}},
            ],
            id="external-db",
        ),
    ],
)
def test_secrets_volume_maps_each_secret_to_the_file_the_api_reads(
    spec: dict[str, Any], sources: list[dict[str, Any]]
) -> None:
    built = deployment(taskmanager(spec))
    secrets_volume = volume(built, "secrets")
    assert secrets_volume["projected"]["sources"] == sources
    # Readable by the pod's group (fsGroup), by no one else.
    assert secrets_volume["projected"]["defaultMode"] == 0o440
    mounts = [m for m in only_container(built)["volumeMounts"] if m["name"] == "secrets"]
    assert mounts == [{"name": "secrets", "mountPath": SECRETS_DIR, "readOnly": True}]


@pytest.mark.parametrize("spec", SPECS)
def test_api_always_finds_every_secret_file_and_the_generated_ones_exist(
    spec: dict[str, Any],
) -> None:
    tm = taskmanager(spec)
    # An optional source (the rotation's previous keys) may be absent: the API starts without it.
    sources = [
        source
        for source in volume(deployment(tm), "secrets")["projected"]["sources"]
        if not source["secret"].get("optional")
    ]
    paths = [item["path"] for source in sources for item in source["secret"]["items"]]
    assert sorted(paths) == sorted(SECRET_FILES)
    generated = secret_builder.build_generated_secret(tm, None, Tokens())
    generated_keys = set((generated or {}).get("data", {}))
    for source in sources:
        if source["secret"]["name"] == f"{NAME}-secrets":
            for item in source["secret"]["items"]:
                assert item["key"] in generated_keys, item


def test_secrets_dir_matches_the_setting_the_api_reads() -> None:
    tm = taskmanager()
    mount = next(
        m for m in only_container(deployment(tm))["volumeMounts"] if m["name"] == "secrets"
    )
    assert mount["mountPath"] == config.api_settings(tm)["TASKMANAGER_SECRETS_DIR"]


def test_service_fronts_the_api_pods_on_port_80() -> None:
    tm = taskmanager()
    service = api.build_service(tm)
    assert service["metadata"]["name"] == f"{NAME}-api"
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}
    ]
    pod_labels = deployment(tm)["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    # The migration pod runs the same image but must never receive traffic.
    job_labels = migration.build_migration_job(tm, image=IMAGE)["spec"]["template"]["metadata"]
    assert not service["spec"]["selector"].items() <= job_labels["labels"].items()


def test_endpoint_is_the_services_cluster_dns_name() -> None:
    assert api.endpoint(taskmanager()) == f"http://{NAME}-api.{NAMESPACE}.svc:80"


# -- availability: HPA and PDB ------------------------------------------------------------------


def test_no_autoscaler_unless_enabled() -> None:
    assert availability.build_hpa(taskmanager(), Capabilities()) is None


def test_autoscaler_scales_the_api_deployment_on_cpu_and_memory() -> None:
    tm = taskmanager(
        {
            "autoscaling": {
                "enabled": True,
                "minReplicas": 3,
                "maxReplicas": 12,
                "targetCPUUtilizationPercentage": 60,
                "targetMemoryUtilizationPercentage": 75,
                "behavior": {"scaleDown": {"stabilizationWindowSeconds": 120}},
            }
        }
    )
    hpa = availability.build_hpa(tm, Capabilities())
    assert hpa is not None
    assert hpa["apiVersion"] == "autoscaling/v2"
    spec = hpa["spec"]
    assert spec["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment(tm)["metadata"]["name"],
    }
    assert (spec["minReplicas"], spec["maxReplicas"]) == (3, 12)
    targets = {
        m["resource"]["name"]: m["resource"]["target"]
        for m in spec["metrics"]
        if m["type"] == "Resource"
    }
    assert targets == {
        "cpu": {"type": "Utilization", "averageUtilization": 60},
        "memory": {"type": "Utilization", "averageUtilization": 75},
    }
    assert spec["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 120


def test_autoscaler_defaults_and_cpu_only() -> None:
    default = availability.build_hpa(
        taskmanager({"autoscaling": {"enabled": True}}), Capabilities()
    )
    assert default is not None
    assert (default["spec"]["minReplicas"], default["spec"]["maxReplicas"]) == (2, 10)
    assert default["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300
    cpu_only = availability.build_hpa(
        taskmanager({"autoscaling": {"enabled": True, "targetMemoryUtilizationPercentage": None}}),
        Capabilities(),
    )
    assert cpu_only is not None
    assert [m["resource"]["name"] for m in cpu_only["spec"]["metrics"]] == ["cpu"]


@pytest.mark.parametrize(
    ("spec", "has_budget"),
    [
        pytest.param({"replicas": 0}, False, id="scaled-to-zero"),
        pytest.param({"replicas": 1}, False, id="one-replica"),
        pytest.param({"replicas": 2}, True, id="two-replicas"),
        pytest.param(
            {"replicas": 1, "autoscaling": {"enabled": True, "minReplicas": 1, "maxReplicas": 3}},
            True,
            id="autoscaler-may-add-pods",
        ),
        pytest.param(
            {"replicas": 5, "autoscaling": {"enabled": True, "minReplicas": 1, "maxReplicas": 1}},
            False,
            id="autoscaler-capped-at-one",
        ),
    ],
)
def test_pdb_only_when_more_than_one_pod_can_run(spec: dict[str, Any], has_budget: bool) -> None:
    assert (availability.build_pdb(taskmanager(spec)) is not None) == has_budget


def test_pdb_guards_the_api_pods() -> None:
    tm = taskmanager({"replicas": 4, "podDisruptionBudget": {"maxUnavailable": 2}})
    pdb = availability.build_pdb(tm)
    assert pdb is not None
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"]["maxUnavailable"] == 2
    assert pdb["spec"]["selector"] == deployment(tm)["spec"]["selector"]


# -- network: NetworkPolicy (the Ingress: tests/unit/test_ingress_and_route.py) -----------------


def egress_for(policy: Manifest, port: int) -> dict[str, Any]:
    rules = [r for r in policy["spec"]["egress"] if {"protocol": "TCP", "port": port} in r["ports"]]
    assert len(rules) == 1, rules
    rule: dict[str, Any] = rules[0]
    return rule


def test_no_network_policy_when_disabled() -> None:
    assert network.build_network_policy(taskmanager({"networkPolicy": {"enabled": False}})) is None


def test_network_policy_lets_only_the_api_port_in() -> None:
    tm = taskmanager()
    policy = network.build_network_policy(tm)
    assert policy is not None
    assert policy["spec"]["podSelector"] == deployment(tm)["spec"]["selector"]
    assert sorted(policy["spec"]["policyTypes"]) == ["Egress", "Ingress"]
    assert policy["spec"]["ingress"] == [{"ports": [{"protocol": "TCP", "port": 8000}]}]


def test_network_policy_egress_reaches_managed_services_by_their_pod_labels() -> None:
    tm = taskmanager()
    policy = network.build_network_policy(tm)
    assert policy is not None
    postgres_pods = managed.build_postgres(tm)[0]["spec"]["template"]["metadata"]["labels"]
    redis_pods = managed.build_redis(tm)[0]["spec"]["template"]["metadata"]["labels"]
    for port, pod_labels in ((5432, postgres_pods), (6379, redis_pods)):
        (peer,) = egress_for(policy, port)["to"]
        assert set(peer) == {"podSelector"}, "a managed service lives in the same namespace"
        assert peer["podSelector"]["matchLabels"].items() <= pod_labels.items()


def test_network_policy_egress_to_external_services_by_port_only() -> None:
    policy = network.build_network_policy(
        taskmanager({"database": EXTERNAL_DB, "redis": EXTERNAL_REDIS})
    )
    assert policy is not None
    for port in (5432, 6379):
        assert "to" not in egress_for(policy, port), "an external service may be anywhere"


def test_network_policy_allows_dns() -> None:
    policy = network.build_network_policy(taskmanager())
    assert policy is not None
    dns = [r for r in policy["spec"]["egress"] if {"protocol": "UDP", "port": 53} in r["ports"]]
    assert len(dns) == 1
    assert {"protocol": "TCP", "port": 53} in dns[0]["ports"]
    assert dns[0]["to"] == [
        {"namespaceSelector": {}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}
    ]


# -- managed PostgreSQL and Redis ---------------------------------------------------------------


def test_nothing_managed_for_external_services() -> None:
    tm = taskmanager({"database": EXTERNAL_DB, "redis": EXTERNAL_REDIS})
    assert managed.build_postgres(tm) == []
    assert managed.build_redis(tm) == []


@pytest.mark.parametrize(
    ("database", "claim"),
    [
        pytest.param(
            {},
            {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
            id="default",
        ),
        pytest.param(
            {"storage": "20Gi", "storageClassName": "fast-ssd"},
            {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "20Gi"}},
                "storageClassName": "fast-ssd",
            },
            id="size-and-class",
        ),
    ],
)
def test_postgres_volume_follows_the_spec(database: dict[str, Any], claim: dict[str, Any]) -> None:
    statefulset, _, _ = managed.build_postgres(taskmanager({"database": {"managed": database}}))
    (template,) = statefulset["spec"]["volumeClaimTemplates"]
    assert template["spec"] == claim
    mounts = {m["name"]: m["mountPath"] for m in only_container(statefulset)["volumeMounts"]}
    assert mounts[template["metadata"]["name"]] == "/var/lib/postgresql/data"


def test_postgres_is_one_statefulset_pod_whose_volume_goes_with_the_taskmanager() -> None:
    statefulset, service, headless = managed.build_postgres(taskmanager())
    assert statefulset["kind"] == "StatefulSet"
    assert statefulset["metadata"]["name"] == f"{NAME}-postgres"
    assert statefulset["spec"]["replicas"] == 1
    assert statefulset["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Delete"
    # The StatefulSet's governing Service is the headless one (test_hardening.py); the API
    # connects through the ClusterIP one.
    assert statefulset["spec"]["serviceName"] == headless["metadata"]["name"]
    pod_labels = statefulset["spec"]["template"]["metadata"]["labels"]
    assert statefulset["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["ports"][0]["port"] == 5432


def test_postgres_image_follows_the_spec() -> None:
    tm = taskmanager({"database": {"managed": {"image": "postgres:17"}}})
    statefulset, *_ = managed.build_postgres(tm)
    assert only_container(statefulset)["image"] == "postgres:17"


def test_postgres_reads_its_password_from_a_file_never_an_env_value() -> None:
    tm = taskmanager()
    statefulset, *_ = managed.build_postgres(tm)
    container = only_container(statefulset)
    env = {e["name"]: e for e in container["env"]}
    assert "POSTGRES_PASSWORD" not in env
    password_file = env["POSTGRES_PASSWORD_FILE"]["value"]
    directory, _, filename = password_file.rpartition("/")
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == directory]
    assert mount["readOnly"] is True
    source = volume(statefulset, mount["name"])["secret"]
    assert source["secretName"] == f"{NAME}-secrets"
    assert {"key": POSTGRES_PASSWORD, "path": filename} in source["items"]
    assert POSTGRES_PASSWORD in generated_values(tm)
    values = generated_values(tm, {POSTGRES_PASSWORD: "s3cret-pg", JWT_SIGNING_KEY: "k"})
    assert values[POSTGRES_PASSWORD] not in json.dumps(statefulset)


def test_managed_service_names_match_the_generated_urls() -> None:
    tm = taskmanager()
    values = generated_values(tm)
    for built, url_key in (
        (managed.build_postgres(tm), DATABASE_URL),
        (managed.build_redis(tm), REDIS_URL),
    ):
        service = built[1]
        url = urlsplit(values[url_key])
        assert url.hostname == f"{service['metadata']['name']}.{NAMESPACE}.svc"
        assert url.port == service["spec"]["ports"][0]["port"]


def test_redis_runs_with_the_config_from_the_generated_secret() -> None:
    tm = taskmanager({"redis": {"managed": {"image": "redis:7.4"}}})
    deployment_, service = managed.build_redis(tm)
    assert deployment_["kind"] == "Deployment"
    assert deployment_["spec"]["replicas"] == 1
    # Two Redis pods at once would split revocations and rate limits between them.
    assert deployment_["spec"]["strategy"] == {"type": "Recreate"}
    container = only_container(deployment_)
    assert container["image"] == "redis:7.4"
    config_path = container["args"][-1]
    directory, _, filename = config_path.rpartition("/")
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == directory]
    source = volume(deployment_, mount["name"])["secret"]
    assert source["secretName"] == f"{NAME}-secrets"
    assert {"key": REDIS_CONFIG, "path": filename} in source["items"]
    assert REDIS_CONFIG in generated_values(tm)
    values = generated_values(tm, {REDIS_PASSWORD: "s3cret-redis", JWT_SIGNING_KEY: "k"})
    assert values[REDIS_PASSWORD] not in json.dumps(deployment_)
    assert "env" not in container
    assert service["spec"]["selector"].items() <= (
        deployment_["spec"]["template"]["metadata"]["labels"].items()
    )


@pytest.mark.parametrize("builder", [managed.build_postgres, managed.build_redis])
def test_managed_services_have_writable_scratch_space(builder: Any) -> None:
    workload = builder(taskmanager())[0]
    for mount in only_container(workload)["volumeMounts"]:
        if not mount.get("readOnly"):
            claims = {
                t["metadata"]["name"] for t in workload["spec"].get("volumeClaimTemplates", [])
            }
            assert mount["name"] in claims or "emptyDir" in volume(workload, mount["name"])


# -- migration Job ------------------------------------------------------------------------------


def test_migration_job_name_is_stable_per_image() -> None:
    tm = taskmanager()
    name = migration.migration_job_name(tm, IMAGE)
    assert name == migration.migration_job_name(taskmanager({"replicas": 9}), IMAGE)
    assert name.startswith(f"{NAME}-migrate-")
    assert len(name) <= 63


@pytest.mark.parametrize(
    "other",
    [
        "registry.example/taskmanager-api:0.2.0",
        "registry.example/taskmanager-api@sha256:0123",
        "mirror.example/taskmanager-api:0.1.0",
    ],
)
def test_a_new_image_gets_a_new_migration_job(other: str) -> None:
    tm = taskmanager()
    assert migration.migration_job_name(tm, IMAGE) != migration.migration_job_name(tm, other)


def test_migration_job_upgrades_the_schema_with_the_api_image() -> None:
    tm = taskmanager()
    job = migration.build_migration_job(tm, image=IMAGE)
    assert job["metadata"]["name"] == migration.migration_job_name(tm, IMAGE)
    assert job["metadata"]["annotations"] == {migration.MIGRATION_IMAGE_ANNOTATION: IMAGE}
    assert job["spec"]["backoffLimit"] == 2
    assert job["spec"]["activeDeadlineSeconds"] > 0
    assert pod_spec(job)["restartPolicy"] == "Never"
    container = only_container(job)
    assert container["image"] == IMAGE
    assert container["args"] == ["migrate", "upgrade"]
    assert "ports" not in container
    assert "readinessProbe" not in container


@pytest.mark.parametrize("spec", SPECS)
def test_migration_job_sees_the_same_config_and_secrets_as_the_api(spec: dict[str, Any]) -> None:
    tm = taskmanager(spec)
    job, api_deployment = migration.build_migration_job(tm, image=IMAGE), deployment(tm)
    assert pod_spec(job)["volumes"] == pod_spec(api_deployment)["volumes"]
    assert pod_spec(job)["securityContext"] == pod_spec(api_deployment)["securityContext"]
    job_container, api_container = only_container(job), only_container(api_deployment)
    for key in ("envFrom", "volumeMounts", "resources", "securityContext", "command"):
        assert job_container[key] == api_container[key], key
