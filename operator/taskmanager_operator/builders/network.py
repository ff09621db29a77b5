"""NetworkPolicies around the API pods, the migration Job's and the managed PostgreSQL's and
Redis's (the Ingress in front of the API is builders/exposure.py)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from taskmanager_operator.builders.common import (
    API,
    API_PORT,
    BACKUP,
    CACHE,
    DATABASE,
    MIGRATION,
    POSTGRES_PORT,
    REDIS_PORT,
    Manifest,
    api_name,
    cache_name,
    database_name,
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


def _egress_to_dns() -> dict[str, Any]:
    return {
        "to": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
    }


def _egress_to_database(tm: TaskManager) -> dict[str, Any]:
    selector = selector_labels(tm, DATABASE) if tm.spec.database.managed else None
    return _egress_to_port(POSTGRES_PORT, selector)


def _policy(
    tm: TaskManager,
    name: str,
    component: str,
    *,
    ingress: list[dict[str, Any]],
    egress: list[dict[str, Any]],
) -> Manifest:
    """The pods of one component of this TaskManager take these connections and make these
    (an empty list: none at all, since policyTypes names both directions)."""
    spec: dict[str, Any] = {
        "podSelector": {"matchLabels": selector_labels(tm, component)},
        "policyTypes": ["Ingress", "Egress"],
    }
    # An empty list is left out: the API server stores it as absent, and applying `[]` again
    # would then be a write on every reconcile.
    if ingress:
        spec["ingress"] = ingress
    if egress:
        spec["egress"] = egress
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(tm, name, component),
        "spec": spec,
    }


def build_network_policy(tm: TaskManager) -> Manifest | None:
    if not tm.spec.network_policy.enabled:
        return None
    cache_selector = selector_labels(tm, CACHE) if tm.spec.redis.managed else None
    return _policy(
        tm,
        api_name(tm),
        API,
        ingress=[{"ports": [{"protocol": "TCP", "port": API_PORT}]}],
        egress=[
            _egress_to_database(tm),
            _egress_to_port(REDIS_PORT, cache_selector),
            _egress_to_dns(),
        ],
    )


def migration_policy_name(tm: TaskManager) -> str:
    return f"{tm.name}-migrate"


def build_migration_network_policy(tm: TaskManager) -> Manifest | None:
    """The migration Job's pods serve nothing and talk to the database only."""
    if not tm.spec.network_policy.enabled:
        return None
    return _policy(
        tm,
        migration_policy_name(tm),
        MIGRATION,
        ingress=[],
        egress=[_egress_to_database(tm), _egress_to_dns()],
    )


def backup_policy_name(tm: TaskManager) -> str:
    return f"{tm.name}-backup"


HTTPS_PORT = 443


def _egress_to_object_store(tm: TaskManager) -> list[dict[str, Any]]:
    """S3: the endpoint's port at any address (an object store is outside the cluster, or
    behind a Service whose pods no selector of ours can name)."""
    s3 = tm.spec.backup.storage.s3
    if s3 is None:
        return []
    port = HTTPS_PORT
    if s3.endpoint:
        parsed = urlsplit(s3.endpoint)
        port = parsed.port or (HTTPS_PORT if parsed.scheme == "https" else 80)
    return [{"ports": [{"protocol": "TCP", "port": port}]}]


def build_backup_network_policy(tm: TaskManager) -> Manifest | None:
    """The backup Jobs' pods serve nothing; they talk to the database and the object store."""
    if not tm.spec.network_policy.enabled or not tm.spec.backup.enabled:
        return None
    return _policy(
        tm,
        backup_policy_name(tm),
        BACKUP,
        ingress=[],
        egress=[_egress_to_database(tm), _egress_to_dns(), *_egress_to_object_store(tm)],
    )


def _managed_service_policy(
    tm: TaskManager, name: str, component: str, port: int, clients: list[str]
) -> Manifest:
    """A managed service takes connections on its port from this TaskManager's `clients`
    components only, and makes none (it needs neither DNS nor anything outside its pod)."""
    peers = [{"podSelector": {"matchLabels": selector_labels(tm, client)}} for client in clients]
    return _policy(
        tm,
        name,
        component,
        ingress=[{"from": peers, "ports": [{"protocol": "TCP", "port": port}]}],
        egress=[],
    )


def build_database_network_policy(tm: TaskManager) -> Manifest | None:
    """The managed PostgreSQL: the API's pods, the migration Job's and the backup Jobs'
    connect to it."""
    if not tm.spec.network_policy.enabled or tm.spec.database.managed is None:
        return None
    clients = [API, MIGRATION, BACKUP]
    return _managed_service_policy(tm, database_name(tm), DATABASE, POSTGRES_PORT, clients)


def build_cache_network_policy(tm: TaskManager) -> Manifest | None:
    """The managed Redis: only the API's pods connect to it (a migration never does)."""
    if not tm.spec.network_policy.enabled or tm.spec.redis.managed is None:
        return None
    return _managed_service_policy(tm, cache_name(tm), CACHE, REDIS_PORT, [API])
