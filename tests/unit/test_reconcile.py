"""Every path of the reconcile, against the API server in memory (tests/support/fake_kube.py).

Each test asserts what a kubectl user would notice: the phase and the conditions with their
reasons, the events, which children exist and what they run, and that a reconcile with nothing to
do writes nothing. tests/cluster/test_operator.py proves the same paths against a real cluster;
these run in milliseconds.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from taskmanager_api.core.redis_policy import policy_warning
from taskmanager_operator.api.v1alpha1 import KIND
from taskmanager_operator.builders.migration import MIGRATION_IMAGE_ANNOTATION
from taskmanager_operator.k8s import Object
from taskmanager_operator.reconcile import Outcome, Reconciler
from taskmanager_operator.redis_probe import PolicyReading
from taskmanager_operator.settings import FIELD_MANAGER, OperatorSettings
from tests.support.fake_kube import (
    TASKMANAGER_API_VERSION,
    FakeKube,
    events_of,
    finish_job,
    settle,
)

NS = "test"
SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "taskmanager.yaml"
REPOSITORY = "registry.example/taskmanager-api"
EXTERNAL = {
    "database": {"external": {"urlSecretRef": {"name": "db", "key": "url"}}},
    "redis": {"external": {"urlSecretRef": {"name": "cache", "key": "url"}}},
}
REDIS_URL = "redis://:hunter2@cache.example:6379/0"
# The children of a TaskManager `demo` with managed services, once Ready (no HPA, no Ingress).
DEMO_CHILDREN = {
    "Secret demo-secrets",
    "ServiceAccount demo-api",
    "ConfigMap demo-config",
    "StatefulSet demo-postgres",
    "Service demo-postgres",
    "Service demo-postgres-headless",  # the StatefulSet's governing Service
    "Deployment demo-redis",
    "Service demo-redis",
    "Job demo-migrate-",  # one per image; the digest is the builder's business
    "Deployment demo-api",
    "Service demo-api",
    "PodDisruptionBudget demo-api",
    "NetworkPolicy demo-api",
    "NetworkPolicy demo-migrate",
    "NetworkPolicy demo-postgres",
    "NetworkPolicy demo-redis",
    "ConfigMap demo-dashboard",  # Grafana's sidecar reads it; no prometheus-operator here
}

# (status, reason) per condition of a TaskManager with managed services, once Ready.
READY_CONDITIONS = {
    "SecretsReady": ("True", "Found"),
    "DatabaseReady": ("True", "Ready"),
    "CacheReady": ("True", "Ready"),
    "CacheEvictionSafe": ("True", "Managed"),
    "MigrationsApplied": ("True", "UpToDate"),
    "Progressing": ("False", "RolloutComplete"),
    "Ready": ("True", "Ready"),
    "Degraded": ("False", "AsExpected"),
    "MonitoringReady": ("False", "PrometheusOperatorNotInstalled"),
}


@dataclass
class FakeProbe:
    """An external Redis's maxmemory-policy, as the test sets it."""

    reading: PolicyReading = field(default_factory=lambda: PolicyReading(policy="noeviction"))
    urls: list[str] = field(default_factory=list)

    def __call__(self, url: str) -> PolicyReading:
        self.urls.append(url)
        return self.reading


@dataclass
class Cluster:
    """The fake API server, the reconciler on it, and a kubectl-like view of a TaskManager."""

    kube: FakeKube
    probe: FakeProbe
    reconciler: Reconciler

    def reconcile(self, name: str) -> Outcome:
        """One reconcile, then its events posted, as the controller does."""
        outcome = self.reconciler.reconcile(NS, name)
        involved = {"namespace": NS, "name": name, "uid": outcome.uid or ""}
        for event in outcome.events:
            self.kube.post_event(involved, event.type, event.reason, event.message)
        return outcome

    def bring_up(self, name: str) -> Object:
        """Reconcile, letting the workloads come up between reconciles, until Ready."""
        for _ in range(6):
            self.reconcile(name)
            if self.status(name).get("phase") == "Ready":
                return self.status(name)
            settle(self.kube, NS)
        raise AssertionError(f"{name} never got Ready: {self.conditions(name)}")

    def status(self, name: str) -> Object:
        body = self.kube.get_taskmanager(NS, name)
        assert body is not None
        return dict(body.get("status") or {})

    def phase(self, name: str) -> str:
        return str(self.status(name).get("phase"))

    def condition(self, name: str, kind: str) -> Object:
        return next(c for c in self.status(name)["conditions"] if c["type"] == kind)

    def conditions(self, name: str) -> dict[str, tuple[str, str]]:
        """{type: (status, reason)}, the columns of `kubectl describe`."""
        return {c["type"]: (c["status"], c["reason"]) for c in self.status(name)["conditions"]}

    def children(self) -> set[str]:
        """ "Kind name" of every object but TaskManagers and the user's Secrets; Jobs unnumbered."""
        return {
            "Job demo-migrate-" if name.startswith("Job demo-migrate-") else name
            for name in self.kube.names(NS)
            if not name.startswith(KIND) and name not in {"Secret db", "Secret cache"}
        }

    def child(self, api_version: str, kind: str, name: str) -> Object:
        found = self.kube.get(api_version, kind, NS, name)
        assert found is not None, f"no {kind} {name}"
        return found

    def deployment(self, name: str) -> Object:
        return self.child("apps/v1", "Deployment", name)

    def generated_secrets(self, name: str) -> Object:
        return dict(self.child("v1", "Secret", f"{name}-secrets")["data"])

    def api_image(self, name: str) -> str:
        return str(
            self.deployment(f"{name}-api")["spec"]["template"]["spec"]["containers"][0]["image"]
        )

    def jobs(self) -> list[Object]:
        return self.kube.objects("batch/v1", "Job", NS)

    def patch_spec(self, name: str, spec: dict[str, Any]) -> None:
        self.kube.patch(TASKMANAGER_API_VERSION, KIND, NS, name, {"spec": spec})

    def create_external_secrets(self) -> None:
        urls = {"db": "postgresql+asyncpg://u:p@db:5432/t", "cache": REDIS_URL}
        for name, url in urls.items():
            data = {"url": base64.b64encode(url.encode()).decode()}
            self.kube.create(
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": name, "namespace": NS},
                    "data": data,
                }
            )


@pytest.fixture
def cluster() -> Cluster:
    kube, probe = FakeKube(), FakeProbe()
    settings = OperatorSettings(image_repository=REPOSITORY)
    return Cluster(kube, probe, Reconciler(kube, settings, redis_probe=probe))


def ready_demo(cluster: Cluster, **spec: Any) -> Object:
    sample = yaml.safe_load(SAMPLE.read_text())
    cluster.kube.create_taskmanager(NS, "demo", {**sample["spec"], **spec})
    status = cluster.bring_up("demo")
    cluster.kube.writes.clear()
    cluster.kube.status_patches.clear()
    cluster.kube.events.clear()
    return status


def operator_owns_replicas(deployment: Object) -> bool:
    ours = [
        entry
        for entry in deployment["metadata"]["managedFields"]
        if entry["manager"] == FIELD_MANAGER and entry["operation"] == "Apply"
    ]
    return "f:replicas" in ours[0]["fieldsV1"].get("f:spec", {})


# -- fresh ---------------------------------------------------------------------------------------


def test_a_fresh_taskmanager_waits_for_its_database_then_its_migration(cluster: Cluster) -> None:
    sample = yaml.safe_load(SAMPLE.read_text())
    cluster.kube.create_taskmanager(NS, "demo", sample["spec"])

    cluster.reconcile("demo")
    assert cluster.phase("demo") == "Progressing"
    assert cluster.conditions("demo")["DatabaseReady"] == ("False", "NotReady")
    assert cluster.conditions("demo")["MigrationsApplied"] == ("False", "WaitingForDatabase")
    assert cluster.conditions("demo")["Ready"] == ("False", "WaitingForMigration")
    assert cluster.children() == DEMO_CHILDREN - {"Job demo-migrate-", "Deployment demo-api"}
    (created,) = [e for e in cluster.kube.events if e["reason"] == "Created"]
    assert created["message"].startswith("Created Secret demo-secrets, ConfigMap demo-config, ")
    named = created["message"].removeprefix("Created ").split(", ")
    assert sorted(named) == sorted(cluster.children()), "one event names every child"

    settle(cluster.kube, NS)  # PostgreSQL and Redis are up
    outcome = cluster.reconcile("demo")
    assert cluster.conditions("demo")["MigrationsApplied"] == ("False", "MigrationRunning")
    assert outcome.requeue_after == cluster.reconciler.settings.progress_poll_seconds
    assert cluster.children() == DEMO_CHILDREN - {"Deployment demo-api"}, "no API before the schema"

    settle(cluster.kube, NS)  # the migration Job completes
    cluster.reconcile("demo")
    assert cluster.conditions("demo")["MigrationsApplied"] == ("True", "MigrationSucceeded")
    assert cluster.conditions("demo")["Progressing"] == ("True", "RollingOut")
    assert cluster.api_image("demo") == f"{REPOSITORY}:0.1.0"

    settle(cluster.kube, NS)  # the API pods are ready
    cluster.reconcile("demo")
    assert cluster.phase("demo") == "Ready"


def test_the_sample_reaches_ready_with_every_child(cluster: Cluster) -> None:
    status = ready_demo(cluster)

    assert (status["replicas"], status["readyReplicas"], status["version"]) == (2, 2, "0.1.0")
    assert status["endpoint"] == f"http://demo-api.{NS}.svc:80"
    assert cluster.conditions("demo") == READY_CONDITIONS
    assert cluster.probe.urls == [], "the managed Redis is not probed"
    assert cluster.children() == DEMO_CHILDREN, "no HPA while autoscaling is off"
    tm_uid = cluster.child(TASKMANAGER_API_VERSION, KIND, "demo")["metadata"]["uid"]
    for key in cluster.kube.resource_versions():
        child = cluster.kube.get(*key)
        assert child is not None
        if child["kind"] != KIND:
            owners = child["metadata"]["ownerReferences"]
            assert [(o["uid"], o["controller"]) for o in owners] == [(tm_uid, True)], key
            assert child["metadata"]["labels"]["app.kubernetes.io/instance"] == "demo", key


def test_converging_posts_an_event_per_reconcile_not_per_child(cluster: Cluster) -> None:
    """What `kubectl describe tm` lists, and the Event POSTs it costs: one per reconcile that
    created children, naming them all, rather than one per child (15 on the first reconcile)."""
    sample = yaml.safe_load(SAMPLE.read_text())
    cluster.kube.create_taskmanager(NS, "demo", sample["spec"])

    cluster.reconcile("demo")
    assert events_of(cluster.kube, "demo") == [
        ("Normal", "Created"),
        ("Warning", "PrometheusOperatorNotInstalled"),  # the fake serves no prometheus-operator
    ]

    cluster.kube.events.clear()
    settle(cluster.kube, NS)
    cluster.bring_up("demo")
    messages = [(e["reason"], e["message"]) for e in cluster.kube.events]
    assert [reason for reason, _ in messages] == ["Created", "Created", "Ready"]
    assert messages[0][1].startswith("Created Job demo-migrate-")
    assert messages[1][1] == "Created Deployment demo-api"


def test_becoming_ready_posts_one_ready_event(cluster: Cluster) -> None:
    sample = yaml.safe_load(SAMPLE.read_text())
    cluster.kube.create_taskmanager(NS, "demo", sample["spec"])
    cluster.bring_up("demo")
    cluster.reconcile("demo")
    ready = [e for e in cluster.kube.events if e["reason"] == "Ready"]
    assert [(e["type"], e["message"]) for e in ready] == [("Normal", "2/2 API pods ready")]


# -- half-built ----------------------------------------------------------------------------------


def test_a_half_built_taskmanager_gets_only_what_is_missing(cluster: Cluster) -> None:
    ready_demo(cluster)
    secrets = cluster.generated_secrets("demo")
    cluster.kube.delete("v1", "Service", NS, "demo-api")
    cluster.kube.delete("v1", "ConfigMap", NS, "demo-config")

    cluster.reconcile("demo")

    assert sorted(cluster.kube.writes) == ["apply ConfigMap demo-config", "apply Service demo-api"]
    assert cluster.children() == DEMO_CHILDREN
    assert [(e["type"], e["reason"], e["message"]) for e in cluster.kube.events] == [
        ("Normal", "Created", "Created ConfigMap demo-config, Service demo-api")
    ]
    assert cluster.generated_secrets("demo") == secrets
    assert cluster.phase("demo") == "Ready"


def test_a_restarted_operator_carries_on_where_the_last_one_stopped(cluster: Cluster) -> None:
    sample = yaml.safe_load(SAMPLE.read_text())
    cluster.kube.create_taskmanager(NS, "demo", sample["spec"])
    cluster.reconcile("demo")
    settle(cluster.kube, NS)
    secrets = cluster.generated_secrets("demo")

    # Nothing is remembered between runs: a new Reconciler reads everything from the server.
    cluster.reconciler = Reconciler(
        cluster.kube, cluster.reconciler.settings, redis_probe=cluster.probe
    )
    cluster.bring_up("demo")

    assert cluster.generated_secrets("demo") == secrets, "generated once"
    assert len(cluster.jobs()) == 1, "one migration per image"


def test_drift_is_put_back(cluster: Cluster) -> None:
    ready_demo(cluster)
    cluster.kube.patch(
        "apps/v1", "Deployment", NS, "demo-api", {"spec": {"replicas": 5}}, manager="someone"
    )
    cluster.kube.patch(
        "v1",
        "ConfigMap",
        NS,
        "demo-config",
        {"data": {"TASKMANAGER_LOG_LEVEL": "DEBUG"}},
        manager="someone",
    )

    cluster.reconcile("demo")

    assert cluster.deployment("demo-api")["spec"]["replicas"] == 2
    config = cluster.child("v1", "ConfigMap", "demo-config")
    assert config["data"]["TASKMANAGER_LOG_LEVEL"] == "INFO"


# -- migrations ----------------------------------------------------------------------------------


def test_an_upgrade_waits_for_its_migration_while_the_old_version_serves(cluster: Cluster) -> None:
    ready_demo(cluster)
    cluster.patch_spec("demo", {"version": "0.2.0"})

    outcome = cluster.reconcile("demo")

    job = next(
        j
        for j in cluster.jobs()
        if j["metadata"]["annotations"][MIGRATION_IMAGE_ANNOTATION].endswith(":0.2.0")
    )
    assert cluster.conditions("demo")["MigrationsApplied"] == ("False", "MigrationRunning")
    assert job["metadata"]["name"] in cluster.condition("demo", "MigrationsApplied")["message"]
    assert cluster.api_image("demo") == f"{REPOSITORY}:0.1.0", "the old version keeps serving"
    assert cluster.phase("demo") == "Progressing"
    assert cluster.status("demo")["version"] == "0.1.0"
    assert outcome.requeue_after == cluster.reconciler.settings.progress_poll_seconds
    cluster.kube.writes.clear()
    cluster.reconcile("demo")
    assert cluster.kube.writes == [], "a running Job is left alone"


def test_a_completed_migration_moves_the_api_to_the_new_version(cluster: Cluster) -> None:
    ready_demo(cluster)
    cluster.patch_spec("demo", {"version": "0.2.0"})
    cluster.reconcile("demo")
    settle(cluster.kube, NS)

    cluster.reconcile("demo")

    assert cluster.conditions("demo")["MigrationsApplied"] == ("True", "MigrationSucceeded")
    assert cluster.api_image("demo") == f"{REPOSITORY}:0.2.0"
    updated = [e["message"] for e in cluster.kube.events if e["reason"] == "Updated"]
    # One per reconcile: every child's version label with the Job, then the API's new image.
    assert len(updated) == 2, updated
    assert updated[-1] == "Updated Deployment demo-api"
    assert cluster.status("demo")["version"] == "0.1.0", "until the new pods are ready"
    settle(cluster.kube, NS)
    cluster.reconcile("demo")
    assert (cluster.phase("demo"), cluster.status("demo")["version"]) == ("Ready", "0.2.0")
    images = {j["metadata"]["annotations"][MIGRATION_IMAGE_ANNOTATION] for j in cluster.jobs()}
    assert images == {f"{REPOSITORY}:0.1.0", f"{REPOSITORY}:0.2.0"}


def test_a_failed_migration_keeps_the_old_version_and_says_why(cluster: Cluster) -> None:
    ready_demo(cluster, image="example.invalid/taskmanager-api:0.1.0")
    cluster.patch_spec("demo", {"image": "example.invalid/taskmanager-api:fails"})
    cluster.reconcile("demo")
    settle(cluster.kube, NS)  # the local cluster fails pods of this image

    cluster.reconcile("demo")

    assert cluster.phase("demo") == "Degraded"
    assert cluster.conditions("demo")["MigrationsApplied"] == ("False", "MigrationFailed")
    assert cluster.conditions("demo")["Degraded"] == ("True", "MigrationFailed")
    assert cluster.conditions("demo")["Ready"] == ("False", "MigrationFailed")
    message = cluster.condition("demo", "Degraded")["message"]
    assert "example.invalid/taskmanager-api:0.1.0 keeps serving" in message
    assert "delete the Job to retry" in message
    assert cluster.api_image("demo") == "example.invalid/taskmanager-api:0.1.0"
    assert cluster.status("demo")["readyReplicas"] == 2
    assert events_of(cluster.kube, "demo").count(("Warning", "MigrationFailed")) == 1
    cluster.reconcile("demo")
    assert events_of(cluster.kube, "demo").count(("Warning", "MigrationFailed")) == 1, "once"


def test_deleting_a_failed_migration_job_retries_it(cluster: Cluster) -> None:
    ready_demo(cluster)
    cluster.patch_spec("demo", {"version": "0.2.0"})
    cluster.reconcile("demo")
    (job,) = [
        j
        for j in cluster.jobs()
        if j["metadata"]["annotations"][MIGRATION_IMAGE_ANNOTATION].endswith(":0.2.0")
    ]
    finish_job(cluster.kube, NS, job["metadata"]["name"], "Failed")
    cluster.reconcile("demo")
    assert cluster.phase("demo") == "Degraded"

    cluster.kube.delete("batch/v1", "Job", NS, job["metadata"]["name"])
    cluster.reconcile("demo")

    assert cluster.conditions("demo")["MigrationsApplied"] == ("False", "MigrationRunning")
    assert cluster.conditions("demo")["Degraded"] == ("False", "AsExpected")
    assert cluster.kube.get("batch/v1", "Job", NS, job["metadata"]["name"]) is not None
    cluster.bring_up("demo")
    assert cluster.api_image("demo") == f"{REPOSITORY}:0.2.0"


# -- paused --------------------------------------------------------------------------------------


def test_paused_stops_every_write_to_the_children_and_says_so(cluster: Cluster) -> None:
    ready_demo(cluster)
    cluster.patch_spec("demo", {"paused": True})

    cluster.reconcile("demo")
    assert cluster.phase("demo") == "Paused"
    assert cluster.conditions("demo")["Paused"] == ("True", "Paused")
    assert cluster.conditions("demo")["Ready"] == ("True", "Ready"), "the rest is kept as it was"
    assert events_of(cluster.kube, "demo") == [("Normal", "Paused")]
    assert cluster.kube.writes == ["status TaskManager demo"]

    cluster.kube.writes.clear()
    cluster.kube.delete("v1", "Service", NS, "demo-api")
    cluster.reconcile("demo")
    assert cluster.kube.writes == []
    assert "Service demo-api" not in cluster.children()

    cluster.patch_spec("demo", {"paused": False})
    cluster.reconcile("demo")
    assert cluster.phase("demo") == "Ready"
    assert "Service demo-api" in cluster.children()
    assert "Paused" not in cluster.conditions("demo")


# -- a child the API server refuses ---------------------------------------------------------------

QUOTA = 'services "demo-api" is forbidden: exceeded quota: no-services, requested: services=1'


def test_a_refused_child_is_named_in_the_status_and_an_event_and_heals(cluster: Cluster) -> None:
    keys_before = ready_demo(cluster)
    cluster.kube.refusals["Service"] = (403, QUOTA)

    outcome = cluster.reconcile("demo")

    assert cluster.phase("demo") == "Degraded"
    assert cluster.conditions("demo")["Degraded"] == ("True", "ApplyFailed")
    assert cluster.conditions("demo")["Ready"] == ("False", "ApplyFailed")
    message = cluster.condition("demo", "Degraded")["message"]
    assert message.startswith("Service "), message
    assert QUOTA in message, message
    # What the last full reconcile observed stays: the database is still ready, the pods counted.
    assert cluster.conditions("demo")["DatabaseReady"] == ("True", "Ready")
    assert cluster.status("demo")["readyReplicas"] == keys_before["readyReplicas"]
    assert outcome.retry_reason is not None, "retried with backoff"
    assert QUOTA in outcome.retry_reason
    (warning,) = [e for e in cluster.kube.events if e["type"] == "Warning"]
    assert warning["reason"] == "ApplyFailed"
    assert QUOTA in warning["message"]
    cluster.reconcile("demo")
    assert events_of(cluster.kube, "demo").count(("Warning", "ApplyFailed")) == 1, "one event"

    del cluster.kube.refusals["Service"]
    cluster.bring_up("demo")
    assert cluster.conditions("demo") == READY_CONDITIONS


# -- a missing Secret ----------------------------------------------------------------------------


def test_a_missing_secret_is_reported_and_heals_when_it_appears(cluster: Cluster) -> None:
    cluster.kube.create_taskmanager(NS, "waiting", EXTERNAL)

    outcome = cluster.reconcile("waiting")

    assert cluster.phase("waiting") == "Degraded"
    assert cluster.conditions("waiting")["SecretsReady"] == ("False", "SecretNotFound")
    ready = cluster.condition("waiting", "Ready")
    assert ready["status"] == "False"
    assert "spec.database.external.urlSecretRef" in ready["message"]
    assert "'db' not found" in ready["message"]
    assert outcome.retry_reason is not None, "retried with backoff"
    (warning,) = [e for e in cluster.kube.events if e["type"] == "Warning"]
    assert warning["reason"] == "SecretNotFound"
    assert "'db'" in warning["message"]
    assert cluster.kube.names(NS) == {"TaskManager waiting"}, "nothing is built without it"
    cluster.kube.writes.clear()
    cluster.reconcile("waiting")
    assert cluster.kube.writes == [], "a retry that finds the same writes nothing"

    cluster.create_external_secrets()
    cluster.bring_up("waiting")
    assert cluster.conditions("waiting")["SecretsReady"] == ("True", "Found")
    assert "StatefulSet waiting-postgres" not in cluster.kube.names(NS)


def test_a_secret_without_the_key_is_named(cluster: Cluster) -> None:
    cluster.create_external_secrets()
    cluster.kube.create_taskmanager(
        NS, "waiting", {**EXTERNAL, "auth": {"signingKeySecretRef": {"name": "db", "key": "jwt"}}}
    )
    cluster.reconcile("waiting")
    assert cluster.conditions("waiting")["SecretsReady"] == ("False", "SecretKeyNotFound")
    assert "has no key 'jwt'" in cluster.condition("waiting", "SecretsReady")["message"]


# -- autoscaling ---------------------------------------------------------------------------------


def test_autoscaling_on_hands_the_replicas_to_the_hpa_without_a_dip(cluster: Cluster) -> None:
    ready_demo(cluster)
    cluster.patch_spec(
        "demo", {"autoscaling": {"enabled": True, "minReplicas": 3, "maxReplicas": 6}}
    )

    cluster.reconcile("demo")

    hpa = cluster.child("autoscaling/v2", "HorizontalPodAutoscaler", "demo-api")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 6)
    deployment = cluster.deployment("demo-api")
    assert deployment["spec"]["replicas"] == 2, "not the API server's default of 1"
    assert not operator_owns_replicas(deployment)
    # The HPA scales up; the operator does not fight it.
    cluster.kube.patch(
        "apps/v1", "Deployment", NS, "demo-api", {"spec": {"replicas": 3}}, manager="hpa"
    )
    settle(cluster.kube, NS)
    cluster.kube.writes.clear()
    cluster.reconcile("demo")
    assert cluster.deployment("demo-api")["spec"]["replicas"] == 3
    assert not [w for w in cluster.kube.writes if "Deployment" in w]
    assert cluster.phase("demo") == "Ready"


def test_autoscaling_off_deletes_the_hpa_and_owns_the_replicas_again(cluster: Cluster) -> None:
    ready_demo(cluster, autoscaling={"enabled": True, "minReplicas": 3, "maxReplicas": 6})
    cluster.kube.patch(
        "apps/v1", "Deployment", NS, "demo-api", {"spec": {"replicas": 4}}, manager="hpa"
    )

    cluster.patch_spec("demo", {"autoscaling": {"enabled": False}, "replicas": 2})
    cluster.reconcile("demo")

    assert cluster.kube.get("autoscaling/v2", "HorizontalPodAutoscaler", NS, "demo-api") is None
    deleted = [e["message"] for e in cluster.kube.events if e["reason"] == "Deleted"]
    assert deleted == ["Deleted HorizontalPodAutoscaler demo-api"]
    deployment = cluster.deployment("demo-api")
    assert deployment["spec"]["replicas"] == 2
    assert operator_owns_replicas(deployment)
    cluster.bring_up("demo")


def test_scaling_the_taskmanager_scales_the_api(cluster: Cluster) -> None:
    ready_demo(cluster)
    cluster.patch_spec("demo", {"replicas": 3})
    cluster.bring_up("demo")
    assert cluster.deployment("demo-api")["spec"]["replicas"] == 3
    assert cluster.status("demo")["readyReplicas"] == 3


# -- nothing changed -----------------------------------------------------------------------------


def test_a_reconcile_that_changes_nothing_writes_nothing(cluster: Cluster) -> None:
    ready_demo(cluster)
    # An annotation is a change the operator sees (an event) but has nothing to act on.
    cluster.kube.patch(
        TASKMANAGER_API_VERSION, KIND, NS, "demo", {"metadata": {"annotations": {"poke": "1"}}}
    )
    before = cluster.kube.resource_versions()

    outcome = cluster.reconcile("demo")

    assert cluster.kube.writes == []
    assert cluster.kube.status_patches == [], "not even a patch that would change nothing"
    assert cluster.kube.resource_versions() == before
    assert outcome.events == []
    assert outcome.requeue_after is None, "the next look is the periodic resync"


def test_a_deleted_taskmanager_is_forgotten(cluster: Cluster) -> None:
    ready_demo(cluster)
    cluster.kube.delete(TASKMANAGER_API_VERSION, KIND, NS, "demo")
    outcome = cluster.reconcile("demo")
    assert not outcome.exists
    assert cluster.kube.writes == []


# -- an external Redis's eviction policy ---------------------------------------------------------


def external_ready(cluster: Cluster, reading: PolicyReading) -> None:
    cluster.probe.reading = reading
    cluster.create_external_secrets()
    cluster.kube.create_taskmanager(NS, "evicting", EXTERNAL)
    cluster.bring_up("evicting")


def test_an_external_redis_that_evicts_revocations_is_warned_about_but_serves(
    cluster: Cluster,
) -> None:
    external_ready(cluster, PolicyReading(policy="allkeys-lru"))

    unsafe = cluster.condition("evicting", "CacheEvictionSafe")
    assert (unsafe["status"], unsafe["reason"]) == ("False", "EvictsRevocations")
    assert unsafe["message"] == policy_warning("allkeys-lru")
    assert "hunter2" not in unsafe["message"]
    assert set(cluster.probe.urls) == {REDIS_URL}, "the probe gets the decoded URL"
    assert cluster.phase("evicting") == "Ready", "advice, never Degraded"

    cluster.probe.reading = PolicyReading(policy="volatile-lru")
    cluster.reconcile("evicting")
    assert cluster.conditions("evicting")["CacheEvictionSafe"] == ("True", "KeepsKeysWithoutTTL")
    assert "volatile-lru" in cluster.condition("evicting", "CacheEvictionSafe")["message"]
    assert cluster.phase("evicting") == "Ready"
    warnings = [e for e in events_of(cluster.kube, "evicting") if e[1] == "EvictsRevocations"]
    assert warnings == [("Warning", "EvictsRevocations")], "one for the transition"


def test_an_unreachable_external_redis_is_unknown_not_degraded(cluster: Cluster) -> None:
    external_ready(cluster, PolicyReading(error="ConnectionError"))
    assert cluster.conditions("evicting")["CacheEvictionSafe"] == ("Unknown", "Unreachable")
    assert cluster.phase("evicting") == "Ready"
    assert ("Warning", "Unreachable") not in events_of(cluster.kube, "evicting")
