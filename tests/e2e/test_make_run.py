"""A newcomer's first command: `make run` ends with the sample's API answering on the real node."""

from __future__ import annotations

import os
import subprocess
import uuid

from kubernetes import client
from kubernetes.client import ApiClient

from tests.support.node import REPO, RealNode
from tests.support.services import free_port


def test_make_run_shows_the_sample_api_answering(api_client: ApiClient, node: RealNode) -> None:
    # A namespace of its own (outside the e2e operator's e2e-*), so its operator is the only one.
    namespace = f"make-run-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(api_client)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    try:
        result = subprocess.run(
            ["make", "run"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
            env={
                **os.environ,
                "RUN_ONCE": "1",
                "RUN_NAMESPACE": namespace,
                "OPERATOR_LIVENESS_PORT": str(free_port()),
                "TASKMANAGER_OPERATOR_METRICS_PORT": str(free_port()),
            },
        )
        output = result.stdout + result.stderr
        assert result.returncode == 0, output[-4000:]
        assert "The API really runs" in output, output[-4000:]
        assert '{"status":"ready"' in output, output[-4000:]
        pods = core.list_namespaced_pod(namespace, label_selector="app.kubernetes.io/component=api")
        assert pods.items, output[-2000:]
        assert {pod.spec.node_name for pod in pods.items} == {node.name}
    finally:
        core.delete_namespace(namespace, propagation_policy="Background")
