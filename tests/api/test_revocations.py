"""Revocations hold whatever happens to Redis: a restart, memory pressure, an evicting policy.

Two real API processes share one PostgreSQL and one Redis. The Redis runs with the persistence
and eviction lines of the configuration the operator renders for a managed Redis, and restarts
the way its pod would: a new process on the same port, empty.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import jwt
import pytest
import redis

from taskmanager_api.core.config import Settings
from taskmanager_api.core.redis_policy import RECOMMENDED_POLICY
from taskmanager_api.core.state_store import LOADED_MARKER, RedisStore
from taskmanager_operator.api.v1alpha1 import ManagedRedis
from taskmanager_operator.builders.secrets import redis_settings
from tests.api.conftest import API_REDIS_DB, AppFactory, running_app
from tests.api.helpers import API
from tests.api.processes import (
    ApiProcess,
    api_environment,
    bearer,
    log_in,
    me,
    refresh,
    run_api,
    write_secrets,
)
from tests.support.services import RedisProcess, RedisServer, redis_process
from tests.support.wait import wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

PREFIX = "revocations:"
# What the operator decides for its Redis; the port, password and bind address are this test's.
RENDERED_KEYS = ("save", "appendonly", "maxmemory-policy")


def rendered_redis_policy_lines() -> str:
    config = redis_settings(ManagedRedis())
    lines = [line for line in config.splitlines() if line.split(" ", 1)[0] in RENDERED_KEYS]
    assert {line.split(" ", 1)[0] for line in lines} == set(RENDERED_KEYS), config
    return "\n".join(lines) + "\n"


@dataclass
class Replicas:
    redis: RedisProcess
    a: ApiProcess
    b: ApiProcess

    @property
    def both(self) -> tuple[ApiProcess, ApiProcess]:
        return self.a, self.b


@pytest.fixture(scope="module")
def replicas(api_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicas]:
    workdir = tmp_path_factory.mktemp("revocations")
    with redis_process(rendered_redis_policy_lines()) as redis:
        secrets_dir = write_secrets(
            workdir / "secrets",
            jwt_signing_key=secrets.token_urlsafe(48),
            database_url=api_database_url,
            redis_url=redis.server.url(),
        )
        env = api_environment(
            secrets_dir=secrets_dir,
            environment="production",
            redis_key_prefix=PREFIX,
            rate_limit_per_minute=100_000,
            login_rate_limit_per_minute=100_000,
            login_ip_rate_limit_per_minute=100_000,
        )
        with run_api(env, workdir, name="a") as a, run_api(env, workdir, name="b") as b:
            yield Replicas(redis, a, b)


def assert_session_refused(replicas: Replicas, tokens: dict[str, str]) -> None:
    """Both replicas refuse the access token, and the refresh token, of an ended session."""
    for api in replicas.both:
        assert me(api, tokens["access_token"]) == 401, api.output()[-2000:]
    # Refreshing last: a refused refresh changes nothing, so the order does not matter.
    for api in replicas.both:
        response = refresh(api, tokens["refresh_token"])
        assert response.status_code == 401, response.text


def revocation_reloads(api: ApiProcess) -> float:
    text = httpx.get(f"{api.url}/metrics").text
    line = next(
        line for line in text.splitlines() if line.startswith("taskmanager_revocation_reloads")
    )
    return float(line.rsplit(" ", 1)[1])


def test_a_logged_out_session_stays_refused_after_redis_restarts_empty(
    replicas: Replicas,
) -> None:
    tokens = log_in(replicas.a)
    assert me(replicas.b, tokens["access_token"]) == 200
    assert httpx.post(
        f"{replicas.b.url}{API}/auth/logout", headers=bearer(tokens["access_token"])
    ).is_success
    assert me(replicas.a, tokens["access_token"]) == 401
    reloads_before = revocation_reloads(replicas.a)

    replicas.redis.restart()
    with replicas.redis.client() as client:
        assert client.dbsize() == 0, "the restarted Redis should start empty"

    assert_session_refused(replicas, tokens)
    # The set came back from the database: the next answers come from Redis again.
    wait_until(
        lambda: revocation_reloads(replicas.a) > reloads_before,
        timeout=10,
        what="replica a to reload the revocations",
    )
    with replicas.redis.client() as client:
        assert client.zscore(f"{PREFIX}revoked", "#loaded") is not None
    assert_session_refused(replicas, tokens)
    # And the API is usable straight away: a new session works on both replicas.
    fresh = log_in(replicas.b)
    assert [me(api, fresh["access_token"]) for api in replicas.both] == [200, 200]


def test_a_reused_refresh_token_still_ends_its_session_after_redis_restarts(
    replicas: Replicas,
) -> None:
    first = log_in(replicas.a)
    rotated = refresh(replicas.a, first["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()

    replicas.redis.restart()

    # The spent token presented again (a thief's copy) is refused, on the other replica too...
    reused = refresh(replicas.b, first["refresh_token"])
    assert reused.status_code == 401, reused.text
    # ...and it ended the session: the pair the legitimate client holds is refused as well.
    assert_session_refused(replicas, second)


@pytest.mark.parametrize("policy", [RECOMMENDED_POLICY, "allkeys-lru"])
def test_revocations_hold_when_redis_fills_with_cache_entries(
    replicas: Replicas, policy: str
) -> None:
    tokens = log_in(replicas.a)
    assert httpx.post(
        f"{replicas.a.url}{API}/auth/logout", headers=bearer(tokens["access_token"])
    ).is_success
    with replicas.redis.client() as client:
        client.config_set("maxmemory-policy", policy)
        client.config_set("maxmemory", "4mb")
        try:
            evicted = fill_with_cache_entries(client, revocations=f"{PREFIX}revoked")
            if policy == RECOMMENDED_POLICY:
                # Only keys with a TTL were evicted: the revocation set is whole.
                assert client.zscore(f"{PREFIX}revoked", "#loaded") is not None
            assert evicted > 0
            assert_session_refused(replicas, tokens)
            warnings = httpx.get(f"{replicas.a.url}/health/detailed").json()["warnings"]
            assert bool(warnings) is (policy != RECOMMENDED_POLICY), warnings
        finally:
            # The next tests get the configuration back: what a restarted pod would have.
            replicas.redis.restart()


def fill_with_cache_entries(client: redis.Redis, *, revocations: str) -> int:
    """Write read-cache entries (with a TTL, as the API does) well past maxmemory; returns how
    many keys Redis evicted. Bounded: at most 48 MB written."""
    value = secrets.token_bytes(1024)
    for batch in range(96):
        pipe = client.pipeline(transaction=False)
        for index in range(500):
            pipe.set(f"{PREFIX}cache:filler:{batch}:{index}", value, px=600_000)
        pipe.execute()
        if batch >= 12 and not client.exists(revocations):
            break
    stats = client.info("stats")
    return int(stats["evicted_keys"])


def test_a_redis_restart_under_load_costs_at_most_the_requests_in_flight(
    replicas: Replicas,
) -> None:
    """Eight clients, each in a session of its own, call the API for a bounded time while Redis
    restarts: every request asks Redis (revocation, cache, rate limit), and every fourth one
    rotates the session's tokens. The client library reconnects, so at most the requests in
    flight at the restart may fail."""
    concurrency, duration = 8, 4.0
    sessions = [log_in(replicas.a) for _ in range(concurrency)]
    # (when the request started, its status), and when Redis was back.
    outcomes: list[tuple[float, int]] = []
    restarted_at: list[float] = []

    async def client_loop(tokens: dict[str, str], deadline: float) -> None:
        async with httpx.AsyncClient(base_url=replicas.a.url, timeout=10) as http:
            for call in itertools.count():
                if time.monotonic() >= deadline:
                    return
                started = time.monotonic()
                if call % 4 == 3:
                    body = {"refresh_token": tokens["refresh_token"]}
                    response = await http.post(f"{API}/auth/refresh", json=body)
                    if response.status_code == 200:
                        tokens = response.json()
                else:
                    response = await http.get(
                        f"{API}/users/me", headers=bearer(tokens["access_token"])
                    )
                outcomes.append((started, response.status_code))

    async def load() -> None:
        deadline = time.monotonic() + duration
        clients = [asyncio.create_task(client_loop(tokens, deadline)) for tokens in sessions]
        await asyncio.sleep(duration / 3)
        await asyncio.to_thread(replicas.redis.restart)
        restarted_at.append(time.monotonic())
        await asyncio.gather(*clients)

    asyncio.run(load())
    failures = [status for _, status in outcomes if status != 200]
    after = [status for started, status in outcomes if started > restarted_at[0]]
    assert len(outcomes) - len(after) >= concurrency, "no load before the restart"
    assert after, "no load after the restart"
    assert all(status == 200 for status in after), f"after the restart: {after}"
    assert len(failures) <= concurrency, (
        f"{len(failures)} of {len(outcomes)} requests failed: {sorted(set(failures))}\n"
        + replicas.a.output()[-3000:]
    )
    print(f"{len(outcomes)} requests, {len(failures)} failed, {len(after)} after the restart")


def test_detailed_health_names_the_eviction_policy(replicas: Replicas) -> None:
    detailed = httpx.get(f"{replicas.b.url}/health/detailed").json()
    assert detailed["redis_eviction_policy"] == RECOMMENDED_POLICY
    assert detailed["warnings"] == []


async def test_revocations_an_earlier_version_kept_in_redis_survive_the_upgrade(
    app_factory: AppFactory, settings: Settings, redis_server: RedisServer
) -> None:
    """Earlier versions kept a revocation as a Redis key of its own: the upgraded API records it."""
    async with app_factory(settings) as (_, api):
        account = await api.account()
    family = jwt.decode(account.access_token, options={"verify_signature": False})["fam"]
    token_id = jwt.decode(account.refresh_token, options={"verify_signature": False})["jti"]
    legacy = redis.Redis.from_url(redis_server.url(API_REDIS_DB))
    with legacy:
        legacy.set(f"{settings.redis_key_prefix}revoked:{family}", b"1", px=600_000)
        legacy.set(f"{settings.redis_key_prefix}used:{token_id}", b"1", px=600_000)

    async with app_factory(settings) as (_, api):
        assert (await api.get(f"{API}/users/me", as_=account)).status_code == 401
        response = await api.post(
            f"{API}/auth/refresh", json={"refresh_token": account.refresh_token}
        )
        assert response.status_code == 401
    # Recorded in the database: a Redis that forgets them changes nothing.
    with legacy:
        legacy.flushdb()
    async with app_factory(settings) as (_, api):
        assert (await api.get(f"{API}/users/me", as_=account)).status_code == 401


async def test_without_redis_a_logout_outlives_the_process(sqlite_settings: Settings) -> None:
    """The embedded default (SQLite, no Redis): a restarted process still refuses the session."""
    async with running_app(sqlite_settings) as (_, api):
        account, kept = await api.account(), await api.account()
        assert (await api.post(f"{API}/auth/logout", as_=account)).status_code == 204
    async with running_app(sqlite_settings) as (_, api):
        assert (await api.get(f"{API}/users/me", as_=kept)).status_code == 200
        assert (await api.get(f"{API}/users/me", as_=account)).status_code == 401
        response = await api.post(
            f"{API}/auth/refresh", json={"refresh_token": account.refresh_token}
        )
        assert response.status_code == 401


async def test_a_reload_overtaken_by_a_flush_does_not_mark_the_set_whole(
    redis_server: RedisServer,
) -> None:
    """A reload reads the database, Redis is flushed (or restarts), then the reload writes: the
    set it writes may miss what was revoked in between, so it must not carry the marker."""
    prefix = f"overtaken-{uuid.uuid4().hex[:8]}:"
    store = RedisStore.from_url(
        redis_server.url(API_REDIS_DB), prefix=prefix, timeout=2, max_connections=4
    )
    admin = redis.Redis.from_url(redis_server.url(API_REDIS_DB))
    try:
        load = await store.begin_revocations_load()
        admin.delete(f"{prefix}revoked-load")  # what a flush or a restart does to it
        assert not await store.load_revocations([("a" * 32, 2**41)], load)
        assert admin.zscore(f"{prefix}revoked", LOADED_MARKER) is None

        first, second = await store.begin_revocations_load(), await store.begin_revocations_load()
        assert not await store.load_revocations([], first), "overtaken by the second load"
        assert await store.load_revocations([], second)
        assert admin.zscore(f"{prefix}revoked", LOADED_MARKER) is not None
    finally:
        await store.aclose()
        admin.close()
