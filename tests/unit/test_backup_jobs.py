"""The backup Jobs as the operator builds them, and how it reads their results: what a cluster
admin relies on (restricted pods without API tokens, secrets as files, a claim that outlives the
TaskManager, a policy that lets the Job reach only the database and the store)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from taskmanager_api.core.config import TERMINATION_LOG_VARIABLE, backup_env_name
from taskmanager_operator.backups.lifecycle import binary_size, job_result
from taskmanager_operator.builders.backup import (
    TERMINATION_LOG,
    backup_claim_name,
    backup_job_name,
    backup_location,
    build_backup_claim,
    build_backup_job,
)
from taskmanager_operator.builders.network import build_backup_network_policy
from tests.unit.test_builders import taskmanager

S3 = {
    "bucket": "tasks-backups",
    "endpoint": "https://minio.storage.svc:9000",
    "forcePathStyle": True,
    "credentialsSecretRef": {"name": "s3-keys"},
    "caSecretRef": {"name": "s3-ca", "key": "ca.pem"},
}
OWNER = {
    "apiVersion": "taskmanager.dev/v1alpha1",
    "kind": "TaskManagerBackup",
    "name": "nightly",
    "uid": "u-1",
    "controller": True,
    "blockOwnerDeletion": True,
}


def job(spec: dict[str, Any], action: Any = "create") -> dict[str, Any]:
    tm = taskmanager({"backup": {"enabled": True, **spec}})
    return build_backup_job(
        tm,
        action=action,
        subject="nightly",
        location=backup_location(tm, "nightly"),
        image="registry.example/tm:1",
        owner=OWNER,
    )


def env_of(manifest: dict[str, Any]) -> dict[str, str]:
    (container,) = manifest["spec"]["template"]["spec"]["containers"]
    return {item["name"]: item["value"] for item in container["env"]}


def test_a_pvc_backup_runs_the_command_on_the_claim_as_a_restricted_pod() -> None:
    manifest = job({})
    pod = manifest["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"] == ["backup", "create", "--to", "file:///backups/nightly"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    claims = [v for v in pod["volumes"] if "persistentVolumeClaim" in v]
    assert claims == [{"name": "backups", "persistentVolumeClaim": {"claimName": "demo-backups"}}]
    assert env_of(manifest)[TERMINATION_LOG_VARIABLE] == TERMINATION_LOG
    # Written straight onto the claim: nothing staged elsewhere, no small emptyDir to outgrow.
    assert backup_env_name("work_dir") not in env_of(manifest)
    assert manifest["metadata"]["ownerReferences"] == [OWNER]
    assert manifest["spec"]["backoffLimit"] == 0
    assert not any(env.get("valueFrom") for env in container.get("env", []))


def test_an_s3_backup_gets_its_keys_as_files_and_its_store_from_the_spec() -> None:
    manifest = job({"storage": {"s3": S3}})
    env = env_of(manifest)
    assert env[backup_env_name("s3_endpoint")] == S3["endpoint"]
    assert env[backup_env_name("s3_path_style")] == "true"
    credentials_dir = env[backup_env_name("s3_credentials_dir")]
    pod = manifest["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[mounts[credentials_dir]]["secret"]["secretName"] == "s3-keys"
    ca_file = env[backup_env_name("s3_ca_bundle")]
    ca_volume = volumes[mounts[ca_file.rsplit("/", 1)[0]]]
    assert ca_volume["secret"] == {
        "secretName": "s3-ca",
        "items": [{"key": "ca.pem", "path": ca_file.rsplit("/", 1)[1]}],
    }
    # The keys are files of the mounted Secret, never variables of the pod.
    assert backup_env_name("s3_access_key_id") not in env
    assert backup_env_name("s3_secret_access_key") not in env
    assert container["args"][-1] == "s3://tasks-backups/team-a/demo/nightly"


@pytest.mark.parametrize(
    ("prefix", "location"),
    [
        ("", "s3://tasks-backups/team-a/demo/nightly"),
        ("prod/tasks", "s3://tasks-backups/prod/tasks/nightly"),
        ("prod/", "s3://tasks-backups/prod/nightly"),
    ],
)
def test_the_location_is_one_prefix_per_backup(prefix: str, location: str) -> None:
    tm = taskmanager({"backup": {"enabled": True, "storage": {"s3": S3 | {"prefix": prefix}}}})
    assert backup_location(tm, "nightly") == location


def test_the_claim_has_no_owner_so_backups_outlive_the_taskmanager() -> None:
    tm = taskmanager({"backup": {"enabled": True}})
    claim = build_backup_claim(tm)
    assert claim is not None
    assert claim["metadata"]["name"] == backup_claim_name(tm)
    assert "ownerReferences" not in claim["metadata"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "5Gi"
    s3 = taskmanager({"backup": {"enabled": True, "storage": {"s3": S3}}})
    assert build_backup_claim(s3) is None


def test_job_names_fit_a_label_and_differ_by_action() -> None:
    tm = taskmanager({}, name="a" * 40)
    names = {backup_job_name(tm, action, "b" * 253) for action in ("create", "delete")}
    assert len(names) == 2
    assert all(len(name) <= 63 for name in names)


def test_the_backup_pods_reach_the_database_dns_and_the_stores_port_only() -> None:
    policy = build_backup_network_policy(
        taskmanager({"backup": {"enabled": True, "storage": {"s3": S3}}})
    )
    assert policy is not None
    egress_ports = [rule["ports"] for rule in policy["spec"]["egress"]]
    assert [{"protocol": "TCP", "port": 9000}] in egress_ports
    assert "ingress" not in policy["spec"], "nothing connects to a backup Job"
    pvc = build_backup_network_policy(taskmanager({"backup": {"enabled": True}}))
    assert pvc is not None
    assert len(pvc["spec"]["egress"]) == 2, "database and DNS only"
    assert build_backup_network_policy(taskmanager({})) is None


def finished_job(condition: str) -> dict[str, Any]:
    return {"status": {"conditions": [{"type": condition, "status": "True", "reason": "X"}]}}


def pod_with_message(message: str) -> dict[str, Any]:
    terminated = {"exitCode": 0, "message": message}
    return {"status": {"containerStatuses": [{"state": {"terminated": terminated}}]}}


def test_the_result_is_the_json_line_of_the_termination_message() -> None:
    line = {"ok": True, "location": "file:///backups/x", "size": 10}
    result = job_result(finished_job("Complete"), [pod_with_message(json.dumps(line))])
    assert result is not None
    assert (result.ok, result.line) == (True, line)
    failed = {"ok": False, "reason": "ChecksumMismatch", "message": "the dump changed"}
    result = job_result(finished_job("Failed"), [pod_with_message(json.dumps(failed))])
    assert result is not None
    assert (result.ok, result.line["reason"]) == (False, "ChecksumMismatch")


def test_a_job_without_a_line_fails_with_what_kubernetes_says() -> None:
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
    result = job_result(job, [pod_with_message("")])
    assert result is not None
    assert (result.ok, result.reason) == (False, "DeadlineExceeded")
    assert job_result({"status": {"active": 1}}, []) is None, "still running: no result"


@pytest.mark.parametrize(
    ("size", "shown"),
    [(0, "0"), (1023, "1023"), (1536, "1.5Ki"), (15 * 1024**2, "15.0Mi"), (3 * 1024**3, "3.0Gi")],
)
def test_sizes_read_as_kubectl_users_expect(size: int, shown: str) -> None:
    assert binary_size(size) == shown
