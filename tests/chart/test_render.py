"""The chart without a cluster: lint, schema refusals, RBAC shape, secure defaults, CRD copy."""

from __future__ import annotations

from typing import Any

import pytest

from taskmanager_operator.api.crd import KINDS
from tests.chart.helm import CHART, REPO, Manifest, render, run, set_args, template

# Value sets that change what the chart renders; each must lint and render cleanly.
MODES: dict[str, dict[str, str | int | bool]] = {
    "defaults": {},
    "namespace-list": {"watch.allNamespaces": False, "watch.namespaces[0]": "team-a"},
    "namespace-glob-cluster-role": {
        "watch.allNamespaces": False,
        "watch.namespaces[0]": "team-*",
        "rbac.namespaced": False,
    },
    "minimal": {
        "crds.enabled": False,
        "metrics.enabled": False,
        "leaderElection.enabled": False,
        "livenessProbe.enabled": False,
    },
}
ROLE_KINDS = {"Role", "ClusterRole"}


def of_kind(objects: list[Manifest], *kinds: str) -> list[Manifest]:
    return [obj for obj in objects if obj["kind"] in kinds]


@pytest.mark.parametrize("values", MODES.values(), ids=MODES.keys())
def test_lint_strict_passes(values: dict[str, str | int | bool]) -> None:
    result = run("helm", "lint", "--strict", str(CHART), *set_args(values))
    assert "0 chart(s) failed" in result.stdout, result.stdout


@pytest.mark.parametrize("values", MODES.values(), ids=MODES.keys())
def test_roles_name_no_wildcard(values: dict[str, str | int | bool]) -> None:
    roles = of_kind(render(values), *ROLE_KINDS)
    assert roles
    for role in roles:
        for rule in role["rules"]:
            for field in ("verbs", "resources", "apiGroups", "resourceNames", "nonResourceURLs"):
                for entry in rule.get(field, []):
                    assert "*" not in entry, f"{role['kind']} {role['metadata']['name']}: {rule}"


def test_the_crd_copy_matches_the_generated_crd() -> None:
    generated = sorted((REPO / "crds").glob("*.yaml"))
    copied = sorted((CHART / "files" / "crds").glob("*.yaml"))
    assert [p.name for p in copied] == [p.name for p in generated], "run `make manifests`"
    for source, copy in zip(generated, copied, strict=True):
        assert copy.read_text() == source.read_text(), f"{copy} is stale: run `make manifests`"


def test_the_crds_are_kept_on_uninstall_and_can_be_left_out() -> None:
    crds = of_kind(render(), "CustomResourceDefinition")
    assert {crd["spec"]["names"]["kind"] for crd in crds} == {kind.kind for kind in KINDS}
    for crd in crds:
        assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert not of_kind(render({"crds.enabled": False}), "CustomResourceDefinition")
    for unkept in of_kind(render({"crds.keep": False}), "CustomResourceDefinition"):
        assert "helm.sh/resource-policy" not in (unkept["metadata"].get("annotations") or {})


def test_all_namespaces_is_one_cluster_role_without_namespace_rights() -> None:
    objects = render()
    cluster_roles = {r["metadata"]["name"]: r for r in of_kind(objects, "ClusterRole")}
    assert set(cluster_roles) == {
        "taskmanager-system-tm-taskmanager-operator",
        "taskmanager-system-tm-taskmanager-operator-kopf",
        "taskmanager-system-tm-taskmanager-operator-monitoring-reader",
        "taskmanager-system-tm-taskmanager-operator-gateway-reader",
    }
    reader = cluster_roles["taskmanager-system-tm-taskmanager-operator-monitoring-reader"]
    assert {(r["resources"][0], *r["verbs"]) for r in reader["rules"]} == {
        ("prometheuses", "list"),
        ("namespaces", "get"),
    }
    gateways = cluster_roles["taskmanager-system-tm-taskmanager-operator-gateway-reader"]
    assert {(r["resources"][0], *r["verbs"]) for r in gateways["rules"]} == {("gateways", "get")}
    kopf_rules = cluster_roles["taskmanager-system-tm-taskmanager-operator-kopf"]["rules"]
    assert [r["resources"] for r in kopf_rules] == [["customresourcedefinitions"]]
    (deployment,) = of_kind(objects, "Deployment")
    assert "--all-namespaces" in deployment["spec"]["template"]["spec"]["containers"][0]["args"]


def test_a_namespace_list_gets_a_role_in_each_namespace() -> None:
    objects = render(
        {
            "watch.allNamespaces": False,
            "watch.namespaces[0]": "team-a",
            "watch.namespaces[1]": "team-b",
        }
    )
    roles = of_kind(objects, "Role")
    operator_roles = [r for r in roles if not r["metadata"]["name"].endswith("leader-election")]
    assert sorted(r["metadata"]["namespace"] for r in operator_roles) == ["team-a", "team-b"]
    bindings = of_kind(objects, "RoleBinding")
    assert {b["metadata"]["namespace"] for b in bindings} == {
        "team-a",
        "team-b",
        "taskmanager-system",
    }
    # The operator's own rights are not granted cluster-wide; kopf's small ClusterRole remains,
    # and the read-only ones of the Prometheus objects and the Gateways, which live in other
    # namespaces.
    cluster_roles = of_kind(objects, "ClusterRole")
    assert {r["metadata"]["name"].rpartition("-operator-")[2] for r in cluster_roles} == {
        "kopf",
        "monitoring-reader",
        "gateway-reader",
    }
    (kopf,) = [r for r in cluster_roles if r["metadata"]["name"].endswith("-kopf")]
    assert kopf["metadata"]["name"].endswith("-kopf")
    assert sorted(r["resources"][0] for r in kopf["rules"]) == [
        "customresourcedefinitions",
        "namespaces",
    ]
    (deployment,) = of_kind(objects, "Deployment")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--namespace=team-a" in args
    assert "--namespace=team-b" in args
    assert "--all-namespaces" not in args


def test_the_lease_role_is_in_the_release_namespace_and_names_its_lease() -> None:
    objects = render()
    (role,) = of_kind(objects, "Role")
    assert role["metadata"]["namespace"] == "taskmanager-system"
    assert role["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": ["taskmanager-operator"],
            "verbs": ["get", "update"],
        },
    ]
    (deployment,) = of_kind(objects, "Deployment")
    env = {
        e["name"]: e.get("value")
        for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["TASKMANAGER_OPERATOR_LEADER_ELECTION_NAMESPACE"] == "taskmanager-system"
    assert not of_kind(render({"leaderElection.enabled": False}), "Role")


def test_the_operator_pod_is_restricted_and_probed() -> None:
    (deployment,) = of_kind(render(), "Deployment")
    pod: dict[str, Any] = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is True
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert container["resources"]["requests"]
    assert container["resources"]["limits"]
    assert container["command"] == ["python", "-m", "taskmanager_operator"]
    assert "--liveness=http://0.0.0.0:8080/healthz" in container["args"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "healthz"}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"healthz": 8080, "metrics": 8081}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["TASKMANAGER_OPERATOR_METRICS_PORT"] == "8081"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        pytest.param(
            ["--set", "replicas=2"],
            "additional properties 'replicas' not allowed",
            id="unknown-key",
        ),
        pytest.param(
            ["--set", "image.tagg=x"],
            "additional properties 'tagg' not allowed",
            id="unknown-nested-key",
        ),
        pytest.param(
            ["--set-string", "replicaCount=two"], "got string, want integer", id="wrong-type"
        ),
        pytest.param(
            ["--set", "replicaCount=-1"], "minimum: got -1, want 0", id="negative-replicas"
        ),
        pytest.param(["--set", "logging.format=xml"], "value must be one of", id="bad-enum"),
        pytest.param(
            ["--set", "watch.allNamespaces=false"], "minItems: got 0, want 1", id="no-namespaces"
        ),
        pytest.param(
            ["--set", "watch.allNamespaces=false", "--set", "watch.namespaces[0]=team-*"],
            "is a glob; a Role needs an exact namespace",
            id="glob-with-roles",
        ),
    ],
)
def test_bad_values_are_refused_with_the_reason(flags: list[str], message: str) -> None:
    result = template(extra=flags, check=False)
    assert result.returncode != 0, result.stdout
    assert message in result.stderr, result.stderr


def test_the_operator_pods_let_in_only_their_health_and_metrics_ports() -> None:
    (policy,) = of_kind(render(), "NetworkPolicy")
    (deployment,) = of_kind(render(), "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    ports = [rule["ports"] for rule in policy["spec"]["ingress"]]
    assert ports == [
        [{"port": "healthz", "protocol": "TCP"}],
        [{"port": "metrics", "protocol": "TCP"}],
    ]
    assert all("from" not in rule for rule in policy["spec"]["ingress"]), "anyone, by default"
    assert policy["spec"]["egress"] == [{}], "the API server's address differs per cluster"


def test_metrics_from_narrows_who_scrapes_and_egress_can_be_narrowed() -> None:
    (policy,) = of_kind(
        render(
            {
                "networkPolicy.metricsFrom[0].namespaceSelector.matchLabels.team": "monitoring",
                "networkPolicy.egress[0].ports[0].port": 443,
            }
        ),
        "NetworkPolicy",
    )
    _, metrics = policy["spec"]["ingress"]
    assert metrics["from"] == [{"namespaceSelector": {"matchLabels": {"team": "monitoring"}}}]
    assert policy["spec"]["egress"] == [{"ports": [{"port": 443}]}]
    assert not of_kind(render({"networkPolicy.enabled": False}), "NetworkPolicy")


def test_the_operator_is_ready_while_its_metrics_answer() -> None:
    (deployment,) = of_kind(render(), "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/metrics", "port": "metrics"}
    assert container["readinessProbe"] != container["livenessProbe"]
    (without_metrics,) = of_kind(render({"metrics.enabled": False}), "Deployment")
    (container,) = without_metrics["spec"]["template"]["spec"]["containers"]
    assert "readinessProbe" not in container, "no Service selects the pods then"
    assert {"requests", "limits"} <= container["resources"].keys()
    assert "ephemeral-storage" in container["resources"]["limits"]
