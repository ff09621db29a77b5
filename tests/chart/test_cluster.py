"""The chart against the local cluster: server-side dry-run, install, upgrade and uninstall."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import ApiClient

from tests.chart.conftest import Release
from tests.chart.helm import CHART, run, set_args, template, unique
from tests.chart.test_render import MODES
from tests.support.wait import wait_until

CRD_NAME = "taskmanagers.taskmanager.dev"


@pytest.mark.parametrize("values", MODES.values(), ids=MODES.keys())
def test_the_rendered_chart_passes_a_server_side_dry_run(
    api_client: ApiClient, values: dict[str, str | int | bool]
) -> None:
    namespace = unique("chart-dry")
    core = client.CoreV1Api(api_client)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    try:
        # A namespace list names namespaces that need not exist for the dry-run to hold; the
        # Roles of "namespace-list" go to team-a, so render them into the test's namespace.
        values = {k: (namespace if v == "team-a" else v) for k, v in values.items()}
        manifests = template(values, namespace=namespace).stdout
        result = run(
            "kubectl",
            "apply",
            "--dry-run=server",
            "--server-side",
            "--force-conflicts",
            "--field-manager=taskmanager-chart-tests",
            "-f",
            "-",
            stdin=manifests,
        )
        assert "deployment.apps/" in result.stdout, result.stdout
        assert "(server dry run)" in result.stdout, result.stdout
    finally:
        core.delete_namespace(namespace, propagation_policy="Background")


def _ready_deployment(apps: client.AppsV1Api, release: Release, replicas: int) -> Any:
    name = f"{release.name}-taskmanager-operator"
    deployment = apps.read_namespaced_deployment(name, release.namespace)
    status = deployment.status
    rolled_out = (
        status.observed_generation == deployment.metadata.generation
        and (status.ready_replicas or 0) == replicas
        and (status.updated_replicas or 0) == replicas
        and (status.replicas or 0) == replicas
    )
    return deployment if rolled_out else None


def test_install_upgrade_and_uninstall_keep_the_crd(
    api_client: ApiClient, taskmanager_crd: str, release: Release
) -> None:
    extensions = client.ApiextensionsV1Api(api_client)
    apps = client.AppsV1Api(api_client)
    crd_uid = extensions.read_custom_resource_definition(CRD_NAME).metadata.uid

    # The CRD exists already (the cluster tests apply it); the release takes it over.
    installed = release.install(
        "--take-ownership",
        timeout="120s",
    )
    assert "kubectl -n" in installed.stdout, installed.stdout  # NOTES.txt: what to do next
    assert "samples/taskmanager.yaml" in installed.stdout, installed.stdout
    deployment = wait_until(
        lambda: _ready_deployment(apps, release, 1), timeout=120, what="the operator to be Ready"
    )
    crd = extensions.read_custom_resource_definition(CRD_NAME)
    assert crd.metadata.annotations["meta.helm.sh/release-name"] == release.name
    assert crd.metadata.annotations["helm.sh/resource-policy"] == "keep"
    assert crd.metadata.uid == crd_uid

    run(
        "helm",
        "upgrade",
        release.name,
        str(CHART),
        "--namespace",
        release.namespace,
        "--reuse-values",
        *set_args({"replicaCount": 2, "logging.verbose": True}),
        "--wait",
        "--timeout=120s",
    )
    deployment = wait_until(
        lambda: _ready_deployment(apps, release, 2),
        timeout=120,
        what="the upgraded operator to have 2 Ready replicas",
    )
    (container,) = deployment.spec.template.spec.containers
    assert "--verbose" in container.args
    history = run("helm", "history", release.name, "--namespace", release.namespace).stdout
    assert "Upgrade complete" in history, history

    uninstalled = run("helm", "uninstall", release.name, "--namespace", release.namespace, "--wait")
    assert f"[CustomResourceDefinition] {CRD_NAME}" in uninstalled.stdout, uninstalled.stdout
    crd = extensions.read_custom_resource_definition(CRD_NAME)
    assert crd.metadata.uid == crd_uid
    assert crd.metadata.deletion_timestamp is None
    assert not apps.list_namespaced_deployment(release.namespace).items
    rbac = client.RbacAuthorizationV1Api(api_client)
    leftovers = [
        role.metadata.name
        for role in rbac.list_cluster_role().items
        if release.name in role.metadata.name
    ]
    assert not leftovers
