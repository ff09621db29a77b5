"""PostgreSQL and Redis run by the operator when the TaskManager asks for managed ones."""

from __future__ import annotations

from typing import Any

from taskmanager_operator.api.v1alpha1 import Scheduling
from taskmanager_operator.builders.common import (
    CACHE,
    DATABASE,
    POSTGRES_PORT,
    REDIS_MEMORY_LIMIT_MIB,
    REDIS_PORT,
    Manifest,
    cache_name,
    checksum,
    database_name,
    generated_secret_name,
    labels,
    metadata,
    restricted_pod_security_context,
    restricted_security_context,
    selector_labels,
)
from taskmanager_operator.builders.scheduling import pod_scheduling
from taskmanager_operator.builders.secrets import (
    POSTGRES_DB,
    POSTGRES_PASSWORD,
    POSTGRES_USER,
    REDIS_CONFIG,
    redis_settings,
)
from taskmanager_operator.resource import TaskManager

# The uid the official postgres and redis images use for their server processes.
SERVICE_UID = 999
# Redis reads its config file only at start: a changed config must roll its pod.
CONFIG_CHECKSUM_ANNOTATION = "taskmanager.dev/config-checksum"


def _pod_template(
    tm: TaskManager,
    component: str,
    container: dict[str, Any],
    volumes: list[dict[str, Any]],
    scheduling: Scheduling | None,
    *,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The pod of a managed service; its own scheduling, when set, replaces the TaskManager's."""
    pod_metadata: dict[str, Any] = {"labels": labels(tm, component)}
    if annotations:
        pod_metadata["annotations"] = annotations
    return {
        "metadata": pod_metadata,
        "spec": {
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "securityContext": restricted_pod_security_context(SERVICE_UID),
            "containers": [container],
            "volumes": volumes,
            **pod_scheduling(tm, scheduling),
        },
    }


def _secret_file_volume(tm: TaskManager, volume: str, key: str) -> dict[str, Any]:
    """One key of the generated Secret as a read-only file."""
    return {
        "name": volume,
        "secret": {
            "secretName": generated_secret_name(tm),
            "items": [{"key": key, "path": key}],
            "defaultMode": 0o440,
        },
    }


def _service(tm: TaskManager, name: str, component: str, port: int, port_name: str) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(tm, name, component),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(tm, component),
            "ports": [
                {"name": port_name, "port": port, "targetPort": port_name, "protocol": "TCP"}
            ],
        },
    }


def build_postgres(tm: TaskManager) -> list[Manifest]:
    managed = tm.spec.database.managed
    if managed is None:
        return []
    name = database_name(tm)
    claim_spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": managed.storage}},
    }
    if managed.storage_class_name:
        claim_spec["storageClassName"] = managed.storage_class_name
    container = {
        "name": "postgres",
        "image": managed.image,
        "env": [
            {"name": "POSTGRES_USER", "value": POSTGRES_USER},
            {"name": "POSTGRES_DB", "value": POSTGRES_DB},
            # The image reads the password from the mounted file, never from the pod spec.
            {
                "name": "POSTGRES_PASSWORD_FILE",
                "value": f"/run/secrets/postgres/{POSTGRES_PASSWORD}",
            },
            {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"},
        ],
        "ports": [{"name": "postgres", "containerPort": POSTGRES_PORT, "protocol": "TCP"}],
        "readinessProbe": {
            "exec": {"command": ["pg_isready", "-U", POSTGRES_USER, "-d", POSTGRES_DB]},
            "periodSeconds": 5,
        },
        "livenessProbe": {"tcpSocket": {"port": "postgres"}, "periodSeconds": 10},
        "resources": {
            "requests": {"cpu": "100m", "memory": "256Mi"},
            "limits": {"memory": "512Mi"},
        },
        "securityContext": restricted_security_context(),
        "volumeMounts": [
            {"name": "data", "mountPath": "/var/lib/postgresql/data"},
            {"name": "run", "mountPath": "/var/run/postgresql"},
            {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - an emptyDir, private to the pod
            {"name": "password", "mountPath": "/run/secrets/postgres", "readOnly": True},
        ],
    }
    statefulset = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": metadata(tm, name, DATABASE),
        "spec": {
            "serviceName": name,
            "replicas": 1,
            # Deleting the TaskManager deletes its data volume too: nothing is left behind.
            "persistentVolumeClaimRetentionPolicy": {
                "whenDeleted": "Delete",
                "whenScaled": "Retain",
            },
            "selector": {"matchLabels": selector_labels(tm, DATABASE)},
            "template": _pod_template(
                tm,
                DATABASE,
                container,
                [
                    {"name": "run", "emptyDir": {}},
                    {"name": "tmp", "emptyDir": {}},
                    _secret_file_volume(tm, "password", POSTGRES_PASSWORD),
                ],
                managed.scheduling,
            ),
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data", "labels": labels(tm, DATABASE)},
                    "spec": claim_spec,
                }
            ],
        },
    }
    return [statefulset, _service(tm, name, DATABASE, POSTGRES_PORT, "postgres")]


def build_redis(tm: TaskManager) -> list[Manifest]:
    managed = tm.spec.redis.managed
    if managed is None:
        return []
    name = cache_name(tm)
    container = {
        "name": "redis",
        "image": managed.image,
        "args": ["redis-server", f"/etc/redis/{REDIS_CONFIG}"],
        "ports": [{"name": "redis", "containerPort": REDIS_PORT, "protocol": "TCP"}],
        "readinessProbe": {"tcpSocket": {"port": "redis"}, "periodSeconds": 5},
        "livenessProbe": {"tcpSocket": {"port": "redis"}, "periodSeconds": 10},
        "resources": {
            "requests": {"cpu": "50m", "memory": "64Mi"},
            "limits": {"memory": f"{REDIS_MEMORY_LIMIT_MIB}Mi"},
        },
        "securityContext": restricted_security_context(),
        "volumeMounts": [
            {"name": "data", "mountPath": "/data"},
            {"name": "config", "mountPath": "/etc/redis", "readOnly": True},
        ],
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(tm, name, CACHE),
        "spec": {
            "replicas": 1,
            # One Redis at a time: two would split revocations and rate limits between them.
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": selector_labels(tm, CACHE)},
            "template": _pod_template(
                tm,
                CACHE,
                container,
                [{"name": "data", "emptyDir": {}}, _secret_file_volume(tm, "config", REDIS_CONFIG)],
                managed.scheduling,
                # The password is left out: it is generated once and never changes.
                annotations={CONFIG_CHECKSUM_ANNOTATION: checksum(redis_settings())},
            ),
        },
    }
    return [deployment, _service(tm, name, CACHE, REDIS_PORT, "redis")]
