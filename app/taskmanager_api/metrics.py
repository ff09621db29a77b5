"""Prometheus metrics, one registry per app so that several apps in one process stay apart."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from fastapi import APIRouter, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

from taskmanager_api import metric_contract as names


class PoolCollector(Collector):
    def __init__(self, engine: Callable[[], AsyncEngine | None]) -> None:
        self._engine = engine

    def collect(self) -> Iterable[GaugeMetricFamily]:
        engine = self._engine()
        pool = engine.sync_engine.pool if engine is not None else None
        family = GaugeMetricFamily(
            names.DB_POOL_CONNECTIONS,
            "Database pool connections by state.",
            labels=["state"],
        )
        if isinstance(pool, QueuePool):
            family.add_metric(["checked_out"], pool.checkedout())
            family.add_metric(["idle"], pool.checkedin())
            family.add_metric(["overflow"], max(pool.overflow(), 0))
            family.add_metric(["size"], pool.size())
        yield family


class Metrics:
    def __init__(self, engine: Callable[[], AsyncEngine | None]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            names.HTTP_REQUESTS,
            "HTTP requests by method, route template and status.",
            list(names.HTTP_LABELS),
            registry=self.registry,
        )
        self.latency = Histogram(
            names.HTTP_REQUEST_DURATION,
            "HTTP request latency by method, route template and status.",
            list(names.HTTP_LABELS),
            buckets=names.LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            names.HTTP_IN_FLIGHT,
            "HTTP requests being served.",
            registry=self.registry,
        )
        self.cache = Counter(
            names.CACHE_REQUESTS,
            "Read-cache lookups by result.",
            ["result"],
            registry=self.registry,
        )
        self.cache_hits = self.cache.labels(result="hit")
        self.cache_misses = self.cache.labels(result="miss")
        self.revocation_reloads = Counter(
            names.REVOCATION_RELOADS,
            "Times this replica copied the revocations from the database back into Redis "
            "(after Redis restarted empty, was flushed or evicted them).",
            registry=self.registry,
        )
        self.auth_failures = Counter(
            names.AUTH_FAILURES,
            "Rejected credentials by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.rate_limited = Counter(
            names.RATE_LIMITED,
            "Requests refused by a rate limit, by limit.",
            ["limit"],
            registry=self.registry,
        )
        self.dependency_up = Gauge(
            names.DEPENDENCY_UP,
            "1 while the last readiness check reached the dependency, 0 while it failed.",
            ["dependency"],
            registry=self.registry,
        )
        self.registry.register(PoolCollector(engine))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        labels = (method, route, str(status))
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(seconds)

    def dependency_checked(self, dependency: str, up: bool | None) -> None:
        """Records a readiness check's outcome; `None` (not configured) exports no series, since a
        0 would read as an outage."""
        if up is None:
            self.dependency_up.remove(dependency)
        else:
            self.dependency_up.labels(dependency).set(1 if up else 0)


router = APIRouter(tags=["operations"])


@router.get(
    "/metrics",
    response_class=Response,
    summary="Prometheus metrics",
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format."}},
)
async def metrics(request: Request) -> Response:
    registry: CollectorRegistry = request.app.state.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
