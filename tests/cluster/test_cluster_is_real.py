"""Proof that the local cluster is a real Kubernetes: the controllers, admission, server-side apply,
garbage collection and the metrics pipeline all act, through the official Python client."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.utils import parse_quantity

from tests.support.wait import wait_until


def deployment(
    name: str, replicas: int, annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels, "annotations": annotations or {}},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "registry.invalid/app:1",
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "64Mi"},
                                "limits": {"memory": "128Mi"},
                            },
                        }
                    ]
                },
            },
        },
    }


def test_a_deployment_gets_its_replicas_ready(api_client: ApiClient, namespace: str) -> None:
    apps = client.AppsV1Api(api_client)
    core = client.CoreV1Api(api_client)
    apps.create_namespaced_deployment(namespace, deployment("web", replicas=2))

    wait_until(
        lambda: apps.read_namespaced_deployment_status("web", namespace).status.ready_replicas == 2,
        timeout=60,
        what="Deployment web to have 2 ready replicas",
    )
    pods = core.list_namespaced_pod(namespace, label_selector="app=web").items
    ready = [
        pod.metadata.name
        for pod in pods
        if pod.status.phase == "Running"
        and any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
    ]
    assert len(ready) == 2, f"expected 2 Ready pods, got {ready} of {len(pods)}"
    assert all(pod.spec.node_name for pod in pods), "the scheduler placed every pod on a node"


def test_a_cronjob_creates_a_job_that_completes(api_client: ApiClient, namespace: str) -> None:
    batch = client.BatchV1Api(api_client)
    batch.create_namespaced_cron_job(
        namespace,
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {"name": "tick"},
            "spec": {
                "schedule": "* * * * *",
                "concurrencyPolicy": "Forbid",
                "jobTemplate": {
                    "spec": {
                        "template": {
                            "spec": {
                                "restartPolicy": "Never",
                                "containers": [
                                    {"name": "tick", "image": "registry.invalid/tick:1"}
                                ],
                            }
                        }
                    }
                },
            },
        },
    )

    def completed_job() -> str | None:
        for job in batch.list_namespaced_job(namespace).items:
            owners = job.metadata.owner_references or []
            complete = any(
                c.type == "Complete" and c.status == "True" for c in job.status.conditions or []
            )
            if complete and any(o.kind == "CronJob" and o.name == "tick" for o in owners):
                return str(job.metadata.name)
        return None

    # The schedule fires at the next full minute; the Job's pod then completes (kwok's stage).
    job_name = wait_until(completed_job, timeout=150, interval=2, what="a completed Job of tick")
    job = batch.read_namespaced_job_status(job_name, namespace)
    assert job.status.succeeded == 1


@pytest.fixture
def crd_with_cel_rule(api_client: ApiClient) -> Iterator[tuple[str, str]]:
    group, plural = "tests.taskmanager.dev", f"ranges{uuid.uuid4().hex[:8]}"
    extensions = client.ApiextensionsV1Api(api_client)
    name = f"{plural}.{group}"
    extensions.create_custom_resource_definition(
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": name},
            "spec": {
                "group": group,
                "scope": "Namespaced",
                "names": {"plural": plural, "singular": plural[:-1], "kind": "Range" + plural[6:]},
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "schema": {
                            "openAPIV3Schema": {
                                "type": "object",
                                "properties": {
                                    "spec": {
                                        "type": "object",
                                        "required": ["min", "max"],
                                        "properties": {
                                            "min": {"type": "integer"},
                                            "max": {"type": "integer"},
                                        },
                                        "x-kubernetes-validations": [
                                            {
                                                "rule": "self.min <= self.max",
                                                "message": "spec.min must not exceed spec.max",
                                            }
                                        ],
                                    }
                                },
                            }
                        },
                    }
                ],
            },
        }
    )

    def established() -> bool:
        crd = extensions.read_custom_resource_definition(name)
        conditions = crd.status.conditions or []
        return any(c.type == "Established" and c.status == "True" for c in conditions)

    wait_until(established, timeout=30, what=f"CRD {name} to be Established")
    yield group, plural
    extensions.delete_custom_resource_definition(name)


def test_a_cel_rule_rejects_a_bad_object_with_its_message(
    api_client: ApiClient, namespace: str, crd_with_cel_rule: tuple[str, str]
) -> None:
    group, plural = crd_with_cel_rule
    custom = client.CustomObjectsApi(api_client)
    kind = "Range" + plural[6:]

    def body(name: str, low: int, high: int) -> dict[str, Any]:
        return {
            "apiVersion": f"{group}/v1",
            "kind": kind,
            "metadata": {"name": name},
            "spec": {"min": low, "max": high},
        }

    # The new CRD's discovery may lag its Established condition by a moment.
    wait_until(
        lambda: custom.create_namespaced_custom_object(
            group, "v1", namespace, plural, body("good", 1, 2)
        ),
        timeout=30,
        what="a valid object to be accepted",
    )
    with pytest.raises(ApiException) as rejected:
        custom.create_namespaced_custom_object(group, "v1", namespace, plural, body("bad", 3, 2))
    assert rejected.value.status == 422
    assert "spec.min must not exceed spec.max" in str(rejected.value.body)
    with pytest.raises(ApiException) as missing:
        custom.get_namespaced_custom_object(group, "v1", namespace, plural, "bad")
    assert missing.value.status == 404


def test_server_side_apply_of_the_same_object_writes_nothing(
    dynamic: DynamicClient, namespace: str
) -> None:
    configmaps = dynamic.resources.get(api_version="v1", kind="ConfigMap")
    manifest = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": namespace},
        "data": {"LOG_LEVEL": "info"},
    }

    def apply(body: dict[str, Any]) -> str:
        applied = configmaps.server_side_apply(
            body=body, namespace=namespace, field_manager="taskmanager-tests"
        )
        return str(applied.metadata.resourceVersion)

    first = apply(manifest)
    assert apply(manifest) == first, "re-applying an unchanged object must not write"
    changed = apply({**manifest, "data": {"LOG_LEVEL": "debug"}})
    assert changed != first, "applying a change must write"
    managers = configmaps.get(name="settings", namespace=namespace).metadata.managedFields
    assert [m["manager"] for m in managers] == ["taskmanager-tests"]


def test_deleting_an_owner_garbage_collects_its_dependents(
    api_client: ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api_client)
    owner = core.create_namespaced_config_map(namespace, {"metadata": {"name": "owner"}})
    core.create_namespaced_config_map(
        namespace,
        {
            "metadata": {
                "name": "dependent",
                "ownerReferences": [
                    {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "name": "owner",
                        "uid": owner.metadata.uid,
                    }
                ],
            }
        },
    )
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "bystander"}})

    core.delete_namespaced_config_map("owner", namespace, propagation_policy="Background")

    def dependent_is_gone() -> bool:
        try:
            core.read_namespaced_config_map("dependent", namespace)
        except ApiException as error:
            if error.status == 404:
                return True
            raise
        return False

    wait_until(dependent_is_gone, timeout=60, what="the dependent ConfigMap to be collected")
    assert core.read_namespaced_config_map("bystander", namespace).metadata.name == "bystander"


def test_an_hpa_reads_metrics_and_scales_up_under_load(
    api_client: ApiClient, namespace: str
) -> None:
    apps = client.AppsV1Api(api_client)
    core = client.CoreV1Api(api_client)
    custom = client.CustomObjectsApi(api_client)
    autoscaling = client.AutoscalingV2Api(api_client)
    # kwok reports each pod's usage from these annotations (10 % of the 100m request here).
    apps.create_namespaced_deployment(
        namespace, deployment("busy", replicas=1, annotations={"kwok.x-k8s.io/usage-cpu": "10m"})
    )
    autoscaling.create_namespaced_horizontal_pod_autoscaler(
        namespace,
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "busy"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "busy"},
                "minReplicas": 1,
                "maxReplicas": 4,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": 50},
                        },
                    }
                ],
            },
        },
    )

    def pod_metrics() -> list[dict[str, Any]]:
        listing = custom.list_namespaced_custom_object(
            "metrics.k8s.io", "v1beta1", namespace, "pods"
        )
        items: list[dict[str, Any]] = listing["items"]
        return items

    metrics = wait_until(pod_metrics, timeout=120, interval=2, what="metrics.k8s.io pod metrics")
    cpu = parse_quantity(metrics[0]["containers"][0]["usage"]["cpu"])
    assert Decimal("0.005") <= cpu <= Decimal("0.02"), f"simulated usage 10m, metrics say {cpu}"

    def current_utilization() -> int | None:
        status = autoscaling.read_namespaced_horizontal_pod_autoscaler_status(
            "busy", namespace
        ).status
        for metric in status.current_metrics or []:
            if metric.resource and metric.resource.name == "cpu":
                return int(metric.resource.current.average_utilization)
        return None

    utilization = wait_until(
        current_utilization, timeout=120, interval=2, what="the HPA to read CPU utilization"
    )
    assert utilization <= 20, f"idle pods at 10m of 100m, but the HPA read {utilization} %"
    assert apps.read_namespaced_deployment("busy", namespace).spec.replicas == 1

    # Raise the running pods' simulated usage to twice their request.
    for pod in core.list_namespaced_pod(namespace, label_selector="app=busy").items:
        core.patch_namespaced_pod(
            pod.metadata.name,
            namespace,
            {"metadata": {"annotations": {"kwok.x-k8s.io/usage-cpu": "200m"}}},
        )

    scaled = wait_until(
        lambda: (
            (replicas := apps.read_namespaced_deployment("busy", namespace).spec.replicas) > 1
            and replicas
        ),
        timeout=180,
        interval=2,
        what="the HPA to scale the Deployment up",
    )
    assert 1 < scaled <= 4
