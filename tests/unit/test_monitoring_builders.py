"""The monitoring children as the builders make them: what Prometheus, the Grafana sidecar and
grafana-operator read from each field, checked against the API's own Service and pods."""

from __future__ import annotations

import json
from typing import Any

import pytest

from taskmanager_operator.builders import api, monitoring
from taskmanager_operator.builders.common import selector_labels
from taskmanager_operator.monitoring import dashboard
from tests.unit.test_builders import NAME, NAMESPACE, deployment, taskmanager


def built(manifest: dict[str, Any] | None) -> dict[str, Any]:
    assert manifest is not None
    return manifest


def test_the_service_monitor_scrapes_the_api_service_port_and_names_the_job() -> None:
    tm = taskmanager({"monitoring": {"interval": "15s"}})
    service = api.build_service(tm)
    monitor = built(monitoring.build_service_monitor(tm))
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}
    assert (endpoint["path"], endpoint["interval"]) == ("/metrics", "15s")
    assert endpoint["relabelings"] == [
        {"action": "replace", "targetLabel": "job", "replacement": service["metadata"]["name"]}
    ]
    assert monitoring.build_pod_monitor(tm) is None


def test_the_pod_monitor_scrapes_the_api_container_port_with_the_same_job() -> None:
    tm = taskmanager({"monitoring": {"scrape": "PodMonitor"}})
    pods = deployment(tm)["spec"]["template"]
    monitor = built(monitoring.build_pod_monitor(tm))
    assert monitor["spec"]["selector"]["matchLabels"].items() <= pods["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    (container,) = pods["spec"]["containers"]
    assert endpoint["port"] in {port["name"] for port in container["ports"]}
    assert endpoint["relabelings"][0]["replacement"] == f"{NAME}-api"
    assert monitoring.build_service_monitor(tm) is None


def test_scrape_none_makes_no_scrape_object_but_keeps_the_rules() -> None:
    tm = taskmanager({"monitoring": {"scrape": "None"}})
    assert monitoring.build_service_monitor(tm) is None
    assert monitoring.build_pod_monitor(tm) is None
    groups = monitoring.build_prometheus_rule(tm)["spec"]["groups"]
    assert [group["name"] for group in groups] == [
        f"taskmanager-{NAME}.sli",
        f"taskmanager-{NAME}.alerts",
    ]


def test_user_labels_reach_every_monitoring_object_without_replacing_ours() -> None:
    labels = {"release": "kps", "app.kubernetes.io/instance": "impostor"}
    tm = taskmanager({"monitoring": {"labels": labels}})
    objects = [
        built(monitoring.build_service_monitor(tm)),
        monitoring.build_prometheus_rule(tm),
        built(monitoring.build_dashboard_config_map(tm)),
        built(monitoring.build_grafana_dashboard(tm)),
    ]
    for obj in objects:
        assert obj["metadata"]["labels"]["release"] == "kps", obj["kind"]
        assert obj["metadata"]["labels"].items() >= selector_labels(tm, "api").items(), obj["kind"]


def test_the_dashboard_config_map_is_labelled_for_the_sidecar_and_holds_the_dashboard() -> None:
    tm = taskmanager({"monitoring": {"dashboards": {"folder": "Team A"}}})
    config_map = built(monitoring.build_dashboard_config_map(tm))
    assert config_map["metadata"]["name"] == f"{NAME}-dashboard"
    assert config_map["metadata"]["labels"][monitoring.SIDECAR_LABEL] == "1"
    assert config_map["metadata"]["annotations"] == {monitoring.SIDECAR_FOLDER_ANNOTATION: "Team A"}
    (name, text) = next(iter(config_map["data"].items()))
    assert name == f"{NAMESPACE}-{NAME}.json"
    model = json.loads(text)
    assert model["uid"] == dashboard.uid(monitoring.scope(tm))
    assert len(model["uid"]) <= 40, "Grafana's limit"
    assert (
        "annotations" not in built(monitoring.build_dashboard_config_map(taskmanager()))["metadata"]
    )


def test_the_dashboard_uid_is_stable_and_distinct_per_taskmanager() -> None:
    first = dashboard.uid(monitoring.scope(taskmanager()))
    assert first == dashboard.uid(monitoring.scope(taskmanager({"replicas": 5})))
    assert first != dashboard.uid(monitoring.scope(taskmanager(namespace="team-b")))
    assert first != dashboard.uid(monitoring.scope(taskmanager(name="other")))


def test_the_grafana_dashboard_targets_the_labelled_instances_across_namespaces() -> None:
    tm = taskmanager(
        {
            "monitoring": {
                "dashboards": {"folder": "Team A", "grafanaInstanceLabels": {"grafana": "main"}}
            }
        }
    )
    grafana = built(monitoring.build_grafana_dashboard(tm))
    assert grafana["apiVersion"] == "grafana.integreatly.org/v1beta1"
    spec = grafana["spec"]
    assert spec["instanceSelector"] == {"matchLabels": {"grafana": "main"}}
    assert spec["allowCrossNamespaceImport"] is True
    assert spec["folder"] == "Team A"
    assert json.loads(spec["json"])["uid"] == dashboard.uid(monitoring.scope(tm))
    default = built(monitoring.build_grafana_dashboard(taskmanager()))
    assert default["spec"]["instanceSelector"] == {"matchLabels": {"dashboards": "grafana"}}
    assert "folder" not in default["spec"]


@pytest.mark.parametrize(
    "build",
    [
        monitoring.build_dashboard_config_map,
        monitoring.build_grafana_dashboard,
    ],
)
def test_dashboards_off_makes_none(build: Any) -> None:
    assert build(taskmanager({"monitoring": {"dashboards": {"enabled": False}}})) is None


def test_the_rules_follow_the_thresholds_and_slo_of_the_spec() -> None:
    tm = taskmanager(
        {
            "monitoring": {
                "alerts": {"errorRatePercent": 2, "labels": {"team": "a"}},
                "slo": {"availabilityPercent": 99.5, "latencyThresholdSeconds": 1.0},
            }
        }
    )
    groups = monitoring.build_prometheus_rule(tm)["spec"]["groups"]
    records = {rule["record"]: rule["expr"] for rule in groups[0]["rules"]}
    assert 'le="1.0"' in records["taskmanager:http_slow:ratio_rate5m"]
    alerts = list(groups[1]["rules"])
    high_errors = next(rule for rule in alerts if rule["alert"] == "TaskManagerHighErrorRate")
    assert "> 0.02" in high_errors["expr"]
    burn = next(rule for rule in alerts if rule["alert"] == "TaskManagerErrorBudgetBurn")
    assert "(14.4 * 0.005)" in burn["expr"]
    assert all(rule["labels"]["team"] == "a" for rule in alerts)
    assert all(rule["labels"]["taskmanager"] == NAME for rule in alerts)
