"""Shared state that must hold across replicas: token revocation, rate limits, the read cache.

`RedisStore` keeps it in Redis. Without a Redis URL, `MemoryStore` keeps the same semantics in this
process only, which is right for one process and wrong for several: `/ready` reports it as degraded.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

TOMBSTONE = b"T"

# Keeps only the newest version of a cached object: a replica that read an older row before a
# write committed cannot overwrite what the writer cached, and a deleted object stays deleted.
_PUT_IF_NEWER = """
local current = redis.call('GET', KEYS[1])
if current then
  if current == 'T' then return 0 end
  local version = tonumber(string.match(current, '^(%d+):'))
  if version and version >= tonumber(ARGV[1]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. ARGV[2], 'PX', ARGV[3])
return 1
"""


# Everything an authenticated request must know, in one atomic round trip: is the session revoked,
# the cached caller, the caller's rate-limit count and window, and any keys the handler will read
# next (prefetched). KEYS: revoked mark, cached user, rate counter, prefetched keys...
_ACCESS_STATE = """
local revoked = redis.call('EXISTS', KEYS[1])
local user = redis.call('GET', KEYS[2])
local count = redis.call('INCR', KEYS[3])
if count == 1 then redis.call('PEXPIRE', KEYS[3], ARGV[1]) end
local result = {revoked, user, count, redis.call('PTTL', KEYS[3])}
for i = 4, #KEYS do result[#result + 1] = redis.call('GET', KEYS[i]) end
return result
"""


class StoreUnavailableError(Exception):
    """Redis did not answer: the request cannot be checked, so it is refused (fail closed)."""


@dataclass(frozen=True, slots=True)
class Hit:
    count: int
    retry_after_ms: int

    def retry_after_seconds(self) -> int:
        return max(1, math.ceil(self.retry_after_ms / 1000))


@dataclass(frozen=True, slots=True)
class AccessState:
    family_revoked: bool
    cached_user: bytes | None
    hit: Hit
    prefetched: dict[str, tuple[int, bytes] | bytes | None]


class Store(Protocol):
    kind: str

    async def ping(self) -> None: ...
    async def aclose(self) -> None: ...
    async def access_state(
        self,
        *,
        family: str,
        user_key: str,
        rate_key: str,
        window_ms: int,
        prefetch: tuple[str, ...] = (),
    ) -> AccessState: ...
    async def hit(self, key: str, window_ms: int) -> Hit: ...
    async def revoke_family(self, family: str, ttl_ms: int) -> None: ...
    async def family_revoked(self, family: str) -> bool: ...
    async def first_use(self, token_id: str, ttl_ms: int) -> bool: ...
    async def cache_get(self, key: str) -> tuple[int, bytes] | bytes | None: ...
    async def cache_put(self, key: str, version: int, value: bytes, ttl_ms: int) -> None: ...
    async def cache_tombstone(self, key: str, ttl_ms: int) -> None: ...
    async def cache_delete(self, key: str) -> None: ...


def _decode_cached(raw: bytes | None) -> tuple[int, bytes] | bytes | None:
    """(version, value) for a cached object, TOMBSTONE for a deleted one, None when absent."""
    if raw is None or raw == TOMBSTONE:
        return raw
    version, _, value = raw.partition(b":")
    return int(version), value


class RedisStore:
    kind = "redis"

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self._client = client
        self._prefix = prefix
        self._put_if_newer = client.register_script(_PUT_IF_NEWER)
        self._access_state = client.register_script(_ACCESS_STATE)

    @classmethod
    def from_url(cls, url: str, *, prefix: str, timeout: float, max_connections: int) -> RedisStore:
        client = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            max_connections=max_connections,
            health_check_interval=30,
        )
        return cls(client, prefix)

    def _k(self, *parts: str) -> str:
        return self._prefix + ":".join(parts)

    async def _run(self, operation: Any) -> Any:
        try:
            return await operation
        except (RedisError, OSError) as error:
            raise StoreUnavailableError(type(error).__name__) from error

    async def ping(self) -> None:
        await self._run(self._client.ping())

    async def aclose(self) -> None:
        await self._client.aclose()

    async def access_state(
        self,
        *,
        family: str,
        user_key: str,
        rate_key: str,
        window_ms: int,
        prefetch: tuple[str, ...] = (),
    ) -> AccessState:
        keys = [
            self._k("revoked", family),
            self._k("cache", user_key),
            self._k("rl", rate_key),
            *(self._k("cache", key) for key in prefetch),
        ]
        reply = await self._run(self._access_state(keys=keys, args=[window_ms]))
        revoked, user, count, ttl = reply[:4]
        cached = _decode_cached(user)
        return AccessState(
            family_revoked=bool(revoked),
            cached_user=cached[1] if isinstance(cached, tuple) else None,
            hit=Hit(count=int(count), retry_after_ms=max(int(ttl), 0)),
            prefetched={
                key: _decode_cached(value) for key, value in zip(prefetch, reply[4:], strict=True)
            },
        )

    async def hit(self, key: str, window_ms: int) -> Hit:
        pipe = self._client.pipeline(transaction=False)
        pipe.incr(self._k("rl", key))
        pipe.pexpire(self._k("rl", key), window_ms, nx=True)
        pipe.pttl(self._k("rl", key))
        count, _, ttl = await self._run(pipe.execute())
        return Hit(count=int(count), retry_after_ms=max(int(ttl), 0))

    async def revoke_family(self, family: str, ttl_ms: int) -> None:
        await self._run(self._client.set(self._k("revoked", family), b"1", px=ttl_ms))

    async def family_revoked(self, family: str) -> bool:
        return bool(await self._run(self._client.exists(self._k("revoked", family))))

    async def first_use(self, token_id: str, ttl_ms: int) -> bool:
        created = await self._run(
            self._client.set(self._k("used", token_id), b"1", px=ttl_ms, nx=True)
        )
        return bool(created)

    async def cache_get(self, key: str) -> tuple[int, bytes] | bytes | None:
        return _decode_cached(await self._run(self._client.get(self._k("cache", key))))

    async def cache_put(self, key: str, version: int, value: bytes, ttl_ms: int) -> None:
        await self._run(
            self._put_if_newer(keys=[self._k("cache", key)], args=[version, value, ttl_ms])
        )

    async def cache_tombstone(self, key: str, ttl_ms: int) -> None:
        await self._run(self._client.set(self._k("cache", key), TOMBSTONE, px=ttl_ms))

    async def cache_delete(self, key: str) -> None:
        await self._run(self._client.delete(self._k("cache", key)))


class MemoryStore:
    """The single-process fallback: same semantics as RedisStore, nothing shared."""

    kind = "memory"

    def __init__(self, *, max_entries: int = 100_000) -> None:
        self._data: dict[str, tuple[float, Any]] = {}
        self._max_entries = max_entries

    def _get(self, key: str) -> Any:
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry[0] <= time.monotonic():
            del self._data[key]
            return None
        return entry[1]

    def _ttl_ms(self, key: str) -> int:
        entry = self._data.get(key)
        return max(int((entry[0] - time.monotonic()) * 1000), 0) if entry else 0

    def _set(self, key: str, value: Any, ttl_ms: int) -> None:
        if len(self._data) >= self._max_entries:
            self._evict()
        self._data[key] = (time.monotonic() + ttl_ms / 1000, value)

    def _evict(self) -> None:
        now = time.monotonic()
        for key in [key for key, (expiry, _) in self._data.items() if expiry <= now]:
            del self._data[key]
        # Still full of live entries: drop the oldest half rather than grow without bound.
        if len(self._data) >= self._max_entries:
            for key in list(self._data)[: self._max_entries // 2]:
                del self._data[key]

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        self._data.clear()

    async def access_state(
        self,
        *,
        family: str,
        user_key: str,
        rate_key: str,
        window_ms: int,
        prefetch: tuple[str, ...] = (),
    ) -> AccessState:
        cached = self._get("cache:" + user_key)
        return AccessState(
            family_revoked=await self.family_revoked(family),
            cached_user=cached[1] if isinstance(cached, tuple) else None,
            hit=await self.hit(rate_key, window_ms),
            prefetched={key: await self.cache_get(key) for key in prefetch},
        )

    async def hit(self, key: str, window_ms: int) -> Hit:
        name = "rl:" + key
        count = int(self._get(name) or 0) + 1
        if count == 1:
            self._set(name, count, window_ms)
        else:
            self._data[name] = (self._data[name][0], count)
        return Hit(count=count, retry_after_ms=self._ttl_ms(name))

    async def revoke_family(self, family: str, ttl_ms: int) -> None:
        self._set("revoked:" + family, True, ttl_ms)

    async def family_revoked(self, family: str) -> bool:
        return bool(self._get("revoked:" + family))

    async def first_use(self, token_id: str, ttl_ms: int) -> bool:
        if self._get("used:" + token_id):
            return False
        self._set("used:" + token_id, True, ttl_ms)
        return True

    async def cache_get(self, key: str) -> tuple[int, bytes] | bytes | None:
        value: tuple[int, bytes] | bytes | None = self._get("cache:" + key)
        return value

    async def cache_put(self, key: str, version: int, value: bytes, ttl_ms: int) -> None:
        current = self._get("cache:" + key)
        if current == TOMBSTONE or (isinstance(current, tuple) and current[0] >= version):
            return
        self._set("cache:" + key, (version, value), ttl_ms)

    async def cache_tombstone(self, key: str, ttl_ms: int) -> None:
        self._set("cache:" + key, TOMBSTONE, ttl_ms)

    async def cache_delete(self, key: str) -> None:
        self._data.pop("cache:" + key, None)
