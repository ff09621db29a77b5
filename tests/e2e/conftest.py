"""End-to-end fixtures: the operator installed by the Helm chart, running as a pod on the local
cluster's real node, and TaskManagers whose pods really run there (hack/node.sh).

Everything here is real: the image `make image` builds, containerd running it, kube-proxy's
Service rules, CoreDNS, PostgreSQL and Redis. A failure carries the evidence: the TaskManager's
status, the pods' states and the operator's log tail.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import ApiClient

from taskmanager_operator.api.v1alpha1 import GROUP, PLURAL, VERSION
from tests.chart.helm import CHART, run, set_args
from tests.cluster.conftest import api_client, taskmanager_crd
from tests.support.node import NODE_SCRIPT, RealNode, real_node
from tests.support.wait import wait_until

__all__ = ["api_client", "taskmanager_crd"]

E2E_NAMESPACE_PREFIX = "e2e-"
NODE_HINT = "start the local cluster with its real node: `make cluster-up` as root (see README)"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.cluster)
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def node(api_client: ApiClient) -> RealNode:
    """The real node, Ready; its absence fails the e2e suite loudly (it never skips)."""
    found = real_node()
    core = client.CoreV1Api(api_client)
    try:
        body = core.read_node(found.name)
    except client.ApiException as error:
        pytest.fail(f"node {found.name} is not in the cluster ({error.reason}): {NODE_HINT}")
    ready = [c for c in body.status.conditions or [] if c.type == "Ready"]
    if not ready or ready[0].status != "True":
        status = subprocess.run(
            [str(NODE_SCRIPT), "status"], capture_output=True, text=True, check=False
        )
        pytest.fail(f"node {found.name} is not Ready ({ready}); {status.stdout}: {NODE_HINT}")
    return found


@contextlib.contextmanager
def e2e_namespace(api_client: ApiClient, purpose: str) -> Iterator[str]:
    """A namespace that enforces the restricted Pod Security Standard, deleted afterwards."""
    name = f"{E2E_NAMESPACE_PREFIX}{purpose}-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(api_client)
    labels = {
        f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "warn", "audit")
    }
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels))
    )
    try:
        yield name
    finally:
        core.delete_namespace(name, propagation_policy="Background")


@dataclass(frozen=True)
class OperatorRelease:
    name: str
    namespace: str

    def log_tail(self, lines: int = 80) -> str:
        result = run(
            "kubectl",
            "logs",
            "--namespace",
            self.namespace,
            f"deployment/{self.name}-taskmanager-operator",
            f"--tail={lines}",
            check=False,
        )
        # The kubelet's probes are every 10 s of the log: left out, so the tail shows the work.
        kept = [line for line in result.stdout.splitlines() if "kube-probe/" not in line]
        return "\n".join(kept) + result.stderr


@pytest.fixture(scope="package")
def operator_release(
    api_client: ApiClient, taskmanager_crd: str, node: RealNode
) -> Iterator[OperatorRelease]:
    """The operator as users install it: the chart, the image, only the chart's RBAC; one pod on
    the real node, watching the e2e namespaces."""
    # The images from the working tree: a cluster started before the last change has older ones.
    built = subprocess.run(
        [str(NODE_SCRIPT), "refresh"], capture_output=True, text=True, check=False, timeout=900
    )
    if built.returncode != 0:
        pytest.fail(f"hack/node.sh refresh failed:\n{built.stdout}{built.stderr}")
    repository, _, tag = node.api_image.rpartition(":")
    with e2e_namespace(api_client, "operator") as namespace:
        release = OperatorRelease(name="e2e", namespace=namespace)
        values: dict[str, str | int | bool] = {
            "crds.enabled": False,
            "image.repository": repository,
            "image.tag": tag,
            "image.pullPolicy": "Never",
            "watch.allNamespaces": False,
            "rbac.namespaced": False,
            # helm's --set reads dots as nesting: the label key's own dots are escaped.
            "nodeSelector." + node.label_key.replace(".", "\\."): "true",
        }
        for key, value in node.placement["tolerations"][0].items():
            values[f"tolerations[0].{key}"] = value
        installed = run(
            "helm",
            "install",
            release.name,
            str(CHART),
            "--namespace",
            namespace,
            *set_args(values),
            "--set",
            f"watch.namespaces={{{E2E_NAMESPACE_PREFIX}*}}",
            "--wait",
            "--timeout=180s",
            check=False,
            timeout=240,
        )
        if installed.returncode != 0:
            pods = run("kubectl", "get", "pods", "-n", namespace, "-o", "wide", check=False)
            pytest.fail(
                f"helm install failed:\n{installed.stdout}{installed.stderr}\n{pods.stdout}\n"
                f"{release.log_tail()}"
            )
        try:
            yield release
        finally:
            run("helm", "uninstall", release.name, "--namespace", namespace, "--wait", check=False)


def taskmanager_manifest(node: RealNode, name: str, **spec: Any) -> dict[str, Any]:
    """A TaskManager whose pods all run on the real node, from the locally built images."""
    base: dict[str, Any] = {
        "image": node.api_image,
        "imagePullPolicy": "Never",
        "replicas": 2,
        "scheduling": node.placement,
        "database": {
            "managed": {
                "image": node.postgres_image,
                "storage": "1Gi",
                "storageClassName": node.storage_class,
            }
        },
        "redis": {"managed": {"image": node.redis_image}},
        # The tests log in more than the default five times a minute.
        "rateLimits": {"requestsPerMinute": 6000, "loginPerMinute": 600},
    }
    base.update(spec)
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TaskManager",
        "metadata": {"name": name},
        "spec": base,
    }


def evidence(api_client: ApiClient, namespace: str, name: str, release: OperatorRelease) -> str:
    """What a failing e2e test shows: status, pods, events and the operator's log tail."""
    custom = client.CustomObjectsApi(api_client)
    try:
        body = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        status = json.dumps(body.get("status"), indent=1)
    except client.ApiException as error:
        status = f"(unreadable: {error.reason})"
    pods = run("kubectl", "get", "pods", "-n", namespace, "-o", "wide", check=False).stdout
    logs = ""
    for pod in client.CoreV1Api(api_client).list_namespaced_pod(namespace).items:
        statuses = pod.status.container_statuses or []
        if all(status.ready for status in statuses) and statuses:
            continue
        restarted = any(status.restart_count for status in statuses)
        tail = run(
            "kubectl", "logs", "-n", namespace, pod.metadata.name, "--all-containers",
            "--tail=15", *(["--previous"] if restarted else []), check=False,
        )  # fmt: skip
        logs += f"--- {pod.metadata.name} (not ready):\n{tail.stdout}{tail.stderr}\n"
    events = run(
        "kubectl", "get", "events", "-n", namespace, "--sort-by=.lastTimestamp", check=False
    ).stdout
    return (
        f"status of {namespace}/{name}:\n{status}\npods:\n{pods}\n{logs}events (last 25):\n"
        + "\n".join(events.splitlines()[-25:])
        + f"\noperator log:\n{release.log_tail()}"
    )


def wait_ready(
    api_client: ApiClient,
    namespace: str,
    name: str,
    release: OperatorRelease,
    *,
    timeout: float = 240,
    generation: int | None = None,
) -> dict[str, Any]:
    """The TaskManager Ready (at `generation`, when given), or a failure with the evidence."""
    custom = client.CustomObjectsApi(api_client)

    def ready() -> dict[str, Any] | None:
        body: dict[str, Any] = custom.get_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name
        )
        status = body.get("status") or {}
        if generation is not None and status.get("observedGeneration", 0) < generation:
            return None
        return body if status.get("phase") == "Ready" else None

    try:
        return wait_until(ready, timeout=timeout, interval=1, what=f"{namespace}/{name} Ready")
    except AssertionError as error:
        raise AssertionError(f"{error}\n{evidence(api_client, namespace, name, release)}") from None
