"""Signing-key rotation on real pods, with time under the test's control: the test moves the
clock by backdating the times the operator recorded in the generated Secret.

A token signed before the rotation keeps working through it; tokens signed after carry the new
kid; no request is refused while the pods roll, once to publish the new key and once to sign
with it; the old key goes once its overlap has passed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import jwt
import pytest
from kubernetes import client
from kubernetes.client import ApiClient

from taskmanager_operator.api.v1alpha1 import GROUP, PLURAL, VERSION
from taskmanager_operator.signing_keys import RING_ANNOTATION
from tests.e2e.clients import API, Load, Session, http, sign_up
from tests.e2e.conftest import (
    OperatorRelease,
    e2e_namespace,
    evidence,
    taskmanager_manifest,
    wait_ready,
)
from tests.support.node import RealNode
from tests.support.wait import wait_until

NAME = "keys"


@pytest.fixture(scope="module")
def rotating(
    api_client: ApiClient, operator_release: OperatorRelease, node: RealNode
) -> Iterator[tuple[str, str]]:
    """(namespace, base URL) of a TaskManager whose generated key rotates every 30 days."""
    custom = client.CustomObjectsApi(api_client)
    with e2e_namespace(api_client, "keys") as namespace:
        auth = {
            "accessTokenTTL": "10m",
            "refreshTokenTTL": "1h",
            "signingKeyRotation": {"interval": "30d"},
        }
        custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, taskmanager_manifest(node, NAME, auth=auth)
        )
        wait_ready(api_client, namespace, NAME, operator_release, timeout=300)
        service = client.CoreV1Api(api_client).read_namespaced_service(f"{NAME}-api", namespace)
        yield namespace, f"http://{service.spec.cluster_ip}:{service.spec.ports[0].port}"


def keys_in_status(api_client: ApiClient, namespace: str) -> list[tuple[str, str]]:
    body = client.CustomObjectsApi(api_client).get_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, NAME
    )
    return [(key["kid"], key["role"]) for key in (body.get("status") or {}).get("signingKeys", [])]


def backdate(api_client: ApiClient, namespace: str, role: str, by: timedelta) -> None:
    """Move the clock for one key: its recorded times, earlier by `by`."""
    core = client.CoreV1Api(api_client)
    secret = core.read_namespaced_secret(f"{NAME}-secrets", namespace)
    ring: list[dict[str, Any]] = json.loads(secret.metadata.annotations[RING_ANNOTATION])
    for key in ring:
        if key["role"] == role:
            for moment in ("createdAt", "since"):
                key[moment] = (datetime.fromisoformat(key[moment]) - by).isoformat()
    annotations = {RING_ANNOTATION: json.dumps(ring, separators=(",", ":"))}
    core.patch_namespaced_secret(
        f"{NAME}-secrets", namespace, {"metadata": {"annotations": annotations}}
    )


def api_rolled_out(api_client: ApiClient, namespace: str) -> bool:
    """Every API pod runs the Deployment's latest template, and no other pod is left."""
    deployment = client.AppsV1Api(api_client).read_namespaced_deployment(f"{NAME}-api", namespace)
    status, wanted = deployment.status, deployment.spec.replicas
    pods = client.CoreV1Api(api_client).list_namespaced_pod(
        namespace,
        label_selector=f"app.kubernetes.io/instance={NAME},app.kubernetes.io/component=api",
    )
    return bool(
        (status.observed_generation or 0) >= deployment.metadata.generation
        and status.updated_replicas == wanted
        and status.ready_replicas == wanted
        and status.replicas == wanted
        and len(pods.items) == wanted
    )


def kid(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


def works(session: Session) -> bool:
    with http(session.base_url) as api:
        return api.get(f"{API}/users/me", headers=session.headers).status_code == 200


def test_a_rotation_logs_nobody_out(
    api_client: ApiClient, rotating: tuple[str, str], operator_release: OperatorRelease
) -> None:
    namespace, base_url = rotating
    ((first, role),) = keys_in_status(api_client, namespace)
    assert role == "signing"
    before = sign_up(base_url)
    assert kid(before.access_token) == first

    def explain() -> str:
        return evidence(api_client, namespace, NAME, operator_release)

    with Load(before) as load:
        wait_until(lambda: load.sent >= 20, timeout=30, what="the load to start")
        backdate(api_client, namespace, "signing", timedelta(days=31))
        try:

            def promoted_ring() -> dict[str, str] | None:
                keys = dict(keys_in_status(api_client, namespace))
                return keys if keys.get(first) == "retiring" else None

            promoted = wait_until(
                promoted_ring,
                timeout=300,
                what="a new key to be published, rolled out and promoted",
            )
            wait_until(
                lambda: api_rolled_out(api_client, namespace),
                timeout=180,
                what="the API to roll out with the promoted key",
            )
        except AssertionError as error:
            raise AssertionError(f"{error}\n{explain()}") from None
        sent = load.sent
        wait_until(lambda: load.sent >= sent + 20, timeout=30, what="more load")
    assert load.failed == 0, load.report()
    assert works(before), "the session from before the rotation still works"

    (second,) = [k for k, r in promoted.items() if r == "signing"]
    assert second != first
    after = sign_up(base_url)
    assert kid(after.access_token) == second

    reasons = {
        event.reason
        for event in client.CoreV1Api(api_client).list_namespaced_event(namespace).items
    }
    assert {"SigningKeyPublished", "SigningKeyPromoted"} <= reasons, reasons

    # Once the refresh-token TTL has passed since the promotion, the old key goes.
    backdate(api_client, namespace, "retiring", timedelta(hours=2))
    wait_until(
        lambda: keys_in_status(api_client, namespace) == [(second, "signing")],
        timeout=120,
        what="the old key to retire",
    )
    wait_until(lambda: works(after), timeout=120, what="new sessions to keep working")
