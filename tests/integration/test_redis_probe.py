"""The operator's probe of an external Redis's maxmemory-policy, against a real redis-server."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from taskmanager_operator.redis_probe import (
    CachedPolicyProbe,
    PolicyReading,
    eviction_condition,
    read_policy,
)
from tests.support.services import RedisServer, free_port

pytestmark = pytest.mark.redis


@pytest.fixture
def admin(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A client of the shared server; the policy it had is put back afterwards."""
    client = redis.Redis(
        host=redis_server.host, port=redis_server.port, password=redis_server.password
    )
    before = str(client.info("memory")["maxmemory_policy"])
    try:
        yield client
    finally:
        client.config_set("maxmemory-policy", before)
        client.close()


def test_the_policy_is_read_and_judged(redis_server: RedisServer, admin: redis.Redis) -> None:
    admin.config_set("maxmemory-policy", "allkeys-lru")
    reading = read_policy(redis_server.url())
    assert reading == PolicyReading(policy="allkeys-lru")
    assert eviction_condition(reading).reason == "EvictsRevocations"

    admin.config_set("maxmemory-policy", "volatile-lru")
    reading = read_policy(redis_server.url())
    assert reading == PolicyReading(policy="volatile-lru")
    assert eviction_condition(reading).status == "True"


def connections_received(admin: redis.Redis) -> int:
    return int(admin.info("stats")["total_connections_received"])


def test_a_burst_of_probes_opens_one_connection(
    redis_server: RedisServer, admin: redis.Redis
) -> None:
    admin.config_set("maxmemory-policy", "allkeys-lfu")
    probe = CachedPolicyProbe(ttl=60)
    before = connections_received(admin)
    readings = {probe(redis_server.url()) for _ in range(10)}
    assert readings == {PolicyReading(policy="allkeys-lfu")}
    assert connections_received(admin) - before == 1


def test_an_unreachable_redis_is_reported_by_error_type_only_and_quickly() -> None:
    password = "pa55-unreachable-s3cret"  # what must not leak
    started = time.monotonic()
    reading = read_policy(f"redis://:{password}@127.0.0.1:{free_port()}/0", timeout=1)
    assert time.monotonic() - started < 5, "one attempt, no retries"
    assert reading == PolicyReading(error="ConnectionError")
    condition = eviction_condition(reading)
    assert (condition.status, condition.reason) == ("Unknown", "Unreachable")
    assert password not in condition.message
    assert "127.0.0.1" not in condition.message


def test_a_wrong_password_never_appears_in_the_error(redis_server: RedisServer) -> None:
    password = "wrong-but-still-s3cret"  # what must not leak
    url = f"redis://:{password}@{redis_server.host}:{redis_server.port}/0"
    reading = read_policy(url)
    assert reading.policy is None
    assert reading.error == "AuthenticationError"
    assert password not in eviction_condition(reading).message


def test_a_malformed_url_is_an_error_not_an_exception() -> None:
    reading = read_policy("http://user:s3cret@example.invalid/")
    assert reading.policy is None
    assert reading.error is not None
    assert "s3cret" not in reading.error
