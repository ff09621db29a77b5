"""A real Prometheus scrapes a real API process, with the target labels a ServiceMonitor gives.

What the generated rules and dashboards select on (job, namespace, the app's own labels) is what
Prometheus stores, not only what /metrics prints.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from taskmanager_api import metric_contract as names
from tests.api.processes import (
    ApiProcess,
    production_environment,
    run_api,
)
from tests.support.prometheus import PrometheusProcess
from tests.support.services import PostgresServer, RedisServer, create_database

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

# Apart from db 0 (the Redis tests) and db 3 (tests/api).
REDIS_DB = 5
# The labels a prometheus-operator ServiceMonitor puts on a target of Service demo-api, port http.
TARGET_LABELS = {
    "namespace": "team-a",
    "service": "demo-api",
    "job": "demo-api",
    "pod": "demo-api-0",
    "container": "api",
    "endpoint": "http",
}
SELECTOR = 'job="demo-api",namespace="team-a"'


@pytest.fixture
def api(
    postgres_server: PostgresServer, redis_server: RedisServer, tmp_path: Path
) -> Iterator[ApiProcess]:
    """An API process on a database of its own, migrated by `serve --migrate`."""
    database_url = asyncio.run(
        create_database(postgres_server, f"taskmanager_scrape_{uuid.uuid4().hex[:8]}")
    )
    env = production_environment(
        tmp_path, database_url=database_url, redis_url=redis_server.url(REDIS_DB)
    )
    with run_api(env, tmp_path, "--migrate") as process:
        yield process


def service_monitor_scrape(api: ApiProcess) -> dict[str, object]:
    """A scrape config whose target carries what a ServiceMonitor's relabelling would produce."""
    return {
        "job_name": "serviceMonitor/team-a/demo-api/0",
        "metrics_path": "/metrics",
        "static_configs": [
            {"targets": [api.url.removeprefix("http://")], "labels": TARGET_LABELS},
        ],
    }


def test_prometheus_stores_the_api_metrics_with_the_target_labels(api: ApiProcess) -> None:
    with PrometheusProcess(scrape_configs=[service_monitor_scrape(api)]) as prom:
        up = prom.wait_for_query(f"up{{{SELECTOR}}} == 1", what="the API target to be up")
        assert len(up) == 1, up

        for _ in range(3):
            assert httpx.get(f"{api.url}/health").status_code == 200
        assert httpx.get(f"{api.url}/api/v1/tasks").status_code == 401
        health = prom.wait_for_query(
            f'{names.HTTP_REQUESTS}{{{SELECTOR},route="/health",status="200"}} >= 3',
            what="the /health requests to be scraped",
        )
        assert len(health) == 1, health
        labels = health[0]["metric"]
        assert labels.items() >= TARGET_LABELS.items(), labels
        assert labels["method"] == "GET"
        assert set(labels) == {
            "__name__",
            "instance",
            *TARGET_LABELS,
            *names.HTTP_LABELS,
        }, labels
        prom.wait_for_query(
            f'{names.HTTP_REQUESTS}{{{SELECTOR},route="/api/v1/tasks",status="401"}} == 1',
            what="the refused request to be scraped",
        )

        assert httpx.get(f"{api.url}/ready").status_code == 200
        database = prom.wait_for_query(
            f'{names.DEPENDENCY_UP}{{{SELECTOR},dependency="database"}} == 1',
            what="the database's dependency gauge after /ready",
        )
        assert database[0]["metric"]["pod"] == "demo-api-0"
        assert prom.query_value(f'{names.DEPENDENCY_UP}{{{SELECTOR},dependency="redis"}}') == 1
