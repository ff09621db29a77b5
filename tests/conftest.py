"""Fixtures every suite may use: the real PostgreSQL and Redis servers, started once per run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.services import PostgresServer, RedisServer, run_postgres, run_redis


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    with run_postgres() as server:
        yield server


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with run_redis() as server:
        yield server
