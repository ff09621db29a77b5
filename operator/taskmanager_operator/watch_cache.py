"""What the watch streams already say, so a reconcile need not ask the API server again.

kopf watches the TaskManagers and every kind of child (handlers.py) and hands us each change.
Kept here, those bodies answer the reconcile's reads, and they prove when a child needs no apply
at all: we applied this very manifest last time, and our field manager's entry on the object is
still the one that apply left. Anyone else taking a field of ours (an edit, a `kubectl apply`)
moves that entry; deleting the object removes it from here. Either way the next reconcile
applies again, and the watch event that told us is what enqueued that reconcile.

Like an informer's cache it can lag the API server by an event. A lagging entry costs one apply
that changes nothing, never a missed change: the event still on its way reconciles the owner
again. An object missing here is read from the API server, so nothing is taken to be absent
because a watch has not listed it yet; only a child the server itself answered 404 for is
remembered as absent, until a watch event shows it again or we apply it.

Bodies are kept without the other managers' managedFields entries (most of an object's size and
nothing we read), to hold memory to a few KiB per child.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from taskmanager_operator.settings import FIELD_MANAGER

Object = dict[str, Any]
CacheKey = tuple[str, str, str, str]
"""apiVersion, kind, namespace, name."""


def object_key(body: Mapping[str, Any]) -> CacheKey:
    metadata = body["metadata"]
    return (body["apiVersion"], body["kind"], metadata.get("namespace") or "", metadata["name"])


def applied_entry(body: Mapping[str, Any]) -> dict[str, Any] | None:
    """Our field manager's server-side-apply entry on an object, if it has one."""
    for entry in body.get("metadata", {}).get("managedFields") or []:
        if entry.get("manager") == FIELD_MANAGER and entry.get("operation") == "Apply":
            return dict(entry)
    return None


def digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def ownership(body: Mapping[str, Any]) -> str | None:
    """What our apply entry says we own; its time is left out: only the fields matter."""
    entry = applied_entry(body)
    return None if entry is None else digest([entry.get("apiVersion"), entry.get("fieldsV1")])


@dataclass(frozen=True)
class _Applied:
    manifest: str
    ownership: str | None


class WatchCache:
    """The latest body of each object kopf showed us, the manifest we last applied to each
    child, and the children the API server said are absent.

    Written from the event loop (watch events), read from the reconcile threads."""

    def __init__(self) -> None:
        self._bodies: dict[CacheKey, Object] = {}
        self._applied: dict[CacheKey, _Applied] = {}
        self._absent: set[CacheKey] = set()
        self._lock = threading.Lock()

    def observe(self, body: Mapping[str, Any]) -> None:
        """An object as a watch event (or a listing) shows it."""
        key, slim = object_key(body), _slim(body)
        with self._lock:
            self._bodies[key] = slim
            self._absent.discard(key)

    def forget(self, body: Mapping[str, Any]) -> None:
        """An object is gone."""
        key = object_key(body)
        with self._lock:
            self._bodies.pop(key, None)
            self._applied.pop(key, None)
            self._absent.add(key)

    def get(self, key: CacheKey) -> Object | None:
        with self._lock:
            return self._bodies.get(key)

    def known_absent(self, key: CacheKey) -> bool:
        with self._lock:
            return key in self._absent

    def absent(self, key: CacheKey) -> None:
        """The API server answered 404 for this child."""
        with self._lock:
            if key not in self._bodies:
                self._absent.add(key)

    def unchanged(self, manifest: Mapping[str, Any]) -> Object | None:
        """The child as last seen, when applying `manifest` provably changes nothing: we applied
        the same manifest last, and no one has taken a field of ours since."""
        key = object_key(manifest)
        with self._lock:
            body, applied = self._bodies.get(key), self._applied.get(key)
        if body is None or applied is None or applied.manifest != digest(manifest):
            return None
        return body if ownership(body) == applied.ownership else None

    def applied(self, manifest: Mapping[str, Any], result: Mapping[str, Any]) -> None:
        """We applied `manifest`; `result` is the object the API server answered with. The body
        itself waits for its watch event: only what a watch keeps current may answer a read."""
        key, record = object_key(manifest), _Applied(digest(manifest), ownership(result))
        with self._lock:
            self._applied[key] = record
            self._absent.discard(key)

    def __len__(self) -> int:
        with self._lock:
            return len(self._bodies)


def _slim(body: Mapping[str, Any]) -> Object:
    metadata = dict(body.get("metadata") or {})
    ours = applied_entry(body)
    metadata["managedFields"] = [ours] if ours is not None else []
    return {**body, "metadata": metadata}
