"""Backups on the real node: a TaskManagerBackup runs the backup command in a Job against the
managed PostgreSQL, onto the backups' PersistentVolumeClaim, and its status says what the dump
holds; deleting it deletes the data; a backup of nothing fails with the reason, as an event."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import ApiClient

from taskmanager_operator.api.backups import (
    BACKUP_KIND,
    BACKUP_PLURAL,
    RESTORE_KIND,
    RESTORE_PLURAL,
)
from taskmanager_operator.api.v1alpha1 import GROUP, PLURAL, VERSION
from taskmanager_operator.backups.lifecycle import VERIFY_ANNOTATION
from taskmanager_operator.builders.backup import backup_claim_name
from taskmanager_operator.resource import TaskManager
from tests.chart.helm import run
from tests.e2e.clients import API, Session, exercise, http, sign_up
from tests.e2e.conftest import (
    OperatorRelease,
    e2e_namespace,
    evidence,
    taskmanager_manifest,
    wait_ready,
)
from tests.support.node import RealNode
from tests.support.wait import wait_until

NAME = "saved"


@pytest.fixture(scope="module")
def backed_up(
    api_client: ApiClient, operator_release: OperatorRelease, node: RealNode
) -> Iterator[str]:
    """The namespace of a Ready TaskManager with backups on, and some data in it."""
    custom = client.CustomObjectsApi(api_client)
    with e2e_namespace(api_client, "backup") as namespace:
        storage = {"persistentVolume": {"size": "1Gi", "storageClassName": node.storage_class}}
        # No schedule fires during the test: the backups here are the ones it asks for.
        backup = {"enabled": True, "schedule": "0 3 1 1 *", "storage": storage}
        custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, taskmanager_manifest(node, NAME, backup=backup)
        )
        wait_ready(api_client, namespace, NAME, operator_release, timeout=300)
        service = client.CoreV1Api(api_client).read_namespaced_service(f"{NAME}-api", namespace)
        exercise(sign_up(f"http://{service.spec.cluster_ip}:{service.spec.ports[0].port}"))
        yield namespace


def backup_body(name: str, taskmanager: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": BACKUP_KIND,
        "metadata": {"name": name},
        "spec": {"taskManager": taskmanager, "type": "Manual"},
    }


def wait_backup(
    api_client: ApiClient, namespace: str, name: str, release: OperatorRelease, phase: str
) -> dict[str, Any]:
    custom = client.CustomObjectsApi(api_client)

    def reached() -> dict[str, Any] | None:
        body: dict[str, Any] = custom.get_namespaced_custom_object(
            GROUP, VERSION, namespace, BACKUP_PLURAL, name
        )
        return body if (body.get("status") or {}).get("phase") == phase else None

    try:
        return wait_until(reached, timeout=240, interval=1, what=f"backup {name} {phase}")
    except AssertionError as error:
        body = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, BACKUP_PLURAL, name)
        raise AssertionError(
            f"{error}\nbackup status: {json.dumps(body.get('status'), indent=1)}\n"
            f"{evidence(api_client, namespace, NAME, release)}"
        ) from None


def events_of(api_client: ApiClient, namespace: str, name: str) -> list[tuple[str, str, str]]:
    found = client.CoreV1Api(api_client).list_namespaced_event(
        namespace, field_selector=f"involvedObject.name={name},involvedObject.kind={BACKUP_KIND}"
    )
    return [(event.type, event.reason, event.message) for event in found.items]


def test_a_backup_dumps_the_database_and_its_status_says_what_it_holds(
    api_client: ApiClient, backed_up: str, operator_release: OperatorRelease
) -> None:
    namespace = backed_up
    custom = client.CustomObjectsApi(api_client)
    custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, BACKUP_PLURAL, backup_body("manual-1", NAME)
    )
    body = wait_backup(api_client, namespace, "manual-1", operator_release, "Completed")
    status = body["status"]
    assert status["location"] == "file:///backups/manual-1"
    assert status["sizeBytes"] > 0
    assert re.fullmatch(r"[0-9a-f]{64}", status["sha256"])
    assert status["schemaRevision"]
    assert status["appVersion"] == "0.1.0"
    # The managed database is the node's PostgreSQL, dumped by the image's client.
    assert status["serverVersion"]
    assert status["rowCounts"]["public.users"] >= 1, status["rowCounts"]
    assert status["rowCounts"]["public.tasks"] >= 1, status["rowCounts"]
    events = events_of(api_client, namespace, "manual-1")
    assert ("Normal", "Completed") in {(kind, reason) for kind, reason, _ in events}, events

    table = run("kubectl", "get", "tmb", "-n", namespace).stdout
    header, row = table.splitlines()[:2]
    assert header.split()[:5] == ["NAME", "TASKMANAGER", "TYPE", "PHASE", "SIZE"]
    assert row.split()[:5] == ["manual-1", NAME, "Manual", "Completed", status["size"]]
    tm = TaskManager.from_body(
        custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, NAME)
    )
    claim = client.CoreV1Api(api_client).read_namespaced_persistent_volume_claim(
        backup_claim_name(tm), namespace
    )
    assert not claim.metadata.owner_references, "the backups outlive their TaskManager"

    # Asked to be verified, it is restored into a scratch database and compared, for real.
    custom.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        BACKUP_PLURAL,
        "manual-1",
        {"metadata": {"annotations": {VERIFY_ANNOTATION: "now"}}},
    )

    def verified() -> dict[str, Any] | None:
        body: dict[str, Any] = custom.get_namespaced_custom_object(
            GROUP, VERSION, namespace, BACKUP_PLURAL, "manual-1"
        )
        found: dict[str, Any] | None = (body.get("status") or {}).get("verification")
        return found if found and found.get("requested") == "now" else None

    try:
        verification = wait_until(verified, timeout=180, interval=1, what="the verification")
    except AssertionError as error:
        raise AssertionError(
            f"{error}\n{evidence(api_client, namespace, NAME, operator_release)}"
        ) from None
    assert verification["result"] == "Passed", verification


def test_deleting_a_backup_deletes_its_data(
    api_client: ApiClient, backed_up: str, operator_release: OperatorRelease
) -> None:
    namespace = backed_up
    custom = client.CustomObjectsApi(api_client)
    custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, BACKUP_PLURAL, backup_body("to-delete", NAME)
    )
    location = wait_backup(api_client, namespace, "to-delete", operator_release, "Completed")[
        "status"
    ]["location"]
    custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, BACKUP_PLURAL, "to-delete")

    def gone() -> bool:
        try:
            custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, BACKUP_PLURAL, "to-delete"
            )
        except client.ApiException as error:
            return bool(error.status == 404)
        return False

    wait_until(gone, timeout=180, interval=1, what="the backup and its data to be deleted")
    events = events_of(api_client, namespace, "to-delete")
    assert ("Normal", "Deleted", f"Deleted the data at {location}") in events, events


def test_a_backup_of_a_missing_taskmanager_fails_with_the_reason(
    api_client: ApiClient, backed_up: str, operator_release: OperatorRelease
) -> None:
    namespace = backed_up
    client.CustomObjectsApi(api_client).create_namespaced_custom_object(
        GROUP, VERSION, namespace, BACKUP_PLURAL, backup_body("orphan", "nowhere")
    )
    body = wait_backup(api_client, namespace, "orphan", operator_release, "Failed")
    assert body["status"]["error"].startswith("TaskManagerNotFound: "), body["status"]
    warnings = [e for e in events_of(api_client, namespace, "orphan") if e[0] == "Warning"]
    assert [reason for _, reason, _ in warnings] == ["TaskManagerNotFound"], warnings


def titles(session: Session) -> set[str]:
    with http(session.base_url) as api:
        login = api.post(
            f"{API}/auth/login", json={"email": session.email, "password": session.password}
        )
        assert login.status_code == 200, login.text
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        listed = api.get(f"{API}/tasks", headers=headers, params={"limit": 100})
        assert listed.status_code == 200, listed.text
        return {task["title"] for task in listed.json()["data"]}


def add_task(session: Session, title: str) -> str:
    with http(session.base_url) as api:
        created = api.post(f"{API}/tasks", json={"title": title}, headers=session.headers)
        assert created.status_code == 201, created.text
        return str(created.json()["id"])


def test_a_restore_puts_the_backed_up_data_back_in_place(
    api_client: ApiClient, backed_up: str, operator_release: OperatorRelease
) -> None:
    namespace = backed_up
    custom = client.CustomObjectsApi(api_client)
    service = client.CoreV1Api(api_client).read_namespaced_service(f"{NAME}-api", namespace)
    session = sign_up(f"http://{service.spec.cluster_ip}:{service.spec.ports[0].port}")
    kept = add_task(session, "kept: backed up")
    custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, BACKUP_PLURAL, backup_body("known-good", NAME)
    )
    wait_backup(api_client, namespace, "known-good", operator_release, "Completed")
    add_task(session, "gone: written after the backup")
    with http(session.base_url) as api:
        deleted = api.delete(f"{API}/tasks/{kept}", headers=session.headers)
        assert deleted.status_code == 204, deleted.text
    assert titles(session) == {"gone: written after the backup"}

    restore = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": RESTORE_KIND,
        "metadata": {"name": "to-known-good"},
        "spec": {"taskManager": NAME, "backup": {"name": "known-good"}},
    }
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, RESTORE_PLURAL, restore)

    def finished() -> dict[str, Any] | None:
        body: dict[str, Any] = custom.get_namespaced_custom_object(
            GROUP, VERSION, namespace, RESTORE_PLURAL, "to-known-good"
        )
        phase = (body.get("status") or {}).get("phase")
        return body if phase in {"Completed", "Failed"} else None

    try:
        body = wait_until(finished, timeout=420, interval=2, what="the restore to finish")
    except AssertionError as error:
        raise AssertionError(
            f"{error}\n{evidence(api_client, namespace, NAME, operator_release)}"
        ) from None
    status = body["status"]
    assert status["phase"] == "Completed", (status, operator_release.log_tail())
    assert status["durationSeconds"] > 0
    before = custom.get_namespaced_custom_object(
        GROUP, VERSION, namespace, BACKUP_PLURAL, status["preRestoreBackup"]
    )
    assert (before["spec"]["type"], before["status"]["phase"]) == ("PreRestore", "Completed")
    wait_ready(api_client, namespace, NAME, operator_release)
    assert titles(session) == {"kept: backed up"}, "the data as it was at the backup"
