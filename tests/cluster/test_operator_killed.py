"""The operator SIGKILLed at random moments while TaskManagers converge, as a node failure or an
OOM kill would stop it: each run picks up where the last one died, and in the end every
TaskManager is Ready on its current generation, with one migration Job per image and no child
twice or without its owner. (The longer trials belong in a benchmark; this is the floor that
`make test` holds.)"""

from __future__ import annotations

import functools
import random
from collections import Counter
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import ApiClient

from taskmanager_operator.api.v1alpha1 import GROUP, PLURAL, VERSION
from taskmanager_operator.builders.common import MANAGED_BY
from tests.cluster.test_operator import TaskManagers
from tests.support.operator import OperatorProcess, operators
from tests.support.wait import wait_until

pytestmark = pytest.mark.usefixtures("taskmanager_crd")
TASKMANAGERS = 20
KILLS = 3
MANAGED = f"app.kubernetes.io/managed-by={MANAGED_BY}"


def ready_on_generation(body: dict[str, Any]) -> bool:
    status = body.get("status") or {}
    return bool(
        status.get("phase") == "Ready"
        and status.get("observedGeneration") == body["metadata"]["generation"]
    )


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


def all_ready(api_client: ApiClient, namespace: str) -> bool:
    items = client.CustomObjectsApi(api_client).list_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL
    )["items"]
    return len(items) == TASKMANAGERS and all(ready_on_generation(body) for body in items)


def kill_moment(
    operator: OperatorProcess, api_client: ApiClient, namespace: str, names: list[str], count: int
) -> bool:
    """Whether this run of the operator has finished `count` reconciles here, or has nothing
    left to do (a late run may converge in fewer): the moment to kill it."""
    done = sum(operator.reconciles(namespace, name) for name in names)
    return done >= count or (done > 0 and all_ready(api_client, namespace))


def test_an_operator_killed_again_and_again_converges_without_orphans_or_duplicates(
    api_client: ApiClient, isolated_namespace: str
) -> None:
    namespace = isolated_namespace
    tms = TaskManagers(api_client, namespace)
    names = [f"tm-{index:02d}" for index in range(TASKMANAGERS)]
    for name in names:
        tms.create(name, {})
    # A random moment, counted in work done: killed after the k-th reconcile of this run
    # finished. The namespace's name seeds it, and is in the report: a rerun repeats the moments.
    moments = random.Random(namespace)  # noqa: S311 - test moments, not secrets
    for _ in range(KILLS):
        with operators(namespace, clock=None) as (operator,):
            kill_after = moments.randint(1, 2 * TASKMANAGERS)
            wait_until(
                functools.partial(kill_moment, operator, api_client, namespace, names, kill_after),
                timeout=120,
                what=f"the operator's {kill_after}th reconcile",
            )
            operator.process.kill()
            operator.process.wait()

    with operators(namespace, clock=None):
        wait_until(
            functools.partial(all_ready, api_client, namespace),
            timeout=240,
            what=f"all {TASKMANAGERS} TaskManagers to be Ready",
        )
        children = owned_children(api_client, namespace)

    twice = [key for key, count in Counter((k, n) for k, n, _ in children).items() if count > 1]
    assert twice == []
    orphans = [(kind, name) for kind, name, owners in children if not set(owners) & set(names)]
    assert orphans == []
    migrations = Counter(
        owners[0] for kind, name, owners in children if kind == "Job" and "-migrate-" in name
    )
    assert migrations == dict.fromkeys(names, 1)
    # Every TaskManager owns the same children, kind by kind: none is missing one or has one twice.
    kinds = {
        name: Counter(kind for kind, _, owners in children if name in owners) for name in names
    }
    assert {"Deployment", "StatefulSet", "Service", "Secret", "Job"} <= set(kinds[names[0]])
    assert [name for name in names if kinds[name] != kinds[names[0]]] == [], kinds
