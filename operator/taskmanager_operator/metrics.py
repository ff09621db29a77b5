"""The operator's own Prometheus metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECONCILES = Counter(
    "taskmanager_operator_reconciles_total",
    "Reconciles of TaskManagers, by resource and result (success, retry, error).",
    ["namespace", "name", "result"],
)
RECONCILE_DURATION = Histogram(
    "taskmanager_operator_reconcile_duration_seconds",
    "Time one reconcile of a TaskManager took.",
    ["namespace", "name"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
QUEUE_DEPTH = Gauge(
    "taskmanager_operator_queue_depth", "TaskManagers waiting for a reconcile worker."
)
TASKMANAGER_READY = Gauge(
    "taskmanager_operator_taskmanager_ready",
    "1 while the TaskManager's Ready condition is True, 0 otherwise, as of its last reconcile "
    "(no series once it is deleted, nor on a standby replica).",
    ["namespace", "name"],
)


def forget(namespace: str, name: str) -> None:
    """Drop every series of a TaskManager that is gone, so none outlives it."""
    TASKMANAGER_READY.remove(namespace, name)
    RECONCILE_DURATION.remove(namespace, name)
    for result in ("success", "retry", "error"):
        RECONCILES.remove(namespace, name, result)
