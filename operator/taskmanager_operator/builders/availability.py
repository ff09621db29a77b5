"""HorizontalPodAutoscaler and PodDisruptionBudget for the API."""

from __future__ import annotations

from typing import Any

from taskmanager_operator.builders.common import (
    API,
    Manifest,
    api_name,
    metadata,
    selector_labels,
)
from taskmanager_operator.resource import TaskManager


def build_hpa(tm: TaskManager) -> Manifest | None:
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
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(tm, api_name(tm), API),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": api_name(tm)},
            "minReplicas": autoscaling.min_replicas,
            "maxReplicas": autoscaling.max_replicas,
            "metrics": metrics,
            "behavior": {
                "scaleDown": {
                    "stabilizationWindowSeconds": autoscaling.scale_down_stabilization_seconds
                }
            },
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
