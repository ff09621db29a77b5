"""What a TaskManager costs the API server. Once it is Ready its resyncs write nothing, and they
read only what the watches do not carry: the TaskManager and its children come from the
operator's watch cache, and a child it applied and nobody touched since is not applied again.
A new TaskManager's children are created without a read each (the watches prove them absent),
and a restarted operator, whose watches list every child before its first reconcile, reports no
child created or updated. Counted by the operator's own metric of its reconciles' requests, in a
namespace where only this test's operator acts."""

from __future__ import annotations

import pytest
from kubernetes.client import ApiClient
from kubernetes.dynamic import DynamicClient

from tests.cluster.test_operator import TaskManagers, served_children
from tests.support.operator import operators
from tests.support.wait import holds_for, wait_until

pytestmark = pytest.mark.usefixtures("taskmanager_crd")
NAME = "idle"
# A resync a second: many idle reconciles in a few seconds.
RESYNC_EVERY_SECOND = {"TASKMANAGER_OPERATOR_RESYNC_SECONDS": "1"}
WRITES = ("POST", "PUT", "PATCH", "DELETE")
IDLE_RECONCILES = 10
# Without backups an idle reconcile needs no request of its own. What is shared by every
# TaskManager and refreshed every 30 s (what the cluster serves, the Prometheus objects, the
# namespace's labels) may fall in the window once.
SHARED_REFRESHES = 6
# Long enough for the events of the restarted operator's first reconciles to be posted.
EVENTS_SETTLE_SECONDS = 5


def test_an_idle_taskmanagers_resyncs_write_nothing_and_read_almost_nothing(
    api_client: ApiClient, isolated_namespace: str
) -> None:
    namespace = isolated_namespace
    tms = TaskManagers(api_client, namespace)
    with operators(namespace, None, settings=RESYNC_EVERY_SECOND) as (operator,):
        tms.create(NAME, {})
        _settled(tms, NAME)
        first, before = operator.reconciles(namespace, NAME), operator.api_requests()
        # The metric counts: converging took reads and applies.
        assert before.get("GET", 0) > 0, before
        assert before.get("PATCH", 0) > 0, before
        wait_until(
            lambda: operator.reconciles(namespace, NAME) >= first + IDLE_RECONCILES,
            timeout=60,
            what=f"{IDLE_RECONCILES} idle resyncs",
        )
        after, reconciles = operator.api_requests(), operator.reconciles(namespace, NAME) - first
        spent = {method: after[method] - before.get(method, 0) for method in after}
        spent = {method: count for method, count in spent.items() if count}
        assert not [method for method in WRITES if method in spent], spent
        assert sum(spent.values()) <= SHARED_REFRESHES, f"{spent} in {reconciles:.0f} resyncs"


def _settled(tms: TaskManagers, name: str) -> None:
    tms.wait_phase(name, "Ready")
    wait_until(
        lambda: (tms.condition(name, "Progressing") or {}).get("status") == "False",
        timeout=60,
        what=f"the rollout of {name} to settle",
    )


def _children(dynamic: DynamicClient, namespace: str, owner_uid: str) -> list[str]:
    found = []
    for child in served_children(dynamic):
        resource = dynamic.resources.get(api_version=child.api_version, kind=child.kind)
        for item in resource.get(namespace=namespace).items:
            if any(ref.uid == owner_uid for ref in item.metadata.ownerReferences or []):
                found.append(f"{child.kind}/{item.metadata.name}")
    return found


def _reported(tms: TaskManagers, name: str) -> dict[str, int]:
    """How many Created and Updated events (each may list several children) the TaskManager has."""
    counts = {"Created": 0, "Updated": 0}
    for event in tms.events(name):
        if event.reason in counts:
            counts[event.reason] += event.count or 1
    return counts


def test_children_are_created_without_a_read_each_and_a_restart_reports_none(
    api_client: ApiClient, dynamic: DynamicClient, isolated_namespace: str
) -> None:
    namespace = isolated_namespace
    tms = TaskManagers(api_client, namespace)
    with operators(namespace, None) as (operator,):
        # The first one pays for what is shared (discovery, the namespace's labels).
        tms.create("first", {})
        _settled(tms, "first")
        before = operator.api_requests()
        tms.create("second", {})
        _settled(tms, "second")
        after = operator.api_requests()
    reads = after.get("GET", 0) - before.get("GET", 0)
    children = _children(dynamic, namespace, tms.get("second")["metadata"]["uid"])
    # Before the watches proved a child absent, each was read (404) before its apply.
    assert reads < len(children), f"{reads:.0f} GETs to converge {len(children)}: {children}"

    reported = _reported(tms, "second")
    assert reported["Created"] >= 1, reported
    with operators(namespace, None) as (restarted,):
        wait_until(
            lambda: restarted.reconciles(namespace, "second") >= 1,
            timeout=60,
            what="the restarted operator's first reconcile of the TaskManager",
        )
        _settled(tms, "second")
        # Every child was applied again (this process never applied them), and none changed:
        # the events a reconcile posts after it ends stay away too.
        holds_for(
            lambda: _reported(tms, "second") == reported,
            seconds=EVENTS_SETTLE_SECONDS,
            what=f"no Created or Updated event after the restart (before: {reported})",
        )
