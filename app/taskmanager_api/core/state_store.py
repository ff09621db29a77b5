"""The state store: a small key-value store for what must hold across replicas (token
revocations, rate-limit counters, the read cache), behind the `Store` protocol.

`RedisStore` keeps it in Redis. Without a Redis URL, `MemoryStore` keeps the same semantics in this
process only, which is right for one process and wrong for several: `/ready` reports it as degraded.

Revocations here are the fast path only: the database holds the record (auth/revocations.py).
They live in ONE key without a TTL (a sorted set of family -> expiry), together with a marker
member written after a full load from the database. Whatever loses that key (a restart, a flush,
an `allkeys-*` eviction) loses the marker with it, and `AccessState.revocations_loaded` turns
False: the caller then asks the database and reloads the set. A Redis that still holds the marker
holds every revocation made since its load, because each revocation is written to the database
first and to Redis second.
"""

from __future__ import annotations

import itertools
import math
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import RedisError

if TYPE_CHECKING:
    from taskmanager_api.core.config import Settings

TOMBSTONE = b"T"
# Family ids are hex: the marker cannot collide with one.
LOADED_MARKER = "#loaded"
_LOAD_BATCH = 1000

# A restarted Redis (a rescheduled pod) refuses connections for a moment: each command retries
# with backoff for about RECONNECT_BUDGET seconds in all before the request fails (fail closed).
# The jitter keeps replicas from reconnecting in lockstep.
RECONNECT_RETRIES = 8
RECONNECT_BACKOFF = ExponentialWithJitterBackoff(base=0.02, cap=1.0)

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


# Everything an authenticated request must know, in one atomic round trip: is the session revoked
# (and is the revocation set loaded at all), the cached caller, the caller's rate-limit count and
# window, and any keys the handler will read next (prefetched).
# KEYS: revocation set, cached user, rate counter, prefetched keys...
# ARGV: rate window (ms), the caller's family, the loaded marker.
_ACCESS_STATE = """
local revoked = redis.call('ZSCORE', KEYS[1], ARGV[2]) and 1 or 0
local loaded = redis.call('ZSCORE', KEYS[1], ARGV[3]) and 1 or 0
local user = redis.call('GET', KEYS[2])
local count = redis.call('INCR', KEYS[3])
if count == 1 then redis.call('PEXPIRE', KEYS[3], ARGV[1]) end
local result = {revoked, loaded, user, count, redis.call('PTTL', KEYS[3])}
for i = 4, #KEYS do result[#result + 1] = redis.call('GET', KEYS[i]) end
return result
"""


class Cached(NamedTuple):
    """A cached object: the version of the row it was read from, and its serialized form."""

    version: int
    value: bytes


# What a cache read finds: a cached object, TOMBSTONE for a deleted one, None when absent.
CacheEntry = Cached | bytes | None


# Writes the loaded marker only if the load that began with ARGV[1] is still the latest one and
# Redis has not lost its key since: a restart or a flush between the load's database read and now
# would otherwise mark as whole a set that misses what was revoked in between.
# KEYS: revocation set, the latest load's key. ARGV: the load's token, the marker.
_FINISH_LOAD = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('ZADD', KEYS[1], 'inf', ARGV[2])
redis.call('DEL', KEYS[2])
return 1
"""
# A load that has not finished by then failed; the next request that finds no marker starts another.
_LOAD_TIMEOUT_MS = 600_000


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
    # False when the store lost its revocation set: `family_revoked` then says nothing.
    revocations_loaded: bool
    cached_user: bytes | None
    hit: Hit
    prefetched: dict[str, CacheEntry]


@dataclass(frozen=True, slots=True)
class LegacyRevocations:
    """What earlier versions kept in Redis alone, as (id, expiry in epoch ms)."""

    families: list[tuple[str, int]]
    spent_tokens: list[tuple[str, int]]


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
    async def revoke_family(self, family: str, expires_at_ms: int) -> None: ...
    async def begin_revocations_load(self) -> str: ...
    async def load_revocations(self, families: Iterable[tuple[str, int]], load: str) -> bool: ...
    async def eviction_policy(self) -> str | None: ...
    async def legacy_revocations(self) -> LegacyRevocations: ...
    async def cache_get(self, key: str) -> CacheEntry: ...
    async def cache_put(self, key: str, version: int, value: bytes, ttl_ms: int) -> None: ...
    async def cache_tombstone(self, key: str, ttl_ms: int) -> None: ...
    async def flush_cache(self) -> int: ...


def _decode_cached(raw: bytes | None) -> CacheEntry:
    if raw is None or raw == TOMBSTONE:
        return raw
    version, _, value = raw.partition(b":")
    return Cached(int(version), value)


# Keys unlinked per round trip when the cache is flushed.
FLUSH_BATCH = 500


class RedisStore:
    kind = "redis"

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self._client = client
        self._prefix = prefix
        self._put_if_newer = client.register_script(_PUT_IF_NEWER)
        self._access_state = client.register_script(_ACCESS_STATE)
        self._finish_load = client.register_script(_FINISH_LOAD)

    @classmethod
    def from_url(cls, url: str, *, prefix: str, timeout: float, max_connections: int) -> RedisStore:
        client = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            max_connections=max_connections,
            health_check_interval=30,
            retry=Retry(RECONNECT_BACKOFF, RECONNECT_RETRIES),
        )
        return cls(client, prefix)

    @classmethod
    def from_settings(cls, settings: Settings) -> RedisStore:
        """The app's Redis, as its settings configure it; settings.redis_url must be set."""
        if settings.redis_url is None:
            raise ValueError("no Redis configured (redis_url is unset)")
        return cls.from_url(
            settings.redis_url.get_secret_value(),
            prefix=settings.redis_key_prefix,
            timeout=settings.redis_timeout,
            max_connections=settings.redis_max_connections,
        )

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
            self._k("revoked"),
            self._k("cache", user_key),
            self._k("rl", rate_key),
            *(self._k("cache", key) for key in prefetch),
        ]
        reply = await self._run(
            self._access_state(keys=keys, args=[window_ms, family, LOADED_MARKER])
        )
        revoked, loaded, user, count, ttl = reply[:5]
        cached = _decode_cached(user)
        return AccessState(
            family_revoked=bool(revoked),
            revocations_loaded=bool(loaded),
            cached_user=cached.value if isinstance(cached, Cached) else None,
            hit=Hit(count=int(count), retry_after_ms=max(int(ttl), 0)),
            prefetched={
                key: _decode_cached(value) for key, value in zip(prefetch, reply[5:], strict=True)
            },
        )

    async def hit(self, key: str, window_ms: int) -> Hit:
        pipe = self._client.pipeline(transaction=False)
        pipe.incr(self._k("rl", key))
        pipe.pexpire(self._k("rl", key), window_ms, nx=True)
        pipe.pttl(self._k("rl", key))
        count, _, ttl = await self._run(pipe.execute())
        return Hit(count=int(count), retry_after_ms=max(int(ttl), 0))

    async def revoke_family(self, family: str, expires_at_ms: int) -> None:
        pipe = self._client.pipeline(transaction=False)
        # Families whose tokens have all expired protect nothing: dropped on the way (never the
        # marker, whose score is +inf).
        pipe.zremrangebyscore(self._k("revoked"), "-inf", int(time.time() * 1000))
        pipe.zadd(self._k("revoked"), {family: expires_at_ms})
        await self._run(pipe.execute())

    async def begin_revocations_load(self) -> str:
        load = secrets.token_hex(8)
        await self._run(self._client.set(self._k("revoked-load"), load, px=_LOAD_TIMEOUT_MS))
        return load

    async def load_revocations(self, families: Iterable[tuple[str, int]], load: str) -> bool:
        key = self._k("revoked")
        entries = iter(families)
        while batch := dict(itertools.islice(entries, _LOAD_BATCH)):
            await self._run(self._client.zadd(key, batch))
        # Last: the marker says the set is whole.
        finished = await self._run(
            self._finish_load(keys=[key, self._k("revoked-load")], args=[load, LOADED_MARKER])
        )
        return bool(finished)

    async def eviction_policy(self) -> str | None:
        memory = await self._run(self._client.info("memory"))
        policy = memory.get("maxmemory_policy")
        return policy.decode() if isinstance(policy, bytes) else policy

    async def legacy_revocations(self) -> LegacyRevocations:
        """The one-key-per-revocation marks of earlier versions. Left in place: they expire by
        themselves within one refresh TTL, and importing them twice changes nothing."""
        now_ms = int(time.time() * 1000)

        async def collect(kind: str) -> list[tuple[str, int]]:
            pattern = self._k(kind, "*")
            entries = []
            async for key in self._client.scan_iter(match=pattern, count=1000):
                if (ttl := await self._client.pttl(key)) > 0:
                    entries.append((key.decode()[len(pattern) - 1 :], now_ms + ttl))
            return entries

        return LegacyRevocations(
            families=await self._run(collect("revoked")),
            spent_tokens=await self._run(collect("used")),
        )

    async def cache_get(self, key: str) -> CacheEntry:
        return _decode_cached(await self._run(self._client.get(self._k("cache", key))))

    async def cache_put(self, key: str, version: int, value: bytes, ttl_ms: int) -> None:
        await self._run(
            self._put_if_newer(keys=[self._k("cache", key)], args=[version, value, ttl_ms])
        )

    async def cache_tombstone(self, key: str, ttl_ms: int) -> None:
        await self._run(self._client.set(self._k("cache", key), TOMBSTONE, px=ttl_ms))

    async def flush_cache(self) -> int:
        """Drop every cached object (after a restore, whose rows may carry older versions than
        the cache, which would otherwise win); revocations and rate limits stay. Returns how
        many keys went."""

        async def flush() -> int:
            flushed = 0
            batch: list[bytes] = []
            async for key in self._client.scan_iter(match=self._k("cache", "*"), count=1000):
                batch.append(key)
                if len(batch) >= FLUSH_BATCH:
                    flushed += await self._client.unlink(*batch)
                    batch.clear()
            if batch:
                flushed += await self._client.unlink(*batch)
            return flushed

        result: int = await self._run(flush())
        return result


class MemoryStore:
    """The single-process fallback: same semantics as RedisStore, nothing shared."""

    kind = "memory"

    def __init__(self, *, max_entries: int = 100_000) -> None:
        self._data: dict[str, tuple[float, Any]] = {}
        self._max_entries = max_entries
        # Apart from `_data`, whose eviction must not drop a revocation: family -> expiry (ms).
        self._revoked: dict[str, int] = {}
        self._revocations_loaded = False
        self._latest_load = ""

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
        self._revoked.clear()
        self._revocations_loaded = False

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
            family_revoked=family in self._revoked,
            revocations_loaded=self._revocations_loaded,
            cached_user=cached.value if isinstance(cached, Cached) else None,
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

    async def revoke_family(self, family: str, expires_at_ms: int) -> None:
        now_ms = int(time.time() * 1000)
        for expired in [name for name, expiry in self._revoked.items() if expiry <= now_ms]:
            del self._revoked[expired]
        self._revoked[family] = expires_at_ms

    async def begin_revocations_load(self) -> str:
        self._latest_load = secrets.token_hex(8)
        return self._latest_load

    async def load_revocations(self, families: Iterable[tuple[str, int]], load: str) -> bool:
        self._revoked.update(families)
        if load != self._latest_load:
            return False
        self._revocations_loaded = True
        return True

    async def eviction_policy(self) -> str | None:
        return None

    async def legacy_revocations(self) -> LegacyRevocations:
        return LegacyRevocations(families=[], spent_tokens=[])

    async def cache_get(self, key: str) -> CacheEntry:
        value: CacheEntry = self._get("cache:" + key)
        return value

    async def cache_put(self, key: str, version: int, value: bytes, ttl_ms: int) -> None:
        current = self._get("cache:" + key)
        if current == TOMBSTONE or (isinstance(current, Cached) and current.version >= version):
            return
        self._set("cache:" + key, Cached(version, value), ttl_ms)

    async def cache_tombstone(self, key: str, ttl_ms: int) -> None:
        self._set("cache:" + key, TOMBSTONE, ttl_ms)

    async def flush_cache(self) -> int:
        cached = [key for key in self._data if key.startswith("cache:")]
        for key in cached:
            del self._data[key]
        return len(cached)
