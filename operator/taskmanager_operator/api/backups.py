"""TaskManagerBackup and TaskManagerRestore: one backup of a TaskManager's database, and one
restore of a backup into its TaskManager in place. Same group and version as TaskManager; their
CRDs are generated from these models (api/crd.py).

A backup has no ownerReference: it outlives its TaskManager (a final backup is taken for a
TaskManager being deleted). Deleting a TaskManagerBackup deletes its stored data. Both specs are
immutable: a backup or a restore is a record of what happened, not a desired state to converge
to.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from taskmanager_operator.api.v1alpha1 import (
    DNS_LABEL_PATTERN,
    DNS_SUBDOMAIN_PATTERN,
    TTL_PATTERN,
    Condition,
    Model,
    cel,
    cel_rules,
)

BACKUP_KIND = "TaskManagerBackup"
BACKUP_PLURAL = "taskmanagerbackups"
BACKUP_SINGULAR = "taskmanagerbackup"
BACKUP_SHORT_NAMES = ["tmb"]
RESTORE_KIND = "TaskManagerRestore"
RESTORE_PLURAL = "taskmanagerrestores"
RESTORE_SINGULAR = "taskmanagerrestore"
RESTORE_SHORT_NAMES = ["tmr"]

SHA256_PATTERN = r"^[0-9a-f]{64}$"
LOCATION_PATTERN = r"^(file:///|s3://)[^\s]+$"

BackupType = Literal["Manual", "Scheduled", "PreUpgrade", "PreRestore", "Final"]
BackupPhase = Literal["Pending", "Running", "Completed", "Failed"]
RestorePhase = Literal[
    "Pending",
    "Validating",
    "BackingUp",
    "Quiescing",
    "Restoring",
    "Resuming",
    "Completed",
    "Failed",
]

IMMUTABLE_SPEC = cel("self == oldSelf", "spec is immutable: create a new object instead")


class TaskManagerBackupSpec(Model):
    """Which TaskManager to back up, and why; immutable."""

    model_config = cel_rules(IMMUTABLE_SPEC)

    task_manager: str = Field(pattern=DNS_LABEL_PATTERN, max_length=63)
    """The TaskManager, in the same namespace, whose database is backed up."""
    type: BackupType = "Manual"
    """Why it was taken: Manual (by a user), Scheduled (spec.backup.schedule), PreUpgrade (before
    a migration), PreRestore (before a restore overwrote the data) or Final (before the
    TaskManager was deleted). Only Scheduled backups are deleted by the retention."""
    ttl: str | None = Field(default=None, pattern=TTL_PATTERN, max_length=10)
    """Delete the backup and its data this long after it completed (`30d`); kept until deleted
    when unset (Scheduled ones: until the retention deletes them)."""


class Verification(Model):
    result: Literal["Passed", "Failed"]
    """Whether a restore into a scratch database matched what the backup recorded."""
    time: str
    """When it was verified."""
    message: str = ""
    """What did not match, when it failed."""
    requested: str | None = None
    """The request it answers (the taskmanager.dev/verify annotation's value)."""


class TaskManagerBackupStatus(Model):
    """What the backup Job did, written by the operator."""

    phase: BackupPhase | None = None
    """Pending, Running, Completed or Failed."""
    start_time: str | None = None
    """When the backup Job started."""
    completion_time: str | None = None
    """When it completed or failed."""
    location: str | None = None
    """Where the data is (`file:///backups/...` on the PersistentVolumeClaim, `s3://...`)."""
    size_bytes: int | None = None
    """Size of the dump."""
    size: str | None = None
    """Size of the dump, in binary units (`12.5Mi`)."""
    sha256: str | None = Field(default=None, pattern=SHA256_PATTERN)
    """Checksum of the dump, checked before every restore."""
    app_version: str | None = None
    """Version of the API whose database it is."""
    schema_revision: str | None = None
    """Alembic revision of the schema; a restore migrates from it to the running version."""
    server_version: str | None = None
    """PostgreSQL server version it was taken from."""
    row_counts: dict[str, int] | None = None
    """Rows of every table, read in the same snapshot as the dump."""
    verification: Verification | None = None
    """The last restore test of this backup."""
    message: str | None = None
    """What it waits for, while Pending (the backup Job of another, one runs at a time)."""
    error: str | None = None
    """Why it failed: a CamelCase reason, then the message."""
    conditions: list[Condition] = Field(default_factory=list)
    """Completed and Verified, with reasons."""


class TaskManagerBackupRef(Model):
    name: str = Field(pattern=DNS_SUBDOMAIN_PATTERN, max_length=253)
    """A TaskManagerBackup in the restore's namespace."""


class BackupSource(Model):
    location: str = Field(pattern=LOCATION_PATTERN, max_length=1024)
    """Where the backup's data is, for a backup whose object is gone (as its status said)."""
    sha256: str = Field(pattern=SHA256_PATTERN)
    """The checksum the dump must have: a restore of anything else is refused."""


class TaskManagerRestoreSpec(Model):
    """Which backup to restore into which TaskManager; immutable."""

    model_config = cel_rules(
        IMMUTABLE_SPEC,
        cel(
            "has(self.backup) != has(self.source)",
            "a restore takes exactly one of backup (a TaskManagerBackup's name) or source "
            "(location and sha256)",
        ),
    )

    task_manager: str = Field(pattern=DNS_LABEL_PATTERN, max_length=63)
    """The TaskManager, in the same namespace, whose database is replaced by the backup's."""
    backup: TaskManagerBackupRef | None = None
    """The backup to restore, by its TaskManagerBackup."""
    source: BackupSource | None = None
    """The backup to restore, by where its data is, when its object is gone."""


class TaskManagerRestoreStatus(Model):
    """The restore's progress, written by the operator."""

    phase: RestorePhase | None = None
    """The step the restore is at: Validating, BackingUp (the PreRestore backup), Quiescing
    (the API at 0 pods), Restoring (the restore Job replaces the data and migrates it to the
    app's schema), Resuming (the API back to its replicas), then Completed or Failed."""
    replicas: int | None = Field(default=None, ge=0)
    """The API's replica count the restore brings back (the TaskManager's spec.replicas)."""
    location: str | None = None
    """Where the restored backup's data is."""
    sha256: str | None = Field(default=None, pattern=SHA256_PATTERN)
    """The checksum the restored dump was checked against."""
    pre_restore_backup: str | None = None
    """The TaskManagerBackup taken of the data the restore replaced."""
    start_time: str | None = None
    """When the restore started."""
    completion_time: str | None = None
    """When it completed or failed."""
    duration_seconds: float | None = None
    """From start to the API Ready again: the measured recovery time."""
    error: str | None = None
    """Why it failed; the database is then as it was before the restore."""
    conditions: list[Condition] = Field(default_factory=list)
    """Completed, with its reason."""
