"""The only module that talks to the Kubernetes API.

Children are written with server-side apply under one field manager; applying an unchanged
manifest is a no-op on the server (resourceVersion does not move), which is what keeps a quiet
reconcile free of writes.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any, Generic, Protocol, TypeVar

from kubernetes import client
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import NotFoundError, ResourceNotFoundError

from taskmanager_operator import __version__, metrics
from taskmanager_operator.api.v1alpha1 import GROUP, KIND, PLURAL, VERSION
from taskmanager_operator.settings import FIELD_MANAGER
from taskmanager_operator.status import timestamp
from taskmanager_operator.watch_cache import WatchCache, applied_entry, object_key

logger = logging.getLogger(__name__)

Object = dict[str, Any]
# Which replica posted an event (the pod name in a cluster).
REPORTING_INSTANCE = socket.gethostname()


@dataclass(frozen=True)
class Applied:
    object: Object
    created: bool
    changed: bool


class ApplyRefusedError(Exception):
    """The API server refused to apply a child (invalid, forbidden, over a quota, refused by an
    admission webhook, no Service IP left): what a user must see, in the API server's words."""

    def __init__(self, kind: str, name: str, status: int | None, message: str) -> None:
        super().__init__(f"{kind} {name}: {message}")
        self.kind = kind
        self.name = name
        self.status = status
        self.message = message


def api_message(error: ApiException) -> str:
    """The API server's own message (its Status body's), not the response's headers and body."""
    try:
        message = json.loads(error.body or "").get("message")
    except (ValueError, AttributeError):
        message = None
    return str(message) if message else f"{error.status} {error.reason}"


class KubeApi(Protocol):
    """What the reconcile needs from the API server.

    `Kube` is the real one; tests/support/fake_kube.py holds one in memory, so the reconcile's
    paths are unit-tested in milliseconds against the same observable semantics.
    """

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Object | None: ...

    def get_taskmanager(self, namespace: str, name: str) -> Object | None: ...

    def apply(self, manifest: Mapping[str, Any]) -> Applied: ...

    def hand_over_replicas(self, deployment: Object) -> None: ...

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
        """Delete a child of this owner; with `orphan`, what it owns (pods, volumes) stays."""
        ...

    def post_event(
        self, involved: Mapping[str, str], event_type: str, reason: str, message: str
    ) -> None: ...

    def patch_taskmanager_status(
        self, namespace: str, name: str, status: Mapping[str, Any]
    ) -> None: ...

    def get_ours(self, plural: str, namespace: str, name: str) -> Object | None: ...

    def list_ours(self, plural: str, namespace: str) -> list[Object]:
        """Our other kinds' objects in a namespace (TaskManagerBackups, by their plural)."""
        ...

    def create_ours(self, plural: str, namespace: str, body: Mapping[str, Any]) -> bool:
        """Create one; False when one of that name exists (a deterministic name)."""
        ...

    def delete_ours(self, plural: str, namespace: str, name: str) -> None: ...

    def set_taskmanager_finalizers(
        self, namespace: str, name: str, finalizers: list[str], resource_version: str
    ) -> None:
        """Replace its finalizers, unless it changed since `resource_version` was read (409)."""
        ...

    def annotate_ours(
        self, plural: str, namespace: str, name: str, annotations: Mapping[str, str]
    ) -> None: ...

    def api_resources(self, api_version: str) -> frozenset[str] | None:
        """The resource names (plurals, `pods/<metric>` in a metrics API) a group version
        serves; None when the cluster does not serve it. Fresh within DISCOVERY_SECONDS."""
        ...

    def list_all(self, api_version: str, kind: str) -> list[Object]:
        """Every object of a kind, in all namespaces; fresh within DISCOVERY_SECONDS."""
        ...

    def namespace_labels(self, namespace: str) -> dict[str, str]:
        """The namespace's labels (Prometheus namespace selectors match them); fresh within
        DISCOVERY_SECONDS."""
        ...

    def list_pods(self, namespace: str, labels: Mapping[str, str]) -> list[Object]:
        """The pods in a namespace that carry every one of `labels`, as read now."""
        ...

    def rediscover(self) -> None:
        """Forget what api_resources and list_all remembered: a CRD came or went."""
        ...


# How long what the cluster serves (a CRD installed, a metrics adapter registered) and the
# objects read for that are remembered: a CRD installed later is noticed this soon, without a
# restart, and a reconcile on a cluster without it costs no request per TaskManager.
DISCOVERY_SECONDS = 30.0


# The API server keeps this much of an event's message (1 KiB): post_event cuts it there.
EVENT_MESSAGE_LIMIT = 1024

USER_AGENT = f"taskmanager-operator/{__version__}"
# Seconds to connect and to read an answer. The client waits forever by default, and a request
# the API server never answers (it stopped, a connection dropped without a reset) would hold a
# reconcile worker until the operator restarts; with a bound it fails and is retried. (urllib3
# tries a request 4 times, so a silent server costs a worker about 2 minutes at most.)
REQUEST_TIMEOUT = (5.0, 30.0)


class CountingApiClient(ApiClient):  # type: ignore[misc]  # the client ships no types
    """The kubernetes client, named in the API server's records (audit log, request metrics by
    user agent), counting its requests by method for the operator's own metrics, and never
    waiting without end for an answer."""

    def __init__(self, configuration: client.Configuration | None = None) -> None:
        super().__init__(configuration)
        self.user_agent = USER_AGENT

    def call_api(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        # Every request goes through here: the typed APIs' and the dynamic client's alike.
        metrics.API_REQUESTS.labels(method.upper()).inc()
        if kwargs.get("_request_timeout") is None:
            kwargs["_request_timeout"] = REQUEST_TIMEOUT
        return super().call_api(method, url, *args, **kwargs)


class Kube:
    def __init__(self, api_client: ApiClient, watched: WatchCache | None = None) -> None:
        self._api_client = api_client
        # Without watch events to fill it (a one-off command), it stays empty: every read asks.
        self.watched = watched if watched is not None else WatchCache()
        self._dynamic = DynamicClient(api_client)
        self._custom = client.CustomObjectsApi(api_client)
        self._core = client.CoreV1Api(api_client)
        self._discovered: Remembered[str, frozenset[str] | None] = Remembered(DISCOVERY_SECONDS)
        self._listed: Remembered[tuple[str, str], list[Object]] = Remembered(DISCOVERY_SECONDS)
        self._namespace_labels: Remembered[str, dict[str, str]] = Remembered(DISCOVERY_SECONDS)
        self._discovery_lock = threading.Lock()

    def _resource(self, api_version: str, kind: str) -> Any:
        # The dynamic client's discovery cache is not thread-safe: reconciles run in threads.
        with self._discovery_lock:
            return self._dynamic.resources.get(api_version=api_version, kind=kind)

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Object | None:
        """A child the watches have shown us comes from them; anything else from the server."""
        if (seen := self.watched.get((api_version, kind, namespace, name))) is not None:
            return seen
        return self.read(api_version, kind, namespace, name)

    def read(self, api_version: str, kind: str, namespace: str, name: str) -> Object | None:
        """The object as the API server has it now."""
        try:
            found = self._resource(api_version, kind).get(name=name, namespace=namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        result: Object = found.to_dict()
        return result

    def get_taskmanager(self, namespace: str, name: str) -> Object | None:
        """As the TaskManager watch last showed it: the event that enqueued this reconcile
        was stored before it was queued."""
        if (seen := self.watched.get((f"{GROUP}/{VERSION}", KIND, namespace, name))) is not None:
            return seen
        return self.get_ours(PLURAL, namespace, name)

    def apply(self, manifest: Mapping[str, Any]) -> Applied:
        """Server-side apply; says whether the object was created or changed. No request at all
        when the watches prove the child already is what the manifest says (WatchCache)."""
        if (unchanged := self.watched.unchanged(manifest)) is not None:
            return Applied(object=unchanged, created=False, changed=False)
        metadata = manifest["metadata"]
        key = object_key(manifest)
        # A child the watches prove absent is created without asking first (the watch cache's
        # listed kinds). Any other is read from the server, not the watches: an event a moment
        # late would make an unchanged child look changed, and the user would see an Updated
        # event for nothing.
        before = None if self.watched.never_seen(key) else self.read(*key)
        try:
            # The raw answer: its status code says whether the apply created the object.
            response = self._resource(manifest["apiVersion"], manifest["kind"]).server_side_apply(
                body=dict(manifest),
                namespace=metadata["namespace"],
                field_manager=FIELD_MANAGER,
                # The operator owns these fields: a manual edit is drift, put back.
                force_conflicts=True,
                serialize=False,
            )
        except ApiException as error:
            # Every answer of the API server is reported (the reconcile turns it into a condition
            # and a Warning event, then retries with backoff); no answer at all is an outage.
            if not error.status:
                raise
            raise ApplyRefusedError(
                manifest["kind"], metadata["name"], error.status, api_message(error)
            ) from error
        after: Object = json.loads(response.data)
        self.watched.applied(manifest, after)
        created = response.status == HTTPStatus.CREATED
        # A controller may update the object's status between the read and the apply, so the
        # resourceVersion alone over-reports; our own managedFields entry moves only when the
        # apply itself changed something. Without a read (someone created the child the moment
        # before us), the apply is taken to have changed it.
        changed = before is None or (
            before["metadata"]["resourceVersion"] != after["metadata"]["resourceVersion"]
            and applied_entry(before) != applied_entry(after)
        )
        return Applied(object=after, created=created, changed=created or changed)

    def hand_over_replicas(self, deployment: Object) -> None:
        """Let go of a Deployment's spec.replicas without the field snapping back to 1.

        Applying a manifest without a field that only we own removes the field, and the
        Deployment would drop to its default of one replica before the HPA scales it up again.
        A second manager co-owns the current value first (an apply of the same value records
        shared ownership, where an update would be a no-op), so the field stays for the HPA.
        """
        owned = ((applied_entry(deployment) or {}).get("fieldsV1") or {}).get("f:spec") or {}
        if "f:replicas" not in owned:
            return
        metadata = deployment["metadata"]
        self._resource("apps/v1", "Deployment").server_side_apply(
            body={
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": metadata["name"], "namespace": metadata["namespace"]},
                "spec": {"replicas": deployment["spec"]["replicas"]},
            },
            namespace=metadata["namespace"],
            field_manager=f"{FIELD_MANAGER}-handover",
        )

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
        """Delete a child that is no longer wanted; never an object someone else owns."""
        key = (api_version, kind, namespace, name)
        if self.watched.known_absent(key):
            return False  # the server said so, and no watch event or apply of ours since
        existing = self.get(api_version, kind, namespace, name)
        if existing is None:
            self.watched.absent(key)
            return False
        owners = existing["metadata"].get("ownerReferences") or []
        if not any(owner.get("uid") == owner_uid for owner in owners):
            logger.warning(
                "not deleting %s %s/%s: not owned by this TaskManager", kind, namespace, name
            )
            return False
        try:
            self._resource(api_version, kind).delete(
                name=name,
                namespace=namespace,
                body={"propagationPolicy": "Orphan" if orphan else "Background"},
            )
        except ApiException as error:
            if error.status != 404:
                raise
        return True

    def post_event(
        self, involved: Mapping[str, str], event_type: str, reason: str, message: str
    ) -> None:
        """A core/v1 Event on one of our objects (a TaskManager unless `involved` names another
        kind of ours), as `kubectl describe` shows them.

        Always a new Event: no correlation with one posted before (client-go's EventRecorder
        PATCHes a repeat's count instead). That PATCH would be a write as much as this POST, and
        a repeat is rare here: events are posted when something changed (a condition's
        transition, a child written), not on every retry, and one reconcile's are merged first
        (reconcile/outcome.py's Events)."""
        now = timestamp(datetime.now(UTC))
        self._core.create_namespaced_event(
            involved["namespace"],
            {
                "metadata": {
                    "generateName": f"{involved['name']}.",
                    "namespace": involved["namespace"],
                },
                "involvedObject": {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": involved.get("kind", KIND),
                    "name": involved["name"],
                    "namespace": involved["namespace"],
                    "uid": involved["uid"],
                },
                "type": event_type,
                "reason": reason,
                "message": message[:EVENT_MESSAGE_LIMIT],
                "source": {"component": FIELD_MANAGER},
                "reportingComponent": FIELD_MANAGER,
                "reportingInstance": REPORTING_INSTANCE,
                "firstTimestamp": now,
                "lastTimestamp": now,
                "count": 1,
            },
        )

    def patch_taskmanager_status(
        self, namespace: str, name: str, status: Mapping[str, Any]
    ) -> None:
        self.patch_ours_status(PLURAL, namespace, name, status)

    # Our other kinds (TaskManagerBackup, TaskManagerRestore), by plural.

    def get_ours(self, plural: str, namespace: str, name: str) -> Object | None:
        try:
            found: Object = self._custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, name
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return found

    def list_ours(self, plural: str, namespace: str) -> list[Object]:
        found = self._custom.list_namespaced_custom_object(GROUP, VERSION, namespace, plural)
        return list(found.get("items") or [])

    def create_ours(self, plural: str, namespace: str, body: Mapping[str, Any]) -> bool:
        """Create one; False when one of that name exists (a deterministic name: no duplicate)."""
        try:
            self._custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, dict(body)
            )
        except ApiException as error:
            if error.status == 409:
                return False
            raise
        return True

    def delete_ours(self, plural: str, namespace: str, name: str) -> None:
        try:
            self._custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
        except ApiException as error:
            if error.status != 404:
                raise

    def set_taskmanager_finalizers(
        self, namespace: str, name: str, finalizers: list[str], resource_version: str
    ) -> None:
        metadata = {"finalizers": finalizers, "resourceVersion": resource_version}
        self._custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name, {"metadata": metadata}
        )

    def annotate_ours(
        self, plural: str, namespace: str, name: str, annotations: Mapping[str, str]
    ) -> None:
        self._custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            plural,
            name,
            {"metadata": {"annotations": dict(annotations)}},
        )

    def patch_ours_status(
        self, plural: str, namespace: str, name: str, status: Mapping[str, Any]
    ) -> None:
        self._custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, plural, name, {"status": dict(status)}
        )

    def api_resources(self, api_version: str) -> frozenset[str] | None:
        return self._discovered.get(api_version, lambda: self._discover(api_version))

    def _discover(self, api_version: str) -> frozenset[str] | None:
        # Not the dynamic client's discovery: it re-reads every group on each miss, and a
        # missing CRD would be a miss on every reconcile.
        group, _, version = api_version.rpartition("/")
        try:
            found = (
                self._custom.get_api_resources(group, version)
                if group
                else self._core.get_api_resources()
            )
        except ApiException as error:
            # 404: not served; 503: an aggregated API (a metrics adapter) that is down.
            if error.status in (404, 503):
                return None
            raise
        return frozenset(resource.name for resource in found.resources or [])

    def list_all(self, api_version: str, kind: str) -> list[Object]:
        def read() -> list[Object]:
            try:
                found = self._resource(api_version, kind).get()
            except (ResourceNotFoundError, NotFoundError):
                return []  # the kind's CRD is not (or no longer) installed: there are none
            return list(found.to_dict().get("items") or [])

        return self._listed.get((api_version, kind), read)

    def list_pods(self, namespace: str, labels: Mapping[str, str]) -> list[Object]:
        selector = ",".join(f"{key}={value}" for key, value in labels.items())
        try:
            found = self._resource("v1", "Pod").get(namespace=namespace, label_selector=selector)
        except ApiException as error:
            if error.status != 403:
                raise
            # RBAC of an older chart: the conditions then say less, and the reconcile goes on.
            logger.warning(
                "cannot list pods in %s (%s): upgrade the chart's RBAC", namespace, error.reason
            )
            return []
        return list(found.to_dict().get("items") or [])

    def rediscover(self) -> None:
        self._discovered.clear()
        self._listed.clear()
        self._namespace_labels.clear()
        # The dynamic client refreshes on a miss, not on a kind that went away.
        with self._discovery_lock:
            self._dynamic.resources.invalidate_cache()

    def namespace_labels(self, namespace: str) -> dict[str, str]:
        def read() -> dict[str, str]:
            return dict(self._core.read_namespace(namespace).metadata.labels or {})

        return self._namespace_labels.get(namespace, read)


K = TypeVar("K")
V = TypeVar("V")


class Remembered(Generic[K, V]):
    """Values remembered for a while, for reads that many reconciles share."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._seconds = seconds
        self._clock = clock
        self._values: dict[K, tuple[float, V]] = {}
        self._lock = threading.Lock()

    def get(self, key: K, read: Callable[[], V]) -> V:
        now = self._clock()
        with self._lock:
            if (found := self._values.get(key)) is not None and now - found[0] < self._seconds:
                return found[1]
        value = read()
        with self._lock:
            self._values[key] = (now, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
