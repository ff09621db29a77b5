"""The chart's RBAC is enough: the operator's own cluster tests pass with only its credentials."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from kubernetes.client import ApiClient

from tests.chart.conftest import Release
from tests.chart.helm import CHART, LOCAL_KUBECONFIG, REPO, run, set_args

# The session operator of tests/cluster watches the glob test-*; the chart is configured the same
# way, so its RBAC is exactly what that configuration gets in production.
RBAC_VALUES: dict[str, str | int | bool] = {
    "watch.allNamespaces": False,
    "watch.namespaces[0]": "test-*",
    "rbac.namespaced": False,
    # Only the RBAC is under test; the CRD comes from the tests' own fixture.
    "replicaCount": 0,
    "crds.enabled": False,
}
LEASE_NAME = "taskmanager-operator"


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
    run(
        "helm",
        "install",
        release.name,
        str(CHART),
        "--namespace",
        release.namespace,
        *set_args(RBAC_VALUES),
        "--wait",
        "--timeout=60s",
    )
    kubeconfig = service_account_kubeconfig(api_client, release, tmp_path / "kubeconfig")
    # The credentials really are the ServiceAccount's: it may not read Secrets outside test-*.
    review = client.AuthorizationV1Api(api_client).create_subject_access_review(
        client.V1SubjectAccessReview(
            spec=client.V1SubjectAccessReviewSpec(
                user=f"system:serviceaccount:{release.namespace}:{release.name}-taskmanager-operator",
                resource_attributes=client.V1ResourceAttributes(
                    verb="get", resource="pods", namespace="kube-system"
                ),
            )
        )
    )
    assert not review.status.allowed

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/cluster/test_operator.py",
            "-q",
            "-p",
            "no:cacheprovider",
        ],
        cwd=REPO,
        env={
            **os.environ,
            "KUBECONFIG": str(LOCAL_KUBECONFIG),
            "OPERATOR_KUBECONFIG": str(kubeconfig),
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
