"""A managed PostgreSQL made before its headless Service existed names the ClusterIP Service as its
serviceName, which the API server never lets change. The reconcile replaces the StatefulSet with
its pod and volume orphaned; on the real API server and controllers the new one adopts both, so no
data goes: the volume claim keeps its uid, and the pod is the new StatefulSet's."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import ApiClient

from taskmanager_operator.api.v1alpha1 import GROUP, KIND, PLURAL, VERSION, TaskManagerSpec
from taskmanager_operator.builders import managed
from taskmanager_operator.builders.common import database_headless_name, database_name
from taskmanager_operator.k8s import Kube
from taskmanager_operator.reconcile.apply import Applier
from taskmanager_operator.reconcile.outcome import Event, Events
from taskmanager_operator.resource import TaskManager
from tests.support.wait import wait_until


@pytest.mark.usefixtures("taskmanager_crd")
def test_an_old_postgres_statefulset_is_replaced_keeping_its_volume_and_pod(
    api_client: ApiClient, namespace: str
) -> None:
    # A real owner (paused: an operator, if one runs, only writes its status), so the garbage
    # collector keeps what it owns.
    name = f"tm-{uuid.uuid4().hex[:6]}"
    body: dict[str, Any] = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {"name": name},
        "spec": {"paused": True},
    }
    created = client.CustomObjectsApi(api_client).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, body
    )
    tm = TaskManager(name, namespace, created["metadata"]["uid"], 1, TaskManagerSpec())
    kube, apps, core = Kube(api_client), client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    statefulset_name = database_name(tm)
    old = managed.build_postgres(tm)[0]
    old["spec"]["serviceName"] = statefulset_name
    kube.apply(old)
    claim_name, pod_name = f"data-{statefulset_name}-0", f"{statefulset_name}-0"

    def owned_claim() -> client.V1PersistentVolumeClaim | None:
        claim = core.read_namespaced_persistent_volume_claim(claim_name, namespace)
        owners = claim.metadata.owner_references or []
        return claim if any(o.kind == "StatefulSet" for o in owners) else None

    claim = wait_until(owned_claim, timeout=60, what="the volume claim, owned by the StatefulSet")
    wait_until(lambda: core.read_namespaced_pod(pod_name, namespace), timeout=60, what="the pod")

    # Each call is a reconcile's, with its own Events (which would tell a repeat only once).
    events: list[Event] = []
    workload = ("apps/v1", "StatefulSet", statefulset_name)
    services = [statefulset_name, database_headless_name(tm)]

    def replaced() -> bool:
        told = Events()
        Applier(kube, tm, told).managed(managed.build_postgres(tm), workload, services)
        events.extend(told)
        current = apps.read_namespaced_stateful_set(statefulset_name, namespace)
        return bool(current.spec.service_name == database_headless_name(tm))

    wait_until(replaced, timeout=120, interval=1, what="the StatefulSet to name the headless one")
    assert [e.reason for e in events].count("Replacing") == 1, events
    new_uid = apps.read_namespaced_stateful_set(statefulset_name, namespace).metadata.uid

    def adopted(read: Any, uid: str | None = None) -> bool:
        found = read()
        owners = found.metadata.owner_references or []
        return any(o.uid == new_uid for o in owners) and uid in {None, found.metadata.uid}

    wait_until(
        lambda: adopted(
            lambda: core.read_namespaced_persistent_volume_claim(claim_name, namespace),
            claim.metadata.uid,
        ),
        timeout=60,
        what="the same volume claim, owned by the new StatefulSet",
    )
    # Adopted as it is, or (had its revision changed) made anew on the same claim.
    wait_until(
        lambda: adopted(lambda: core.read_namespaced_pod(pod_name, namespace)),
        timeout=60,
        what="the pod, owned by the new StatefulSet",
    )
