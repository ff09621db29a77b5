"""The monitoring children through the reconcile, on the in-memory API server: what appears when
prometheus-operator's (or grafana-operator's) CRDs are installed, what the conditions say when
they are not, whether a Prometheus picks the objects up, and the autoscaler's request-rate metric.
"""

from __future__ import annotations

from typing import Any

from taskmanager_operator.builders.availability import (
    CUSTOM_METRICS_API,
    REQUESTS_PER_SECOND_METRIC,
)
from taskmanager_operator.builders.monitoring import GRAFANA_API_VERSION, MONITORING_API_VERSION
from tests.support.fake_kube import events_of
from tests.unit.test_reconcile import NS, Cluster, cluster, ready_demo

__all__ = ["cluster"]

MONITORING_KINDS = ("servicemonitors", "podmonitors", "prometheusrules", "prometheuses")


def install_prometheus_operator(cluster: Cluster) -> None:
    cluster.kube.serve(MONITORING_API_VERSION, *MONITORING_KINDS)


def prometheus(name: str, namespace: str = "monitoring", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": MONITORING_API_VERSION,
        "kind": "Prometheus",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


# kube-prometheus-stack's Prometheus: every namespace, objects labelled with its release.
KUBE_PROMETHEUS_STACK = prometheus(
    "kps",
    serviceMonitorSelector={"matchLabels": {"release": "kps"}},
    serviceMonitorNamespaceSelector={},
    podMonitorSelector={"matchLabels": {"release": "kps"}},
    podMonitorNamespaceSelector={},
    ruleSelector={"matchLabels": {"release": "kps"}},
    ruleNamespaceSelector={},
)


def monitoring_children(cluster: Cluster) -> set[str]:
    return {
        name
        for name in cluster.children()
        if name.split()[0] in {"ServiceMonitor", "PodMonitor", "PrometheusRule", "GrafanaDashboard"}
        or name == "ConfigMap demo-dashboard"
    }


def test_without_prometheus_operator_the_condition_says_so_once_and_ready_stays(
    cluster: Cluster,
) -> None:
    ready_demo(cluster)  # reaches Ready: monitoring never holds it back
    assert cluster.conditions("demo")["MonitoringReady"] == (
        "False",
        "PrometheusOperatorNotInstalled",
    )
    message = cluster.condition("demo", "MonitoringReady")["message"]
    assert "ServiceMonitor, PrometheusRule" in message
    assert monitoring_children(cluster) == {"ConfigMap demo-dashboard"}
    cluster.reconcile("demo")
    assert cluster.kube.writes == [], "a skipped kind is no error loop and no write"
    assert events_of(cluster.kube, "demo") == [], "the Warning event is posted once"


def test_the_warning_event_names_the_missing_api(cluster: Cluster) -> None:
    cluster.kube.create_taskmanager(NS, "demo", {})
    cluster.reconcile("demo")
    warnings = [
        event
        for event in cluster.kube.events
        if event["type"] == "Warning" and event["reason"] == "PrometheusOperatorNotInstalled"
    ]
    assert len(warnings) == 1
    assert MONITORING_API_VERSION in warnings[0]["message"]


def test_installing_the_crds_later_brings_the_children_without_a_restart(
    cluster: Cluster,
) -> None:
    ready_demo(cluster)
    install_prometheus_operator(cluster)
    cluster.reconcile("demo")
    assert monitoring_children(cluster) == {
        "ServiceMonitor demo-api",
        "PrometheusRule demo-api",
        "ConfigMap demo-dashboard",
    }
    assert cluster.conditions("demo")["MonitoringReady"] == ("False", "NoPrometheus")
    assert cluster.phase("demo") == "Ready"
    assert cluster.status("demo")["monitoring"] == {
        "objects": [
            "ConfigMap/demo-dashboard",
            "ServiceMonitor/demo-api",
            "PrometheusRule/demo-api",
        ],
        "selectedBy": [],
    }


def test_a_prometheus_that_selects_other_labels_is_named_and_the_release_label_fixes_it(
    cluster: Cluster,
) -> None:
    ready_demo(cluster)
    install_prometheus_operator(cluster)
    cluster.kube.create(KUBE_PROMETHEUS_STACK)
    cluster.reconcile("demo")
    assert cluster.conditions("demo")["MonitoringReady"] == ("False", "NotSelected")
    message = cluster.condition("demo", "MonitoringReady")["message"]
    assert "ServiceMonitor demo-api" in message
    assert "PrometheusRule demo-api" in message
    assert ("Warning", "NotSelected") in events_of(cluster.kube, "demo")

    cluster.patch_spec("demo", {"monitoring": {"labels": {"release": "kps"}}})
    cluster.reconcile("demo")
    assert cluster.conditions("demo")["MonitoringReady"] == ("True", "Selected")
    assert cluster.status("demo")["monitoring"]["selectedBy"] == ["monitoring/kps"]
    service_monitor = cluster.child(MONITORING_API_VERSION, "ServiceMonitor", "demo-api")
    assert service_monitor["metadata"]["labels"]["release"] == "kps"


def test_a_prometheus_without_namespace_selector_sees_only_its_own_namespace(
    cluster: Cluster,
) -> None:
    ready_demo(cluster, monitoring={"labels": {"team": "a"}})
    install_prometheus_operator(cluster)
    own = {"matchLabels": {"team": "a"}}
    cluster.kube.create(prometheus("elsewhere", serviceMonitorSelector=own, ruleSelector=own))
    cluster.reconcile("demo")
    assert cluster.conditions("demo")["MonitoringReady"] == ("False", "NotSelected")
    cluster.kube.create(prometheus("local", NS, serviceMonitorSelector=own, ruleSelector=own))
    cluster.reconcile("demo")
    assert cluster.conditions("demo")["MonitoringReady"] == ("True", "Selected")
    assert cluster.status("demo")["monitoring"]["selectedBy"] == [f"{NS}/local"]


def test_switching_to_a_pod_monitor_replaces_the_service_monitor(cluster: Cluster) -> None:
    ready_demo(cluster)
    install_prometheus_operator(cluster)
    cluster.reconcile("demo")
    cluster.patch_spec("demo", {"monitoring": {"scrape": "PodMonitor"}})
    cluster.reconcile("demo")
    assert monitoring_children(cluster) == {
        "PodMonitor demo-api",
        "PrometheusRule demo-api",
        "ConfigMap demo-dashboard",
    }
    assert ("Normal", "Deleted") in events_of(cluster.kube, "demo")


def test_turning_monitoring_off_removes_its_children_condition_and_status(
    cluster: Cluster,
) -> None:
    ready_demo(cluster)
    install_prometheus_operator(cluster)
    cluster.kube.serve(GRAFANA_API_VERSION, "grafanadashboards")
    cluster.reconcile("demo")
    assert "GrafanaDashboard demo-dashboard" in monitoring_children(cluster)
    cluster.patch_spec("demo", {"monitoring": {"enabled": False}})
    cluster.reconcile("demo")
    assert monitoring_children(cluster) == set()
    assert "MonitoringReady" not in cluster.conditions("demo")
    assert "monitoring" not in cluster.status("demo")


def test_grafana_operator_missing_is_no_failure(cluster: Cluster) -> None:
    ready_demo(cluster)
    install_prometheus_operator(cluster)
    cluster.kube.create(KUBE_PROMETHEUS_STACK)
    cluster.patch_spec("demo", {"monitoring": {"labels": {"release": "kps"}}})
    cluster.reconcile("demo")
    assert cluster.conditions("demo")["MonitoringReady"] == ("True", "Selected")
    assert "GrafanaDashboard demo-dashboard" not in monitoring_children(cluster)


def test_the_autoscaler_gets_the_request_rate_only_while_the_custom_metrics_api_serves_it(
    cluster: Cluster,
) -> None:
    ready_demo(cluster, autoscaling={"enabled": True})
    hpa = cluster.child("autoscaling/v2", "HorizontalPodAutoscaler", "demo-api")
    assert [metric["type"] for metric in hpa["spec"]["metrics"]] == ["Resource", "Resource"]
    assert cluster.conditions("demo")["AutoscalingMetricsReady"] == (
        "False",
        "CustomMetricNotServed",
    )
    assert cluster.phase("demo") == "Ready"

    cluster.kube.serve(CUSTOM_METRICS_API, f"pods/{REQUESTS_PER_SECOND_METRIC}")
    cluster.reconcile("demo")
    hpa = cluster.child("autoscaling/v2", "HorizontalPodAutoscaler", "demo-api")
    pods_metric = hpa["spec"]["metrics"][-1]
    assert pods_metric == {
        "type": "Pods",
        "pods": {
            "metric": {"name": REQUESTS_PER_SECOND_METRIC},
            "target": {"type": "AverageValue", "averageValue": "100"},
        },
    }
    assert cluster.conditions("demo")["AutoscalingMetricsReady"] == ("True", "Served")


def test_no_request_rate_condition_without_an_autoscaler(cluster: Cluster) -> None:
    ready_demo(cluster)
    assert "AutoscalingMetricsReady" not in cluster.conditions("demo")
