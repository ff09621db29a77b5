"""Every expression of a TaskManager's generated PrometheusRule and dashboard, against a real
Prometheus scraping two real API processes ("pods") on PostgreSQL and a Redis this module owns.

One module-wide setup: the two pods on one migrated database, a kubelet that probes /ready about
once a second, a bounded load (good requests, 4xx, rejected credentials, a rate limit, and no 5xx
while everything is healthy), and a Prometheus that scrapes both every second with the
labels a ServiceMonitor gives and evaluates the generated rules every second. Then the rules must
all be healthy, every dashboard query must answer, every recording rule must record and no alert
may stir; and once Redis stops, TaskManagerRedisUnreachable must go pending for both pods.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from taskmanager_api import metric_contract as names
from taskmanager_operator.api.v1alpha1 import Monitoring
from taskmanager_operator.monitoring import dashboard, grafana, rules
from taskmanager_operator.monitoring.series import Scope, request_rate
from tests.api.helpers import API, Account, ApiClient
from tests.api.processes import (
    ApiProcess,
    production_environment,
    run_api,
)
from tests.support.prometheus import PrometheusError, PrometheusProcess
from tests.support.services import PostgresServer, RedisProcess, create_database, redis_process
from tests.support.wait import wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

NAMESPACE = "team-a"
JOB = "demo-api"
SCOPE = Scope(NAMESPACE, "demo", JOB)
MONITORING = Monitoring()
PODS = ("demo-api-7d9f8b6c5d-aaaaa", "demo-api-7d9f8b6c5d-bbbbb")
SELECTOR = f'namespace="{NAMESPACE}", job="{JOB}"'
# What Grafana's $__rate_interval becomes: at least four scrape intervals (1 s here).
RATE_INTERVAL = "15s"
# This module's own Redis, which it stops and starts again.
REDIS_DB = 0

# The load: bounded in rounds and in time. A round is 8 requests on each pod, 6 of them as the
# pod's user.
LOAD_ROUNDS = 25
LOAD_SECONDS = 20
# Requests a minute per user and per client address: above a user's share of the load (6 a round),
# and reached on purpose by the address, whose refresh attempts (cheap 401s) run into a 429.
RATE_LIMIT = 200
# The kubelet probes until the module ends, and never longer than this.
KUBELET_SECONDS = 300
KUBELET_INTERVAL = 1.0

# Dashboard panels that break 5xx down by route: no series at all until a request fails with a 5xx
# (the healthy phase has none by design); the Redis outage gives them their first samples.
PANELS_OF_5XX = {"5xx by route"}
# Alerts on kube-state-metrics and cAdvisor series, which no exporter serves here.
KUBERNETES_ALERTS = {
    rules.PODS_RESTARTING,
    rules.MEMORY_NEAR_LIMIT,
    rules.CPU_THROTTLED,
    rules.AUTOSCALER_AT_MAXIMUM,
}
LOG_TAIL_CHARS = 3000
# The latency alerts, with the latency they count as slow and the least share of slow requests
# that can make their condition hold: for the burn alerts, the lowest burn rate times the budget;
# for the p95 one, 5% above its threshold.
LATENCY_ALERTS = {
    rules.LATENCY_BUDGET_BURN: (
        MONITORING.slo.latency_threshold_seconds,
        min(rate for _, _, rate in rules.PAGE_BURNS + rules.TICKET_BURNS)
        * (1 - MONITORING.slo.latency_percent / 100),
    ),
    rules.HIGH_LATENCY: (MONITORING.alerts.latency_p95_seconds, 0.05),
}


class Kubelet:
    """Probes /ready on each pod about once a second, as a readinessProbe would: the probes are
    what keeps taskmanager_dependency_up fresh. One thread per pod (a probe of a pod whose Redis is
    gone takes the check's 2 s timeout), each stopping on leaving the `with` or after
    KUBELET_SECONDS."""

    def __init__(self, urls: dict[str, str]) -> None:
        self.urls = urls
        self.last: dict[str, int | str] = {}
        self.probes: Counter[str] = Counter()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(
                target=self._probe, args=(pod, url), daemon=True, name=f"kubelet-{pod}"
            )
            for pod, url in urls.items()
        ]

    def __enter__(self) -> Kubelet:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)

    def _probe(self, pod: str, url: str) -> None:
        deadline = time.monotonic() + KUBELET_SECONDS
        with httpx.Client(timeout=5, trust_env=False) as client:
            while time.monotonic() < deadline:
                try:
                    self.last[pod] = client.get(f"{url}/ready").status_code
                except httpx.HTTPError as error:
                    self.last[pod] = type(error).__name__
                self.probes[pod] += 1
                # The probe period; set() ends it at once.
                if self._stop.wait(KUBELET_INTERVAL):
                    return


@dataclass
class LoadReport:
    """What the load's requests were answered with, by status."""

    statuses: Counter[int] = field(default_factory=Counter)
    rounds: int = 0
    seconds: float = 0.0

    def record(self, response: httpx.Response, *expected: int) -> None:
        self.statuses[response.status_code] += 1
        assert response.status_code in expected, (
            f"{response.request.method} {response.request.url}: expected {expected}, got "
            f"{response.status_code}: {response.text[:500]}"
        )


@dataclass
class Stack:
    prometheus: PrometheusProcess
    apis: dict[str, ApiProcess]
    redis: RedisProcess
    kubelet: Kubelet
    groups: list[dict[str, Any]]
    accounts: dict[str, Account]
    load: LoadReport

    def diagnostics(self) -> str:
        """Prometheus' log and each pod's, for a failure's message."""
        parts = [f"--- prometheus log ---\n{self.prometheus.log_tail()}"]
        for pod, api in self.apis.items():
            parts.append(f"--- {pod} log ---\n{api.output()[-LOG_TAIL_CHARS:]}")
        parts.append(f"--- kubelet: last /ready {self.kubelet.last}, probes {self.kubelet.probes}")
        parts.append(f"--- load: {self.load}")
        return "\n".join(parts)

    def wait_for_query(self, expr: str, what: str, timeout: float = 30) -> list[dict[str, Any]]:
        """Prometheus' wait_for_query; a timeout fails with the logs."""
        try:
            return self.prometheus.wait_for_query(expr, timeout=timeout, what=what)
        except AssertionError as error:
            pytest.fail(f"{error}\n{self.diagnostics()}")

    def rules_of(self, kind: str) -> list[dict[str, Any]]:
        """The generated rules that have `kind` ("record" or "alert")."""
        return [rule for group in self.groups for rule in group["rules"] if kind in rule]


def scrape_config(apis: dict[str, ApiProcess]) -> dict[str, Any]:
    """Both pods as one ServiceMonitor's endpoints: the target labels its relabelling gives."""
    return {
        "job_name": f"serviceMonitor/{NAMESPACE}/{JOB}/0",
        "metrics_path": "/metrics",
        "static_configs": [
            {
                "targets": [api.url.removeprefix("http://")],
                "labels": {
                    "namespace": NAMESPACE,
                    "service": JOB,
                    "job": JOB,
                    "pod": pod,
                    "container": "api",
                    "endpoint": "http",
                },
            }
            for pod, api in apis.items()
        ],
    }


async def drive_load(apis: dict[str, ApiProcess]) -> tuple[dict[str, Account], LoadReport]:
    """Good requests, 4xx, rejected credentials and a rate limit on both pods, never a 5xx; at
    most LOAD_ROUNDS rounds and LOAD_SECONDS seconds."""
    report = LoadReport()
    started = time.monotonic()
    async with contextlib.AsyncExitStack() as exits:
        clients = {
            pod: ApiClient(
                await exits.enter_async_context(
                    httpx.AsyncClient(base_url=api.url, timeout=10, trust_env=False)
                )
            )
            for pod, api in apis.items()
        }
        pods = list(clients)
        # Each pod's user registers on one pod and logs in on the other: one database, one key.
        accounts: dict[str, Account] = {}
        for index, pod in enumerate(pods):
            email = f"load-{uuid.uuid4().hex[:10]}@example.com"
            await clients[pods[index - 1]].register(email)
            accounts[pod] = await clients[pod].login(email)
        await exhaust_address_limit(list(clients.values()), report)
        deadline = started + LOAD_SECONDS
        while report.rounds < LOAD_ROUNDS and time.monotonic() < deadline:
            await asyncio.gather(*(one_round(clients[pod], accounts[pod], report) for pod in pods))
            report.rounds += 1
    report.seconds = time.monotonic() - started
    return accounts, report


async def exhaust_address_limit(clients: list[ApiClient], report: LoadReport) -> None:
    """Refreshes with a token that is none (401s, rejected credentials) from one address, on both
    pods, until its rate limit answers 429."""
    batch = 20
    for start in range(0, RATE_LIMIT + 2 * batch, batch):
        responses = await asyncio.gather(
            *(
                clients[index % len(clients)].post(
                    f"{API}/auth/refresh", json={"refresh_token": "not.a.token"}
                )
                for index in range(start, start + batch)
            )
        )
        for response in responses:
            report.record(response, 401, 429)
        if any(response.status_code == 429 for response in responses):
            return
    raise AssertionError(f"no 429 after {RATE_LIMIT + 2 * batch} refreshes from one address")


async def one_round(api: ApiClient, account: Account, report: LoadReport) -> None:
    created = await api.post(f"{API}/tasks", as_=account, json={"title": "load"})
    report.record(created, 201)
    task_id = created.json()["id"]
    bad_token = {"Authorization": "Bearer not.a.token"}
    expected = [
        # Twice: a miss of the read cache, then a hit (or two hits).
        (api.get(f"{API}/tasks/{task_id}", as_=account), 200),
        (api.get(f"{API}/tasks/{task_id}", as_=account), 200),
        (api.get(f"{API}/tasks", as_=account, params={"limit": 5}), 200),
        (api.get(f"{API}/tasks/{uuid.uuid4()}", as_=account), 404),
        (api.post(f"{API}/tasks", as_=account, json={"title": ""}), 422),
        (api.get(f"{API}/tasks", headers=bad_token), 401),
        (api.get(f"{API}/tasks"), 401),
    ]
    responses = await asyncio.gather(*(request for request, _ in expected))
    for response, (_, status) in zip(responses, expected, strict=True):
        report.record(response, status)


@pytest.fixture(scope="module")
def stack(
    postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("monitoring")
    with contextlib.ExitStack() as exits:
        redis = exits.enter_context(redis_process())
        database_url = asyncio.run(
            create_database(postgres_server, f"taskmanager_monitoring_{uuid.uuid4().hex[:8]}")
        )
        env = production_environment(
            workdir,
            database_url=database_url,
            redis_url=redis.server.url(REDIS_DB),
            redis_key_prefix="monitoring:",
            # A probe or request finds a stopped Redis out quickly.
            redis_timeout="0.5",
            rate_limit_per_minute=RATE_LIMIT,
        )
        groups = rules.rule_groups(SCOPE, MONITORING, autoscaling=True)
        rule_file = workdir / "rules.yaml"
        rule_file.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
        # One after the other: the first pod migrates the database before it answers, as an init
        # step would. (Started at once they only compete for the CPU.)
        apis: dict[str, ApiProcess] = {}
        apis[PODS[0]] = exits.enter_context(run_api(env, workdir, "--migrate", name="pod-a"))
        apis[PODS[1]] = exits.enter_context(run_api(env, workdir, name="pod-b"))
        prometheus = exits.enter_context(
            PrometheusProcess(
                scrape_configs=[scrape_config(apis)],
                rule_files=[rule_file],
                scrape_interval="1s",
                evaluation_interval="1s",
            )
        )
        kubelet = exits.enter_context(Kubelet({pod: api.url for pod, api in apis.items()}))
        try:
            prometheus.wait_for_query(
                f"count(up{{{SELECTOR}}} == 1) == 2", timeout=30, what="both pods to be scraped"
            )
            # A series' first sample is no increase to rate(): one request on each pod before
            # the load, scraped, so the load shows as growth at whichever scrape comes next (on a
            # busy machine that may be after the short load has ended).
            for api in apis.values():
                assert httpx.get(f"{api.url}{API}/tasks", trust_env=False).status_code == 401
            prometheus.wait_for_query(
                f"count({names.HTTP_REQUESTS}{{{SCOPE.traffic}}}) >= 2",
                timeout=30,
                what="the traffic series of both pods to be scraped before the load",
            )
            accounts, load = asyncio.run(drive_load(apis))
            prometheus.wait_for_query(
                f"{request_rate(SCOPE, '5m')} > 0",
                timeout=30,
                what="a scrape to see the load's requests",
            )
        except AssertionError as error:
            logs = "\n".join(
                [prometheus.log_tail(), *(api.output()[-LOG_TAIL_CHARS:] for api in apis.values())]
            )
            pytest.fail(f"setting up the monitored pods failed: {error}\n{logs}")
        yield Stack(prometheus, apis, redis, kubelet, groups, accounts, load)


def test_the_load_was_what_the_healthy_phase_needs(stack: Stack) -> None:
    load = stack.load
    assert load.rounds >= 5, f"the load ran only {load.rounds} rounds\n{stack.diagnostics()}"
    assert not [status for status in load.statuses if status >= 500], stack.diagnostics()
    assert {200, 201, 401, 404, 422, 429} <= set(load.statuses), stack.diagnostics()


def wait_for_evaluated_rules(stack: Stack) -> list[dict[str, Any]]:
    """Prometheus' view of our rules once each has been evaluated (health no longer "unknown")."""
    expected = len(stack.rules_of("record")) + len(stack.rules_of("alert"))

    def evaluated() -> list[dict[str, Any]] | None:
        loaded = [rule for group in stack.prometheus.rules()["groups"] for rule in group["rules"]]
        if len(loaded) != expected or any(rule["health"] == "unknown" for rule in loaded):
            return None
        return loaded

    try:
        return wait_until(evaluated, timeout=30, interval=0.5, what="every rule to be evaluated")
    except AssertionError as error:
        pytest.fail(f"{error}\n{stack.diagnostics()}")


def test_every_rule_evaluates_without_error(stack: Stack) -> None:
    loaded = wait_for_evaluated_rules(stack)
    bad = [
        f"{rule.get('name')} ({rule['type']}): health {rule['health']}: {rule.get('lastError')}\n"
        f"{rule['query']}"
        for rule in loaded
        if rule["health"] != "ok"
    ]
    assert not bad, "\n\n".join(bad) + f"\n{stack.diagnostics()}"
    names_loaded = {rule["name"] for rule in loaded}
    generated = {rule["record"] for rule in stack.rules_of("record")} | {
        rule["alert"] for rule in stack.rules_of("alert")
    }
    assert names_loaded == generated, stack.diagnostics()


@dataclass(frozen=True)
class DashboardQuery:
    panel: str
    query: grafana.Query

    @property
    def expr(self) -> str:
        """The expression as Grafana sends it, its $__rate_interval filled in."""
        return self.query.expr.replace(grafana.RATE, RATE_INTERVAL)

    def __str__(self) -> str:
        return f"panel {self.panel!r}, legend {self.query.legend!r}:\n{self.expr}"


def dashboard_queries() -> list[DashboardQuery]:
    found = [
        DashboardQuery(panel.title, query)
        for row in dashboard.rows(SCOPE, MONITORING)
        for panel in row.panels
        for query in panel.queries
    ]
    # What Grafana imports is what is checked here: the JSON's targets, in order.
    model = dashboard.build(SCOPE, MONITORING)
    targets = [target["expr"] for panel in model["panels"] for target in panel.get("targets", [])]
    assert targets == [query.query.expr for query in found]
    return found


def test_every_dashboard_query_answers(stack: Stack) -> None:
    prometheus = stack.prometheus
    queries = dashboard_queries()
    assert {query.panel for query in queries} >= PANELS_OF_5XX
    for query in queries:
        # Grafana fills in its variables; anything left would reach Prometheus as written (a
        # label_replace's `${1}` is no variable: Grafana leaves names it does not know).
        assert "${datasource}" not in query.expr
        assert not re.search(r"\$\{?[A-Za-z_]", query.expr), f"an unfilled variable in {query}"
    failed: list[str] = []
    for query in queries:
        try:
            prometheus.query(query.expr)
        except PrometheusError as error:
            failed.append(f"{query}\n-> {error}")
    assert not failed, "\n\n".join(failed) + f"\n{stack.diagnostics()}"

    # The app's own series answer, once the rates have two samples in their window.
    must_answer = [
        query
        for query in queries
        if query.query.source == "app" and query.panel not in PANELS_OF_5XX
    ]
    pending = list(must_answer)

    def answered() -> bool:
        pending[:] = [query for query in pending if not prometheus.query(query.expr)]
        return not pending

    try:
        wait_until(answered, timeout=30, interval=0.5, what="every app query to return samples")
    except AssertionError:
        pytest.fail(
            "no samples for:\n\n"
            + "\n\n".join(str(query) for query in pending)
            + f"\n{stack.diagnostics()}"
        )
    # The kubernetes ones may be empty here (no kube-state-metrics, no cAdvisor) but did answer.
    assert [query for query in queries if query.query.source == "kubernetes"]


def test_every_recording_rule_records_a_series(stack: Stack) -> None:
    prometheus = stack.prometheus
    records = [rule["record"] for rule in stack.rules_of("record")]
    assert any(record.endswith("rate3d") for record in records), records
    pending = list(records)

    def recorded() -> bool:
        pending[:] = [
            record for record in pending if not prometheus.query(f"{record}{{{SELECTOR}}}")
        ]
        return not pending

    try:
        wait_until(recorded, timeout=30, interval=0.5, what="every recording rule's series")
    except AssertionError:
        pytest.fail(f"no series recorded for {pending}\n{stack.diagnostics()}")
    # With traffic and no 5xx the error ratio is 0, not missing: the dashboard shows 0%.
    for window in ("5m", "3d"):
        ratio = prometheus.query_value(f"taskmanager:http_errors:ratio_rate{window}{{{SELECTOR}}}")
        assert ratio == 0, f"error ratio over {window}: {ratio}\n{stack.diagnostics()}"


def is_on_kubernetes_series(expr: str) -> bool:
    # What follows `unless` only silences an alert (an API scaled to zero): not what it reads.
    condition = expr.split("unless", 1)[0]
    return re.search(r"\b(kube|container)_[a-z_]+", condition) is not None


def test_every_alert_evaluates_and_none_stirs_while_healthy(stack: Stack) -> None:
    prometheus = stack.prometheus
    alerting = stack.rules_of("alert")
    assert {rule["alert"] for rule in alerting} == set(rules.ALERT_NAMES)
    assert {
        rule["alert"] for rule in alerting if is_on_kubernetes_series(rule["expr"])
    } == KUBERNETES_ALERTS
    # The dependency gauges the dependency alerts read are there and say "up".
    stack.wait_for_query(
        f"count({names.DEPENDENCY_UP}{{{SELECTOR}}} == 1) == 4",
        "both dependencies up on both pods",
    )
    wait_for_evaluated_rules(stack)
    failed: list[str] = []
    slow: list[str] = []
    for rule in alerting:
        try:
            samples = prometheus.query(rule["expr"])
        except PrometheusError as error:
            failed.append(f"{rule['alert']}: {error}\n{rule['expr']}")
            continue
        if not samples:
            continue
        if rule["alert"] in LATENCY_ALERTS:
            # This machine's speed, not the app's health: the condition may hold only if the
            # app's own histograms, read apart from Prometheus, show that many slow requests.
            bound, share = LATENCY_ALERTS[rule["alert"]]
            measured = slow_share(stack.apis, bound)
            if measured > share / 2:
                slow.append(rule["alert"])
                continue
            failed.append(
                f"{rule['alert']} holds while only {measured:.2%} of requests took over "
                f"{bound:g}s: {samples}\n{rule['expr']}"
            )
            continue
        # While everything is healthy no other alert's condition holds, whatever it reads.
        failed.append(f"{rule['alert']} holds while healthy: {samples}\n{rule['expr']}")
    assert not failed, "\n\n".join(failed) + f"\n{stack.diagnostics()}"
    stirred = [
        f"{alert['labels'].get('alertname')} {alert['state']} {alert['labels']}"
        for alert in prometheus.alerts()
        if alert["labels"].get("alertname") not in slow
    ]
    assert not stirred, "\n".join(stirred) + f"\n{stack.diagnostics()}"


def slow_share(apis: dict[str, ApiProcess], bound: float) -> float:
    """Share of the user requests both pods served in more than `bound` seconds (a bucket bound),
    from their /metrics: what the latency rules compute, counted without Prometheus."""
    within = total = 0.0
    with httpx.Client(timeout=10, trust_env=False) as client:
        for api in apis.values():
            for family in text_string_to_metric_families(client.get(f"{api.url}/metrics").text):
                if family.name != names.HTTP_REQUEST_DURATION:
                    continue
                for sample in family.samples:
                    if sample.labels["route"] in names.OPERATIONS_ROUTES:
                        continue
                    if sample.name.endswith("_count"):
                        total += sample.value
                    elif sample.name.endswith("_bucket") and float(sample.labels["le"]) == bound:
                        within += sample.value
    assert total, "no user request was measured"
    return 1 - within / total


def active_alerts(prometheus: PrometheusProcess, alertname: str) -> list[dict[str, Any]]:
    return [
        alert
        for alert in prometheus.alerts()
        if alert["labels"].get("alertname") == alertname and alert["state"] in ("pending", "firing")
    ]


def test_redis_going_away_is_seen_and_alerted(stack: Stack) -> None:
    prometheus, redis = stack.prometheus, stack.redis
    down = f'{names.DEPENDENCY_UP}{{{SELECTOR}, dependency="redis"}} == 0'
    try:
        redis.stop()
        stack.wait_for_query(f"count({down}) == 2", "redis to be down on both pods")
        assert {sample["metric"]["pod"] for sample in prometheus.query(down)} == set(PODS)

        def on_both_pods() -> list[dict[str, Any]] | None:
            found = active_alerts(prometheus, rules.REDIS_UNREACHABLE)
            return found if len(found) == len(PODS) else None

        try:
            alerts = wait_until(
                on_both_pods,
                timeout=15,
                interval=0.5,
                what=f"{rules.REDIS_UNREACHABLE} pending or firing for both pods",
            )
        except AssertionError as error:
            pytest.fail(f"{error}\nalerts: {prometheus.alerts()}\n{stack.diagnostics()}")
        for alert in alerts:
            labels = alert["labels"]
            assert labels["severity"] == "critical", alert
            assert labels["namespace"] == NAMESPACE, alert
            assert labels["taskmanager"] == SCOPE.name, alert
            assert labels["dependency"] == "redis", alert
            assert alert["annotations"]["runbook_url"].endswith(f"{rules.REDIS_UNREACHABLE}.md"), (
                alert
            )
        assert {alert["labels"]["pod"] for alert in alerts} == set(PODS)

        # Requests that need Redis fail, with a 503 (and without Redis there is no
        # authentication): the 5xx panels get their first series.
        statuses = asyncio.run(requests_without_redis(stack))
        assert set(statuses) == {503}, f"{statuses}\n{stack.diagnostics()}"
        for query in dashboard_queries():
            if query.panel in PANELS_OF_5XX:
                samples = stack.wait_for_query(query.expr, f"samples for {query}")
                assert {sample["metric"]["status"] for sample in samples} == {"503"}, samples

        # A series' first sample is no increase to rate(): 503s that all came before the scrape
        # that first saw their series would never count. Failing traffic goes on, as it would,
        # until a scrape has seen the counter grow.
        def errors_counted() -> list[dict[str, Any]] | None:
            statuses = asyncio.run(requests_without_redis(stack))
            assert set(statuses) == {503}, f"{statuses}\n{stack.diagnostics()}"
            return (
                prometheus.query(f"taskmanager:http_errors:ratio_rate5m{{{SELECTOR}}} > 0") or None
            )

        try:
            wait_until(
                errors_counted, timeout=60, interval=1, what="the 5m error ratio to count the 503s"
            )
        except AssertionError as error:
            pytest.fail(f"{error}\n{stack.diagnostics()}")

        # The database is fine: its gauge stays 1 and its alert quiet.
        database_up = f'{names.DEPENDENCY_UP}{{{SELECTOR}, dependency="database"}} == 1'
        assert len(prometheus.query(database_up)) == 2, stack.diagnostics()
        assert not active_alerts(prometheus, rules.DATABASE_UNREACHABLE), (
            f"{prometheus.alerts()}\n{stack.diagnostics()}"
        )
    finally:
        if redis.process is None:
            redis.start()

    # Redis is back (empty, as a rescheduled pod's would be): the probes see it again.
    stack.wait_for_query(
        f'count({names.DEPENDENCY_UP}{{{SELECTOR}, dependency="redis"}} == 1) == 2',
        "redis to be up again on both pods",
    )


async def requests_without_redis(stack: Stack) -> list[int]:
    """Two authenticated reads per pod, at once (each spends the store's reconnect budget)."""
    async with httpx.AsyncClient(timeout=30, trust_env=False) as http:
        responses = await asyncio.gather(
            *(
                http.get(f"{stack.apis[pod].url}{API}/tasks", headers=account.headers)
                for pod, account in stack.accounts.items()
                for _ in range(2)
            )
        )
    return [response.status_code for response in responses]
