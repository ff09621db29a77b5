"""spec.ingress: how the API is reached from outside the cluster. An Ingress (annotations, a
cert-manager issuer and its TLS, path and pathType), or an HTTPRoute to a Gateway where the
cluster serves the Gateway API; status.externalURL either way, and RouteAccepted for the route.

Builders and the URL and condition functions are pure; the reconcile runs on the in-memory API
server; the CRD's part is checked against the generated schema with the CEL reader of
test_scheduling. tests/cluster/test_ingress_and_route.py does the same on the real cluster."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from taskmanager_operator.api.crd import printer_columns
from taskmanager_operator.api.v1alpha1 import TaskManagerSpec
from taskmanager_operator.builders import api, exposure
from taskmanager_operator.builders.common import Manifest
from taskmanager_operator.builders.exposure import GATEWAY_API_VERSION
from taskmanager_operator.k8s import Object
from taskmanager_operator.reconcile.exposure import ingress_url, route_condition, route_url
from tests.support.fake_kube import FakeKube, events_of
from tests.unit.test_builders import taskmanager
from tests.unit.test_reconcile import NS, Cluster, cluster, ready_demo
from tests.unit.test_scheduling import rejected

__all__ = ["cluster"]

HOST = "tasks.example.com"
INGRESS = {"enabled": True, "host": HOST}
GATEWAY = {"name": "public", "namespace": "gateways"}
ROUTED = INGRESS | {"gateway": GATEWAY}
LETSENCRYPT = {"name": "letsencrypt", "kind": "ClusterIssuer"}


def ingress_of(spec: dict[str, Any]) -> Manifest:
    built = exposure.build_ingress(taskmanager({"ingress": spec}))
    assert built is not None
    return built


def route_of(spec: dict[str, Any]) -> Manifest:
    built = exposure.build_http_route(taskmanager({"ingress": spec}))
    assert built is not None
    return built


def only_path(ingress: Manifest) -> dict[str, Any]:
    (rule,) = ingress["spec"]["rules"]
    (path,) = rule["http"]["paths"]
    assert isinstance(path, dict)
    return path


# -- the Ingress ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param({}, id="default"),
        pytest.param({"enabled": False, "host": HOST}, id="disabled-with-host"),
        pytest.param({"enabled": True}, id="enabled-without-host"),
        pytest.param(ROUTED, id="a-gateway-instead"),
    ],
)
def test_no_ingress_unless_enabled_with_a_host_and_no_gateway(spec: dict[str, Any]) -> None:
    assert exposure.build_ingress(taskmanager({"ingress": spec})) is None


def test_ingress_routes_the_host_to_the_api_service() -> None:
    tm = taskmanager({"ingress": INGRESS})
    ingress = exposure.build_ingress(tm)
    assert ingress is not None
    assert "tls" not in ingress["spec"]
    assert "ingressClassName" not in ingress["spec"], "unset means the cluster's default class"
    assert "annotations" not in ingress["metadata"]
    assert ingress["spec"]["rules"][0]["host"] == HOST
    path = only_path(ingress)
    assert (path["path"], path["pathType"]) == ("/", "Prefix")
    service = api.build_service(tm)
    assert path["backend"]["service"] == {
        "name": service["metadata"]["name"],
        "port": {"number": service["spec"]["ports"][0]["port"]},
    }


def test_ingress_class_and_tls() -> None:
    ingress = ingress_of(INGRESS | {"className": "nginx", "tlsSecretName": "tasks-tls"})
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["tls"] == [{"hosts": [HOST], "secretName": "tasks-tls"}]


def test_annotations_pass_through_to_the_ingress() -> None:
    annotations = {
        "nginx.ingress.kubernetes.io/proxy-body-size": "8m",
        "external-dns.alpha.kubernetes.io/ttl": "60",
    }
    ingress = ingress_of(INGRESS | {"annotations": annotations})
    assert ingress["metadata"]["annotations"] == annotations


@pytest.mark.parametrize(
    ("kind", "annotation"),
    [
        pytest.param("Issuer", "cert-manager.io/issuer", id="issuer"),
        pytest.param("ClusterIssuer", "cert-manager.io/cluster-issuer", id="cluster-issuer"),
    ],
)
def test_an_issuer_sets_its_annotation_and_tls_with_a_default_secret(
    kind: str, annotation: str
) -> None:
    ingress = ingress_of(
        INGRESS | {"issuerRef": {"name": "letsencrypt", "kind": kind}, "annotations": {"a": "b"}}
    )
    assert ingress["metadata"]["annotations"] == {annotation: "letsencrypt", "a": "b"}
    assert ingress["spec"]["tls"] == [{"hosts": [HOST], "secretName": "demo-api-tls"}]


def test_an_issuer_is_namespaced_unless_told_otherwise() -> None:
    ingress = ingress_of(INGRESS | {"issuerRef": {"name": "local-ca"}})
    assert ingress["metadata"]["annotations"] == {"cert-manager.io/issuer": "local-ca"}


def test_an_issuer_writes_to_the_tls_secret_given() -> None:
    ingress = ingress_of(INGRESS | {"issuerRef": LETSENCRYPT, "tlsSecretName": "tasks-tls"})
    assert ingress["spec"]["tls"] == [{"hosts": [HOST], "secretName": "tasks-tls"}]


@pytest.mark.parametrize("path_type", ["Prefix", "Exact", "ImplementationSpecific"])
def test_path_and_path_type_reach_the_ingress(path_type: str) -> None:
    path = only_path(ingress_of(INGRESS | {"path": "/api", "pathType": path_type}))
    assert (path["path"], path["pathType"]) == ("/api", path_type)


# -- the HTTPRoute -------------------------------------------------------------------------------


def test_the_route_attaches_to_the_gateway_and_sends_the_host_to_the_api_service() -> None:
    tm = taskmanager({"ingress": ROUTED})
    route = exposure.build_http_route(tm)
    assert route is not None
    assert (route["apiVersion"], route["kind"]) == ("gateway.networking.k8s.io/v1", "HTTPRoute")
    assert route["metadata"]["name"] == "demo-api"
    assert "annotations" not in route["metadata"]
    service = api.build_service(tm)
    assert route["spec"] == {
        "parentRefs": [{"name": "public", "namespace": "gateways"}],
        "hostnames": [HOST],
        "rules": [
            {
                "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                "backendRefs": [
                    {
                        "name": service["metadata"]["name"],
                        "port": service["spec"]["ports"][0]["port"],
                    }
                ],
            }
        ],
    }


def test_the_route_names_a_listener_and_defaults_to_its_own_namespace() -> None:
    route = route_of(INGRESS | {"gateway": {"name": "public", "sectionName": "https"}})
    assert route["spec"]["parentRefs"] == [{"name": "public", "sectionName": "https"}]


@pytest.mark.parametrize(("path_type", "match"), [("Prefix", "PathPrefix"), ("Exact", "Exact")])
def test_path_and_path_type_reach_the_route(path_type: str, match: str) -> None:
    route = route_of(ROUTED | {"path": "/api", "pathType": path_type})
    assert route["spec"]["rules"][0]["matches"] == [{"path": {"type": match, "value": "/api"}}]


def test_annotations_pass_through_to_the_route() -> None:
    route = route_of(ROUTED | {"annotations": {"external-dns.alpha.kubernetes.io/ttl": "60"}})
    assert route["metadata"]["annotations"] == {"external-dns.alpha.kubernetes.io/ttl": "60"}


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param(INGRESS, id="an-ingress-instead"),
        pytest.param(ROUTED | {"enabled": False}, id="disabled"),
        pytest.param({"gateway": GATEWAY}, id="default"),
    ],
)
def test_no_route_unless_enabled_with_a_gateway(spec: dict[str, Any]) -> None:
    assert exposure.build_http_route(taskmanager({"ingress": spec})) is None


# -- status.externalURL and RouteAccepted, from the objects as read ------------------------------


def listener(name: str, protocol: str, port: int, hostname: str | None = None) -> Object:
    found: Object = {"name": name, "protocol": protocol, "port": port}
    if hostname is not None:
        found["hostname"] = hostname
    return found


def gateway(*listeners: Object, name: str = "public", namespace: str = "gateways") -> Object:
    return {
        "apiVersion": GATEWAY_API_VERSION,
        "kind": "Gateway",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"gatewayClassName": "envoy", "listeners": list(listeners)},
    }


def routed(**spec: Any) -> Object:
    """The HTTPRoute as read back: the manifest, in its namespace, at generation 1."""
    route = route_of(ROUTED | spec)
    route["metadata"]["generation"] = 1
    return route


HTTP = listener("http", "HTTP", 80)
HTTPS = listener("https", "HTTPS", 443)


@pytest.mark.parametrize(
    ("spec", "url"),
    [
        pytest.param(INGRESS, f"http://{HOST}/", id="plain"),
        pytest.param(INGRESS | {"tlsSecretName": "tls"}, f"https://{HOST}/", id="tls"),
        pytest.param(INGRESS | {"issuerRef": LETSENCRYPT}, f"https://{HOST}/", id="issuer"),
        pytest.param(
            INGRESS | {"path": "/api", "pathType": "Exact"}, f"http://{HOST}/api", id="path"
        ),
    ],
)
def test_the_ingress_url_is_https_with_tls_and_ends_in_the_path(
    spec: dict[str, Any], url: str
) -> None:
    assert ingress_url(ingress_of(spec)) == url


@pytest.mark.parametrize(
    ("listeners", "spec", "url"),
    [
        pytest.param([HTTP, HTTPS], {}, f"https://{HOST}/", id="https-wins"),
        pytest.param([HTTP], {"path": "/api"}, f"http://{HOST}/api", id="http-only"),
        pytest.param(
            [HTTP, HTTPS],
            {"gateway": GATEWAY | {"sectionName": "http"}},
            f"http://{HOST}/",
            id="the-named-listener",
        ),
        pytest.param(
            [listener("alt", "HTTPS", 8443)], {}, f"https://{HOST}:8443/", id="another-port"
        ),
        pytest.param(
            [listener("a", "HTTPS", 443, "other.example.com"), HTTP],
            {},
            f"http://{HOST}/",
            id="a-listener-for-another-host",
        ),
        pytest.param(
            [listener("a", "HTTPS", 443, "*.example.com")], {}, f"https://{HOST}/", id="wildcard"
        ),
        pytest.param([listener("tcp", "TCP", 5432)], {}, None, id="no-http-listener"),
    ],
)
def test_the_route_url_follows_the_gateway_listener(
    listeners: list[Object], spec: dict[str, Any], url: str | None
) -> None:
    assert route_url(routed(**spec), gateway(*listeners)) == url


def test_no_route_url_without_a_gateway() -> None:
    assert route_url(routed(), None) is None


def accepted_by(route: Object, status: str, generation: int = 1, **parent_ref: str) -> Object:
    ref = {"name": "public", "namespace": "gateways"} | parent_ref
    condition = {
        "type": "Accepted",
        "status": status,
        "reason": "Accepted" if status == "True" else "NotAllowedByListeners",
        "message": "" if status == "True" else "no listener allows routes from team-a",
        "observedGeneration": generation,
    }
    return route | {"status": {"parents": [{"parentRef": ref, "conditions": [condition]}]}}


WHERE = "Gateway gateways/public"


@pytest.mark.parametrize(
    ("route", "found", "state"),
    [
        pytest.param(routed(), None, ("False", "GatewayNotFound"), id="no-gateway"),
        pytest.param(routed(), gateway(HTTPS), ("Unknown", "Pending"), id="no-answer-yet"),
        pytest.param(
            accepted_by(routed(), "True"), gateway(HTTPS), ("True", "Accepted"), id="accepted"
        ),
        pytest.param(
            accepted_by(routed(), "False"),
            gateway(HTTPS),
            ("False", "NotAccepted"),
            id="refused",
        ),
        pytest.param(
            accepted_by(routed(), "True", generation=0),
            gateway(HTTPS),
            ("Unknown", "Pending"),
            id="an-answer-for-an-older-route",
        ),
        pytest.param(
            accepted_by(routed(), "True", name="other"),
            gateway(HTTPS),
            ("Unknown", "Pending"),
            id="an-answer-for-another-gateway",
        ),
    ],
)
def test_route_accepted_says_what_the_gateway_said(
    route: Object, found: Object | None, state: tuple[str, str]
) -> None:
    condition = route_condition(route, found, WHERE)
    assert (condition.type, condition.status, condition.reason) == ("RouteAccepted", *state)
    assert WHERE in condition.message


def test_a_refusal_names_the_gateways_reason() -> None:
    condition = route_condition(accepted_by(routed(), "False"), gateway(HTTPS), WHERE)
    assert "NotAllowedByListeners" in condition.message
    assert "no listener allows routes from team-a" in condition.message


def test_waiting_names_the_gateway_class() -> None:
    assert "GatewayClass envoy" in route_condition(routed(), gateway(HTTPS), WHERE).message


# -- the reconcile, on the in-memory API server ---------------------------------------------------


def serve_gateway_api(cluster: Cluster) -> None:
    cluster.kube.serve(GATEWAY_API_VERSION, "gateways", "httproutes", "gatewayclasses")


def exposed(cluster: Cluster) -> set[str]:
    return {name for name in cluster.children() if name.split()[0] in {"Ingress", "HTTPRoute"}}


def test_an_ingress_gives_the_external_url_and_takes_it_along_when_removed(
    cluster: Cluster,
) -> None:
    ready_demo(cluster, ingress=INGRESS | {"issuerRef": LETSENCRYPT, "path": "/api"})
    assert exposed(cluster) == {"Ingress demo-api"}
    status = cluster.status("demo")
    assert status["externalURL"] == f"https://{HOST}/api"
    assert status["endpoint"] == "http://demo-api.test.svc:80", "the in-cluster one stays"
    assert "RouteAccepted" not in cluster.conditions("demo")

    cluster.patch_spec("demo", {"ingress": {"enabled": False}})
    cluster.reconcile("demo")
    assert exposed(cluster) == set()
    assert "externalURL" not in cluster.status("demo")


def test_without_the_gateway_api_no_route_and_the_condition_says_why_once(
    cluster: Cluster,
) -> None:
    ready_demo(cluster, ingress=ROUTED)  # reaches Ready: the route never holds it back
    assert exposed(cluster) == set(), "no Ingress in its place either"
    assert cluster.conditions("demo")["RouteAccepted"] == ("False", "GatewayAPINotInstalled")
    assert GATEWAY_API_VERSION in cluster.condition("demo", "RouteAccepted")["message"]
    assert "externalURL" not in cluster.status("demo")
    cluster.reconcile("demo")
    assert cluster.kube.writes == [], "a skipped kind is no error loop and no write"
    assert events_of(cluster.kube, "demo") == [], "the Warning event was posted once"


def test_a_gateway_api_half_installed_is_not_installed_yet(cluster: Cluster) -> None:
    """Its CRDs are established one by one: while GatewayClass is served and HTTPRoute is not,
    the group answers discovery, and applying the route would fail the reconcile."""
    cluster.kube.serve(GATEWAY_API_VERSION, "gatewayclasses")
    ready_demo(cluster, ingress=ROUTED)
    assert exposed(cluster) == set()
    assert cluster.conditions("demo")["RouteAccepted"] == ("False", "GatewayAPINotInstalled")

    serve_gateway_api(cluster)
    cluster.reconcile("demo")
    assert exposed(cluster) == {"HTTPRoute demo-api"}


def test_the_warning_event_names_the_missing_api(cluster: Cluster) -> None:
    cluster.kube.create_taskmanager(NS, "demo", {"ingress": ROUTED})
    cluster.reconcile("demo")
    warnings = [
        event
        for event in cluster.kube.events
        if (event["type"], event["reason"]) == ("Warning", "GatewayAPINotInstalled")
    ]
    assert len(warnings) == 1
    assert GATEWAY_API_VERSION in warnings[0]["message"]


def test_with_the_gateway_api_the_route_appears_and_the_status_names_its_url(
    cluster: Cluster,
) -> None:
    ready_demo(cluster, ingress=ROUTED)
    serve_gateway_api(cluster)
    cluster.kube.create(gateway(HTTP, HTTPS))
    cluster.reconcile("demo")
    assert exposed(cluster) == {"HTTPRoute demo-api"}
    assert cluster.status("demo")["externalURL"] == f"https://{HOST}/"
    assert cluster.conditions("demo")["RouteAccepted"] == ("Unknown", "Pending")
    assert cluster.phase("demo") == "Ready"

    # The Gateway's controller accepts the route: its status event reconciles the owner.
    route = cluster.child(GATEWAY_API_VERSION, "HTTPRoute", "demo-api")
    status = accepted_by(route, "True", generation=route["metadata"]["generation"])["status"]
    cluster.kube.set_status(GATEWAY_API_VERSION, "HTTPRoute", NS, "demo-api", status)
    cluster.reconcile("demo")
    assert cluster.conditions("demo")["RouteAccepted"] == ("True", "Accepted")
    cluster.kube.writes.clear()
    cluster.reconcile("demo")
    assert cluster.kube.writes == []


def test_a_missing_gateway_is_named_and_gives_no_url(cluster: Cluster) -> None:
    serve_gateway_api(cluster)
    ready_demo(cluster, ingress=ROUTED)
    assert exposed(cluster) == {"HTTPRoute demo-api"}
    assert cluster.conditions("demo")["RouteAccepted"] == ("False", "GatewayNotFound")
    assert "externalURL" not in cluster.status("demo")
    # No watch of ours sees a Gateway (it may be in any namespace): looked at again soon.
    recheck = cluster.reconciler.settings.selection_recheck_seconds
    assert cluster.reconcile("demo").requeue_after == recheck
    cluster.kube.create(gateway(HTTPS))
    assert cluster.reconcile("demo").requeue_after is None, "the route's own events follow"
    assert cluster.status("demo")["externalURL"] == f"https://{HOST}/"


def test_an_unreadable_gateway_is_unknown_not_a_failed_reconcile(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve_gateway_api(cluster)
    get = FakeKube.get

    def forbidden(kube: FakeKube, api_version: str, kind: str, *where: str) -> Object | None:
        if kind == "Gateway":
            raise ApiException(status=403, reason="Forbidden")
        return get(kube, api_version, kind, *where)

    monkeypatch.setattr(FakeKube, "get", forbidden)
    ready_demo(cluster, ingress=ROUTED)
    assert cluster.conditions("demo")["RouteAccepted"] == ("Unknown", "GatewayUnreadable")
    assert "403 Forbidden" in cluster.condition("demo", "RouteAccepted")["message"]


def test_moving_from_an_ingress_to_a_gateway_replaces_one_with_the_other(
    cluster: Cluster,
) -> None:
    serve_gateway_api(cluster)
    cluster.kube.create(gateway(HTTP))
    ready_demo(cluster, ingress=INGRESS | {"tlsSecretName": "tls"})
    assert exposed(cluster) == {"Ingress demo-api"}
    assert cluster.status("demo")["externalURL"] == f"https://{HOST}/"

    cluster.patch_spec("demo", {"ingress": {"tlsSecretName": None, "gateway": GATEWAY}})
    cluster.reconcile("demo")
    assert exposed(cluster) == {"HTTPRoute demo-api"}
    assert cluster.status("demo")["externalURL"] == f"http://{HOST}/"
    assert ("Normal", "Deleted") in events_of(cluster.kube, "demo")


def test_paused_keeps_the_external_url(cluster: Cluster) -> None:
    ready_demo(cluster, ingress=INGRESS)
    cluster.patch_spec("demo", {"paused": True})
    cluster.reconcile("demo")
    assert cluster.status("demo")["externalURL"] == f"http://{HOST}/"


# -- the CRD --------------------------------------------------------------------------------------


ISSUER_BY_HAND = "ingress.annotations must not name a cert-manager issuer"
GATEWAY_NOT_INGRESS = "spec.ingress.gateway: ingress.gateway routes through a Gateway"
INGRESS_ONLY = {"className": "nginx", "tlsSecretName": "tls", "issuerRef": LETSENCRYPT}
BAD_SEGMENT = "spec.ingress.path: ingress.path must not have an empty, `.` or `..` segment"
INVALID = [
    pytest.param(
        {"issuerRef": LETSENCRYPT},
        "spec.ingress.issuerRef: ingress.issuerRef needs ingress.host",
        id="issuer-without-host",
    ),
    pytest.param(
        INGRESS
        | {"issuerRef": LETSENCRYPT, "annotations": {"cert-manager.io/cluster-issuer": "other"}},
        f"spec.ingress.annotations: {ISSUER_BY_HAND}",
        id="the-issuers-kind-by-hand",
    ),
    pytest.param(
        INGRESS
        | {"issuerRef": LETSENCRYPT, "annotations": {"cert-manager.io/issuer": "letsencrypt"}},
        f"spec.ingress.annotations: {ISSUER_BY_HAND}",
        id="another-kind-by-hand",
    ),
    pytest.param(
        INGRESS | {"issuerRef": {"name": "x", "kind": "Vault"}},
        "spec.ingress.issuerRef.kind: Unsupported value",
        id="issuer-kind",
    ),
    pytest.param(
        INGRESS | {"issuerRef": {"kind": "Issuer"}},
        "spec.ingress.issuerRef.name: Required value",
        id="issuer-without-name",
    ),
    pytest.param(INGRESS | {"path": "api"}, "spec.ingress.path: Invalid value", id="relative"),
    pytest.param(INGRESS | {"path": "/a b"}, "spec.ingress.path: Invalid value", id="space"),
    pytest.param(INGRESS | {"path": "/a?b=1"}, "spec.ingress.path: Invalid value", id="query"),
    pytest.param(INGRESS | {"path": "/api//v1"}, BAD_SEGMENT, id="empty-segment"),
    pytest.param(INGRESS | {"path": "/api/./v1"}, BAD_SEGMENT, id="dot-segment"),
    pytest.param(INGRESS | {"path": "/api/.."}, BAD_SEGMENT, id="dot-dot-at-the-end"),
    pytest.param(
        INGRESS | {"pathType": "Regex"}, "spec.ingress.pathType: Unsupported value", id="path-type"
    ),
    *(
        pytest.param(ROUTED | {field: value}, GATEWAY_NOT_INGRESS, id=f"gateway-and-{field}")
        for field, value in INGRESS_ONLY.items()
    ),
    pytest.param(
        ROUTED | {"pathType": "ImplementationSpecific"},
        "spec.ingress.pathType: ingress.pathType ImplementationSpecific is for an Ingress",
        id="gateway-implementation-specific",
    ),
    pytest.param(
        INGRESS | {"gateway": {"name": "public", "namespace": "Gateways"}},
        "spec.ingress.gateway.namespace: Invalid value",
        id="gateway-namespace",
    ),
    pytest.param(
        INGRESS | {"gateway": {"namespace": "gateways"}},
        "spec.ingress.gateway.name: Required value",
        id="gateway-without-name",
    ),
]

VALID = [
    pytest.param(INGRESS | {"issuerRef": LETSENCRYPT, "annotations": {"a": "b"}}, id="issuer"),
    pytest.param(
        INGRESS | {"annotations": {"cert-manager.io/cluster-issuer": "letsencrypt"}},
        id="issuer-by-hand-alone",
    ),
    pytest.param(INGRESS | {"path": "/api/v1.2/~x", "pathType": "Exact"}, id="path"),
    pytest.param(INGRESS | {"path": "/*", "pathType": "ImplementationSpecific"}, id="glob"),
    pytest.param(INGRESS | {"path": "/api/"}, id="trailing-slash"),
    pytest.param(ROUTED | {"path": "/api", "annotations": {"a": "b"}}, id="gateway"),
    pytest.param(INGRESS | {"gateway": {"name": "public", "sectionName": "https"}}, id="listener"),
]


@pytest.mark.parametrize(("spec", "message"), INVALID)
def test_the_crd_rejects_a_bad_ingress_naming_the_field(spec: dict[str, Any], message: str) -> None:
    errors = rejected({"ingress": spec})
    assert any(message in error for error in errors), errors


@pytest.mark.parametrize("spec", VALID)
def test_the_crd_and_the_operator_accept_a_good_ingress(spec: dict[str, Any]) -> None:
    assert rejected({"ingress": spec}) == []
    TaskManagerSpec.model_validate({"ingress": spec})


def test_the_external_url_is_a_wide_column_beside_the_endpoint() -> None:
    columns = {column["name"]: column for column in printer_columns()}
    assert columns["External-URL"]["jsonPath"] == ".status.externalURL"
    assert columns["External-URL"]["priority"] == 1, "`kubectl get -o wide` shows it"
    assert columns["Endpoint"]["priority"] == 0
