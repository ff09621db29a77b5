"""Leader election on a coordination.k8s.io Lease, so several replicas run but only one acts.

kopf's peering pauses replicas of equal priority all together and does not know about the
reconciles our own work queue schedules, so the queue's workers wait on this instead. The
kubernetes client's election runs in a daemon thread (its asyncio twin fails to create the Lease
in client 37.0.2: it passes pretty=True where a string is required).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable

from kubernetes.leaderelection import electionconfig, leaderelection
from kubernetes.leaderelection.resourcelock.leaselock import LeaseLock

logger = logging.getLogger(__name__)

LEASE_NAME = "taskmanager-operator"


def start_election(
    leading: asyncio.Event,
    *,
    namespace: str,
    lease_seconds: int,
    renew_seconds: int,
    retry_seconds: float,
    on_lost: Callable[[], None] = lambda: None,
) -> threading.Thread:
    """Keep `leading` set while this replica holds the Lease; campaign again after losing it.
    `on_lost` runs each time the Lease is lost."""
    loop = asyncio.get_running_loop()
    identity = f"{socket.gethostname()}-{uuid.uuid4().hex[:6]}"

    def started() -> None:
        logger.info("leading as %s (Lease %s/%s)", identity, namespace, LEASE_NAME)
        loop.call_soon_threadsafe(leading.set)

    def stopped() -> None:
        logger.warning("lost the Lease %s/%s; reconciles pause", namespace, LEASE_NAME)
        loop.call_soon_threadsafe(leading.clear)
        on_lost()

    def campaign() -> None:
        while not loop.is_closed():
            config = electionconfig.Config(
                # The lock uses the client's default configuration, loaded at start-up.
                LeaseLock(LEASE_NAME, namespace, identity),
                lease_duration=lease_seconds,
                renew_deadline=renew_seconds,
                retry_period=retry_seconds,
                onstarted_leading=started,
                onstopped_leading=stopped,
            )
            try:
                leaderelection.LeaderElection(config).run()
            except Exception:
                logger.exception("leader election failed; campaigning again")
                stopped()
                time.sleep(retry_seconds)

    # A daemon: the process may exit while it waits; the Lease then expires on its own.
    thread = threading.Thread(target=campaign, name="leader-election", daemon=True)
    thread.start()
    return thread
