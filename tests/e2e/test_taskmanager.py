"""A TaskManager reconciled by the chart-installed operator, really running on the real node, and
used by an API client from the host: through its Service's ClusterIP and `kubectl port-forward`.

The tests run in file order on one TaskManager: Ready, used, its pods killed, upgraded, and its
rate limit changed.
"""

from __future__ import annotations

import ipaddress
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client
from kubernetes.client import ApiClient

from taskmanager_operator.api.v1alpha1 import GROUP, PLURAL, VERSION
from tests.chart.helm import binary, run
from tests.e2e.clients import API, Load, exercise, http, sign_up
from tests.e2e.conftest import (
    OperatorRelease,
    e2e_namespace,
    evidence,
    taskmanager_manifest,
    wait_ready,
)
from tests.support.node import NODE_SCRIPT, RealNode
from tests.support.services import free_port, stop_process
from tests.support.wait import wait_until

NAME = "shop"
SELECTOR = f"app.kubernetes.io/instance={NAME},app.kubernetes.io/component=api"


@dataclass(frozen=True)
class Installed:
    namespace: str
    base_url: str
    release: OperatorRelease

    def evidence(self, api_client: ApiClient) -> str:
        return evidence(api_client, self.namespace, NAME, self.release)


@pytest.fixture(scope="module")
def installed(
    api_client: ApiClient, operator_release: OperatorRelease, node: RealNode
) -> Iterator[Installed]:
    custom = client.CustomObjectsApi(api_client)
    with e2e_namespace(api_client, "app") as namespace:
        custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, taskmanager_manifest(node, NAME)
        )
        wait_ready(api_client, namespace, NAME, operator_release, timeout=300)
        service = client.CoreV1Api(api_client).read_namespaced_service(f"{NAME}-api", namespace)
        port = service.spec.ports[0].port
        yield Installed(namespace, f"http://{service.spec.cluster_ip}:{port}", operator_release)


def api_pods(api_client: ApiClient, namespace: str) -> list[Any]:
    pods = client.CoreV1Api(api_client).list_namespaced_pod(namespace, label_selector=SELECTOR)
    return [pod for pod in pods.items if pod.metadata.deletion_timestamp is None]


def ready_pods(api_client: ApiClient, namespace: str) -> list[Any]:
    return [
        pod
        for pod in api_pods(api_client, namespace)
        if any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
    ]


def rolled_out(api_client: ApiClient, namespace: str, image: str | None = None) -> bool:
    deployment = client.AppsV1Api(api_client).read_namespaced_deployment(f"{NAME}-api", namespace)
    status, wanted = deployment.status, deployment.spec.replicas
    pods = api_pods(api_client, namespace)
    return (
        (status.observed_generation or 0) >= deployment.metadata.generation
        and (status.updated_replicas or 0) == wanted
        and (status.ready_replicas or 0) == wanted
        and (status.replicas or 0) == wanted
        and len(pods) == wanted
        and (image is None or all(p.spec.containers[0].image == image for p in pods))
    )


def test_the_operator_runs_as_a_pod_on_the_real_node_with_the_charts_rbac(
    api_client: ApiClient, installed: Installed, node: RealNode
) -> None:
    pods = client.CoreV1Api(api_client).list_namespaced_pod(installed.release.namespace).items
    assert len(pods) == 1, [p.metadata.name for p in pods]
    (pod,) = pods
    assert pod.spec.node_name == node.name
    assert pod.spec.service_account_name != "default"
    (status,) = pod.status.container_statuses
    # A container containerd really runs, not a simulated one.
    assert status.ready, status
    assert status.container_id.startswith("containerd://"), status


def test_every_pod_really_runs_on_the_real_node(
    api_client: ApiClient, installed: Installed, node: RealNode
) -> None:
    pods = client.CoreV1Api(api_client).list_namespaced_pod(installed.namespace).items
    components = {p.metadata.labels.get("app.kubernetes.io/component") for p in pods}
    assert {"api", "database", "cache", "migration"} <= components, components
    for pod in pods:
        assert pod.spec.node_name == node.name, pod.metadata.name
        assert ipaddress.ip_address(pod.status.pod_ip) in ipaddress.ip_network(node.pod_cidr)
        for status in pod.status.container_statuses or []:
            assert status.container_id.startswith("containerd://"), status


def test_the_migration_job_really_migrated(api_client: ApiClient, installed: Installed) -> None:
    jobs = client.BatchV1Api(api_client).list_namespaced_job(
        installed.namespace, label_selector="app.kubernetes.io/component=migration"
    )
    assert [job.status.succeeded for job in jobs.items] == [1], installed.evidence(api_client)
    (job,) = jobs.items
    logs = run("kubectl", "logs", "-n", installed.namespace, f"job/{job.metadata.name}").stdout
    # Alembic's own words: it ran the upgrade against the managed PostgreSQL.
    assert "Running upgrade" in logs or "upgrade" in logs.lower(), logs


def test_an_api_client_uses_the_service_through_its_cluster_ip(installed: Installed) -> None:
    session = sign_up(installed.base_url)
    task = exercise(session)
    assert task["status"] == "in_progress"
    with http(installed.base_url) as api:
        ready = api.get("/ready")
    assert ready.status_code == 200, ready.text
    checks = ready.json()["checks"]
    assert checks["database"]["status"] == "ok", checks
    assert checks["redis"]["status"] == "ok", checks


def test_an_api_client_uses_the_service_through_kubectl_port_forward(
    installed: Installed, tmp_path: Path
) -> None:
    port = free_port()
    output = tmp_path / "port-forward.log"
    with output.open("wb") as sink:
        forward = subprocess.Popen(
            [
                str(binary("kubectl")),
                "port-forward",
                "--namespace",
                installed.namespace,
                f"service/{NAME}-api",
                f"{port}:80",
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        base_url = f"http://127.0.0.1:{port}"

        def forwarding() -> bool:
            if forward.poll() is not None:
                raise AssertionError(f"kubectl port-forward exited: {output.read_text()}")
            with http(base_url) as api:
                return api.get("/health").status_code == 200

        wait_until(forwarding, timeout=30, what="kubectl port-forward to answer")
        exercise(sign_up(base_url))
    finally:
        stop_process(forward, timeout=10)


def test_the_pods_run_restricted_with_a_read_only_root(
    api_client: ApiClient, installed: Installed
) -> None:
    namespace = client.CoreV1Api(api_client).read_namespace(installed.namespace)
    # The namespace enforces the restricted standard: every pod in it was admitted under it.
    assert namespace.metadata.labels["pod-security.kubernetes.io/enforce"] == "restricted"
    for pod in client.CoreV1Api(api_client).list_namespaced_pod(installed.namespace).items:
        for container in pod.spec.containers:
            assert container.security_context.read_only_root_filesystem, pod.metadata.name
            assert container.security_context.allow_privilege_escalation is False
    pod = ready_pods(api_client, installed.namespace)[0]
    # The app writes only to its declared paths: anything else is refused by the kernel.
    written = run(
        "kubectl",
        "exec",
        "-n",
        installed.namespace,
        pod.metadata.name,
        "--",
        "python",
        "-c",
        "import sys\n"
        "for path in ('/opt/venv/x', '/x', '/var/run/secrets/taskmanager/x'):\n"
        "    try: open(path, 'w')\n"
        "    except OSError as e: print(path, e.errno)\n"
        "    else: sys.exit(path + ' is writable')\n"
        "open('/tmp/scratch', 'w').write('ok')\n",
    ).stdout
    assert written.count(" 30") == 3, written  # EROFS


def test_a_killed_api_pod_is_replaced_while_the_other_keeps_serving(
    api_client: ApiClient, installed: Installed
) -> None:
    session = sign_up(installed.base_url)
    core = client.CoreV1Api(api_client)
    victim = ready_pods(api_client, installed.namespace)[0].metadata.name
    with Load(session) as load:
        wait_until(lambda: load.sent >= 20, timeout=30, what="the load to start")
        core.delete_namespaced_pod(victim, installed.namespace)
        wait_until(
            lambda: (
                victim not in [p.metadata.name for p in api_pods(api_client, installed.namespace)]
                and len(ready_pods(api_client, installed.namespace)) == 2
            ),
            timeout=120,
            what=f"{victim} to be replaced by a Ready pod",
        )
        sent_when_replaced = load.sent
        wait_until(lambda: load.sent >= sent_when_replaced + 20, timeout=30, what="more load")
    assert load.failed == 0, load.report()


def change_spec(api_client: ApiClient, installed: Installed, spec: dict[str, Any]) -> None:
    """Patch the module's TaskManager and wait until the operator has made it Ready again."""
    patched = client.CustomObjectsApi(api_client).patch_namespaced_custom_object(
        GROUP, VERSION, installed.namespace, PLURAL, NAME, {"spec": spec}
    )
    wait_ready(
        api_client,
        installed.namespace,
        NAME,
        installed.release,
        generation=patched["metadata"]["generation"],
    )


def test_a_rolling_upgrade_under_load_loses_no_request_and_migrates_first(
    api_client: ApiClient, installed: Installed, node: RealNode
) -> None:
    repository = node.api_image.rsplit(":", 1)[0]
    new_image = f"{repository}:e2e-upgrade"
    subprocess.run(["podman", "tag", node.api_image, new_image], check=True)
    subprocess.run([str(NODE_SCRIPT), "import", new_image], check=True)
    session = sign_up(installed.base_url)
    with Load(session) as load:
        wait_until(lambda: load.sent >= 20, timeout=30, what="the load to start")
        change_spec(api_client, installed, {"image": new_image})
        try:
            wait_until(
                lambda: rolled_out(api_client, installed.namespace, new_image),
                timeout=180,
                what=f"the API to run {new_image}",
            )
        except AssertionError as error:
            raise AssertionError(f"{error}\n{installed.evidence(api_client)}") from None
        sent_when_done = load.sent
        wait_until(lambda: load.sent >= sent_when_done + 20, timeout=30, what="more load")
    assert load.failed == 0, load.report()
    assert load.sent >= 100, load.report()

    # The new image's migration Job finished before any pod of the new image was created.
    jobs = client.BatchV1Api(api_client).list_namespaced_job(
        installed.namespace, label_selector="app.kubernetes.io/component=migration"
    )
    (job,) = [j for j in jobs.items if j.spec.template.spec.containers[0].image == new_image]
    first_new_pod = min(
        pod.metadata.creation_timestamp for pod in api_pods(api_client, installed.namespace)
    )
    assert job.status.succeeded == 1
    assert job.status.completion_time <= first_new_pod, (job.status, first_new_pod)


def test_a_changed_rate_limit_rolls_the_pods_and_is_enforced(
    api_client: ApiClient, installed: Installed
) -> None:
    limit = 5
    custom = client.CustomObjectsApi(api_client)
    original = custom.get_namespaced_custom_object(
        GROUP, VERSION, installed.namespace, PLURAL, NAME
    )["spec"]["rateLimits"]["requestsPerMinute"]

    def set_limit(requests_per_minute: int) -> None:
        """Change the limit and wait until every API pod is a new one that has it.

        A replaced pod keeps serving through its preStop drain after it is marked for deletion
        (with its old limit), so the wait is for the old pods to be gone, not only terminating.
        """
        core = client.CoreV1Api(api_client)

        def pod_names() -> set[str]:
            pods = core.list_namespaced_pod(installed.namespace, label_selector=SELECTOR)
            return {pod.metadata.name for pod in pods.items}

        before = pod_names()
        change_spec(
            api_client, installed, {"rateLimits": {"requestsPerMinute": requests_per_minute}}
        )
        wait_until(
            lambda: rolled_out(api_client, installed.namespace) and not before & pod_names(),
            timeout=180,
            what="every API pod to be replaced",
        )

    set_limit(limit)
    try:
        session = sign_up(installed.base_url)
        with http(installed.base_url) as api:
            codes = [
                api.get(f"{API}/tasks", headers=session.headers).status_code
                for _ in range(limit + 1)
            ]
            limited = api.get(f"{API}/tasks", headers=session.headers)
        assert codes[:limit] == [200] * limit, codes
        assert codes[limit] == 429, codes
        assert limited.status_code == 429, limited.text
        assert int(limited.headers["Retry-After"]) > 0
    finally:
        # The module's other tests share this TaskManager and this host's client address, which
        # the low limit would throttle for the rest of the minute.
        set_limit(original)


def test_unknown_routes_and_bad_input_get_clear_errors_through_the_service(
    installed: Installed,
) -> None:
    with httpx.Client(base_url=installed.base_url, timeout=10) as api:
        bad = api.post(f"{API}/auth/register", json={"email": "not-an-email", "password": "x"})
    assert bad.status_code == 422, bad.text
    error = bad.json()["error"]
    assert error["code"] == "validation_error", bad.text
    assert {"email", "password"} <= {item["loc"][-1] for item in error["details"]}, bad.text
