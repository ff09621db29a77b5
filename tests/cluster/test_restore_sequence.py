"""An in-place restore on the local cluster, step by step, as a kubectl user follows it: a
PreRestore backup first, the API held at 0 pods while the restore Job runs (the TaskManager not
Ready, saying why), the API back to its replicas, Ready, and the measured duration; a failed
restore says why and brings the API back just the same. The Jobs' results are fed as a finished
container would give them (tests/cluster/backup_jobs.py); the real restore runs in
tests/e2e/test_backup.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client
from kubernetes.client import ApiClient

from taskmanager_operator.api.backups import (
    BACKUP_KIND,
    BACKUP_PLURAL,
    RESTORE_KIND,
    RESTORE_PLURAL,
)
from taskmanager_operator.backups.restore import pre_restore_backup_name
from tests.cluster.backup_jobs import BackupJobs, failed_line
from tests.cluster.test_operator import TaskManagers, kubectl
from tests.support.operator import OperatorProcess, operators
from tests.support.wait import wait_until

pytestmark = pytest.mark.usefixtures("taskmanager_crd")
NAME = "restored"
REPLICAS = 3
API_COMPONENT = "app.kubernetes.io/component=api"


@pytest.fixture
def restorable(api_client: ApiClient, isolated_namespace: str) -> Iterator[OperatorProcess]:
    """A Ready TaskManager of REPLICAS pods with a completed backup `base`, and the operator
    (on the real clock) that acts in its namespace."""
    tms = TaskManagers(api_client, isolated_namespace)
    spec = {
        "replicas": REPLICAS,
        "autoscaling": {"enabled": False},
        "backup": {"enabled": True, "suspend": True, "verification": {"schedule": None}},
    }
    tms.create(NAME, spec)
    with operators(isolated_namespace, clock=None) as (operator,):
        tms.wait_phase(NAME, "Ready", timeout=120)
        backups = BackupJobs(api_client, isolated_namespace)
        backups.create(BACKUP_PLURAL, BACKUP_KIND, "base", {"taskManager": NAME, "type": "Manual"})
        backups.complete_backup("base")
        yield operator


def api_replicas(api_client: ApiClient, namespace: str) -> tuple[int, int]:
    """The API Deployment's (spec.replicas, pods that exist)."""
    deployment = client.AppsV1Api(api_client).read_namespaced_deployment(f"{NAME}-api", namespace)
    pods = client.CoreV1Api(api_client).list_namespaced_pod(
        namespace,
        label_selector=f"app.kubernetes.io/instance={NAME},app.kubernetes.io/component=api",
    )
    return deployment.spec.replicas, len(pods.items)


def start_restore(backups: BackupJobs, name: str) -> None:
    spec = {"taskManager": NAME, "backup": {"name": "base"}}
    backups.create(RESTORE_PLURAL, RESTORE_KIND, name, spec)
    before = pre_restore_backup_name(name)
    backups.complete_backup(before)
    assert backups.get(BACKUP_PLURAL, before)["spec"]["type"] == "PreRestore"


def held_while_restoring(api_client: ApiClient, backups: BackupJobs, name: str) -> None:
    """The restore Job runs only once the API has no pod left, and the TaskManager says so."""
    namespace = backups.namespace
    wait_until(
        lambda: backups.running_pod("restore", name),
        timeout=60,
        what=f"the restore Job of {name} to run",
    )
    assert api_replicas(api_client, namespace) == (0, 0)
    assert backups.restore(name)["status"]["phase"] == "Restoring"
    ready = TaskManagers(api_client, namespace).condition(NAME, "Ready") or {}
    assert (ready.get("status"), ready.get("reason")) == ("False", "Restoring"), ready


def back_to_ready(api_client: ApiClient, namespace: str) -> None:
    TaskManagers(api_client, namespace).wait_phase(NAME, "Ready", timeout=90)
    wait_until(
        lambda: api_replicas(api_client, namespace) == (REPLICAS, REPLICAS),
        timeout=60,
        what=f"the API back at {REPLICAS} pods",
    )


def test_a_restore_holds_the_api_at_zero_runs_and_brings_it_back(
    api_client: ApiClient, isolated_namespace: str, restorable: OperatorProcess
) -> None:
    backups = BackupJobs(api_client, isolated_namespace)
    start_restore(backups, "back")
    held_while_restoring(api_client, backups, "back")

    location = backups.restore("back")["status"]["location"]
    backups.feed("restore", "back", {"ok": True, "action": "restore", "location": location})
    done = backups.wait_phase(RESTORE_PLURAL, "back", "Completed", timeout=90)
    back_to_ready(api_client, isolated_namespace)

    status = done["status"]
    assert status["replicas"] == REPLICAS
    assert status["preRestoreBackup"] == pre_restore_backup_name("back")
    assert status["durationSeconds"] > 0
    assert {event.reason for event in backups.events("back")} >= {"Restoring", "Completed"}
    header, row = kubectl("get", "tmr", "back", "-n", isolated_namespace).splitlines()
    assert row.split()[:5] == ["back", NAME, "base", "Completed", str(status["durationSeconds"])]
    base = backups.get(BACKUP_PLURAL, "base")["status"]
    header, row = kubectl("get", "tmb", "base", "-n", isolated_namespace).splitlines()
    assert row.split()[:5] == ["base", NAME, "Manual", "Completed", base["size"]]
    # The TaskManager's printer column names when its last backup was: the PreRestore one.
    header, row = kubectl("get", "tm", NAME, "-n", isolated_namespace).splitlines()
    assert "LAST-BACKUP" in header.split()
    assert row.split()[header.split().index("LAST-BACKUP")] != "<none>"
    assert restorable.reconciles(isolated_namespace, NAME, "error") == 0


def test_a_failed_restore_says_why_and_the_api_comes_back(
    api_client: ApiClient, isolated_namespace: str, restorable: OperatorProcess
) -> None:
    backups = BackupJobs(api_client, isolated_namespace)
    start_restore(backups, "bad")
    held_while_restoring(api_client, backups, "bad")

    message = "pg_restore failed half-way; the transaction was rolled back"
    backups.feed("restore", "bad", failed_line("restore", "RestoreFailed", message))
    failed = backups.wait_phase(RESTORE_PLURAL, "bad", "Failed", timeout=60)
    assert failed["status"]["error"] == f"RestoreFailed: {message}"
    warning = wait_until(
        lambda: next((e for e in backups.events("bad") if e.type == "Warning"), None),
        timeout=30,
        what="a Warning event on the restore",
    )
    assert (warning.reason, warning.message) == ("RestoreFailed", message)
    back_to_ready(api_client, isolated_namespace)
