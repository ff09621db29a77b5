"""The Grafana dashboard of one TaskManager, generated from code like the rules.

Every query is a `Query`; `queries()` lists them all, so the tests evaluate each one against a
real Prometheus scraping the real app. Queries on kube-state-metrics or cAdvisor series are marked
`kubernetes`: they return data only where those exporters run, and may be empty in a test.
Rates use Grafana's `$__rate_interval`, which follows the scrape interval and the zoom.
"""

from __future__ import annotations

import hashlib
from typing import Any

from taskmanager_api import metric_contract as contract
from taskmanager_operator.api.v1alpha1 import Monitoring
from taskmanager_operator.monitoring import series
from taskmanager_operator.monitoring.grafana import RATE, Panel, Query, Row, grafana_json
from taskmanager_operator.monitoring.series import Scope


def uid(scope: Scope) -> str:
    """Stable for the life of the TaskManager's name, unique per namespace and name (Grafana
    allows 40 characters)."""
    digest = hashlib.sha256(f"{scope.namespace}/{scope.name}".encode()).hexdigest()
    return f"taskmanager-{digest[:24]}"


def rows(scope: Scope, monitoring: Monitoring) -> list[Row]:
    sel, traffic, pods = scope.selector, scope.traffic, scope.pods
    requests = contract.HTTP_REQUESTS
    buckets = f"{contract.HTTP_REQUEST_DURATION}_bucket"
    slo = monitoring.slo
    error_budget = round(1 - slo.availability_percent / 100, 10)
    latency_budget = round(1 - slo.latency_percent / 100, 10)
    window = series.SLO_WINDOW
    # 100%, not no data, while no request has failed with a 5xx (their series do not exist yet).
    served = f"sum(increase({requests}{{{traffic}}}[{window}]))"
    availability = (
        f'1 - (\n(\nsum(increase({requests}{{{traffic}, status=~"5.."}}[{window}]))\n'
        f"or\n0 * {served}\n)\n/\n{served}\n)"
    )
    deployment = f'namespace="{scope.namespace}", deployment="{scope.job}"'
    hpa = f'namespace="{scope.namespace}", horizontalpodautoscaler="{scope.job}"'
    overview = Row(
        "Overview",
        (
            Panel(
                "Request rate",
                "stat",
                (Query(f"sum({series.requests_record('5m')}{{{sel}}})"),),
                "reqps",
                "User requests per second over 5 minutes (probes and scrapes excluded).",
                width=4,
            ),
            Panel(
                "Error ratio",
                "stat",
                (Query(f"sum({series.errors_record('5m')}{{{sel}}})"),),
                "percentunit",
                "Share of user requests answered with a 5xx over 5 minutes.",
                width=4,
                thresholds=((0, "green"), (error_budget, "orange"), (0.05, "red")),
            ),
            Panel(
                "p95 latency",
                "stat",
                (Query(series.latency_quantile(scope, 0.95, "5m")),),
                "s",
                width=4,
            ),
            Panel(
                f"Availability ({window})",
                "stat",
                (Query(availability),),
                "percentunit",
                f"Objective: {slo.availability_percent:g}%.",
                width=4,
            ),
            Panel(
                "Error budget left",
                "stat",
                (Query(f"1 - (1 - ({availability})) / {error_budget:g}"),),
                "percentunit",
                f"Share of the {window} error budget not yet spent; below 0 the objective is "
                "missed.",
                width=4,
                thresholds=((-1e9, "red"), (0.25, "orange"), (0.5, "green")),
            ),
            Panel(
                "Targets up",
                "stat",
                (Query(f"sum(up{{{sel}}})", "up"), Query(f"count(up{{{sel}}})", "scraped")),
                "short",
                "API pods scraped successfully, of those Prometheus scrapes.",
                width=4,
            ),
            Panel(
                "Replicas",
                "timeseries",
                (
                    Query(
                        f"kube_deployment_status_replicas_available{{{deployment}}}",
                        "available",
                        "kubernetes",
                    ),
                    Query(
                        f"kube_deployment_spec_replicas{{{deployment}}}", "desired", "kubernetes"
                    ),
                ),
                width=24,
            ),
        ),
    )
    status_class = (
        f'sum by (class) (label_replace(rate({requests}{{{traffic}}}[{RATE}]), "class", '
        f'"${{1}}xx", "status", "(.).."))'
    )
    traffic_row = Row(
        "Traffic",
        (
            Panel(
                "Requests by route",
                "timeseries",
                (
                    Query(
                        f"sum by (method, route) (rate({requests}{{{traffic}}}[{RATE}]))",
                        "{{method}} {{route}}",
                    ),
                ),
                "reqps",
                width=12,
            ),
            Panel(
                "Requests by status class",
                "timeseries",
                (Query(status_class, "{{class}}"),),
                "reqps",
                width=12,
            ),
        ),
    )
    errors_row = Row(
        "Errors",
        (
            Panel(
                "5xx by route",
                "timeseries",
                (
                    Query(
                        "sum by (route, status) "
                        f'(rate({requests}{{{traffic}, status=~"5.."}}[{RATE}]))',
                        "{{status}} {{route}}",
                    ),
                ),
                "reqps",
            ),
            Panel(
                "4xx by route",
                "timeseries",
                (
                    Query(
                        "sum by (route, status) "
                        f'(rate({requests}{{{traffic}, status=~"4.."}}[{RATE}]))',
                        "{{status}} {{route}}",
                    ),
                ),
                "reqps",
            ),
            Panel(
                "Rejected credentials and rate limits",
                "timeseries",
                (
                    Query(
                        f"sum by (reason) (rate({contract.AUTH_FAILURES}{{{sel}}}[{RATE}]))",
                        "auth: {{reason}}",
                    ),
                    Query(
                        f"sum by (limit) (rate({contract.RATE_LIMITED}{{{sel}}}[{RATE}]))",
                        "limited: {{limit}}",
                    ),
                ),
                "reqps",
            ),
        ),
    )
    latency_row = Row(
        "Latency",
        (
            Panel(
                "Latency percentiles",
                "timeseries",
                tuple(
                    Query(series.latency_quantile(scope, quantile, RATE), f"p{quantile * 100:g}")
                    for quantile in (0.5, 0.95, 0.99)
                ),
                "s",
                width=12,
            ),
            Panel(
                "Latency heatmap",
                "heatmap",
                (
                    Query(
                        f"sum by (le) (increase({buckets}{{{traffic}}}[{RATE}]))",
                        "{{le}}",
                        heatmap=True,
                    ),
                ),
                "s",
                width=12,
            ),
            Panel(
                "p95 by route",
                "timeseries",
                (Query(series.latency_quantile(scope, 0.95, RATE, by="route"), "{{route}}"),),
                "s",
                width=24,
            ),
        ),
    )
    memory_limit = f'kube_pod_container_resource_limits{{{pods}, resource="memory"}}'
    saturation_row = Row(
        "Saturation",
        (
            Panel(
                "Requests in flight",
                "timeseries",
                (Query(f"sum by (pod) ({contract.HTTP_IN_FLIGHT}{{{sel}}})", "{{pod}}"),),
            ),
            Panel(
                "Database pool",
                "timeseries",
                (Query(f"sum by (state) ({contract.DB_POOL_CONNECTIONS}{{{sel}}})", "{{state}}"),),
            ),
            Panel(
                "Autoscaler",
                "timeseries",
                (
                    Query(
                        f"kube_horizontalpodautoscaler_status_current_replicas{{{hpa}}}",
                        "current",
                        "kubernetes",
                    ),
                    Query(
                        f"kube_horizontalpodautoscaler_status_desired_replicas{{{hpa}}}",
                        "desired",
                        "kubernetes",
                    ),
                    Query(
                        f"kube_horizontalpodautoscaler_spec_max_replicas{{{hpa}}}",
                        "max",
                        "kubernetes",
                    ),
                ),
            ),
            Panel(
                "CPU against requests and limits",
                "timeseries",
                tuple(
                    Query(
                        "sum by (pod) "
                        f"(rate(container_cpu_usage_seconds_total{{{pods}}}[{RATE}]))\n/\n"
                        "sum by (pod) "
                        f'(kube_pod_container_resource_{against}{{{pods}, resource="cpu"}})',
                        f"{{{{pod}}}} of {against}",
                        "kubernetes",
                    )
                    # No CPU limit by default (spec.resources.limits.cpu): that line stays empty.
                    for against in ("requests", "limits")
                ),
                "percentunit",
                description="CPU used, as a share of what each pod requests and of its limit.",
                width=12,
            ),
            Panel(
                "Memory against limits",
                "timeseries",
                (
                    Query(
                        f"sum by (pod) (container_memory_working_set_bytes{{{pods}}})\n/\n"
                        f"sum by (pod) ({memory_limit})",
                        "{{pod}}",
                        "kubernetes",
                    ),
                ),
                "percentunit",
                width=12,
            ),
        ),
    )
    cache = contract.CACHE_REQUESTS
    dependencies_row = Row(
        "Dependencies and cache",
        (
            Panel(
                "Dependencies reachable",
                "timeseries",
                (
                    Query(
                        f"min by (dependency) ({contract.DEPENDENCY_UP}{{{sel}}})", "{{dependency}}"
                    ),
                ),
                description="1 while every pod's readiness check reaches the dependency.",
            ),
            Panel(
                "Cache hit ratio",
                "timeseries",
                (
                    Query(
                        f'sum(rate({cache}{{{sel}, result="hit"}}[{RATE}]))\n/\n'
                        f"sum(rate({cache}{{{sel}}}[{RATE}]))",
                        "hit ratio",
                    ),
                ),
                "percentunit",
            ),
            Panel(
                "Revocation reloads",
                "timeseries",
                (
                    Query(
                        f"sum by (pod) (increase({contract.REVOCATION_RELOADS}{{{sel}}}[{RATE}]))",
                        "{{pod}}",
                    ),
                ),
                description="Reloads of the revocations into Redis after it lost them.",
            ),
        ),
    )
    slo_row = Row(
        "Service level objectives",
        tuple(
            Panel(
                f"{title} burn rate",
                "timeseries",
                tuple(
                    Query(f"sum({record(window)}{{{sel}}}) / {budget:g}", window)
                    for window in series.SLI_WINDOWS
                ),
                description=f"1 spends the budget exactly in {series.SLO_WINDOW}; the alerts page "
                "at 14.4 (1h) and 6 (6h).",
                width=12,
            )
            for title, record, budget in (
                ("Error budget", series.errors_record, error_budget),
                ("Latency budget", series.slow_record, latency_budget),
            )
        ),
    )
    return [
        overview,
        traffic_row,
        errors_row,
        latency_row,
        saturation_row,
        dependencies_row,
        slo_row,
    ]


def queries(scope: Scope, monitoring: Monitoring) -> list[Query]:
    return [
        query for row in rows(scope, monitoring) for panel in row.panels for query in panel.queries
    ]


def build(scope: Scope, monitoring: Monitoring) -> dict[str, Any]:
    """The TaskManager's dashboard as Grafana imports it."""
    return grafana_json(
        uid(scope),
        f"TaskManager {scope.namespace}/{scope.name}",
        ["taskmanager", scope.namespace],
        rows(scope, monitoring),
    )
