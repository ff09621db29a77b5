"""Deleting a TaskManagerBackup deletes its stored data first (the finalizer waits for the
delete Job); a failed delete keeps the object and says why; when nothing can reach the data any
more (its TaskManager, and so its storage settings, is gone) the object goes and a Warning says
where the data was left."""

from __future__ import annotations

import pytest

from taskmanager_operator.api.backups import BACKUP_PLURAL
from taskmanager_operator.api.v1alpha1 import KIND
from taskmanager_operator.backups.lifecycle import BackupLifecycle
from taskmanager_operator.builders.backup import ACTION_LABEL, backup_job_name
from taskmanager_operator.k8s import Object
from tests.support.fake_kube import TASKMANAGER_API_VERSION
from tests.unit.test_reconcile import NS, REPOSITORY, Cluster, cluster
from tests.unit.test_restore import completed_backup, finish_job, restores, tm

__all__ = ["cluster", "restores"]


@pytest.fixture
def backups(cluster: Cluster, restores: object) -> BackupLifecycle:
    """A Ready TaskManager `demo` that takes backups (the restores fixture makes it), with a
    completed backup `nightly`."""
    completed_backup(cluster)
    return BackupLifecycle(cluster.kube, REPOSITORY)


def delete_jobs(cluster: Cluster) -> list[Object]:
    return [
        job
        for job in cluster.kube.objects("batch/v1", "Job", NS)
        if job["metadata"]["labels"].get(ACTION_LABEL) == "delete"
    ]


def nightly(cluster: Cluster) -> Object:
    body = cluster.kube.get_ours(BACKUP_PLURAL, NS, "nightly")
    assert body is not None
    return body


def test_the_data_goes_through_a_delete_job_before_the_object(
    cluster: Cluster, backups: BackupLifecycle
) -> None:
    waiting = backups.delete_data(nightly(cluster))
    job_name = backup_job_name(tm(cluster), "delete", "nightly")
    assert waiting == f"Job {job_name} to delete file:///backups/nightly"
    job = cluster.kube.get("batch/v1", "Job", NS, job_name)
    assert job is not None
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["backup", "delete", "file:///backups/nightly"]
    # Asked again before the Job ends: still waiting, and no second Job.
    assert backups.delete_data(nightly(cluster)) == waiting
    finish_job(cluster, job_name, {"ok": True, "action": "delete"})
    assert backups.delete_data(nightly(cluster)) is None
    assert ("Normal", "Deleted") in [(e["type"], e["reason"]) for e in cluster.kube.events]


def test_a_failed_delete_keeps_the_backup_and_says_why(
    cluster: Cluster, backups: BackupLifecycle
) -> None:
    backups.delete_data(nightly(cluster))
    job_name = backup_job_name(tm(cluster), "delete", "nightly")
    message = "storage error: AccessDenied"
    finish_job(cluster, job_name, {"ok": False, "reason": "StorageError", "message": message})
    with pytest.raises(RuntimeError, match="AccessDenied"):
        backups.delete_data(nightly(cluster))
    assert ("Warning", "DeleteFailed", message) in [
        (e["type"], e["reason"], e["message"]) for e in cluster.kube.events
    ]


def test_without_its_taskmanager_the_data_is_left_in_place_and_said_so(
    cluster: Cluster, backups: BackupLifecycle
) -> None:
    cluster.kube.delete(TASKMANAGER_API_VERSION, KIND, NS, "demo")
    assert cluster.kube.get_taskmanager(NS, "demo") is None
    assert backups.delete_data(nightly(cluster)) is None
    (warning,) = [e for e in cluster.kube.events if e["reason"] == "DataLeftInPlace"]
    assert warning["type"] == "Warning"
    assert "file:///backups/nightly is left in place" in warning["message"]
    assert not delete_jobs(cluster)


def test_a_backup_that_never_stored_anything_goes_at_once(
    cluster: Cluster, backups: BackupLifecycle
) -> None:
    body = nightly(cluster)
    body["status"].pop("location")
    assert backups.delete_data(body) is None
    assert not delete_jobs(cluster)
