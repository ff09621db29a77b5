"""Whether an external Redis may evict the API's revocation set: its maxmemory-policy, read live.

The policy is read with INFO, not CONFIG GET: managed cloud Redis services often disable CONFIG,
never INFO. The URL carries the password, so it never reaches a log or a message (a failure is
named by its exception type only), and the cache is keyed by its digest.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from taskmanager_api.core.redis_policy import RECOMMENDED_POLICY, policy_warning
from taskmanager_operator import status as st

# A reconcile waits for the probe: an unreachable Redis must not hold it for long.
TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class PolicyReading:
    """The maxmemory-policy of a Redis, or why it could not be read (an exception type)."""

    policy: str | None = None
    error: str | None = None


# What the reconcile calls with the decoded Redis URL; tests pass a fake.
PolicyProbe = Callable[[str], PolicyReading]


def read_policy(url: str, timeout: float = TIMEOUT_SECONDS) -> PolicyReading:
    """One connection, one INFO memory; never raises."""
    try:
        # No retries: one attempt within `timeout` is what a reconcile can afford.
        client = redis.Redis.from_url(
            url,
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )
        try:
            memory = client.info("memory")
        finally:
            client.close()
    except Exception as error:  # noqa: BLE001
        # Any failure (a bad URL, DNS, auth, an ACL that forbids INFO) means the same: unknown.
        return PolicyReading(error=type(error).__name__)
    policy = memory.get("maxmemory_policy")
    if not isinstance(policy, str):
        return PolicyReading(error="NoMaxmemoryPolicyInInfo")
    return PolicyReading(policy=policy)


class CachedPolicyProbe:
    """A probe that reads each URL at most once per `ttl` seconds, so that a burst of reconciles
    (every child's event queues one) opens one connection, not one each."""

    def __init__(
        self,
        ttl: float,
        read: PolicyProbe = read_policy,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl
        self._read = read
        self._clock = clock
        # Reconciles of different TaskManagers run in threads at once.
        self._lock = threading.Lock()
        self._readings: dict[str, tuple[float, PolicyReading]] = {}

    def __call__(self, url: str) -> PolicyReading:
        key = hashlib.sha256(url.encode()).hexdigest()
        with self._lock:
            now = self._clock()
            # Dropping what expired bounds the cache by the URLs seen within one ttl.
            self._readings = {k: v for k, v in self._readings.items() if v[0] > now}
            if (cached := self._readings.get(key)) is not None:
                return cached[1]
        # Read outside the lock: a slow Redis must not hold up the other TaskManagers' probes.
        reading = self._read(url)
        with self._lock:
            self._readings[key] = (self._clock() + self._ttl, reading)
        return reading


def eviction_condition(reading: PolicyReading | None) -> st.Condition:
    """CacheEvictionSafe from a reading of the external Redis, or None for the managed one."""
    if reading is None:
        return st.Condition(
            st.CACHE_EVICTION_SAFE,
            "True",
            "Managed",
            f"the managed Redis runs with maxmemory-policy {RECOMMENDED_POLICY}",
        )
    if reading.policy is None:
        return st.Condition(
            st.CACHE_EVICTION_SAFE,
            "Unknown",
            "Unreachable",
            f"could not read the external Redis's maxmemory-policy ({reading.error})",
        )
    if (warning := policy_warning(reading.policy)) is not None:
        return st.Condition(st.CACHE_EVICTION_SAFE, "False", "EvictsRevocations", warning)
    return st.Condition(
        st.CACHE_EVICTION_SAFE,
        "True",
        "KeepsKeysWithoutTTL",
        f"the external Redis runs with maxmemory-policy {reading.policy}, "
        "which never evicts a key without a TTL",
    )
