"""The real node keeps every packet on this machine, and only pods that ask for it land there.

Each check reads the running cluster: the sockets its components listen on, the firewall table
and routes hack/node.sh made, what CoreDNS answers, and where pods are scheduled.
"""

from __future__ import annotations

import errno
import ipaddress
import secrets
import socket
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import ApiClient

from tests.chart.helm import run
from tests.e2e.conftest import e2e_namespace
from tests.support.node import NODE_STATE, REPO, RealNode
from tests.support.wait import wait_until

DNS_REFUSED = 5
LOOPBACK = {"127.0.0.1", "::1"}
# An address in kwok's simulated pod range: blackholed on the host, unroutable in a pod.
SIMULATED_POD_ADDRESS_OFFSET = 7


def _restricted_container(image: str, command: list[str]) -> dict[str, Any]:
    return {
        "name": "main",
        "image": image,
        "imagePullPolicy": "Never",
        "command": command,
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }


@pytest.fixture(scope="module")
def probe_pod(api_client: ApiClient, node: RealNode) -> Iterator[tuple[str, str]]:
    """A pod on the real node that runs Python (the API image), for looking from inside."""
    core = client.CoreV1Api(api_client)
    with e2e_namespace(api_client, "node") as namespace:
        body = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "probe"},
            "spec": {
                **node.placement,
                "automountServiceAccountToken": False,
                "terminationGracePeriodSeconds": 1,
                "containers": [
                    _restricted_container(
                        node.api_image, ["python", "-c", "import signal; signal.pause()"]
                    )
                ],
            },
        }
        core.create_namespaced_pod(namespace, body)
        wait_until(
            lambda: core.read_namespaced_pod("probe", namespace).status.phase == "Running",
            timeout=90,
            what="the probe pod to run on the real node",
        )
        yield namespace, "probe"


def in_pod(pod: tuple[str, str], code: str) -> str:
    namespace, name = pod
    return run("kubectl", "exec", "-n", namespace, name, "--", "python", "-c", code).stdout


def _listeners() -> list[tuple[str, str, str]]:
    """(program, address, command line) of every listening TCP/UDP socket on the host."""
    lines = subprocess.run(
        ["ss", "-H", "-l", "-n", "-t", "-u", "-p"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    found = []
    for line in lines:
        fields = line.split()
        address = fields[4].rsplit(":", 1)[0].strip("[]").split("%")[0]
        for pid in {part.split("=")[1] for part in line.split(",") if part.startswith("pid=")}:
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            command = " ".join(a.decode(errors="replace") for a in argv if a)
            found.append((Path(command.split(" ")[0]).name, address, command))
    return found


def test_every_component_listens_on_loopback_or_the_bridge(node: RealNode) -> None:
    ours = [
        (program, address, command)
        for program, address, command in _listeners()
        if str(REPO / ".local") in command
        or program in {"containerd", "kubelet", "kube-proxy", "coredns"}
        or (program == "socat" and f"bind={node.ip}" in command)
    ]
    programs = {program for program, _, _ in ours}
    # The control plane, the node and the relay: all found, none listening beyond the machine.
    assert {"kube-apiserver", "etcd", "kubelet", "kube-proxy", "coredns", "socat"} <= programs, ours
    wrong = [(p, a) for p, a, _ in ours if a not in LOOPBACK | {node.ip}]
    assert not wrong, wrong


def test_forwarding_between_the_bridge_and_any_other_interface_is_dropped(node: RealNode) -> None:
    table = subprocess.run(
        ["nft", "list", "table", "inet", node.nft_table], capture_output=True, text=True, check=True
    ).stdout
    assert "hook forward" in table, table
    assert f'iifname "{node.bridge}" oifname != "{node.bridge}"' in table, table
    assert f'oifname "{node.bridge}" iifname != "{node.bridge}"' in table, table
    assert table.count(" drop") >= 3, table


def test_pods_live_on_our_subnet_with_no_way_off_the_machine(
    api_client: ApiClient, node: RealNode, probe_pod: tuple[str, str]
) -> None:
    namespace, name = probe_pod
    pod = client.CoreV1Api(api_client).read_namespaced_pod(name, namespace)
    assert ipaddress.ip_address(pod.status.pod_ip) in ipaddress.ip_network(node.pod_cidr)
    # The pod's routes: its own subnet and the Services' range, and no default route.
    routes = in_pod(
        probe_pod,
        "import ipaddress, socket, struct\n"
        "for line in open('/proc/net/route').read().splitlines()[1:]:\n"
        "    f = line.split()\n"
        "    dst = socket.inet_ntoa(struct.pack('<L', int(f[1], 16)))\n"
        "    mask = bin(int(f[7], 16)).count('1')\n"
        "    print(f'{dst}/{mask}')\n",
    ).split()
    assert sorted(routes) == sorted([node.pod_cidr, node.service_cidr]), routes
    # A connection toward anything else fails inside the pod: no packet is even made.
    simulated = ipaddress.ip_network(node.kwok_pod_cidr)[SIMULATED_POD_ADDRESS_OFFSET]
    refused = in_pod(
        probe_pod,
        "import socket\n"
        "s = socket.socket()\n"
        "s.settimeout(5)\n"
        f"print(s.connect_ex(('{simulated}', 80)))\n",
    )
    assert int(refused) == errno.ENETUNREACH, refused


def test_simulated_pod_addresses_are_blackholed_on_the_host(
    api_client: ApiClient, node: RealNode
) -> None:
    simulated = ipaddress.ip_network(node.kwok_pod_cidr)[SIMULATED_POD_ADDRESS_OFFSET]
    blackholes = subprocess.run(
        ["ip", "-o", "route", "show", "type", "blackhole"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"blackhole {node.kwok_pod_cidr}" in blackholes, blackholes
    # The kernel has no way there: not even a route to look up.
    route = subprocess.run(["ip", "route", "get", str(simulated)], capture_output=True, check=False)
    assert route.returncode != 0, route
    core = client.CoreV1Api(api_client)
    with e2e_namespace(api_client, "simulated") as namespace:
        # A simulated pod (no toleration: it lands on a kwok node) behind a Service.
        labels = {"app": "simulated"}
        core.create_namespaced_pod(
            namespace,
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "simulated", "labels": labels},
                "spec": {"containers": [_restricted_container("simulated:1", ["true"])]},
            },
        )
        core.create_namespaced_service(
            namespace,
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "simulated"},
                "spec": {"selector": labels, "ports": [{"port": 80}]},
            },
        )
        pod = wait_until(
            lambda: (p := core.read_namespaced_pod("simulated", namespace)).status.pod_ip and p,
            timeout=60,
            what="the simulated pod to get an address",
        )
        assert pod.spec.node_name != node.name
        assert ipaddress.ip_address(pod.status.pod_ip) in ipaddress.ip_network(node.kwok_pod_cidr)
        service = core.read_namespaced_service("simulated", namespace)
        # kube-proxy rewrites the ClusterIP to the simulated address, and the host drops it.
        with socket.socket() as connection:
            connection.settimeout(5)
            outcome = connection.connect_ex((service.spec.cluster_ip, 80))
        assert outcome in {errno.EINVAL, errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ECONNREFUSED}
        assert outcome != errno.EINPROGRESS


def _skip_name(message: bytes, offset: int) -> int:
    """The offset after a (possibly compressed) domain name in a DNS message."""
    while (length := message[offset]) != 0:
        if length >= 0xC0:  # a pointer ends the name
            return offset + 2
        offset += 1 + length
    return offset + 1


def _dns_query(server: str, name: str) -> tuple[int, list[str]]:
    """(response code, A records) for `name` asked of `server` over UDP."""
    query_id = secrets.randbelow(1 << 16)
    question = b"".join(bytes([len(label)]) + label.encode() for label in name.split(".")) + b"\0"
    packet = struct.pack(">HHHHHH", query_id, 0x0100, 1, 0, 0, 0) + question + b"\0\x01\0\x01"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.settimeout(5)
        udp.sendto(packet, (server, 53))
        answer = udp.recv(4096)
    assert struct.unpack(">H", answer[:2])[0] == query_id
    code = answer[3] & 0x0F
    count = struct.unpack(">H", answer[6:8])[0]
    records, offset = [], 12 + len(question) + 4
    for _ in range(count):
        offset = _skip_name(answer, offset) + 8  # the owner name, type, class and TTL
        length = struct.unpack(">H", answer[offset : offset + 2])[0]
        records.append(socket.inet_ntoa(answer[offset + 2 : offset + 2 + length]))
        offset += 2 + length
    return code, records


def test_coredns_answers_cluster_names_and_nothing_else(node: RealNode) -> None:
    code, records = _dns_query(node.ip, "kubernetes.default.svc.cluster.local")
    assert code == 0, code
    assert records == [str(ipaddress.ip_network(node.service_cidr)[1])], records
    for outside in ("example.com", "deb.debian.org"):
        code, records = _dns_query(node.ip, outside)
        assert (code, records) == (DNS_REFUSED, []), (outside, code, records)
    corefile = (NODE_STATE / "Corefile").read_text()
    assert "forward" not in corefile, corefile


def test_pods_resolve_cluster_names_but_not_outside_ones(probe_pod: tuple[str, str]) -> None:
    answers = in_pod(
        probe_pod,
        "import socket\n"
        "for name in ('kubernetes.default', 'example.com'):\n"
        "    try: print(name, socket.gethostbyname(name))\n"
        "    except OSError as error: print(name, 'unresolved', error.errno)\n",
    ).splitlines()
    assert answers[0].split()[1] == "10.96.0.1", answers
    assert answers[1].split()[1] == "unresolved", answers


def test_the_api_server_reaches_the_kubelet_by_its_internal_ip(
    api_client: ApiClient, node: RealNode, probe_pod: tuple[str, str]
) -> None:
    body = client.CoreV1Api(api_client).read_node(node.name)
    internal = [a.address for a in body.status.addresses if a.type == "InternalIP"]
    assert internal == [node.ip], body.status.addresses
    apiserver = [command for program, _, command in _listeners() if program == "kube-apiserver"]
    assert apiserver, "no kube-apiserver listening"
    assert "--kubelet-preferred-address-types=InternalIP" in apiserver[0], apiserver[0]
    # logs and exec go through the API server to the kubelet, by that address.
    namespace, name = probe_pod
    assert run("kubectl", "exec", "-n", namespace, name, "--", "true").returncode == 0
    # The kubelet refuses anyone without a client certificate.
    anonymous = subprocess.run(
        ["curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}", f"https://{node.ip}:10250/pods"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert anonymous.stdout == "401", anonymous


def test_only_pods_that_ask_for_the_real_node_land_there(
    api_client: ApiClient, node: RealNode
) -> None:
    body = client.CoreV1Api(api_client).read_node(node.name)
    assert [(t.key, t.effect) for t in body.spec.taints or []] == [(node.taint_key, "NoSchedule")]
    assert body.metadata.labels[node.label_key] == "true"
    # The kubelet, not kwok, runs it: its real version and runtime.
    assert body.status.node_info.container_runtime_version.startswith("containerd://")
    assert not (body.metadata.annotations or {}).get("kwok.x-k8s.io/node")
    core = client.CoreV1Api(api_client)
    with e2e_namespace(api_client, "placement") as namespace:
        core.create_namespaced_pod(
            namespace,
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "anywhere"},
                "spec": {"containers": [_restricted_container("simulated:1", ["true"])]},
            },
        )
        pod = wait_until(
            lambda: (p := core.read_namespaced_pod("anywhere", namespace)).spec.node_name and p,
            timeout=60,
            what="the pod to be scheduled",
        )
        assert pod.spec.node_name != node.name
