"""The controller's metrics: each TaskManager's Ready gauge follows its reconciles and goes away
with the TaskManager, and a replica that is not leading reports no backlog.

The reconciler is a stub handing back prepared Outcomes; the controller, its queue and its workers
are the real ones, and the metrics are read from prometheus_client's default registry, the one the
operator serves.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import cast

import pytest
from prometheus_client import REGISTRY

from taskmanager_operator.controller import Controller
from taskmanager_operator.reconcile import Outcome, Reconciler
from taskmanager_operator.settings import OperatorSettings

READY = "taskmanager_operator_taskmanager_ready"
WAIT_SECONDS = 5


class StubReconciler:
    """Hands back `outcome` (or raises `error`) and counts its calls."""

    def __init__(self) -> None:
        self.outcome = Outcome()
        self.error: Exception | None = None
        self.calls = 0

    def reconcile(self, namespace: str, name: str) -> Outcome:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return self.outcome


class Harness:
    def __init__(self, controller: Controller, reconciler: StubReconciler) -> None:
        self.controller = controller
        self.reconciler = reconciler
        # A fresh TaskManager per test: the registry is shared by the whole process.
        self.namespace = f"ns-{uuid.uuid4().hex[:8]}"
        self.name = "demo"

    def sample(self, metric: str = READY, **labels: str) -> float | None:
        value: float | None = REGISTRY.get_sample_value(
            metric, {"namespace": self.namespace, "name": self.name, **labels}
        )
        return value

    async def reconcile(self, outcome: Outcome | None = None) -> None:
        """Run one reconcile handing back `outcome`, and wait until the controller handled it."""
        if outcome is not None:
            self.reconciler.outcome = outcome
        calls = self.reconciler.calls
        self.controller.enqueue(self.namespace, self.name)
        await eventually(lambda: self.reconciler.calls > calls, "the reconcile to run")
        # The worker records the outcome right after the reconcile returns; `done` ends its turn.
        await eventually(
            lambda: (self.namespace, self.name) not in self.controller.queue._active,
            "the worker to finish the reconcile",
        )


async def eventually(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {WAIT_SECONDS} s waiting for {what}")
        await asyncio.sleep(0.01)


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    settings = OperatorSettings(
        workers=1, resync_seconds=3600, retry_initial_seconds=3600, retry_max_seconds=3600
    )
    reconciler = StubReconciler()
    controller = Controller(cast(Reconciler, reconciler), settings)
    controller.leading.set()
    controller.start()
    try:
        yield Harness(controller, reconciler)
    finally:
        await controller.stop()


async def test_the_ready_gauge_follows_each_reconciles_ready_condition(harness: Harness) -> None:
    assert harness.sample() is None, "no series before the first reconcile"
    await harness.reconcile(Outcome(ready=False))
    assert harness.sample() == 0
    await harness.reconcile(Outcome(ready=True))
    assert harness.sample() == 1
    await harness.reconcile(Outcome(ready=False, retry_reason="the database is starting"))
    assert harness.sample() == 0


async def test_a_failed_reconcile_keeps_the_last_known_value(harness: Harness) -> None:
    await harness.reconcile(Outcome(ready=True))
    harness.reconciler.error = RuntimeError("the API server went away")
    await harness.reconcile()
    assert harness.sample() == 1
    assert harness.sample("taskmanager_operator_reconciles_total", result="error") == 1


async def test_a_taskmanager_found_gone_loses_its_series(harness: Harness) -> None:
    await harness.reconcile(Outcome(ready=True))
    assert harness.sample("taskmanager_operator_reconciles_total", result="success") == 1
    await harness.reconcile(Outcome(exists=False))
    assert harness.sample() is None
    assert harness.sample("taskmanager_operator_reconciles_total", result="success") is None
    assert harness.sample("taskmanager_operator_reconcile_duration_seconds_count") is None


async def test_a_deleted_event_drops_the_series(harness: Harness) -> None:
    await harness.reconcile(Outcome(ready=False))
    assert harness.sample() == 0
    # What the kopf handler does on a DELETED event.
    harness.controller.forget(harness.namespace, harness.name)
    assert harness.sample() is None
    # Forgetting twice (the event, then a reconcile that finds it gone) is harmless.
    harness.controller.forget(harness.namespace, harness.name)
    assert harness.sample() is None


def test_a_replica_that_is_not_leading_reports_no_backlog() -> None:
    settings = OperatorSettings(workers=1)
    controller = Controller(cast(Reconciler, StubReconciler()), settings)
    depth = "taskmanager_operator_queue_depth"
    for index in range(3):
        controller.enqueue("team-a", f"tm-{index}")
    assert REGISTRY.get_sample_value(depth) == 0
    controller.leading.set()
    controller.enqueue("team-a", "tm-3")
    assert REGISTRY.get_sample_value(depth) == 4
