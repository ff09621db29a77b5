"""An operator that watches namespaces by pattern serves every matching namespace, including the
ones created while it starts: they appear in no watch event, only in kopf's listings."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

from kubernetes import client
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from taskmanager_operator.api.v1alpha1 import GROUP, PLURAL, VERSION
from tests.cluster.conftest import create_paused_taskmanager
from tests.support.operator import run_operator
from tests.support.wait import wait_until

REPO = Path(__file__).resolve().parents[2]


def _phase(custom: client.CustomObjectsApi, namespace: str) -> str | None:
    body = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "early")
    phase: str | None = (body.get("status") or {}).get("phase")
    return phase


def test_namespaces_created_while_the_operator_starts_are_all_served(
    api_client: ApiClient, taskmanager_crd: str, tmp_path: Path
) -> None:
    del taskmanager_crd
    core, custom = client.CoreV1Api(api_client), client.CustomObjectsApi(api_client)
    prefix = f"early-{uuid.uuid4().hex[:6]}-"
    created: list[str] = []
    stop = threading.Event()

    def keep_creating() -> None:
        # One namespace (with a TaskManager) every 100 ms, from before the operator starts until
        # after its watches are up: some land in the windows between its listings and watches.
        while not stop.is_set() and len(created) < 120:
            name = f"{prefix}{len(created):03d}"
            core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
            create_paused_taskmanager(custom, name, "early")
            created.append(name)
            time.sleep(0.1)

    creator = threading.Thread(target=keep_creating, daemon=True)
    kubeconfig = REPO / ".local" / "kubeconfig"
    try:
        creator.start()
        with run_operator(kubeconfig, "--namespace", f"{prefix}*") as operator:
            wait_until(
                lambda: len(created) >= 60, timeout=60, what="namespaces created during start-up"
            )
            stop.set()
            creator.join(timeout=30)

            def unserved() -> list[str]:
                return [ns for ns in created if _phase(custom, ns) != "Paused"]

            try:
                wait_until(lambda: not unserved(), timeout=90, what="every TaskManager served")
            except AssertionError:
                missed = unserved()
                raise AssertionError(
                    f"{len(missed)} of {len(created)} namespaces never served: {missed[:10]}\n"
                    + operator.log_tail()
                ) from None
    finally:
        stop.set()
        creator.join(timeout=30)
        for name in created:
            try:
                core.delete_namespace(name, propagation_policy="Background")
            except ApiException as error:
                if error.status != 404:
                    raise
