"""What a cluster admin adds to the pods and the autoscaler: spec.podTemplate's labels and
annotations on the API pods, spec.imagePullSecrets on every pod, the API's ServiceAccount (ours,
or spec.serviceAccountName), and spec.autoscaling.behavior as the HPA's behavior.

The builders, the defaults, the CRD's schema and CEL rules (read without a cluster by
tests/unit/test_scheduling.py's checker), and the reconcile on the in-memory API server.
tests/cluster/test_spec_placement_and_scaling.py proves the same on the local cluster."""

from __future__ import annotations

from typing import Any

import pytest

from taskmanager_operator.api.crd import API_SUFFIX, name_rules
from taskmanager_operator.api.v1alpha1 import (
    OPERATOR_KEY_PREFIX,
    OPERATOR_POD_LABELS,
    ScalingBehavior,
    TaskManagerSpec,
    to_manifest,
)
from taskmanager_operator.builders import availability, identity
from taskmanager_operator.builders.api import ROLLOUT_CHECKSUM_ANNOTATION
from taskmanager_operator.builders.common import (
    API,
    CACHE,
    DATABASE,
    MIGRATION,
    Capabilities,
    Manifest,
    api_name,
    labels,
    owner_reference,
    selector_labels,
)
from taskmanager_operator.children import CHILDREN
from tests.support.fake_kube import events_of, settle
from tests.unit.test_builders import deployment, pod_spec, taskmanager, workloads
from tests.unit.test_reconcile import NS, Cluster, cluster, ready_demo
from tests.unit.test_scheduling import (
    WORKLOADS,
    api_deployment,
    assert_accepted,
    assert_rejected,
    cel_holds,
    migration_job,
    postgres,
    redis,
    spec_schema,
)

__all__ = ["cluster"]

MESH_LABELS = {"sidecar.istio.io/inject": "true", "team": "payments"}
INJECTOR_ANNOTATIONS = {
    "vault.hashicorp.com/agent-inject": "true",
    "vault.hashicorp.com/role": "tasks",
}
POD_TEMPLATE = {"labels": MESH_LABELS, "annotations": INJECTOR_ANNOTATIONS}
PULL_SECRETS = [{"name": "registry-a"}, {"name": "registry-b"}]
WORKLOAD_IDENTITY = "tasks-workload-identity"


def scaling_rules(window: int, select: str, *policies: tuple[str, int, int]) -> dict[str, Any]:
    """An HPA's scaleUp or scaleDown: a window, a selectPolicy, (type, value, periodSeconds)s."""
    return {
        "stabilizationWindowSeconds": window,
        "selectPolicy": select,
        "policies": [
            {"type": kind, "value": value, "periodSeconds": period}
            for kind, value, period in policies
        ],
    }


# What admins write for an API: up fast (double, or 2 pods, a minute; 30 s window), down slowly
# (half of them a minute at most; 5 min window).
DEFAULT_BEHAVIOR = {
    "scaleUp": scaling_rules(30, "Max", ("Percent", 100, 60), ("Pods", 2, 60)),
    "scaleDown": scaling_rules(300, "Max", ("Percent", 50, 60)),
}


def template_metadata(workload: Manifest) -> dict[str, Any]:
    found: dict[str, Any] = workload["spec"]["template"]["metadata"]
    return found


def hpa_behavior(autoscaling: dict[str, Any]) -> dict[str, Any]:
    tm = taskmanager({"autoscaling": {"enabled": True, **autoscaling}})
    hpa = availability.build_hpa(tm, Capabilities())
    assert hpa is not None
    behavior: dict[str, Any] = hpa["spec"]["behavior"]
    return behavior


# -- spec.podTemplate ---------------------------------------------------------------------------


def test_the_api_pods_carry_the_pod_template_beside_the_operators_own() -> None:
    built = deployment(taskmanager({"podTemplate": POD_TEMPLATE}), rollout_checksum="c1")
    pod = template_metadata(built)
    assert pod["labels"] == MESH_LABELS | labels(taskmanager(), API)
    assert pod["annotations"] == INJECTOR_ANNOTATIONS | {ROLLOUT_CHECKSUM_ANNOTATION: "c1"}
    # The pods only: the Deployment itself and what selects the pods stay as they were.
    plain = deployment(taskmanager(), rollout_checksum="c1")
    assert built["metadata"] == plain["metadata"]
    assert built["spec"]["selector"] == plain["spec"]["selector"]


def test_the_operators_keys_win_over_the_pod_template() -> None:
    """The CRD refuses these keys; an object that got past it still cannot take the pods."""
    ours = {"app.kubernetes.io/instance": "someone-else", ROLLOUT_CHECKSUM_ANNOTATION: "forged"}
    tm = taskmanager({"podTemplate": {"labels": ours, "annotations": ours}})
    pod = template_metadata(deployment(tm, rollout_checksum="c1"))
    assert pod["labels"]["app.kubernetes.io/instance"] == "demo"
    assert pod["annotations"][ROLLOUT_CHECKSUM_ANNOTATION] == "c1"


def test_a_changed_pod_template_changes_the_api_pods_template_and_nothing_else() -> None:
    """A Deployment rolls its pods on any change to its template, so this is the rollout."""
    before = taskmanager({"podTemplate": POD_TEMPLATE})
    after = taskmanager({"podTemplate": {**POD_TEMPLATE, "annotations": {"rotated": "2"}}})
    assert deployment(before)["spec"]["template"] != deployment(after)["spec"]["template"]
    for workload, changed in zip(workloads(before), workloads(after), strict=True):
        if workload["kind"] != "Deployment" or workload["metadata"]["name"] != api_name(before):
            assert workload == changed, workload["metadata"]["name"]


@pytest.mark.parametrize("build", [migration_job, postgres, redis])
def test_the_pod_template_is_for_the_api_pods_only(build: Any) -> None:
    # A mesh sidecar would keep the migration Job from ever completing.
    assert template_metadata(build({"podTemplate": POD_TEMPLATE})) == template_metadata(build({}))


def test_the_pod_labels_the_crd_refuses_are_the_ones_the_builders_set() -> None:
    tm = taskmanager()
    for component in (API, MIGRATION, DATABASE, CACHE):
        assert set(labels(tm, component)) == set(OPERATOR_POD_LABELS), component
        assert set(selector_labels(tm, component)) <= set(OPERATOR_POD_LABELS), component
    assert ROLLOUT_CHECKSUM_ANNOTATION.startswith(OPERATOR_KEY_PREFIX)


# -- spec.imagePullSecrets ----------------------------------------------------------------------


@pytest.mark.parametrize("build", WORKLOADS)
def test_every_pod_pulls_with_the_image_pull_secrets(build: Any) -> None:
    # The managed PostgreSQL's and Redis's too: a mirrored registry usually holds those images.
    assert pod_spec(build({"imagePullSecrets": PULL_SECRETS}))["imagePullSecrets"] == PULL_SECRETS


def test_without_image_pull_secrets_the_pods_have_none() -> None:
    for workload in workloads(taskmanager()):
        assert "imagePullSecrets" not in pod_spec(workload), workload["metadata"]["name"]
    built = workloads(taskmanager({"imagePullSecrets": PULL_SECRETS}))
    assert all(pod_spec(w)["imagePullSecrets"] == PULL_SECRETS for w in built)


# -- the API's ServiceAccount -------------------------------------------------------------------


def test_without_service_account_name_the_operator_makes_one_that_mounts_no_token() -> None:
    tm = taskmanager()
    account = identity.build_service_account(tm)
    assert account == {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {
            "name": "demo-api",
            "namespace": tm.namespace,
            "labels": labels(tm, API),
            "ownerReferences": [owner_reference(tm)],
        },
        "automountServiceAccountToken": False,
    }
    for build in (api_deployment, migration_job):
        pod = pod_spec(build({}))
        assert pod["serviceAccountName"] == "demo-api"
        assert pod["automountServiceAccountToken"] is False


def test_service_account_name_replaces_ours_for_the_api_pods_and_the_migration_job() -> None:
    spec = {"serviceAccountName": WORKLOAD_IDENTITY}
    assert identity.build_service_account(taskmanager(spec)) is None
    for build in (api_deployment, migration_job):
        pod = pod_spec(build(spec))
        assert pod["serviceAccountName"] == WORKLOAD_IDENTITY
        # A workload identity's token comes from its own webhook's volume, not the automount.
        assert pod["automountServiceAccountToken"] is False


@pytest.mark.parametrize("build", [postgres, redis])
def test_the_managed_services_keep_their_namespaces_default_service_account(build: Any) -> None:
    for spec in ({}, {"serviceAccountName": WORKLOAD_IDENTITY}):
        pod = pod_spec(build(spec))
        assert "serviceAccountName" not in pod
        assert pod["automountServiceAccountToken"] is False


def test_the_service_account_is_an_optional_child_applied_before_the_workloads() -> None:
    (kind,) = [child for child in CHILDREN if child.kind == "ServiceAccount"]
    (when,) = kind.optional
    assert when.before_workloads
    assert [c.kind for c in CHILDREN for w in c.optional if w.before_workloads] == [
        "ServiceAccount"
    ]
    assert when.name(taskmanager()) == api_name(taskmanager()) == f"demo{API_SUFFIX}"


def test_the_crd_refuses_our_own_service_accounts_name_by_its_suffix() -> None:
    """The root rule compares with metadata.name plus API_SUFFIX: the name api_name builds."""
    (rule,) = [r for r in name_rules() if "serviceAccountName" in r["rule"]]
    assert f"self.metadata.name + '{API_SUFFIX}'" in rule["rule"]
    assert rule["fieldPath"] == ".spec.serviceAccountName"


# -- spec.autoscaling.behavior ------------------------------------------------------------------


def test_the_hpa_scales_up_fast_and_down_slowly_by_default() -> None:
    assert hpa_behavior({}) == DEFAULT_BEHAVIOR
    assert to_manifest(ScalingBehavior()) == DEFAULT_BEHAVIOR


def test_the_hpa_takes_the_behavior_as_written() -> None:
    behavior = {
        "scaleUp": scaling_rules(0, "Min", ("Pods", 4, 15), ("Percent", 200, 30)),
        "scaleDown": scaling_rules(600, "Disabled", ("Pods", 1, 1800)),
    }
    assert hpa_behavior({"behavior": behavior}) == behavior


def test_one_direction_written_keeps_the_others_defaults() -> None:
    behavior = hpa_behavior({"behavior": {"scaleDown": {"stabilizationWindowSeconds": 120}}})
    assert behavior == {
        "scaleUp": DEFAULT_BEHAVIOR["scaleUp"],
        "scaleDown": {**DEFAULT_BEHAVIOR["scaleDown"], "stabilizationWindowSeconds": 120},
    }
    policy_only = hpa_behavior(
        {"behavior": {"scaleUp": {"policies": [{"type": "Pods", "value": 5}]}}}
    )
    assert policy_only["scaleUp"] == scaling_rules(30, "Max", ("Pods", 5, 60))


# -- defaults -----------------------------------------------------------------------------------


def test_the_defaults_add_nothing_to_the_pods_and_the_crd_defaults_the_same() -> None:
    spec = TaskManagerSpec()
    assert (spec.pod_template.labels, spec.pod_template.annotations) == ({}, {})
    assert (spec.image_pull_secrets, spec.service_account_name) == ([], None)
    default = spec_schema()["default"]
    assert default["podTemplate"] == {"labels": {}, "annotations": {}}
    assert default["imagePullSecrets"] == []
    assert "serviceAccountName" not in default
    assert default["autoscaling"]["behavior"] == DEFAULT_BEHAVIOR
    for tm in (taskmanager(), taskmanager({"podTemplate": {}, "imagePullSecrets": []})):
        assert deployment(tm) == deployment(taskmanager({"podTemplate": {"labels": {}}}))


# -- CRD: schema and CEL ------------------------------------------------------------------------


def pod_template(**fields: Any) -> dict[str, Any]:
    return {"podTemplate": fields}


def behavior(direction: str, **rules: Any) -> dict[str, Any]:
    return {"autoscaling": {"behavior": {direction: rules}}}


def policy(**fields: Any) -> dict[str, Any]:
    return behavior("scaleUp", policies=[{"type": "Pods", "value": 1} | fields])


OWNED_LABEL = "podTemplate.labels must not set a label the operator sets"
OWNED_ANNOTATION = "podTemplate.annotations must not set a taskmanager.dev/ key"
LABELS = "spec.podTemplate.labels"
ANNOTATIONS = "spec.podTemplate.annotations"
UP = "spec.autoscaling.behavior.scaleUp"
DOWN = "spec.autoscaling.behavior.scaleDown"
INVALID = [
    *(
        pytest.param(pod_template(labels={key: "x"}), f"{LABELS}: {OWNED_LABEL}", id=f"label-{key}")
        for key in OPERATOR_POD_LABELS
    ),
    pytest.param(
        pod_template(labels={"taskmanager.dev/tier": "gold"}),
        f"{LABELS}: {OWNED_LABEL}",
        id="label-operator-prefix",
    ),
    pytest.param(
        pod_template(annotations={ROLLOUT_CHECKSUM_ANNOTATION: "pinned"}),
        f"{ANNOTATIONS}: {OWNED_ANNOTATION}",
        id="annotation-rollout-checksum",
    ),
    pytest.param(
        pod_template(annotations={"taskmanager.dev/anything": "x"}),
        f"{ANNOTATIONS}: {OWNED_ANNOTATION}",
        id="annotation-operator-prefix",
    ),
    pytest.param(
        pod_template(labels={"team": "a" * 64}),
        f"{LABELS}.team: Too long",
        id="label-value-too-long",
    ),
    pytest.param(
        pod_template(sidecars=[]),
        'unknown field "spec.podTemplate.sidecars"',
        id="pod-template-unknown-field",
    ),
    pytest.param(
        {"imagePullSecrets": [{"name": "Registry_Creds"}]},
        "spec.imagePullSecrets[0].name: Invalid value",
        id="pull-secret-name",
    ),
    pytest.param(
        {"imagePullSecrets": [{"secretName": "creds"}]},
        "spec.imagePullSecrets[0].name: Required value",
        id="pull-secret-without-name",
    ),
    pytest.param(
        {"serviceAccountName": "Tasks_SA"},
        "spec.serviceAccountName: Invalid value",
        id="service-account-name",
    ),
    pytest.param(
        behavior("scaleUp", policies=[]),
        f"{UP}.policies: should have at least 1",
        id="empty-policies",
    ),
    pytest.param(
        behavior("scaleDown", stabilizationWindowSeconds=3601),
        f"{DOWN}.stabilizationWindowSeconds: should be less than or equal to 3600",
        id="window-over-an-hour",
    ),
    pytest.param(
        behavior("scaleDown", stabilizationWindowSeconds=-1),
        f"{DOWN}.stabilizationWindowSeconds: should be greater than or equal to 0",
        id="window-negative",
    ),
    pytest.param(
        policy(periodSeconds=0),
        f"{UP}.policies[0].periodSeconds: should be greater than or equal to 1",
        id="period-zero",
    ),
    pytest.param(
        policy(periodSeconds=1801),
        f"{UP}.policies[0].periodSeconds: should be less than or equal to 1800",
        id="period-over-30-minutes",
    ),
    pytest.param(
        policy(value=0),
        f"{UP}.policies[0].value: should be greater than or equal to 1",
        id="value-zero",
    ),
    pytest.param(
        policy(type="Replicas"), f"{UP}.policies[0].type: Unsupported value", id="policy-type"
    ),
    pytest.param(
        behavior("scaleDown", policies=[{"value": 1}]),
        f"{DOWN}.policies[0].type: Required value",
        id="policy-without-type",
    ),
    pytest.param(
        behavior("scaleUp", selectPolicy="Sometimes"),
        f"{UP}.selectPolicy: Unsupported value",
        id="select-policy",
    ),
    pytest.param(
        {"autoscaling": {"scaleDownStabilizationSeconds": 120}},
        'unknown field "spec.autoscaling.scaleDownStabilizationSeconds"',
        id="removed-field",
    ),
]

VALID = [
    pytest.param(pod_template(**POD_TEMPLATE), id="mesh-and-injector"),
    pytest.param(
        pod_template(labels={"app.kubernetes.io/created-by": "platform", "app": "tasks"}),
        id="other-app-kubernetes-io-labels",
    ),
    pytest.param(
        pod_template(annotations={"example.com/taskmanager.dev-note": "x"}), id="not-our-prefix"
    ),
    pytest.param({"imagePullSecrets": PULL_SECRETS}, id="pull-secrets"),
    pytest.param({"serviceAccountName": WORKLOAD_IDENTITY}, id="service-account"),
    pytest.param({"autoscaling": {"behavior": DEFAULT_BEHAVIOR}}, id="behavior-spelled-out"),
    pytest.param(
        behavior("scaleDown", stabilizationWindowSeconds=3600, selectPolicy="Disabled"),
        id="behavior-bounds",
    ),
    pytest.param(policy(periodSeconds=1800, value=10_000), id="policy-bounds"),
]


@pytest.mark.parametrize(("spec", "message"), INVALID)
def test_the_crd_rejects_bad_input_naming_the_field(spec: dict[str, Any], message: str) -> None:
    assert_rejected(spec, message)


@pytest.mark.parametrize("spec", VALID)
def test_the_crd_and_the_operator_accept_good_input(spec: dict[str, Any]) -> None:
    assert_accepted(spec)


def test_the_cel_reader_reads_all_and_starts_with() -> None:
    """The checker's translation of the rules above, pinned both ways."""
    rule = "self.labels.all(k, !(k in ['a/b', 'c']) && !k.startsWith('x/'))"
    assert cel_holds(rule, {"labels": {"a/c": "1", "d": "2"}})
    assert cel_holds(rule, {"labels": {}})
    assert not cel_holds(rule, {"labels": {"d": "1", "c": "2"}})
    assert not cel_holds(rule, {"labels": {"x/y": "1"}})


# -- the reconcile ------------------------------------------------------------------------------


def test_the_service_account_exists_before_the_pods_that_run_as_it(cluster: Cluster) -> None:
    ready_demo(cluster)
    cluster.kube.delete("v1", "ServiceAccount", NS, "demo-api")
    cluster.kube.delete("apps/v1", "Deployment", NS, "demo-api")
    cluster.reconcile("demo")
    writes = cluster.kube.writes
    assert writes.index("apply ServiceAccount demo-api") < writes.index("apply Deployment demo-api")
    account = cluster.child("v1", "ServiceAccount", "demo-api")
    assert account["automountServiceAccountToken"] is False


def test_the_first_reconcile_makes_the_service_account_before_the_migration_job(
    cluster: Cluster,
) -> None:
    cluster.kube.create_taskmanager(NS, "demo", {})
    cluster.reconcile("demo")
    settle(cluster.kube, NS)  # PostgreSQL and Redis are up: the Job comes now
    cluster.reconcile("demo")
    writes = cluster.kube.writes
    job = next(w for w in writes if w.startswith("apply Job demo-migrate-"))
    assert writes.index("apply ServiceAccount demo-api") < writes.index(job)


def test_setting_service_account_name_deletes_ours_and_unsetting_it_brings_it_back(
    cluster: Cluster,
) -> None:
    ready_demo(cluster)
    cluster.patch_spec("demo", {"serviceAccountName": WORKLOAD_IDENTITY})
    cluster.reconcile("demo")
    assert "ServiceAccount demo-api" not in cluster.children()
    assert ("Normal", "Deleted") in events_of(cluster.kube, "demo")
    pod = cluster.deployment("demo-api")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == WORKLOAD_IDENTITY

    cluster.patch_spec("demo", {"serviceAccountName": None})
    cluster.reconcile("demo")
    assert "ServiceAccount demo-api" in cluster.children()
    pod = cluster.deployment("demo-api")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "demo-api"


def test_a_reconcile_with_a_service_account_and_nothing_to_do_writes_nothing(
    cluster: Cluster,
) -> None:
    ready_demo(cluster, podTemplate=POD_TEMPLATE, imagePullSecrets=PULL_SECRETS)
    cluster.reconcile("demo")
    assert cluster.kube.writes == []
