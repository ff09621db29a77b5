"""The migration gate: the Deployment moves to a new image only once that image's migration Job
has completed, so no pod runs against a schema it does not know. Pure: what to do is decided
from what was read, and the caller does it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from taskmanager_operator import status as st
from taskmanager_operator.k8s import Object
from taskmanager_operator.reconcile.pods import PodProblem

JobState = Literal["Absent", "Running", "Complete", "Failed"]


@dataclass(frozen=True)
class Gate:
    # The image the Deployment may run; None while nothing may run yet.
    serve: str | None
    condition: st.Condition
    # The migration Degrades the TaskManager (its Job failed).
    degraded: st.Condition | None = None
    # The Job is absent: create it (once per image; a Job's pod template cannot change).
    create_job: bool = False
    # The Job is running: look again soon rather than wait for an event.
    poll: bool = False


def job_matters(current_image: str | None, desired_image: str, database_ready: bool) -> bool:
    """Whether the Job's state is needed: only for a new image and a database that can take it."""
    return current_image != desired_image and database_ready


def job_state(job: Object | None) -> JobState:
    if job is None:
        return "Absent"
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("status") == "True" and condition.get("type") == "Complete":
            return "Complete"
        if condition.get("status") == "True" and condition.get("type") == "Failed":
            return "Failed"
    return "Running"


def job_failure(job: Object | None) -> str | None:
    """The Failed condition's reason and message (DeadlineExceeded, BackoffLimitExceeded)."""
    for condition in ((job or {}).get("status") or {}).get("conditions") or []:
        if condition.get("status") == "True" and condition.get("type") == "Failed":
            return ": ".join(
                str(part) for part in (condition.get("reason"), condition.get("message")) if part
            )
    return None


def decide(
    current_image: str | None,
    desired_image: str,
    job: JobState,
    database_ready: bool,
    job_name: str,
    *,
    failure: str | None = None,
    pod_problem: PodProblem | None = None,
) -> Gate:
    """What the migration allows; `job` is ignored unless job_matters() (it was not read).
    `failure` is why a failed Job failed, `pod_problem` why its pod does not run."""
    applied = st.MIGRATIONS_APPLIED
    if current_image == desired_image:
        return Gate(
            desired_image, st.true(applied, "UpToDate", f"schema migrated for {desired_image}")
        )
    if not database_ready:
        return Gate(
            current_image,
            st.false(applied, "WaitingForDatabase", "the database is not ready yet"),
        )
    if job == "Complete":
        message = f"Job {job_name} migrated the schema for {desired_image}"
        return Gate(desired_image, st.true(applied, "MigrationSucceeded", message))
    if job == "Failed":
        message = (
            f"Job {job_name} failed to migrate the schema for {desired_image}"
            + (f" ({failure})" if failure else "")
            + (f", {pod_problem.message}" if pod_problem else "")
            + "; "
            + (f"{current_image} keeps serving" if current_image else "nothing is serving yet")
            + f" (kubectl logs job/{job_name}; delete the Job to retry)"
        )
        return Gate(
            current_image,
            st.false(applied, "MigrationFailed", message),
            degraded=st.true(st.DEGRADED, "MigrationFailed", message),
        )
    message = f"Job {job_name} is migrating the schema for {desired_image}"
    reason = "MigrationRunning"
    if pod_problem is not None:
        # Said now, not when the Job's deadline passes as a failure to migrate.
        message = (
            f"Job {job_name} cannot migrate the schema for {desired_image}: {pod_problem.message}"
        )
        reason = f"Migration{pod_problem.reason}"
    return Gate(
        current_image,
        st.Condition(applied, "False", reason, message, warning=pod_problem is not None),
        create_job=job == "Absent",
        poll=True,
    )
