"""The backup Jobs on the local cluster, whose nodes are simulated: no container runs, so a test
feeds each Job's result the way a finished container would. It annotates the Job's running pod
with the backup command's JSON line and exit code; our kwok stage
(hack/kwok/stage-backup-result.yaml) turns them into the container's terminated state and
termination message, and the Job controller marks the Job Complete or Failed from the pod's
phase. Everything after that, reading
the result from the pod, is the operator's own path, as on a real node."""

from __future__ import annotations

import json
from typing import Any

from kubernetes import client
from kubernetes.client import ApiClient

from taskmanager_operator.api.backups import BACKUP_PLURAL, RESTORE_PLURAL
from taskmanager_operator.api.v1alpha1 import GROUP, VERSION
from taskmanager_operator.builders.backup import ACTION_LABEL, BACKUP_ANNOTATION
from tests.support.wait import wait_until

# The annotations our kwok stage reads (hack/kwok/stage-backup-result.yaml).
RESULT_ANNOTATION = "kwok.taskmanager.dev/result"
EXIT_CODE_ANNOTATION = "kwok.taskmanager.dev/exit-code"
SHA256 = "5" * 64


def created_line(location: str, size: int = 4096) -> dict[str, Any]:
    """The line `backup create` prints when it succeeds."""
    return {
        "ok": True,
        "action": "create",
        "location": location,
        "size": size,
        "sha256": SHA256,
        "appVersion": "0.1.0",
        "schemaRevision": "0001",
        "serverVersion": "17.6",
        "rowCounts": {"users": 2, "tasks": 3},
    }


def failed_line(action: str, reason: str, message: str) -> dict[str, Any]:
    return {"ok": False, "action": action, "reason": reason, "message": message}


class BackupJobs:
    """The backups, restores and their Jobs in one namespace."""

    def __init__(self, api_client: ApiClient, namespace: str) -> None:
        self.namespace = namespace
        self.custom = client.CustomObjectsApi(api_client)
        self.core = client.CoreV1Api(api_client)
        self.batch = client.BatchV1Api(api_client)

    def create(self, plural: str, kind: str, name: str, spec: dict[str, Any]) -> None:
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": {"name": name}}
        self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, plural, body | {"spec": spec}
        )

    def get(self, plural: str, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, plural, name
        )
        return found

    def backups(self) -> dict[str, dict[str, Any]]:
        listed = self.custom.list_namespaced_custom_object(
            GROUP, VERSION, self.namespace, BACKUP_PLURAL
        )
        return {body["metadata"]["name"]: body for body in listed["items"]}

    def wait_phase(self, plural: str, name: str, phase: str, timeout: float = 60) -> dict[str, Any]:
        seen: list[Any] = [None]

        def reached() -> dict[str, Any] | None:
            body = self.get(plural, name)
            seen[0] = body.get("status")
            return body if (body.get("status") or {}).get("phase") == phase else None

        try:
            return wait_until(reached, timeout=timeout, what=f"{plural} {name} to be {phase}")
        except AssertionError as error:
            # The evidence: where it stopped instead.
            error.add_note(f"{plural} {name} status: {seen[0]}")
            raise

    def jobs(self, action: str) -> list[client.V1Job]:
        return list(
            self.batch.list_namespaced_job(
                self.namespace, label_selector=f"{ACTION_LABEL}={action}"
            ).items
        )

    def job_for(self, action: str, subject: str) -> client.V1Job | None:
        return next(
            (
                job
                for job in self.jobs(action)
                # A verification's subject is `<backup>@<request>`.
                if (job.metadata.annotations or {}).get(BACKUP_ANNOTATION, "").split("@")[0]
                == subject
            ),
            None,
        )

    def running_pod(self, action: str, subject: str) -> client.V1Pod | None:
        """The running pod of `subject`'s `action` Job, when there is one."""
        job = self.job_for(action, subject)
        if job is None:
            return None
        pods = self.core.list_namespaced_pod(
            self.namespace, label_selector=f"job-name={job.metadata.name}"
        ).items
        return next((pod for pod in pods if pod.status.phase == "Running"), None)

    def feed(self, action: str, subject: str, line: dict[str, Any], timeout: float = 60) -> None:
        """Finish the running pod of `subject`'s `action` Job with `line` as its container's
        result: exit code 0 when the line says ok, 1 otherwise."""
        pod = wait_until(
            lambda: self.running_pod(action, subject),
            timeout=timeout,
            what=f"the running pod of the {action} Job of {subject}",
        )
        self.finish(pod, line)

    def finish(self, pod: client.V1Pod, line: dict[str, Any]) -> None:
        annotations = {
            RESULT_ANNOTATION: json.dumps(line),
            EXIT_CODE_ANNOTATION: "0" if line.get("ok") else "1",
        }
        self.core.patch_namespaced_pod(
            pod.metadata.name, self.namespace, {"metadata": {"annotations": annotations}}
        )

    def complete_backup(self, name: str, timeout: float = 60) -> dict[str, Any]:
        """Feed a successful dump to backup `name`'s Job; its Completed body."""
        running = self.wait_phase(BACKUP_PLURAL, name, "Running", timeout)
        self.feed("create", name, created_line(running["status"]["location"]))
        return self.wait_phase(BACKUP_PLURAL, name, "Completed", timeout)

    def events(self, name: str) -> list[client.CoreV1Event]:
        return list(
            self.core.list_namespaced_event(
                self.namespace, field_selector=f"involvedObject.name={name}"
            ).items
        )

    def restore(self, name: str) -> dict[str, Any]:
        return self.get(RESTORE_PLURAL, name)
