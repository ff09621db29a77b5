"""Monitoring children on the real cluster, with prometheus-operator's CRDs from its Go module:
none of it without the CRDs (a condition, one Warning, Ready all the same), the children within
seconds of the CRDs' installation while the operator runs, a strict server-side dry-run of each,
the Prometheus selection read from a real Prometheus object, and nothing left after deletion."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client import ApiClient
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import NotFoundError, ResourceNotFoundError

from taskmanager_operator.api.v1alpha1 import GROUP, PLURAL, VERSION
from taskmanager_operator.builders import monitoring
from taskmanager_operator.resource import TaskManager
from taskmanager_operator.settings import FIELD_MANAGER
from tests.cluster.test_operator import KUBECTL, TaskManagers, tms
from tests.support.foreign_crds import ForeignCrds
from tests.support.monitoring_crds import crd_manifests
from tests.support.operator import OperatorProcess
from tests.support.wait import wait_until

pytestmark = pytest.mark.usefixtures("operator")
__all__ = ["tms"]  # the fixture, shared with test_operator

MONITORING = monitoring.MONITORING_API_VERSION


@pytest.fixture(scope="module")
def crds(api_client: ApiClient) -> Iterator[ForeignCrds]:
    crds = ForeignCrds(api_client, crd_manifests(), "prometheus-operator's CRDs")
    with crds.absent_around():
        yield crds


def monitoring_objects(dynamic: DynamicClient, namespace: str, name: str) -> set[str]:
    found = set()
    selector = f"app.kubernetes.io/instance={name}"
    for api_version, kind in [
        (MONITORING, "ServiceMonitor"),
        (MONITORING, "PodMonitor"),
        (MONITORING, "PrometheusRule"),
        ("v1", "ConfigMap"),
    ]:
        try:
            resource = dynamic.resources.get(api_version=api_version, kind=kind)
            items = resource.get(namespace=namespace, label_selector=selector).items
        except (ResourceNotFoundError, NotFoundError):
            # Not served, or no longer: the client's discovery cache lags a removed CRD.
            dynamic.resources.invalidate_cache()
            continue
        for item in items:
            if kind != "ConfigMap" or item.metadata.name.endswith("-dashboard"):
                found.add(f"{kind} {item.metadata.name}")
    return found


def wait_condition(
    tms: TaskManagers,
    name: str,
    kind: str,
    state: tuple[str, str],
    operator: OperatorProcess,
    *,
    timeout: float = 60,
) -> dict[str, Any]:
    status, reason = state

    def reached() -> dict[str, Any] | None:
        condition = tms.condition(name, kind)
        if condition and (condition["status"], condition["reason"]) == (status, reason):
            return condition
        return None

    try:
        return wait_until(reached, timeout=timeout, what=f"{kind}={status} ({reason}) on {name}")
    except AssertionError as error:
        raise AssertionError(
            f"{error}\nstatus: {tms.get(name).get('status')}\noperator log:\n{operator.log_tail()}"
        ) from error


def strict_dry_run(manifest: dict[str, Any], tmp_path: Path) -> None:
    """What the API server says of the manifest with strict field validation, writing nothing."""
    path = tmp_path / f"{manifest['kind']}.yaml"
    path.write_text(yaml.safe_dump(manifest))
    result = subprocess.run(
        [
            str(KUBECTL),
            "apply",
            "--server-side",
            "--dry-run=server",
            "--validate=strict",
            # As the operator applies it: another manager would conflict on an atomic list the
            # API server filled defaults into (an HTTPRoute's parentRefs), though nothing differs.
            f"--field-manager={FIELD_MANAGER}",
            "--force-conflicts",
            "-f",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"{manifest['kind']}: {result.stderr}"


def test_monitoring_follows_prometheus_operator_coming_and_going(
    crds: ForeignCrds,
    namespace: str,
    tms: TaskManagers,
    operator: OperatorProcess,
    tmp_path: Path,
) -> None:
    dynamic = crds.dynamic
    tms.create("watched", {})
    tms.wait_phase("watched", "Ready")
    condition = wait_condition(
        tms, "watched", "MonitoringReady", ("False", "PrometheusOperatorNotInstalled"), operator
    )
    assert "ServiceMonitor, PrometheusRule" in condition["message"]
    warning = tms.wait_event("watched", "PrometheusOperatorNotInstalled", "Warning")
    assert MONITORING in warning.message
    assert monitoring_objects(dynamic, namespace, "watched") == {"ConfigMap watched-dashboard"}
    dashboard = tms.core.read_namespaced_config_map("watched-dashboard", namespace)
    assert dashboard.metadata.labels[monitoring.SIDECAR_LABEL] == "1"
    (model,) = [json.loads(text) for text in dashboard.data.values()]
    assert model["title"] == f"TaskManager {namespace}/watched"
    assert operator.reconciles(namespace, "watched", "error") == 0, operator.log_tail()

    # Installed while the operator runs: the CRDs' events bring the children, no resync wait.
    crds.install()
    wait_until(
        lambda: (
            monitoring_objects(dynamic, namespace, "watched")
            == {
                "ServiceMonitor watched-api",
                "PrometheusRule watched-api",
                "ConfigMap watched-dashboard",
            }
        ),
        timeout=30,
        what="the ServiceMonitor and PrometheusRule to appear",
    )
    wait_condition(tms, "watched", "MonitoringReady", ("False", "NoPrometheus"), operator)
    assert tms.get("watched")["status"]["phase"] == "Ready"

    # Exactly what the builders make passes the CRDs' schemas with strict field validation.
    tm = TaskManager.from_body(tms.get("watched"))
    for manifest in (
        monitoring.build_service_monitor(tm),
        monitoring.build_prometheus_rule(tm),
        monitoring.build_pod_monitor(
            TaskManager.from_body(
                {**tms.get("watched"), "spec": {"monitoring": {"scrape": "PodMonitor"}}}
            )
        ),
    ):
        assert manifest is not None
        strict_dry_run(manifest, tmp_path)

    # A real Prometheus object (kube-prometheus-stack's selectors) decides MonitoringReady.
    custom = tms.custom
    release = {"matchLabels": {"release": "kps"}}
    custom.create_namespaced_custom_object(
        "monitoring.coreos.com",
        "v1",
        namespace,
        "prometheuses",
        {
            "apiVersion": MONITORING,
            "kind": "Prometheus",
            "metadata": {"name": "kps"},
            "spec": {
                "serviceMonitorSelector": release,
                "serviceMonitorNamespaceSelector": {},
                "ruleSelector": release,
                "ruleNamespaceSelector": {},
            },
        },
    )
    # No watch of ours sees a Prometheus object (it may be in any namespace): the operator reads
    # them again within its discovery cache (30 s) plus its selection recheck (60 s).
    wait_condition(
        tms, "watched", "MonitoringReady", ("False", "NotSelected"), operator, timeout=120
    )
    tms.patch_spec("watched", {"monitoring": {"labels": {"release": "kps"}}})
    wait_condition(tms, "watched", "MonitoringReady", ("True", "Selected"), operator)
    assert tms.get("watched")["status"]["monitoring"]["selectedBy"] == [f"{namespace}/kps"]

    # Deleting the TaskManager removes them with everything else.
    custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "watched")
    wait_until(
        lambda: not monitoring_objects(dynamic, namespace, "watched") or None,
        timeout=90,
        interval=1,
        what="the monitoring children to be gone",
    )

    # Removed again: a TaskManager reconciled afterwards is back to the condition, no errors.
    crds.uninstall()
    tms.create("after", {"paused": False})
    tms.wait_phase("after", "Ready")
    wait_condition(
        tms, "after", "MonitoringReady", ("False", "PrometheusOperatorNotInstalled"), operator
    )
    assert operator.reconciles(namespace, "after", "error") == 0, operator.log_tail()


def test_the_autoscaler_leaves_out_a_request_rate_no_api_serves(
    namespace: str, tms: TaskManagers, operator: OperatorProcess
) -> None:
    tms.create("scaled", {"autoscaling": {"enabled": True}})
    tms.wait_phase("scaled", "Ready")
    condition = wait_condition(
        tms, "scaled", "AutoscalingMetricsReady", ("False", "CustomMetricNotServed"), operator
    )
    assert "custom.metrics.k8s.io" in condition["message"]
    tms.wait_event("scaled", "CustomMetricNotServed", "Warning")
    hpa = client.AutoscalingV2Api(tms.custom.api_client).read_namespaced_horizontal_pod_autoscaler(
        "scaled-api", namespace
    )
    assert [(metric.type, metric.resource.name) for metric in hpa.spec.metrics] == [
        ("Resource", "cpu"),
        ("Resource", "memory"),
    ]
