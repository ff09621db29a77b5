"""The chart's RBAC is enough: the operator's own cluster tests pass with only its credentials."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from kubernetes.client import ApiClient

from taskmanager_operator.api.v1alpha1 import GROUP, PLURAL, VERSION
from tests.chart.conftest import Release
from tests.chart.helm import LOCAL_KUBECONFIG, REPO, set_args, unique
from tests.support.operator import run_operator
from tests.support.wait import wait_until

# The operator suite runs nested, in namespaces of its own prefix: another session's operator
# (tests/cluster's watches test-*) must not act beside the one under test. The chart watches that
# glob as the session operator does, so its RBAC is exactly what that configuration gets.
NESTED_NAMESPACE_PREFIX = "rbac-test-"
RBAC_VALUES: dict[str, str | int | bool] = {
    "watch.allNamespaces": False,
    "watch.namespaces[0]": f"{NESTED_NAMESPACE_PREFIX}*",
    "rbac.namespaced": False,
    # Only the RBAC is under test; the CRD comes from the tests' own fixture.
    "replicaCount": 0,
    "crds.enabled": False,
}
LEASE_NAME = "taskmanager-operator"
SAMPLE = REPO / "samples" / "taskmanager.yaml"


def service_account_kubeconfig(api_client: ApiClient, release: Release, path: Path) -> Path:
    """A kubeconfig that authenticates as the chart's ServiceAccount (a TokenRequest token)."""
    account = f"{release.name}-taskmanager-operator"
    token = (
        client.CoreV1Api(api_client)
        .create_namespaced_service_account_token(
            account,
            release.namespace,
            client.AuthenticationV1TokenRequest(
                spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
            ),
        )
        .status.token
    )
    local = yaml.safe_load(LOCAL_KUBECONFIG.read_text())
    cluster = local["clusters"][0]["cluster"]
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "local", "cluster": cluster}],
                "users": [{"name": account, "user": {"token": token}}],
                "contexts": [{"name": account, "context": {"cluster": "local", "user": account}}],
                "current-context": account,
            }
        )
    )
    path.chmod(0o600)
    return path


@pytest.mark.timeout(1500)
def test_the_operator_suite_passes_with_only_the_charts_rbac(
    api_client: ApiClient, taskmanager_crd: str, release: Release, tmp_path: Path
) -> None:
    release.install(
        *set_args(RBAC_VALUES),
    )
    kubeconfig = service_account_kubeconfig(api_client, release, tmp_path / "kubeconfig")
    # The credentials really are the ServiceAccount's, which may not read what it does not need.
    user = f"system:serviceaccount:{release.namespace}:{release.name}-taskmanager-operator"
    assert not allowed(api_client, user, "get", "pods", "kube-system")

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/cluster/test_operator.py",
            "tests/cluster/test_monitoring.py",
            "-q",
            "-p",
            "no:cacheprovider",
        ],
        cwd=REPO,
        env={
            **os.environ,
            "KUBECONFIG": str(LOCAL_KUBECONFIG),
            "OPERATOR_KUBECONFIG": str(kubeconfig),
            "TEST_NAMESPACE_PREFIX": NESTED_NAMESPACE_PREFIX,
            # The session operator also elects a leader, in the release namespace, as the chart's
            # Deployment does: the Lease rules are exercised too.
            "TASKMANAGER_OPERATOR_LEADER_ELECTION_NAMESPACE": release.namespace,
        },
        capture_output=True,
        text=True,
        timeout=1400,
        check=False,
    )
    output = result.stdout[-20000:] + result.stderr[-5000:]
    assert result.returncode == 0, output
    assert " passed" in result.stdout, output
    assert "skipped" not in result.stdout, output

    # Nothing was denied on the way, not even what kopf would survive with a warning (listing
    # namespaces or CRDs) or what a retry hides: the session operator's log says so.
    logs = [
        log
        for log in Path(tempfile.gettempdir()).glob("taskmanager-operator-*/operator.log")
        if f"(Lease {release.namespace}/{LEASE_NAME})" in log.read_text(errors="replace")
    ]
    assert len(logs) == 1, logs
    log_text = logs[0].read_text(errors="replace")
    for denial in ("is forbidden: User", "Not enough permissions"):
        assert denial not in log_text, f"{logs[0]}: {denial}"

    lease = client.CoordinationV1Api(api_client).read_namespaced_lease(
        LEASE_NAME, release.namespace
    )
    assert lease.spec.holder_identity
    # Renewed at least once after it was acquired: `update` was allowed.
    assert lease.spec.renew_time > lease.spec.acquire_time


def test_with_a_role_per_namespace_the_operator_brings_the_sample_to_ready(
    api_client: ApiClient, taskmanager_crd: str, release: Release, tmp_path: Path
) -> None:
    core = client.CoreV1Api(api_client)
    watched = unique("chart-watched")
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=watched)))
    try:
        release.install(
            *set_args(
                {
                    "watch.allNamespaces": False,
                    "watch.namespaces[0]": watched,
                    "replicaCount": 0,
                    "crds.enabled": False,
                }
            ),
        )
        kubeconfig = service_account_kubeconfig(api_client, release, tmp_path / "kubeconfig")
        user = f"system:serviceaccount:{release.namespace}:{release.name}-taskmanager-operator"
        # The operator's rights stop at the watched namespace.
        assert allowed(api_client, user, "patch", "deployments", watched, group="apps")
        assert not allowed(
            api_client, user, "patch", "deployments", release.namespace, group="apps"
        )
        assert not allowed(api_client, user, "list", "secrets", None)

        sample = yaml.safe_load(SAMPLE.read_text())
        custom = client.CustomObjectsApi(api_client)
        env = {"TASKMANAGER_OPERATOR_LEADER_ELECTION_NAMESPACE": release.namespace}
        with run_operator(kubeconfig, "--namespace", watched, env=env) as operator:
            custom.create_namespaced_custom_object(GROUP, VERSION, watched, PLURAL, sample)
            wait_until(
                lambda: (
                    (
                        custom.get_namespaced_custom_object(
                            GROUP, VERSION, watched, PLURAL, sample["metadata"]["name"]
                        ).get("status", {})
                    ).get("phase")
                    == "Ready"
                ),
                timeout=120,
                what=f"the sample to be Ready\n{operator.log_tail()}",
            )
            log_text = operator.log.read_text(errors="replace")
        for denial in ("is forbidden: User", "Not enough permissions"):
            assert denial not in log_text, f"{operator.log}: {denial}"
    finally:
        core.delete_namespace(watched, propagation_policy="Background")


def allowed(
    api_client: ApiClient,
    user: str,
    verb: str,
    resource: str,
    namespace: str | None,
    *,
    group: str = "",
) -> bool:
    review = client.AuthorizationV1Api(api_client).create_subject_access_review(
        client.V1SubjectAccessReview(
            spec=client.V1SubjectAccessReviewSpec(
                user=user,
                resource_attributes=client.V1ResourceAttributes(
                    verb=verb, resource=resource, group=group, namespace=namespace
                ),
            )
        )
    )
    return bool(review.status.allowed)


# What kopf watches cluster-wide with --all-namespaces: the ten kinds of children and taskmanagers.
WATCHED = [
    ("", "secrets"),
    ("", "configmaps"),
    ("", "services"),
    ("apps", "deployments"),
    ("apps", "statefulsets"),
    ("batch", "jobs"),
    ("autoscaling", "horizontalpodautoscalers"),
    ("policy", "poddisruptionbudgets"),
    ("networking.k8s.io", "networkpolicies"),
    ("networking.k8s.io", "ingresses"),
    (GROUP, PLURAL),
]


def test_the_default_all_namespaces_rbac_lets_kopf_watch_the_cluster(
    api_client: ApiClient, taskmanager_crd: str, release: Release, tmp_path: Path
) -> None:
    """--all-namespaces needs no namespace rights; kopf starts every cluster-wide watch.

    The operator here never acts: another holder keeps its Lease, so it cannot touch the
    TaskManagers of anyone else using the cluster (its writes are proven by the tests above).
    """
    release.install(
        *set_args({"replicaCount": 0, "crds.enabled": False}),
    )
    user = f"system:serviceaccount:{release.namespace}:{release.name}-taskmanager-operator"
    for group, resource in WATCHED:
        for verb in ("list", "watch"):
            assert allowed(api_client, user, verb, resource, None, group=group), (verb, resource)
    assert not allowed(api_client, user, "list", "namespaces", None)

    now = datetime.now(UTC)
    client.CoordinationV1Api(api_client).create_namespaced_lease(
        release.namespace,
        client.V1Lease(
            metadata=client.V1ObjectMeta(name=LEASE_NAME),
            spec=client.V1LeaseSpec(
                holder_identity="someone-else",
                lease_duration_seconds=3600,
                acquire_time=now,
                renew_time=now,
            ),
        ),
    )
    kubeconfig = service_account_kubeconfig(api_client, release, tmp_path / "kubeconfig")
    env = {"TASKMANAGER_OPERATOR_LEADER_ELECTION_NAMESPACE": release.namespace}
    with run_operator(kubeconfig, "--all-namespaces", "--verbose", env=env) as operator:
        # A labelled ConfigMap reaches kopf's cluster-wide watch: its handler runs.
        client.CoreV1Api(api_client).create_namespaced_config_map(
            release.namespace,
            client.V1ConfigMap(
                metadata=client.V1ObjectMeta(
                    name="probe", labels={"app.kubernetes.io/managed-by": "taskmanager-operator"}
                )
            ),
        )

        def watching() -> str | None:
            text = operator.log.read_text(errors="replace")
            streams = text.count("Starting the watch-stream for") >= len(WATCHED) + 1
            handled = "Handler 'child-configmaps' succeeded." in text
            return text if streams and handled else None

        log_text = wait_until(watching, timeout=60, what=f"kopf's watches\n{operator.log_tail()}")
    assert "cluster-wide" in log_text
    assert "held by someone-else" in log_text
    for denial in ("is forbidden: User", "Not enough permissions"):
        assert denial not in log_text, f"{operator.log}: {denial}"
