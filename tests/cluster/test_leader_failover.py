"""Two replicas, the leader SIGKILLed: the other acts within the Lease's duration plus 5 s, and
the two never act at once (each replica's own count of its reconciles, and the Lease's holder)."""

from __future__ import annotations

import time

import pytest
from kubernetes import client
from kubernetes.client import ApiClient

from taskmanager_operator.leadership import LEASE_NAME
from tests.cluster.test_operator import TaskManagers
from tests.support.operator import ELECTION, OperatorProcess, operators
from tests.support.wait import wait_until

pytestmark = pytest.mark.usefixtures("taskmanager_crd")
NAME = "failover"
LEASE_SECONDS = float(ELECTION["TASKMANAGER_OPERATOR_LEASE_SECONDS"])
# A standby replica keeps every key and reconciles them the moment it leads; poll often.
RESYNC_EVERY_SECOND = {"TASKMANAGER_OPERATOR_RESYNC_SECONDS": "1"}


def holder(api_client: ApiClient, namespace: str) -> str | None:
    lease = client.CoordinationV1Api(api_client).read_namespaced_lease(LEASE_NAME, namespace)
    return str(lease.spec.holder_identity) if lease.spec.holder_identity else None


def test_the_standby_takes_over_within_the_lease_and_never_acts_alongside(
    api_client: ApiClient, isolated_namespace: str
) -> None:
    namespace = isolated_namespace
    tms = TaskManagers(api_client, namespace)
    with operators(namespace, None, replicas=2, settings=RESYNC_EVERY_SECOND) as replicas:
        tms.create(NAME, {})
        tms.wait_phase(NAME, "Ready")

        def counts() -> dict[OperatorProcess, float]:
            return {replica: replica.reconciles(namespace, NAME) for replica in replicas}

        # Resyncs every second: the leader's count grows, the standby's stays at 0.
        first = counts()
        wait_until(
            lambda: max(counts().values()) >= max(first.values()) + 3,
            timeout=30,
            what="the leader's resyncs",
        )
        settled = counts()
        leader = max(settled, key=lambda replica: settled[replica])
        (standby,) = (replica for replica in replicas if replica is not leader)
        assert standby.reconciles(namespace, NAME) == 0, "the standby acted while a leader led"
        held_by = holder(api_client, namespace)

        leader.process.kill()
        killed = time.monotonic()
        leader.process.wait()
        wait_until(
            lambda: standby.reconciles(namespace, NAME) > 0,
            timeout=LEASE_SECONDS + 5,
            what="the standby to act within the Lease's duration + 5 s",
        )
        took = time.monotonic() - killed
        new_holder = holder(api_client, namespace)
        assert new_holder is not None
        assert new_holder != held_by
        # The one that acts now is the one the Lease names, and it acts within the bound.
        assert f"leading as {new_holder} " in standby.log_tail(200), standby.log_tail(20)
        assert took <= LEASE_SECONDS + 5, took
        tms.patch_spec(NAME, {"replicas": 3})
        wait_until(
            lambda: tms.get(NAME)["status"].get("replicas") == 3,
            timeout=30,
            what="the new leader to apply a change",
        )
