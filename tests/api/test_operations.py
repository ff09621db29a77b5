"""Health, readiness, metrics and logs: what operators and Prometheus see."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import pytest
from fastapi import FastAPI

from taskmanager_api.core.config import Settings
from taskmanager_api.core.logging import RedactingJsonFormatter, redact
from tests.api.conftest import AppFactory
from tests.api.helpers import API, PASSWORD, ApiClient, assert_error
from tests.support.services import free_port

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


async def test_health_ready_and_detailed(api: ApiClient) -> None:
    assert (await api.get("/health")).json() == {"status": "ok"}
    ready = await api.get("/ready")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready"
    assert {name: check["status"] for name, check in body["checks"].items()} == {
        "database": "ok",
        "redis": "ok",
    }
    detailed = (await api.get("/health/detailed")).json()
    assert detailed["database_dialect"] == "postgresql"
    assert detailed["state_store"] == "redis"
    assert detailed["version"]
    assert detailed["db_pool"]["size"] == 10


async def test_ready_names_the_failed_dependency(
    settings_factory: Callable[..., Settings], app_factory: AppFactory
) -> None:
    nothing_there = f"redis://:pw@127.0.0.1:{free_port()}/0"
    settings = settings_factory(redis_url=nothing_there, redis_timeout=0.5)
    async with app_factory(settings) as (_, api):
        assert (await api.get("/health")).status_code == 200
        error = assert_error(await api.get("/ready"), 503, "not_ready")
        assert error["details"][0]["loc"] == ["redis"]
        assert "redis" in error["message"]
        assert "database" not in error["message"]
        # Without Redis nobody can be checked for revocation or limits: refuse, do not guess.
        response = await api.post(
            f"{API}/auth/register", json={"email": "a@example.com", "password": PASSWORD}
        )
        assert_error(response, 503, "unavailable")
        assert "pw@" not in response.text

    bad_database = settings_factory(
        database_url=f"postgresql+asyncpg://nobody:pw@127.0.0.1:{free_port()}/none"
    )
    async with app_factory(bad_database) as (_, api):
        error = assert_error(await api.get("/ready"), 503, "not_ready")
        assert [item["loc"] for item in error["details"]] == [["database"]]


async def test_metrics_by_route_template(api: ApiClient, app: FastAPI) -> None:
    owner = await api.account()
    task = await api.create_task(owner)
    for _ in range(2):
        await api.get(f"{API}/tasks/{task['id']}", as_=owner)
    await api.get(f"{API}/tasks/{task['id']}", headers={"Authorization": "Bearer nope"})
    await api.get("/nowhere")
    text = (await api.get("/metrics")).text
    route = 'route="/api/v1/tasks/{task_id}"'
    assert f'taskmanager_http_requests_total{{method="GET",{route},status="200"}} 2.0' in text
    assert f'taskmanager_http_requests_total{{method="GET",{route},status="401"}} 1.0' in text
    assert 'route="<unmatched>",status="404"' in text
    assert task["id"] not in text
    assert "taskmanager_http_request_duration_seconds_bucket" in text
    assert "taskmanager_http_requests_in_flight" in text
    assert 'taskmanager_db_pool_connections{state="size"} 10.0' in text
    # Reads fill the cache, creates do not: the first read missed, the second hit.
    assert 'taskmanager_cache_requests_total{result="miss"} 1.0' in text
    assert 'taskmanager_cache_requests_total{result="hit"} 1.0' in text
    assert 'taskmanager_auth_failures_total{reason="malformed"} 1.0' in text
    del app


async def test_request_ids_are_propagated_or_made(api: ApiClient) -> None:
    given = await api.get("/health", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made = await api.get("/health")
    assert len(made.headers["x-request-id"]) == 32
    hostile = await api.get("/health", headers={"X-Request-ID": "x" * 500})
    assert hostile.headers["x-request-id"] != "x" * 500
    error = assert_error(await api.get("/nowhere", headers={"X-Request-ID": "trace-9"}), 404)
    assert error["request_id"] == "trace-9"


async def test_logs_are_json_with_request_ids_and_no_secrets(
    api: ApiClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    account = await api.account("logged@example.com")
    await api.get(f"{API}/users/me", as_=account, headers={"X-Request-ID": "req-42"})
    formatter = RedactingJsonFormatter("%(levelname)s %(name)s %(message)s")
    lines = [formatter.format(record) for record in caplog.records]
    access = [json.loads(line) for line in lines if '"message": "request"' in line]
    me = [entry for entry in access if entry["path"] == f"{API}/users/me"][-1]
    assert me["status"] == 200
    assert me["route"] == f"{API}/users/me"
    assert me["request_id"] == "req-42"
    everything = "\n".join(lines)
    assert account.access_token not in everything
    assert account.refresh_token not in everything
    assert PASSWORD not in everything


def test_redaction_catches_tokens_and_urls() -> None:
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
    assert token not in redact(f"got {token}")
    assert "hunter2" not in redact("postgresql://user:hunter2@db/x")
    assert "abc" not in redact("Authorization: Bearer abc")
    assert "s3cr3t" not in redact('{"password": "s3cr3t"}')
