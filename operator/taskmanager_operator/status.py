"""Conditions and phase, following the Kubernetes API conventions.

A condition keeps its lastTransitionTime while its status stays the same, so a reconcile that
observes nothing new computes exactly the status that is already there, and writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

READY = "Ready"
PROGRESSING = "Progressing"
DEGRADED = "Degraded"
DATABASE_READY = "DatabaseReady"
CACHE_READY = "CacheReady"
MIGRATIONS_APPLIED = "MigrationsApplied"
SECRETS_READY = "SecretsReady"
PAUSED = "Paused"
# Whether Redis keeps the revocation set (a key without a TTL) under memory pressure. Advisory:
# the API reloads it from the database when evicted, so it never makes a TaskManager Degraded.
CACHE_EVICTION_SAFE = "CacheEvictionSafe"
# Whether the monitoring objects exist and a Prometheus picks them up. Advisory too.
MONITORING_READY = "MonitoringReady"
# Whether the autoscaler gets the request-rate metric it is asked to scale on.
AUTOSCALING_METRICS_READY = "AutoscalingMetricsReady"
# Whether the HTTPRoute of spec.ingress.gateway exists and its Gateway took it. Advisory too.
ROUTE_ACCEPTED = "RouteAccepted"
# Whether the newest finished backup completed (spec.backup.enabled only). Advisory: a failed
# backup never makes the API un-Ready, but it is a Warning event and a False condition.
LAST_BACKUP_SUCCEEDED = "LastBackupSucceeded"
# Whether the newest verification (a restore of a backup into a scratch database) matched.
BACKUP_VERIFIED = "BackupVerified"

ConditionStatus = Literal["True", "False", "Unknown"]


@dataclass(frozen=True)
class Condition:
    type: str
    status: ConditionStatus
    reason: str
    message: str = ""
    # A state someone must act on whatever the condition's type (a pod that cannot run): its
    # arrival is a Warning event. Not part of the status, nor of a condition's identity.
    warning: bool = field(default=False, compare=False)


def true(type: str, reason: str, message: str = "") -> Condition:
    return Condition(type, "True", reason, message)


def false(type: str, reason: str, message: str = "") -> Condition:
    return Condition(type, "False", reason, message)


def timestamp(moment: datetime) -> str:
    """A time as Kubernetes writes one (RFC 3339 in UTC, to the second): every time the
    operator puts in a status, an annotation or an event."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(text: str) -> datetime:
    """A time Kubernetes (or `timestamp`) wrote, as an aware datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def now() -> str:
    return timestamp(datetime.now(UTC))


def merge_conditions(
    previous: Sequence[Mapping[str, Any]], current: Sequence[Condition], generation: int
) -> list[dict[str, Any]]:
    """The new conditions list; lastTransitionTime moves only when a condition's status does."""
    before = {condition["type"]: condition for condition in previous}
    merged = []
    for condition in current:
        old = before.get(condition.type)
        unchanged = old is not None and old.get("status") == condition.status
        merged.append(
            {
                "type": condition.type,
                "status": condition.status,
                "reason": condition.reason,
                "message": condition.message,
                "lastTransitionTime": old["lastTransitionTime"] if old and unchanged else now(),
                "observedGeneration": generation,
            }
        )
    return merged


def transitions(
    previous: Sequence[Mapping[str, Any]], current: Sequence[Condition]
) -> list[Condition]:
    """Conditions whose status or reason changed: what deserves an event."""
    before = {condition["type"]: condition for condition in previous}
    return [
        condition
        for condition in current
        if (old := before.get(condition.type)) is None
        or old.get("status") != condition.status
        or old.get("reason") != condition.reason
    ]
