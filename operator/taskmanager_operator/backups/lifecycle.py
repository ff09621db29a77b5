"""One TaskManagerBackup from Pending to Completed or Failed, and its data's deletion.

Level-based like the TaskManager's reconcile: each pass reads the backup, its TaskManager, its
Job and the Job's pod, and writes what it sees. The Job's name is deterministic, so two passes
(or two replicas) never start two dumps. Only one backup Job runs per TaskManager at a time:
another waits, Pending, with a message naming the one ahead of it.

The result comes from the Job's pod: the backup command writes its one JSON line to the
termination log, which the kubelet puts in the container's terminated state. A Job that failed
without a line (killed, out of memory, past its deadline) is Failed with what Kubernetes says.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from kubernetes.client.exceptions import ApiException

from taskmanager_operator import metrics
from taskmanager_operator import status as st
from taskmanager_operator.api.backups import BACKUP_KIND, BACKUP_PLURAL
from taskmanager_operator.api.v1alpha1 import GROUP, VERSION
from taskmanager_operator.builders.backup import (
    BackupAction,
    backup_job_name,
    backup_location,
    build_backup_claim,
    build_backup_job,
)
from taskmanager_operator.builders.common import BACKUP, image, selector_labels
from taskmanager_operator.k8s import Applied, ApplyRefusedError, Object, api_message
from taskmanager_operator.resource import TaskManager

logger = logging.getLogger(__name__)

TERMINAL = frozenset({"Completed", "Failed"})
# Set on a completed backup (to any new value, such as the time) to have it verified.
VERIFY_ANNOTATION = "taskmanager.dev/verify"
# How often a running backup is looked at when no event comes (a resync, not the main path).
POLL_SECONDS = 10.0


class BackupApi(Protocol):
    """What a backup's lifecycle needs from the API server (k8s.Kube has it)."""

    def get_taskmanager(self, namespace: str, name: str) -> Object | None: ...

    def get_ours(self, plural: str, namespace: str, name: str) -> Object | None: ...

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Object | None: ...

    def apply(self, manifest: Mapping[str, Any]) -> Applied: ...

    def list_pods(self, namespace: str, labels: Mapping[str, str]) -> list[Object]: ...

    def patch_ours_status(
        self, plural: str, namespace: str, name: str, status: Mapping[str, Any]
    ) -> None: ...

    def post_event(
        self, involved: Mapping[str, str], event_type: str, reason: str, message: str
    ) -> None: ...


@dataclass(frozen=True)
class JobResult:
    """What a finished backup Job said: its JSON line, or Kubernetes' reason when it has none."""

    ok: bool
    line: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    message: str = ""


def binary_size(size: int) -> str:
    """Bytes as `kubectl get` reads well: 12.5Mi, 812Ki, 3.1Gi."""
    value = float(size)
    for unit in ("", "Ki", "Mi", "Gi", "Ti"):
        if value < 1024 or unit == "Ti":
            return f"{value:.0f}{unit}" if unit == "" else f"{value:.1f}{unit}"
        value /= 1024
    raise AssertionError("unreachable")


def owner_of(body: Mapping[str, Any]) -> dict[str, Any]:
    metadata = body["metadata"]
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": body.get("kind", BACKUP_KIND),
        "name": metadata["name"],
        "uid": metadata["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def involved(body: Mapping[str, Any]) -> dict[str, str]:
    metadata = body["metadata"]
    return {
        "kind": str(body.get("kind", BACKUP_KIND)),
        "namespace": metadata["namespace"],
        "name": metadata["name"],
        "uid": metadata["uid"],
    }


def taskmanager_key(body: Mapping[str, Any]) -> tuple[str, str]:
    """(namespace, TaskManager) of a backup or a restore, as the operator's metrics label it."""
    return body["metadata"]["namespace"], (body.get("spec") or {}).get("taskManager", "")


def verification_pending(body: Mapping[str, Any]) -> str | None:
    """The verification a completed backup was asked for and has not answered yet."""
    requested = ((body.get("metadata") or {}).get("annotations") or {}).get(VERIFY_ANNOTATION)
    status = body.get("status") or {}
    answered = (status.get("verification") or {}).get("requested")
    if requested and status.get("phase") == "Completed" and requested != answered:
        return str(requested)
    return None


def job_result(job: Object, pods: list[Object]) -> JobResult | None:
    """None while the Job runs; its result once it has finished either way."""
    conditions = {c.get("type"): c for c in (job.get("status") or {}).get("conditions") or []}
    finished = next(
        (
            conditions[kind]
            for kind in ("Complete", "Failed")
            if (conditions.get(kind) or {}).get("status") == "True"
        ),
        None,
    )
    if finished is None:
        return None
    for pod in pods:
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            terminated = (status.get("state") or {}).get("terminated") or {}
            line = _result_line(terminated.get("message") or "")
            if line is not None:
                return JobResult(ok=bool(line.get("ok")), line=line)
    # No line: killed, out of memory, past its deadline, or not our command at all.
    return JobResult(
        ok=False,
        reason=str(finished.get("reason") or "NoResult"),
        message=str(
            finished.get("message")
            or f"the Job ended ({finished.get('type')}) without the backup command's result line"
        ),
    )


def _result_line(message: str) -> dict[str, Any] | None:
    try:
        line = json.loads(message.strip().splitlines()[-1]) if message.strip() else None
    except ValueError:
        return None
    return line if isinstance(line, dict) else None


class BackupLifecycle:
    def __init__(self, kube: BackupApi, default_repository: str) -> None:
        self.kube = kube
        self.default_repository = default_repository

    def reconcile(self, body: Mapping[str, Any]) -> float | None:
        """One pass over a TaskManagerBackup; seconds until the next look, None when done."""
        if (body.get("status") or {}).get("phase") in TERMINAL:
            return self._verify(body) if verification_pending(body) else None
        tm = self._taskmanager_of(body)
        if tm is None:
            return None
        job_name = backup_job_name(tm, "create", body["metadata"]["name"])
        job = self.kube.get("batch/v1", "Job", tm.namespace, job_name)
        if job is None:
            ahead = self._running_job(tm, exclude=job_name)
            if ahead is None:
                return self._start(body, tm)
            self._set(body, {"phase": "Pending", "message": f"waiting for {ahead}"})
            return POLL_SECONDS
        result = job_result(job, self.kube.list_pods(tm.namespace, {"job-name": job_name}))
        if result is None:
            return POLL_SECONDS
        if result.ok:
            self._complete(body, result.line)
        else:
            reason = str(result.line.get("reason") or result.reason)
            self._fail(body, reason, str(result.line.get("message") or result.message))
        return None

    def _taskmanager_of(self, body: Mapping[str, Any]) -> TaskManager | None:
        """The backup's TaskManager, when it exists and takes backups; else the backup fails."""
        namespace = body["metadata"]["namespace"]
        wanted = (body.get("spec") or {}).get("taskManager", "")
        tm_body = self.kube.get_taskmanager(namespace, wanted)
        if tm_body is None:
            self._fail(
                body, "TaskManagerNotFound", f"TaskManager {wanted} does not exist in {namespace}"
            )
            return None
        tm = TaskManager.from_body(tm_body)
        if not tm.spec.backup.enabled:
            self._fail(
                body,
                "BackupsDisabled",
                f"TaskManager {tm.name} has spec.backup.enabled false: set it (with a storage) "
                "to take backups",
            )
            return None
        return tm

    def _verify(self, body: Mapping[str, Any]) -> float | None:
        """A completed backup asked to be verified (the annotation VERIFY_ANNOTATION, set by the
        TaskManager's verification schedule or by a user): restore it into a scratch database
        and compare; the answer goes to status.verification."""
        requested = verification_pending(body)
        namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
        tm_body = self.kube.get_taskmanager(*taskmanager_key(body))
        if tm_body is None or requested is None:
            return None  # nothing to verify it with: its TaskManager is gone
        tm = TaskManager.from_body(tm_body)
        # One Job per request: a backup verified again gets a new one.
        subject = f"{name}@{requested}"
        job_name = backup_job_name(tm, "verify", subject)
        job = self.kube.get("batch/v1", "Job", namespace, job_name)
        if job is None:
            if self._running_job(tm, exclude=job_name) is None:
                self.kube.apply(self.job(tm, body, "verify", subject=subject))
            return POLL_SECONDS
        result = job_result(job, self.kube.list_pods(namespace, {"job-name": job_name}))
        if result is None:
            return POLL_SECONDS
        message = "" if result.ok else str(result.line.get("message") or result.message)
        verification = {
            "result": "Passed" if result.ok else "Failed",
            "time": st.now(),
            "message": message,
            "requested": requested,
        }
        self._set(body, {"verification": verification})
        if result.ok:
            self._event(involved(body), "Normal", "Verified", f"Backup {name} restores as recorded")
        else:
            self._event(involved(body), "Warning", "VerificationFailed", message)
        return None

    def _running_job(self, tm: TaskManager, *, exclude: str) -> str | None:
        """Another backup Job of this TaskManager that has not finished (one at a time)."""
        for pod in self.kube.list_pods(tm.namespace, selector_labels(tm, BACKUP)):
            job = (pod.get("metadata") or {}).get("labels", {}).get("job-name")
            phase = (pod.get("status") or {}).get("phase")
            if job and job != exclude and phase in {"Pending", "Running"}:
                return f"Job {job}"
        return None

    def _start(self, body: Mapping[str, Any], tm: TaskManager) -> float:
        name = body["metadata"]["name"]
        try:
            claim = build_backup_claim(tm)
            if claim is not None:
                self.kube.apply(claim)
            job = self.job(tm, body, "create")
            self.kube.apply(job)
        except ApplyRefusedError as error:
            self._fail(body, "JobRefused", str(error))
            return POLL_SECONDS
        location = backup_location(tm, name)
        self._set(
            body,
            {"phase": "Running", "startTime": st.now(), "location": location, "message": None},
        )
        self._event(involved(body), "Normal", "Started", f"Backing up {tm.name} to {location}")
        return POLL_SECONDS

    def job(
        self,
        tm: TaskManager,
        body: Mapping[str, Any],
        action: BackupAction,
        *,
        subject: str | None = None,
    ) -> Object:
        """The Job of `action` for this backup or restore (`subject`, which names the Job: the
        object's name, unless one object has several Jobs of an action)."""
        name = body["metadata"]["name"]
        return build_backup_job(
            tm,
            action=action,
            subject=subject or name,
            location=(body.get("status") or {}).get("location") or backup_location(tm, name),
            image=image(tm, self.default_repository),
            owner=owner_of(body),
            sha256=(body.get("status") or {}).get("sha256") if action == "restore" else None,
        )

    def _complete(self, body: Mapping[str, Any], line: Mapping[str, Any]) -> None:
        metrics.BACKUPS.labels(*taskmanager_key(body), "completed").inc()
        size = int(line.get("size") or 0)
        self._set(
            body,
            {
                "phase": "Completed",
                "completionTime": st.now(),
                "location": line.get("location"),
                "sizeBytes": size,
                "size": binary_size(size),
                "sha256": line.get("sha256"),
                "appVersion": line.get("appVersion"),
                "schemaRevision": line.get("schemaRevision"),
                "serverVersion": line.get("serverVersion"),
                "rowCounts": line.get("rowCounts"),
                "error": None,
            },
        )
        self._event(
            involved(body),
            "Normal",
            "Completed",
            f"Backed up {binary_size(size)} to {line.get('location')}",
        )

    def _fail(self, body: Mapping[str, Any], reason: str, message: str) -> None:
        metrics.BACKUPS.labels(*taskmanager_key(body), "failed").inc()
        self._set(
            body,
            {"phase": "Failed", "completionTime": st.now(), "error": f"{reason}: {message}"},
        )
        self._event(involved(body), "Warning", reason, message)
        logger.warning(
            "backup %s/%s failed: %s: %s",
            body["metadata"]["namespace"],
            body["metadata"]["name"],
            reason,
            message,
        )

    def event(self, body: Mapping[str, Any], event_type: str, reason: str, message: str) -> None:
        """An event on one of our objects (a backup, a restore), never failing the caller."""
        self._event(involved(body), event_type, reason, message)

    def _event(self, about: Mapping[str, str], event_type: str, reason: str, message: str) -> None:
        """Events tell; they never decide. One the API server refuses (a namespace being
        deleted takes none) is logged, and the backup goes on."""
        try:
            self.kube.post_event(about, event_type, reason, message)
        except ApiException as error:
            logger.warning(
                "could not post event %s on %s/%s: %s",
                reason,
                about["namespace"],
                about["name"],
                api_message(error),
            )

    def _set(self, body: Mapping[str, Any], status: Mapping[str, Any]) -> None:
        """Patch what differs from the status as read; nothing when nothing does."""
        metadata = body["metadata"]
        current = body.get("status") or {}
        patch = {key: value for key, value in status.items() if current.get(key) != value}
        if patch:
            self.kube.patch_ours_status(
                BACKUP_PLURAL, metadata["namespace"], metadata["name"], patch
            )

    def delete_data(self, body: Mapping[str, Any]) -> str | None:
        """The step of deleting a backup's stored data; None once it is gone (or there was
        none), else what is being waited for."""
        status = body.get("status") or {}
        location = status.get("location")
        if not location:
            return None
        metadata = body["metadata"]
        namespace, name = metadata["namespace"], metadata["name"]
        tm_body = self.kube.get_taskmanager(namespace, (body.get("spec") or {})["taskManager"])
        if tm_body is None:
            # Without its TaskManager there is no storage configuration to reach the data.
            self._event(
                involved(body),
                "Warning",
                "DataLeftInPlace",
                f"TaskManager {body['spec']['taskManager']} is gone: the data at {location} is "
                "left in place; delete it from the storage by hand",
            )
            return None
        tm = TaskManager.from_body(tm_body)
        job_name = backup_job_name(tm, "delete", name)
        job = self.kube.get("batch/v1", "Job", namespace, job_name)
        if job is None:
            try:
                self.kube.apply(self.job(tm, body, "delete"))
            except ApplyRefusedError as error:
                if "being terminated" not in error.message:
                    raise
                # The whole namespace goes (its claim with it); an S3 copy stays, as it should
                # when a namespace is deleted by mistake.
                self._event(
                    involved(body),
                    "Warning",
                    "DataLeftInPlace",
                    f"the namespace is being deleted: the data at {location} is left in place",
                )
                return None
            return f"Job {job_name} to delete {location}"
        result = job_result(job, self.kube.list_pods(namespace, {"job-name": job_name}))
        if result is None:
            return f"Job {job_name} to delete {location}"
        if not result.ok:
            message = str(result.line.get("message") or result.message)
            self._event(involved(body), "Warning", "DeleteFailed", message)
            raise RuntimeError(f"deleting {location} failed: {message}")
        self._event(involved(body), "Normal", "Deleted", f"Deleted the data at {location}")
        return None
