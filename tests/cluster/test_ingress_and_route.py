"""spec.ingress on the real cluster: an Ingress with a cert-manager issuer carries the annotation
and TLS, and status.externalURL shows in `kubectl get -o wide`; with the Gateway API's CRDs
(from its Go module) an HTTPRoute to a Gateway appears within seconds of their installation and
the status names its URL, and without them there is no error loop and a condition says why."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import ApiClient

from taskmanager_operator.builders import exposure
from taskmanager_operator.builders.exposure import GATEWAY_API_VERSION
from taskmanager_operator.resource import TaskManager
from tests.cluster.test_monitoring import strict_dry_run, wait_condition
from tests.cluster.test_operator import TaskManagers, kubectl, tms
from tests.support.foreign_crds import ForeignCrds
from tests.support.gateway_api_crds import crd_manifests
from tests.support.operator import OperatorProcess
from tests.support.wait import wait_until

pytestmark = pytest.mark.usefixtures("operator")
__all__ = ["tms"]  # the fixture, shared with test_operator

HOST = "tasks.example.com"
GATEWAY_GROUP, _, GATEWAY_VERSION = GATEWAY_API_VERSION.rpartition("/")


@pytest.fixture(scope="module")
def gateway_api(api_client: ApiClient) -> Iterator[ForeignCrds]:
    crds = ForeignCrds(api_client, crd_manifests(), "the Gateway API's CRDs")
    with crds.absent_around():
        yield crds


def test_an_issuer_puts_the_cert_manager_annotation_and_tls_on_the_ingress(
    namespace: str, tms: TaskManagers
) -> None:
    issuer = {"name": "letsencrypt", "kind": "ClusterIssuer"}
    ingress_spec = {"enabled": True, "host": HOST, "path": "/api", "issuerRef": issuer}
    tms.create("exposed", {"ingress": ingress_spec | {"annotations": {"team": "a"}}})
    tms.wait_phase("exposed", "Ready")
    ingress = client.NetworkingV1Api(tms.custom.api_client).read_namespaced_ingress(
        "exposed-api", namespace
    )
    assert ingress.metadata.annotations == {
        "cert-manager.io/cluster-issuer": "letsencrypt",
        "team": "a",
    }
    (tls,) = ingress.spec.tls
    assert (tls.hosts, tls.secret_name) == ([HOST], "exposed-api-tls")
    (path,) = ingress.spec.rules[0].http.paths
    assert (path.path, path.path_type) == ("/api", "Prefix")

    url = f"https://{HOST}/api"
    assert tms.get("exposed")["status"]["externalURL"] == url
    wide = kubectl("get", "taskmanager", "exposed", "-n", namespace, "-o", "wide")
    header, row = wide.splitlines()
    assert "EXTERNAL-URL" in header.split()
    assert url in row.split()
    assert "EXTERNAL-URL" not in kubectl("get", "tm", "exposed", "-n", namespace)


def gateway(name: str) -> dict[str, Any]:
    """A Gateway with an HTTPS listener; no controller here, so nothing ever answers for it."""
    https = {
        "name": "https",
        "protocol": "HTTPS",
        "port": 443,
        "tls": {"mode": "Terminate", "certificateRefs": [{"name": "tasks-tls"}]},
    }
    return {
        "apiVersion": GATEWAY_API_VERSION,
        "kind": "Gateway",
        "metadata": {"name": name},
        "spec": {"gatewayClassName": "example", "listeners": [https]},
    }


def http_routes(custom: client.CustomObjectsApi, namespace: str) -> set[str]:
    found = custom.list_namespaced_custom_object(
        GATEWAY_GROUP, GATEWAY_VERSION, namespace, "httproutes"
    )
    return {item["metadata"]["name"] for item in found["items"]}


def test_the_route_follows_the_gateway_api_coming(
    gateway_api: ForeignCrds,
    namespace: str,
    tms: TaskManagers,
    operator: OperatorProcess,
    tmp_path: Path,
) -> None:
    routed = {"enabled": True, "host": HOST, "gateway": {"name": "public"}}
    tms.create("routed", {"ingress": routed})
    tms.wait_phase("routed", "Ready")
    condition = wait_condition(
        tms, "routed", "RouteAccepted", ("False", "GatewayAPINotInstalled"), operator
    )
    assert GATEWAY_API_VERSION in condition["message"]
    tms.wait_event("routed", "GatewayAPINotInstalled", "Warning")
    assert "externalURL" not in tms.get("routed")["status"]
    networking = client.NetworkingV1Api(tms.custom.api_client)
    assert not networking.list_namespaced_ingress(namespace).items, "no Ingress in its place"
    assert operator.reconciles(namespace, "routed", "error") == 0, operator.log_tail()

    # Installed while the operator runs: the CRDs' events bring the route, no resync wait.
    gateway_api.install()
    custom = tms.custom
    custom.create_namespaced_custom_object(
        GATEWAY_GROUP, GATEWAY_VERSION, namespace, "gateways", gateway("public")
    )
    wait_until(
        lambda: http_routes(custom, namespace) == {"routed-api"},
        timeout=30,
        what="the HTTPRoute to appear",
    )
    # Made after the route, the Gateway is seen at the operator's recheck (60 s) at the latest.
    wait_until(
        lambda: tms.get("routed")["status"].get("externalURL") == f"https://{HOST}/",
        timeout=120,
        what="status.externalURL to name the route's https URL",
    )
    wait_condition(tms, "routed", "RouteAccepted", ("Unknown", "Pending"), operator)
    assert tms.get("routed")["status"]["phase"] == "Ready"

    # Exactly what the builder makes passes the CRD's schema with strict field validation.
    manifest = exposure.build_http_route(TaskManager.from_body(tms.get("routed")))
    assert manifest is not None
    strict_dry_run(manifest, tmp_path)

    # The Gateway's controller accepts it: the route's status event reconciles its owner.
    route = custom.get_namespaced_custom_object(
        GATEWAY_GROUP, GATEWAY_VERSION, namespace, "httproutes", "routed-api"
    )
    accepted = {
        "type": "Accepted",
        "status": "True",
        "reason": "Accepted",
        "message": "",
        "observedGeneration": route["metadata"]["generation"],
        "lastTransitionTime": "2025-01-01T00:00:00Z",
    }
    parent = {
        "parentRef": {"name": "public"},
        "controllerName": "example.com/gateway-controller",
        "conditions": [accepted],
    }
    custom.patch_namespaced_custom_object_status(
        GATEWAY_GROUP,
        GATEWAY_VERSION,
        namespace,
        "httproutes",
        "routed-api",
        {"status": {"parents": [parent]}},
    )
    wait_condition(tms, "routed", "RouteAccepted", ("True", "Accepted"), operator)
    assert operator.reconciles(namespace, "routed", "error") == 0, operator.log_tail()
