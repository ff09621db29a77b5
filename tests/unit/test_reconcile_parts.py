"""The reconcile's pure parts on their own: the migration gate's table, the API's rollout turned
into conditions, and the phase. tests/unit/test_reconcile.py runs them together."""

from __future__ import annotations

from typing import Any

import pytest

from taskmanager_operator import status as st
from taskmanager_operator.reconcile import migration_gate, observe
from taskmanager_operator.reconcile.migration_gate import JobState

OLD = "registry.example/taskmanager-api:1.0.0"
NEW = "registry.example/taskmanager-api:1.1.0"
JOB = "demo-migrate-abc"


# (current image, Job state, database ready) -> (image served, MigrationsApplied reason,
# create the Job, poll, Degraded)
GATE_TABLE: list[tuple[tuple[str | None, JobState, bool], tuple[str | None, str, bool, bool, bool]]]
GATE_TABLE = [
    ((NEW, "Absent", True), (NEW, "UpToDate", False, False, False)),
    ((NEW, "Failed", False), (NEW, "UpToDate", False, False, False)),
    ((OLD, "Absent", False), (OLD, "WaitingForDatabase", False, False, False)),
    ((None, "Absent", False), (None, "WaitingForDatabase", False, False, False)),
    ((OLD, "Absent", True), (OLD, "MigrationRunning", True, True, False)),
    ((None, "Absent", True), (None, "MigrationRunning", True, True, False)),
    ((OLD, "Running", True), (OLD, "MigrationRunning", False, True, False)),
    ((OLD, "Complete", True), (NEW, "MigrationSucceeded", False, False, False)),
    ((None, "Complete", True), (NEW, "MigrationSucceeded", False, False, False)),
    ((OLD, "Failed", True), (OLD, "MigrationFailed", False, False, True)),
    ((None, "Failed", True), (None, "MigrationFailed", False, False, True)),
]


@pytest.mark.parametrize(("given", "expected"), GATE_TABLE)
def test_the_migration_gate(
    given: tuple[str | None, JobState, bool], expected: tuple[str | None, str, bool, bool, bool]
) -> None:
    current, job, database_ready = given
    serve, reason, create, poll, degraded = expected
    gate = migration_gate.decide(current, NEW, job, database_ready, JOB)
    assert gate.serve == serve
    assert (gate.condition.type, gate.condition.reason) == (st.MIGRATIONS_APPLIED, reason)
    assert gate.condition.status == ("True" if serve == NEW else "False")
    assert (gate.create_job, gate.poll, gate.degraded is not None) == (create, poll, degraded)
    # The Job's state is read only when it decides something.
    assert migration_gate.job_matters(current, NEW, database_ready) == (
        reason.startswith("Migration")
    )


def test_a_failed_migration_says_what_serves_and_how_to_retry() -> None:
    gate = migration_gate.decide(OLD, NEW, "Failed", True, JOB)
    assert gate.degraded == st.true(st.DEGRADED, "MigrationFailed", gate.condition.message)
    assert f"{OLD} keeps serving" in gate.condition.message
    assert f"kubectl logs job/{JOB}" in gate.condition.message
    nothing = migration_gate.decide(None, NEW, "Failed", True, JOB)
    assert "nothing is serving yet" in nothing.condition.message


@pytest.mark.parametrize(
    ("conditions", "state"),
    [
        (None, "Absent"),
        ([], "Running"),
        ([{"type": "Complete", "status": "False"}], "Running"),
        ([{"type": "Complete", "status": "True"}], "Complete"),
        ([{"type": "Failed", "status": "True"}], "Failed"),
        ([{"type": "Suspended", "status": "True"}], "Running"),
    ],
)
def test_the_job_state(conditions: list[dict[str, str]] | None, state: str) -> None:
    job = None if conditions is None else {"status": {"conditions": conditions}}
    assert migration_gate.job_state(job) == state


def deployment(
    wanted: int, ready: int, updated: int, total: int, *, generation: int = 1, seen: int = 1
) -> dict[str, Any]:
    return {
        "metadata": {"generation": generation},
        "spec": {"replicas": wanted},
        "status": {
            "observedGeneration": seen,
            "readyReplicas": ready,
            "updatedReplicas": updated,
            "replicas": total,
        },
    }


def reasons(observation: observe.ApiObservation) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in observation.conditions}


def test_no_deployment_waits_for_the_migration() -> None:
    seen = observe.observe_api(None, None, NEW, "1.1.0", None)
    assert reasons(seen) == {
        "Progressing": ("True", "WaitingForMigration"),
        "Ready": ("False", "WaitingForMigration"),
    }
    assert (seen.replicas, seen.version, seen.poll) == (None, None, False)


def test_a_rolled_out_deployment_on_the_desired_image_is_ready() -> None:
    seen = observe.observe_api(deployment(2, 2, 2, 2), NEW, NEW, "1.1.0", None)
    assert reasons(seen) == {
        "Progressing": ("False", "RolloutComplete"),
        "Ready": ("True", "Ready"),
        "Degraded": ("False", "AsExpected"),
    }
    assert (seen.replicas, seen.ready_replicas, seen.version, seen.poll) == (2, 2, "1.1.0", False)


@pytest.mark.parametrize(
    "pods",
    [
        deployment(2, 1, 2, 2),  # a pod not ready
        deployment(2, 2, 1, 3),  # old and new pods side by side
        deployment(2, 2, 2, 2, generation=2, seen=1),  # the new spec not seen yet
    ],
)
def test_a_rollout_in_progress_polls(pods: dict[str, Any]) -> None:
    seen = observe.observe_api(pods, NEW, NEW, "1.1.0", None)
    assert reasons(seen)["Progressing"] == ("True", "RollingOut")
    assert reasons(seen)["Ready"] == ("False", "RollingOut")
    assert (seen.version, seen.poll) == (None, True)


def test_the_old_image_rolled_out_reports_its_own_version() -> None:
    seen = observe.observe_api(deployment(1, 1, 1, 1), OLD, NEW, "1.1.0", None)
    assert reasons(seen)["Ready"] == ("False", "RollingOut")
    assert (seen.version, seen.poll) == ("1.0.0", True)


def test_degraded_takes_ready_and_is_not_cleared() -> None:
    seen = observe.observe_api(deployment(1, 1, 1, 1), OLD, NEW, "1.1.0", "MigrationFailed")
    assert reasons(seen) == {
        "Progressing": ("True", "RollingOut"),
        "Ready": ("False", "MigrationFailed"),
    }


@pytest.mark.parametrize(
    ("image_ref", "version"),
    [(NEW, "1.1.0"), ("localhost:5000/api", None), ("localhost:5000/api:2", "2"), (None, None)],
)
def test_version_of(image_ref: str | None, version: str | None) -> None:
    assert observe.version_of(image_ref) == version


@pytest.mark.parametrize(
    ("conditions", "phase"),
    [
        ([], "Pending"),
        ([st.true(st.PROGRESSING, "RollingOut")], "Progressing"),
        ([st.true(st.PROGRESSING, "RollingOut"), st.true(st.READY, "Ready")], "Ready"),
        ([st.true(st.READY, "Ready"), st.true(st.DEGRADED, "MigrationFailed")], "Degraded"),
        ([st.false(st.DEGRADED, "AsExpected"), st.false(st.READY, "RollingOut")], "Pending"),
    ],
)
def test_the_phase(conditions: list[st.Condition], phase: str) -> None:
    assert observe.phase(conditions) == phase


def test_paused_keeps_the_other_conditions_after_its_own() -> None:
    previous = [
        {"type": "Paused", "status": "False", "reason": "Resumed"},
        {"type": "Ready", "status": "True", "reason": "Ready", "message": "1/1 API pods ready"},
    ]
    assert observe.paused(previous)[1:] == [st.true(st.READY, "Ready", "1/1 API pods ready")]
    assert observe.paused(previous)[0].type == st.PAUSED
