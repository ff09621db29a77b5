"""Who the pods run as and what they pull their images with: the API's ServiceAccount (unless
spec.serviceAccountName names the user's) and spec.imagePullSecrets."""

from __future__ import annotations

from typing import Any

from taskmanager_operator.api.v1alpha1 import to_manifest
from taskmanager_operator.builders.common import API, Manifest, api_name, metadata
from taskmanager_operator.resource import TaskManager


def service_account_name(tm: TaskManager) -> str:
    return tm.spec.service_account_name or api_name(tm)


def build_service_account(tm: TaskManager) -> Manifest | None:
    """A ServiceAccount of the API's own, so no RoleBinding to the namespace's `default` reaches
    the API pods; None when spec.serviceAccountName names the user's (ours is then deleted).

    The API never calls the Kubernetes API, so no token is mounted, here and in the pods."""
    if tm.spec.service_account_name is not None:
        return None
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": metadata(tm, api_name(tm), API),
        "automountServiceAccountToken": False,
    }


def image_pull_secrets(tm: TaskManager) -> dict[str, Any]:
    """imagePullSecrets for a pod spec; left out when there are none, so such a TaskManager
    renders the pods it did before the field existed."""
    secrets = [to_manifest(secret) for secret in tm.spec.image_pull_secrets]
    return {"imagePullSecrets": secrets} if secrets else {}


def api_pod_identity(tm: TaskManager) -> dict[str, Any]:
    """The ServiceAccount and registry credentials of a pod that runs the API's image: the
    Deployment's and the migration Job's."""
    return {
        "serviceAccountName": service_account_name(tm),
        "automountServiceAccountToken": False,
        **image_pull_secrets(tm),
    }
