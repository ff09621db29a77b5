"""What the watch streams already say, so a reconcile need not ask the API server again.

kopf watches the TaskManagers and every kind of child (handlers.py) and hands us each change.
Kept here, those bodies answer the reconcile's reads, and they prove when a child needs no apply
at all: we applied this very manifest last time, and our field manager's entry on the object is
still the one that apply left. Anyone else taking a field of ours (an edit, a `kubectl apply`)
moves that entry; deleting the object removes it from here. Either way the next reconcile
applies again, and the watch event that told us is what enqueued that reconcile.

Like an informer's cache it can lag the API server by an event. A lagging entry costs one apply
that changes nothing, never a missed change: the event still on its way reconciles the owner
again. Only a child the server itself answered 404 for is remembered as absent, until a watch
event shows it again or we apply it. Nothing is taken to be absent because a watch has not listed
it yet, with one exception: the kinds the operator indexes with kopf (`listed_kinds`). kopf runs
no handler, so no reconcile, before each of those kinds has been listed and every listed object
has passed through its index handler, which stores it here. A child of such a kind that is
neither here nor applied by us is then absent, and its apply creates it without a read first
(the answer, 201 or 200, still says which it was).

Memory: parsed into Python dicts and strings, a body costs several times its JSON (a Deployment
of 8 KB some 50 KB); kept that way, a TaskManager with its 17 children cost the cache about 350
KiB (tracemalloc, tests/support/watched_bodies.py). Each body is kept instead as zlib-compressed
compact JSON, without the other managers' managedFields entries (most of an object's size and
nothing we read): about 21 KiB per TaskManager, 31 KiB with the keys and the digests of what we
applied (tests/unit/test_watch_cache.py holds it under a bound). A read decodes it into a dict
of the reader's own (about 1 ms for all of a TaskManager's children, on a reconcile thread), so
no reader changes what another sees. Our apply entry's digest, which `unchanged()` compares, is
computed once per event: a child that needs an apply is found without decoding it.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import zlib
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


def digest(value: Any) -> bytes:
    # Raw bytes, not hex: half the size, and one kept per child.
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).digest()


def ownership(body: Mapping[str, Any]) -> bytes | None:
    """What our apply entry says we own; its time is left out: only the fields matter."""
    entry = applied_entry(body)
    return None if entry is None else digest([entry.get("apiVersion"), entry.get("fieldsV1")])


@dataclass(frozen=True, slots=True)
class _Applied:
    manifest: bytes
    ownership: bytes | None


@dataclass(frozen=True, slots=True)
class _Seen:
    """A body as kept: packed (see the module), and what `unchanged()` compares."""

    packed: bytes
    ownership: bytes | None

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> _Seen:
        slim = _slim(body)
        # Level 1: a tenth larger than the default level, in 60% of its time (on the event loop).
        packed = zlib.compress(json.dumps(slim, separators=(",", ":")).encode(), 1)
        return cls(packed, ownership(slim))

    def body(self) -> Object:
        found: Object = json.loads(zlib.decompress(self.packed))
        return found


class WatchCache:
    """The latest body of each object kopf showed us, the manifest we last applied to each
    child, and the children the API server said are absent.

    Written from the event loop (watch events), read from the reconcile threads: entries are
    immutable and swapped whole under the lock; encoding and decoding happen outside it."""

    def __init__(self, listed_kinds: frozenset[tuple[str, str]] = frozenset()) -> None:
        # (apiVersion, kind) of every kind whose objects all pass through `observe` before any
        # read (see the module); empty without watches (a one-off command).
        self._listed_kinds = listed_kinds
        self._bodies: dict[CacheKey, _Seen] = {}
        self._applied: dict[CacheKey, _Applied] = {}
        self._absent: set[CacheKey] = set()
        self._lock = threading.Lock()

    def observe(self, body: Mapping[str, Any]) -> None:
        """An object as a watch event (or a listing) shows it."""
        key, seen = _interned(object_key(body)), _Seen.of(body)
        with self._lock:
            self._bodies[key] = seen
            self._absent.discard(key)

    def forget(self, body: Mapping[str, Any]) -> None:
        """An object is gone."""
        key = object_key(body)
        with self._lock:
            self._bodies.pop(key, None)
            self._applied.pop(key, None)
            self._absent.add(_interned(key))

    def get(self, key: CacheKey) -> Object | None:
        """The body as last seen, a dict of the caller's own."""
        with self._lock:
            seen = self._bodies.get(key)
        return None if seen is None else seen.body()

    def known_absent(self, key: CacheKey) -> bool:
        with self._lock:
            return key in self._absent

    def never_seen(self, key: CacheKey) -> bool:
        """A child of a listed kind that no watch event has shown and we have not applied: it does
        not exist, short of a race with someone else creating it (see the module)."""
        if key[:2] not in self._listed_kinds:
            return False
        with self._lock:
            return key not in self._bodies and key not in self._applied

    def absent(self, key: CacheKey) -> None:
        """The API server answered 404 for this child."""
        with self._lock:
            if key not in self._bodies:
                self._absent.add(_interned(key))

    def unchanged(self, manifest: Mapping[str, Any]) -> Object | None:
        """The child as last seen, when applying `manifest` provably changes nothing: we applied
        the same manifest last, and no one has taken a field of ours since."""
        key = object_key(manifest)
        with self._lock:
            seen, applied = self._bodies.get(key), self._applied.get(key)
        if seen is None or applied is None or applied.manifest != digest(manifest):
            return None
        return seen.body() if seen.ownership == applied.ownership else None

    def applied(self, manifest: Mapping[str, Any], result: Mapping[str, Any]) -> None:
        """We applied `manifest`; `result` is the object the API server answered with. The body
        itself waits for its watch event: only what a watch keeps current may answer a read."""
        key = _interned(object_key(manifest))
        record = _Applied(digest(manifest), ownership(result))
        with self._lock:
            self._applied[key] = record
            self._absent.discard(key)

    def __len__(self) -> int:
        with self._lock:
            return len(self._bodies)


def _interned(key: CacheKey) -> CacheKey:
    # A key outlives the body it came from; interned, its apiVersion, kind and namespace are one
    # string each however many objects share them, not one per object.
    api_version, kind, namespace, name = key
    return (sys.intern(api_version), sys.intern(kind), sys.intern(namespace), name)


def _slim(body: Mapping[str, Any]) -> Object:
    metadata = dict(body.get("metadata") or {})
    ours = applied_entry(body)
    metadata["managedFields"] = [ours] if ours is not None else []
    return {**body, "metadata": metadata}
