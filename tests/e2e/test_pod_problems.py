"""A pod that cannot run on the real node is named in the TaskManager's status and events.

Its image is one the node does not have, pulled `Never` (the e2e TaskManagers' policy): the
kubelet's own refusal, with no registry asked and no packet sent anywhere.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client
from kubernetes.client import ApiClient

from taskmanager_operator.api.v1alpha1 import GROUP, PLURAL, VERSION
from tests.e2e.conftest import OperatorRelease, e2e_namespace, evidence, taskmanager_manifest
from tests.support.node import RealNode
from tests.support.wait import wait_until

NAME = "missing-image"
MISSING_IMAGE = "localhost/taskmanager-missing:1"


def test_an_image_the_node_cannot_run_is_named_in_the_conditions_and_events(
    api_client: ApiClient, node: RealNode, operator_release: OperatorRelease
) -> None:
    custom, core = client.CustomObjectsApi(api_client), client.CoreV1Api(api_client)
    with e2e_namespace(api_client, "image") as namespace:
        custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, taskmanager_manifest(node, NAME, image=MISSING_IMAGE)
        )

        def migrations_applied() -> dict[str, Any] | None:
            body = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, NAME)
            for condition in (body.get("status") or {}).get("conditions") or []:
                if condition["type"] == "MigrationsApplied":
                    return dict(condition)
            return None

        try:
            # The migration runs the new image first: its pod is the one the kubelet refuses.
            condition = wait_until(
                lambda: (
                    (c := migrations_applied())
                    and c["reason"] == "MigrationErrImageNeverPull"
                    and c
                ),
                timeout=120,
                what="MigrationsApplied to name the image the node does not have",
            )
            assert condition["status"] == "False", condition
            assert MISSING_IMAGE in condition["message"], condition
            event = wait_until(
                lambda: next(
                    (
                        e
                        for e in core.list_namespaced_event(
                            namespace, field_selector=f"involvedObject.name={NAME}"
                        ).items
                        if e.type == "Warning" and e.reason == "MigrationErrImageNeverPull"
                    ),
                    None,
                ),
                timeout=30,
                what="a Warning event naming the image",
            )
            assert MISSING_IMAGE in event.message, event.message
            body = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, NAME)
            assert body["status"]["phase"] != "Ready", body["status"]
        except AssertionError as error:
            raise AssertionError(
                f"{error}\n{evidence(api_client, namespace, NAME, operator_release)}"
            ) from None
