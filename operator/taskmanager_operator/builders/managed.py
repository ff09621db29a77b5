"""PostgreSQL and Redis run by the operator when the TaskManager asks for managed ones."""

from __future__ import annotations

from typing import Any

from taskmanager_operator.api.v1alpha1 import Scheduling
from taskmanager_operator.builders.common import (
    CACHE,
    DATABASE,
    POSTGRES_PORT,
    REDIS_PORT,
    Manifest,
    cache_name,
    checksum,
    container_resources,
    database_headless_name,
    database_name,
    generated_secret_name,
    labels,
    metadata,
    restricted_pod_security_context,
    restricted_security_context,
    selector_labels,
)
from taskmanager_operator.builders.identity import image_pull_secrets
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
REDIS_CONFIG_DIR = "/etc/redis"


def redis_ping(
    config_file: str = f"{REDIS_CONFIG_DIR}/{REDIS_CONFIG}", port: int = REDIS_PORT
) -> str:
    """Redis's readiness check, a shell command: an authenticated PING answered with PONG.

    redis-cli takes the password from REDISCLI_AUTH, read from the mounted config, so it is
    neither in the pod spec nor on a command line that `ps` shows."""
    return (
        f"REDISCLI_AUTH=\"$(sed -n 's/^requirepass //p' {config_file})\" "
        f"redis-cli -p {port} ping | grep -qx PONG"
    )


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
            **image_pull_secrets(tm),
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


def _service(
    tm: TaskManager,
    name: str,
    component: str,
    port: int,
    port_name: str,
    *,
    headless: bool = False,
) -> Manifest:
    spec: dict[str, Any] = {
        "type": "ClusterIP",
        "selector": selector_labels(tm, component),
        "ports": [{"name": port_name, "port": port, "targetPort": port_name, "protocol": "TCP"}],
    }
    if headless:
        # A StatefulSet's governing Service gives its pod a stable DNS name, published before the
        # pod is ready (a database that is still starting is worth finding by name).
        spec |= {"clusterIP": "None", "publishNotReadyAddresses": True}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(tm, name, component),
        "spec": spec,
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
        "resources": container_resources(managed.resources),
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
            "serviceName": database_headless_name(tm),
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
    # The ClusterIP Service is the one the API connects to (and its clusterIP cannot change).
    return [
        statefulset,
        _service(tm, name, DATABASE, POSTGRES_PORT, "postgres"),
        _service(
            tm, database_headless_name(tm), DATABASE, POSTGRES_PORT, "postgres", headless=True
        ),
    ]


def build_redis(tm: TaskManager) -> list[Manifest]:
    managed = tm.spec.redis.managed
    if managed is None:
        return []
    name = cache_name(tm)
    container = {
        "name": "redis",
        "image": managed.image,
        "args": ["redis-server", f"{REDIS_CONFIG_DIR}/{REDIS_CONFIG}"],
        "ports": [{"name": "redis", "containerPort": REDIS_PORT, "protocol": "TCP"}],
        # Ready once Redis answers commands (not while it loads or refuses them); alive as long
        # as it accepts connections, so a slow command never gets it restarted.
        "readinessProbe": {
            "exec": {"command": ["sh", "-c", redis_ping()]},
            "periodSeconds": 5,
            "timeoutSeconds": 2,
        },
        "livenessProbe": {"tcpSocket": {"port": "redis"}, "periodSeconds": 10},
        "resources": container_resources(managed.resources),
        "securityContext": restricted_security_context(),
        "volumeMounts": [
            {"name": "data", "mountPath": "/data"},
            {"name": "config", "mountPath": REDIS_CONFIG_DIR, "readOnly": True},
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
                annotations={CONFIG_CHECKSUM_ANNOTATION: checksum(redis_settings(managed))},
            ),
        },
    }
    return [deployment, _service(tm, name, CACHE, REDIS_PORT, "redis")]
