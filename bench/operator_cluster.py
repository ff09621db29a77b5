"""The local cluster `make bench-operator` needs, and the cluster chores between its phases.

Every TaskManager of `spec: {}` runs five pods (two API replicas, PostgreSQL, Redis and the
migration Job's), four Services and one PersistentVolumeClaim, and one phase at a time holds
them: the bench sizes the kwok-only cluster for its largest N and makes it with
`hack/cluster.sh` (audit log on, a Services' range of a /16) unless the running one fits.
"""

from __future__ import annotations

import ipaddress
import math
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from tests.support.wait import wait_until

ROOT = Path(__file__).resolve().parent.parent
KUBECONFIG = ROOT / ".local" / "kubeconfig"
CLUSTER_NAME = "taskmanager"
AUDIT_LOG = ROOT / ".local" / "kwok" / "clusters" / CLUSTER_NAME / "logs" / "audit.log"
PODS_PER_TM, SERVICES_PER_TM, VOLUMES_PER_TM = 5, 4, 1
# Room for what else runs (the bench's namespaces come and go; a Job's pod may linger).
HEADROOM = 1.2
KWOK_NODE_PODS = 110  # a real node's default
CLUSTER_UP_TIMEOUT_S = 600
# Where the ServiceAccounts that an operator of one phase acts as live.
IDENTITIES = "default"
NAMESPACE_GONE_TIMEOUT_S = 300


@dataclass(frozen=True)
class Size:
    nodes: int
    pods: int
    services: int
    volumes: int

    @classmethod
    def for_taskmanagers(cls, n: int) -> Size:
        pods = math.ceil(PODS_PER_TM * n * HEADROOM) + 20
        return cls(
            nodes=max(2, math.ceil(pods / KWOK_NODE_PODS)),
            pods=pods,
            services=math.ceil(SERVICES_PER_TM * n * HEADROOM) + 20,
            volumes=math.ceil(VOLUMES_PER_TM * n * HEADROOM) + 10,
        )


def api_client(user_agent: str) -> client.ApiClient:
    """A kubernetes client of its own, named `user_agent` in the audit log."""
    api = config.new_client_from_config(config_file=str(KUBECONFIG))
    api.user_agent = user_agent
    return api


def service_range() -> str:
    """SERVICE_CIDR of hack/node.env: the range the real node's cluster uses, for every size."""
    for line in (ROOT / "hack" / "node.env").read_text().splitlines():
        if line.startswith("SERVICE_CIDR="):
            return line.partition("=")[2].strip()
    raise SystemExit("hack/node.env names no SERVICE_CIDR")


def cluster_env(size: Size) -> dict[str, str]:
    return {
        "REAL_NODE": "0",
        "KWOK_NODES": str(size.nodes),
        "KWOK_NODE_PODS": str(KWOK_NODE_PODS),
        "CLUSTER_VOLUMES": str(size.volumes),
        "CLUSTER_SERVICE_CIDR": service_range(),
        "CLUSTER_AUDIT": "1",
    }


def shortfalls(api: client.ApiClient, size: Size) -> list[str]:
    """What the running cluster lacks for `size`; empty when it fits."""
    if not AUDIT_LOG.exists():
        return [f"no audit log ({AUDIT_LOG})"]
    missing = []
    nodes = client.CoreV1Api(api).list_node(label_selector="type=kwok").items
    pods = sum(int(node.status.allocatable.get("pods", 0)) for node in nodes)
    if pods < size.pods:
        missing.append(f"room for {pods} simulated pods, not {size.pods}")
    services = service_addresses(api)
    if services < size.services:
        missing.append(f"{services} Service addresses, not {size.services}")
    volumes = len(client.CoreV1Api(api).list_persistent_volume().items)
    if volumes < size.volumes:
        missing.append(f"{volumes} PersistentVolumes, not {size.volumes}")
    return missing


def service_addresses(api: client.ApiClient) -> int:
    """How many Services the cluster's range holds (its ServiceCIDR object, GA since 1.33)."""
    found = client.CustomObjectsApi(api).get_cluster_custom_object(
        "networking.k8s.io", "v1", "servicecidrs", "kubernetes"
    )
    return sum(ipaddress.ip_network(cidr).num_addresses - 2 for cidr in found["spec"]["cidrs"])


def ensure_cluster(size: Size, user_agent: str) -> bool:
    """The running cluster if it fits `size`, else a new one (the old one removed first, since
    `up` keeps a running cluster as it is). True when this made it."""
    reason = ["no cluster running"]
    if _running():
        reason = shortfalls(api_client(user_agent), size)
        if not reason:
            return False
    env = cluster_env(size)
    command = " ".join(f"{k}={v}" for k, v in env.items())
    print(f"[bench] recreating the local cluster ({'; '.join(reason)}):", flush=True)
    print(f"[bench]   hack/cluster.sh down && {command} hack/cluster.sh up", flush=True)
    _cluster("down", {})
    _cluster("up", env)
    return True


def _running() -> bool:
    result = subprocess.run(  # noqa: S603 - a fixed argv, no shell
        [str(ROOT / "hack" / "cluster.sh"), "status"], capture_output=True, check=False
    )
    return result.returncode == 0


def _cluster(action: str, env: dict[str, str]) -> None:
    try:
        subprocess.run(  # noqa: S603 - a fixed argv, no shell
            [str(ROOT / "hack" / "cluster.sh"), action],
            env={**os.environ, **env},
            check=True,
            timeout=CLUSTER_UP_TIMEOUT_S,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        raise SystemExit(f"hack/cluster.sh {action} failed: {error}") from error


def remove_cluster() -> None:
    _cluster("down", {})


def kubectl(*args: str, timeout: float = 120) -> None:
    subprocess.run(  # noqa: S603 - a fixed argv, no shell
        ["kubectl", "--kubeconfig", str(KUBECONFIG), *args],  # noqa: S607 - .local/bin's
        check=True,
        capture_output=True,
        timeout=timeout,
        env={**os.environ, "PATH": f"{ROOT / '.local' / 'bin'}:{os.environ['PATH']}"},
    )


def install_crds(crds: Path) -> None:
    """The CRDs of one revision (an older operator runs against its own schema)."""
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crds))
    kubectl("wait", "--for=condition=Established", "crd/taskmanagers.taskmanager.dev")


def create_namespace(api: client.ApiClient, name: str) -> None:
    body = {"metadata": {"name": name, "labels": {"taskmanager.dev/bench": "operator"}}}
    client.CoreV1Api(api).create_namespace(body)


def delete_namespace(
    api: client.ApiClient, name: str, timeout: float = NAMESPACE_GONE_TIMEOUT_S
) -> None:
    """Deletes it and waits until it is gone (`timeout`: the namespace controller deletes a
    thousand TaskManagers' objects in more than 5 minutes here), then makes its volumes bindable
    again."""
    core = client.CoreV1Api(api)
    try:
        core.delete_namespace(name)
    except ApiException as error:
        if error.status != 404:
            raise

    def gone() -> bool:
        try:
            core.read_namespace(name)
        except ApiException as error:
            return bool(error.status == 404)
        return False

    wait_until(gone, timeout=timeout, interval=1, what=f"namespace {name} gone")
    recycle_volumes(api, name)


def recycle_volumes(api: client.ApiClient, namespace: str) -> None:
    """The namespace's volumes become Available again (what `hack/cluster.sh up` does; the
    simulated volumes hold no data), so the next phase binds as many as the first did. The PV
    controller releases them some time after their claims are gone: waited for, or the next
    phase's claims would find too few."""
    core = client.CoreV1Api(api)

    def released() -> tuple[list[Any]] | None:
        held = [
            v
            for v in core.list_persistent_volume().items
            if v.spec.claim_ref is not None and v.spec.claim_ref.namespace == namespace
        ]
        # In a tuple: no volume at all is an answer too, and wait_until wants a truthy one.
        return (held,) if all(v.status.phase == "Released" for v in held) else None

    (held,) = wait_until(
        released, timeout=NAMESPACE_GONE_TIMEOUT_S, interval=1, what=f"{namespace}'s volumes"
    )
    patch: list[dict[str, Any]] = [{"op": "remove", "path": "/spec/claimRef"}]
    for volume in held:
        core.patch_persistent_volume(volume.metadata.name, patch)


def identity(api: client.ApiClient, name: str, workdir: Path) -> tuple[Path, str]:
    """A kubeconfig acting as a ServiceAccount of its own (cluster-admin, as the local admin
    is), and the username the audit log gives it: an operator run with it is told apart from
    any other client with the same user agent (a test's operator on the same cluster)."""
    core = client.CoreV1Api(api)
    core.create_namespaced_service_account(IDENTITIES, {"metadata": {"name": name}})
    client.RbacAuthorizationV1Api(api).create_cluster_role_binding(
        {
            "metadata": {"name": name, "labels": {"taskmanager.dev/bench": "operator"}},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "cluster-admin",
            },
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": IDENTITIES}],
        }
    )
    request = {"spec": {"expirationSeconds": 24 * 3600}}
    token = core.create_namespaced_service_account_token(name, IDENTITIES, request).status.token
    kubeconfig = yaml.safe_load(KUBECONFIG.read_text())
    kubeconfig["users"][0]["user"] = {"token": token}
    path = workdir / f"{name}.kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig))
    path.chmod(0o600)
    return path, f"system:serviceaccount:{IDENTITIES}:{name}"


def forget_identity(api: client.ApiClient, name: str) -> None:
    client.RbacAuthorizationV1Api(api).delete_cluster_role_binding(name)
    client.CoreV1Api(api).delete_namespaced_service_account(name, IDENTITIES)
