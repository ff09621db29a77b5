"""A TaskManagerRestore step by step on the in-memory API server, the Jobs' results fed the way
a finished container gives them: what is refused before anything is touched, the PreRestore
backup first, the API held at 0 pods (the TaskManager not Ready meanwhile), the restore Job,
and the API back; a failed restore lets the API come back and says why."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

from taskmanager_operator.api.backups import (
    BACKUP_KIND,
    BACKUP_PLURAL,
    RESTORE_KIND,
    RESTORE_PLURAL,
)
from taskmanager_operator.backups.lifecycle import BackupLifecycle
from taskmanager_operator.backups.restore import RestoreLifecycle
from taskmanager_operator.builders.backup import backup_job_name
from taskmanager_operator.resource import TaskManager
from tests.support.fake_kube import TASKMANAGER_API_VERSION, settle
from tests.unit.test_reconcile import NS, REPOSITORY, SAMPLE, Cluster, cluster

__all__ = ["cluster"]
SHA256 = "a" * 64


@pytest.fixture
def restores(cluster: Cluster) -> RestoreLifecycle:
    sample = yaml.safe_load(SAMPLE.read_text())
    cluster.kube.create_taskmanager(NS, "demo", {**sample["spec"], "backup": {"enabled": True}})
    cluster.bring_up("demo")
    cluster.kube.events.clear()
    backups = BackupLifecycle(cluster.kube, REPOSITORY)
    return RestoreLifecycle(cluster.kube, backups)


def ours(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": TASKMANAGER_API_VERSION,
        "kind": kind,
        "metadata": {"name": name, "namespace": NS},
        "spec": spec,
    }


def completed_backup(cluster: Cluster, name: str = "nightly", of: str = "demo") -> None:
    cluster.kube.create(ours(BACKUP_KIND, name, {"taskManager": of, "type": "Scheduled"}))
    status = {"phase": "Completed", "location": f"file:///backups/{name}", "sha256": SHA256}
    cluster.kube.set_status(TASKMANAGER_API_VERSION, BACKUP_KIND, NS, name, status)


def restore_of(cluster: Cluster, spec: dict[str, Any], name: str = "back") -> None:
    cluster.kube.create(ours(RESTORE_KIND, name, {"taskManager": "demo", **spec}))


def step(cluster: Cluster, restores: RestoreLifecycle, name: str = "back") -> dict[str, Any]:
    """One pass, then what `kubectl get tmr -o yaml` shows of its status."""
    body = cluster.kube.get_ours(RESTORE_PLURAL, NS, name)
    assert body is not None
    restores.reconcile(body)
    found = cluster.kube.get_ours(RESTORE_PLURAL, NS, name)
    assert found is not None
    return dict(found.get("status") or {})


def finish_job(cluster: Cluster, job_name: str, line: dict[str, Any]) -> None:
    """The Job's pod terminated with the command's line, and the Job's condition set."""
    condition = "Complete" if line.get("ok") else "Failed"
    job = cluster.kube.get("batch/v1", "Job", NS, job_name)
    assert job is not None, f"no Job {job_name}"
    cluster.kube.set_status(
        "batch/v1", "Job", NS, job_name, {"conditions": [{"type": condition, "status": "True"}]}
    )
    terminated = {"exitCode": 0 if line.get("ok") else 1, "message": json.dumps(line)}
    cluster.kube.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"{job_name}-x",
                "namespace": NS,
                "labels": {"job-name": job_name},
            },
        }
    )
    cluster.kube.set_status(
        "v1",
        "Pod",
        NS,
        f"{job_name}-x",
        {"phase": "Succeeded", "containerStatuses": [{"state": {"terminated": terminated}}]},
    )


def tm(cluster: Cluster) -> TaskManager:
    body = cluster.kube.get_taskmanager(NS, "demo")
    assert body is not None
    return TaskManager.from_body(body)


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ({"backup": {"name": "missing"}}, "BackupNotFound"),
        ({"backup": {"name": "running"}}, "BackupNotCompleted"),
        ({"backup": {"name": "others"}}, "BackupOfAnother"),
    ],
)
def test_a_backup_that_cannot_be_restored_is_refused_before_anything_is_touched(
    cluster: Cluster, restores: RestoreLifecycle, spec: dict[str, Any], reason: str
) -> None:
    cluster.kube.create(ours(BACKUP_KIND, "running", {"taskManager": "demo"}))
    completed_backup(cluster, "others", of="elsewhere")
    restore_of(cluster, spec)
    status = step(cluster, restores)
    assert status["phase"] == "Failed"
    assert status["error"].startswith(f"{reason}: ")
    assert [e["reason"] for e in cluster.kube.events if e["type"] == "Warning"] == [reason]
    assert cluster.kube.list_ours(BACKUP_PLURAL, NS)[0]["metadata"]["name"] != "back-before"
    assert not any(j["metadata"]["name"].startswith("demo-restore-") for j in cluster.jobs())


def test_a_paused_taskmanager_or_a_second_restore_is_refused(
    cluster: Cluster, restores: RestoreLifecycle
) -> None:
    completed_backup(cluster)
    restore_of(cluster, {"backup": {"name": "nightly"}}, name="first")
    assert step(cluster, restores, "first")["phase"] == "BackingUp"
    restore_of(cluster, {"backup": {"name": "nightly"}}, name="second")
    assert step(cluster, restores, "second")["error"].startswith("RestoreInProgress: ")
    cluster.patch_spec("demo", {"paused": True})
    restore_of(cluster, {"backup": {"name": "nightly"}}, name="third")
    assert step(cluster, restores, "third")["error"].startswith("TaskManagerPaused: ")


def test_the_whole_restore_holds_the_api_at_zero_and_brings_it_back(
    cluster: Cluster, restores: RestoreLifecycle
) -> None:
    completed_backup(cluster)
    restore_of(cluster, {"backup": {"name": "nightly"}})
    status = step(cluster, restores)
    assert (status["phase"], status["location"], status["sha256"]) == (
        "BackingUp",
        "file:///backups/nightly",
        SHA256,
    )
    # First a backup of what is about to be replaced.
    assert step(cluster, restores)["phase"] == "BackingUp"
    before = cluster.kube.get_ours(BACKUP_PLURAL, NS, "back-before")
    assert before is not None
    assert before["spec"] == {"taskManager": "demo", "type": "PreRestore"}
    cluster.kube.set_status(
        TASKMANAGER_API_VERSION, BACKUP_KIND, NS, "back-before", {"phase": "Completed"}
    )
    assert step(cluster, restores)["phase"] == "Quiescing"

    # The TaskManager's reconcile holds the API at 0 pods and says so.
    cluster.reconcile("demo")
    deployment = cluster.deployment("demo-api")
    assert deployment["spec"]["replicas"] == 0
    assert cluster.conditions("demo")["Ready"] == ("False", "Restoring")
    assert cluster.phase("demo") == "Progressing"
    assert step(cluster, restores)["phase"] == "Quiescing", "pods are still there"
    settle(cluster.kube, NS)
    assert step(cluster, restores)["phase"] == "Restoring"

    # The restore Job checks the sha256 it was given.
    step(cluster, restores)
    job_name = backup_job_name(tm(cluster), "restore", "back")
    job = cluster.kube.get("batch/v1", "Job", NS, job_name)
    assert job is not None
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args == ["backup", "restore", "--from", "file:///backups/nightly", "--sha256", SHA256]
    assert job["metadata"]["ownerReferences"][0]["kind"] == RESTORE_KIND
    finish_job(cluster, job_name, {"ok": True, "operation": "restore"})
    assert step(cluster, restores)["phase"] == "Resuming"

    # The API comes back: replicas as the spec says, then Ready, then the restore is done.
    cluster.bring_up("demo")
    assert cluster.deployment("demo-api")["spec"]["replicas"] == 2
    completed = {"namespace": NS, "name": "demo", "result": "completed"}
    before_count = REGISTRY.get_sample_value("taskmanager_operator_restores_total", completed) or 0
    status = step(cluster, restores)
    assert status["phase"] == "Completed"
    assert status["durationSeconds"] >= 0
    after_count = REGISTRY.get_sample_value("taskmanager_operator_restores_total", completed)
    assert after_count == before_count + 1
    assert ("Normal", "Completed") in {(e["type"], e["reason"]) for e in cluster.kube.events}


def test_a_failed_restore_says_why_and_the_api_comes_back(
    cluster: Cluster, restores: RestoreLifecycle
) -> None:
    restore_of(cluster, {"source": {"location": "file:///backups/old", "sha256": SHA256}})
    step(cluster, restores)
    cluster.kube.create(ours(BACKUP_KIND, "back-before", {"taskManager": "demo"}))
    cluster.kube.set_status(
        TASKMANAGER_API_VERSION, BACKUP_KIND, NS, "back-before", {"phase": "Completed"}
    )
    step(cluster, restores)
    cluster.reconcile("demo")
    settle(cluster.kube, NS)
    step(cluster, restores)
    step(cluster, restores)
    failure = {"ok": False, "reason": "RestoreFailed", "message": "rolled back: disk full"}
    finish_job(cluster, backup_job_name(tm(cluster), "restore", "back"), failure)
    status = step(cluster, restores)
    assert status["phase"] == "Failed"
    assert status["error"] == "RestoreFailed: rolled back: disk full"
    cluster.bring_up("demo")
    assert cluster.deployment("demo-api")["spec"]["replicas"] == 2
