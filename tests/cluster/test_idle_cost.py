"""What an idle TaskManager costs the API server. Once it is Ready its resyncs write nothing, and
they read only what the watches do not carry: the TaskManager and its children come from the
operator's watch cache, and a child it applied and nobody touched since is not applied again.
Counted by the operator's own metric of its reconciles' requests, in a namespace where only this
test's operator acts."""

from __future__ import annotations

import pytest
from kubernetes.client import ApiClient

from tests.cluster.test_operator import TaskManagers
from tests.support.operator import operators
from tests.support.wait import wait_until

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


def test_an_idle_taskmanagers_resyncs_write_nothing_and_read_almost_nothing(
    api_client: ApiClient, isolated_namespace: str
) -> None:
    namespace = isolated_namespace
    tms = TaskManagers(api_client, namespace)
    with operators(namespace, None, settings=RESYNC_EVERY_SECOND) as (operator,):
        tms.create(NAME, {})
        tms.wait_phase(NAME, "Ready")
        wait_until(
            lambda: (tms.condition(NAME, "Progressing") or {}).get("status") == "False",
            timeout=60,
            what="the rollout to settle",
        )
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
