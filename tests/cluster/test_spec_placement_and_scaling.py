"""The real operator on the local cluster: spec.podTemplate, spec.imagePullSecrets and the API's
ServiceAccount reach the API pods, spec.autoscaling.behavior reaches the HPA, a changed
podTemplate rolls the pods, and spec.serviceAccountName replaces the operator's ServiceAccount."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from taskmanager_operator.api.v1alpha1 import GROUP, KIND, PLURAL, VERSION
from tests.cluster.test_operator import TaskManagers, is_gone, tms
from tests.support.wait import wait_until
from tests.unit.test_pod_template_and_hpa_behavior import DEFAULT_BEHAVIOR, scaling_rules

__all__ = ["tms"]

pytestmark = pytest.mark.usefixtures("operator")

MESH_LABELS = {"sidecar.istio.io/inject": "false", "team": "payments"}
INJECTOR_ANNOTATIONS = {"vault.hashicorp.com/agent-inject": "false"}
PULL_SECRET = "registry-creds"
WORKLOAD_IDENTITY = "tasks-workload-identity"


def api_selector(name: str) -> str:
    return f"app.kubernetes.io/instance={name},app.kubernetes.io/component=api"


def api_pods(tms: TaskManagers, name: str) -> list[Any]:
    """The API pods that are not on their way out."""
    pods = tms.core.list_namespaced_pod(tms.namespace, label_selector=api_selector(name)).items
    return [pod for pod in pods if pod.metadata.deletion_timestamp is None]


def replica_sets(tms: TaskManagers, name: str) -> dict[str, Any]:
    listed = tms.apps.list_namespaced_replica_set(
        tms.namespace, label_selector=api_selector(name)
    ).items
    return {rs.metadata.name: rs for rs in listed}


def test_the_hpa_carries_the_behavior(api_client: ApiClient, tms: TaskManagers) -> None:
    scale_down = scaling_rules(600, "Min", ("Pods", 1, 120), ("Percent", 10, 60))
    tms.create("elastic", {"autoscaling": {"enabled": True, "behavior": {"scaleDown": scale_down}}})
    hpa = wait_until(
        lambda: client.AutoscalingV2Api(api_client).read_namespaced_horizontal_pod_autoscaler(
            "elastic-api", tms.namespace
        ),
        timeout=30,
        what="the HPA",
    )
    behavior = api_client.sanitize_for_serialization(hpa.spec.behavior)
    assert behavior["scaleDown"] == scale_down
    # The direction left out keeps its defaults: double, or add 2 pods, a minute.
    assert behavior["scaleUp"] == DEFAULT_BEHAVIOR["scaleUp"]
    tms.wait_phase("elastic", "Ready")


def test_the_api_pods_carry_the_pod_template_pull_secrets_and_our_service_account(
    tms: TaskManagers,
) -> None:
    tms.create(
        "placed",
        {
            "podTemplate": {"labels": MESH_LABELS, "annotations": INJECTOR_ANNOTATIONS},
            "imagePullSecrets": [{"name": PULL_SECRET}],
        },
    )
    tms.wait_phase("placed", "Ready")

    account = tms.core.read_namespaced_service_account("placed-api", tms.namespace)
    assert account.automount_service_account_token is False
    assert [(o.kind, o.name) for o in account.metadata.owner_references] == [
        ("TaskManager", "placed")
    ]
    pods = api_pods(tms, "placed")
    assert len(pods) == 2
    for pod in pods:
        assert MESH_LABELS.items() <= pod.metadata.labels.items(), pod.metadata.name
        assert INJECTOR_ANNOTATIONS.items() <= pod.metadata.annotations.items()
        assert "taskmanager.dev/rollout-checksum" in pod.metadata.annotations
        assert [s.name for s in pod.spec.image_pull_secrets] == [PULL_SECRET]
        assert pod.spec.service_account_name == "placed-api"
        assert pod.spec.automount_service_account_token is False
    jobs = client.BatchV1Api(tms.apps.api_client).list_namespaced_job(tms.namespace).items
    (job,) = [job for job in jobs if job.metadata.name.startswith("placed-migrate-")]
    assert job.spec.template.spec.service_account_name == "placed-api"
    assert [s.name for s in job.spec.template.spec.image_pull_secrets] == [PULL_SECRET]
    postgres = tms.apps.read_namespaced_stateful_set("placed-postgres", tms.namespace)
    assert [s.name for s in postgres.spec.template.spec.image_pull_secrets] == [PULL_SECRET]


def test_a_changed_pod_template_annotation_rolls_the_pods(tms: TaskManagers) -> None:
    tms.create("rolled", {"podTemplate": {"annotations": {"example.com/revision": "1"}}})
    tms.wait_phase("rolled", "Ready")
    before = set(replica_sets(tms, "rolled"))
    old_pods = {pod.metadata.name for pod in api_pods(tms, "rolled")}

    tms.patch_spec("rolled", {"podTemplate": {"annotations": {"example.com/revision": "2"}}})

    def rolled_out() -> bool:
        pods = api_pods(tms, "rolled")
        revisions = {pod.metadata.annotations.get("example.com/revision") for pod in pods}
        return (
            len(pods) == 2
            and revisions == {"2"}
            and all(
                any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
                for pod in pods
            )
        )

    wait_until(rolled_out, timeout=120, what="the API pods to be replaced by revision 2's")
    new = set(replica_sets(tms, "rolled")) - before
    assert len(new) == 1, (
        f"one new ReplicaSet: before {before}, now {set(replica_sets(tms, 'rolled'))}"
    )
    assert not old_pods & {pod.metadata.name for pod in api_pods(tms, "rolled")}
    tms.wait_phase("rolled", "Ready")


def test_setting_service_account_name_removes_ours(tms: TaskManagers) -> None:
    tms.create("identity", {})
    tms.wait_phase("identity", "Ready")
    assert tms.core.read_namespaced_service_account("identity-api", tms.namespace)
    tms.core.create_namespaced_service_account(
        tms.namespace,
        {"metadata": {"name": WORKLOAD_IDENTITY}, "automountServiceAccountToken": False},
    )

    tms.patch_spec("identity", {"serviceAccountName": WORKLOAD_IDENTITY})

    wait_until(
        lambda: is_gone(
            lambda: tms.core.read_namespaced_service_account("identity-api", tms.namespace)
        ),
        timeout=30,
        what="the operator's ServiceAccount to be deleted",
    )
    wait_until(
        lambda: (
            (pods := api_pods(tms, "identity"))
            and all(pod.spec.service_account_name == WORKLOAD_IDENTITY for pod in pods)
        ),
        timeout=120,
        what=f"the API pods to run as {WORKLOAD_IDENTITY}",
    )
    tms.wait_phase("identity", "Ready")
    tms.wait_event("identity", "Deleted", "Normal")
    assert tms.core.read_namespaced_service_account(WORKLOAD_IDENTITY, tms.namespace)


def test_our_service_accounts_name_is_refused_as_service_account_name(
    api_client: ApiClient, namespace: str
) -> None:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {"name": "demo"},
        "spec": {"serviceAccountName": "demo-api"},
    }
    with pytest.raises(ApiException) as rejected:
        client.CustomObjectsApi(api_client).create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, body, dry_run="All"
        )
    message = json.loads(rejected.value.body)["message"]
    assert "spec.serviceAccountName must not be <metadata.name>-api" in message
