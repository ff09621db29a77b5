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
API_REQUESTS = Counter(
    "taskmanager_operator_api_requests_total",
    "Requests the reconciles made to the Kubernetes API, by HTTP method (kopf's watches aside): "
    "with nothing to change they make no write and read little.",
    ["method"],
)
CACHED_OBJECTS = Gauge(
    "taskmanager_operator_cached_objects",
    "TaskManagers and children whose latest state the operator holds from its watches.",
)

BACKUPS = Counter(
    "taskmanager_operator_backups_total",
    "Backups of a TaskManager's database that finished, by result (completed, failed).",
    ["namespace", "name", "result"],
)
RESTORES = Counter(
    "taskmanager_operator_restores_total",
    "Restores into a TaskManager that finished, by result (completed, failed).",
    ["namespace", "name", "result"],
)
LAST_SUCCESSFUL_BACKUP = Gauge(
    "taskmanager_operator_last_successful_backup_timestamp_seconds",
    "When the TaskManager's newest completed backup completed (Unix time), as of its last "
    "reconcile (no series without one, nor on a standby replica).",
    ["namespace", "name"],
)
OUTCOMES = ("completed", "failed")


def clear_readings() -> None:
    """A standby's last readings would go stale: only the acting replica reports them."""
    TASKMANAGER_READY.clear()
    LAST_SUCCESSFUL_BACKUP.clear()


def forget(namespace: str, name: str) -> None:
    """Drop every series of a TaskManager that is gone, so none outlives it."""
    TASKMANAGER_READY.remove(namespace, name)
    RECONCILE_DURATION.remove(namespace, name)
    for result in ("success", "retry", "error"):
        RECONCILES.remove(namespace, name, result)
    for outcome in OUTCOMES:
        BACKUPS.remove(namespace, name, outcome)
        RESTORES.remove(namespace, name, outcome)
    LAST_SUCCESSFUL_BACKUP.remove(namespace, name)
