"""The generated Prometheus rules, checked and unit-tested with promtool.

`promtool check rules` validates the rule files of several TaskManager specs. `promtool test rules`
replays series labelled the way real scrapes label them through the generated rules: the API's own
series carry namespace, job (the API Service's name), pod and instance; kube-state-metrics' and
cAdvisor's carry namespace, pod, container and labels of their own. For every alert there is a case
where it fires, asserting its exact labels and rendered annotations, and one where it stays quiet;
a few checks read the recording rules' values too. Thresholds and objectives come from the models
(`Monitoring()`), so a changed default moves the test data with it; the annotations' prose comes
from `alerts()`, the values rendered into it are written here.

promtool's time goes into evaluating the rules, once per evaluation interval: cases that need hours
or days of samples sit in suites evaluated every 5m or 30m, and the suites run in parallel. A
missing promtool fails the tests with what to install: nothing skips.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.utils import floatToGoString

from taskmanager_api import metric_contract as contract
from taskmanager_api.core.config import Settings
from taskmanager_operator.api.v1alpha1 import DEFAULT_RUNBOOK_BASE_URL, Monitoring
from taskmanager_operator.builders.common import API_PORT
from taskmanager_operator.monitoring import rules
from taskmanager_operator.monitoring import series as series_names
from taskmanager_operator.monitoring.rules import ALERT_NAMES, Alert, alerts, rule_groups
from taskmanager_operator.monitoring.series import Scope

PROMTOOL_HINT = "install it: make install (or apt-get install prometheus)"

DEFAULTS = Monitoring()
CUSTOM_RUNBOOKS = "https://runbooks.example.com/taskmanager/"
# The user's routing label comes through; their `severity` must not replace the rule's.
CUSTOM_LABELS = {"team": "payments"}
CUSTOM = Monitoring.model_validate(
    {
        "alerts": {
            "labels": {**CUSTOM_LABELS, "severity": "info"},
            "runbookBaseURL": CUSTOM_RUNBOOKS,
            "errorRatePercent": 20,
            "latencyP95Seconds": 2,
            "minRequestsPerSecond": 5,
            "dbPoolSaturationPercent": 50,
            "memoryPercent": 70,
            "cpuThrottledPercent": 50,
            "restartsPerHour": 1,
        },
        "slo": {"availabilityPercent": 99.5, "latencyThresholdSeconds": 1.0, "latencyPercent": 95},
    }
)

SCOPE = Scope(namespace="shop", name="demo", job="demo-api")
POD_A = "demo-api-7d9f8b6c5d-x2k4q"
POD_B = "demo-api-7d9f8b6c5d-m8v3n"
# The API's own series, as the ServiceMonitor's scrape labels them.
A = {"namespace": "shop", "job": "demo-api", "pod": POD_A, "instance": f"10.244.1.17:{API_PORT}"}
B = {"namespace": "shop", "job": "demo-api", "pod": POD_B, "instance": f"10.244.2.9:{API_PORT}"}
# The `job` of the API's series that aggregations keep.
JOB = {"job": SCOPE.job}
KSM = {"job": "kube-state-metrics", "instance": "10.244.0.5:8080"}
CADVISOR = {
    "job": "kubelet",
    "metrics_path": "/metrics/cadvisor",
    "instance": "172.18.0.3:10250",
    "node": "worker-1",
}

USER_ROUTE = "/api/v1/tasks/{task_id}"
# A pod's user requests per sample (1m): 10 per second, well above the default traffic guard.
RPM = 600
# The kubelet's readiness probe runs every 5 s.
PROBES_PER_MINUTE = 12
POOL_SIZE: int = Settings.model_fields["db_pool_size"].default
MEMORY_LIMIT = 1_000_000_000
CFS_PERIODS_PER_MINUTE = 600  # 100 ms periods
HPA_MAX = 10

FAST: Mapping[float, float] = {0.025: 1.0}
BOUNDS = (*contract.LATENCY_BUCKETS, math.inf)

Series = dict[str, str]
Check = dict[str, Any]


# Series.


def series(metric: str, labels: Mapping[str, str], values: str) -> Series:
    matchers = ", ".join(f'{name}="{value}"' for name, value in labels.items())
    return {"series": f"{metric}{{{matchers}}}", "values": values}


def le(bound: float) -> str:
    """A bucket's `le` as the app's client library writes it (`1.0`, `+Inf`)."""
    text: str = floatToGoString(bound)  # type: ignore[no-untyped-call]
    return text


def _num(value: float) -> str:
    return f"{value:.12g}"


def counter(*phases: tuple[int, float]) -> str:
    """A counter, one sample per interval: 0 at first, then per (samples, increase) phase that
    many samples, each `increase` above the one before."""
    terms, total = ["0"], 0.0
    for samples, increase in phases:
        terms.append(f"{_num(total + increase)}+{_num(increase)}x{samples - 1}")
        total += samples * increase
    return " ".join(terms)


def gauge(*phases: tuple[int, float]) -> str:
    """A gauge: the first phase's value at 0, then per (samples, value) phase that many samples."""
    terms = [_num(phases[0][1])]
    terms += [f"{_num(value)}+0x{samples - 1}" for samples, value in phases]
    return " ".join(terms)


@dataclass(frozen=True)
class Phase:
    """`samples` intervals in each of which a pod answers `ok` requests with a 200 and `failed`
    with a 5xx, their latencies spread over the histogram's buckets as `latency` says (share of
    the requests by the bucket's upper bound)."""

    samples: int
    ok: float
    failed: float = 0.0
    latency: Mapping[float, float] = field(default_factory=lambda: FAST)

    def __post_init__(self) -> None:
        assert set(self.latency) <= set(BOUNDS), f"not bucket bounds: {self.latency}"
        assert math.isclose(sum(self.latency.values()), 1), f"shares must sum to 1: {self.latency}"

    def under(self, bound: float) -> float:
        return sum(share for upper, share in self.latency.items() if upper <= bound)


def requests(
    *phases: Phase,
    target: Mapping[str, str] = A,
    route: str = USER_ROUTE,
    method: str = "GET",
    failure: str = "500",
) -> list[Series]:
    """The request counter and latency histogram of one pod and route, as the app exports them
    (`le` written by its client library: `1.0`, `+Inf`)."""
    found: list[Series] = []
    for status, counts in (("200", [p.ok for p in phases]), (failure, [p.failed for p in phases])):
        if not any(counts):
            continue
        labels = {**target, "method": method, "route": route, "status": status}
        total = counter(*((p.samples, n) for p, n in zip(phases, counts, strict=True)))
        found.append(series(contract.HTTP_REQUESTS, labels, total))
        for bound in BOUNDS:
            found.append(
                series(
                    f"{contract.HTTP_REQUEST_DURATION}_bucket",
                    {**labels, "le": le(bound)},
                    counter(
                        *(
                            (p.samples, n * p.under(bound))
                            for p, n in zip(phases, counts, strict=True)
                        )
                    ),
                )
            )
        found.append(series(f"{contract.HTTP_REQUEST_DURATION}_count", labels, total))
    return found


def probes(samples: int, target: Mapping[str, str], *, ready: bool = True) -> list[Series]:
    """Kubelet's /health and /ready probes and Prometheus' /metrics scrapes of one pod; a pod
    whose dependency is down answers /ready and /health/detailed with a slow 503."""
    down = {1.0: 1.0}
    ok, failed = (PROBES_PER_MINUTE, 0) if ready else (0, PROBES_PER_MINUTE)
    return [
        *requests(Phase(samples, ok=6), target=target, route="/health"),
        *requests(
            Phase(samples, ok=ok, failed=failed, latency=FAST if ready else down),
            target=target,
            route="/ready",
            failure="503",
        ),
        *requests(
            Phase(samples, ok=ok / 6, failed=failed, latency=FAST if ready else down),
            target=target,
            route="/health/detailed",
            failure="503",
        ),
        *requests(Phase(samples, ok=1, latency={0.05: 1.0}), target=target, route="/metrics"),
    ]


def up(target: Mapping[str, str], *phases: tuple[int, float]) -> Series:
    return series("up", target, gauge(*phases))


def dependencies(target: Mapping[str, str], samples: int, **state: int) -> list[Series]:
    """The readiness checks' outcome per dependency: 1 (reached) unless given."""
    return [
        series(
            contract.DEPENDENCY_UP,
            {**target, "dependency": name},
            gauge((samples, state.get(name, 1))),
        )
        for name in contract.DEPENDENCIES
    ]


def pool(target: Mapping[str, str], samples: int, checked_out: int) -> list[Series]:
    states = {
        "checked_out": checked_out,
        "idle": max(POOL_SIZE - checked_out, 0),
        "overflow": max(checked_out - POOL_SIZE, 0),
        "size": POOL_SIZE,
    }
    return [
        series(contract.DB_POOL_CONNECTIONS, {**target, "state": state}, gauge((samples, value)))
        for state, value in states.items()
    ]


def container(pod: str, name: str = "api") -> dict[str, str]:
    return {"namespace": "shop", "pod": pod, "container": name}


def restarts(pod: str, at: Sequence[int], samples: int, name: str = "api") -> Series:
    """kube-state-metrics' restart counter of a container restarted at these minutes."""
    values = [sum(1 for minute in at if minute <= t) for t in range(samples + 1)]
    labels = {**container(pod, name), "uid": f"uid-{pod}", **KSM}
    return series("kube_pod_container_status_restarts_total", labels, " ".join(map(str, values)))


def memory(pod: str, samples: int, used: float) -> list[Series]:
    """cAdvisor's working set of the API container and of the whole pod (no container label,
    more than the container's: it must not count), and kube-state-metrics' limits."""
    cgroup = f"/kubepods/burstable/pod-{pod}"
    limit = {**container(pod), "node": "worker-1", "uid": f"uid-{pod}", **KSM}
    return [
        series(
            "container_memory_working_set_bytes",
            {**container(pod), "id": f"{cgroup}/api", "image": "taskmanager-api:0.1.0", **CADVISOR},
            gauge((samples, used)),
        ),
        series(
            "container_memory_working_set_bytes",
            {"namespace": "shop", "pod": pod, "id": cgroup, **CADVISOR},
            gauge((samples, MEMORY_LIMIT * 1.2)),
        ),
        series(
            "kube_pod_container_resource_limits",
            {**limit, "resource": "memory", "unit": "byte"},
            gauge((samples, MEMORY_LIMIT)),
        ),
        series(
            "kube_pod_container_resource_limits",
            {**limit, "resource": "cpu", "unit": "core"},
            gauge((samples, 1)),
        ),
    ]


def cpu(pod: str, samples: int, throttled_share: float) -> list[Series]:
    labels = {**container(pod), "id": f"/kubepods/burstable/pod-{pod}/api", **CADVISOR}
    return [
        series(
            "container_cpu_cfs_periods_total",
            labels,
            counter((samples, CFS_PERIODS_PER_MINUTE)),
        ),
        series(
            "container_cpu_cfs_throttled_periods_total",
            labels,
            counter((samples, CFS_PERIODS_PER_MINUTE * throttled_share)),
        ),
    ]


def autoscaler(samples: int, current: int) -> list[Series]:
    labels = {"namespace": "shop", "horizontalpodautoscaler": SCOPE.job, **KSM}
    return [
        series(
            "kube_horizontalpodautoscaler_status_current_replicas",
            labels,
            gauge((samples, current)),
        ),
        series("kube_horizontalpodautoscaler_spec_max_replicas", labels, gauge((samples, HPA_MAX))),
    ]


# Expectations.


def pct(ratio: float) -> str:
    """Prometheus' humanizePercentage: `%.4g%%` of the ratio times 100."""
    return f"{ratio * 100:.4g}%"


def render(template: str, values: Mapping[str, str]) -> str:
    text = template
    for expression, value in values.items():
        text = text.replace(f"{{{{ {expression} }}}}", value)
    assert "{{" not in text, f"the test does not say what {text!r} renders to"
    return text


def the_alert(monitoring: Monitoring, name: str, severity: str) -> Alert:
    found = [
        alert
        for alert in alerts(SCOPE, monitoring, autoscaling=True)
        if alert.name == name and alert.severity == severity
    ]
    assert len(found) == 1, f"expected one {severity} {name}, the rules have {len(found)}"
    return found[0]


def expect(
    name: str,
    severity: str,
    labels: Mapping[str, str] | None = None,
    values: Mapping[str, str] | None = None,
    *,
    monitoring: Monitoring = DEFAULTS,
    runbooks: str = DEFAULT_RUNBOOK_BASE_URL,
) -> dict[str, Any]:
    """One firing alert: ours, the series' surviving `labels`, and the annotations with each
    template expression (`$value | humanizePercentage`) rendered to the given text."""
    alert = the_alert(monitoring, name, severity)
    values = values or {}
    unused = [e for e in values if f"{{{{ {e} }}}}" not in alert.summary + alert.description]
    assert not unused, f"{name}'s annotations no longer use {unused}"
    return {
        "exp_labels": {
            **(labels or {}),
            "severity": severity,
            "namespace": SCOPE.namespace,
            "taskmanager": SCOPE.name,
        },
        "exp_annotations": {
            "summary": render(alert.summary, values),
            "description": render(alert.description, values),
            "runbook_url": f"{runbooks}{name}.md",
        },
    }


def fires(at: str, name: str, *expected: dict[str, Any]) -> Check:
    assert expected, "fires() needs the alerts expected"
    return {"eval_time": at, "alertname": name, "exp_alerts": list(expected)}


def quiet(at: str, *names: str) -> list[Check]:
    return [{"eval_time": at, "alertname": name, "exp_alerts": []} for name in names]


def sample(at: str, record: str, value: float) -> Check:
    """A recording rule's series of ours at `at` equals `value`, but for rounding."""
    return {
        "eval_time": at,
        "expr": f"abs({record} - {value!r}) < bool 1e-9",
        "exp_samples": [
            {"labels": f'{{namespace="{SCOPE.namespace}", job="{SCOPE.job}"}}', "value": 1}
        ],
    }


def case(
    name: str,
    input_series: Iterable[Series],
    checks: Iterable[Check | Iterable[Check]],
    *,
    interval: str = "1m",
) -> dict[str, Any]:
    flat: list[Check] = []
    for check in checks:
        flat += [check] if isinstance(check, dict) else list(check)
    group: dict[str, Any] = {
        "name": name,
        "interval": interval,
        "input_series": list(input_series),
        "alert_rule_test": [c for c in flat if "alertname" in c],
    }
    if exprs := [c for c in flat if "expr" in c]:
        group["promql_expr_test"] = exprs
    return group


def _minutes(duration: str) -> int:
    number, unit = int(duration[:-1]), duration[-1]
    return number * {"m": 1, "h": 60}[unit]


# Long enough for every alert's `for` to have elapsed: a quiet check at this time means quiet.
SETTLE = max(_minutes(a.for_) for a in alerts(SCOPE, DEFAULTS, autoscaling=True)) + 2
SETTLED = f"{SETTLE}m"
# The default thresholds, as the series below need them.
ERROR_RATE = DEFAULTS.alerts.error_rate_percent / 100
ERROR_BUDGET = round(1 - DEFAULTS.slo.availability_percent / 100, 10)
LATENCY_BUDGET = round(1 - DEFAULTS.slo.latency_percent / 100, 10)
THRESHOLD = DEFAULTS.slo.latency_threshold_seconds
# The bucket just above the latency objective's threshold: requests there count as slow.
SLOW = contract.LATENCY_BUCKETS[contract.LATENCY_BUCKETS.index(THRESHOLD) + 1]
P95_THRESHOLD = DEFAULTS.alerts.latency_p95_seconds
GUARD_RPM = DEFAULTS.alerts.min_requests_per_second * 60


def over(percent: int, by: int = 5) -> float:
    return min(percent + by, 100) / 100


def under(percent: int, by: int = 5) -> float:
    return max(percent - by, 0) / 100


def pool_over(percent: int) -> int:
    return math.floor(POOL_SIZE * percent / 100) + 1


def pool_under(percent: int) -> int:
    """At most the threshold: the alert needs more than that."""
    return math.floor(POOL_SIZE * percent / 100)


# The cases, on the default thresholds.


def api_down_cases() -> list[dict[str, Any]]:
    down = expect(rules.API_DOWN, "critical")
    return [
        case(
            "the only pod stops answering scrapes",
            [up(A, (3, 1), (12, 0))],
            # Down from 3m: pending for 5m, firing from 8m.
            [quiet("7m", rules.API_DOWN), fires("10m", rules.API_DOWN, down)],
        ),
        case(
            "never scraped: no up series of ours, only other jobs' and namespaces'",
            [
                up({**A, "job": "billing-api", "pod": "billing-api-5f6d7c8b9-abcde"}, (10, 1)),
                up({**A, "namespace": "staging"}, (10, 1)),
            ],
            [fires("6m", rules.API_DOWN, down)],
        ),
        case(
            "scaled to zero on purpose: kube-state-metrics says the Deployment wants none",
            [
                series(
                    "kube_deployment_spec_replicas",
                    {"namespace": SCOPE.namespace, "deployment": SCOPE.job},
                    gauge((12, 0)),
                )
            ],
            [quiet("10m", rules.API_DOWN)],
        ),
    ]


def traffic_cases() -> list[dict[str, Any]]:
    bad = 2 * ERROR_RATE  # twice the threshold
    assert 14.4 * ERROR_BUDGET < bad < 1
    slow_p95 = {0.1: 0.5, 0.5: 0.4, 1.0: 0.1}  # p95 interpolates to 0.75 s
    assert 0.5 <= P95_THRESHOLD < 0.75
    user_rpm = 1.5 * GUARD_RPM
    return [
        case(
            "5xx at twice the error-rate threshold",
            [
                *requests(Phase(15, ok=RPM * (1 - bad), failed=RPM * bad)),
                *probes(15, A),
            ],
            [
                fires(
                    "15m",
                    rules.HIGH_ERROR_RATE,
                    expect(
                        rules.HIGH_ERROR_RATE,
                        "warning",
                        JOB,
                        {"$value | humanizePercentage": pct(bad)},
                    ),
                ),
                # Far above 14.4 times the budget: the page fires after 2m; the ticket's 15m
                # have not elapsed yet.
                fires(
                    "15m",
                    rules.ERROR_BUDGET_BURN,
                    expect(
                        rules.ERROR_BUDGET_BURN,
                        "critical",
                        JOB,
                        {"$value | humanizePercentage": pct(bad)},
                    ),
                ),
                sample("15m", series_names.errors_record("5m"), bad),
            ],
        ),
        case(
            "p95 above the latency threshold",
            [*requests(Phase(15, ok=RPM, latency=slow_p95)), *probes(15, A)],
            [
                fires(
                    "15m",
                    rules.HIGH_LATENCY,
                    expect(
                        rules.HIGH_LATENCY,
                        "warning",
                        JOB,
                        {"$value | humanizeDuration": "750ms"},
                    ),
                )
            ],
        ),
        case(
            "failing and slow, but below the traffic guard",
            [
                *requests(
                    Phase(15, ok=GUARD_RPM / 4, failed=GUARD_RPM / 4, latency=slow_p95),
                ),
            ],
            [quiet("15m", rules.HIGH_ERROR_RATE, rules.HIGH_LATENCY)],
        ),
        case(
            # Pod A is out of the Service: only probes reach it, /ready and /health/detailed
            # answer a slow 503. Counted, they would be 17% of the requests, all failed and slow.
            "pod A cannot reach the database: only its probes fail",
            [
                *dependencies(A, SETTLE, database=0),
                *dependencies(B, SETTLE),
                up(A, (SETTLE, 1)),
                up(B, (SETTLE, 1)),
                *probes(SETTLE, A, ready=False),
                *probes(SETTLE, B),
                *requests(Phase(SETTLE, ok=user_rpm), target=B),
            ],
            [
                fires(
                    SETTLED,
                    rules.DATABASE_UNREACHABLE,
                    expect(
                        rules.DATABASE_UNREACHABLE,
                        "critical",
                        {**A, "dependency": "database"},
                        {"$labels.pod": POD_A},
                    ),
                ),
                quiet(
                    SETTLED,
                    rules.REDIS_UNREACHABLE,
                    rules.API_DOWN,
                    rules.HIGH_ERROR_RATE,
                    rules.ERROR_BUDGET_BURN,
                    rules.HIGH_LATENCY,
                    rules.LATENCY_BUDGET_BURN,
                ),
                sample(SETTLED, series_names.requests_record("5m"), user_rpm / 60),
                # 0, not empty, although no user request has ever failed.
                sample(SETTLED, series_names.errors_record("5m"), 0),
                sample(SETTLED, series_names.slow_record("5m"), 0),
            ],
        ),
        case(
            "pod B cannot reach Redis",
            [*dependencies(A, 3), *dependencies(B, 3, redis=0)],
            [
                fires(
                    "3m",
                    rules.REDIS_UNREACHABLE,
                    expect(
                        rules.REDIS_UNREACHABLE,
                        "critical",
                        {**B, "dependency": "redis"},
                        {"$labels.pod": POD_B},
                    ),
                ),
                quiet("3m", rules.DATABASE_UNREACHABLE),
            ],
        ),
    ]


def error_burn_cases() -> list[dict[str, Any]]:
    """The multiwindow, multi-burn-rate alerts on a timeline of 1m samples: a one-minute spike, a
    ten-minute burn, then clean traffic; the rules evaluated every 5m."""
    spike = 100 * ERROR_BUDGET  # 5m hot, 1h and 30m not: above 72x, below 180x the budget
    burn = 2 * spike
    assert burn < 1
    errors = [
        Phase(60, ok=RPM),
        Phase(1, ok=RPM * (1 - spike), failed=RPM * spike),  # at 61m
        Phase(9, ok=RPM),
        Phase(10, ok=RPM * (1 - burn), failed=RPM * burn),  # from 71m to 80m
        Phase(35, ok=RPM),
    ]
    # Failed requests over the spike and the burn, in minutes' worth of traffic.
    failed = spike + 10 * burn

    def burning(severity: str, ratio: float) -> dict[str, Any]:
        values = {"$value | humanizePercentage": pct(ratio)}
        return expect(rules.ERROR_BUDGET_BURN, severity, JOB, values)

    return [
        case(
            "5xx: a spike, a burn, and the burn stopped",
            requests(*errors),
            [
                # The spike: the 5m window is hot, the 1h one is not: no page. The 1x ticket
                # (3d, 6h) is pending.
                quiet("65m", rules.ERROR_BUDGET_BURN),
                # The burn pages within minutes (with 72m of history, the 6h window as soon as
                # the 1h one). The ticket fires too: pending since the spike on its 1x pair.
                # Each alert's value is its first pair's long window: 1h and 1d.
                fires(
                    "80m",
                    rules.ERROR_BUDGET_BURN,
                    burning("critical", failed / 60),
                    burning("warning", failed / 80),
                ),
                sample("80m", series_names.errors_record("5m"), burn),
                # 35m after the burn the short windows (5m, 30m) are clean: the page resolves
                # although the 1h window is still far above 14.4x. The ticket's 2h window still
                # holds the burn.
                fires("115m", rules.ERROR_BUDGET_BURN, burning("warning", failed / 115)),
                sample("115m", series_names.errors_record("1h"), failed / 60),
            ],
        ),
    ]


def latency_burn_cases() -> list[dict[str, Any]]:
    slow_page, slow_ticket = 20 * LATENCY_BUDGET, 5 * LATENCY_BUDGET
    # Above the pages' 14.4x; above the tickets' 3x and below the pages' 6x.
    assert slow_page > 14.4 * LATENCY_BUDGET

    def burning(severity: str, ratio: float) -> dict[str, Any]:
        values = {"$value | humanizePercentage": pct(ratio)}
        return expect(rules.LATENCY_BUDGET_BURN, severity, JOB, values)

    return [
        case(
            "slow requests at 20x the latency budget",
            requests(Phase(10, ok=RPM, latency={THRESHOLD: 1 - slow_page, SLOW: slow_page})),
            # The page fires after 2m; the ticket's 15m have not elapsed.
            [
                fires(
                    "10m",
                    rules.LATENCY_BUDGET_BURN,
                    burning("critical", slow_page),
                )
            ],
        ),
        case(
            "slow requests at 5x the latency budget: a ticket, no page",
            requests(
                Phase(SETTLE, ok=RPM, latency={THRESHOLD: 1 - slow_ticket, SLOW: slow_ticket})
            ),
            [
                fires(
                    SETTLED,
                    rules.LATENCY_BUDGET_BURN,
                    burning("warning", slow_ticket),
                )
            ],
        ),
    ]


def page_burn_cases() -> list[dict[str, Any]]:
    """Hours of samples 5m apart, the rules evaluated every 5m: after 6 clean hours, 5xx at 18x
    the budget for 90 minutes, then none. Over 1h that is above the page's 14.4x, over 6h below
    its 6x: only the (1h, 5m) pair pages."""
    hours = 12  # samples per hour
    rpm = RPM * 5  # requests per sample
    page = 18 * ERROR_BUDGET
    failed = page * 1.5  # hours' worth of requests

    def burning(severity: str, ratio: float) -> dict[str, Any]:
        values = {"$value | humanizePercentage": pct(ratio)}
        return expect(rules.ERROR_BUDGET_BURN, severity, JOB, values)

    return [
        case(
            "5xx at 18x the budget for 90 minutes, then stopped",
            requests(
                Phase(6 * hours, ok=rpm),
                Phase(hours * 3 // 2, ok=rpm * (1 - page), failed=rpm * page),
                Phase(hours // 6, ok=rpm),
            ),
            [
                # The ticket's 1x pair (3d, 6h) has been hot since 6h25m: it fires too.
                fires(
                    "7h30m",
                    rules.ERROR_BUDGET_BURN,
                    burning("critical", page),
                    burning("warning", failed / 7.5),
                ),
                sample("7h30m", series_names.errors_record("6h"), failed / 6),
                # 5 minutes after the burn stopped the 5m window is clean: the page resolves,
                # although the 1h window (55 of its 60 minutes at 18x) still holds it, and 30m
                # would too.
                fires("7h35m", rules.ERROR_BUDGET_BURN, burning("warning", failed / (455 / 60))),
                sample("7h35m", series_names.errors_record("1h"), page * 55 / 60),
            ],
            interval="5m",
        ),
    ]


def slow_burn_cases() -> list[dict[str, Any]]:
    """Days of samples 5m apart, the rules evaluated every 30m."""
    hours = 12  # samples per hour
    rpm = RPM * 5  # requests per sample
    # 5xx at 5x the budget: above the tickets' 3x and 1x, below the pages' 6x. For 6 hours it is
    # too short to matter over 1d or 3d; on for a day it opens a ticket; 8 hours after it stopped
    # the 1d and 3d windows still hold it, the 2h and 6h ones no longer.
    ticket = 5 * ERROR_BUDGET
    return [
        case(
            "5xx at 5x the budget: 6 hours, a day, stopped",
            requests(
                Phase(30 * hours, ok=rpm),
                Phase(24 * hours, ok=rpm * (1 - ticket), failed=rpm * ticket),
                Phase(8 * hours, ok=rpm),
            ),
            [
                # 6h of it: 1.25x over 1d, 0.83x over the 36h there are.
                quiet("36h", rules.ERROR_BUDGET_BURN),
                fires(
                    "54h",
                    rules.ERROR_BUDGET_BURN,
                    expect(
                        rules.ERROR_BUDGET_BURN,
                        "warning",
                        JOB,
                        {"$value | humanizePercentage": pct(ticket)},
                    ),
                ),
                sample("54h", series_names.errors_record("1d"), ticket),
                sample("54h", series_names.errors_record("3d"), ticket * 24 / 54),
                # Stopped 8h ago: 1d (3.3x) and 3d (1.9x) are still hot, 2h and 6h are clean.
                quiet("62h", rules.ERROR_BUDGET_BURN),
            ],
            interval="5m",
        ),
    ]


def pod_cases() -> list[dict[str, Any]]:
    m = DEFAULTS.alerts
    return [
        case(
            "pods under pressure",
            [
                *pool(A, SETTLE, pool_over(m.db_pool_saturation_percent)),
                *pool(B, SETTLE, 1),
                *memory(POD_A, SETTLE, MEMORY_LIMIT * over(m.memory_percent)),
                *memory(POD_B, SETTLE, MEMORY_LIMIT * under(m.memory_percent, 40)),
                *cpu(POD_A, SETTLE, 0.01),
                *cpu(POD_B, SETTLE, over(m.cpu_throttled_percent)),
                *autoscaler(SETTLE, HPA_MAX),
            ],
            [
                fires(
                    SETTLED,
                    rules.DB_POOL_SATURATED,
                    expect(
                        rules.DB_POOL_SATURATED,
                        "warning",
                        A,
                        {
                            "$labels.pod": POD_A,
                            "$value | humanizePercentage": pct(
                                pool_over(m.db_pool_saturation_percent) / POOL_SIZE
                            ),
                        },
                    ),
                ),
                fires(
                    SETTLED,
                    rules.MEMORY_NEAR_LIMIT,
                    expect(
                        rules.MEMORY_NEAR_LIMIT,
                        "warning",
                        {"pod": POD_A},
                        {
                            "$labels.pod": POD_A,
                            "$value | humanizePercentage": pct(over(m.memory_percent)),
                        },
                    ),
                ),
                fires(
                    SETTLED,
                    rules.CPU_THROTTLED,
                    expect(
                        rules.CPU_THROTTLED,
                        "warning",
                        {"pod": POD_B},
                        {
                            "$labels.pod": POD_B,
                            "$value | humanizePercentage": pct(over(m.cpu_throttled_percent)),
                        },
                    ),
                ),
                fires(
                    SETTLED,
                    rules.AUTOSCALER_AT_MAXIMUM,
                    expect(
                        rules.AUTOSCALER_AT_MAXIMUM,
                        "warning",
                        {"horizontalpodautoscaler": SCOPE.job, **KSM},
                        {"$value": str(HPA_MAX)},
                    ),
                ),
            ],
        ),
    ]


def restart_cases() -> list[dict[str, Any]]:
    """Restarts 5m apart; the rules evaluated every 5m."""
    n = DEFAULTS.alerts.restarts_per_hour
    restarted = [5 * (i + 1) for i in range(n)]
    last = restarted[-1]
    hour_later = last + 65
    return [
        case(
            "restarts: the API's, below the threshold, and other pods'",
            [
                restarts(POD_A, restarted, hour_later),
                restarts(POD_B, restarted[1:], hour_later),
                restarts("demo-postgres-0", [1, *restarted], hour_later, "postgres"),
                restarts("demo-redis-6b8f9c7d5-q7w2e", [1, *restarted], hour_later, "redis"),
            ],
            [
                fires(
                    f"{last}m",
                    rules.PODS_RESTARTING,
                    expect(
                        rules.PODS_RESTARTING,
                        "warning",
                        {**container(POD_A), "uid": f"uid-{POD_A}", **KSM},
                        {"$labels.pod": POD_A, "$value | humanize": str(n)},
                    ),
                ),
                # More than an hour after the last restart, the window holds none of them.
                quiet(f"{hour_later}m", rules.PODS_RESTARTING),
            ],
        ),
    ]


def healthy_cases() -> list[dict[str, Any]]:
    m = DEFAULTS.alerts
    calm = {0.025: 1 - LATENCY_BUDGET / 2, SLOW: LATENCY_BUDGET / 2}
    healthy = Phase(
        SETTLE, ok=RPM / 2 * (1 - ERROR_BUDGET / 2), failed=RPM / 2 * ERROR_BUDGET / 2, latency=calm
    )
    # p95 interpolates to 0.25 + 0.25 * 45/47 = 0.489 s.
    fast_p95 = {0.1: 0.5, 0.5: 0.47, 1.0: 0.03}
    assert 0.25 + 0.25 * 45 / 47 < P95_THRESHOLD <= 0.5
    near = Phase(
        SETTLE, ok=RPM * (1 - ERROR_RATE / 2), failed=RPM * ERROR_RATE / 2, latency=fast_p95
    )
    return [
        case(
            "a healthy TaskManager",
            [
                up(A, (SETTLE, 1)),
                up(B, (SETTLE, 1)),
                *dependencies(A, SETTLE),
                *dependencies(B, SETTLE),
                *requests(healthy, target=A),
                *requests(healthy, target=B),
                *probes(SETTLE, A),
                *probes(SETTLE, B),
                *pool(A, SETTLE, 2),
                *pool(B, SETTLE, 1),
                *memory(POD_A, SETTLE, MEMORY_LIMIT / 2),
                *memory(POD_B, SETTLE, MEMORY_LIMIT / 2),
                *cpu(POD_A, SETTLE, 0.01),
                *cpu(POD_B, SETTLE, 0),
                restarts(POD_A, [], SETTLE),
                restarts(POD_B, [], SETTLE),
                *autoscaler(SETTLE, 3),
            ],
            [quiet(SETTLED, *ALERT_NAMES)],
        ),
        case(
            "everything just below its threshold, one of two pods down",
            [
                up(A, (3, 1), (SETTLE - 3, 0)),
                up(B, (SETTLE, 1)),
                *requests(near, target=B),
                *pool(B, SETTLE, pool_under(m.db_pool_saturation_percent)),
                *memory(POD_B, SETTLE, MEMORY_LIMIT * under(m.memory_percent)),
                *cpu(POD_B, SETTLE, under(m.cpu_throttled_percent)),
                restarts(POD_B, [3 * (i + 1) for i in range(m.restarts_per_hour - 1)], SETTLE),
                *autoscaler(SETTLE, HPA_MAX - 1),
            ],
            [
                quiet(
                    SETTLED,
                    rules.API_DOWN,
                    rules.HIGH_ERROR_RATE,
                    rules.HIGH_LATENCY,
                    rules.DB_POOL_SATURATED,
                    rules.MEMORY_NEAR_LIMIT,
                    rules.CPU_THROTTLED,
                    rules.PODS_RESTARTING,
                    rules.AUTOSCALER_AT_MAXIMUM,
                )
            ],
        ),
    ]


# The cases on custom thresholds, labels, runbooks and objectives.


def custom(name: str, labels: Mapping[str, str], values: Mapping[str, str]) -> dict[str, Any]:
    severity = "warning"
    return expect(
        name,
        severity,
        {**CUSTOM_LABELS, **labels},
        values,
        monitoring=CUSTOM,
        runbooks=CUSTOM_RUNBOOKS,
    )


def custom_cases() -> list[dict[str, Any]]:
    m = CUSTOM.alerts
    rate = m.error_rate_percent / 100
    guard_rpm = m.min_requests_per_second * 60
    assert guard_rpm < RPM
    # The objective's threshold is 1.0 s: 80% of the requests take 0.5-1.0 s (all slow for the
    # default 0.25 s), 20% take 1.0-2.5 s. p95 interpolates to 1.0 + 1.5 * 0.15/0.2 = 2.125 s.
    assert CUSTOM.slo.latency_threshold_seconds == 1.0
    slow = 0.2
    budget = round(1 - CUSTOM.slo.latency_percent / 100, 10)
    assert 3 * budget < slow < 6 * budget
    assert m.latency_p95_seconds < 2.125
    pressure = [
        *pool(A, SETTLE, pool_over(m.db_pool_saturation_percent)),
        *memory(POD_A, SETTLE, MEMORY_LIMIT * over(m.memory_percent)),
        *cpu(POD_A, SETTLE, over(m.cpu_throttled_percent)),
        restarts(POD_A, [3], SETTLE),
    ]
    assert pool_over(m.db_pool_saturation_percent) <= pool_under(
        DEFAULTS.alerts.db_pool_saturation_percent
    )
    return [
        case(
            "5xx above the custom error-rate threshold",
            requests(Phase(SETTLE, ok=RPM * (1 - rate - 0.05), failed=RPM * (rate + 0.05))),
            [
                fires(
                    SETTLED,
                    rules.HIGH_ERROR_RATE,
                    custom(
                        rules.HIGH_ERROR_RATE,
                        JOB,
                        {"$value | humanizePercentage": pct(rate + 0.05)},
                    ),
                )
            ],
        ),
        case(
            "5xx above the default threshold, below the custom one",
            requests(Phase(SETTLE, ok=RPM * (1 - rate / 2), failed=RPM * rate / 2)),
            [quiet(SETTLED, rules.HIGH_ERROR_RATE)],
        ),
        case(
            "half the requests fail, below the custom traffic guard",
            requests(Phase(SETTLE, ok=guard_rpm * 0.4, failed=guard_rpm * 0.4)),
            [quiet(SETTLED, rules.HIGH_ERROR_RATE)],
        ),
        case(
            'a latency objective at 1.0 s (le="1.0")',
            requests(Phase(SETTLE, ok=RPM, latency={1.0: 1 - slow, 2.5: slow})),
            [
                fires(
                    SETTLED,
                    rules.LATENCY_BUDGET_BURN,
                    custom(
                        rules.LATENCY_BUDGET_BURN,
                        JOB,
                        {"$value | humanizePercentage": pct(slow)},
                    ),
                ),
                fires(
                    SETTLED,
                    rules.HIGH_LATENCY,
                    custom(rules.HIGH_LATENCY, JOB, {"$value | humanizeDuration": "2.125s"}),
                ),
                sample(SETTLED, series_names.slow_record("5m"), slow),
            ],
        ),
        case(
            "every request just under 1.0 s",
            requests(Phase(SETTLE, ok=RPM, latency={1.0: 1.0})),
            [
                quiet(SETTLED, rules.LATENCY_BUDGET_BURN, rules.HIGH_LATENCY),
                sample(SETTLED, series_names.slow_record("5m"), 0),
            ],
        ),
        case(
            "a pod just over each custom threshold",
            pressure,
            [
                fires(
                    SETTLED,
                    rules.DB_POOL_SATURATED,
                    custom(
                        rules.DB_POOL_SATURATED,
                        A,
                        {
                            "$labels.pod": POD_A,
                            "$value | humanizePercentage": pct(
                                pool_over(m.db_pool_saturation_percent) / POOL_SIZE
                            ),
                        },
                    ),
                ),
                fires(
                    SETTLED,
                    rules.MEMORY_NEAR_LIMIT,
                    custom(
                        rules.MEMORY_NEAR_LIMIT,
                        {"pod": POD_A},
                        {
                            "$labels.pod": POD_A,
                            "$value | humanizePercentage": pct(over(m.memory_percent)),
                        },
                    ),
                ),
                fires(
                    SETTLED,
                    rules.CPU_THROTTLED,
                    custom(
                        rules.CPU_THROTTLED,
                        {"pod": POD_A},
                        {
                            "$labels.pod": POD_A,
                            "$value | humanizePercentage": pct(over(m.cpu_throttled_percent)),
                        },
                    ),
                ),
                fires(
                    SETTLED,
                    rules.PODS_RESTARTING,
                    custom(
                        rules.PODS_RESTARTING,
                        {**container(POD_A), "uid": f"uid-{POD_A}", **KSM},
                        {"$labels.pod": POD_A, "$value | humanize": "1"},
                    ),
                ),
            ],
        ),
    ]


# The suites: one rule file, one promtool run each.


@dataclass(frozen=True)
class Suite:
    name: str
    monitoring: Monitoring
    cases: Sequence[dict[str, Any]]
    evaluation_interval: str = "1m"


# promtool spends its time per evaluation of the rules, so cases that need hours of samples
# evaluate the rules less often than every minute (the `for`s still elapse between evaluations).
SUITES = (
    Suite(
        "defaults",
        DEFAULTS,
        [
            *api_down_cases(),
            *traffic_cases(),
            *latency_burn_cases(),
            *pod_cases(),
            *healthy_cases(),
        ],
    ),
    Suite(
        "defaults-every-5m",
        DEFAULTS,
        [*error_burn_cases(), *page_burn_cases(), *restart_cases()],
        evaluation_interval="5m",
    ),
    Suite("defaults-every-30m", DEFAULTS, slow_burn_cases(), evaluation_interval="30m"),
    Suite("custom", CUSTOM, custom_cases()),
)


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail(f"promtool is not on PATH: {PROMTOOL_HINT}", pytrace=False)
    return found


def run_promtool(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def write_rules(directory: Path, monitoring: Monitoring, *, autoscaling: bool = True) -> Path:
    groups = rule_groups(SCOPE, monitoring, autoscaling=autoscaling)
    path = directory / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    return path


def write_tests(directory: Path, suite: Suite) -> Path:
    rule_file = write_rules(directory, suite.monitoring)
    groups = [group["name"] for group in rule_groups(SCOPE, suite.monitoring, autoscaling=True)]
    tests = {
        "rule_files": [rule_file.name],
        "evaluation_interval": suite.evaluation_interval,
        # The recording rules first, so the alerts read this evaluation's SLIs.
        "group_eval_order": groups,
        "tests": list(suite.cases),
    }
    path = directory / "tests.yaml"
    path.write_text(yaml.safe_dump(tests, sort_keys=False))
    return path


# The tests.


CHECKED = {
    "defaults": (DEFAULTS, True),
    "without-autoscaling": (DEFAULTS, False),
    "alerts-disabled": (Monitoring.model_validate({"alerts": {"enabled": False}}), True),
    "custom": (CUSTOM, True),
    "latency-threshold-1.0": (
        Monitoring.model_validate({"slo": {"latencyThresholdSeconds": 1.0}}),
        True,
    ),
}


@pytest.mark.parametrize("variant", CHECKED)
def test_promtool_accepts_the_rules(variant: str, tmp_path: Path) -> None:
    monitoring, autoscaling = CHECKED[variant]
    path = write_rules(tmp_path, monitoring, autoscaling=autoscaling)
    result = run_promtool("check", "rules", path, cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    count = sum(len(group["rules"]) for group in yaml.safe_load(path.read_text())["groups"])
    assert f"SUCCESS: {count} rules found" in output, output


def test_promtool_accepts_every_latency_bucket_as_the_objective(tmp_path: Path) -> None:
    paths = []
    for bound in contract.LATENCY_BUCKETS:
        directory = tmp_path / le(bound)
        directory.mkdir()
        monitoring = Monitoring.model_validate({"slo": {"latencyThresholdSeconds": bound}})
        paths.append(write_rules(directory, monitoring))
        assert f'le="{le(bound)}"' in paths[-1].read_text()
    result = run_promtool("check", "rules", *paths, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_without_alerts_only_the_recording_rules_remain() -> None:
    monitoring, _ = CHECKED["alerts-disabled"]
    groups = rule_groups(SCOPE, monitoring, autoscaling=True)
    assert [group["name"] for group in groups] == [f"taskmanager-{SCOPE.name}.sli"]
    assert all(set(rule) == {"record", "expr"} for rule in groups[0]["rules"])


def test_without_a_scrape_object_of_ours_no_alert_claims_the_api_is_down() -> None:
    # The user's own scrape names the job: the absence of ours proves nothing.
    groups = rule_groups(SCOPE, Monitoring(scrape="None"), autoscaling=True)
    names = {rule["alert"] for group in groups for rule in group["rules"] if "alert" in rule}
    assert names == set(ALERT_NAMES) - {rules.API_DOWN}


@pytest.mark.parametrize("autoscaling", [True, False])
def test_the_autoscaler_alert_exists_only_with_autoscaling(autoscaling: bool) -> None:
    groups = rule_groups(SCOPE, DEFAULTS, autoscaling=autoscaling)
    names = {rule["alert"] for group in groups for rule in group["rules"] if "alert" in rule}
    expected = set(ALERT_NAMES) - (set() if autoscaling else {rules.AUTOSCALER_AT_MAXIMUM})
    assert names == expected


@pytest.fixture(scope="module")
def unit_test_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str | None]:
    """Each suite's promtool run, all at once (promtool spends seconds on the longer suites, on
    one core each): None for a run that passed, promtool's output for one that failed."""
    paths = {
        suite.name: write_tests(tmp_path_factory.mktemp(suite.name), suite) for suite in SUITES
    }
    with ThreadPoolExecutor(max_workers=len(paths)) as pool:
        runs = {
            name: pool.submit(run_promtool, "test", "rules", path, cwd=path.parent)
            for name, path in paths.items()
        }
        results = {name: run.result() for name, run in runs.items()}
    return {
        name: None if result.returncode == 0 else result.stdout + result.stderr
        for name, result in results.items()
    }


@pytest.mark.parametrize("suite", [suite.name for suite in SUITES])
def test_promtool_unit_tests_pass(suite: str, unit_test_runs: dict[str, str | None]) -> None:
    failure = unit_test_runs[suite]
    assert failure is None, f"promtool test rules failed on the {suite} suite:\n{failure}"


def test_every_alert_fires_and_stays_quiet_in_some_case() -> None:
    fired: set[tuple[str, str]] = set()
    quieted: set[str] = set()
    for suite in SUITES:
        for group in suite.cases:
            for check in group["alert_rule_test"]:
                if check["exp_alerts"]:
                    fired |= {
                        (check["alertname"], alert["exp_labels"]["severity"])
                        for alert in check["exp_alerts"]
                    }
                else:
                    quieted.add(check["alertname"])
    every = {(alert.name, alert.severity) for alert in alerts(SCOPE, DEFAULTS, autoscaling=True)}
    assert every - fired == set(), "alerts no case fires"
    assert set(ALERT_NAMES) - quieted == set(), "alerts no case keeps quiet"
