"""Why a workload's pods do not run, from the pods as read: a pod the scheduler cannot place, an
image that cannot be pulled, a container that crash-loops. Pure. The reconcile reads pods only
while a rollout or a migration is not done, and puts what this finds into Progressing or
MigrationsApplied, so `kubectl get tm` says why instead of "RollingOut 0/2" for ever."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from taskmanager_operator.k8s import Object

# Waiting reasons that do not go away by themselves: each needs someone to act.
STUCK_WAITING_REASONS = frozenset(
    {
        # The kubelet's image errors (pkg/kubelet/images)...
        "ErrImagePull",
        "ImagePullBackOff",
        "ErrImageNeverPull",
        "ImageInspectError",
        "InvalidImageName",
        # ...and its container runtime's (pkg/kubelet/kuberuntime).
        "CrashLoopBackOff",
        "CreateContainerConfigError",
        "CreateContainerError",
        "PreCreateHookError",
        "PreStartHookError",
        "PostStartHookError",
        "RunContainerError",
    }
)
UNSCHEDULABLE = "Unschedulable"
# The label the Job controller puts on its pods.
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"


@dataclass(frozen=True)
class PodProblem:
    # A reason for a condition: Unschedulable, ImagePullBackOff, CrashLoopBackOff...
    reason: str
    # Which pod (and container), and the kubelet's or the scheduler's own words.
    message: str


def pod_problem(pods: Sequence[Object]) -> PodProblem | None:
    """The first problem of the pods, by pod name (a stable pick, so the status does not flap)."""
    for pod in sorted(pods, key=lambda p: str(p["metadata"]["name"])):
        if pod["metadata"].get("deletionTimestamp"):
            continue
        if problem := _problem_of(pod):
            return problem
    return None


def _problem_of(pod: Object) -> PodProblem | None:
    name = pod["metadata"]["name"]
    status = pod.get("status") or {}
    for condition in status.get("conditions") or []:
        if (
            condition.get("type") == "PodScheduled"
            and condition.get("status") == "False"
            and condition.get("reason") == UNSCHEDULABLE
        ):
            why = condition.get("message") or "no node fits it"
            return PodProblem(UNSCHEDULABLE, f"pod {name} cannot be scheduled: {why}")
    for container in _container_statuses(status):
        waiting = (container.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason")
        if reason not in STUCK_WAITING_REASONS:
            continue
        message = f"pod {name}, container {container.get('name')}: {reason}"
        if detail := waiting.get("message"):
            message += f": {detail}"
        last = (container.get("lastState") or {}).get("terminated") or {}
        if reason == "CrashLoopBackOff" and last:
            message += (
                f" (last exit code {last.get('exitCode')}"
                f"{', ' + last['reason'] if last.get('reason') else ''}"
                f", {container.get('restartCount', 0)} restarts; kubectl logs {name} --previous)"
            )
        return PodProblem(reason, message)
    return None


def _container_statuses(status: Object) -> Iterator[dict[str, Any]]:
    yield from status.get("initContainerStatuses") or []
    yield from status.get("containerStatuses") or []
