"""The metric and label contract that dashboards and alerts are built on.

The API's metrics module registers these names, and the operator generates its PrometheusRules and
Grafana dashboards from them (taskmanager_operator.monitoring), so a rename here reaches both at
once. For users it is an API: renaming a metric or a label breaks their own queries, so it is a
breaking change (docs/monitoring.md). Plain constants only: the operator imports this module
without importing the web stack.
"""

from __future__ import annotations

HTTP_REQUESTS = "taskmanager_http_requests_total"
HTTP_REQUEST_DURATION = "taskmanager_http_request_duration_seconds"
HTTP_IN_FLIGHT = "taskmanager_http_requests_in_flight"
CACHE_REQUESTS = "taskmanager_cache_requests_total"
REVOCATION_RELOADS = "taskmanager_revocation_reloads_total"
AUTH_FAILURES = "taskmanager_auth_failures_total"
RATE_LIMITED = "taskmanager_rate_limited_total"
DB_POOL_CONNECTIONS = "taskmanager_db_pool_connections"
# 1 while the last readiness check reached the dependency, 0 while it failed, by dependency.
DEPENDENCY_UP = "taskmanager_dependency_up"
DEPENDENCIES = ("database", "redis")

# Labels of the HTTP metrics. `route` is the route template (`/api/v1/tasks/{task_id}`), so its
# values are bounded; a path that matched no route is `<unmatched>`.
HTTP_LABELS = ("method", "route", "status")

# Tuned for an API whose target p99 is 25 ms: most of the resolution sits below 100 ms. An SLO's
# latency threshold must be one of these bounds, or no bucket could count the requests under it.
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# Routes that serve probes and scrapes rather than users: counted like any other route, and left
# out of every SLI, alert and traffic panel the operator generates.
OPERATIONS_ROUTES = ("/health", "/health/detailed", "/ready", "/metrics")
