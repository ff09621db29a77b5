"""The one writer of a TaskManager's status, and the events its condition transitions deserve.

Events are derived here, from the difference between the status there and the one computed,
so an event is posted exactly when a condition moves, whichever path of the reconcile moved it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from taskmanager_operator import status as st
from taskmanager_operator.api.v1alpha1 import TaskManagerStatus, to_manifest
from taskmanager_operator.builders import api
from taskmanager_operator.builders.common import API, selector_labels
from taskmanager_operator.k8s import KubeApi, Object
from taskmanager_operator.reconcile.outcome import Event, Observed
from taskmanager_operator.resource import TaskManager

# A condition entering one of these (type, status) posts a Warning event with its reason.
WARNED_STATES = frozenset(
    {
        (st.DEGRADED, "True"),
        (st.CACHE_EVICTION_SAFE, "False"),
        (st.MONITORING_READY, "False"),
        (st.AUTOSCALING_METRICS_READY, "False"),
        (st.ROUTE_ACCEPTED, "False"),
        (st.LAST_BACKUP_SUCCEEDED, "False"),
        (st.BACKUP_VERIFIED, "False"),
    }
)

# Status keys that only a reconcile that observes the children can say anything about: Paused
# keeps what the last one said, and one that observes nothing for them removes them.
OBSERVED_ONLY = ("monitoring", "signingKeys", "externalURL", "backup")


def write_status(
    kube: KubeApi, tm: TaskManager, body: Object, observed: Observed, phase: str
) -> list[Event]:
    """Patch the status subresource only when it differs; the events of what changed."""
    previous = body.get("status") or {}
    events = condition_events(previous.get("conditions") or [], observed.conditions)
    status = as_stored(next_status(tm, previous, observed, phase))
    if changes := merge_patch(previous, status):
        # The status is a merge patch: a key dropped inside an object (one of status.monitoring's)
        # would stay unless the patch names it null, and every reconcile would write again.
        kube.patch_taskmanager_status(tm.namespace, tm.name, status | changes)
    return events


def as_stored(status: Mapping[str, Any]) -> dict[str, Any]:
    """The status as the API server stores it: the CRD's schema (made from the same model)
    fills in its defaults, and a status compared without them would never agree with it."""
    present = {key: value for key, value in status.items() if value is not None}
    return to_manifest(TaskManagerStatus.model_validate(present))


def next_status(
    tm: TaskManager, previous: Mapping[str, Any], observed: Observed, phase: str
) -> dict[str, Any]:
    status: dict[str, Any] = {
        "observedGeneration": tm.generation,
        "phase": phase,
        "conditions": st.merge_conditions(
            previous.get("conditions") or [], observed.conditions, tm.generation
        ),
        "selector": ",".join(f"{k}={v}" for k, v in selector_labels(tm, API).items()),
        "endpoint": api.endpoint(tm),
    }
    if observed.replicas is not None:
        status["replicas"] = observed.replicas
        status["readyReplicas"] = observed.ready_replicas
    else:
        status["replicas"] = previous.get("replicas", 0)
        status["readyReplicas"] = previous.get("readyReplicas", 0)
    status["version"] = observed.version or previous.get("version")
    status["monitoring"] = observed.monitoring
    status["signingKeys"] = observed.signing_keys
    status["externalURL"] = observed.external_url
    status["backup"] = observed.backup
    status = {key: value for key, value in status.items() if value is not None}
    keep_previous = phase == "Paused" or observed.children_unobserved
    for key in OBSERVED_ONLY:
        if keep_previous and key in previous:
            status[key] = previous[key]
        elif previous.get(key) is not None and key not in status:
            # The status is a merge patch: a key left out would stay; null removes it.
            status[key] = None
    # Paused observes no pods: it says what the last reconcile that looked at them found.
    if phase == "Paused":
        status["replicas"] = previous.get("replicas", 0)
        status["readyReplicas"] = previous.get("readyReplicas", 0)
    return status


def condition_events(
    previous: Sequence[Mapping[str, Any]], current: Sequence[st.Condition]
) -> list[Event]:
    """The events a status change deserves: one per condition that moved to a notable state."""
    events: list[Event] = []
    for condition in st.transitions(previous, current):
        if condition.warning or (condition.type, condition.status) in WARNED_STATES:
            events.append(Event("Warning", condition.reason, condition.message))
        elif condition.type == st.READY and condition.status == "True":
            events.append(Event("Normal", "Ready", condition.message))
        elif condition.type == st.PAUSED:
            events.append(Event("Normal", "Paused", condition.message))
    return events


def merge_patch(previous: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON merge patch (RFC 7386) that turns `previous` into `desired`, where a key that
    `desired` lacks or holds as None is removed; empty when they already agree."""
    patch: dict[str, Any] = {}
    for key in previous.keys() | desired.keys():
        old, new = previous.get(key), desired.get(key)
        if new is None:
            if old is not None:
                patch[key] = None
        elif isinstance(old, Mapping) and isinstance(new, Mapping):
            if nested := merge_patch(old, new):
                patch[key] = nested
        elif old != new:
            patch[key] = new
    return patch
