"""NetworkPolicy around the API pods, and the Ingress in front of them."""

from __future__ import annotations

from typing import Any

from taskmanager_operator.builders.common import (
    API,
    API_PORT,
    API_SERVICE_PORT,
    CACHE,
    DATABASE,
    POSTGRES_PORT,
    REDIS_PORT,
    Manifest,
    api_name,
    metadata,
    selector_labels,
)
from taskmanager_operator.resource import TaskManager


def _egress_to_port(port: int, pod_selector: dict[str, str] | None) -> dict[str, Any]:
    rule: dict[str, Any] = {"ports": [{"protocol": "TCP", "port": port}]}
    if pod_selector is not None:
        # A managed service lives beside the API; an external one may be anywhere.
        rule["to"] = [{"podSelector": {"matchLabels": pod_selector}}]
    return rule


def build_network_policy(tm: TaskManager) -> Manifest | None:
    if not tm.spec.network_policy.enabled:
        return None
    spec = tm.spec
    database_selector = selector_labels(tm, DATABASE) if spec.database.managed else None
    cache_selector = selector_labels(tm, CACHE) if spec.redis.managed else None
    dns_ports = [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(tm, api_name(tm), API),
        "spec": {
            "podSelector": {"matchLabels": selector_labels(tm, API)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"ports": [{"protocol": "TCP", "port": API_PORT}]}],
            "egress": [
                _egress_to_port(POSTGRES_PORT, database_selector),
                _egress_to_port(REDIS_PORT, cache_selector),
                {
                    "to": [
                        {
                            "namespaceSelector": {},
                            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                        }
                    ],
                    "ports": dns_ports,
                },
            ],
        },
    }


def build_ingress(tm: TaskManager) -> Manifest | None:
    ingress = tm.spec.ingress
    if not ingress.enabled or ingress.host is None:
        return None
    spec: dict[str, Any] = {
        "rules": [
            {
                "host": ingress.host,
                "http": {
                    "paths": [
                        {
                            "path": "/",
                            "pathType": "Prefix",
                            "backend": {
                                "service": {
                                    "name": api_name(tm),
                                    "port": {"number": API_SERVICE_PORT},
                                }
                            },
                        }
                    ]
                },
            }
        ]
    }
    if ingress.class_name:
        spec["ingressClassName"] = ingress.class_name
    if ingress.tls_secret_name:
        spec["tls"] = [{"hosts": [ingress.host], "secretName": ingress.tls_secret_name}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": metadata(tm, api_name(tm), API),
        "spec": spec,
    }
