"""HorizontalPodAutoscaler and PodDisruptionBudget for the API."""

from __future__ import annotations

from typing import Any

from taskmanager_operator.api.v1alpha1 import to_manifest
from taskmanager_operator.builders.common import (
    API,
    Capabilities,
    Manifest,
    api_name,
    metadata,
    selector_labels,
)
from taskmanager_operator.resource import TaskManager

# The Pods metric of the custom metrics API that the autoscaler can scale on: the per-pod rate
# of taskmanager_http_requests_total, as an adapter (prometheus-adapter) serves it; the rule that
# makes it is in docs/monitoring.md.
REQUESTS_PER_SECOND_METRIC = "taskmanager_http_requests_per_second"
CUSTOM_METRICS_API = "custom.metrics.k8s.io/v1beta2"


def request_rate_metric_wanted(tm: TaskManager) -> bool:
    autoscaling = tm.spec.autoscaling
    return autoscaling.enabled and autoscaling.target_requests_per_second is not None


def request_rate_metric_served(capabilities: Capabilities) -> bool:
    return f"pods/{REQUESTS_PER_SECOND_METRIC}" in capabilities.pod_metrics


def build_hpa(tm: TaskManager, capabilities: Capabilities) -> Manifest | None:
    """CPU, memory, and the request rate while the custom metrics API serves it: an autoscaler
    with a metric it cannot read stops scaling down."""
    autoscaling = tm.spec.autoscaling
    if not autoscaling.enabled:
        return None

    def utilization(resource: str, percent: int) -> dict[str, Any]:
        return {
            "type": "Resource",
            "resource": {
                "name": resource,
                "target": {"type": "Utilization", "averageUtilization": percent},
            },
        }

    metrics = [utilization("cpu", autoscaling.target_cpu_utilization_percentage)]
    if autoscaling.target_memory_utilization_percentage is not None:
        metrics.append(utilization("memory", autoscaling.target_memory_utilization_percentage))
    if request_rate_metric_wanted(tm) and request_rate_metric_served(capabilities):
        metrics.append(
            {
                "type": "Pods",
                "pods": {
                    "metric": {"name": REQUESTS_PER_SECOND_METRIC},
                    "target": {
                        "type": "AverageValue",
                        "averageValue": str(autoscaling.target_requests_per_second),
                    },
                },
            }
        )
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(tm, api_name(tm), API),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": api_name(tm)},
            "minReplicas": autoscaling.min_replicas,
            "maxReplicas": autoscaling.max_replicas,
            "metrics": metrics,
            # The same shape as the HPA's: spec.autoscaling.behavior is written as it is.
            "behavior": to_manifest(autoscaling.behavior),
        },
    }


def max_api_replicas(tm: TaskManager) -> int:
    spec = tm.spec
    return spec.autoscaling.max_replicas if spec.autoscaling.enabled else spec.replicas


def build_pdb(tm: TaskManager) -> Manifest | None:
    """Only when more than one pod can run: with one, a budget would block every node drain."""
    if max_api_replicas(tm) <= 1:
        return None
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(tm, api_name(tm), API),
        "spec": {
            "maxUnavailable": tm.spec.pod_disruption_budget.max_unavailable,
            "selector": {"matchLabels": selector_labels(tm, API)},
        },
    }
