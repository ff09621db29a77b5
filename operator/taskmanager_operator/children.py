"""The registry of the kinds of children a TaskManager owns: the one list everything reads.

kopf watches each kind (handlers), the reconcile deletes an optional child the spec no longer
wants (reconcile), hack/run.sh shows them and the cluster tests check that none is left after a
TaskManager is deleted. The chart's RBAC is written by hand, and tests/chart/test_children_rbac.py
fails on any difference between it and this list.

Adding a kind of child: one entry here plus its builder (an optional child's builder goes in
the entry; the reconcile calls it), then the rule the RBAC test asks for in the chart's
_helpers.tpl. A kind served only where another project's CRDs are installed names that project
(`crd_of`): the reconcile skips it while the cluster does not serve it, and picks it up within a
minute of its CRD's installation.

`python -m taskmanager_operator.children` prints the kinds as `kubectl get` takes them; with
`--served`, only those the cluster of the current kubeconfig serves.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

from kubernetes import config
from kubernetes.client import ApiClient

from taskmanager_operator.builders import availability, exposure, identity, monitoring, network
from taskmanager_operator.builders.common import (
    Capabilities,
    Manifest,
    api_name,
    cache_name,
    database_name,
)
from taskmanager_operator.k8s import Kube, KubeApi
from taskmanager_operator.resource import TaskManager

# What the operator does with every kind of child, so what the chart must grant for each: kopf
# lists and watches it, k8s.Kube reads one the watches do not show (get), server-side applies it
# (patch, and create when it is new) and deletes what the spec no longer wants (delete).
CHILD_VERBS = frozenset({"get", "list", "watch", "create", "patch", "delete"})


@dataclass(frozen=True)
class WhenWanted:
    """How the reconcile makes an optional child, and finds it again to delete it."""

    # The manifest, or None when the spec does not ask for the child (it is then deleted).
    build: Callable[[TaskManager, Capabilities], Manifest | None]
    name: Callable[[TaskManager], str]
    # Applied before the workloads, whose pods the API server refuses while it is missing (a
    # ServiceAccount); the others after them (an HPA scales the Deployment).
    before_workloads: bool = False


@dataclass(frozen=True)
class ChildKind:
    api_version: str
    kind: str
    plural: str
    # The children of this kind that exist only while the spec asks for them.
    optional: tuple[WhenWanted, ...] = ()
    # The project whose CRD serves this kind, for a kind the cluster may not serve.
    crd_of: str | None = None

    @property
    def group(self) -> str:
        """The API group; "" for the core group, as kopf and RBAC rules name it."""
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]

    @property
    def resource(self) -> str:
        """The name `kubectl get` takes: plural.group, or the plural alone in the core group."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def served_by(self, kube: KubeApi) -> bool:
        """Whether the cluster serves this kind. Its own plural, not its group version: a
        project's CRDs are established one by one, and while the Gateway API's GatewayClass
        already is, its HTTPRoute is not yet."""
        return self.crd_of is None or self.plural in (kube.api_resources(self.api_version) or ())


PROMETHEUS_OPERATOR = "prometheus-operator"
GRAFANA_OPERATOR = "grafana-operator"
GATEWAY_API = "gateway-api"


def _monitoring(
    build: Callable[[TaskManager], Manifest | None],
    name: Callable[[TaskManager], str] = api_name,
) -> WhenWanted:
    """A monitoring child, which exists only while spec.monitoring is enabled."""

    def when_enabled(tm: TaskManager, _: Capabilities) -> Manifest | None:
        return build(tm) if tm.spec.monitoring.enabled else None

    return WhenWanted(when_enabled, name)


def _spec_only(
    build: Callable[[TaskManager], Manifest | None],
) -> Callable[[TaskManager, Capabilities], Manifest | None]:
    """A builder whose child depends on the spec alone, not on what the cluster serves."""
    return lambda tm, _: build(tm)


CHILDREN: tuple[ChildKind, ...] = (
    ChildKind("v1", "Secret", "secrets"),
    ChildKind(
        "v1",
        "ServiceAccount",
        "serviceaccounts",
        (WhenWanted(_spec_only(identity.build_service_account), api_name, before_workloads=True),),
    ),
    ChildKind(
        "v1",
        "ConfigMap",
        "configmaps",
        (_monitoring(monitoring.build_dashboard_config_map, monitoring.dashboard_name),),
    ),
    ChildKind("v1", "Service", "services"),
    ChildKind("apps/v1", "Deployment", "deployments"),
    ChildKind("apps/v1", "StatefulSet", "statefulsets"),
    ChildKind("batch/v1", "Job", "jobs"),
    ChildKind(
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        (WhenWanted(availability.build_hpa, api_name),),
    ),
    ChildKind(
        "policy/v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        (WhenWanted(_spec_only(availability.build_pdb), api_name),),
    ),
    ChildKind(
        "networking.k8s.io/v1",
        "NetworkPolicy",
        "networkpolicies",
        (
            WhenWanted(_spec_only(network.build_network_policy), api_name),
            WhenWanted(
                _spec_only(network.build_migration_network_policy), network.migration_policy_name
            ),
            WhenWanted(_spec_only(network.build_database_network_policy), database_name),
            WhenWanted(_spec_only(network.build_backup_network_policy), network.backup_policy_name),
            WhenWanted(_spec_only(network.build_cache_network_policy), cache_name),
        ),
    ),
    ChildKind(
        "networking.k8s.io/v1",
        "Ingress",
        "ingresses",
        (WhenWanted(_spec_only(exposure.build_ingress), api_name),),
    ),
    ChildKind(
        exposure.GATEWAY_API_VERSION,
        "HTTPRoute",
        "httproutes",
        (WhenWanted(_spec_only(exposure.build_http_route), api_name),),
        crd_of=GATEWAY_API,
    ),
    ChildKind(
        monitoring.MONITORING_API_VERSION,
        "ServiceMonitor",
        "servicemonitors",
        (_monitoring(monitoring.build_service_monitor),),
        crd_of=PROMETHEUS_OPERATOR,
    ),
    ChildKind(
        monitoring.MONITORING_API_VERSION,
        "PodMonitor",
        "podmonitors",
        (_monitoring(monitoring.build_pod_monitor),),
        crd_of=PROMETHEUS_OPERATOR,
    ),
    ChildKind(
        monitoring.MONITORING_API_VERSION,
        "PrometheusRule",
        "prometheusrules",
        (_monitoring(monitoring.build_prometheus_rule),),
        crd_of=PROMETHEUS_OPERATOR,
    ),
    ChildKind(
        monitoring.GRAFANA_API_VERSION,
        "GrafanaDashboard",
        "grafanadashboards",
        (_monitoring(monitoring.build_grafana_dashboard, monitoring.dashboard_name),),
        crd_of=GRAFANA_OPERATOR,
    ),
)


def optional_children() -> list[tuple[ChildKind, WhenWanted]]:
    """The optional children, in registry order (the order the reconcile applies them in)."""
    return [(child, when) for child in CHILDREN for when in child.optional]


def _served_children() -> list[ChildKind]:
    """The kinds the cluster of the current kubeconfig serves (`kubectl get` fails on others)."""
    config.load_kube_config()
    kube = Kube(ApiClient())
    return [child for child in CHILDREN if child.served_by(kube)]


if __name__ == "__main__":
    kinds = _served_children() if "--served" in sys.argv[1:] else CHILDREN
    print(",".join(child.resource for child in kinds))
