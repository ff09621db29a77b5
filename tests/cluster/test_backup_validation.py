"""The API server itself checks TaskManagerBackups and TaskManagerRestores at apply time: their
specs are immutable records, a restore names exactly one source, and `kubectl get` shows the
columns a user reads them by."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from taskmanager_operator.api.backups import (
    BACKUP_KIND,
    BACKUP_PLURAL,
    RESTORE_KIND,
    RESTORE_PLURAL,
)
from taskmanager_operator.api.v1alpha1 import GROUP, VERSION
from tests.cluster.test_operator import kubectl

pytestmark = pytest.mark.usefixtures("taskmanager_crd")
SHA256 = "0" * 64


def body(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": kind,
        "metadata": {"name": f"r-{uuid.uuid4().hex[:6]}"},
        "spec": spec,
    }


def create(api_client: ApiClient, plural: str, manifest: dict[str, Any], namespace: str) -> Any:
    return client.CustomObjectsApi(api_client).create_namespaced_custom_object(
        GROUP, VERSION, namespace, plural, manifest, field_validation="Strict"
    )


def refusal(api_client: ApiClient, plural: str, manifest: dict[str, Any]) -> str:
    with pytest.raises(ApiException) as refused:
        client.CustomObjectsApi(api_client).create_namespaced_custom_object(
            GROUP, VERSION, "default", plural, manifest, dry_run="All", field_validation="Strict"
        )
    assert refused.value.status in {400, 422}
    message: str = json.loads(refused.value.body)["message"]
    return message


@pytest.mark.parametrize(
    ("kind", "plural", "spec", "message"),
    [
        pytest.param(BACKUP_KIND, BACKUP_PLURAL, {}, "spec.taskManager", id="backup-of-nothing"),
        pytest.param(
            BACKUP_KIND,
            BACKUP_PLURAL,
            {"taskManager": "demo", "type": "Hourly"},
            "spec.type",
            id="backup-type",
        ),
        pytest.param(
            BACKUP_KIND,
            BACKUP_PLURAL,
            {"taskManager": "demo", "ttl": "a week"},
            "spec.ttl",
            id="backup-ttl",
        ),
        pytest.param(
            RESTORE_KIND,
            RESTORE_PLURAL,
            {"taskManager": "demo"},
            "exactly one of backup",
            id="restore-of-nothing",
        ),
        pytest.param(
            RESTORE_KIND,
            RESTORE_PLURAL,
            {
                "taskManager": "demo",
                "backup": {"name": "b"},
                "source": {"location": "s3://b/p", "sha256": SHA256},
            },
            "exactly one of backup",
            id="restore-of-two",
        ),
        pytest.param(
            RESTORE_KIND,
            RESTORE_PLURAL,
            {"taskManager": "demo", "source": {"location": "s3://b/p", "sha256": "abc"}},
            "spec.source.sha256",
            id="restore-bad-checksum",
        ),
        pytest.param(
            RESTORE_KIND,
            RESTORE_PLURAL,
            {"taskManager": "demo", "source": {"location": "http://x/y", "sha256": SHA256}},
            "spec.source.location",
            id="restore-bad-location",
        ),
    ],
)
def test_a_bad_backup_or_restore_is_refused_naming_the_field(
    api_client: ApiClient, kind: str, plural: str, spec: dict[str, Any], message: str
) -> None:
    assert message in refusal(api_client, plural, body(kind, spec))


@pytest.mark.parametrize(
    ("kind", "plural", "spec", "change"),
    [
        pytest.param(
            BACKUP_KIND, BACKUP_PLURAL, {"taskManager": "demo"}, {"type": "Scheduled"}, id="backup"
        ),
        pytest.param(
            RESTORE_KIND,
            RESTORE_PLURAL,
            {"taskManager": "demo", "backup": {"name": "b1"}},
            {"backup": {"name": "b2"}},
            id="restore",
        ),
    ],
)
def test_the_spec_is_immutable(  # noqa: PLR0917 - the parameters of one case
    api_client: ApiClient,
    namespace: str,
    kind: str,
    plural: str,
    spec: dict[str, Any],
    change: dict[str, Any],
) -> None:
    created = create(api_client, plural, body(kind, spec), namespace)
    name = created["metadata"]["name"]
    custom = client.CustomObjectsApi(api_client)
    with pytest.raises(ApiException) as refused:
        custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, plural, name, {"spec": change}
        )
    assert "spec is immutable" in json.loads(refused.value.body)["message"]


def test_kubectl_get_shows_what_a_backup_is(api_client: ApiClient, namespace: str) -> None:
    manifest = body(BACKUP_KIND, {"taskManager": "demo", "type": "Manual"})
    create(api_client, BACKUP_PLURAL, manifest, namespace)
    header, row = kubectl("get", "tmb", "-n", namespace).splitlines()
    assert header.split() == [
        "NAME", "TASKMANAGER", "TYPE", "PHASE", "SIZE", "COMPLETED", "VERIFIED", "AGE",
    ]  # fmt: skip
    assert row.split()[:3] == [manifest["metadata"]["name"], "demo", "Manual"]
    restore = body(RESTORE_KIND, {"taskManager": "demo", "backup": {"name": "nightly"}})
    create(api_client, RESTORE_PLURAL, restore, namespace)
    header, row = kubectl("get", "tmr", "-n", namespace).splitlines()
    assert header.split() == ["NAME", "TASKMANAGER", "BACKUP", "PHASE", "DURATION", "AGE"]
    assert row.split()[:3] == [restore["metadata"]["name"], "demo", "nightly"]
