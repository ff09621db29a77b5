"""The metric contract holds between the app and what the operator generates from it.

Every app metric a generated rule or dashboard query reads is a name of
taskmanager_api.metric_contract AND a metric the app's registry really exposes, so renaming or
removing a metric the rules or the dashboard use fails here, not silently in a user's Grafana.
Names of recording rules (`taskmanager:...`) are not app metrics: each one read must be recorded
by the generated rule groups.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from taskmanager_api import metric_contract as contract
from taskmanager_api.metrics import Metrics
from taskmanager_operator.api.v1alpha1 import Monitoring
from taskmanager_operator.monitoring import dashboard, rules
from taskmanager_operator.monitoring.series import Scope

SCOPE = Scope("team-a", "demo", "demo-api")
APP_METRIC = re.compile(r"\btaskmanager_[a-z0-9_]+\b")
RECORDED_SERIES = re.compile(r"\btaskmanager:[a-z0-9_:]+")
HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")


def contract_names() -> set[str]:
    """The metric names the contract module declares."""
    return {
        value
        for name, value in vars(contract).items()
        if name.isupper() and isinstance(value, str) and value.startswith("taskmanager_")
    }


def exposed_names() -> set[str]:
    """The series names the app's registry exposes, as PromQL reads them. prometheus_client names a
    counter's family without `_total` and a histogram's without `_bucket`, `_count` and `_sum`,
    and a labelled metric no request has touched yet has no samples: the family's type says what
    the exposition will hold."""
    suffixes = {"counter": ("_total",), "histogram": HISTOGRAM_SUFFIXES}
    names: set[str] = set()
    for family in Metrics(lambda: None).registry.collect():
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
    return names


def generated_exprs(groups: list[dict[str, Any]]) -> list[str]:
    rule_exprs = [rule["expr"] for group in groups for rule in group["rules"]]
    return rule_exprs + [query.expr for query in dashboard.queries(SCOPE, Monitoring())]


def generated_groups() -> list[dict[str, Any]]:
    return rules.rule_groups(SCOPE, Monitoring(), autoscaling=True)


def base_name(series: str) -> str:
    """A histogram's series (`..._bucket`) named by its metric."""
    if series in contract_names():
        return series
    for suffix in HISTOGRAM_SUFFIXES:
        if series.endswith(suffix):
            return series.removesuffix(suffix)
    return series


def contract_breaches(exprs: Iterable[str]) -> list[str]:
    """What the expressions read that the contract or the app's registry does not have."""
    declared, exposed = contract_names(), exposed_names()
    breaches = []
    for expr in exprs:
        for series in sorted(set(APP_METRIC.findall(expr))):
            if base_name(series) not in declared:
                breaches.append(f"{series} is not in metric_contract, read by:\n{expr}")
            if series not in exposed:
                breaches.append(f"{series} is not exposed by the app's registry, read by:\n{expr}")
    return breaches


def test_every_app_metric_the_rules_and_dashboard_read_is_in_the_contract_and_exposed() -> None:
    exprs = generated_exprs(generated_groups())
    read = {series for expr in exprs for series in APP_METRIC.findall(expr)}
    # The pattern finds what it should: an empty match would pass everything.
    assert {
        contract.HTTP_REQUESTS,
        f"{contract.HTTP_REQUEST_DURATION}_bucket",
        f"{contract.HTTP_REQUEST_DURATION}_count",
        contract.DEPENDENCY_UP,
        contract.DB_POOL_CONNECTIONS,
    } <= read, read
    breaches = contract_breaches(exprs)
    assert not breaches, "\n\n".join(breaches)


def test_every_recorded_series_read_is_recorded_by_the_generated_groups() -> None:
    groups = generated_groups()
    recorded = {rule["record"] for group in groups for rule in group["rules"] if "record" in rule}
    read = {series for expr in generated_exprs(groups) for series in RECORDED_SERIES.findall(expr)}
    assert read, "no recording rule is read: the pattern or the generators changed"
    assert read <= recorded, f"read but never recorded: {sorted(read - recorded)}"


def test_the_check_names_a_renamed_or_an_unknown_metric() -> None:
    """The check itself can fail: a name the contract lacks, a histogram suffix on a counter."""
    breaches = contract_breaches(
        [
            "rate(taskmanager_http_requests_totals[5m])",
            f"rate({contract.HTTP_REQUESTS}_bucket[5m])",
            f"rate({contract.HTTP_REQUEST_DURATION}_bucket[5m])",
        ]
    )
    assert len(breaches) == 3, breaches
    assert "taskmanager_http_requests_totals is not in metric_contract" in breaches[0]
    assert "taskmanager_http_requests_totals is not exposed" in breaches[1]
    assert f"{contract.HTTP_REQUESTS}_bucket is not exposed" in breaches[2]
