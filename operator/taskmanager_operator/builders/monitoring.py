"""The monitoring children: a ServiceMonitor or PodMonitor, a PrometheusRule, the dashboards.

Their kinds are served only where prometheus-operator's (or grafana-operator's) CRDs are
installed; the registry marks them so, and the reconcile skips them with a condition elsewhere.
"""

from __future__ import annotations

import json
from typing import Any

from taskmanager_operator.builders.common import (
    API,
    Manifest,
    api_name,
    metadata,
    selector_labels,
)
from taskmanager_operator.monitoring import dashboard, rules
from taskmanager_operator.monitoring.series import Scope
from taskmanager_operator.resource import TaskManager

MONITORING_API_VERSION = "monitoring.coreos.com/v1"
GRAFANA_API_VERSION = "grafana.integreatly.org/v1beta1"
# Grafana's dashboard sidecar (kube-prometheus-stack, the Grafana chart) loads ConfigMaps with
# this label, and files them in the folder its folder annotation names.
SIDECAR_LABEL = "grafana_dashboard"
SIDECAR_FOLDER_ANNOTATION = "grafana_folder"
METRICS_PATH = "/metrics"


def scope(tm: TaskManager) -> Scope:
    return Scope(namespace=tm.namespace, name=tm.name, job=api_name(tm))


def dashboard_name(tm: TaskManager) -> str:
    return f"{tm.name}-dashboard"


def _metadata(tm: TaskManager, name: str) -> dict[str, Any]:
    meta = metadata(tm, name, API)
    # Ours last: a user's label never breaks the selection and ownership that ours carry.
    meta["labels"] = dict(tm.spec.monitoring.labels) | meta["labels"]
    return meta


def _endpoint(tm: TaskManager) -> dict[str, Any]:
    return {
        "port": "http",
        "path": METRICS_PATH,
        "interval": tm.spec.monitoring.interval,
        # A PodMonitor's job would be `<namespace>/<podmonitor>`: the same job either way keeps
        # the rules' and dashboards' selectors valid whichever scrape object is used.
        "relabelings": [{"action": "replace", "targetLabel": "job", "replacement": api_name(tm)}],
    }


MONITORING_KINDS = frozenset({"ServiceMonitor", "PodMonitor", "PrometheusRule", "GrafanaDashboard"})


def is_monitoring_object(obj: Manifest) -> bool:
    """One of the children above, as the API server has it."""
    if obj["kind"] in MONITORING_KINDS:
        return True
    return obj["kind"] == "ConfigMap" and SIDECAR_LABEL in (obj["metadata"].get("labels") or {})


def build_service_monitor(tm: TaskManager) -> Manifest | None:
    if tm.spec.monitoring.scrape != "ServiceMonitor":
        return None
    return {
        "apiVersion": MONITORING_API_VERSION,
        "kind": "ServiceMonitor",
        "metadata": _metadata(tm, api_name(tm)),
        "spec": {
            "selector": {"matchLabels": selector_labels(tm, API)},
            "namespaceSelector": {"matchNames": [tm.namespace]},
            "endpoints": [_endpoint(tm)],
        },
    }


def build_pod_monitor(tm: TaskManager) -> Manifest | None:
    if tm.spec.monitoring.scrape != "PodMonitor":
        return None
    return {
        "apiVersion": MONITORING_API_VERSION,
        "kind": "PodMonitor",
        "metadata": _metadata(tm, api_name(tm)),
        "spec": {
            "selector": {"matchLabels": selector_labels(tm, API)},
            "namespaceSelector": {"matchNames": [tm.namespace]},
            "podMetricsEndpoints": [_endpoint(tm)],
        },
    }


def build_prometheus_rule(tm: TaskManager) -> Manifest:
    """Always: the recording rules feed the dashboard even when the alerts are off."""
    groups = rules.rule_groups(
        scope(tm), tm.spec.monitoring, autoscaling=tm.spec.autoscaling.enabled
    )
    return {
        "apiVersion": MONITORING_API_VERSION,
        "kind": "PrometheusRule",
        "metadata": _metadata(tm, api_name(tm)),
        "spec": {"groups": groups},
    }


def _dashboard_json(tm: TaskManager) -> str:
    return json.dumps(dashboard.build(scope(tm), tm.spec.monitoring), indent=1, sort_keys=True)


def build_dashboard_config_map(tm: TaskManager) -> Manifest | None:
    dashboards = tm.spec.monitoring.dashboards
    if not dashboards.enabled:
        return None
    meta = _metadata(tm, dashboard_name(tm))
    meta["labels"][SIDECAR_LABEL] = "1"
    if dashboards.folder:
        meta["annotations"] = {SIDECAR_FOLDER_ANNOTATION: dashboards.folder}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta,
        "data": {f"{tm.namespace}-{tm.name}.json": _dashboard_json(tm)},
    }


def build_grafana_dashboard(tm: TaskManager) -> Manifest | None:
    """grafana-operator v5's dashboard object, for the Grafana instances its labels select."""
    dashboards = tm.spec.monitoring.dashboards
    if not dashboards.enabled:
        return None
    spec: dict[str, Any] = {
        "instanceSelector": {"matchLabels": dict(dashboards.grafana_instance_labels)},
        # Grafana runs in a namespace of its own, rarely the TaskManager's.
        "allowCrossNamespaceImport": True,
        "json": _dashboard_json(tm),
    }
    if dashboards.folder:
        spec["folder"] = dashboards.folder
    return {
        "apiVersion": GRAFANA_API_VERSION,
        "kind": "GrafanaDashboard",
        "metadata": _metadata(tm, dashboard_name(tm)),
        "spec": spec,
    }
