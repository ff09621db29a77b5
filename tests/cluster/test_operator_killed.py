"""The operator SIGKILLed at random moments while TaskManagers converge, as a node failure or an
OOM kill would stop it: each run picks up where the last one died, and in the end every
TaskManager is Ready on its current generation, with one migration Job per image and no child
twice or without its owner. (The longer trials are `make bench-operator-kills`; this is the
floor that `make test` holds.)"""

from __future__ import annotations

import functools
import random

import pytest
from kubernetes.client import ApiClient

from tests.cluster.test_operator import TaskManagers
from tests.support.convergence import all_ready, inspect_children, kill_moment
from tests.support.operator import operators
from tests.support.wait import wait_until

pytestmark = pytest.mark.usefixtures("taskmanager_crd")
TASKMANAGERS = 20
KILLS = 3


def test_an_operator_killed_again_and_again_converges_without_orphans_or_duplicates(
    api_client: ApiClient, isolated_namespace: str
) -> None:
    namespace = isolated_namespace
    tms = TaskManagers(api_client, namespace)
    names = [f"tm-{index:02d}" for index in range(TASKMANAGERS)]
    for name in names:
        tms.create(name, {})
    # A random moment, counted in work done: killed after the k-th reconcile of this run
    # finished. The namespace's name seeds it, and is in the report: a rerun repeats the moments.
    moments = random.Random(namespace)  # noqa: S311 - test moments, not secrets
    for _ in range(KILLS):
        with operators(namespace, clock=None) as (operator,):
            kill_after = moments.randint(1, TASKMANAGERS)
            wait_until(
                functools.partial(kill_moment, operator, api_client, namespace, names, kill_after),
                timeout=120,
                what=f"the operator's {kill_after}th reconcile",
            )
            operator.process.kill()
            operator.process.wait()

    with operators(namespace, clock=None):
        wait_until(
            functools.partial(all_ready, api_client, namespace, TASKMANAGERS),
            timeout=240,
            what=f"all {TASKMANAGERS} TaskManagers to be Ready",
        )
        found = inspect_children(api_client, namespace, names)

    assert found.duplicates == []
    assert found.orphans == []
    assert found.migrations == dict.fromkeys(names, 1)
    # Every TaskManager owns the same children, kind by kind: none is missing one or has one twice.
    assert {"Deployment", "StatefulSet", "Service", "Secret", "Job"} <= set(found.kinds)
    assert found.uneven == [], found
