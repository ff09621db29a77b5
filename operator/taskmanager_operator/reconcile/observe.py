"""What the children say, turned into conditions. Pure: objects as read in, conditions out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from taskmanager_operator import status as st
from taskmanager_operator.builders.api import ROLLOUT_CHECKSUM_ANNOTATION
from taskmanager_operator.k8s import Object
from taskmanager_operator.reconcile.pods import PodProblem

# The reason of Degraded and Ready while the API server refuses to apply a child.
APPLY_FAILED = "ApplyFailed"


def readiness(kind: str, external: bool, ready: bool, what: str) -> st.Condition:
    """DatabaseReady or CacheReady."""
    if external:
        return st.true(kind, "External", f"an external {what} is configured")
    if ready:
        return st.true(kind, "Ready", f"the managed {what} is ready")
    return st.false(kind, "NotReady", f"the managed {what} is starting")


def api_image(deployment: Object | None) -> str | None:
    """The image the API Deployment runs now, None without one."""
    if deployment is None:
        return None
    containers = deployment["spec"]["template"]["spec"]["containers"]
    return next((str(c["image"]) for c in containers if c["name"] == "api"), None)


def version_of(image_ref: str | None) -> str | None:
    """The tag of an image reference (a registry's port is not a tag)."""
    if image_ref is None or ":" not in image_ref.rsplit("/", 1)[-1]:
        return None
    return image_ref.rsplit(":", 1)[-1]


@dataclass(frozen=True)
class Rollout:
    """The API Deployment's pods, and whether the API server has rolled out its latest spec."""

    wanted: int
    ready: int
    updated: int
    total: int
    done: bool


def rollout(deployment: Object) -> Rollout:
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    wanted = int(spec.get("replicas") or 0)
    ready = int(status.get("readyReplicas") or 0)
    updated = int(status.get("updatedReplicas") or 0)
    total = int(status.get("replicas") or 0)
    done = (
        int(status.get("observedGeneration") or 0)
        >= int(deployment["metadata"].get("generation") or 0)
        and updated == wanted
        and total == wanted
        and ready >= wanted
    )
    return Rollout(wanted, ready, updated, total, done)


def rolled_out_with(deployment: Object | None, rollout_checksum: str) -> bool:
    """Whether every API pod runs with the inputs `rollout_checksum` digests (no pods at all:
    nothing runs with anything else)."""
    if deployment is None:
        return True
    template = (deployment.get("spec") or {}).get("template") or {}
    annotations = (template.get("metadata") or {}).get("annotations") or {}
    return (
        annotations.get(ROLLOUT_CHECKSUM_ANNOTATION) == rollout_checksum
        and rollout(deployment).done
    )


@dataclass(frozen=True)
class ApiObservation:
    conditions: tuple[st.Condition, ...]
    # The Deployment's pods; None without a Deployment (the status keeps what it said).
    replicas: int | None = None
    ready_replicas: int | None = None
    version: str | None = None
    # A rollout is in progress: look again soon rather than wait for an event.
    poll: bool = False


NOT_RUNNING = ApiObservation(
    (
        st.true(
            st.PROGRESSING, "WaitingForMigration", "the API starts once the schema is migrated"
        ),
        st.false(st.READY, "WaitingForMigration", "the API is not running yet"),
    )
)


def observe_api(
    deployment: Object | None,
    serving_image: str | None,
    desired_image: str,
    desired_version: str,
    degraded_reason: str | None,
    *,
    pod_problem: PodProblem | None = None,
) -> ApiObservation:
    """Progressing, Ready and (unless already Degraded) Degraded=False from the API's rollout;
    `pod_problem`, why its pods do not run, becomes their reason while it is not done."""
    if deployment is None:
        return NOT_RUNNING
    pods = rollout(deployment)
    on_desired = serving_image == desired_image
    pods_ready = f"{pods.ready}/{pods.wanted} API pods ready"
    if pods.done and on_desired:
        progressing = st.false(
            st.PROGRESSING, "RolloutComplete", f"{pods_ready} on {desired_image}"
        )
    else:
        updated = f"{pods.updated}/{pods.wanted} API pods updated, {pods.ready} ready"
        if pod_problem is not None:
            updated = f"{updated}; {pod_problem.message}"
            pods_ready = f"{pods_ready}; {pod_problem.message}"
        rolling = pod_problem.reason if pod_problem is not None else "RollingOut"
        progressing = st.Condition(
            st.PROGRESSING, "True", rolling, updated, warning=pod_problem is not None
        )
    if degraded_reason is not None:
        ready = st.false(st.READY, degraded_reason, pods_ready)
    elif pods.done and on_desired:
        ready = st.true(st.READY, "Ready", pods_ready)
    else:
        ready = st.false(st.READY, rolling, pods_ready)
    conditions: tuple[st.Condition, ...] = (progressing, ready)
    if degraded_reason is None:
        conditions += (st.false(st.DEGRADED, "AsExpected", ""),)
    version = None
    if pods.done:
        version = desired_version if on_desired else version_of(serving_image)
    return ApiObservation(
        conditions, pods.total, pods.ready, version, poll=not (pods.done and on_desired)
    )


def degraded_reason(conditions: Sequence[st.Condition]) -> str | None:
    """The reason of the first Degraded condition observed so far."""
    return next((c.reason for c in conditions if c.type == st.DEGRADED), None)


def _over_previous(
    previous_conditions: Sequence[Mapping[str, Any]], *new: st.Condition
) -> list[st.Condition]:
    """`new` first, then every other condition as the last reconcile left it: for a reconcile
    that observes nothing of the children."""
    replaced = {condition.type for condition in new}
    kept = [
        st.Condition(c["type"], c["status"], c["reason"], c.get("message", ""))
        for c in previous_conditions
        if c["type"] not in replaced
    ]
    return [*new, *kept]


def paused(previous_conditions: Sequence[Mapping[str, Any]]) -> list[st.Condition]:
    """Paused=True first, and every other condition kept as the last reconcile left it."""
    return _over_previous(
        previous_conditions,
        st.true(st.PAUSED, "Paused", "spec.paused is true: children are not changed"),
    )


def apply_failed(
    previous_conditions: Sequence[Mapping[str, Any]], refused: str
) -> list[st.Condition]:
    """Degraded and not Ready because the API server refused a child (`refused` names it and
    says why, in the API server's words); what the last reconcile observed of the rest stays."""
    return _over_previous(
        previous_conditions,
        st.true(st.DEGRADED, APPLY_FAILED, refused),
        st.false(st.READY, APPLY_FAILED, refused),
    )


def phase(conditions: Sequence[st.Condition]) -> str:
    by_type = {c.type: c for c in conditions}
    if (degraded := by_type.get(st.DEGRADED)) and degraded.status == "True":
        return "Degraded"
    if (ready := by_type.get(st.READY)) and ready.status == "True":
        return "Ready"
    if (progressing := by_type.get(st.PROGRESSING)) and progressing.status == "True":
        return "Progressing"
    return "Pending"


def restoring(conditions: Sequence[st.Condition], restore: str) -> list[st.Condition]:
    """While a restore holds the API at 0 pods it is not Ready, and it is on its way back."""
    message = f"restore {restore} holds the API at 0 pods while it replaces the data"
    held = {st.READY, st.PROGRESSING}
    return [c for c in conditions if c.type not in held] + [
        st.false(st.READY, "Restoring", message),
        st.true(st.PROGRESSING, "Restoring", message),
    ]
