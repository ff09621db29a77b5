"""Signing-key rotation across real API processes, each reading the secret files one step of the
operator's rotation renders, as pods of a rolling Deployment do: at every step, whichever pod a
client reaches accepts the tokens any other pod issued, so nobody is logged out."""

from __future__ import annotations

import contextlib
import functools
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest

from taskmanager_operator import signing_keys
from tests.api.conftest import API_REDIS_DB
from tests.api.helpers import API
from tests.api.processes import (
    ApiProcess,
    api_environment,
    log_in,
    me,
    run_api,
    write_secrets,
)
from tests.support.services import RedisServer

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

START = datetime(2026, 1, 1, tzinfo=UTC)
INTERVAL, REFRESH_TTL = timedelta(days=30), timedelta(days=7)


@functools.cache
def _steps() -> dict[str, list[signing_keys.SigningKey]]:
    """The ring before, during and after one rotation, as the operator's steps make it."""
    made: dict[str, list[signing_keys.SigningKey]] = {}
    ring: list[signing_keys.SigningKey] = []
    for name, now, rolled in (
        ("before", START, True),
        ("published", START + INTERVAL, True),
        ("promoted", START + INTERVAL, True),
        ("retired", START + INTERVAL + REFRESH_TTL, True),
    ):
        ring, _ = signing_keys.advance(
            ring,
            now=now,
            interval=INTERVAL,
            refresh_ttl=REFRESH_TTL,
            every_pod_has_the_ring=rolled,
            new_key=lambda n: uuid.uuid4().hex * 3,
        )
        made[name] = ring
    return made


@pytest.fixture(scope="module")
def pods(
    api_database_url: str, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, ApiProcess]]:
    """One API process per step, sharing the database and Redis, each with its own files."""
    workdir = tmp_path_factory.mktemp("rotation")
    prefix = f"rotation-{uuid.uuid4().hex[:8]}:"
    with contextlib.ExitStack() as stack:
        running = {}
        for name, ring in _steps().items():
            files = {"jwt_signing_key": signing_keys.signing(ring).value}
            if previous := signing_keys.verification_keys(ring):
                files["jwt_previous_keys"] = json.dumps(previous)
            secrets_dir = write_secrets(
                workdir / name,
                database_url=api_database_url,
                redis_url=redis_server.url(API_REDIS_DB),
                **files,
            )
            env = api_environment(
                secrets_dir=secrets_dir,
                environment="production",
                redis_key_prefix=prefix,
                rate_limit_per_minute=100_000,
                login_rate_limit_per_minute=1000,
                login_ip_rate_limit_per_minute=1000,
            )
            running[name] = stack.enter_context(run_api(env, workdir, name=name))
        yield running


def _kid(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


# Pods that run side by side while the Deployment rolls from one step to the next.
ROLLOUTS = [("before", "published"), ("published", "promoted"), ("promoted", "retired")]


@pytest.mark.parametrize(("old", "new"), ROLLOUTS)
def test_during_each_rollout_every_pod_accepts_the_tokens_the_other_issues(
    pods: dict[str, ApiProcess], old: str, new: str
) -> None:
    for issuer, verifier in ((pods[old], pods[new]), (pods[new], pods[old])):
        tokens = log_in(issuer)
        assert me(verifier, tokens["access_token"]) == 200
        refreshed = httpx.post(
            f"{verifier.url}{API}/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
        assert refreshed.status_code == 200, refreshed.text


def test_a_token_from_before_the_rotation_works_until_its_key_retires(
    pods: dict[str, ApiProcess],
) -> None:
    old = log_in(pods["before"])
    for step in ("published", "promoted"):
        assert me(pods[step], old["access_token"]) == 200, step
    # Refreshing it on a promoted pod gives tokens of the new key.
    refreshed = httpx.post(
        f"{pods['promoted'].url}{API}/auth/refresh", json={"refresh_token": old["refresh_token"]}
    )
    assert refreshed.status_code == 200, refreshed.text
    new_kid = _kid(refreshed.json()["access_token"])
    assert new_kid != _kid(old["access_token"])
    assert new_kid == signing_keys.signing(_steps()["promoted"]).kid
    # The key it was signed with is gone once the refresh-token TTL has passed since promotion:
    # by then the token itself has expired; a pod of that step refuses it.
    assert me(pods["retired"], old["access_token"]) == 401
    assert me(pods["retired"], refreshed.json()["access_token"]) == 200


def test_tokens_after_the_promotion_carry_the_new_kid(pods: dict[str, ApiProcess]) -> None:
    before = _kid(log_in(pods["before"])["access_token"])
    assert _kid(log_in(pods["published"])["access_token"]) == before, "published: old key signs"
    after = _kid(log_in(pods["promoted"])["access_token"])
    assert after != before
    assert _kid(log_in(pods["retired"])["access_token"]) == after
