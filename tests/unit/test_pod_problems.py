"""Why pods do not run, named in the TaskManager's conditions: a pod that cannot be scheduled,
an image that cannot be pulled, a container that crash-loops, for the API's rollout and for the
migration Job, instead of "RollingOut 0/2" or a failed migration at the Job's deadline."""

from __future__ import annotations

from typing import Any

import pytest

from taskmanager_operator.reconcile import migration_gate
from taskmanager_operator.reconcile.migration_gate import decide
from taskmanager_operator.reconcile.pods import JOB_NAME_LABEL, PodProblem, pod_problem
from taskmanager_operator.reconcile.reconciler import Reconciler
from taskmanager_operator.reconcile.status_writer import condition_events
from taskmanager_operator.settings import OperatorSettings
from tests.support.fake_kube import FakeKube, settle

NS = "test"
TOO_MANY_PODS = "0/3 nodes are available: 2 Too many pods, 1 node(s) had untolerated taint."


def pod(name: str, status: dict[str, Any], labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": labels or {}},
        "status": status,
    }


def add_pod(kube: FakeKube, manifest: dict[str, Any]) -> None:
    """A pod as its controller makes it and the scheduler or the kubelet then reports it."""
    kube.create({key: value for key, value in manifest.items() if key != "status"})
    kube.set_status("v1", "Pod", NS, manifest["metadata"]["name"], manifest["status"])


UNSCHEDULABLE = {
    "phase": "Pending",
    "conditions": [
        {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": TOO_MANY_PODS,
        }
    ],
}


def waiting(reason: str, message: str = "", **container: Any) -> dict[str, Any]:
    return {
        "phase": "Pending",
        "containerStatuses": [
            {"name": "api", "state": {"waiting": {"reason": reason, "message": message}}}
            | container
        ],
    }


def test_an_unschedulable_pod_is_named_with_the_schedulers_words() -> None:
    problem = pod_problem([pod("demo-api-1", UNSCHEDULABLE)])
    assert problem == PodProblem(
        "Unschedulable", f"pod demo-api-1 cannot be scheduled: {TOO_MANY_PODS}"
    )


def test_an_image_that_cannot_be_pulled_is_named() -> None:
    status = waiting("ImagePullBackOff", 'Back-off pulling image "example.invalid/api:1"')
    problem = pod_problem([pod("demo-api-1", status)])
    assert problem is not None
    assert problem.reason == "ImagePullBackOff"
    assert "demo-api-1" in problem.message
    assert "example.invalid/api:1" in problem.message


def test_an_image_the_node_does_not_have_under_pull_policy_never_is_named() -> None:
    message = 'Container image "localhost/api:1" is not present with pull policy of Never'
    problem = pod_problem([pod("demo-api-1", waiting("ErrImageNeverPull", message))])
    assert problem is not None
    assert problem.reason == "ErrImageNeverPull"
    assert message in problem.message


def test_a_crash_loop_says_the_exit_code_and_where_the_logs_are() -> None:
    status = waiting(
        "CrashLoopBackOff",
        "back-off 40s restarting failed container=api",
        lastState={"terminated": {"exitCode": 3, "reason": "Error"}},
        restartCount=4,
    )
    problem = pod_problem([pod("demo-api-1", status)])
    assert problem is not None
    assert problem.reason == "CrashLoopBackOff"
    assert "last exit code 3, Error, 4 restarts" in problem.message
    assert "kubectl logs demo-api-1 --previous" in problem.message


@pytest.mark.parametrize(
    "status",
    [
        pytest.param({"phase": "Pending"}, id="not-yet-scheduled"),
        pytest.param(waiting("ContainerCreating"), id="creating"),
        pytest.param({"phase": "Running", "containerStatuses": [{"name": "api"}]}, id="running"),
    ],
)
def test_pods_on_their_way_are_no_problem(status: dict[str, Any]) -> None:
    assert pod_problem([pod("demo-api-1", status)]) is None


def test_the_first_pod_by_name_is_picked_so_the_status_does_not_flap() -> None:
    pods = [
        pod("demo-api-b", waiting("ImagePullBackOff")),
        pod("demo-api-a", UNSCHEDULABLE),
    ]
    problem = pod_problem(pods)
    assert problem is not None
    assert problem.reason == "Unschedulable"
    assert problem == pod_problem(list(reversed(pods)))


def test_a_failed_job_says_why_and_what_its_pod_met() -> None:
    job = {
        "status": {
            "conditions": [
                {
                    "type": "Failed",
                    "status": "True",
                    "reason": "DeadlineExceeded",
                    "message": "Job was active longer than specified deadline",
                }
            ]
        }
    }
    gate = migration_gate.decide(
        "api:1",
        "api:2",
        "Failed",
        True,
        "demo-migrate-x",
        failure=migration_gate.job_failure(job),
        pod_problem=pod_problem([pod("demo-migrate-x-1", UNSCHEDULABLE)]),
    )
    assert gate.condition.reason == "MigrationFailed"
    assert "DeadlineExceeded: Job was active longer than specified deadline" in (
        gate.condition.message
    )
    assert "cannot be scheduled" in gate.condition.message


# -- the reconcile reads the pods while they matter ----------------------------------------------


def test_the_reconcile_names_a_stuck_migration_then_a_stuck_rollout() -> None:
    kube = FakeKube()
    reconciler = Reconciler(kube, OperatorSettings())
    kube.create_taskmanager(NS, "demo", {})

    def conditions() -> dict[str, dict[str, Any]]:
        reconciler.reconcile(NS, "demo")
        body = kube.get_taskmanager(NS, "demo")
        assert body is not None
        return {c["type"]: c for c in body["status"]["conditions"]}

    conditions()
    # The database and Redis come up; the migration Job is made, and its pod cannot be placed.
    for workload in ("StatefulSet", "Deployment"):
        for obj in kube.objects("apps/v1", workload, NS):
            replicas = obj["spec"].get("replicas", 1)
            status = {"observedGeneration": 1, "replicas": replicas, "readyReplicas": replicas}
            kube.set_status("apps/v1", workload, NS, obj["metadata"]["name"], status)
    conditions()
    (job,) = kube.objects("batch/v1", "Job", NS)
    job_name = job["metadata"]["name"]
    add_pod(kube, pod(f"{job_name}-1", UNSCHEDULABLE, {JOB_NAME_LABEL: job_name}))

    migrations = conditions()["MigrationsApplied"]
    assert migrations["status"] == "False"
    assert migrations["reason"] == "MigrationUnschedulable"
    assert TOO_MANY_PODS in migrations["message"]

    # The migration completes; the API's pods cannot pull their image.
    kube.delete("v1", "Pod", NS, f"{job_name}-1")
    settle(kube, NS)
    conditions()
    deployment = kube.get("apps/v1", "Deployment", NS, "demo-api")
    assert deployment is not None
    labels = deployment["spec"]["selector"]["matchLabels"]
    add_pod(kube, pod("demo-api-1", waiting("ImagePullBackOff", "no such image"), labels))
    seen = conditions()
    assert seen["Progressing"]["reason"] == "ImagePullBackOff"
    assert "pod demo-api-1" in seen["Progressing"]["message"]
    assert seen["Ready"]["reason"] == "ImagePullBackOff"

    settle(kube, NS)
    assert conditions()["Ready"]["status"] == "True", "pods are not read once rolled out"


def test_a_pod_that_cannot_run_is_a_warning_event_once_not_only_a_condition() -> None:
    problem = PodProblem("ErrImageNeverPull", "pod demo-migrate-x: ErrImageNeverPull: not present")
    running = decide(None, "api:2", "Running", database_ready=True, job_name="demo-migrate-x")
    stuck = decide(None, "api:2", "Running", True, "demo-migrate-x", pod_problem=problem).condition
    previous = [{"type": stuck.type, "status": "False", "reason": running.condition.reason}]
    (event,) = condition_events(previous, [stuck])
    assert (event.type, event.reason) == ("Warning", "MigrationErrImageNeverPull")
    assert problem.message in event.message
    # Still stuck on the next reconcile: the condition stays, no second event.
    told = [{"type": stuck.type, "status": stuck.status, "reason": stuck.reason}]
    assert condition_events(told, [stuck]) == []
    # A migration that runs as it should is no warning.
    assert condition_events([], [running.condition]) == []
