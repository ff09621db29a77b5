"""How the API is reached from outside the cluster, as observed: status.externalURL, and
RouteAccepted for the HTTPRoute of spec.ingress.gateway.

The URL is read from what was applied (the Ingress or the HTTPRoute as the API server has it)
and, for an HTTPRoute, from its Gateway, whose listener says whether it is https and on which
port. Advisory like MonitoringReady: RouteAccepted never makes a TaskManager un-Ready, and a
cluster without the Gateway API is a False condition and one Warning event, not an error loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic.exceptions import ResourceNotFoundError

from taskmanager_operator import status as st
from taskmanager_operator.builders.exposure import GATEWAY_API_VERSION
from taskmanager_operator.children import GATEWAY_API
from taskmanager_operator.k8s import KubeApi, Object
from taskmanager_operator.reconcile.apply import Applied
from taskmanager_operator.resource import TaskManager

DEFAULT_PORTS = {"http": 80, "https": 443}
# The listener protocols an HTTPRoute attaches to, as URL schemes.
ROUTE_SCHEMES = {"HTTPS": "https", "HTTP": "http"}


@dataclass
class ExposureSeen:
    conditions: list[st.Condition] = field(default_factory=list)
    external_url: str | None = None

    @property
    def awaits_gateway(self) -> bool:
        """Waiting for the Gateway to exist or be readable: a change no watch of ours sees."""
        return any(
            condition.type == st.ROUTE_ACCEPTED
            and condition.reason in {"GatewayNotFound", "GatewayUnreadable"}
            for condition in self.conditions
        )


def observe_exposure(kube: KubeApi, tm: TaskManager, applied: Applied) -> ExposureSeen:
    ingress = _of_kind(applied.objects, "Ingress")
    if ingress is not None:
        return ExposureSeen(external_url=ingress_url(ingress))
    if any(child.crd_of == GATEWAY_API for child in applied.unserved):
        return ExposureSeen([gateway_api_not_installed()])
    route = _of_kind(applied.objects, "HTTPRoute")
    ref = tm.spec.ingress.gateway
    if route is None or ref is None:
        return ExposureSeen()
    namespace = ref.namespace or tm.namespace
    where = f"Gateway {namespace}/{ref.name}"
    try:
        gateway = kube.get(GATEWAY_API_VERSION, "Gateway", namespace, ref.name)
    except (ApiException, ResourceNotFoundError) as error:
        # An ApiException's text carries the response's headers and body: status and reason say it.
        why = f"{error.status} {error.reason}" if isinstance(error, ApiException) else str(error)
        unreadable = st.Condition(
            st.ROUTE_ACCEPTED,
            "Unknown",
            "GatewayUnreadable",
            f"cannot read {where} to tell whether it serves https: {why}",
        )
        return ExposureSeen([unreadable])
    return ExposureSeen([route_condition(route, gateway, where)], route_url(route, gateway))


def gateway_api_not_installed() -> st.Condition:
    return st.false(
        st.ROUTE_ACCEPTED,
        "GatewayAPINotInstalled",
        f"the cluster does not serve {GATEWAY_API_VERSION} HTTPRoute, so spec.ingress.gateway "
        "makes no route: install the Gateway API's CRDs (and a Gateway controller), or leave "
        "out gateway for an Ingress; the HTTPRoute appears within a minute of the CRDs, "
        "without restarting the operator",
    )


def route_condition(route: Object, gateway: Object | None, where: str) -> st.Condition:
    """RouteAccepted from the Gateway and the route's status, as its Gateway's controller
    wrote it for this parent."""
    if gateway is None:
        return st.false(
            st.ROUTE_ACCEPTED,
            "GatewayNotFound",
            f"{where} does not exist: the HTTPRoute is attached to nothing",
        )
    accepted = _accepted(route, gateway)
    if accepted is None:
        class_name = (gateway.get("spec") or {}).get("gatewayClassName")
        return st.Condition(
            st.ROUTE_ACCEPTED,
            "Unknown",
            "Pending",
            f"no controller of {where} has answered for the HTTPRoute yet: is the controller "
            f"of GatewayClass {class_name} running?",
        )
    if accepted.get("status") == "True":
        return st.true(st.ROUTE_ACCEPTED, "Accepted", f"{where} accepted the HTTPRoute")
    return st.false(
        st.ROUTE_ACCEPTED,
        "NotAccepted",
        f"{where} did not accept the HTTPRoute ({accepted.get('reason')}): "
        f"{accepted.get('message', '')}",
    )


def _accepted(route: Object, gateway: Object) -> dict[str, Any] | None:
    """The Accepted condition a controller wrote for the route's current generation under the
    parentRef naming this Gateway; None while none has."""
    metadata = gateway["metadata"]
    generation = route["metadata"].get("generation")
    for parent in (route.get("status") or {}).get("parents") or []:
        ref = parent.get("parentRef") or {}
        namespace = ref.get("namespace") or route["metadata"]["namespace"]
        if (ref.get("name"), namespace) != (metadata["name"], metadata["namespace"]):
            continue
        for condition in parent.get("conditions") or []:
            current = condition.get("observedGeneration") in (None, generation)
            if condition.get("type") == "Accepted" and current:
                return dict(condition)
    return None


def route_url(route: Object, gateway: Object | None) -> str | None:
    """The URL of the route's host and path on the listeners it attaches to: https when one of
    them is HTTPS; None when none could serve it."""
    if gateway is None:
        return None
    spec = route["spec"]
    host = spec["hostnames"][0]
    path = spec["rules"][0]["matches"][0]["path"]["value"]
    section = spec["parentRefs"][0].get("sectionName")
    listeners = [
        listener
        for listener in (gateway.get("spec") or {}).get("listeners") or []
        if listener.get("protocol") in ROUTE_SCHEMES
        and section in (None, listener.get("name"))
        and _serves(listener.get("hostname"), host)
    ]
    if not listeners:
        return None
    best = min(listeners, key=_preference)
    return url(ROUTE_SCHEMES[best["protocol"]], host, path, best.get("port"))


def _preference(listener: dict[str, Any]) -> tuple[bool, bool]:
    """HTTPS first, and on the scheme's own port first."""
    scheme = ROUTE_SCHEMES[listener["protocol"]]
    return scheme != "https", listener.get("port") != DEFAULT_PORTS[scheme]


def _serves(listener_hostname: str | None, host: str) -> bool:
    """Whether a listener takes the host (Gateway API: `*.example.com` is a suffix match)."""
    if listener_hostname is None:
        return True
    if listener_hostname.startswith("*."):
        return host.endswith(listener_hostname[1:])
    return listener_hostname == host


def ingress_url(ingress: Object) -> str:
    """The URL of the Ingress's host and path: https when its TLS section covers the host."""
    spec = ingress["spec"]
    rule = spec["rules"][0]
    host = rule["host"]
    tls = any(host in (entry.get("hosts") or []) for entry in spec.get("tls") or [])
    return url("https" if tls else "http", host, rule["http"]["paths"][0]["path"])


def url(scheme: str, host: str, path: str, port: int | None = None) -> str:
    """An external URL; the port only where it is not the scheme's own."""
    authority = host if port in (None, DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    return f"{scheme}://{authority}{path}"


def _of_kind(objects: Sequence[Object], kind: str) -> Object | None:
    return next((obj for obj in objects if obj["kind"] == kind), None)
