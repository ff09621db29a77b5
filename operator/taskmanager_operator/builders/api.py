"""The API's Deployment and Service."""

from __future__ import annotations

from typing import Any

from taskmanager_operator.builders.common import (
    API,
    API_PORT,
    API_SERVICE_PORT,
    SECRETS_DIR,
    Manifest,
    api_name,
    config_name,
    container_resources,
    generated_secret_name,
    labels,
    metadata,
    restricted_pod_security_context,
    restricted_security_context,
    selector_labels,
)
from taskmanager_operator.builders.identity import api_pod_identity
from taskmanager_operator.builders.scheduling import pod_scheduling
from taskmanager_operator.builders.secrets import (
    DATABASE_URL,
    JWT_PREVIOUS_KEYS,
    JWT_SIGNING_KEY,
    REDIS_URL,
)
from taskmanager_operator.resource import TaskManager

# Changing this annotation's value rolls the pods: it digests the config and secret inputs.
ROLLOUT_CHECKSUM_ANNOTATION = "taskmanager.dev/rollout-checksum"
# How long a deleted pod keeps serving before it stops (the preStop sleep).
ENDPOINT_DRAIN_SECONDS = 5
# The drain, then the API's own graceful timeout (25 s); the kubelet waits a little longer before
# SIGKILL.
TERMINATION_GRACE_SECONDS = ENDPOINT_DRAIN_SECONDS + 30
APP_UID = 10001


def secret_volume(tm: TaskManager) -> dict[str, Any]:
    """One directory with a file per secret setting, from the generated and the user's Secrets."""
    spec = tm.spec
    generated: list[str] = []
    sources: list[dict[str, Any]] = []

    def user_secret(ref_name: str, ref_key: str, path: str) -> None:
        sources.append({"secret": {"name": ref_name, "items": [{"key": ref_key, "path": path}]}})

    if spec.auth.signing_key_secret_ref is None:
        generated.append(JWT_SIGNING_KEY)
    else:
        ref = spec.auth.signing_key_secret_ref
        user_secret(ref.name, ref.key, JWT_SIGNING_KEY)
    if spec.database.external is not None:
        ref = spec.database.external.url_secret_ref
        user_secret(ref.name, ref.key, DATABASE_URL)
    else:
        generated.append(DATABASE_URL)
    if spec.redis.external is not None:
        ref = spec.redis.external.url_secret_ref
        user_secret(ref.name, ref.key, REDIS_URL)
    else:
        generated.append(REDIS_URL)
    if generated:
        items = [{"key": key, "path": key} for key in generated]
        sources.insert(0, {"secret": {"name": generated_secret_name(tm), "items": items}})
    if spec.auth.signing_key_secret_ref is None:
        # The keys that verify beside the signing one, present only while a rotation overlaps:
        # optional, so the pods start without it.
        previous = [{"key": JWT_PREVIOUS_KEYS, "path": JWT_PREVIOUS_KEYS}]
        sources.insert(
            1,
            {"secret": {"name": generated_secret_name(tm), "items": previous, "optional": True}},
        )
    return {"name": "secrets", "projected": {"sources": sources, "defaultMode": 0o440}}


def pod_security_context() -> dict[str, Any]:
    """The API's pods (the Deployment's and the migration Job's) run as the image's user."""
    return restricted_pod_security_context(APP_UID)


def api_container(tm: TaskManager, image: str, args: list[str]) -> dict[str, Any]:
    """The API container as both the Deployment and the migration Job run it."""
    return {
        "name": "api",
        "image": image,
        "imagePullPolicy": tm.spec.image_pull_policy,
        # Spelled out so the pod does not depend on the image's entrypoint.
        "command": ["python", "-m", "taskmanager_api"],
        "args": args,
        "envFrom": [{"configMapRef": {"name": config_name(tm)}}],
        "resources": container_resources(tm.spec.resources),
        "securityContext": restricted_security_context(),
        "volumeMounts": [
            {"name": "secrets", "mountPath": SECRETS_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - an emptyDir, private to the pod
        ],
    }


def pod_volumes(tm: TaskManager) -> list[dict[str, Any]]:
    return [secret_volume(tm), {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}]


def build_deployment(tm: TaskManager, *, image: str, rollout_checksum: str) -> Manifest:
    spec = tm.spec
    # No --host/--port: `serve` reads them from the ConfigMap, so the port is set in one place.
    container = api_container(tm, image, ["serve"])
    container["ports"] = [{"name": "http", "containerPort": API_PORT, "protocol": "TCP"}]
    probe_target = {"port": "http", "scheme": "HTTP"}
    container["startupProbe"] = {
        "httpGet": {"path": "/health", **probe_target},
        "periodSeconds": 2,
        "failureThreshold": 30,
    }
    container["livenessProbe"] = {
        "httpGet": {"path": "/health", **probe_target},
        "periodSeconds": 10,
        "timeoutSeconds": 2,
        "failureThreshold": 3,
    }
    container["readinessProbe"] = {
        "httpGet": {"path": "/ready", **probe_target},
        "periodSeconds": 5,
        "timeoutSeconds": 2,
        "failureThreshold": 2,
    }
    # A deleted pod stays in the Service's endpoints until every kube-proxy has seen it go; it keeps
    # serving that long before the server starts its graceful shutdown, so no client is refused.
    container["lifecycle"] = {"preStop": {"sleep": {"seconds": ENDPOINT_DRAIN_SECONDS}}}
    selector = selector_labels(tm, API)
    deployment_spec: dict[str, Any] = {
        "selector": {"matchLabels": selector},
        "revisionHistoryLimit": 5,
        # Never below the desired ready count: a new pod must be ready before an old one goes.
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
        },
        "template": {
            "metadata": {
                # The CRD refuses the operator's own keys in podTemplate; ours win regardless.
                "labels": spec.pod_template.labels | labels(tm, API),
                "annotations": spec.pod_template.annotations
                | {ROLLOUT_CHECKSUM_ANNOTATION: rollout_checksum},
            },
            "spec": {
                **api_pod_identity(tm),
                "enableServiceLinks": False,
                "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
                "securityContext": pod_security_context(),
                "topologySpreadConstraints": [
                    {
                        "maxSkew": 1,
                        "topologyKey": "kubernetes.io/hostname",
                        "whenUnsatisfiable": "ScheduleAnyway",
                        "labelSelector": {"matchLabels": selector},
                    },
                    {
                        "maxSkew": 1,
                        "topologyKey": "topology.kubernetes.io/zone",
                        "whenUnsatisfiable": "ScheduleAnyway",
                        "labelSelector": {"matchLabels": selector},
                    },
                ],
                "containers": [container],
                "volumes": pod_volumes(tm),
                **pod_scheduling(tm),
            },
        },
    }
    # While an HPA owns the replica count, writing it here would fight the autoscaler.
    if not spec.autoscaling.enabled:
        deployment_spec["replicas"] = spec.replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(tm, api_name(tm), API),
        "spec": deployment_spec,
    }


def build_service(tm: TaskManager) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(tm, api_name(tm), API),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(tm, API),
            "ports": [
                {"name": "http", "port": API_SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}
            ],
        },
    }


def endpoint(tm: TaskManager) -> str:
    return f"http://{api_name(tm)}.{tm.namespace}.svc:{API_SERVICE_PORT}"
