"""An API server in memory, for the reconcile's unit tests.

`FakeKube` has the methods of `taskmanager_operator.k8s.KubeApi` with the semantics the real API
server gives them, as far as a reconcile can observe them:

- server-side apply merges by field manager: a field is removed only when its last owner stops
  applying it, a forced apply takes fields over from other managers, and an apply that changes
  neither a value nor our ownership is no write (resourceVersion stays);
- status is separate: apply ignores it, and only `set_status` (the controllers) and the
  TaskManager's status patch (a JSON merge patch) write it;
- metadata.generation moves with every change outside metadata and status;
- a Deployment without spec.replicas gets the API server's default of 1;
- a StatefulSet's serviceName cannot change (ImmutableFieldError, HTTP 422).

Lists are atomic values here (the real server merges some by key); only the operator writes
the lists of its children, so a reconcile cannot tell the difference.

The verbs below the KubeApi methods play the other actors: a user with kubectl (`create`,
`patch`, `delete`) and the controllers and kwok (`set_status`, and the helpers at the end that
roll out workloads and finish Jobs the way the local cluster does).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic.exceptions import ResourceNotFoundError

from taskmanager_operator.api.backups import (
    BACKUP_KIND,
    BACKUP_PLURAL,
    RESTORE_KIND,
    RESTORE_PLURAL,
)
from taskmanager_operator.api.v1alpha1 import GROUP, KIND, VERSION
from taskmanager_operator.children import CHILDREN
from taskmanager_operator.k8s import Applied, ApplyRefusedError, Object
from taskmanager_operator.settings import FIELD_MANAGER

TASKMANAGER_API_VERSION = f"{GROUP}/{VERSION}"
# Our other kinds, by plural.
OUR_KINDS = {BACKUP_PLURAL: BACKUP_KIND, RESTORE_PLURAL: RESTORE_KIND}
HANDOVER_MANAGER = f"{FIELD_MANAGER}-handover"
# (apiVersion, kind, namespace, name)
Key = tuple[str, str, str, str]
FieldPath = tuple[str, ...]
Operation = Literal["Apply", "Update"]
# Fields of an applied manifest that name the object rather than belong to a field manager.
IDENTITY = frozenset({("apiVersion",), ("kind",), ("metadata", "name"), ("metadata", "namespace")})
# The group versions every cluster serves.
BUILT_IN = frozenset(
    {"v1", "apps/v1", "batch/v1", "autoscaling/v2", "policy/v1", "networking.k8s.io/v1"}
)
# The image the local cluster's kwok stage fails (hack/kwok/stage-image-fails.yaml).
FAILING_IMAGE = "example.invalid/taskmanager-api:fails"


class ConflictError(Exception):
    """A non-forced apply would change a field another manager owns (HTTP 409)."""


class ImmutableFieldError(Exception):
    """An apply would change a field the API server never lets change (HTTP 422)."""


@dataclass
class Entry:
    """One managedFields entry: who wrote which fields, and how."""

    operation: Operation
    fields: set[FieldPath]


@dataclass
class Stored:
    # apiVersion, kind, metadata (labels, annotations, ownerReferences) and spec/data/...
    content: Object
    uid: str
    resource_version: int
    generation: int = 1
    status: Object | None = None
    managers: dict[str, Entry] = field(default_factory=dict)
    # When the object was made (the API server's clock, to the second).
    created: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))


class FakeKube:
    def __init__(self) -> None:
        self._objects: dict[Key, Stored] = {}
        self._counter = itertools.count(1)
        # What the operator wrote, one line per request that changed something: "verb Kind name".
        self.writes: list[str] = []
        # Every status patch the operator sent, changed or not: a needless one is still a request.
        self.status_patches: list[Object] = []
        self.events: list[Object] = []
        # What the cluster serves beyond the built-in groups (CRDs, aggregated APIs), by group
        # version: the resource names; `serve` and `unserve` install and remove them.
        self.served: dict[str, frozenset[str]] = {}
        self.labels_of_namespaces: dict[str, dict[str, str]] = {}
        # Kinds whose applies the API server refuses, with its status code and message (a quota,
        # an admission webhook, a full Service IP range).
        self.refusals: dict[str, tuple[int, str]] = {}

    # -- KubeApi: what the operator calls ----------------------------------------------------

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Object | None:
        stored = self._objects.get((api_version, kind, namespace, name))
        return None if stored is None else _render(stored)

    def get_taskmanager(self, namespace: str, name: str) -> Object | None:
        return self.get(TASKMANAGER_API_VERSION, KIND, namespace, name)

    def apply(self, manifest: Mapping[str, Any]) -> Applied:
        if not self._serves(manifest["apiVersion"], manifest["kind"]):
            # What the dynamic client raises for a kind missing from discovery.
            raise ResourceNotFoundError(f"No matches found for {manifest['kind']}")
        if refusal := self.refusals.get(manifest["kind"]):
            raise ApplyRefusedError(manifest["kind"], manifest["metadata"]["name"], *refusal)
        existing = self.get(*_key(manifest))
        if existing is not None and manifest["kind"] == "StatefulSet":
            service_name = existing["spec"].get("serviceName")
            if manifest["spec"].get("serviceName") != service_name:
                raise ImmutableFieldError(f"StatefulSet serviceName {service_name}")
        created, changed = self._apply(manifest, FIELD_MANAGER, force=True)
        if changed:
            self._wrote("apply", manifest)
        found = self.get(*_key(manifest))
        assert found is not None
        return Applied(object=found, created=created, changed=changed)

    def hand_over_replicas(self, deployment: Object) -> None:
        metadata = deployment["metadata"]
        key = ("apps/v1", "Deployment", metadata["namespace"], metadata["name"])
        ours = self._objects[key].managers.get(FIELD_MANAGER)
        if ours is None or ("spec", "replicas") not in ours.fields:
            return
        manifest = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": metadata["name"], "namespace": metadata["namespace"]},
            "spec": {"replicas": deployment["spec"]["replicas"]},
        }
        if self._apply(manifest, HANDOVER_MANAGER, force=False)[1]:
            self._wrote("hand-over", manifest)

    def delete_owned(
        self,
        api_version: str,
        kind: str,
        namespace: str,
        name: str,
        owner_uid: str,
        *,
        orphan: bool = False,
    ) -> bool:
        key = (api_version, kind, namespace, name)
        stored = self._objects.get(key)
        if stored is None:
            return False
        owners = stored.content["metadata"].get("ownerReferences") or []
        if not any(owner.get("uid") == owner_uid for owner in owners):
            return False
        del self._objects[key]
        self.writes.append(f"delete {kind} {name}" + (" (orphan)" if orphan else ""))
        return True

    def post_event(
        self, involved: Mapping[str, str], event_type: str, reason: str, message: str
    ) -> None:
        self.events.append(
            {
                "involvedObject": {"kind": involved.get("kind", KIND), **involved},
                "type": event_type,
                "reason": reason,
                "message": message[:1024],
            }
        )

    def set_created(
        self, api_version: str, kind: str, namespace: str, name: str, when: str
    ) -> None:
        """Backdate an object (a test's clock runs elsewhere than the machine's)."""
        self._objects[(api_version, kind, namespace, name)].created = when

    def get_ours(self, plural: str, namespace: str, name: str) -> Object | None:
        return self.get(TASKMANAGER_API_VERSION, OUR_KINDS[plural], namespace, name)

    def patch_ours_status(
        self, plural: str, namespace: str, name: str, status: Mapping[str, Any]
    ) -> None:
        stored = self._objects[(TASKMANAGER_API_VERSION, OUR_KINDS[plural], namespace, name)]
        patched = _merge_patch(stored.status or {}, status)
        if patched != (stored.status or {}):
            stored.status = patched
            stored.resource_version = next(self._counter)

    def set_taskmanager_finalizers(
        self, namespace: str, name: str, finalizers: list[str], resource_version: str
    ) -> None:
        stored = self._objects[(TASKMANAGER_API_VERSION, KIND, namespace, name)]
        if str(stored.resource_version) != resource_version:
            raise ApiException(status=409, reason=f"{KIND} {name} changed since {resource_version}")
        if finalizers:
            stored.content["metadata"]["finalizers"] = list(finalizers)
        else:
            stored.content["metadata"].pop("finalizers", None)
            if stored.content["metadata"].get("deletionTimestamp"):
                del self._objects[(TASKMANAGER_API_VERSION, KIND, namespace, name)]
                return
        stored.resource_version = next(self._counter)

    def delete_taskmanager(self, namespace: str, name: str, when: str) -> None:
        """A user's delete: gone at once, unless finalizers hold it (then it is marked)."""
        key = (TASKMANAGER_API_VERSION, KIND, namespace, name)
        stored = self._objects[key]
        if not stored.content["metadata"].get("finalizers"):
            del self._objects[key]
            return
        stored.content["metadata"]["deletionTimestamp"] = when
        stored.resource_version = next(self._counter)

    def annotate_ours(
        self, plural: str, namespace: str, name: str, annotations: Mapping[str, str]
    ) -> None:
        stored = self._objects[(TASKMANAGER_API_VERSION, OUR_KINDS[plural], namespace, name)]
        metadata = stored.content["metadata"]
        metadata["annotations"] = {**(metadata.get("annotations") or {}), **annotations}
        stored.resource_version = next(self._counter)

    def list_ours(self, plural: str, namespace: str) -> list[Object]:
        kind = OUR_KINDS[plural]
        return [
            _render(stored)
            for (v, k, ns, _), stored in sorted(self._objects.items())
            if (v, k, ns) == (TASKMANAGER_API_VERSION, kind, namespace)
        ]

    def create_ours(self, plural: str, namespace: str, body: Mapping[str, Any]) -> bool:
        manifest = dict(body) | {"metadata": {**body["metadata"], "namespace": namespace}}
        if _key(manifest) in self._objects:
            return False
        self.create(manifest, manager=FIELD_MANAGER)
        return True

    def delete_ours(self, plural: str, namespace: str, name: str) -> None:
        key = (TASKMANAGER_API_VERSION, OUR_KINDS[plural], namespace, name)
        self._objects.pop(key, None)

    def patch_taskmanager_status(
        self, namespace: str, name: str, status: Mapping[str, Any]
    ) -> None:
        self.status_patches.append(_copy(dict(status)))
        stored = self._objects[(TASKMANAGER_API_VERSION, KIND, namespace, name)]
        patched = _merge_patch(stored.status or {}, status)
        if patched != (stored.status or {}):
            stored.status = patched
            stored.resource_version = next(self._counter)
            self.writes.append(f"status {KIND} {name}")

    def api_resources(self, api_version: str) -> frozenset[str] | None:
        if api_version in self.served:
            return self.served[api_version]
        return frozenset() if api_version in BUILT_IN else None

    def _serves(self, api_version: str, kind: str) -> bool:
        """A kind of an optional child is served once its own plural is, not its group alone."""
        for child in CHILDREN:
            if (child.api_version, child.kind) == (api_version, kind) and child.crd_of:
                return child.plural in (self.api_resources(api_version) or ())
        return True

    def list_all(self, api_version: str, kind: str) -> list[Object]:
        return [
            _render(stored)
            for (v, k, _, _), stored in sorted(self._objects.items())
            if (v, k) == (api_version, kind)
        ]

    def list_pods(self, namespace: str, labels: Mapping[str, str]) -> list[Object]:
        return [
            pod
            for pod in self.objects("v1", "Pod", namespace)
            if labels.items() <= (pod["metadata"].get("labels") or {}).items()
        ]

    def rediscover(self) -> None:
        """Nothing is remembered here: every call reads the current state."""

    def namespace_labels(self, namespace: str) -> dict[str, str]:
        default = {"kubernetes.io/metadata.name": namespace}
        return self.labels_of_namespaces.get(namespace, default)

    # -- the other actors: a user and the controllers ----------------------------------------

    def serve(self, api_version: str, *resources: str) -> None:
        """A CRD (or an aggregated API) installed: the group version serves these names."""
        self.served[api_version] = self.served.get(api_version, frozenset()) | set(resources)

    def create(self, manifest: Mapping[str, Any], manager: str = "kubectl-create") -> Object:
        if _key(manifest) in self._objects:
            raise ConflictError(f"{manifest['kind']} {manifest['metadata']['name']} exists")
        self._update(manifest, manager)
        found = self.get(*_key(manifest))
        assert found is not None
        return found

    def create_taskmanager(self, namespace: str, name: str, spec: Mapping[str, Any]) -> Object:
        return self.create(
            {
                "apiVersion": TASKMANAGER_API_VERSION,
                "kind": KIND,
                "metadata": {"name": name, "namespace": namespace},
                "spec": _copy(dict(spec)),
            }
        )

    def patch(
        self,
        api_version: str,
        kind: str,
        namespace: str,
        name: str,
        patch: Mapping[str, Any],
        *,
        manager: str = "kubectl-patch",
    ) -> None:
        """A JSON merge patch by another manager, which takes over the fields it sets."""
        identity = {
            "apiVersion": api_version,
            "kind": kind,
            "metadata": {"name": name, "namespace": namespace},
        }
        self._update(_merge_patch(identity, patch), manager)

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        del self._objects[(api_version, kind, namespace, name)]

    def set_status(
        self, api_version: str, kind: str, namespace: str, name: str, status: Mapping[str, Any]
    ) -> None:
        """What a controller writes through the status subresource."""
        stored = self._objects[(api_version, kind, namespace, name)]
        if dict(status) != stored.status:
            stored.status = _copy(dict(status))
            stored.resource_version = next(self._counter)

    def objects(self, api_version: str, kind: str, namespace: str) -> list[Object]:
        return [
            _render(stored)
            for (v, k, ns, _), stored in sorted(self._objects.items())
            if (v, k, ns) == (api_version, kind, namespace)
        ]

    def names(self, namespace: str) -> set[str]:
        """Every object in the namespace, as "Kind name"."""
        return {f"{k} {n}" for (_, k, ns, n) in self._objects if ns == namespace}

    def resource_versions(self) -> dict[Key, str]:
        return {key: str(stored.resource_version) for key, stored in self._objects.items()}

    # -- the machinery -----------------------------------------------------------------------

    def _wrote(self, verb: str, manifest: Mapping[str, Any]) -> None:
        self.writes.append(f"{verb} {manifest['kind']} {manifest['metadata']['name']}")

    def _stored(self, manifest: Mapping[str, Any]) -> tuple[Stored, bool]:
        """The object a write goes to, and whether the write creates it."""
        key = _key(manifest)
        if key in self._objects:
            return self._objects[key], False
        metadata = {"name": key[3], "namespace": key[2]}
        content = {"apiVersion": key[0], "kind": key[1], "metadata": metadata}
        stored = Stored(content=content, uid=f"uid-{next(self._counter)}", resource_version=0)
        self._objects[key] = stored
        return stored, True

    def _apply(
        self, manifest: Mapping[str, Any], manager: str, *, force: bool
    ) -> tuple[bool, bool]:
        """Server-side apply; (created, changed)."""
        stored, created = self._stored(manifest)
        before = (_copy(stored.content), _fields_of(stored, manager))
        applied = _leaves(manifest)
        previous = stored.managers.get(manager, Entry("Apply", set())).fields
        for path in previous - set(applied):
            if not any(path in e.fields for m, e in stored.managers.items() if m != manager):
                _remove(stored.content, path)
        self._take_over(stored, manager, applied, force=force)
        stored.managers[manager] = Entry("Apply", set(applied))
        return created, self._settle_write(stored, before, manager, created=created)

    def _update(self, manifest: Mapping[str, Any], manager: str) -> None:
        """A create, update or patch: the manager owns what it set, nothing is removed."""
        stored, created = self._stored(manifest)
        before = (_copy(stored.content), _fields_of(stored, manager))
        applied = _leaves(manifest)
        self._take_over(stored, manager, applied, force=True)
        entry = stored.managers.setdefault(manager, Entry("Update", set()))
        entry.fields |= set(applied)
        self._settle_write(stored, before, manager, created=created)

    @staticmethod
    def _take_over(
        stored: Stored, manager: str, applied: Mapping[FieldPath, Any], *, force: bool
    ) -> None:
        """Set the applied values; another manager loses each field whose value changes."""
        for path, value in applied.items():
            if _lookup(stored.content, path) == value:
                continue
            for other, entry in stored.managers.items():
                if other != manager and path in entry.fields:
                    if not force:
                        raise ConflictError(f"{'.'.join(path)} is owned by {other}")
                    entry.fields.discard(path)
            _assign(stored.content, path, value)

    def _settle_write(
        self,
        stored: Stored,
        before: tuple[Object, frozenset[FieldPath]],
        manager: str,
        *,
        created: bool,
    ) -> bool:
        """Default what the server defaults, and count a write only if something moved."""
        _default(stored.content)
        content_before, fields_before = before
        if (stored.content, _fields_of(stored, manager)) == (content_before, fields_before):
            return False
        if not created and _without_metadata(stored.content) != _without_metadata(content_before):
            stored.generation += 1
        stored.resource_version = next(self._counter)
        return True


# -- the controllers, as the local cluster (kube-controller-manager and kwok) runs them ----------


def roll_out(kube: FakeKube, namespace: str, name: str, ready: int | None = None) -> None:
    """The Deployment controller once the pods of the current template are up (`ready` of them)."""
    deployment = kube.get("apps/v1", "Deployment", namespace, name)
    assert deployment is not None, f"no Deployment {name}"
    wanted = int(deployment["spec"]["replicas"])
    ready = wanted if ready is None else ready
    status = {
        "observedGeneration": deployment["metadata"]["generation"],
        "replicas": wanted,
        "updatedReplicas": wanted,
        "readyReplicas": ready,
        "availableReplicas": ready,
    }
    kube.set_status("apps/v1", "Deployment", namespace, name, status)


def finish_job(kube: FakeKube, namespace: str, name: str, result: str) -> None:
    """The Job controller once the Job's pod ended: result is "Complete" or "Failed"."""
    conditions = [{"type": result, "status": "True"}]
    key = "succeeded" if result == "Complete" else "failed"
    kube.set_status("batch/v1", "Job", namespace, name, {"conditions": conditions, key: 1})


def settle(kube: FakeKube, namespace: str) -> None:
    """Every workload in the namespace as it ends up on the local cluster: Deployments and
    StatefulSets rolled out and ready, Jobs complete unless they run the image kwok fails."""
    for deployment in kube.objects("apps/v1", "Deployment", namespace):
        roll_out(kube, namespace, deployment["metadata"]["name"])
    for statefulset in kube.objects("apps/v1", "StatefulSet", namespace):
        replicas = statefulset["spec"].get("replicas", 1)
        status = {
            "observedGeneration": statefulset["metadata"]["generation"],
            "replicas": replicas,
            "readyReplicas": replicas,
        }
        name = statefulset["metadata"]["name"]
        kube.set_status("apps/v1", "StatefulSet", namespace, name, status)
    for job in kube.objects("batch/v1", "Job", namespace):
        if not (job.get("status") or {}).get("conditions"):
            images = {c["image"] for c in job["spec"]["template"]["spec"]["containers"]}
            result = "Failed" if FAILING_IMAGE in images else "Complete"
            finish_job(kube, namespace, job["metadata"]["name"], result)


# -- objects as paths to their leaves ------------------------------------------------------------


def _key(manifest: Mapping[str, Any]) -> Key:
    metadata = manifest["metadata"]
    return (manifest["apiVersion"], manifest["kind"], metadata["namespace"], metadata["name"])


def _render(stored: Stored) -> Object:
    """The object as a GET returns it: content, server metadata, managedFields and status."""
    body: Object = _copy(stored.content)
    body["metadata"].update(
        uid=stored.uid,
        creationTimestamp=stored.created,
        resourceVersion=str(stored.resource_version),
        generation=stored.generation,
        managedFields=[
            {"manager": manager, "operation": entry.operation, "fieldsV1": _fields_v1(entry)}
            for manager, entry in stored.managers.items()
            if entry.fields
        ],
    )
    if stored.status is not None:
        body["status"] = _copy(stored.status)
    return body


def _fields_v1(entry: Entry) -> Object:
    """The fields as the API server lists them: {"f:spec": {"f:replicas": {}}}."""
    tree: Object = {}
    for path in entry.fields:
        node = tree
        for part in path:
            node = node.setdefault(f"f:{part}", {})
    return tree


def _fields_of(stored: Stored, manager: str) -> frozenset[FieldPath]:
    entry = stored.managers.get(manager)
    return frozenset(entry.fields) if entry else frozenset()


def _leaves(manifest: Mapping[str, Any]) -> dict[FieldPath, Any]:
    """The values a manifest sets, by path; status and the object's identity are not fields."""
    return {
        path: value
        for path, value in _walk(manifest, ())
        if path not in IDENTITY and path[0] != "status"
    }


def _walk(value: Any, path: FieldPath) -> Iterator[tuple[FieldPath, Any]]:
    if isinstance(value, Mapping) and value:
        for key, child in value.items():
            yield from _walk(child, (*path, key))
    else:
        yield path, value


def _lookup(tree: Mapping[str, Any], path: FieldPath) -> Any:
    node: Any = tree
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


_MISSING = object()


def _assign(tree: Object, path: FieldPath, value: Any) -> None:
    node = tree
    for part in path[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[path[-1]] = _copy(value)


def _remove(tree: Object, path: FieldPath) -> None:
    """Drop a field, and the maps it leaves empty (no manager owns an empty parent)."""
    parents: list[tuple[Object, str]] = []
    node = tree
    for part in path[:-1]:
        if not isinstance(node.get(part), dict):
            return
        parents.append((node, part))
        node = node[part]
    node.pop(path[-1], None)
    for parent, part in reversed(parents):
        if parent[part]:
            break
        del parent[part]


def _default(content: Object) -> None:
    """The one API server default a reconcile depends on: why hand_over_replicas exists."""
    if content["kind"] == "Deployment" and content["apiVersion"] == "apps/v1":
        content.setdefault("spec", {}).setdefault("replicas", 1)


def _without_metadata(content: Mapping[str, Any]) -> Object:
    return {key: value for key, value in content.items() if key != "metadata"}


def _copy(value: Any) -> Any:
    """A deep copy of JSON-like data; copy.deepcopy's generality made the tests ten times slower."""
    if isinstance(value, Mapping):
        return {key: _copy(child) for key, child in value.items()}
    if isinstance(value, list):
        return [_copy(child) for child in value]
    return value


def _merge_patch(target: Mapping[str, Any], patch: Mapping[str, Any]) -> Object:
    """RFC 7386: maps merge, None deletes, anything else replaces."""
    merged: Object = _copy(dict(target))
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge_patch(merged[key], value)
        else:
            merged[key] = _copy(value)
    return merged


def events_of(kube: FakeKube, name: str) -> list[tuple[str, str]]:
    """(type, reason) of the events on a TaskManager, oldest first: `kubectl describe`'s list."""
    return [(e["type"], e["reason"]) for e in kube.events if e["involvedObject"]["name"] == name]
