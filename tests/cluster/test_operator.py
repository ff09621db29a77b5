"""The real operator against the real cluster: one test per behaviour a cluster admin relies on."""

from __future__ import annotations

import base64
import itertools
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from kubernetes import client, watch
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ResourceNotFoundError

from taskmanager_api.core.redis_policy import policy_warning
from taskmanager_operator.api.v1alpha1 import GROUP, PLURAL, VERSION
from taskmanager_operator.children import CHILDREN, ChildKind
from tests.support.operator import OperatorProcess
from tests.support.services import RedisServer, run_redis
from tests.support.wait import wait_until

REPO = Path(__file__).resolve().parents[2]
KUBECTL = REPO / ".local" / "bin" / "kubectl"
SAMPLE = REPO / "samples" / "taskmanager.yaml"
OPERATOR_MANAGER = "taskmanager-operator"

pytestmark = pytest.mark.usefixtures("operator")


class TaskManagers:
    """Small verbs over the TaskManager API for one test namespace."""

    def __init__(self, api_client: ApiClient, namespace: str) -> None:
        self.namespace = namespace
        self.custom = client.CustomObjectsApi(api_client)
        self.core = client.CoreV1Api(api_client)
        self.apps = client.AppsV1Api(api_client)

    def create(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "TaskManager",
            "metadata": {"name": name},
            "spec": spec,
        }
        created: dict[str, Any] = self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, body
        )
        return created

    def get(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, name
        )
        return found

    def patch_spec(self, name: str, spec: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, name, {"spec": spec}
        )

    def annotate(self, name: str, annotations: dict[str, str]) -> None:
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, name, {"metadata": {"annotations": annotations}}
        )

    def condition(self, name: str, kind: str) -> dict[str, Any] | None:
        for condition in (self.get(name).get("status") or {}).get("conditions") or []:
            if condition["type"] == kind:
                return dict(condition)
        return None

    def wait_phase(self, name: str, phase: str, timeout: float = 90) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            body = self.get(name)
            status = body.get("status") or {}
            current = status.get("phase")
            generation_seen = status.get("observedGeneration") == body["metadata"]["generation"]
            return body if current == phase and generation_seen else None

        return wait_until(reached, timeout=timeout, what=f"TaskManager {name} to be {phase}")

    def events(self, name: str) -> list[Any]:
        return list(
            self.core.list_namespaced_event(
                self.namespace, field_selector=f"involvedObject.name={name}"
            ).items
        )

    def wait_event(self, name: str, reason: str, event_type: str, timeout: float = 30) -> Any:
        return wait_until(
            lambda: next(
                (e for e in self.events(name) if e.reason == reason and e.type == event_type),
                None,
            ),
            timeout=timeout,
            what=f"a {event_type} event {reason} on {name}",
        )


@pytest.fixture
def tms(api_client: ApiClient, namespace: str) -> TaskManagers:
    return TaskManagers(api_client, namespace)


def served_children(dynamic: DynamicClient) -> list[ChildKind]:
    """The registry's kinds this cluster serves (prometheus-operator's only where installed)."""
    served = []
    # The client's discovery cache lags a CRD removed by another test.
    dynamic.resources.invalidate_cache()
    for child in CHILDREN:
        try:
            dynamic.resources.get(api_version=child.api_version, kind=child.kind)
        except ResourceNotFoundError:
            continue
        served.append(child)
    return served


def kubectl(*args: str) -> str:
    return subprocess.run(
        [str(KUBECTL), *args], capture_output=True, text=True, check=True, timeout=60
    ).stdout


def is_gone(read: Callable[[], object]) -> bool:
    try:
        read()
    except ApiException as error:
        if error.status == 404:
            return True
        raise
    return False


EXTERNAL = {
    "database": {"external": {"urlSecretRef": {"name": "db", "key": "url"}}},
    "redis": {"external": {"urlSecretRef": {"name": "cache", "key": "url"}}},
}


def create_external_secrets(
    core: client.CoreV1Api, namespace: str, redis_url: str = "redis://c:6379/0"
) -> None:
    for name, url in {"db": "postgresql+asyncpg://u:p@db:5432/t", "cache": redis_url}.items():
        core.create_namespaced_secret(
            namespace,
            {
                "metadata": {"name": name},
                "data": {"url": base64.b64encode(url.encode()).decode()},
            },
        )


def test_the_sample_reaches_ready_with_every_child(
    api_client: ApiClient, namespace: str, tms: TaskManagers
) -> None:
    sample = yaml.safe_load(SAMPLE.read_text())
    tms.create(sample["metadata"]["name"], sample["spec"])
    body = tms.wait_phase("demo", "Ready")

    status = body["status"]
    assert status["readyReplicas"] == 2
    assert status["replicas"] == 2
    assert status["version"] == "0.1.0"
    assert status["endpoint"] == f"http://demo-api.{namespace}.svc:80"
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions == {
        "Ready": "True",
        "Progressing": "False",
        "Degraded": "False",
        "DatabaseReady": "True",
        "CacheReady": "True",
        "MigrationsApplied": "True",
        "SecretsReady": "True",
        "CacheEvictionSafe": "True",
        # No prometheus-operator in this cluster (tests/cluster/test_monitoring.py installs it).
        "MonitoringReady": "False",
    }
    eviction = next(c for c in status["conditions"] if c["type"] == "CacheEvictionSafe")
    assert eviction["reason"] == "Managed"

    apps, core = tms.apps, tms.core
    deployment = apps.read_namespaced_deployment("demo-api", namespace)
    assert deployment.spec.replicas == 2
    pod = deployment.spec.template.spec
    container = pod.containers[0]
    assert container.image.endswith(":0.1.0")
    assert container.liveness_probe.http_get.path == "/health"
    assert container.readiness_probe.http_get.path == "/ready"
    assert container.startup_probe is not None
    assert container.security_context.read_only_root_filesystem is True
    assert container.security_context.capabilities.drop == ["ALL"]
    assert pod.security_context.run_as_non_root is True
    assert deployment.spec.strategy.rolling_update.max_unavailable == 0
    assert {c.topology_key for c in pod.topology_spread_constraints} == {
        "kubernetes.io/hostname",
        "topology.kubernetes.io/zone",
    }
    assert not any(env.value for env in container.env or []), "no secret as an env literal"
    assert "taskmanager.dev/rollout-checksum" in deployment.spec.template.metadata.annotations

    secret = core.read_namespaced_secret("demo-secrets", namespace)
    assert {
        "TASKMANAGER_JWT_SIGNING_KEY",
        "TASKMANAGER_DATABASE_URL",
        "TASKMANAGER_REDIS_URL",
    } <= set(secret.data)
    assert len(base64.b64decode(secret.data["TASKMANAGER_JWT_SIGNING_KEY"])) >= 48
    config = core.read_namespaced_config_map("demo-config", namespace)
    assert config.data["TASKMANAGER_ACCESS_TOKEN_TTL"] == "15m"
    assert not any("KEY" in key or "PASSWORD" in key for key in config.data)

    children = {
        "Deployment demo-api": deployment,
        "Service demo-api": core.read_namespaced_service("demo-api", namespace),
        "Secret demo-secrets": secret,
        "ConfigMap demo-config": config,
        "StatefulSet demo-postgres": apps.read_namespaced_stateful_set("demo-postgres", namespace),
        "Deployment demo-redis": apps.read_namespaced_deployment("demo-redis", namespace),
        "PodDisruptionBudget demo-api": client.PolicyV1Api(
            api_client
        ).read_namespaced_pod_disruption_budget("demo-api", namespace),
        "NetworkPolicy demo-api": client.NetworkingV1Api(api_client).read_namespaced_network_policy(
            "demo-api", namespace
        ),
    }
    for what, child in children.items():
        owners = child.metadata.owner_references
        assert [(o.kind, o.name, o.controller) for o in owners] == [
            ("TaskManager", "demo", True)
        ], what
        labels = child.metadata.labels
        assert labels["app.kubernetes.io/managed-by"] == OPERATOR_MANAGER, what
        assert labels["app.kubernetes.io/instance"] == "demo", what
        assert {
            "app.kubernetes.io/name",
            "app.kubernetes.io/component",
            "app.kubernetes.io/part-of",
            "app.kubernetes.io/version",
        } <= set(labels), what
    assert is_gone(
        lambda: client.AutoscalingV2Api(api_client).read_namespaced_horizontal_pod_autoscaler(
            "demo-api", namespace
        )
    ), "no HPA while autoscaling is off"

    table = kubectl("get", "tm", "-n", namespace)
    header, row = table.splitlines()[:2]
    assert header.split() == [
        "NAME", "PHASE", "READY", "REPLICAS", "VERSION", "ENDPOINT", "LAST-BACKUP", "AGE",
    ]  # fmt: skip
    assert row.split()[:6] == [
        "demo",
        "Ready",
        "2",
        "2",
        "0.1.0",
        f"http://demo-api.{namespace}.svc:80",
    ]
    explained = kubectl("explain", "taskmanager.spec.autoscaling")
    assert "HorizontalPodAutoscaler settings." in explained
    assert "Fewest API pods the autoscaler keeps." in explained
    tms.wait_event("demo", "Ready", "Normal")


def test_drift_is_put_back_within_seconds(namespace: str, tms: TaskManagers) -> None:
    tms.create("drift", {"replicas": 2})
    tms.wait_phase("drift", "Ready")
    core, apps = tms.core, tms.apps
    old_uid = core.read_namespaced_service("drift-api", namespace).metadata.uid

    core.delete_namespaced_service("drift-api", namespace)
    wait_until(
        lambda: (
            (svc := core.read_namespaced_service("drift-api", namespace)).metadata.uid != old_uid
            and svc
        ),
        timeout=15,
        what="the deleted Service to be recreated",
    )

    # A manual change to a field the operator owns, by another field manager.
    apps.patch_namespaced_deployment(
        "drift-api", namespace, {"spec": {"replicas": 5}}, field_manager="someone"
    )
    wait_until(
        lambda: apps.read_namespaced_deployment("drift-api", namespace).spec.replicas == 2,
        timeout=15,
        what="the operator to put spec.replicas back to 2",
    )
    core.patch_namespaced_config_map(
        "drift-config",
        namespace,
        {"data": {"TASKMANAGER_LOG_LEVEL": "DEBUG"}},
        field_manager="someone",
    )
    wait_until(
        lambda: (
            core.read_namespaced_config_map("drift-config", namespace).data["TASKMANAGER_LOG_LEVEL"]
            == "INFO"
        ),
        timeout=15,
        what="the operator to put the ConfigMap back",
    )


def resource_versions(api_client: ApiClient, namespace: str) -> dict[str, str]:
    """resourceVersion of every object in the namespace that a reconcile could write."""
    apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    custom = client.CustomObjectsApi(api_client)
    versions: dict[str, str] = {}
    listings: dict[str, Any] = {
        "deployment": apps.list_namespaced_deployment(namespace).items,
        "statefulset": apps.list_namespaced_stateful_set(namespace).items,
        "service": core.list_namespaced_service(namespace).items,
        "secret": core.list_namespaced_secret(namespace).items,
        "configmap": core.list_namespaced_config_map(namespace).items,
        "pdb": client.PolicyV1Api(api_client)
        .list_namespaced_pod_disruption_budget(namespace)
        .items,
        "netpol": client.NetworkingV1Api(api_client)
        .list_namespaced_network_policy(namespace)
        .items,
    }
    for kind, items in listings.items():
        for item in items:
            versions[f"{kind}/{item.metadata.name}"] = item.metadata.resource_version
    for tm in custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"]:
        versions[f"tm/{tm['metadata']['name']}"] = tm["metadata"]["resourceVersion"]
    return versions


def test_a_reconcile_that_changes_nothing_writes_nothing(
    api_client: ApiClient, namespace: str, tms: TaskManagers, operator: OperatorProcess
) -> None:
    tms.create("quiet", {})
    tms.wait_phase("quiet", "Ready")
    # Let the last follow-up reconcile of the rollout pass, then take the picture.
    wait_until(
        lambda: tms.condition("quiet", "Progressing")["status"] == "False",  # type: ignore[index]
        timeout=30,
        what="the rollout to settle",
    )
    count = operator.reconciles(namespace, "quiet")
    # An annotation is a change the operator sees (an event) but has nothing to act on.
    tms.custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "quiet", {"metadata": {"annotations": {"poke": "1"}}}
    )
    before = resource_versions(api_client, namespace)
    wait_until(
        lambda: operator.reconciles(namespace, "quiet") >= count + 1,
        timeout=30,
        what="a reconcile after the annotation",
    )
    assert resource_versions(api_client, namespace) == before


def test_paused_stops_all_writes_and_says_so(
    namespace: str, tms: TaskManagers, operator: OperatorProcess
) -> None:
    tms.create("held", {})
    tms.wait_phase("held", "Ready")
    tms.patch_spec("held", {"paused": True})
    body = tms.wait_phase("held", "Paused")
    paused = next(c for c in body["status"]["conditions"] if c["type"] == "Paused")
    assert paused["status"] == "True"
    tms.wait_event("held", "Paused", "Normal")

    core = tms.core
    count = operator.reconciles(namespace, "held")
    core.delete_namespaced_service("held-api", namespace)
    wait_until(
        lambda: operator.reconciles(namespace, "held") > count,
        timeout=30,
        what="a reconcile of the paused TaskManager",
    )
    assert is_gone(lambda: core.read_namespaced_service("held-api", namespace))

    tms.patch_spec("held", {"paused": False})
    tms.wait_phase("held", "Ready")
    assert core.read_namespaced_service("held-api", namespace).metadata.name == "held-api"


def test_deleting_a_taskmanager_removes_everything_it_owns(
    dynamic: DynamicClient, namespace: str, tms: TaskManagers
) -> None:
    tms.create("doomed", {"autoscaling": {"enabled": True}})
    tms.wait_phase("doomed", "Ready")
    selector = "app.kubernetes.io/instance=doomed"
    core = tms.core
    assert core.list_namespaced_persistent_volume_claim(namespace).items, "a data volume exists"

    tms.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "doomed")

    def leftovers() -> list[str]:
        # Every kind of child in the registry, and what the workloads made: volumes and pods.
        found = [
            f"{child.kind} {item.metadata.name}"
            for child in served_children(dynamic)
            for item in dynamic.resources.get(api_version=child.api_version, kind=child.kind)
            .get(namespace=namespace, label_selector=selector)
            .items
        ]
        found += [
            f"{type(item).__name__} {item.metadata.name}"
            for item in [
                *core.list_namespaced_persistent_volume_claim(namespace).items,
                *core.list_namespaced_pod(namespace).items,
            ]
        ]
        return found

    wait_until(lambda: not leftovers() or None, timeout=90, interval=1, what="nothing to be left")


def test_a_missing_secret_is_reported_and_heals_when_it_appears(
    namespace: str, tms: TaskManagers
) -> None:
    tms.create("waiting", EXTERNAL)
    wait_until(
        lambda: (c := tms.condition("waiting", "SecretsReady")) and c["reason"] == "SecretNotFound",
        timeout=30,
        what="SecretsReady=False with reason SecretNotFound",
    )
    body = tms.wait_phase("waiting", "Degraded")
    ready = next(c for c in body["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False"
    assert "spec.database.external.urlSecretRef" in ready["message"]
    assert "'db' not found" in ready["message"]
    event = tms.wait_event("waiting", "SecretNotFound", "Warning")
    assert "'db'" in event.message

    create_external_secrets(tms.core, namespace)
    tms.wait_phase("waiting", "Ready", timeout=60)
    assert tms.condition("waiting", "SecretsReady")["status"] == "True"  # type: ignore[index]


def test_a_child_the_api_server_refuses_is_named_and_heals(
    namespace: str, tms: TaskManagers
) -> None:
    # A quota that allows no Service: the API server refuses the first Service the operator makes.
    quota = client.V1ResourceQuota(
        metadata=client.V1ObjectMeta(name="no-services"),
        spec=client.V1ResourceQuotaSpec(hard={"services": "0"}),
    )
    tms.core.create_namespaced_resource_quota(namespace, quota)
    wait_until(
        lambda: tms.core.read_namespaced_resource_quota("no-services", namespace).status.hard,
        timeout=30,
        what="the quota to be in force",
    )
    tms.create("refused", {})
    body = tms.wait_phase("refused", "Degraded")
    degraded = next(c for c in body["status"]["conditions"] if c["type"] == "Degraded")
    assert degraded["reason"] == "ApplyFailed"
    # The child and the API server's own words, not a traceback.
    assert degraded["message"].startswith("Service refused-"), degraded
    assert "exceeded quota: no-services" in degraded["message"], degraded
    event = tms.wait_event("refused", "ApplyFailed", "Warning")
    assert "exceeded quota" in event.message

    tms.core.delete_namespaced_resource_quota("no-services", namespace)
    tms.wait_phase("refused", "Ready", timeout=90)
    assert tms.condition("refused", "Degraded")["status"] == "False"  # type: ignore[index]


def test_a_migration_pod_that_cannot_be_scheduled_is_named_at_once(tms: TaskManagers) -> None:
    # Only the API's pods and the migration Job's are sent where no node is.
    nowhere = {"nodeSelector": {"taskmanager.dev/test-nowhere": "true"}}
    unconstrained: dict[str, Any] = {"managed": {"scheduling": {}}}
    tms.create(
        "stranded", {"scheduling": nowhere, "database": unconstrained, "redis": unconstrained}
    )
    condition = wait_until(
        lambda: (
            (c := tms.condition("stranded", "MigrationsApplied"))
            and c["reason"] == "MigrationUnschedulable"
            and c
        ),
        timeout=90,
        what="MigrationsApplied to say the migration pod cannot be scheduled",
    )
    # The scheduler's own words, long before the Job's deadline would call it a failed migration.
    assert "cannot be scheduled" in condition["message"], condition
    assert "node affinity/selector" in condition["message"], condition
    assert tms.get("stranded")["status"]["phase"] != "Degraded"
    # `kubectl describe` tells it too, once.
    event = tms.wait_event("stranded", "MigrationUnschedulable", "Warning")
    assert "cannot be scheduled" in event.message, event.message


@pytest.fixture
def external_redis() -> Iterator[RedisServer]:
    """A Redis of its own on 127.0.0.1, where the operator (a local process) reaches it."""
    with run_redis() as server:
        yield server


def test_an_external_redis_that_evicts_revocations_is_warned_about_but_serves(
    namespace: str, tms: TaskManagers, external_redis: RedisServer
) -> None:
    admin = redis.Redis(
        host=external_redis.host, port=external_redis.port, password=external_redis.password
    )
    admin.config_set("maxmemory-policy", "allkeys-lru")
    create_external_secrets(tms.core, namespace, redis_url=external_redis.url())
    tms.create("evicting", EXTERNAL)

    # Advisory only: the API reloads evicted revocations, so the TaskManager still gets Ready.
    body = tms.wait_phase("evicting", "Ready")
    unsafe = next(c for c in body["status"]["conditions"] if c["type"] == "CacheEvictionSafe")
    assert (unsafe["status"], unsafe["reason"]) == ("False", "EvictsRevocations")
    assert unsafe["message"] == policy_warning("allkeys-lru")
    assert external_redis.password not in unsafe["message"]
    tms.wait_event("evicting", "EvictsRevocations", "Warning")

    admin.config_set("maxmemory-policy", "volatile-lru")
    admin.close()
    pokes = itertools.count()

    def safe() -> dict[str, Any] | None:
        # Any event reconciles; a fresh annotation each time outlasts the probe's cache.
        tms.annotate("evicting", {"test/poke": str(next(pokes))})
        condition = tms.condition("evicting", "CacheEvictionSafe")
        return condition if condition and condition["status"] == "True" else None

    condition = wait_until(safe, timeout=60, interval=1, what="CacheEvictionSafe=True")
    assert condition["reason"] == "KeepsKeysWithoutTTL"
    assert "volatile-lru" in condition["message"]
    assert tms.get("evicting")["status"]["phase"] == "Ready"
    warnings = [e for e in tms.events("evicting") if e.reason == "EvictsRevocations"]
    assert len(warnings) == 1, "one Warning for the transition, none for each reconcile"
    assert warnings[0].type == "Warning"


def test_an_upgrade_waits_for_its_migration_and_a_failed_one_keeps_the_old_version(
    namespace: str, tms: TaskManagers
) -> None:
    create_external_secrets(tms.core, namespace)
    tms.create("upgrade", {**EXTERNAL, "image": "example.invalid/taskmanager-api:0.1.0"})
    tms.wait_phase("upgrade", "Ready")
    apps = tms.apps

    def api_image() -> str:
        deployment = apps.read_namespaced_deployment("upgrade-api", namespace)
        return str(deployment.spec.template.spec.containers[0].image)

    # The local cluster fails every pod of this image: the migration Job fails.
    tms.patch_spec("upgrade", {"image": "example.invalid/taskmanager-api:fails"})
    wait_until(
        lambda: (
            (c := tms.condition("upgrade", "MigrationsApplied"))
            and c["reason"] == "MigrationFailed"
        ),
        timeout=120,
        what="MigrationsApplied=False with reason MigrationFailed",
    )
    body = tms.wait_phase("upgrade", "Degraded")
    assert api_image() == "example.invalid/taskmanager-api:0.1.0", "the old version keeps serving"
    ready = next(c for c in body["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False"
    assert body["status"]["readyReplicas"] == 2
    tms.wait_event("upgrade", "MigrationFailed", "Warning")

    tms.patch_spec("upgrade", {"image": "example.invalid/taskmanager-api:0.2.0"})
    tms.wait_phase("upgrade", "Ready", timeout=60)
    assert api_image() == "example.invalid/taskmanager-api:0.2.0"
    jobs = client.BatchV1Api(tms.apps.api_client).list_namespaced_job(namespace).items
    assert {job.metadata.annotations["taskmanager.dev/image"] for job in jobs} >= {
        "example.invalid/taskmanager-api:fails",
        "example.invalid/taskmanager-api:0.2.0",
    }


def managed_fields_of_operator(deployment: Any) -> dict[str, Any]:
    for entry in deployment.metadata.managed_fields:
        if entry.manager == OPERATOR_MANAGER and entry.operation == "Apply":
            return dict(entry.fields_v1)
    return {}


def test_autoscaling_on_and_off(api_client: ApiClient, namespace: str, tms: TaskManagers) -> None:
    autoscaling = client.AutoscalingV2Api(api_client)
    tms.create("elastic", {"replicas": 2})
    tms.wait_phase("elastic", "Ready")

    # Record every replica count the Deployment passes through while the HPA takes over.
    seen: list[int] = []
    stop = threading.Event()

    def record() -> None:
        watcher = watch.Watch()
        for event in watcher.stream(
            tms.apps.list_namespaced_deployment,
            namespace,
            field_selector="metadata.name=elastic-api",
            timeout_seconds=60,
        ):
            seen.append(event["object"].spec.replicas)
            if stop.is_set():
                watcher.stop()

    recorder = threading.Thread(target=record, daemon=True)
    recorder.start()
    tms.patch_spec(
        "elastic", {"autoscaling": {"enabled": True, "minReplicas": 3, "maxReplicas": 6}}
    )
    hpa = wait_until(
        lambda: autoscaling.read_namespaced_horizontal_pod_autoscaler("elastic-api", namespace),
        timeout=15,
        what="the HPA",
    )
    assert (hpa.spec.min_replicas, hpa.spec.max_replicas) == (3, 6)
    assert hpa.spec.behavior.scale_down.stabilization_window_seconds == 300
    deployment = tms.apps.read_namespaced_deployment("elastic-api", namespace)
    assert "f:replicas" not in managed_fields_of_operator(deployment).get("f:spec", {}), (
        "the operator must not own spec.replicas while an HPA scales"
    )
    wait_until(
        lambda: tms.apps.read_namespaced_deployment("elastic-api", namespace).spec.replicas >= 3,
        timeout=60,
        what="the HPA to bring the Deployment to its minimum",
    )
    stop.set()
    tms.apps.patch_namespaced_deployment(  # one more event, so the watch sees `stop`
        "elastic-api", namespace, {"metadata": {"annotations": {"test/stop": "1"}}}
    )
    recorder.join(timeout=70)
    assert seen, "the watch saw the Deployment"
    assert min(seen) >= 2, f"replicas dropped while the HPA took over: {seen}"

    tms.patch_spec("elastic", {"autoscaling": {"enabled": False}, "replicas": 2})
    wait_until(
        lambda: is_gone(
            lambda: autoscaling.read_namespaced_horizontal_pod_autoscaler("elastic-api", namespace)
        ),
        timeout=15,
        what="the HPA to be deleted",
    )
    wait_until(
        lambda: tms.apps.read_namespaced_deployment("elastic-api", namespace).spec.replicas == 2,
        timeout=15,
        what="spec.replicas to own the Deployment again",
    )
    tms.wait_phase("elastic", "Ready")


def test_kubectl_scale_works_through_the_scale_subresource(
    namespace: str, tms: TaskManagers
) -> None:
    tms.create("scaled", {"replicas": 1})
    tms.wait_phase("scaled", "Ready")
    kubectl("scale", "-n", namespace, "tm/scaled", "--replicas", "3")
    body = wait_until(
        lambda: (b := tms.get("scaled"))["status"].get("readyReplicas") == 3 and b,
        timeout=30,
        what="three ready replicas",
    )
    assert body["spec"]["replicas"] == 3
    assert tms.apps.read_namespaced_deployment("scaled-api", namespace).spec.replicas == 3
    scale = tms.custom.get_namespaced_custom_object_scale(
        GROUP, VERSION, namespace, PLURAL, "scaled"
    )
    assert scale["status"]["replicas"] == 3
    assert "app.kubernetes.io/instance=scaled" in scale["status"]["selector"]
