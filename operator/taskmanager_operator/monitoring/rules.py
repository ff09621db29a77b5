"""The recording and alerting rules of one TaskManager, as prometheus-operator's rule groups.

Recording rules keep each SLI over the windows of the burn-rate alerts, so the alerts and the
dashboard read one precomputed series instead of re-scanning days of raw samples. Every alert has
a `severity`, a `summary`, a `description` and a `runbook_url` to docs/runbooks/<Alert>.md;
ALERT_NAMES is the list the runbooks test reads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from taskmanager_api import metric_contract as contract
from taskmanager_operator.api.v1alpha1 import Monitoring
from taskmanager_operator.monitoring import series
from taskmanager_operator.monitoring.series import Scope

API_DOWN = "TaskManagerAPIDown"
ERROR_BUDGET_BURN = "TaskManagerErrorBudgetBurn"
LATENCY_BUDGET_BURN = "TaskManagerLatencyBudgetBurn"
HIGH_ERROR_RATE = "TaskManagerHighErrorRate"
HIGH_LATENCY = "TaskManagerHighLatency"
DATABASE_UNREACHABLE = "TaskManagerDatabaseUnreachable"
REDIS_UNREACHABLE = "TaskManagerRedisUnreachable"
DB_POOL_SATURATED = "TaskManagerDatabasePoolSaturated"
PODS_RESTARTING = "TaskManagerPodsRestarting"
MEMORY_NEAR_LIMIT = "TaskManagerMemoryNearLimit"
CPU_THROTTLED = "TaskManagerCPUThrottled"
AUTOSCALER_AT_MAXIMUM = "TaskManagerAutoscalerAtMaximum"
ALERT_NAMES = (
    API_DOWN,
    ERROR_BUDGET_BURN,
    LATENCY_BUDGET_BURN,
    HIGH_ERROR_RATE,
    HIGH_LATENCY,
    DATABASE_UNREACHABLE,
    REDIS_UNREACHABLE,
    DB_POOL_SATURATED,
    PODS_RESTARTING,
    MEMORY_NEAR_LIMIT,
    CPU_THROTTLED,
    AUTOSCALER_AT_MAXIMUM,
)

# Multiwindow, multi-burn-rate alerting (the Google SRE workbook, chapter 5): the long window
# proves the burn is sustained, the short one that it is still going on, so an alert resets soon
# after the burn stops. (long window, short window, burn rate), by severity.
PAGE_BURNS = (("1h", "5m", 14.4), ("6h", "30m", 6.0))
TICKET_BURNS = (("1d", "2h", 3.0), ("3d", "6h", 1.0))


@dataclass(frozen=True)
class Alert:
    name: str
    severity: str
    expr: str
    summary: str
    description: str
    for_: str = "0m"


def rule_groups(scope: Scope, monitoring: Monitoring, *, autoscaling: bool) -> list[dict[str, Any]]:
    """The groups of a PrometheusRule's spec; the alerts only while spec.monitoring.alerts is on."""
    groups = [
        {"name": f"taskmanager-{scope.name}.sli", "rules": recording_rules(scope, monitoring)}
    ]
    if monitoring.alerts.enabled:
        groups.append(
            {
                "name": f"taskmanager-{scope.name}.alerts",
                "rules": [
                    _alerting_rule(scope, monitoring, alert)
                    for alert in alerts(scope, monitoring, autoscaling=autoscaling)
                ],
            }
        )
    return groups


def recording_rules(scope: Scope, monitoring: Monitoring) -> list[dict[str, Any]]:
    threshold = monitoring.slo.latency_threshold_seconds
    rules: list[dict[str, Any]] = []
    for window in series.SLI_WINDOWS:
        rules += [
            {"record": series.requests_record(window), "expr": series.request_rate(scope, window)},
            {"record": series.errors_record(window), "expr": series.error_ratio(scope, window)},
            {
                "record": series.slow_record(window),
                "expr": series.slow_ratio(scope, window, threshold),
            },
        ]
    return rules


def _alerting_rule(scope: Scope, monitoring: Monitoring, alert: Alert) -> dict[str, Any]:
    labels = {"severity": alert.severity, "namespace": scope.namespace, "taskmanager": scope.name}
    return {
        "alert": alert.name,
        "expr": alert.expr,
        "for": alert.for_,
        # The user's routing labels never replace ours: Alertmanager routes on severity.
        "labels": dict(monitoring.alerts.labels) | labels,
        "annotations": {
            "summary": alert.summary,
            "description": alert.description,
            "runbook_url": f"{monitoring.alerts.runbook_base_url}{alert.name}.md",
        },
    }


def _burn(
    record: Callable[[str], str],
    scope: Scope,
    burns: tuple[tuple[str, str, float], ...],
    budget: float,
) -> str:
    """True while any (long, short) pair burns the budget faster than its rate."""
    return "\nor\n".join(
        f"(\n  {record(long)}{{{scope.selector}}} > ({rate:g} * {budget:g})\n"
        f"  and\n  {record(short)}{{{scope.selector}}} > ({rate:g} * {budget:g})\n)"
        for long, short, rate in burns
    )


def alerts(scope: Scope, monitoring: Monitoring, *, autoscaling: bool) -> list[Alert]:
    thresholds = monitoring.alerts
    slo = monitoring.slo
    who = f"TaskManager {scope.namespace}/{scope.name}"
    error_budget = round(1 - slo.availability_percent / 100, 10)
    latency_budget = round(1 - slo.latency_percent / 100, 10)
    traffic_guard = (
        f"and on (namespace, job)\n{series.requests_record('5m')}{{{scope.selector}}} "
        f"> {thresholds.min_requests_per_second:g}"
    )
    dependency = f'{contract.DEPENDENCY_UP}{{{scope.selector}, dependency="%s"}} == 0'
    pool = f'{contract.DB_POOL_CONNECTIONS}{{{scope.selector}, state="%s"}}'
    deployment = f'namespace="{scope.namespace}", deployment="{scope.job}"'
    found: list[Alert] = []
    # Without a scrape object of ours the job label is the user's: absence would prove nothing.
    if monitoring.scrape != "None":
        found.append(
            Alert(
                API_DOWN,
                "critical",
                # absent() also fires for a target never scraped, where `up == 0` has no series;
                # an API scaled to 0 replicas (kube-state-metrics says so) is down on purpose.
                f"absent(up{{{scope.selector}}} == 1)\nunless on ()\n"
                f"kube_deployment_spec_replicas{{{deployment}}} == 0",
                f"{who}: no API pod is being scraped successfully",
                f"Prometheus has had no successful scrape of the API of {who} for 5 minutes: "
                "the pods are down, not ready, or not selected by any scrape configuration.",
                "5m",
            )
        )
    for severity, burns, wait in (("critical", PAGE_BURNS, "2m"), ("warning", TICKET_BURNS, "15m")):
        # `long > x and short > x` keeps the long window's value: that is what $value shows.
        long_windows = " or ".join(long for long, _, _ in burns)
        found.append(
            Alert(
                ERROR_BUDGET_BURN,
                severity,
                _burn(series.errors_record, scope, burns, error_budget),
                f"{who} is burning its error budget",
                f"5xx responses are using up the {slo.availability_percent:g}% availability "
                f"objective's budget {' or '.join(f'{rate:g}x' for _, _, rate in burns)} "
                "faster than it lasts 30 days; the error ratio over its long window "
                f"({long_windows}) is {{{{ $value | humanizePercentage }}}}.",
                wait,
            )
        )
        found.append(
            Alert(
                LATENCY_BUDGET_BURN,
                severity,
                _burn(series.slow_record, scope, burns, latency_budget),
                f"{who} is burning its latency budget",
                f"Requests slower than {slo.latency_threshold_seconds:g}s are using up the "
                f"{slo.latency_percent:g}% latency objective's budget "
                f"{' or '.join(f'{rate:g}x' for _, _, rate in burns)} faster than it lasts 30 "
                f"days; the slow share over its long window ({long_windows}) is "
                "{{ $value | humanizePercentage }}.",
                wait,
            )
        )
    found += [
        Alert(
            HIGH_ERROR_RATE,
            "warning",
            f"{series.errors_record('5m')}{{{scope.selector}}} > "
            f"{thresholds.error_rate_percent / 100:g}\n{traffic_guard}",
            f"{who} answers more than {thresholds.error_rate_percent:g}% of requests with 5xx",
            "{{ $value | humanizePercentage }} of requests failed with a 5xx over 5 minutes.",
            "10m",
        ),
        Alert(
            HIGH_LATENCY,
            "warning",
            f"{series.latency_quantile(scope, 0.95, '5m', by='namespace, job')} > "
            f"{thresholds.latency_p95_seconds:g}\n{traffic_guard}",
            f"{who}'s p95 latency is above {thresholds.latency_p95_seconds:g}s",
            "The 95th percentile of request latency is {{ $value | humanizeDuration }}.",
            "10m",
        ),
        Alert(
            DATABASE_UNREACHABLE,
            "critical",
            dependency % "database",
            f"{who} cannot reach its database",
            "The readiness checks of pod {{ $labels.pod }} fail to reach PostgreSQL: the pod "
            "is taken out of the Service and every request that needs the database fails.",
            "2m",
        ),
        Alert(
            REDIS_UNREACHABLE,
            "critical",
            dependency % "redis",
            f"{who} cannot reach Redis",
            "The readiness checks of pod {{ $labels.pod }} fail to reach Redis: the pod is "
            "taken out of the Service; revocations, rate limits and the cache are unavailable.",
            "2m",
        ),
        Alert(
            DB_POOL_SATURATED,
            "warning",
            f"{pool % 'checked_out'}\n/ ignoring (state)\n{pool % 'size'}\n> "
            f"{thresholds.db_pool_saturation_percent / 100:g}",
            f"{who}'s database connection pool is nearly exhausted",
            "Pod {{ $labels.pod }} has {{ $value | humanizePercentage }} of its pool's "
            "base connections checked out: beyond them it opens overflow connections, and "
            "once those are used up too, requests wait for a connection.",
            "10m",
        ),
        Alert(
            PODS_RESTARTING,
            "warning",
            f"increase(kube_pod_container_status_restarts_total{{{scope.pods}}}[1h]) "
            f">= {thresholds.restarts_per_hour}",
            f"{who}'s API pods are restarting",
            "Pod {{ $labels.pod }} restarted {{ $value | humanize }} times in the last hour.",
        ),
        Alert(
            MEMORY_NEAR_LIMIT,
            "warning",
            f"max by (namespace, pod) (container_memory_working_set_bytes{{{scope.pods}}})\n/\n"
            f"max by (namespace, pod) (kube_pod_container_resource_limits{{{scope.pods}, "
            f'resource="memory"}})\n> {thresholds.memory_percent / 100:g}',
            f"{who}'s API pods are near their memory limit",
            "Pod {{ $labels.pod }} uses {{ $value | humanizePercentage }} of its memory "
            "limit: above it the pod is killed.",
            "15m",
        ),
        Alert(
            CPU_THROTTLED,
            "warning",
            "sum by (namespace, pod) (increase(container_cpu_cfs_throttled_periods_total"
            f"{{{scope.pods}}}[5m]))\n/\nsum by (namespace, pod) "
            f"(increase(container_cpu_cfs_periods_total{{{scope.pods}}}[5m]))\n> "
            f"{thresholds.cpu_throttled_percent / 100:g}",
            f"{who}'s API pods are CPU-throttled",
            "Pod {{ $labels.pod }} was throttled in {{ $value | humanizePercentage }} of its "
            "CPU periods: latency suffers.",
            "15m",
        ),
    ]
    if autoscaling:
        hpa = f'namespace="{scope.namespace}", horizontalpodautoscaler="{scope.job}"'
        found.append(
            Alert(
                AUTOSCALER_AT_MAXIMUM,
                "warning",
                f"kube_horizontalpodautoscaler_status_current_replicas{{{hpa}}}\n>=\n"
                f"kube_horizontalpodautoscaler_spec_max_replicas{{{hpa}}}",
                f"{who}'s autoscaler is at its maximum",
                "The API has run at its maximum of {{ $value }} replicas for 15 minutes: it "
                "cannot scale further if the load grows.",
                "15m",
            )
        )
    return found
