"""Whether a namespace's TaskManagers converged, and what the operator made for them: shared by
the kill test (tests/cluster/test_operator_killed.py) and its longer trials (bench/)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client import ApiClient

from taskmanager_operator.api.backups import BACKUP_PLURAL, RESTORE_PLURAL
from taskmanager_operator.api.v1alpha1 import GROUP, PLURAL, VERSION
from taskmanager_operator.builders.common import MANAGED_BY
from tests.support.operator import OperatorProcess

MANAGED = f"app.kubernetes.io/managed-by={MANAGED_BY}"


def ready_on_generation(body: dict[str, Any]) -> bool:
    status = body.get("status") or {}
    return bool(
        status.get("phase") == "Ready"
        and status.get("observedGeneration") == body["metadata"]["generation"]
    )


def all_ready(api_client: ApiClient, namespace: str, count: int) -> bool:
    """All `count` TaskManagers of the namespace are Ready on their current generation."""
    items = client.CustomObjectsApi(api_client).list_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL
    )["items"]
    return len(items) == count and all(ready_on_generation(body) for body in items)


def kill_moment(
    operator: OperatorProcess, api_client: ApiClient, namespace: str, names: list[str], count: int
) -> bool:
    """Whether this run of the operator has finished `count` reconciles here, or has nothing
    left to do (a late run may converge in fewer): the moment to kill it."""
    done = sum(operator.reconciles(namespace, name) for name in names)
    return done >= count or (done > 0 and all_ready(api_client, namespace, len(names)))


def owned_children(api_client: ApiClient, namespace: str) -> list[tuple[str, str, list[str]]]:
    """(kind, name, owner names) of everything the operator labels as its own here."""
    apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    batch = client.BatchV1Api(api_client)
    listings = {
        "Deployment": apps.list_namespaced_deployment,
        "StatefulSet": apps.list_namespaced_stateful_set,
        "Service": core.list_namespaced_service,
        "Secret": core.list_namespaced_secret,
        "ConfigMap": core.list_namespaced_config_map,
        "Job": batch.list_namespaced_job,
    }
    return [
        (kind, item.metadata.name, [owner.name for owner in item.metadata.owner_references or []])
        for kind, listing in listings.items()
        for item in listing(namespace, label_selector=MANAGED).items
    ]


@dataclass(frozen=True)
class Children:
    """What is wrong with the children of `names`, if anything."""

    duplicates: list[tuple[str, str]]
    orphans: list[tuple[str, str]]
    migrations: dict[str, int]
    """Migration Jobs per TaskManager (one each when all is well)."""
    uneven: list[str]
    """TaskManagers whose children differ, kind by kind, from the first one's."""
    kinds: Counter[str]
    """The first TaskManager's children by kind."""

    @property
    def sound(self) -> bool:
        return not (
            self.duplicates
            or self.orphans
            or self.uneven
            or any(count != 1 for count in self.migrations.values())
        )


def inspect_children(api_client: ApiClient, namespace: str, names: list[str]) -> Children:
    children = owned_children(api_client, namespace)
    duplicates = [key for key, n in Counter((k, name) for k, name, _ in children).items() if n > 1]
    orphans = [(kind, name) for kind, name, owners in children if not set(owners) & set(names)]
    migrations = Counter(
        owners[0] for kind, name, owners in children if kind == "Job" and "-migrate-" in name
    )
    kinds = {
        name: Counter(kind for kind, _, owners in children if name in owners) for name in names
    }
    return Children(
        duplicates=duplicates,
        orphans=orphans,
        migrations={name: migrations.get(name, 0) for name in names},
        uneven=[name for name in names if kinds[name] != kinds[names[0]]],
        kinds=kinds[names[0]],
    )


def release_finalizers(api_client: ApiClient, namespace: str) -> None:
    """Our objects in the namespace (TaskManagers, backups, restores) lose their finalizers, which
    no operator runs there any more to release, so the namespace can go."""
    custom = client.CustomObjectsApi(api_client)
    for plural in (PLURAL, BACKUP_PLURAL, RESTORE_PLURAL):
        for body in custom.list_namespaced_custom_object(GROUP, VERSION, namespace, plural)[
            "items"
        ]:
            custom.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                namespace,
                plural,
                body["metadata"]["name"],
                {"metadata": {"finalizers": None}},
            )
