"""Liveness, readiness and a detailed view of the dependencies."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from taskmanager_api import __version__
from taskmanager_api.core.deps import Services, ServicesDep
from taskmanager_api.core.errors import error_response, error_responses
from taskmanager_api.core.redis_policy import policy_warning

router = APIRouter(tags=["operations"])

CHECK_TIMEOUT = 2.0


class Health(BaseModel):
    status: Literal["ok"]


class CheckResult(BaseModel):
    status: Literal["ok", "error", "not_configured"]
    latency_ms: float | None = None
    detail: str | None = None


class Readiness(BaseModel):
    status: Literal["ready", "degraded"]
    checks: dict[str, CheckResult]


class DetailedHealth(Readiness):
    version: str
    environment: str
    uptime_seconds: float
    database_dialect: str
    state_store: str
    db_pool: dict[str, int]
    redis_eviction_policy: str | None = None
    warnings: list[str] = []


async def _timed(check: Any) -> CheckResult:
    start = time.perf_counter()
    try:
        await asyncio.wait_for(check, CHECK_TIMEOUT)
    except Exception as error:  # noqa: BLE001 - any failure means "not ready", named below
        # The error's type only: a message could carry a connection string.
        return CheckResult(status="error", detail=type(error).__name__)
    return CheckResult(status="ok", latency_ms=round((time.perf_counter() - start) * 1000, 2))


async def _ping_database(services: Services) -> None:
    async with services.engine.connect() as connection:
        await connection.execute(sa.text("SELECT 1"))


async def run_checks(services: Services) -> dict[str, CheckResult]:
    database, redis = await asyncio.gather(
        _timed(_ping_database(services)),
        _timed(services.store.ping())
        if services.store.kind == "redis"
        else asyncio.sleep(0, CheckResult(status="not_configured")),
    )
    checks = {"database": database, "redis": redis}
    # Kubelet probes /ready every few seconds: the gauge is as fresh as the last probe.
    for name, check in checks.items():
        services.metrics.dependency_checked(
            name, None if check.status == "not_configured" else check.status == "ok"
        )
    return checks


def _failed(checks: dict[str, CheckResult]) -> JSONResponse | None:
    failed = {name: check for name, check in checks.items() if check.status == "error"}
    if not failed:
        return None
    return error_response(
        503,
        "not_ready",
        "unreachable: " + ", ".join(sorted(failed)),
        details=[
            {"loc": [name], "msg": check.detail or "unreachable", "type": "unreachable"}
            for name, check in failed.items()
        ],
    )


def _status(checks: dict[str, CheckResult]) -> Literal["ready", "degraded"]:
    # Without Redis every replica keeps its own revocations and limits: usable, but not right.
    return "degraded" if checks["redis"].status == "not_configured" else "ready"


@router.get("/health", response_model=Health, summary="Liveness: the process answers")
async def health() -> Health:
    return Health(status="ok")


@router.get(
    "/ready",
    response_model=Readiness,
    summary="Readiness: the database and Redis answer",
    responses=error_responses(503),
)
async def ready(services: ServicesDep) -> Readiness | Response:
    checks = await run_checks(services)
    return _failed(checks) or Readiness(status=_status(checks), checks=checks)


@router.get(
    "/health/detailed",
    response_model=DetailedHealth,
    summary="Readiness with versions, latencies and pool state",
    responses=error_responses(503),
)
async def detailed(request: Request, services: ServicesDep) -> DetailedHealth | Response:
    checks = await run_checks(services)
    if failure := _failed(checks):
        return failure
    pool = services.engine.sync_engine.pool
    pool_state = {
        name: int(getattr(pool, name)())
        for name in ("size", "checkedin", "checkedout", "overflow")
        if callable(getattr(pool, name, None))
    }
    policy = await _eviction_policy(services)
    warning = policy_warning(policy) if policy else None
    return DetailedHealth(
        status=_status(checks),
        checks=checks,
        version=__version__,
        environment=services.settings.environment.value,
        uptime_seconds=round(time.monotonic() - request.app.state.started_at, 1),
        database_dialect=services.engine.dialect.name,
        state_store=services.store.kind,
        db_pool=pool_state,
        redis_eviction_policy=policy,
        warnings=[warning] if warning else [],
    )


async def _eviction_policy(services: Services) -> str | None:
    """Redis's maxmemory-policy; None without Redis or when Redis will not say (INFO denied)."""
    try:
        return await asyncio.wait_for(services.store.eviction_policy(), CHECK_TIMEOUT)
    except Exception:  # noqa: BLE001 - a view for humans: an unknown policy is not an error
        return None
