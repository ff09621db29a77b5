"""Names, labels and metadata every child shares."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from taskmanager_operator.api.crd import API_SUFFIX
from taskmanager_operator.api.v1alpha1 import Resources, to_manifest
from taskmanager_operator.resource import TaskManager

MANAGED_BY = "taskmanager-operator"
PART_OF = "taskmanager"
APP_NAME = "taskmanager-api"

# Components, as they appear in app.kubernetes.io/component.
API = "api"
DATABASE = "database"
CACHE = "cache"
MIGRATION = "migration"
# The backup, verification, restore and deletion Jobs of backups.
BACKUP = "backup"

API_PORT = 8000
API_SERVICE_PORT = 80
POSTGRES_PORT = 5432
REDIS_PORT = 6379
# Where the API reads its secrets: one file per setting (TASKMANAGER_SECRETS_DIR).
SECRETS_DIR = "/var/run/secrets/taskmanager"

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Capabilities:
    """What the cluster serves that the shape of a child depends on, read before building."""

    # The metrics the custom metrics API serves for pods (`pods/<metric>` resources there).
    pod_metrics: frozenset[str] = frozenset()


def api_name(tm: TaskManager) -> str:
    return f"{tm.name}{API_SUFFIX}"


def config_name(tm: TaskManager) -> str:
    return f"{tm.name}-config"


def generated_secret_name(tm: TaskManager) -> str:
    """The Secret the operator generates (JWT key, managed database and Redis credentials)."""
    return f"{tm.name}-secrets"


def database_name(tm: TaskManager) -> str:
    return f"{tm.name}-postgres"


def database_headless_name(tm: TaskManager) -> str:
    """The StatefulSet's governing Service: headless, beside the ClusterIP one the API uses."""
    return f"{database_name(tm)}-headless"


def cache_name(tm: TaskManager) -> str:
    return f"{tm.name}-redis"


def image(tm: TaskManager, default_repository: str) -> str:
    return tm.spec.image or f"{default_repository}:{tm.spec.version}"


def selector_labels(tm: TaskManager, component: str) -> dict[str, str]:
    """The labels a selector matches on: stable for the life of the TaskManager."""
    return {
        "app.kubernetes.io/name": APP_NAME,
        "app.kubernetes.io/instance": tm.name,
        "app.kubernetes.io/component": component,
    }


def labels(tm: TaskManager, component: str) -> dict[str, str]:
    return selector_labels(tm, component) | {
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": MANAGED_BY,
        "app.kubernetes.io/version": tm.spec.version,
    }


def owner_reference(tm: TaskManager) -> dict[str, Any]:
    return {
        "apiVersion": tm.api_version,
        "kind": tm.kind,
        "name": tm.name,
        "uid": tm.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def metadata(tm: TaskManager, name: str, component: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": tm.namespace,
        "labels": labels(tm, component),
        "ownerReferences": [owner_reference(tm)],
    }


def checksum(*parts: Any) -> str:
    """A stable digest of JSON-able data, for annotations that roll pods when inputs change."""
    encoded = json.dumps(parts, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()


def container_resources(resources: Resources) -> dict[str, Any]:
    """A container's resources as the spec sets them (`ephemeral-storage` spelled as in a pod)."""
    return to_manifest(resources)


def restricted_pod_security_context(uid: int) -> dict[str, Any]:
    """Pod security context for the restricted standard, running as `uid` (and its group)."""
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def restricted_security_context() -> dict[str, Any]:
    """Container security context that meets the Pod Security Standard "restricted"."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
