"""The Jobs that create, verify, restore and delete a backup, and where backups are stored.

A Job runs the API's image with `python -m taskmanager_api backup <action>` and the API's own
configuration and secrets (the database URL comes from them, as for `serve`). It needs no
Kubernetes rights: its result is one JSON line, which the container also writes to
/dev/termination-log, where the operator reads it from the pod's status.

Storage is a PersistentVolumeClaim `<name>-backups` (mounted at /backups; the command writes a
dump straight into its place there, so the claim needs room for one more dump and nothing else)
or an S3 bucket (credentials mounted as files, the dump staged in an emptyDir and uploaded).
The claim has no ownerReference: backups outlive their TaskManager.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from taskmanager_api.core.config import TERMINATION_LOG_VARIABLE, backup_env_name
from taskmanager_operator.api.backups import BACKUP_KIND
from taskmanager_operator.api.v1alpha1 import GROUP, VERSION
from taskmanager_operator.builders.api import api_container, pod_security_context, pod_volumes
from taskmanager_operator.builders.common import (
    BACKUP,
    Manifest,
    labels,
)
from taskmanager_operator.builders.identity import api_pod_identity
from taskmanager_operator.builders.scheduling import pod_scheduling
from taskmanager_operator.resource import TaskManager

BackupAction = Literal["create", "verify", "restore", "delete"]

BACKUPS_MOUNT = "/backups"
# Where an S3 backup stages its dump before the upload (in a temporary directory the command
# removes): an emptyDir.
S3_WORK_DIR = "/work"
S3_CREDENTIALS_DIR = "/var/run/secrets/taskmanager-backup-s3"
S3_CA_DIR = "/var/run/secrets/taskmanager-backup-ca"
S3_CA_FILE = "ca.crt"
# Where Kubernetes reads a container's termination message (terminationMessagePath's default).
TERMINATION_LOG = "/dev/termination-log"
# A dump of a large database takes long; a Job that hangs still ends, and the status says so.
ACTIVE_DEADLINE_SECONDS = {"create": 3600, "verify": 3600, "restore": 3600, "delete": 600}
# Kept a day for `kubectl logs`; the backup's status holds the result for good.
JOB_TTL_SECONDS = 86400
# The annotation naming the TaskManagerBackup (or TaskManagerRestore) a Job works for.
BACKUP_ANNOTATION = "taskmanager.dev/backup"
ACTION_LABEL = "taskmanager.dev/backup-action"


# On every TaskManagerBackup the operator makes: `kubectl get tmb -l taskmanager.dev/taskmanager=X`.
TASKMANAGER_LABEL = "taskmanager.dev/taskmanager"


def build_backup_record(
    tm: TaskManager, name: str, backup_type: str, annotations: dict[str, str] | None = None
) -> Manifest:
    """A TaskManagerBackup the operator makes (scheduled, before an upgrade, a restore, or a
    deletion): no ownerReference, so it outlives its TaskManager."""
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": tm.namespace,
        "labels": {TASKMANAGER_LABEL: tm.name},
    }
    if annotations:
        metadata["annotations"] = annotations
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": BACKUP_KIND,
        "metadata": metadata,
        "spec": {"taskManager": tm.name, "type": backup_type},
    }


def backup_claim_name(tm: TaskManager) -> str:
    return f"{tm.name}-backups"


def backup_location(tm: TaskManager, backup_name: str) -> str:
    """Where a backup's dump and manifest go: one directory (or key prefix) per backup."""
    storage = tm.spec.backup.storage
    if storage.s3 is not None:
        prefix = storage.s3.prefix or f"{tm.namespace}/{tm.name}/"
        if not prefix.endswith("/"):
            prefix += "/"
        return f"s3://{storage.s3.bucket}/{prefix}{backup_name}"
    return f"file://{BACKUPS_MOUNT}/{backup_name}"


def backup_job_name(tm: TaskManager, action: BackupAction, subject: str) -> str:
    """One Job per action on a backup; the digest keeps it within a label value's 63
    characters whatever the backup's name (a TaskManager's is at most 40)."""
    digest = hashlib.sha256(subject.encode()).hexdigest()[:10]
    return f"{tm.name}-{action}-{digest}"


def build_backup_claim(tm: TaskManager) -> Manifest | None:
    volume = tm.spec.backup.storage.persistent_volume
    if volume is None:
        return None
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": volume.size}},
    }
    if volume.storage_class_name:
        spec["storageClassName"] = volume.storage_class_name
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": backup_claim_name(tm),
            "namespace": tm.namespace,
            "labels": labels(tm, BACKUP),
        },
        "spec": spec,
    }


def _storage_env_and_volumes(
    tm: TaskManager,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """(env, volumeMounts, volumes) that give the Job its storage."""
    s3 = tm.spec.backup.storage.s3
    if s3 is None:
        mount = {"name": "backups", "mountPath": BACKUPS_MOUNT}
        claim = {"name": "backups", "persistentVolumeClaim": {"claimName": backup_claim_name(tm)}}
        return [], [mount], [claim]
    settings: dict[str, str] = {
        "s3_region": s3.region,
        "s3_path_style": "true" if s3.force_path_style else "false",
        "s3_credentials_dir": S3_CREDENTIALS_DIR,
        "work_dir": S3_WORK_DIR,
    }
    if s3.endpoint:
        settings["s3_endpoint"] = s3.endpoint
    mounts: list[dict[str, Any]] = [
        {"name": "s3-credentials", "mountPath": S3_CREDENTIALS_DIR, "readOnly": True},
        {"name": "work", "mountPath": S3_WORK_DIR},
    ]
    volumes: list[dict[str, Any]] = [
        {"name": "s3-credentials", "secret": {"secretName": s3.credentials_secret_ref.name}},
        {"name": "work", "emptyDir": {}},
    ]
    if s3.ca_secret_ref is not None:
        settings["s3_ca_bundle"] = f"{S3_CA_DIR}/{S3_CA_FILE}"
        mounts.append({"name": "s3-ca", "mountPath": S3_CA_DIR, "readOnly": True})
        items = [{"key": s3.ca_secret_ref.key, "path": S3_CA_FILE}]
        volumes.append(
            {"name": "s3-ca", "secret": {"secretName": s3.ca_secret_ref.name, "items": items}}
        )
    env = [{"name": backup_env_name(field), "value": value} for field, value in settings.items()]
    return env, mounts, volumes


def _arguments(action: BackupAction, location: str, sha256: str | None) -> list[str]:
    if action == "create":
        return ["backup", "create", "--to", location]
    if action == "delete":
        return ["backup", "delete", location]
    checked = ["--sha256", sha256] if sha256 else []
    return ["backup", action, "--from", location, *checked]


def build_backup_job(
    tm: TaskManager,
    *,
    action: BackupAction,
    subject: str,
    location: str,
    image: str,
    owner: dict[str, Any],
    sha256: str | None = None,
) -> Manifest:
    """The Job that runs `backup <action>` on `location` for `subject` (a TaskManagerBackup's or
    TaskManagerRestore's name), owned by that object: deleting it takes its Jobs along. A restore
    with `sha256` refuses any other backup found there."""
    container = api_container(tm, image, _arguments(action, location, sha256))
    env, mounts, volumes = _storage_env_and_volumes(tm)
    container["env"] = [{"name": TERMINATION_LOG_VARIABLE, "value": TERMINATION_LOG}, *env]
    container["volumeMounts"] = [*container["volumeMounts"], *mounts]
    job_labels = labels(tm, BACKUP) | {ACTION_LABEL: action}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": backup_job_name(tm, action, subject),
            "namespace": tm.namespace,
            "labels": job_labels,
            "annotations": {BACKUP_ANNOTATION: subject},
            "ownerReferences": [owner],
        },
        "spec": {
            # A failed backup is a result, reported as it is; the next slot tries again.
            "backoffLimit": 0,
            "activeDeadlineSeconds": ACTIVE_DEADLINE_SECONDS[action],
            "ttlSecondsAfterFinished": JOB_TTL_SECONDS,
            "template": {
                "metadata": {"labels": job_labels},
                "spec": {
                    "restartPolicy": "Never",
                    **api_pod_identity(tm),
                    "enableServiceLinks": False,
                    "securityContext": pod_security_context(),
                    "containers": [container],
                    "volumes": [*pod_volumes(tm), *volumes],
                    **pod_scheduling(tm),
                },
            },
        },
    }
