"""Fixtures for tests that run against the local Kubernetes cluster (`make cluster-up`)."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client import ApiClient
from kubernetes.dynamic import DynamicClient

from taskmanager_operator.api.crd import KINDS
from taskmanager_operator.api.v1alpha1 import GROUP, PLURAL, VERSION
from tests.support.convergence import release_finalizers
from tests.support.operator import OperatorProcess, run_operator
from tests.support.wait import wait_until

REPO = Path(__file__).resolve().parents[2]
# The namespaces of the tests, which the session operator watches (`<prefix>*`). A run nested in
# another session (tests/chart/test_rbac.py) takes its own prefix, so no other operator acts there.
TEST_NAMESPACE_PREFIX = os.environ.get("TEST_NAMESPACE_PREFIX", "test-")
START_HINT = "start the local cluster with `make cluster-up` (needs Go >= 1.24), or run `make test`"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.cluster)


@pytest.fixture(scope="session")
def api_client() -> Iterator[ApiClient]:
    """A client for the cluster in KUBECONFIG, or the local one; fails loudly when none answers."""
    kubeconfig = Path(os.environ.get("KUBECONFIG") or REPO / ".local" / "kubeconfig")
    if not kubeconfig.is_file():
        pytest.fail(f"no kubeconfig at {kubeconfig}: {START_HINT}")
    api = config.new_client_from_config(config_file=str(kubeconfig))
    try:
        client.VersionApi(api).get_code()
    except Exception as error:  # noqa: BLE001 - any failure here means the same thing
        pytest.fail(f"the cluster in {kubeconfig} does not answer ({error}): {START_HINT}")
    with api:
        yield api


@pytest.fixture(scope="session")
def dynamic(api_client: ApiClient) -> DynamicClient:
    return DynamicClient(api_client)


@contextlib.contextmanager
def fresh_namespace(api_client: ApiClient, prefix: str = TEST_NAMESPACE_PREFIX) -> Iterator[str]:
    """A new namespace, deleted afterwards with everything in it."""
    name = f"{prefix}{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(api_client)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    try:
        yield name
    finally:
        core.delete_namespace(name, propagation_policy="Background")


@pytest.fixture
def namespace(api_client: ApiClient) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards (with everything in it)."""
    with fresh_namespace(api_client) as name:
        yield name


@pytest.fixture(scope="session")
def taskmanager_crd(api_client: ApiClient) -> str:
    """The generated CRDs (TaskManager's, and its backups' and restores'), applied server-side
    and Established; the TaskManager CRD's name."""
    crds = DynamicClient(api_client).resources.get(
        api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition"
    )
    extensions = client.ApiextensionsV1Api(api_client)
    custom = client.CustomObjectsApi(api_client)
    for kind in KINDS:
        manifest = yaml.safe_load((REPO / "crds" / kind.crd_file).read_text())
        crds.server_side_apply(
            body=manifest, field_manager="taskmanager-tests", force_conflicts=True
        )
        name: str = manifest["metadata"]["name"]

        def established(name: str = name) -> bool:
            conditions = extensions.read_custom_resource_definition(name).status.conditions or []
            return any(c.type == "Established" and c.status == "True" for c in conditions)

        wait_until(established, timeout=30, what=f"CRD {name} to be Established")

        # Discovery of a new API group may lag the Established condition by a moment.
        def served(plural: str = kind.plural) -> bool:
            return custom.list_cluster_custom_object(GROUP, VERSION, plural) is not None

        wait_until(served, timeout=30, what=f"{kind.plural} to be served")
    return f"{PLURAL}.{GROUP}"


@pytest.fixture(scope="session")
def operator(api_client: ApiClient, taskmanager_crd: str) -> Iterator[OperatorProcess]:
    """The operator for the whole session, watching the tests' namespaces (a glob kopf expands).

    OPERATOR_KUBECONFIG runs it with other credentials than the tests' own (the chart's
    ServiceAccount, to prove its RBAC is enough).
    """
    kubeconfig = Path(
        os.environ.get("OPERATOR_KUBECONFIG")
        or os.environ.get("KUBECONFIG")
        or REPO / ".local" / "kubeconfig"
    )
    with run_operator(kubeconfig, "--namespace", f"{TEST_NAMESPACE_PREFIX}*") as running:
        wait_until_reconciling(api_client, running)
        yield running


def create_paused_taskmanager(custom: client.CustomObjectsApi, namespace: str, name: str) -> None:
    """A TaskManager that only proves the operator reconciles it: it reaches phase Paused."""
    custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "TaskManager",
            "metadata": {"name": name},
            "spec": {"paused": True},
        },
    )


def wait_until_reconciling(api_client: ApiClient, operator: OperatorProcess) -> None:
    """The liveness probe answers before kopf's watches are up; a canary proves the whole path."""
    custom = client.CustomObjectsApi(api_client)
    with fresh_namespace(api_client, f"{TEST_NAMESPACE_PREFIX}canary-") as namespace:
        create_paused_taskmanager(custom, namespace, "canary")

        def paused() -> bool:
            if operator.process.poll() is not None:
                raise AssertionError(f"the operator exited:\n{operator.log_tail()}")
            body = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "canary")
            return (body.get("status") or {}).get("phase") == "Paused"

        try:
            wait_until(
                paused, timeout=120, what=f"the operator to reconcile a canary in {namespace}"
            )
        except AssertionError as error:
            raise AssertionError(f"{error}\noperator log:\n{operator.log_tail()}") from None


@pytest.fixture
def isolated_namespace(api_client: ApiClient) -> Iterator[str]:
    """A namespace for one test's own operators. Afterwards its TaskManagers, backups and
    restores lose their finalizers, which no operator runs to release any more, so the
    namespace can go."""
    with fresh_namespace(api_client, "iso-") as namespace:
        yield namespace
        release_finalizers(api_client, namespace)
