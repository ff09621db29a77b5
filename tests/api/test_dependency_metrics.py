"""taskmanager_dependency_up: what the last readiness check found, by dependency.

Kubelet probes /ready every few seconds, so the gauge is as fresh as the last probe. A real API
process against a Redis that is stopped and started again on the same port, as its pod would be.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from taskmanager_api import metric_contract as names
from taskmanager_api.core.config import Settings
from tests.api.conftest import API_REDIS_DB, AppFactory
from tests.api.helpers import ApiClient
from tests.api.processes import (
    ApiProcess,
    production_environment,
    run_api,
)
from tests.support.services import free_port, redis_process
from tests.support.wait import wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def dependency_up(metrics_text: str) -> dict[str, float]:
    """The gauge's samples by dependency; empty when no check has run."""
    for family in text_string_to_metric_families(metrics_text):
        if family.name == names.DEPENDENCY_UP:
            return {sample.labels["dependency"]: sample.value for sample in family.samples}
    raise AssertionError(f"{names.DEPENDENCY_UP} is not exported:\n{metrics_text}")


def scraped(api: ApiProcess) -> dict[str, float]:
    return dependency_up(httpx.get(f"{api.url}/metrics").text)


def ready_status(api: ApiProcess) -> int:
    return httpx.get(f"{api.url}/ready", timeout=10).status_code


def test_the_gauge_follows_redis_going_away_and_coming_back(
    api_database_url: str, tmp_path: Path
) -> None:
    with redis_process() as redis:
        env = production_environment(
            tmp_path,
            database_url=api_database_url,
            redis_url=redis.server.url(API_REDIS_DB),
            redis_timeout="0.5",
        )
        with run_api(env, tmp_path) as api:
            # No check has run yet: no value rather than a guess.
            assert scraped(api) == {}, api.output()[-2000:]

            assert ready_status(api) == 200
            assert scraped(api) == {"database": 1.0, "redis": 1.0}

            redis.stop()
            assert ready_status(api) == 503
            assert scraped(api) == {"database": 1.0, "redis": 0.0}

            redis.start()
            wait_until(
                lambda: ready_status(api) == 200,
                timeout=30,
                interval=0.2,
                what="/ready to pass again once Redis is back",
            )
            assert scraped(api) == {"database": 1.0, "redis": 1.0}


async def metrics_after_ready(api: ApiClient, expected_status: int) -> dict[str, float]:
    assert (await api.get("/ready")).status_code == expected_status
    return dependency_up((await api.get("/metrics")).text)


async def test_an_unconfigured_redis_exports_no_series_and_a_dead_database_0(
    settings_factory: Callable[..., Settings], app_factory: AppFactory
) -> None:
    # Without Redis the API is degraded, not down: a 0 would page someone for a choice.
    async with app_factory(settings_factory(redis_url=None)) as (_, api):
        assert await metrics_after_ready(api, 200) == {"database": 1.0}

    nowhere = f"postgresql+asyncpg://nobody:pw@127.0.0.1:{free_port()}/none"
    async with app_factory(settings_factory(database_url=nowhere)) as (_, api):
        assert await metrics_after_ready(api, 503) == {"database": 0.0, "redis": 1.0}
