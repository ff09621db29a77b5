"""The API server itself rejects bad TaskManagers at apply time, with a message naming the field,
and fills in the same defaults the operator's models assume."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from taskmanager_operator.api.v1alpha1 import (
    GROUP,
    KIND,
    PLURAL,
    VERSION,
    TaskManagerSpec,
    to_manifest,
)

SECRET_REF = {"name": "db", "key": "url"}

INVALID: list[Any] = [
    pytest.param({"replicas": -1}, "spec.replicas", id="negative-replicas"),
    pytest.param({"version": "latest"}, "spec.version", id="version-not-semver"),
    pytest.param({"imagePullPolicy": "Sometimes"}, "spec.imagePullPolicy", id="pull-policy"),
    pytest.param({"logLevel": "LOUD"}, "spec.logLevel", id="log-level"),
    pytest.param(
        {"scheduling": {"tolerations": [{"key": "k", "operator": "Exists", "value": "v"}]}},
        "operator Exists must not have a value",
        id="toleration-exists-with-value",
    ),
    pytest.param(
        {
            "scheduling": {
                "tolerations": [{"key": "k", "effect": "NoSchedule", "tolerationSeconds": 5}]
            }
        },
        "tolerationSeconds is allowed only with effect NoExecute",
        id="toleration-seconds-without-noexecute",
    ),
    pytest.param(
        {"scheduling": {"affinity": {"nodeAfinity": {}}}},
        "nodeAfinity",
        id="affinity-typo",
    ),
    pytest.param(
        {"resources": {"requests": {"cpu": "lots"}}}, "spec.resources.requests.cpu", id="cpu"
    ),
    pytest.param(
        {"resources": {"limits": {"memory": "1 GB"}}}, "spec.resources.limits.memory", id="memory"
    ),
    pytest.param(
        {"autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 3}},
        "minReplicas must be less than or equal to maxReplicas",
        id="min-above-max",
    ),
    pytest.param(
        {"autoscaling": {"targetCPUUtilizationPercentage": 150}},
        "spec.autoscaling.targetCPUUtilizationPercentage",
        id="cpu-target-above-100",
    ),
    pytest.param(
        {"autoscaling": {"minReplicas": 0}}, "spec.autoscaling.minReplicas", id="min-zero"
    ),
    pytest.param(
        {"database": {"managed": {}, "external": {"urlSecretRef": SECRET_REF}}},
        "exactly one of database.managed and database.external",
        id="database-both",
    ),
    pytest.param(
        {"database": {}}, "exactly one of database.managed and database.external", id="db-neither"
    ),
    pytest.param(
        {"database": {"external": {"urlSecretRef": {"key": "url"}}}},
        "spec.database.external.urlSecretRef.name",
        id="secret-ref-without-name",
    ),
    pytest.param(
        {"database": {"managed": {"storage": "big"}}},
        "spec.database.managed.storage",
        id="storage-not-a-quantity",
    ),
    pytest.param(
        {"redis": {"managed": {}, "external": {"urlSecretRef": SECRET_REF}}},
        "exactly one of redis.managed and redis.external",
        id="redis-both",
    ),
    pytest.param(
        {"redis": {"external": {"urlSecretRef": {"name": "Not_A_Name", "key": "url"}}}},
        "spec.redis.external.urlSecretRef.name",
        id="secret-name-invalid",
    ),
    pytest.param({"auth": {"accessTokenTTL": "15x"}}, "spec.auth.accessTokenTTL", id="ttl-unit"),
    pytest.param(
        {"auth": {"accessTokenTTL": "30s"}},
        "accessTokenTTL must be between 1m and 24h",
        id="access-ttl-too-short",
    ),
    pytest.param(
        {"auth": {"accessTokenTTL": "2h", "refreshTokenTTL": "1h"}},
        "refreshTokenTTL must be longer than accessTokenTTL",
        id="refresh-shorter-than-access",
    ),
    pytest.param(
        {"auth": {"refreshTokenTTL": "365d"}},
        "refreshTokenTTL must be longer than accessTokenTTL and at most 90d",
        id="refresh-ttl-too-long",
    ),
    pytest.param(
        {"auth": {"signingKeySecretRef": {"name": "jwt", "key": "bad key!"}}},
        "spec.auth.signingKeySecretRef.key",
        id="secret-key-invalid",
    ),
    pytest.param(
        {"ingress": {"enabled": True}}, "ingress.host is required when enabled", id="no-host"
    ),
    pytest.param(
        {"ingress": {"enabled": True, "host": "Tasks_Example"}},
        "spec.ingress.host",
        id="host-invalid",
    ),
    pytest.param(
        {"podDisruptionBudget": {"maxUnavailable": 0}},
        "spec.podDisruptionBudget.maxUnavailable",
        id="pdb-zero",
    ),
    pytest.param(
        {"rateLimits": {"requestsPerMinute": 0}},
        "spec.rateLimits.requestsPerMinute",
        id="rate-limit-zero",
    ),
    pytest.param({"replicaz": 3}, 'unknown field "spec.replicaz"', id="unknown-field"),
]


def taskmanager(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {"name": f"tm-{uuid.uuid4().hex[:6]}"},
        "spec": spec,
    }


@pytest.mark.usefixtures("taskmanager_crd")
@pytest.mark.parametrize(("spec", "message"), INVALID)
def test_an_invalid_taskmanager_is_rejected_naming_the_field(
    api_client: ApiClient, spec: dict[str, Any], message: str
) -> None:
    custom = client.CustomObjectsApi(api_client)
    with pytest.raises(ApiException) as rejected:
        # Strict field validation is what `kubectl apply` uses by default.
        custom.create_namespaced_custom_object(
            GROUP,
            VERSION,
            "default",
            PLURAL,
            taskmanager(spec),
            dry_run="All",
            field_validation="Strict",
        )
    assert rejected.value.status in {400, 422}
    status = json.loads(rejected.value.body)
    assert message in status["message"], status


@pytest.mark.usefixtures("taskmanager_crd")
def test_an_empty_spec_gets_the_models_defaults(api_client: ApiClient) -> None:
    custom = client.CustomObjectsApi(api_client)
    created = custom.create_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, taskmanager({}), dry_run="All"
    )
    assert created["spec"] == to_manifest(TaskManagerSpec())


@pytest.mark.usefixtures("taskmanager_crd")
@pytest.mark.parametrize(
    ("name", "message"),
    [
        pytest.param("a" * 41, "metadata.name must be at most 40 characters", id="too-long"),
        pytest.param("demo.v2", "metadata.name must be a DNS label", id="dotted"),
    ],
)
def test_a_name_its_children_could_not_carry_is_rejected(
    api_client: ApiClient, name: str, message: str
) -> None:
    body = taskmanager({})
    body["metadata"]["name"] = name
    with pytest.raises(ApiException) as rejected:
        client.CustomObjectsApi(api_client).create_namespaced_custom_object(
            GROUP, VERSION, "default", PLURAL, body, dry_run="All"
        )
    assert message in json.loads(rejected.value.body)["message"]
