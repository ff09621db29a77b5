"""The Job that upgrades the database schema before the API moves to a new image."""

from __future__ import annotations

import hashlib

from taskmanager_operator.builders.api import api_container, pod_security_context, pod_volumes
from taskmanager_operator.builders.common import MIGRATION, Manifest, labels, metadata
from taskmanager_operator.builders.identity import api_pod_identity
from taskmanager_operator.builders.scheduling import pod_scheduling
from taskmanager_operator.resource import TaskManager

MIGRATION_IMAGE_ANNOTATION = "taskmanager.dev/image"


def migration_job_name(tm: TaskManager, image: str) -> str:
    """One Job per image: a new version migrates once, and a finished Job records that it did."""
    digest = hashlib.sha256(image.encode()).hexdigest()[:10]
    return f"{tm.name}-migrate-{digest}"


def build_migration_job(tm: TaskManager, *, image: str) -> Manifest:
    container = api_container(tm, image, ["migrate", "upgrade"])
    job_metadata = metadata(tm, migration_job_name(tm, image), MIGRATION)
    job_metadata["annotations"] = {MIGRATION_IMAGE_ANNOTATION: image}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": job_metadata,
        "spec": {
            # Two retries ride out a database that is still starting; then the status says why.
            "backoffLimit": 2,
            "activeDeadlineSeconds": 600,
            # Kept a day for `kubectl logs`; the operator recreates it only for a new image.
            "ttlSecondsAfterFinished": 86400,
            "template": {
                "metadata": {"labels": labels(tm, MIGRATION)},
                "spec": {
                    "restartPolicy": "Never",
                    **api_pod_identity(tm),
                    "enableServiceLinks": False,
                    "securityContext": pod_security_context(),
                    "containers": [container],
                    "volumes": pod_volumes(tm),
                    **pod_scheduling(tm),
                },
            },
        },
    }
