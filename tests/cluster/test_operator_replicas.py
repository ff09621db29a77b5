"""Two operator replicas: one holds the Lease and acts, the other waits and takes over when the
first one stops."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client import ApiClient

from taskmanager_operator.api.v1alpha1 import GROUP, PLURAL, VERSION
from tests.cluster.conftest import fresh_namespace
from tests.support.operator import ELECTION, OperatorProcess, run_operator
from tests.support.wait import wait_until

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def ha_namespace(api_client: ApiClient) -> Iterator[str]:
    # Outside the session operator's `test-*` namespaces, so only the two replicas act here.
    with fresh_namespace(api_client, "ha-") as name:
        yield name


def phase(custom: client.CustomObjectsApi, namespace: str, name: str) -> str | None:
    body = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    return (body.get("status") or {}).get("phase")


@pytest.mark.usefixtures("taskmanager_crd")
def test_only_the_elected_replica_acts_and_the_other_takes_over(
    api_client: ApiClient, ha_namespace: str
) -> None:
    kubeconfig = Path(os.environ.get("KUBECONFIG") or REPO / ".local" / "kubeconfig")
    custom = client.CustomObjectsApi(api_client)
    env = {**ELECTION, "TASKMANAGER_OPERATOR_LEADER_ELECTION_NAMESPACE": ha_namespace}
    args = ("--namespace", ha_namespace)

    def create(name: str) -> None:
        custom.create_namespaced_custom_object(
            GROUP,
            VERSION,
            ha_namespace,
            PLURAL,
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "TaskManager",
                "metadata": {"name": name},
                "spec": {},
            },
        )

    with (
        run_operator(kubeconfig, *args, env=env) as first,
        run_operator(kubeconfig, *args, env=env) as second,
    ):
        create("one")
        wait_until(
            lambda: phase(custom, ha_namespace, "one") == "Ready",
            timeout=60,
            what="TaskManager one to be Ready",
        )
        counts = {p: p.reconciles(ha_namespace, "one") for p in (first, second)}
        assert sorted(counts.values())[0] == 0, f"both replicas reconciled: {counts}"
        leader: OperatorProcess = max(counts, key=lambda p: counts[p])
        follower = second if leader is first else first
        lease = client.CoordinationV1Api(api_client).read_namespaced_lease(
            "taskmanager-operator", ha_namespace
        )
        assert lease.spec.holder_identity

        leader.process.terminate()
        leader.process.wait(timeout=30)
        create("two")
        wait_until(
            lambda: phase(custom, ha_namespace, "two") == "Ready",
            timeout=60,
            what="the remaining replica to take over and make TaskManager two Ready",
        )
        assert follower.reconciles(ha_namespace, "two") > 0
