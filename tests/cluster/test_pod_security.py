"""Every Pod template the operator renders is admitted by a namespace that enforces the Pod Security
Standard "restricted", as the API server itself judges it (server-side dry-run, nothing is stored).

Pod Security admission only warns about a workload's template and enforces on the Pods a
controller later makes, so each template is also dry-run as a bare Pod: that check is the hard one.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from taskmanager_operator.api.v1alpha1 import DEFAULT_IMAGE_REPOSITORY, TaskManagerSpec
from taskmanager_operator.builders import api, identity, managed, migration
from taskmanager_operator.builders.common import Manifest, checksum, image
from taskmanager_operator.resource import TaskManager
from tests.support.wait import wait_until

RESTRICTED_LABELS = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
    # Warnings on workloads (Deployment, StatefulSet, Job) need the warn level too.
    "pod-security.kubernetes.io/warn": "restricted",
    "pod-security.kubernetes.io/warn-version": "latest",
}

SPECS: dict[str, dict[str, Any]] = {
    "managed": {},
    "external-with-user-signing-key": {
        "database": {"external": {"urlSecretRef": {"name": "pg", "key": "url"}}},
        "redis": {"external": {"urlSecretRef": {"name": "cache", "key": "url"}}},
        "auth": {"signingKeySecretRef": {"name": "jwt", "key": "signing-key"}},
    },
    "autoscaling": {
        "autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 5},
        "resources": {"requests": {"cpu": "200m", "memory": "256Mi"}, "limits": {"cpu": "1"}},
    },
}

Create = Callable[..., Any]
CREATORS: dict[str, Callable[[ApiClient], Create]] = {
    "Deployment": lambda c: client.AppsV1Api(c).create_namespaced_deployment,
    "StatefulSet": lambda c: client.AppsV1Api(c).create_namespaced_stateful_set,
    "Job": lambda c: client.BatchV1Api(c).create_namespaced_job,
    "Pod": lambda c: client.CoreV1Api(c).create_namespaced_pod,
}


def render_tm(spec: dict[str, Any], namespace: str) -> TaskManager:
    return TaskManager(
        name="demo",
        namespace=namespace,
        uid=str(uuid.uuid4()),
        generation=1,
        spec=TaskManagerSpec.model_validate(spec),
    )


def render_workloads(spec: dict[str, Any], namespace: str) -> list[Manifest]:
    """Every child with a Pod template, as the reconcile would render it for this spec."""
    tm = render_tm(spec, namespace)
    serving = image(tm, DEFAULT_IMAGE_REPOSITORY)
    rendered = [
        api.build_deployment(tm, image=serving, rollout_checksum=checksum(spec)),
        migration.build_migration_job(tm, image=serving),
        *managed.build_postgres(tm),
        *managed.build_redis(tm),
    ]
    return [manifest for manifest in rendered if manifest["kind"] in CREATORS]


def case_id(spec_name: str, workload: Manifest) -> str:
    return f"{spec_name}:{workload['kind']}/{workload['metadata']['name']}"


# Rendered once at collection for the test ids; each test renders again in its own namespace.
CASES = [
    pytest.param(
        spec_name, workload["kind"], workload["metadata"]["name"], id=case_id(spec_name, workload)
    )
    for spec_name, spec in SPECS.items()
    for workload in render_workloads(spec, "collection")
]


def find_workload(namespace: str, spec_name: str, kind: str, name: str) -> Manifest:
    (found,) = [
        w
        for w in render_workloads(SPECS[spec_name], namespace)
        if (w["kind"], w["metadata"]["name"]) == (kind, name)
    ]
    return found


def pod_from_template(workload: Manifest) -> Manifest:
    """The Pod a controller would make from the workload's template."""
    template = copy.deepcopy(workload["spec"]["template"])
    spec: dict[str, Any] = template["spec"]
    # A StatefulSet's controller adds one PersistentVolumeClaim volume per claim template.
    for claim in workload["spec"].get("volumeClaimTemplates", []):
        claim_name = f"{claim['metadata']['name']}-{workload['metadata']['name']}-0"
        spec.setdefault("volumes", []).append(
            {"name": claim["metadata"]["name"], "persistentVolumeClaim": {"claimName": claim_name}}
        )
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            **template["metadata"],
            "name": f"{workload['metadata']['name']}-pod-check",
            "namespace": workload["metadata"]["namespace"],
        },
        "spec": spec,
    }


def dry_run_create(api_client: ApiClient, manifest: Manifest) -> list[str]:
    """Create `manifest` with dryRun=All; the API server's warnings, or ApiException on refusal."""
    create = CREATORS[manifest["kind"]](api_client)
    response = create(
        manifest["metadata"]["namespace"], manifest, dry_run="All", _preload_content=False
    )
    try:
        response.read()  # the connection goes back to the pool only once the body is drained
        return list(response.headers.getlist("Warning"))
    finally:
        response.release_conn()


def admitted(api_client: ApiClient, manifest: Manifest) -> list[str]:
    """Like dry_run_create, but a refusal fails the test with the API server's own words."""
    try:
        return dry_run_create(api_client, manifest)
    except ApiException as error:
        what = f"{manifest['kind']} {manifest['metadata']['name']}"
        pytest.fail(f"{what} was refused ({error.status}): {error.body}")


@pytest.fixture(scope="module")
def restricted_namespace(api_client: ApiClient) -> Iterator[str]:
    """A namespace that enforces "restricted", deleted afterwards."""
    name = f"test-restricted-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(api_client)
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=RESTRICTED_LABELS))
    )
    try:
        # Pod admission looks up the namespace's default ServiceAccount, made by a controller.
        wait_until(
            lambda: core.read_namespaced_service_account("default", name),
            timeout=60,
            what=f"the default ServiceAccount in {name}",
        )
        # The API's pods run as the operator's ServiceAccount, which a reconcile would make.
        account = identity.build_service_account(render_tm({}, name))
        assert account is not None
        del account["metadata"]["ownerReferences"]  # its owner exists only in this test
        core.create_namespaced_service_account(name, account)
        yield name
    finally:
        core.delete_namespace(name, propagation_policy="Background")


def test_the_namespace_refuses_a_pod_without_a_security_context(
    api_client: ApiClient, restricted_namespace: str
) -> None:
    """The negative control: without it, every other test here could pass vacuously."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "plain", "namespace": restricted_namespace},
        "spec": {"containers": [{"name": "app", "image": "registry.invalid/app:1"}]},
    }
    with pytest.raises(ApiException) as refused:
        dry_run_create(api_client, pod)
    assert refused.value.status == 403
    assert "restricted" in str(refused.value.body)


def test_the_namespace_warns_about_a_workload_without_a_security_context(
    api_client: ApiClient, restricted_namespace: str
) -> None:
    """Proves the warnings are read: an empty list below means the API server had none."""
    selector = {"app": "plain"}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "plain", "namespace": restricted_namespace},
        "spec": {
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": selector},
                "spec": {"containers": [{"name": "app", "image": "registry.invalid/app:1"}]},
            },
        },
    }
    warnings = dry_run_create(api_client, deployment)
    assert any("restricted" in warning for warning in warnings), warnings


@pytest.mark.parametrize(("spec_name", "kind", "name"), CASES)
def test_workload_is_admitted_without_warnings(
    api_client: ApiClient, restricted_namespace: str, spec_name: str, kind: str, name: str
) -> None:
    workload = find_workload(restricted_namespace, spec_name, kind, name)
    assert admitted(api_client, workload) == []


@pytest.mark.parametrize(("spec_name", "kind", "name"), CASES)
def test_pod_from_workload_template_is_admitted_without_warnings(
    api_client: ApiClient, restricted_namespace: str, spec_name: str, kind: str, name: str
) -> None:
    pod = pod_from_template(find_workload(restricted_namespace, spec_name, kind, name))
    assert admitted(api_client, pod) == []


def test_every_spec_renders_the_workloads_expected() -> None:
    """The cases above cover the API, its migration and both managed services."""
    rendered = {
        spec_name: sorted(w["kind"] for w in render_workloads(spec, "collection"))
        for spec_name, spec in SPECS.items()
    }
    assert rendered == {
        "managed": ["Deployment", "Deployment", "Job", "StatefulSet"],
        "external-with-user-signing-key": ["Deployment", "Job"],
        "autoscaling": ["Deployment", "Deployment", "Job", "StatefulSet"],
    }
