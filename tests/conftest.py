"""Fixtures every suite may use: the real PostgreSQL and Redis servers, started once per run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.services import PostgresServer, RedisServer, run_postgres, run_redis

# Tests that take a part of the cluster away run after every test that needs it, in this order:
# the API server's outage, then the real node's restart (which leaves nothing of the node's pods).
LAST_MARKS = ("restarts_apiserver", "restarts_node")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        marks = [i for i, mark in enumerate(LAST_MARKS, 1) if item.get_closest_marker(mark)]
        return max(marks, default=0)

    items.sort(key=rank)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    with run_postgres() as server:
        yield server


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with run_redis() as server:
        yield server
