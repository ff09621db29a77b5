"""A TaskManager pointed through a Secret at a PostgreSQL it does not manage, elsewhere."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import ApiClient

from taskmanager_operator.api.v1alpha1 import GROUP, PLURAL, VERSION
from tests.e2e.clients import exercise, http, sign_up
from tests.e2e.conftest import (
    OperatorRelease,
    e2e_namespace,
    taskmanager_manifest,
    wait_ready,
)
from tests.support.node import RealNode
from tests.support.wait import wait_until

USER = "tasks"
DATABASE = "tasks"


def _postgres(node: RealNode) -> dict[str, Any]:
    """A plain PostgreSQL Deployment on the real node, as a team's own database would be."""
    labels = {"app": "postgres"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "postgres"},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    **node.placement,
                    "automountServiceAccountToken": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 999,
                        "runAsGroup": 999,
                        "fsGroup": 999,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "postgres",
                            "image": node.postgres_image,
                            "imagePullPolicy": "Never",
                            "env": [
                                {"name": "POSTGRES_USER", "value": USER},
                                {"name": "POSTGRES_DB", "value": DATABASE},
                                {"name": "POSTGRES_PASSWORD_FILE", "value": "/secrets/password"},
                                {"name": "PGDATA", "value": "/data/pgdata"},
                            ],
                            "ports": [{"containerPort": 5432, "name": "postgres"}],
                            "readinessProbe": {
                                "exec": {"command": ["pg_isready", "-U", USER, "-d", DATABASE]},
                                "periodSeconds": 2,
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            "volumeMounts": [
                                {"name": "data", "mountPath": "/data"},
                                {"name": "run", "mountPath": "/var/run/postgresql"},
                                {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - an emptyDir
                                {"name": "password", "mountPath": "/secrets", "readOnly": True},
                            ],
                        }
                    ],
                    "volumes": [
                        {"name": "data", "emptyDir": {}},
                        {"name": "run", "emptyDir": {}},
                        {"name": "tmp", "emptyDir": {}},
                        {"name": "password", "secret": {"secretName": "postgres"}},
                    ],
                },
            },
        },
    }


@pytest.fixture(scope="module")
def external_database(api_client: ApiClient, node: RealNode) -> Iterator[str]:
    """The URL of a PostgreSQL running in its own namespace."""
    core = client.CoreV1Api(api_client)
    password = secrets.token_urlsafe(18)
    with e2e_namespace(api_client, "database") as namespace:
        core.create_namespaced_secret(
            namespace,
            client.V1Secret(
                metadata=client.V1ObjectMeta(name="postgres"), string_data={"password": password}
            ),
        )
        client.AppsV1Api(api_client).create_namespaced_deployment(namespace, _postgres(node))
        core.create_namespaced_service(
            namespace,
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "postgres"},
                "spec": {"selector": {"app": "postgres"}, "ports": [{"port": 5432}]},
            },
        )
        wait_until(
            lambda: (
                client.AppsV1Api(api_client)
                .read_namespaced_deployment("postgres", namespace)
                .status.ready_replicas
            ),
            timeout=120,
            what="the external PostgreSQL to be ready",
        )
        yield (f"postgresql+asyncpg://{USER}:{password}@postgres.{namespace}.svc:5432/{DATABASE}")


def test_a_taskmanager_uses_an_external_database_in_another_namespace(
    api_client: ApiClient,
    operator_release: OperatorRelease,
    node: RealNode,
    external_database: str,
) -> None:
    core = client.CoreV1Api(api_client)
    custom = client.CustomObjectsApi(api_client)
    with e2e_namespace(api_client, "external") as namespace:
        core.create_namespaced_secret(
            namespace,
            client.V1Secret(
                metadata=client.V1ObjectMeta(name="database"),
                string_data={"url": external_database},
            ),
        )
        manifest = taskmanager_manifest(
            node,
            "external",
            replicas=1,
            database={"external": {"urlSecretRef": {"name": "database", "key": "url"}}},
        )
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, manifest)
        wait_ready(api_client, namespace, "external", operator_release, timeout=300)
        # No managed database: the operator made none.
        assert not client.AppsV1Api(api_client).list_namespaced_stateful_set(namespace).items
        service = core.read_namespaced_service("external-api", namespace)
        base_url = f"http://{service.spec.cluster_ip}:{service.spec.ports[0].port}"
        exercise(sign_up(base_url))
        with http(base_url) as api:
            ready = api.get("/ready").json()
        assert ready["checks"]["database"]["status"] == "ok", ready
