"""`hack/node.sh down` removes everything the node made, and `up` brings it back, twice over.

It runs last in the session (the restarts_node mark): the node's pods go with it.
"""

from __future__ import annotations

import subprocess

import pytest
from kubernetes import client
from kubernetes.client import ApiClient

from tests.support.footprint import differences, snapshot, traces
from tests.support.node import NODE_SCRIPT, RealNode
from tests.support.wait import wait_until


def node_script(verb: str) -> None:
    result = subprocess.run(
        [str(NODE_SCRIPT), verb], capture_output=True, text=True, check=False, timeout=600
    )
    assert result.returncode == 0, f"hack/node.sh {verb}:\n{result.stdout}{result.stderr}"


@pytest.mark.restarts_node
def test_down_leaves_nothing_and_up_comes_back(api_client: ApiClient, node: RealNode) -> None:
    core = client.CoreV1Api(api_client)

    def ready() -> bool:
        conditions = core.read_node(node.name).status.conditions or []
        return any(c.type == "Ready" and c.status == "True" for c in conditions)

    try:
        node_script("down")
        after_first_down = snapshot()
        assert not traces(after_first_down)
        node_script("up")
        wait_until(ready, timeout=60, what=f"{node.name} to be Ready again")
        node_script("down")
        assert not differences(after_first_down, snapshot())
    finally:
        node_script("up")
    wait_until(ready, timeout=60, what=f"{node.name} to be Ready after the test")
