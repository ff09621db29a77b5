"""One TaskManagerRestore, step by step, into its TaskManager in place.

Validating: the backup exists and completed (or the location and sha256 are given), the
TaskManager exists, takes backups and is not paused, and no other restore of it is under way.
BackingUp: a PreRestore backup of the data about to be replaced. Quiescing: the TaskManager's
reconcile holds the API at 0 pods while a restore is in these middle steps (QUIESCED), and the
restore waits until none is left. Restoring: the restore Job (the backup command checks the
sha256 and the revision, replaces the data in one transaction and migrates). Resuming: the API
back to its replicas, Ready. Completed, with durationSeconds from start to Ready again: the
measured recovery time. Any failure before Restoring touched nothing; a failed restore rolled
back, so the database is as it was; either way the API comes back and the status says why.

Each pass reads the current state and moves at most one step; the Jobs' and backups' names are
deterministic, so a repeated pass (or a second replica) makes nothing twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from taskmanager_operator import metrics
from taskmanager_operator import status as st
from taskmanager_operator.api.backups import (
    BACKUP_PLURAL,
    RESTORE_PLURAL,
)
from taskmanager_operator.backups.lifecycle import (
    POLL_SECONDS,
    TERMINAL,
    BackupApi,
    BackupLifecycle,
    job_result,
    taskmanager_key,
)
from taskmanager_operator.builders.backup import backup_job_name, build_backup_record
from taskmanager_operator.builders.common import API, api_name, selector_labels
from taskmanager_operator.k8s import ApplyRefusedError, Object
from taskmanager_operator.resource import TaskManager

# The steps during which the API is held at 0 pods.
QUIESCED = frozenset({"Quiescing", "Restoring"})


class RestoreApi(BackupApi, Protocol):
    def list_ours(self, plural: str, namespace: str) -> list[Object]: ...

    def create_ours(self, plural: str, namespace: str, body: Mapping[str, Any]) -> bool: ...


def pre_restore_backup_name(restore_name: str) -> str:
    return f"{restore_name}-before"[:253]


def quiescing_restore(restores: list[Object], taskmanager: str) -> Object | None:
    """The restore of this TaskManager that holds its API at 0 pods, if one does."""
    for body in restores:
        if (body.get("spec") or {}).get("taskManager") == taskmanager and (
            body.get("status") or {}
        ).get("phase") in QUIESCED:
            return body
    return None


class RestoreLifecycle:
    def __init__(self, kube: RestoreApi, backups: BackupLifecycle) -> None:
        self.kube = kube
        self.backups = backups

    def reconcile(self, body: Mapping[str, Any]) -> float | None:
        """One step of a restore; seconds until the next look, None when it is over."""
        phase = (body.get("status") or {}).get("phase") or "Pending"
        if phase in TERMINAL:
            return None
        namespace = body["metadata"]["namespace"]
        tm_body = self.kube.get_taskmanager(namespace, body["spec"]["taskManager"])
        if tm_body is None:
            return self._fail(body, "TaskManagerNotFound", "its TaskManager does not exist")
        tm = TaskManager.from_body(tm_body)
        step = {
            "Pending": self._validate,
            "Validating": self._validate,
            "BackingUp": self._back_up,
            "Quiescing": self._quiesce,
            "Restoring": self._restore,
            "Resuming": self._resume,
        }[phase]
        return step(body, tm, tm_body)

    # -- the steps -----------------------------------------------------------------------------

    def _validate(self, body: Mapping[str, Any], tm: TaskManager, _: Object) -> float | None:
        spec = body["spec"]
        refusal = self._refusal(body, tm)
        source: Mapping[str, str] | None = spec.get("source")
        if refusal is None and source is None:
            source, refusal = self._source_of(tm, spec["backup"]["name"])
        if refusal is not None or source is None:
            reason, message = refusal or ("BackupNotFound", "no backup to restore")
            return self._fail(body, reason, message)
        self._set(
            body,
            {
                "phase": "BackingUp",
                "startTime": st.now(),
                "location": source["location"],
                "sha256": source["sha256"],
                "preRestoreBackup": pre_restore_backup_name(body["metadata"]["name"]),
                "replicas": tm.spec.replicas,
            },
        )
        return 0.0

    def _refusal(self, body: Mapping[str, Any], tm: TaskManager) -> tuple[str, str] | None:
        """Why this TaskManager cannot be restored into now, as (reason, message)."""
        if tm.spec.paused:
            return "TaskManagerPaused", f"TaskManager {tm.name} is paused"
        if not tm.spec.backup.enabled:
            return "BackupsDisabled", f"TaskManager {tm.name} has spec.backup.enabled false"
        for other in self.kube.list_ours(RESTORE_PLURAL, tm.namespace):
            if (
                other["metadata"]["name"] != body["metadata"]["name"]
                and (other.get("spec") or {}).get("taskManager") == tm.name
                and (other.get("status") or {}).get("phase") not in (*TERMINAL, None, "Pending")
            ):
                return (
                    "RestoreInProgress",
                    f"restore {other['metadata']['name']} of {tm.name} is under way",
                )
        return None

    def _source_of(
        self, tm: TaskManager, name: str
    ) -> tuple[dict[str, str] | None, tuple[str, str] | None]:
        """The named backup's location and sha256, or why it cannot be restored: missing,
        another TaskManager's, or not Completed."""
        backup = self.kube.get_ours(BACKUP_PLURAL, tm.namespace, name)
        status = (backup or {}).get("status") or {}
        if backup is None:
            return None, ("BackupNotFound", f"backup {name} does not exist")
        if (backup.get("spec") or {}).get("taskManager") != tm.name:
            return None, ("BackupOfAnother", f"backup {name} is not of TaskManager {tm.name}")
        if status.get("phase") != "Completed":
            phase = status.get("phase") or "Pending"
            return None, ("BackupNotCompleted", f"backup {name} is {phase}, not Completed")
        return {"location": status["location"], "sha256": status["sha256"]}, None

    def _back_up(self, body: Mapping[str, Any], tm: TaskManager, _: Object) -> float | None:
        name = body["status"]["preRestoreBackup"]
        backup = self.kube.get_ours(BACKUP_PLURAL, tm.namespace, name)
        if backup is None:
            record = build_backup_record(tm, name, "PreRestore")
            self.kube.create_ours(BACKUP_PLURAL, tm.namespace, record)
            return POLL_SECONDS
        phase = (backup.get("status") or {}).get("phase")
        if phase == "Failed":
            return self._fail(
                body,
                "PreRestoreBackupFailed",
                f"the backup of the data before the restore failed, so nothing was touched: "
                f"{backup['status'].get('error')}",
            )
        if phase != "Completed":
            return POLL_SECONDS
        self._set(body, {"phase": "Quiescing"})
        return 0.0

    def _quiesce(self, body: Mapping[str, Any], tm: TaskManager, _: Object) -> float | None:
        deployment = self.kube.get("apps/v1", "Deployment", tm.namespace, api_name(tm)) or {}
        left = (deployment.get("status") or {}).get("replicas") or 0
        if left:
            return POLL_SECONDS  # the TaskManager's reconcile scales the API to 0
        if self.kube.list_pods(tm.namespace, selector_labels(tm, API)):
            return POLL_SECONDS  # terminating pods may still hold connections
        self._set(body, {"phase": "Restoring"})
        return 0.0

    def _restore(self, body: Mapping[str, Any], tm: TaskManager, _: Object) -> float | None:
        name = body["metadata"]["name"]
        job_name = backup_job_name(tm, "restore", name)
        job = self.kube.get("batch/v1", "Job", tm.namespace, job_name)
        if job is None:
            try:
                self.kube.apply(self.backups.job(tm, body, "restore"))
            except ApplyRefusedError as error:
                return self._fail(body, "JobRefused", str(error))
            self.backups.event(
                body, "Normal", "Restoring", f"Restoring {body['status']['location']}"
            )
            return POLL_SECONDS
        result = job_result(job, self.kube.list_pods(tm.namespace, {"job-name": job_name}))
        if result is None:
            return POLL_SECONDS
        if not result.ok:
            reason = str(result.line.get("reason") or result.reason)
            message = str(result.line.get("message") or result.message)
            return self._fail(body, reason, message)
        self._set(body, {"phase": "Resuming"})
        return 0.0

    def _resume(self, body: Mapping[str, Any], tm: TaskManager, tm_body: Object) -> float | None:
        status = tm_body.get("status") or {}
        if (
            status.get("phase") != "Ready"
            or (status.get("observedGeneration") or 0) < tm.generation
        ):
            return POLL_SECONDS
        started = st.parse_timestamp(body["status"]["startTime"])
        duration = round((datetime.now(UTC) - started).total_seconds(), 1)
        metrics.RESTORES.labels(*taskmanager_key(body), "completed").inc()
        self._set(
            body,
            {"phase": "Completed", "completionTime": st.now(), "durationSeconds": duration},
        )
        self.backups.event(
            body,
            "Normal",
            "Completed",
            f"Restored {body['status']['location']} into {tm.name}; the API was back in "
            f"{duration} s",
        )
        return None

    # -- status ------------------------------------------------------------------------------

    def _fail(self, body: Mapping[str, Any], reason: str, message: str) -> float | None:
        """The restore failed: the status and a Warning say why; nothing more to do."""
        metrics.RESTORES.labels(*taskmanager_key(body), "failed").inc()
        self._set(
            body,
            {"phase": "Failed", "completionTime": st.now(), "error": f"{reason}: {message}"},
        )
        self.backups.event(body, "Warning", reason, message)
        return None

    def _set(self, body: Mapping[str, Any], status: Mapping[str, Any]) -> None:
        metadata = body["metadata"]
        self.kube.patch_ours_status(RESTORE_PLURAL, metadata["namespace"], metadata["name"], status)
