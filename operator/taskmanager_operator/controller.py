"""Runs reconciles off the work queue: backoff on failure, a follow-up while a TaskManager is
converging, and a periodic resync; posts the events each reconcile reports."""

from __future__ import annotations

import asyncio
import logging
import time

from taskmanager_operator import metrics
from taskmanager_operator.reconcile import Outcome, Reconciler
from taskmanager_operator.settings import OperatorSettings
from taskmanager_operator.workqueue import WorkQueue

logger = logging.getLogger(__name__)

ObjectKey = tuple[str, str]


class Controller:
    def __init__(self, reconciler: Reconciler, settings: OperatorSettings) -> None:
        self.reconciler = reconciler
        self.settings = settings
        self.queue: WorkQueue[ObjectKey] = WorkQueue()
        self._failures: dict[ObjectKey, int] = {}
        self._workers: list[asyncio.Task[None]] = []
        # Set while this replica may act (always, without leader election).
        self.leading = asyncio.Event()

    def enqueue(self, namespace: str, name: str) -> None:
        self.queue.add((namespace, name))
        self._report_queue_depth()

    def _report_queue_depth(self) -> None:
        # A replica standing by keeps every key until it leads: no backlog of its workers.
        metrics.QUEUE_DEPTH.set(len(self.queue) if self.leading.is_set() else 0)

    def forget(self, namespace: str, name: str) -> None:
        self.queue.forget((namespace, name))
        self._failures.pop((namespace, name), None)
        # A deleted TaskManager's series go with it: a Ready gauge left behind would alert forever.
        metrics.forget(namespace, name)

    def start(self) -> None:
        self._workers = [
            asyncio.create_task(self._work(), name=f"reconcile-worker-{index}")
            for index in range(self.settings.workers)
        ]

    async def stop(self) -> None:
        self.queue.shutdown()
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)

    def _backoff(self, key: ObjectKey) -> float:
        failures = self._failures.get(key, 0) + 1
        self._failures[key] = failures
        delay = self.settings.retry_initial_seconds * 2 ** (failures - 1)
        return float(min(delay, self.settings.retry_max_seconds))

    async def _work(self) -> None:
        while True:
            await self.leading.wait()
            key = await self.queue.get()
            if not self.leading.is_set():
                # Lost the lead while waiting: keep the key for whoever acts next here.
                self.queue.done(key)
                self.queue.add_after(key, self.settings.retry_seconds)
                continue
            self._report_queue_depth()
            try:
                await self._reconcile(key)
            except Exception:
                # A worker must outlive any one failure, or reconciles silently stop.
                logger.exception("unexpected failure handling %s/%s", *key)
                self.queue.add_after(key, self._backoff(key))
            finally:
                self.queue.done(key)

    async def _reconcile(self, key: ObjectKey) -> None:
        namespace, name = key
        started = time.perf_counter()
        try:
            outcome = await asyncio.to_thread(self.reconciler.reconcile, namespace, name)
        except Exception:
            delay = self._backoff(key)
            metrics.RECONCILES.labels(namespace, name, "error").inc()
            logger.exception(
                "reconcile of %s/%s failed; retrying in %.0f s", namespace, name, delay
            )
            self.queue.add_after(key, delay)
            return
        finally:
            metrics.RECONCILE_DURATION.labels(namespace, name).observe(
                time.perf_counter() - started
            )
        await self._post_events(namespace, name, outcome)
        if not outcome.exists:
            self.forget(namespace, name)
            return
        if outcome.ready is not None:
            metrics.TASKMANAGER_READY.labels(namespace, name).set(1 if outcome.ready else 0)
        if outcome.retry_reason is not None:
            delay = self._backoff(key)
            metrics.RECONCILES.labels(namespace, name, "retry").inc()
            logger.info(
                "%s/%s: %s; retrying in %.0f s", namespace, name, outcome.retry_reason, delay
            )
            self.queue.add_after(key, delay)
            return
        self._failures.pop(key, None)
        metrics.RECONCILES.labels(namespace, name, "success").inc()
        self.queue.add_after(key, outcome.requeue_after or self.settings.resync_seconds)

    async def _post_events(self, namespace: str, name: str, outcome: Outcome) -> None:
        if outcome.uid is None:
            return
        involved = {"namespace": namespace, "name": name, "uid": outcome.uid}
        for event in outcome.events:
            try:
                await asyncio.to_thread(
                    self.reconciler.kube.post_event,
                    involved,
                    event.type,
                    event.reason,
                    event.message,
                )
            except Exception:
                # An event is worth a log line, not a failed reconcile.
                logger.exception("could not post event %s on %s/%s", event.reason, namespace, name)
