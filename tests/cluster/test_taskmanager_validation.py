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
INGRESS = {"enabled": True, "host": "tasks.example.com"}

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
        {"auth": {"signingKeyRotation": {"interval": "30m"}}},
        "interval must be between 1h and 365d",
        id="rotation-too-often",
    ),
    pytest.param(
        {"auth": {"signingKeyRotation": {"interval": "400d"}}},
        "interval must be between 1h and 365d",
        id="rotation-too-rare",
    ),
    pytest.param(
        {
            "auth": {
                "signingKeySecretRef": {"name": "jwt", "key": "key"},
                "signingKeyRotation": {"interval": "30d"},
            }
        },
        "signingKeyRotation rotates the generated key only",
        id="rotation-of-a-users-key",
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
        {"ingress": {"issuerRef": {"name": "letsencrypt"}}},
        "ingress.issuerRef needs ingress.host",
        id="issuer-without-host",
    ),
    pytest.param(
        {
            "ingress": {
                **INGRESS,
                "issuerRef": {"name": "letsencrypt", "kind": "ClusterIssuer"},
                "annotations": {"cert-manager.io/cluster-issuer": "other"},
            }
        },
        "ingress.annotations must not name a cert-manager issuer",
        id="issuer-also-by-hand",
    ),
    pytest.param(
        {"ingress": {**INGRESS, "issuerRef": {"name": "vault", "kind": "VaultIssuer"}}},
        "spec.ingress.issuerRef.kind",
        id="issuer-kind",
    ),
    pytest.param({"ingress": {**INGRESS, "path": "api"}}, "spec.ingress.path", id="path-relative"),
    pytest.param(
        {"ingress": {**INGRESS, "path": "/api/../admin"}},
        "ingress.path must not have an empty, `.` or `..` segment",
        id="path-dot-dot",
    ),
    pytest.param(
        {"ingress": {**INGRESS, "pathType": "Regex"}}, "spec.ingress.pathType", id="path-type"
    ),
    pytest.param(
        {"ingress": {**INGRESS, "className": "nginx", "gateway": {"name": "public"}}},
        "ingress.gateway routes through a Gateway",
        id="gateway-and-ingress-class",
    ),
    pytest.param(
        {
            "ingress": {
                **INGRESS,
                "pathType": "ImplementationSpecific",
                "gateway": {"name": "public"},
            }
        },
        "ingress.pathType ImplementationSpecific is for an Ingress",
        id="gateway-implementation-specific",
    ),
    pytest.param(
        {"ingress": {**INGRESS, "gateway": {"namespace": "gateways"}}},
        "spec.ingress.gateway.name",
        id="gateway-without-name",
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
    pytest.param(
        {"cors": {"allowOrigins": ["https://app.example.com/"]}},
        "spec.cors.allowOrigins[0]",
        id="cors-origin-with-path",
    ),
    pytest.param(
        {"cors": {"allowOrigins": ["app.example.com"]}},
        "spec.cors.allowOrigins[0]",
        id="cors-origin-without-scheme",
    ),
    pytest.param(
        {"cors": {"allowOrigins": ["*"], "allowCredentials": True}},
        "allowOrigins must list the origins, not '*', when allowCredentials is true",
        id="cors-any-origin-with-credentials",
    ),
    pytest.param({"cors": {"allowOrigins": []}}, "spec.cors.allowOrigins", id="cors-no-origin"),
    pytest.param(
        {"cors": {"allowOrigins": ["https://app.example.com"], "allowMethods": ["FETCH"]}},
        "spec.cors.allowMethods[0]",
        id="cors-method",
    ),
    pytest.param(
        {"cors": {"allowOrigins": ["https://app.example.com"], "maxAgeSeconds": 86401}},
        "spec.cors.maxAgeSeconds",
        id="cors-max-age",
    ),
    pytest.param(
        {"securityHeaders": {"hstsMaxAgeSeconds": -1}},
        "spec.securityHeaders.hstsMaxAgeSeconds",
        id="hsts-negative",
    ),
    pytest.param({"replicaz": 3}, 'unknown field "spec.replicaz"', id="unknown-field"),
    pytest.param(
        {"podTemplate": {"labels": {"app.kubernetes.io/instance": "other"}}},
        "podTemplate.labels must not set a label the operator sets",
        id="pod-template-operator-label",
    ),
    pytest.param(
        {"podTemplate": {"annotations": {"taskmanager.dev/rollout-checksum": "pinned"}}},
        "podTemplate.annotations must not set a taskmanager.dev/ key",
        id="pod-template-operator-annotation",
    ),
    pytest.param(
        {"imagePullSecrets": [{"name": "creds"}, {"name": "creds"}]},
        "spec.imagePullSecrets[1]",
        id="pull-secret-twice",
    ),
    pytest.param(
        {"serviceAccountName": "Tasks_SA"}, "spec.serviceAccountName", id="service-account-name"
    ),
    pytest.param(
        {"autoscaling": {"behavior": {"scaleUp": {"policies": []}}}},
        "spec.autoscaling.behavior.scaleUp.policies",
        id="behavior-no-policy",
    ),
    pytest.param(
        {"autoscaling": {"behavior": {"scaleDown": {"stabilizationWindowSeconds": 3601}}}},
        "spec.autoscaling.behavior.scaleDown.stabilizationWindowSeconds",
        id="behavior-window-over-an-hour",
    ),
    pytest.param(
        {"autoscaling": {"behavior": {"scaleUp": {"policies": [{"type": "Pods", "value": 0}]}}}},
        "spec.autoscaling.behavior.scaleUp.policies[0].value",
        id="behavior-value-zero",
    ),
    pytest.param(
        {
            "autoscaling": {
                "behavior": {
                    "scaleDown": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 1801}]}
                }
            }
        },
        "spec.autoscaling.behavior.scaleDown.policies[0].periodSeconds",
        id="behavior-period-over-30-minutes",
    ),
    pytest.param(
        {"autoscaling": {"behavior": {"scaleUp": {"selectPolicy": "Sometimes"}}}},
        "spec.autoscaling.behavior.scaleUp.selectPolicy",
        id="behavior-select-policy",
    ),
    pytest.param(
        {"autoscaling": {"scaleDownStabilizationSeconds": 120}},
        'unknown field "spec.autoscaling.scaleDownStabilizationSeconds"',
        id="removed-scale-down-stabilization-seconds",
    ),
    pytest.param(
        {"redis": {"managed": {"resources": {"limits": {"memory": "32Mi"}}}}},
        "resources.limits.memory of a managed Redis must be at least 64Mi",
        id="redis-memory-limit-too-small",
    ),
    pytest.param(
        {"database": {"managed": {"resources": {"requests": {"memory": "1Gi"}}}}},
        "requests.memory must be at most limits.memory",
        id="database-memory-request-above-limit",
    ),
    pytest.param(
        {"resources": {"requests": {"ephemeral-storage": "1Gi"}}},
        "requests.ephemeral-storage must be at most limits.ephemeral-storage",
        id="api-ephemeral-storage-request-above-limit",
    ),
    pytest.param(
        {"resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}},
        "requests.cpu must be at most limits.cpu",
        id="api-cpu-request-above-limit",
    ),
    pytest.param(
        {"redis": {"managed": {"resources": {"limits": {"ephemeral-storage": "lots"}}}}},
        "spec.redis.managed.resources.limits.ephemeral-storage",
        id="ephemeral-storage-not-a-quantity",
    ),
    pytest.param({"backup": {"schedule": "0 25 * * *"}}, "spec.backup.schedule", id="cron-hour"),
    pytest.param({"backup": {"schedule": "daily"}}, "spec.backup.schedule", id="cron-word"),
    pytest.param({"backup": {"schedule": "0 3 * *"}}, "spec.backup.schedule", id="cron-4-fields"),
    pytest.param(
        {"backup": {"verification": {"schedule": "*/0 * * * *"}}},
        "spec.backup.verification.schedule",
        id="cron-step-0",
    ),
    pytest.param({"backup": {"timeZone": "Mars/Olympus"}}, "spec.backup.timeZone", id="tz"),
    pytest.param({"backup": {"retention": {"days": 0}}}, "spec.backup.retention.days", id="days"),
    pytest.param(
        {"backup": {"beforeUpgrade": "Sometimes"}}, "spec.backup.beforeUpgrade", id="pre-upgrade"
    ),
    pytest.param(
        {
            "backup": {
                "storage": {
                    "persistentVolume": {},
                    "s3": {"bucket": "tasks", "credentialsSecretRef": {"name": "s3"}},
                }
            }
        },
        "backup.storage takes exactly one of persistentVolume or s3",
        id="two-storages",
    ),
    pytest.param(
        {"backup": {"storage": {"s3": {"bucket": "Tasks_Backups", "credentialsSecretRef": {}}}}},
        "spec.backup.storage.s3.bucket",
        id="bucket-name",
    ),
    pytest.param(
        {"backup": {"storage": {"s3": {"bucket": "tasks"}}}},
        "spec.backup.storage.s3.credentialsSecretRef",
        id="s3-without-credentials",
    ),
    pytest.param(
        {
            "backup": {
                "storage": {
                    "s3": {
                        "bucket": "tasks",
                        "prefix": "/abs",
                        "credentialsSecretRef": {"name": "s3"},
                    }
                }
            }
        },
        "spec.backup.storage.s3.prefix",
        id="s3-prefix-leading-slash",
    ),
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
