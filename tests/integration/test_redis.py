"""The Redis the API tests use is a real server: expiry, atomic counters shared by clients, auth."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from redis.exceptions import AuthenticationError

from tests.support.services import RedisServer

pytestmark = pytest.mark.redis


async def test_counters_are_shared_and_keys_expire(redis_server: RedisServer) -> None:
    first = aioredis.from_url(redis_server.url())
    second = aioredis.from_url(redis_server.url())
    try:
        await first.delete("probe:counter")
        for _ in range(5):
            await first.incr("probe:counter")
            await second.incr("probe:counter")
        assert int(await first.get("probe:counter") or 0) == 10

        await first.set("probe:ttl", "x", px=50)
        assert 0 < await second.pttl("probe:ttl") <= 50
        await first.set("probe:kept", "y", ex=60)
        assert await second.ttl("probe:kept") > 50
    finally:
        await first.delete("probe:counter", "probe:ttl", "probe:kept")
        await first.aclose()
        await second.aclose()


async def test_a_client_with_a_wrong_password_is_refused(redis_server: RedisServer) -> None:
    client = aioredis.Redis(host=redis_server.host, port=redis_server.port, password="wrong")
    try:
        with pytest.raises(AuthenticationError):
            await client.ping()
    finally:
        await client.aclose()
