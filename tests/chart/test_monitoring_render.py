"""The operator's own monitoring in the chart, rendered with `helm template` (no cluster): the
ServiceMonitor and PrometheusRule only where the cluster serves prometheus-operator's kinds, the
dashboard ConfigMap always, each one off with its value; and the rendered rules, placeholders
filled, pass promtool and fire on the series the ServiceMonitor's `job` gives them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from taskmanager_operator.monitoring import operator_rules
from tests.chart.helm import CHART, Manifest, render, run, set_args, template
from tests.unit.test_operator_monitoring import (
    JOB,
    NAMESPACE,
    check_rules,
    run_promtool_tests,
)

SERVICE_MONITOR_API = "monitoring.coreos.com/v1/ServiceMonitor"
PROMETHEUS_RULE_API = "monitoring.coreos.com/v1/PrometheusRule"
MONITORING_APIS = ["--api-versions", SERVICE_MONITOR_API, "--api-versions", PROMETHEUS_RULE_API]
MONITORING_KINDS = {"ServiceMonitor", "PrometheusRule"}
ALL_MONITORING = {*MONITORING_KINDS, "ConfigMap"}
DASHBOARD = "tm-taskmanager-operator-dashboard"
# The release tests/chart render: "tm" in "taskmanager-system".
METRICS_SERVICE = JOB
FULLNAME = "tm-taskmanager-operator"


def of_kind(objects: list[Manifest], kind: str) -> list[Manifest]:
    return [obj for obj in objects if obj["kind"] == kind]


def monitoring_objects(objects: list[Manifest]) -> dict[str, Manifest]:
    """kind -> object, of the operator's monitoring objects among the rendered ones."""
    found = [obj for obj in objects if obj["kind"] in MONITORING_KINDS]
    found += [obj for obj in of_kind(objects, "ConfigMap") if obj["metadata"]["name"] == DASHBOARD]
    kinds = [obj["kind"] for obj in found]
    assert len(kinds) == len(set(kinds)), kinds
    return {obj["kind"]: obj for obj in found}


def test_without_the_monitoring_apis_only_the_dashboard_renders() -> None:
    objects = render()
    assert set(monitoring_objects(objects)) == {"ConfigMap"}
    assert not [obj for obj in objects if obj["apiVersion"].startswith("monitoring.coreos.com/")]


@pytest.mark.parametrize(
    ("api", "kind"),
    [(SERVICE_MONITOR_API, "ServiceMonitor"), (PROMETHEUS_RULE_API, "PrometheusRule")],
)
def test_each_kind_renders_only_where_its_api_is_served(api: str, kind: str) -> None:
    objects = render(extra=["--api-versions", api])
    assert set(monitoring_objects(objects)) == {"ConfigMap", kind}


def test_the_service_monitor_scrapes_the_metrics_service_as_its_job() -> None:
    objects = render(
        {
            "metrics.serviceMonitor.labels.release": "kube-prometheus-stack",
            "metrics.serviceMonitor.interval": "15s",
        },
        extra=MONITORING_APIS,
    )
    monitor = monitoring_objects(objects)["ServiceMonitor"]
    (service,) = of_kind(objects, "Service")
    assert service["metadata"]["name"] == METRICS_SERVICE
    labels = monitor["metadata"]["labels"]
    assert labels["release"] == "kube-prometheus-stack"
    assert labels["app.kubernetes.io/instance"] == "tm"
    spec = monitor["spec"]
    # It selects the Service by the Service's labels, in the release namespace.
    assert spec["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert spec["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    assert monitor["metadata"]["namespace"] == NAMESPACE
    (endpoint,) = spec["endpoints"]
    (port,) = service["spec"]["ports"]
    assert endpoint["port"] == port["name"] == "metrics"
    assert endpoint["path"] == "/metrics"
    assert endpoint["interval"] == "15s"
    assert endpoint["honorLabels"] is True
    assert endpoint["relabelings"] == [
        {"action": "replace", "targetLabel": "job", "replacement": METRICS_SERVICE}
    ]
    # The operator's pod serves the port the Service targets.
    (deployment,) = of_kind(objects, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert {"name": "metrics", "containerPort": 8081, "protocol": "TCP"} in container["ports"]
    assert port["targetPort"] == "metrics"


def test_an_empty_interval_leaves_it_to_prometheus() -> None:
    objects = render({"metrics.serviceMonitor.interval": ""}, extra=MONITORING_APIS)
    (endpoint,) = monitoring_objects(objects)["ServiceMonitor"]["spec"]["endpoints"]
    assert "interval" not in endpoint


def _rule_groups(objects: list[Manifest]) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = monitoring_objects(objects)["PrometheusRule"]["spec"]["groups"]
    return groups


def test_the_prometheus_rule_has_the_operators_alerts_for_this_release() -> None:
    objects = render(
        {"metrics.prometheusRule.labels.release": "kube-prometheus-stack"}, extra=MONITORING_APIS
    )
    rule = monitoring_objects(objects)["PrometheusRule"]
    assert rule["metadata"]["name"] == FULLNAME
    assert rule["metadata"]["namespace"] == NAMESPACE
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    groups = _rule_groups(objects)
    assert groups == operator_rules.rule_groups(METRICS_SERVICE, NAMESPACE)
    assert [r["alert"] for r in groups[0]["rules"]] == list(operator_rules.OPERATOR_ALERT_NAMES)
    assert "__OPERATOR_" not in json.dumps(groups)


def test_the_rules_follow_the_release_name_and_namespace() -> None:
    objects = render(
        {"fullnameOverride": "ops"}, extra=MONITORING_APIS, release="other", namespace="ops-ns"
    )
    groups = _rule_groups(objects)
    assert groups == operator_rules.rule_groups("ops-metrics", "ops-ns")
    (endpoint,) = monitoring_objects(objects)["ServiceMonitor"]["spec"]["endpoints"]
    assert endpoint["relabelings"][0]["replacement"] == "ops-metrics"


def test_the_rendered_rules_pass_promtool_check_and_fire(tmp_path: Path) -> None:
    groups = _rule_groups(render(extra=MONITORING_APIS))
    check_rules(groups, tmp_path)
    run_promtool_tests(groups, METRICS_SERVICE, NAMESPACE, tmp_path)


def test_the_dashboard_config_map_holds_the_generated_dashboard() -> None:
    objects = render({"metrics.dashboard.folder": "Platform"})
    config_map = monitoring_objects(objects)["ConfigMap"]
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["annotations"] == {"grafana_folder": "Platform"}
    (content,) = config_map["data"].values()
    committed = (CHART / "files" / "monitoring" / operator_rules.DASHBOARD_FILE).read_text()
    assert json.loads(content) == json.loads(committed)
    assert json.loads(content)["uid"] == "taskmanager-operator"
    default = monitoring_objects(render())["ConfigMap"]
    assert "annotations" not in default["metadata"]


def test_the_charts_labels_win_over_extra_labels() -> None:
    objects = render(
        {
            "metrics.dashboard.labels.app\\.kubernetes\\.io/name": "mine",
            "metrics.dashboard.labels.team": "platform",
        }
    )
    labels = monitoring_objects(objects)["ConfigMap"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == "taskmanager-operator"
    assert labels["team"] == "platform"
    assert labels["grafana_dashboard"] == "1"


@pytest.mark.parametrize(
    ("value", "removed"),
    [
        ("metrics.serviceMonitor.enabled", {"ServiceMonitor"}),
        ("metrics.prometheusRule.enabled", {"PrometheusRule"}),
        ("metrics.dashboard.enabled", {"ConfigMap"}),
        ("metrics.enabled", {"ServiceMonitor", "PrometheusRule", "ConfigMap"}),
    ],
)
def test_turning_a_value_off_removes_its_object(value: str, removed: set[str]) -> None:
    objects = render({value: False}, extra=MONITORING_APIS)
    assert set(monitoring_objects(objects)) == ALL_MONITORING - removed
    result = run("helm", "lint", "--strict", str(CHART), *set_args({value: False}))
    assert "0 chart(s) failed" in result.stdout, result.stdout


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        pytest.param(
            ["--set", "metrics.serviceMonitor.scrapeInterval=1m"],
            "additional properties 'scrapeInterval' not allowed",
            id="unknown-key",
        ),
        pytest.param(
            ["--set-string", "metrics.serviceMonitor.interval=often"],
            "at '/metrics/serviceMonitor/interval': 'often' does not match pattern",
            id="bad-interval",
        ),
        pytest.param(
            ["--set", "metrics.prometheusRule.enabled=yes"],
            "got string, want boolean",
            id="wrong-type",
        ),
    ],
)
def test_bad_monitoring_values_are_refused(flags: list[str], message: str) -> None:
    result = template(extra=flags, check=False)
    assert result.returncode != 0, result.stdout
    assert message in result.stderr, result.stderr


def test_the_rule_file_is_a_prometheus_rule_file_with_placeholders() -> None:
    text = (CHART / "files" / "monitoring" / operator_rules.RULES_FILE).read_text()
    assert set(yaml.safe_load(text)) == {"groups"}
