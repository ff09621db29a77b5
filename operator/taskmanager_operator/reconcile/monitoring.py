"""What the monitoring children amount to: MonitoringReady, AutoscalingMetricsReady, and
status.monitoring.

Advisory, like CacheEvictionSafe: neither condition ever makes a TaskManager un-Ready. A kind the
cluster does not serve (no prometheus-operator) is a False condition and one Warning event, not
an error loop; whether a Prometheus picks up what we made is read from the Prometheus objects'
selectors, which is the question users otherwise answer by reading prometheus-operator's logs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kubernetes.client.exceptions import ApiException

from taskmanager_operator import status as st
from taskmanager_operator.builders.availability import (
    CUSTOM_METRICS_API,
    REQUESTS_PER_SECOND_METRIC,
    request_rate_metric_served,
    request_rate_metric_wanted,
)
from taskmanager_operator.builders.common import Capabilities
from taskmanager_operator.builders.monitoring import MONITORING_API_VERSION, is_monitoring_object
from taskmanager_operator.children import PROMETHEUS_OPERATOR
from taskmanager_operator.k8s import KubeApi, Object
from taskmanager_operator.monitoring.selection import SELECTORS, selected_by
from taskmanager_operator.reconcile.apply import Applied
from taskmanager_operator.resource import TaskManager


@dataclass
class MonitoringSeen:
    conditions: list[st.Condition] = field(default_factory=list)
    # status.monitoring, or None when monitoring is off.
    status: dict[str, Any] | None = None

    @property
    def awaits_selection(self) -> bool:
        """Waiting for a Prometheus to select the objects: a change no watch of ours sees."""
        return any(
            condition.type == st.MONITORING_READY
            and condition.reason in {"NoPrometheus", "NotSelected", "PrometheusUnreadable"}
            for condition in self.conditions
        )


def capabilities(kube: KubeApi) -> Capabilities:
    served = kube.api_resources(CUSTOM_METRICS_API) or frozenset()
    return Capabilities(pod_metrics=frozenset(name for name in served if name.startswith("pods/")))


def autoscaling_condition(tm: TaskManager, capabilities: Capabilities) -> list[st.Condition]:
    if not request_rate_metric_wanted(tm):
        return []
    target = tm.spec.autoscaling.target_requests_per_second
    if request_rate_metric_served(capabilities):
        return [
            st.true(
                st.AUTOSCALING_METRICS_READY,
                "Served",
                f"the autoscaler also scales on {REQUESTS_PER_SECOND_METRIC} ({target} per pod)",
            )
        ]
    return [
        st.false(
            st.AUTOSCALING_METRICS_READY,
            "CustomMetricNotServed",
            f"the custom metrics API ({CUSTOM_METRICS_API}) does not serve "
            f"pods/{REQUESTS_PER_SECOND_METRIC}, so the autoscaler scales on CPU and memory "
            "only; install a metrics adapter with the rule in the operator's "
            "docs/monitoring.md",
        )
    ]


def observe_monitoring(kube: KubeApi, tm: TaskManager, applied: Applied) -> MonitoringSeen:
    if not tm.spec.monitoring.enabled:
        return MonitoringSeen()
    objects = [obj for obj in applied.objects if is_monitoring_object(obj)]
    seen = MonitoringSeen(
        status={"objects": [f"{obj['kind']}/{obj['metadata']['name']}" for obj in objects]}
    )
    unserved = [child for child in applied.unserved if child.crd_of == PROMETHEUS_OPERATOR]
    if unserved:
        kinds = ", ".join(child.kind for child in unserved)
        seen.conditions.append(
            st.false(
                st.MONITORING_READY,
                "PrometheusOperatorNotInstalled",
                f"the cluster does not serve {MONITORING_API_VERSION} {kinds}: install "
                "prometheus-operator's CRDs (kube-prometheus-stack has them); the objects "
                "appear within a minute after that, without restarting the operator",
            )
        )
        return seen
    condition, selected = _selection(kube, tm, [obj for obj in objects if obj["kind"] in SELECTORS])
    seen.conditions.append(condition)
    if selected is not None:
        seen.status = {
            "objects": seen.status["objects"] if seen.status else [],
            "selectedBy": selected,
        }
    return seen


def _selection(
    kube: KubeApi, tm: TaskManager, objects: list[Object]
) -> tuple[st.Condition, list[str] | None]:
    """The condition, and the Prometheus objects that pick up any of ours (None: unreadable)."""
    try:
        prometheuses = kube.list_all(MONITORING_API_VERSION, "Prometheus")
        namespace_labels = kube.namespace_labels(tm.namespace)
    except ApiException as error:
        unknown = st.Condition(
            st.MONITORING_READY,
            "Unknown",
            "PrometheusUnreadable",
            f"cannot read the Prometheus objects to tell whether they select ours: "
            f"{error.status} {error.reason}",
        )
        return unknown, None
    selected: set[str] = set()
    missed: list[str] = []
    for obj in objects:
        by = selected_by(prometheuses, obj, namespace_labels)
        selected.update(by)
        if not by:
            missed.append(f"{obj['kind']} {obj['metadata']['name']}")
    by = sorted(selected)
    if not prometheuses:
        return st.false(
            st.MONITORING_READY,
            "NoPrometheus",
            "no Prometheus object exists in the cluster: nothing scrapes the API or evaluates "
            "its rules",
        ), by
    if missed:
        return st.false(
            st.MONITORING_READY,
            "NotSelected",
            f"no Prometheus selects {', '.join(missed)}: compare their labels with the "
            "Prometheus objects' selectors (kube-prometheus-stack selects "
            "`release: <its release name>`: add it to spec.monitoring.labels)",
        ), by
    return st.true(st.MONITORING_READY, "Selected", f"picked up by Prometheus {', '.join(by)}"), by
