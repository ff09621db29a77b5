"""How the API is reached from outside the cluster (spec.ingress): an Ingress, or an HTTPRoute
to a Gateway (Gateway API), and the URL either gives."""

from __future__ import annotations

from typing import Any

from taskmanager_operator.api.v1alpha1 import CERT_MANAGER_ISSUER_ANNOTATIONS
from taskmanager_operator.builders.common import (
    API,
    API_SERVICE_PORT,
    Manifest,
    api_name,
    metadata,
)
from taskmanager_operator.resource import TaskManager

GATEWAY_API_VERSION = "gateway.networking.k8s.io/v1"
# spec.ingress.pathType as an HTTPRoute's path match type (ImplementationSpecific has none: the
# CRD refuses it with a gateway).
ROUTE_PATH_TYPES = {"Prefix": "PathPrefix", "Exact": "Exact"}


def tls_secret_name(tm: TaskManager) -> str | None:
    """The Secret of the Ingress's certificate; None without TLS. cert-manager writes it when an
    issuer is named, so it needs a name even when the spec gives none."""
    ingress = tm.spec.ingress
    if ingress.tls_secret_name or ingress.issuer_ref is None:
        return ingress.tls_secret_name
    return f"{api_name(tm)}-tls"


def _exposed_metadata(tm: TaskManager, annotations: dict[str, str]) -> dict[str, Any]:
    meta = metadata(tm, api_name(tm), API)
    if annotations:
        meta["annotations"] = annotations
    return meta


def build_ingress(tm: TaskManager) -> Manifest | None:
    ingress = tm.spec.ingress
    if not ingress.enabled or ingress.host is None or ingress.gateway is not None:
        return None
    annotations = dict(ingress.annotations)
    if ingress.issuer_ref is not None:
        issuer = ingress.issuer_ref
        annotations[CERT_MANAGER_ISSUER_ANNOTATIONS[issuer.kind]] = issuer.name
    path = {
        "path": ingress.path,
        "pathType": ingress.path_type,
        "backend": {"service": {"name": api_name(tm), "port": {"number": API_SERVICE_PORT}}},
    }
    spec: dict[str, Any] = {"rules": [{"host": ingress.host, "http": {"paths": [path]}}]}
    if ingress.class_name:
        spec["ingressClassName"] = ingress.class_name
    if secret := tls_secret_name(tm):
        spec["tls"] = [{"hosts": [ingress.host], "secretName": secret}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": _exposed_metadata(tm, annotations),
        "spec": spec,
    }


def build_http_route(tm: TaskManager) -> Manifest | None:
    ingress = tm.spec.ingress
    gateway = ingress.gateway
    if not ingress.enabled or ingress.host is None or gateway is None:
        return None
    # group and kind left to their defaults (gateway.networking.k8s.io, Gateway), as the port of
    # the Gateway is: the listener decides it.
    parent: dict[str, str] = {"name": gateway.name}
    if gateway.namespace:
        parent["namespace"] = gateway.namespace
    if gateway.section_name:
        parent["sectionName"] = gateway.section_name
    match = {"path": {"type": ROUTE_PATH_TYPES[ingress.path_type], "value": ingress.path}}
    return {
        "apiVersion": GATEWAY_API_VERSION,
        "kind": "HTTPRoute",
        "metadata": _exposed_metadata(tm, dict(ingress.annotations)),
        "spec": {
            "parentRefs": [parent],
            "hostnames": [ingress.host],
            "rules": [
                {
                    "matches": [match],
                    "backendRefs": [{"name": api_name(tm), "port": API_SERVICE_PORT}],
                }
            ],
        },
    }
