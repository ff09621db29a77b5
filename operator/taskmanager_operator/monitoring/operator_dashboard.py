"""The operator's own Grafana dashboard: reconciles, their durations, the queue, TaskManagers Ready.

Built from the same rows and panels as a TaskManager's dashboard (monitoring.dashboard). The
operator to show is a `job` variable, listed from the series only the operator exports, so the one
dashboard (uid `taskmanager-operator`) serves whichever release scrapes it. Per-TaskManager series
carry the TaskManager's `namespace` and `name` (the chart's ServiceMonitor honors them).
"""

from __future__ import annotations

from typing import Any

from taskmanager_operator.monitoring.grafana import (
    DATASOURCE,
    RATE,
    Panel,
    Query,
    Row,
    grafana_json,
)

UID = "taskmanager-operator"
TITLE = "TaskManager operator"
TAGS = ["taskmanager", "taskmanager-operator"]
JOB = 'job=~"$job"'
RECONCILES = "taskmanager_operator_reconciles_total"
DURATION_BUCKETS = "taskmanager_operator_reconcile_duration_seconds_bucket"
QUEUE_DEPTH = "taskmanager_operator_queue_depth"
READY = "taskmanager_operator_taskmanager_ready"
# The variable's choices: the jobs that export the operator's queue depth.
JOB_VARIABLE_QUERY = f"label_values({QUEUE_DEPTH}, job)"


def _ready(value: int) -> str:
    """How many TaskManagers report Ready (1) or not (0); 0 rather than no data when none do."""
    return f"count(max by (namespace, name) ({READY}{{{JOB}}}) == {value}) or vector(0)"


def _duration(quantile: float, window: str, by: str = "") -> str:
    labels = ", ".join(label for label in ("le", by) if label)
    return (
        f"histogram_quantile({quantile:g}, sum by ({labels}) "
        f"(rate({DURATION_BUCKETS}{{{JOB}}}[{window}])))"
    )


def rows() -> list[Row]:
    overview = Row(
        "Overview",
        (
            Panel(
                "Replicas up",
                "stat",
                (Query(f"sum(up{{{JOB}}})", "up"), Query(f"count(up{{{JOB}}})", "scraped")),
                description="Operator pods scraped successfully, of those Prometheus scrapes "
                "(one leads, the others stand by).",
                width=4,
            ),
            Panel(
                "TaskManagers Ready",
                "stat",
                (Query(_ready(1)),),
                width=4,
                thresholds=((0, "green"),),
            ),
            Panel(
                "TaskManagers not Ready",
                "stat",
                (Query(_ready(0)),),
                width=4,
                thresholds=((0, "green"), (1, "orange")),
            ),
            Panel(
                "Reconcile errors",
                "stat",
                (Query(f'sum(rate({RECONCILES}{{{JOB}, result="error"}}[5m])) or vector(0)'),),
                description="Failed reconciles per second over 5 minutes.",
                width=4,
                thresholds=((0, "green"), (0.001, "orange")),
            ),
            Panel(
                "p95 reconcile duration",
                "stat",
                (Query(_duration(0.95, "5m")),),
                "s",
                width=4,
                thresholds=((0, "green"), (10, "orange")),
            ),
            Panel(
                "Queue depth",
                "stat",
                (Query(f"max({QUEUE_DEPTH}{{{JOB}}})"),),
                description="TaskManagers waiting for a reconcile worker of the leading replica.",
                width=4,
                thresholds=((0, "green"), (10, "orange")),
            ),
        ),
    )
    reconciles = Row(
        "Reconciles",
        (
            Panel(
                "Reconciles per second by result",
                "timeseries",
                (
                    Query(
                        f"sum by (result) (rate({RECONCILES}{{{JOB}}}[{RATE}]))",
                        "{{result}}",
                    ),
                ),
                description="success: converged or converging; retry: waiting on something "
                "that may heal (backoff); error: the reconcile raised.",
                width=12,
            ),
            Panel(
                "Reconcile duration",
                "timeseries",
                tuple(
                    Query(_duration(quantile, RATE), f"p{quantile * 100:g}")
                    for quantile in (0.5, 0.95, 0.99)
                ),
                "s",
                width=12,
            ),
            Panel(
                "Errors by TaskManager",
                "timeseries",
                (
                    Query(
                        "sum by (namespace, name) "
                        f'(rate({RECONCILES}{{{JOB}, result="error"}}[{RATE}])) > 0',
                        "{{namespace}}/{{name}}",
                    ),
                ),
                width=12,
            ),
            Panel(
                "Slowest TaskManagers (p95)",
                "timeseries",
                (
                    Query(
                        f"topk(10, {_duration(0.95, RATE, by='namespace, name')})",
                        "{{namespace}}/{{name}}",
                    ),
                ),
                "s",
                width=12,
            ),
        ),
    )
    taskmanagers = Row(
        "Queue and TaskManagers",
        (
            Panel(
                "Queue depth",
                "timeseries",
                (Query(f"max by (instance) ({QUEUE_DEPTH}{{{JOB}}})", "{{instance}}"),),
                description="A replica that is not leading reports 0.",
            ),
            Panel(
                "TaskManagers Ready vs not Ready",
                "timeseries",
                (Query(_ready(1), "Ready"), Query(_ready(0), "not Ready")),
            ),
            Panel(
                "TaskManagers not Ready",
                "timeseries",
                (
                    Query(
                        f"max by (namespace, name) ({READY}{{{JOB}}}) == 0",
                        "{{namespace}}/{{name}}",
                    ),
                ),
                description="Each TaskManager whose Ready condition is not True.",
            ),
            Panel(
                "Up",
                "timeseries",
                (Query(f"up{{{JOB}}}", "{{instance}}"),),
                width=24,
            ),
        ),
    )
    return [overview, reconciles, taskmanagers]


def queries() -> list[Query]:
    return [query for row in rows() for panel in row.panels for query in panel.queries]


def build() -> dict[str, Any]:
    """The operator's dashboard as Grafana imports it."""
    model = grafana_json(UID, TITLE, TAGS, rows())
    model["templating"]["list"].append(
        {
            "name": "job",
            "label": "Operator",
            "type": "query",
            "datasource": DATASOURCE,
            "query": JOB_VARIABLE_QUERY,
            "definition": JOB_VARIABLE_QUERY,
            # Refresh the choices when the dashboard loads.
            "refresh": 1,
            "sort": 1,
            "includeAll": False,
            "multi": False,
            "current": {},
            "hide": 0,
        }
    )
    return model
