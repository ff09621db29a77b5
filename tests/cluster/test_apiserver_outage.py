"""The API server gone for a minute: the operator rides it out and catches up.

During the outage the operator keeps running and its liveness keeps answering (a restart would
not bring the API server back, so a kubelet must not be told to restart it), and the TaskManager's
spec changes behind its back: written to the cluster's storage as another API server would. When
the API server returns, the watches the operator held cannot resume (410 Gone: their
resourceVersion predates the restarted server), and the change reaches it only through a new
listing: applied within 30 s of the return is the proof that no event was lost.

Runs after the other cluster tests (the restarts_apiserver mark): every client loses the API
server for the minute.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import ApiClient

from taskmanager_operator.api.v1alpha1 import GROUP, PLURAL
from tests.cluster.test_operator import TaskManagers
from tests.support.apiserver_outage import apiserver_down, edit_stored
from tests.support.operator import operators
from tests.support.wait import holds_for, wait_until

pytestmark = [pytest.mark.usefixtures("taskmanager_crd"), pytest.mark.restarts_apiserver]
NAME = "outage"
OUTAGE_SECONDS = 60
CAUGHT_UP_SECONDS = 30
LOG_LEVEL = "TASKMANAGER_LOG_LEVEL"


def test_the_operator_survives_a_minute_without_the_api_server_and_applies_what_changed(
    api_client: ApiClient, isolated_namespace: str
) -> None:
    namespace = isolated_namespace
    tms = TaskManagers(api_client, namespace)
    core = client.CoreV1Api(api_client)
    config = f"{NAME}-config"
    with operators(namespace, None) as (operator,):
        tms.create(NAME, {"logLevel": "INFO"})
        tms.wait_phase(NAME, "Ready")

        def set_debug(body: dict[str, Any]) -> None:
            body["spec"]["logLevel"] = "DEBUG"

        with apiserver_down():
            stopped = time.monotonic()
            changed = edit_stored(GROUP, PLURAL, namespace, NAME, set_debug)
            checks = holds_for(
                operator.live,
                seconds=OUTAGE_SECONDS - (time.monotonic() - stopped),
                what="the operator's liveness during the outage",
            )
        returned = time.monotonic()
        assert checks >= OUTAGE_SECONDS // 2

        wait_until(
            lambda: core.read_namespaced_config_map(config, namespace).data[LOG_LEVEL] == "DEBUG",
            timeout=CAUGHT_UP_SECONDS - (time.monotonic() - returned),
            what="the change made during the outage to reach the ConfigMap",
        )
        caught_up = time.monotonic() - returned
        # The rest of the control plane reconnects at its own pace: client-go's watches back off
        # up to 30 s (with as much jitter again) after a minute of refused connections, so the
        # controllers may roll the new pods out only a minute after the API server returned.
        body = tms.wait_phase(NAME, "Ready", timeout=180)
        assert body["metadata"]["generation"] == changed["metadata"]["generation"]
        assert operator.live()
        print(
            f"outage {returned - stopped:.0f} s; the change applied {caught_up:.1f} s after, "
            f"Ready {time.monotonic() - returned:.0f} s after"
        )
