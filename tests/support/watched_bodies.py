"""A TaskManager and its children as the watches show them on a cluster, for measuring what
keeping them costs (tests/unit/test_watch_cache.py).

The children are the operator's own manifests (render.py, as the benchmark's TaskManagers of
`spec: {}` get them on a cluster without prometheus-operator or grafana-operator), with what the
API server adds: uid, resourceVersion, creationTimestamp, generation, the defaults of the
fields a manifest leaves out, managedFields entries (ours, and kube-controller-manager's for a
workload's status) and the status a Ready workload has.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Mapping
from typing import Any

from taskmanager_operator.api.v1alpha1 import GROUP, KIND, VERSION
from taskmanager_operator.render import children
from taskmanager_operator.resource import TaskManager
from taskmanager_operator.settings import FIELD_MANAGER

Object = dict[str, Any]

CREATED = "2026-12-06T07:42:13Z"
# The kinds render.py makes that a cluster without those operators does not serve.
UNSERVED = frozenset({"ServiceMonitor", "PrometheusRule", "GrafanaDashboard"})


def taskmanager(namespace: str, name: str) -> Object:
    conditions = [
        {
            "type": kind,
            "status": "True",
            "reason": "Ready",
            "message": f"{kind} of {name}: every replica is up and serves the current version",
            "lastTransitionTime": CREATED,
            "observedGeneration": 1,
        }
        for kind in (
            "SecretsReady",
            "DatabaseReady",
            "CacheReady",
            "CacheEvictionSafe",
            "MigrationsApplied",
            "Progressing",
            "Ready",
            "Degraded",
            "MonitoringReady",
        )
    ]
    body: Object = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {},
        "status": {"phase": "Ready", "observedGeneration": 1, "conditions": conditions},
    }
    return _stored(body, [("kubectl-create", "Update", "", {"f:spec": {}})])


def bodies(namespace: str, name: str) -> list[Object]:
    """The TaskManager, then its children, each as a watch event carries it."""
    owner = taskmanager(namespace, name)
    tm = TaskManager.from_body(owner)
    found = [owner]
    # Random generated values, as a cluster has them: they do not compress.
    for manifest in children(tm, token=secrets.token_urlsafe):
        if manifest["kind"] not in UNSERVED:
            found.append(server_side(manifest))
    # As a watch hands them over: parsed from the wire, sharing nothing.
    return [json.loads(json.dumps(body)) for body in found]


def server_side(manifest: Mapping[str, Any]) -> Object:
    """A child as the API server stores what the operator applied."""
    body: Object = json.loads(json.dumps(manifest))
    identity = ("apiVersion", "kind", "name", "namespace")
    applied = {**manifest, "metadata": _without(manifest["metadata"], identity)}
    ours = [(FIELD_MANAGER, "Apply", "", fields_v1(_without(applied, identity)))]
    kind, spec = body["kind"], body.get("spec") or {}
    if kind in ("Deployment", "StatefulSet", "Job"):
        _pod_defaults(spec["template"]["spec"])
        status = _workload_status(kind, spec)
        body["status"] = status
        ours.append(("kube-controller-manager", "Update", "status", fields_v1({"status": status})))
    if kind == "Deployment":
        body["metadata"].setdefault("annotations", {})["deployment.kubernetes.io/revision"] = "1"
        spec.setdefault("progressDeadlineSeconds", 600)
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("strategy", {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}})
    if kind == "Service":
        spec.setdefault("clusterIP", "10.96.12.34")
        spec.setdefault("clusterIPs", [spec["clusterIP"]])
        spec.update(
            ipFamilies=["IPv4"],
            ipFamilyPolicy="SingleStack",
            internalTrafficPolicy="Cluster",
            sessionAffinity="None",
        )
        body["status"] = {"loadBalancer": {}}
    return _stored(body, ours)


def fields_v1(value: Any) -> Object:
    """The fields a manager set, as managedFields lists them: {"f:spec": {"f:replicas": {}}}."""
    if not isinstance(value, Mapping):
        return {}
    tree: Object = {}
    for key, child in value.items():
        if isinstance(child, list) and all(isinstance(c, Mapping) and "name" in c for c in child):
            tree[f"f:{key}"] = {
                f'k:{{"name":"{c["name"]}"}}': {".": {}, **fields_v1(c)} for c in child
            }
        elif isinstance(child, Mapping) and child:
            tree[f"f:{key}"] = {".": {}, **fields_v1(child)}
        else:
            tree[f"f:{key}"] = {}
    return tree


def _without(value: Mapping[str, Any], keys: tuple[str, ...]) -> Object:
    return {key: child for key, child in value.items() if key not in keys}


def _stored(body: Object, managers: list[tuple[str, str, str, Object]]) -> Object:
    metadata = body["metadata"]
    metadata.update(
        uid=str(uuid.uuid4()),
        resourceVersion="18446744",
        creationTimestamp=CREATED,
        generation=1,
        managedFields=[
            {
                "manager": manager,
                "operation": operation,
                "apiVersion": body["apiVersion"],
                "time": CREATED,
                "fieldsType": "FieldsV1",
                "fieldsV1": fields,
                **({"subresource": subresource} if subresource else {}),
            }
            for manager, operation, subresource, fields in managers
        ],
    )
    return body


def _pod_defaults(pod: Object) -> None:
    pod.setdefault("dnsPolicy", "ClusterFirst")
    pod.setdefault("restartPolicy", "Always")
    pod.setdefault("schedulerName", "default-scheduler")
    pod.setdefault("terminationGracePeriodSeconds", 30)
    pod.setdefault("securityContext", {})
    for container in pod.get("containers", []) + pod.get("initContainers", []):
        container.setdefault("imagePullPolicy", "IfNotPresent")
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")


def _workload_status(kind: str, spec: Mapping[str, Any]) -> Object:
    if kind == "Job":
        return {
            "conditions": [
                _condition(kind, "SuccessCriteriaMet", "CompletionsReached"),
                _condition(kind, "Complete", "CompletionsReached"),
            ],
            "startTime": CREATED,
            "completionTime": CREATED,
            "succeeded": 1,
            "ready": 0,
            "terminating": 0,
            "uncountedTerminatedPods": {},
        }
    replicas = int(spec.get("replicas") or 1)
    status: Object = {
        "observedGeneration": 1,
        "replicas": replicas,
        "readyReplicas": replicas,
        "availableReplicas": replicas,
        "updatedReplicas": replicas,
    }
    if kind == "Deployment":
        status["conditions"] = [
            _condition(kind, "Available", "MinimumReplicasAvailable"),
            _condition(kind, "Progressing", "NewReplicaSetAvailable"),
        ]
    else:
        status.update(currentReplicas=replicas, currentRevision="rev-1", updateRevision="rev-1")
    return status


def _condition(kind: str, type_: str, reason: str) -> Object:
    return {
        "type": type_,
        "status": "True",
        "reason": reason,
        "message": f"{kind} has reached {reason} (as its controller reports it)",
        "lastTransitionTime": CREATED,
        "lastUpdateTime": CREATED,
    }
