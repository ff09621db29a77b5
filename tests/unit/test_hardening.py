"""What kube-score asked of the children and the chart, kept: the managed services' NetworkPolicies
and the migration Job's, the StatefulSet's headless Service, Redis's two probes, ephemeral storage
on every container, the managed services' resources (Redis's maxmemory following its limit), the
render entry point, and hack/kube-score.sh finding nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from taskmanager_operator import render
from taskmanager_operator.api.v1alpha1 import (
    REDIS_MAXMEMORY_PERCENT,
    REDIS_MIN_MEMORY_LIMIT,
    CacheResources,
    ManagedRedis,
)
from taskmanager_operator.builders import managed, network
from taskmanager_operator.builders import secrets as secret_builder
from taskmanager_operator.builders.common import (
    API,
    BACKUP,
    CACHE,
    DATABASE,
    MIGRATION,
    Capabilities,
    Manifest,
    selector_labels,
)
from taskmanager_operator.builders.managed import CONFIG_CHECKSUM_ANNOTATION
from taskmanager_operator.children import CHILDREN, optional_children
from tests.cluster.test_taskmanager_validation import INVALID
from tests.support.tools import BUILD_TIMEOUT
from tests.unit.test_builders import (
    EVERYTHING_ON,
    EXTERNAL_DB,
    EXTERNAL_REDIS,
    NAME,
    NAMESPACE,
    SPECS,
    only_container,
    pod_spec,
    taskmanager,
    workloads,
)
from tests.unit.test_reconcile import EXTERNAL, NS, Cluster, cluster, ready_demo
from tests.unit.test_scheduling import rejected

__all__ = ["cluster"]  # the fixture, imported for the reconcile tests below

REPO = Path(__file__).resolve().parents[2]
CHART_VALUES = REPO / "charts" / "taskmanager-operator" / "values.yaml"
SAMPLES = sorted((REPO / "samples").glob("*.yaml"))
NO_NETWORK_POLICY = {"networkPolicy": {"enabled": False}}


def tcp(port: int) -> list[dict[str, Any]]:
    return [{"protocol": "TCP", "port": port}]


def peers(*components: str) -> list[dict[str, Any]]:
    return [{"podSelector": {"matchLabels": selector_labels(taskmanager(), c)}} for c in components]


def build(builder: Any, spec: dict[str, Any] | None = None) -> Manifest:
    policy: Manifest | None = builder(taskmanager(spec))
    assert policy is not None
    return policy


# -- NetworkPolicies ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("builder", "component", "port", "clients"),
    [
        pytest.param(
            network.build_database_network_policy, DATABASE, 5432, [API, MIGRATION, BACKUP]
        ),
        # The migration never connects to Redis, so only the API pods may.
        pytest.param(network.build_cache_network_policy, CACHE, 6379, [API]),
    ],
)
def test_a_managed_service_takes_connections_from_this_taskmanagers_clients_only(
    builder: Any, component: str, port: int, clients: list[str]
) -> None:
    spec = build(builder)["spec"]
    assert spec["podSelector"] == {"matchLabels": selector_labels(taskmanager(), component)}
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    assert spec["ingress"] == [{"from": peers(*clients), "ports": tcp(port)}]
    # No egress rule with Egress in policyTypes: nothing goes out.
    assert "egress" not in spec, "neither PostgreSQL nor Redis starts a connection"
    # Another TaskManager's pods in the namespace carry another instance label.
    for peer in spec["ingress"][0]["from"]:
        assert peer["podSelector"]["matchLabels"]["app.kubernetes.io/instance"] == NAME


def test_the_migration_job_serves_nothing_and_reaches_the_database_and_dns_only() -> None:
    spec = build(network.build_migration_network_policy)["spec"]
    assert spec["podSelector"] == {"matchLabels": selector_labels(taskmanager(), MIGRATION)}
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in spec, "with Ingress in policyTypes and no rule, nothing comes in"
    database, dns = spec["egress"]
    assert database == {"ports": tcp(5432), "to": peers(DATABASE)}
    assert {"protocol": "UDP", "port": 53} in dns["ports"]
    # An external database may be anywhere: by port only, as for the API.
    external = build(network.build_migration_network_policy, {"database": EXTERNAL_DB})
    assert external["spec"]["egress"][0] == {"ports": tcp(5432)}


@pytest.mark.parametrize(
    ("spec", "wanted"),
    [
        pytest.param({}, {"api", "migrate", "postgres", "redis"}, id="managed"),
        pytest.param(
            {"database": EXTERNAL_DB, "redis": EXTERNAL_REDIS}, {"api", "migrate"}, id="external"
        ),
        pytest.param(NO_NETWORK_POLICY, set(), id="disabled"),
    ],
)
def test_network_policies_follow_spec_network_policy_and_the_managed_services(
    spec: dict[str, Any], wanted: set[str]
) -> None:
    tm = taskmanager(spec)
    (kind,) = [child for child in CHILDREN if child.kind == "NetworkPolicy"]
    built = {when.name(tm): when.build(tm, Capabilities()) for when in kind.optional}
    made = {name for name, policy in built.items() if policy is not None}
    assert made == {f"{NAME}-{suffix}" for suffix in wanted}
    for name in made:
        # The registry's name is the one the reconcile deletes the policy by.
        policy = built[name]
        assert policy is not None
        assert policy["metadata"]["name"] == name


def test_every_pod_the_operator_makes_is_selected_by_a_network_policy() -> None:
    tm = taskmanager()
    selectors = [
        policy["spec"]["podSelector"]["matchLabels"]
        for policy in render.children(tm)
        if policy["kind"] == "NetworkPolicy"
    ]
    for workload in workloads(tm):
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert any(s.items() <= labels.items() for s in selectors), workload["metadata"]["name"]


# -- the StatefulSet's headless Service -----------------------------------------------------------


def test_postgres_is_governed_by_a_headless_service_beside_the_clusterip_one() -> None:
    statefulset, service, headless = managed.build_postgres(taskmanager())
    assert headless["metadata"]["name"] == f"{NAME}-postgres-headless"
    assert statefulset["spec"]["serviceName"] == headless["metadata"]["name"]
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["publishNotReadyAddresses"] is True
    pod_labels = statefulset["spec"]["template"]["metadata"]["labels"]
    assert headless["spec"]["selector"].items() <= pod_labels.items()
    assert headless["spec"]["ports"] == service["spec"]["ports"]
    # The API connects through the ClusterIP Service, whose clusterIP can never change.
    assert service["metadata"]["name"] == f"{NAME}-postgres"
    assert "clusterIP" not in service["spec"]
    assert service["spec"]["type"] == "ClusterIP"


def test_an_old_statefulset_is_replaced_keeping_its_pod_and_volume(cluster: Cluster) -> None:
    ready_demo(cluster)
    name = f"{NAME}-postgres"
    # What an operator before the headless Service made; the API server refuses a new serviceName.
    cluster.kube.patch("apps/v1", "StatefulSet", NS, name, {"spec": {"serviceName": name}})

    cluster.reconcile("demo")
    assert "delete StatefulSet demo-postgres (orphan)" in cluster.kube.writes
    replacing = [e for e in cluster.kube.events if e["reason"] == "Replacing"]
    assert [e["message"] for e in replacing] == [
        "Replacing StatefulSet demo-postgres to change its serviceName (its pod and volume stay)"
    ]
    assert cluster.conditions("demo")["DatabaseReady"] == ("False", "NotReady")

    cluster.bring_up("demo")
    statefulset = cluster.child("apps/v1", "StatefulSet", name)
    assert statefulset["spec"]["serviceName"] == f"{name}-headless"


def test_an_external_database_and_redis_leave_nothing_managed_behind(cluster: Cluster) -> None:
    ready_demo(cluster)
    cluster.create_external_secrets()
    cluster.patch_spec("demo", {part: {"managed": None, **EXTERNAL[part]} for part in EXTERNAL})
    cluster.bring_up("demo")
    left = {n for n in cluster.children() if "postgres" in n or "redis" in n}
    assert left == set(), left


# -- Redis's probes -------------------------------------------------------------------------------


def test_redis_is_ready_when_it_answers_and_alive_while_it_accepts_connections() -> None:
    container = only_container(managed.build_redis(taskmanager())[0])
    readiness, liveness = container["readinessProbe"], container["livenessProbe"]
    assert readiness["exec"]["command"] == ["sh", "-c", managed.redis_ping()]
    assert liveness["tcpSocket"] == {"port": "redis"}
    assert "exec" not in liveness
    assert "tcpSocket" not in readiness


def test_redis_readiness_reads_the_password_from_the_mounted_config(tmp_path: Path) -> None:
    """The probe run against a stand-in redis-cli: it answers PONG only to the right password,
    which must come in REDISCLI_AUTH, never on the command line."""
    container = only_container(managed.build_redis(taskmanager())[0])
    config_file = container["args"][-1]
    assert config_file.startswith(managed.REDIS_CONFIG_DIR)
    command = managed.redis_ping(str(tmp_path / "redis.conf"), 6379)
    (tmp_path / "redis.conf").write_text("requirepass s3cret\nport 6379\n")
    fake = tmp_path / "bin" / "redis-cli"
    fake.parent.mkdir()
    fake.write_text(
        '#!/bin/sh\ncase "$*" in *s3cret*) echo LEAKED; exit 1;; esac\n'
        '[ "$REDISCLI_AUTH" = s3cret ] && echo PONG || echo "NOAUTH Authentication required."\n'
    )
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{fake.parent}:{os.environ['PATH']}"}
    assert subprocess.run(["sh", "-c", command], env=env, check=False).returncode == 0
    (tmp_path / "redis.conf").write_text("requirepass wrong\n")
    assert subprocess.run(["sh", "-c", command], env=env, check=False).returncode != 0
    # The probe as rendered names the config file Redis reads, and no password.
    assert config_file in managed.redis_ping()


# -- ephemeral storage and resources --------------------------------------------------------------


@pytest.mark.parametrize("spec", [*SPECS, pytest.param(EVERYTHING_ON, id="everything-on")])
def test_every_container_requests_and_limits_ephemeral_storage(spec: dict[str, Any]) -> None:
    for workload in workloads(taskmanager(spec)):
        for container in pod_spec(workload)["containers"]:
            resources = container["resources"]
            what = f"{workload['kind']} {workload['metadata']['name']} {container['name']}"
            assert "ephemeral-storage" in resources["requests"], what
            assert "ephemeral-storage" in resources["limits"], what


def test_the_charts_operator_requests_and_limits_ephemeral_storage() -> None:
    resources = yaml.safe_load(CHART_VALUES.read_text())["resources"]
    assert "ephemeral-storage" in resources["requests"]
    assert "ephemeral-storage" in resources["limits"]


def test_managed_resources_default_to_what_the_operator_always_ran() -> None:
    postgres = only_container(managed.build_postgres(taskmanager())[0])["resources"]
    redis = only_container(managed.build_redis(taskmanager())[0])["resources"]
    storage = {"ephemeral-storage": "64Mi"}, {"ephemeral-storage": "256Mi"}
    assert postgres == {
        "requests": {"cpu": "100m", "memory": "256Mi", **storage[0]},
        "limits": {"memory": "512Mi", **storage[1]},
    }
    assert redis == {
        "requests": {"cpu": "50m", "memory": "64Mi", **storage[0]},
        "limits": {"memory": "256Mi", **storage[1]},
    }


def test_managed_resources_follow_the_spec_and_keep_their_own_defaults() -> None:
    tm = taskmanager(
        {
            "database": {"managed": {"resources": {"limits": {"memory": "1Gi", "cpu": "2"}}}},
            "redis": {"managed": {"resources": {"requests": {"cpu": "200m"}}}},
        }
    )
    postgres = only_container(managed.build_postgres(tm)[0])["resources"]
    redis = only_container(managed.build_redis(tm)[0])["resources"]
    assert postgres["limits"] == {"cpu": "2", "memory": "1Gi", "ephemeral-storage": "256Mi"}
    assert postgres["requests"]["memory"] == "256Mi", "PostgreSQL's default, not the API's"
    assert redis["requests"] == {"cpu": "200m", "memory": "64Mi", "ephemeral-storage": "64Mi"}


def maxmemory_line(tm: Any) -> str:
    assert tm.spec.redis.managed is not None
    settings = secret_builder.redis_settings(tm.spec.redis.managed)
    (line,) = [line for line in settings.splitlines() if line.startswith("maxmemory ")]
    return str(line)


@pytest.mark.parametrize(
    ("limit", "maxmemory"),
    [
        pytest.param("256Mi", "maxmemory 192mb", id="default-unchanged"),
        pytest.param("1Gi", "maxmemory 768mb", id="gibibytes"),
        pytest.param("100M", "maxmemory 71mb", id="decimal-rounded-down"),
        pytest.param(REDIS_MIN_MEMORY_LIMIT, "maxmemory 48mb", id="least"),
    ],
)
def test_redis_maxmemory_is_a_share_of_its_memory_limit(limit: str, maxmemory: str) -> None:
    tm = taskmanager({"redis": {"managed": {"resources": {"limits": {"memory": limit}}}}})
    assert maxmemory_line(tm) == maxmemory
    assert only_container(managed.build_redis(tm)[0])["resources"]["limits"]["memory"] == limit


def test_a_new_memory_limit_rolls_redis_with_its_new_maxmemory() -> None:
    def checksum_of(spec: dict[str, Any]) -> str:
        template = managed.build_redis(taskmanager(spec))[0]["spec"]["template"]
        return str(template["metadata"]["annotations"][CONFIG_CHECKSUM_ANNOTATION])

    bigger = {"redis": {"managed": {"resources": {"limits": {"memory": "512Mi"}}}}}
    assert checksum_of(bigger) != checksum_of({})
    # A CPU request is no part of the config: Redis is not restarted for it (the pod rolls as
    # any template change rolls it).
    cpu = {"redis": {"managed": {"resources": {"requests": {"cpu": "100m"}}}}}
    assert checksum_of(cpu) == checksum_of({})


def test_the_docs_of_redis_resources_say_the_numbers_the_code_uses() -> None:
    described = CacheResources.model_fields["limits"].description or ""
    assert f"{REDIS_MAXMEMORY_PERCENT} %" in described
    assert REDIS_MIN_MEMORY_LIMIT in described
    assert ManagedRedis().resources.limits.memory == "256Mi"


# The cluster suite's bad resources, held to the same CEL rules without a cluster.
RESOURCE_CASES = [case for case in INVALID if "-above-limit" in str(case.id)]
RESOURCE_CASES += [case for case in INVALID if case.id == "redis-memory-limit-too-small"]


@pytest.mark.parametrize(("spec", "message"), RESOURCE_CASES)
def test_the_crd_rejects_resources_kubernetes_or_redis_could_not_run(
    spec: dict[str, Any], message: str
) -> None:
    assert any(message in error for error in rejected(spec)), rejected(spec)


def test_the_crd_takes_the_resources_it_should() -> None:
    fine = {
        "resources": {"requests": {"cpu": "1"}, "limits": {"cpu": "1"}},
        "redis": {"managed": {"resources": {"limits": {"memory": REDIS_MIN_MEMORY_LIMIT}}}},
    }
    assert rejected(fine) == []


# -- the uid that kube-score's skipped user-group check asks for (hack/kube-score.sh) -------------


@pytest.mark.parametrize("spec", SPECS)
def test_the_api_pods_run_as_a_uid_and_gid_no_host_user_has(spec: dict[str, Any]) -> None:
    """Above 10000, as kube-score asks; only the managed services run as their images' 999."""
    for workload in workloads(taskmanager(spec)):
        context = pod_spec(workload)["securityContext"]
        component = workload["metadata"]["labels"]["app.kubernetes.io/component"]
        if component in {DATABASE, CACHE}:
            assert (context["runAsUser"], context["runAsGroup"]) == (999, 999)
        else:
            assert min(context["runAsUser"], context["runAsGroup"]) > 10000, component
    chart = yaml.safe_load(CHART_VALUES.read_text())
    for context in (chart["podSecurityContext"], chart["securityContext"]):
        assert min(context["runAsUser"], context["runAsGroup"]) > 10000


# -- python -m taskmanager_operator.render --------------------------------------------------------


def test_render_prints_every_child_of_the_samples_as_yaml(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert render.main([str(path) for path in SAMPLES]) == 0
    printed = list(yaml.safe_load_all(capsys.readouterr().out))
    sample = next(doc for path in SAMPLES for doc in yaml.safe_load_all(path.read_text()) if doc)
    (tm,) = render.taskmanagers([sample])
    assert printed == render.children(tm)
    kinds = {f"{child['kind']} {child['metadata']['name']}" for child in printed}
    assert {
        "StatefulSet demo-postgres",
        "Service demo-postgres-headless",
        "Deployment demo-redis",
        "Deployment demo-api",
        "NetworkPolicy demo-postgres",
        "NetworkPolicy demo-redis",
        "NetworkPolicy demo-migrate",
    } <= kinds
    assert {child["metadata"]["namespace"] for child in printed} == {render.DEFAULT_NAMESPACE}


def test_render_holds_no_real_secret_and_skips_other_documents() -> None:
    documents = [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}},
        None,
        {
            "apiVersion": "taskmanager.dev/v1alpha1",
            "kind": "TaskManager",
            "metadata": {"name": "prod", "namespace": NAMESPACE},
            "spec": {},
        },
    ]
    (tm,) = render.taskmanagers(documents)
    assert (tm.name, tm.namespace, tm.uid) == ("prod", NAMESPACE, render.PLACEHOLDER_UID)
    (secret,) = [child for child in render.children(tm) if child["kind"] == "Secret"]
    values = secret_builder.decode_secret_data(secret["data"])
    assert values[secret_builder.REDIS_PASSWORD] == render.placeholder_token(24)


def test_render_lists_the_optional_children_the_spec_asks_for() -> None:
    tm = taskmanager(EVERYTHING_ON)
    rendered = {(child["kind"], child["metadata"]["name"]) for child in render.children(tm)}
    for kind, when in optional_children():
        if (built := when.build(tm, Capabilities())) is not None:
            assert (kind.kind, built["metadata"]["name"]) in rendered


def test_render_runs_as_a_module() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "taskmanager_operator.render", *map(str, SAMPLES)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert any(doc["kind"] == "StatefulSet" for doc in yaml.safe_load_all(result.stdout))


# -- hack/kube-score.sh ---------------------------------------------------------------------------


def kube_score(*files: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO / "hack" / "kube-score.sh"), *map(str, files)],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        # The script builds kube-score and helm when missing, or waits for `make test`'s build.
        timeout=BUILD_TIMEOUT,
        check=False,
    )


def test_kube_score_finds_nothing_in_what_we_render() -> None:
    """Needs the pinned kube-score and helm, which the script builds when missing; a failed build
    fails the script, saying so, and this test."""
    result = kube_score()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no findings" in result.stdout


def test_kube_score_fails_on_any_finding(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "bad", "namespace": "default"},
                "spec": {
                    "replicas": 2,
                    "selector": {"matchLabels": {"app": "bad"}},
                    "template": {
                        "metadata": {"labels": {"app": "bad"}},
                        "spec": {"containers": [{"name": "c", "image": "nginx:latest"}]},
                    },
                },
            }
        )
    )
    result = kube_score(bad)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "bad/default apps/v1/Deployment: (c) Image with latest tag" in result.stderr


def test_kube_score_that_cannot_build_its_tools_says_what_to_install(tmp_path: Path) -> None:
    """Missing from the cache, kube-score and helm are built first; without Go that fails,
    saying what to install, and the lint fails with it."""
    without_go = os.pathsep.join(
        entry for entry in os.environ["PATH"].split(os.pathsep) if not (Path(entry) / "go").exists()
    )
    result = kube_score(TASKMANAGER_CACHE=str(tmp_path), PATH=without_go)
    assert result.returncode == 1
    assert "Go >= 1.24 is needed" in result.stderr
    assert "could not build kube-score and helm" in result.stderr
