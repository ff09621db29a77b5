"""Fixtures every suite may use: the real PostgreSQL and Redis servers, started once per run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.services import PostgresServer, RedisServer, run_postgres, run_redis

# Tests that take a part of the cluster away run after every test that needs it, in this order:
# the API server's outage, then the real node's restart (which leaves nothing of the node's pods).
LAST_MARKS = ("restarts_apiserver", "restarts_node")
# The chart's tests run after the other cluster tests: on a fresh machine `make test` starts the
# cluster before helm, which only they run, is built (hack/test.sh), and they would wait for it.
CHART_TESTS = Path(__file__).parent / "chart"


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        marks = [i for i, mark in enumerate(LAST_MARKS, 2) if item.get_closest_marker(mark)]
        return max(marks, default=1 if item.path.is_relative_to(CHART_TESTS) else 0)

    items.sort(key=rank)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    with run_postgres() as server:
        yield server


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with run_redis() as server:
        yield server
