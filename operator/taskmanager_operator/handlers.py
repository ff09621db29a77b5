"""kopf registrations and nothing else: every event turns into a key on the controller's queue."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, Literal

import kopf
from kubernetes import config
from prometheus_client import start_http_server

from taskmanager_operator import metrics
from taskmanager_operator.api.backups import (
    BACKUP_KIND,
    BACKUP_PLURAL,
    RESTORE_KIND,
    RESTORE_PLURAL,
)
from taskmanager_operator.api.v1alpha1 import GROUP, KIND, PLURAL, VERSION
from taskmanager_operator.backups.lifecycle import (
    POLL_SECONDS,
    TERMINAL,
    BackupLifecycle,
    verification_pending,
)
from taskmanager_operator.backups.restore import RestoreLifecycle
from taskmanager_operator.builders.common import MANAGED_BY
from taskmanager_operator.children import CHILDREN
from taskmanager_operator.controller import Controller
from taskmanager_operator.k8s import CountingApiClient, Kube
from taskmanager_operator.kopf_namespaces import serve_namespaces_seen_in_listings
from taskmanager_operator.leadership import start_election
from taskmanager_operator.reconcile import Reconciler
from taskmanager_operator.settings import OperatorSettings
from taskmanager_operator.watch_cache import WatchCache

# Before kopf starts: a namespace created while it starts must not be missed (see the module).
serve_namespaces_seen_in_listings()

OWNED = {"app.kubernetes.io/managed-by": MANAGED_BY}


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # Shared by every object's handlers (kopf gives each a shallow copy of this memo).
    # Every kind of child is indexed (_child_listed): the cache holds each one kopf listed
    # before the first reconcile, and a child missing from it is one to create.
    memo["watched"] = WatchCache(listed_kinds=frozenset((c.api_version, c.kind) for c in CHILDREN))
    # Our reconciles post their own events; kopf's per-handler chatter would only add noise.
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    operator_settings = OperatorSettings()
    if operator_settings.metrics_port:
        try:
            start_http_server(operator_settings.metrics_port)
        except OSError as error:
            raise kopf.PermanentError(
                f"cannot serve metrics on port {operator_settings.metrics_port}: {error}; set "
                "TASKMANAGER_OPERATOR_METRICS_PORT to a free port (0 turns metrics off)"
            ) from error
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    kube = Kube(CountingApiClient(), memo["watched"])
    controller = Controller(Reconciler(kube, operator_settings), operator_settings)
    if operator_settings.leader_election_namespace:
        start_election(
            controller.leading,
            namespace=operator_settings.leader_election_namespace,
            lease_seconds=operator_settings.lease_seconds,
            renew_seconds=operator_settings.renew_seconds,
            retry_seconds=operator_settings.retry_seconds,
            # A standby's last readings would go stale: only the acting replica reports them.
            on_lost=metrics.clear_readings,
        )
    else:
        controller.leading.set()
    controller.start()
    memo["controller"] = controller
    backups = BackupLifecycle(kube, operator_settings.image_repository)
    memo["backups"] = backups
    memo["restores"] = RestoreLifecycle(kube, backups)
    # Made here, before any object is seen: kopf hands each object a shallow copy of this memo,
    # so a dict made later would be one per object, and a backup's own events and its Job's
    # would each take a different lock.
    memo["backup_locks"] = {}


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    controller: Controller | None = memo.get("controller")
    if controller is not None:
        await controller.stop()


@kopf.on.event(GROUP, VERSION, PLURAL)
async def taskmanager_event(
    event: kopf.RawEvent, body: kopf.Body, name: str, namespace: str | None, memo: Any, **_: Any
) -> None:
    controller: Controller = memo["controller"]
    if namespace is None:
        return
    # Stored before the key is queued: the reconcile it starts reads this body (watch_cache).
    _remember(memo, "deleted" if event["type"] == "DELETED" else "observed", body)
    if event["type"] == "DELETED":
        controller.forget(namespace, name)
    else:
        controller.enqueue(namespace, name)


def _remember(memo: Any, change: Literal["observed", "deleted"], body: kopf.Body) -> None:
    watched: WatchCache = memo["watched"]
    if change == "deleted":
        watched.forget(body)
    else:
        watched.observe(body)
    metrics.CACHED_OBJECTS.set(len(watched))


# An index handler that keeps no index: kopf runs every object's index handlers first, and no
# other handler (so no reconcile) before every indexed kind has been listed through them. Stored
# here, each child kopf listed is in the watch cache before the first reconcile reads it.
async def _child_listed(body: kopf.Body, memo: Any, **_: Any) -> None:
    _remember(memo, "observed", body)


# Async on purpose: kopf runs sync handlers in threads, and the queue belongs to the event loop.
async def _child_event(
    event: kopf.RawEvent, body: kopf.Body, namespace: str | None, memo: Any, **_: Any
) -> None:
    controller: Controller = memo["controller"]
    if namespace is None:
        return
    # Stored before its owner is queued, as for a TaskManager: by _child_listed, which kopf
    # runs first, except a deletion (kopf drops it from its indexes without a handler).
    if event["type"] == "DELETED":
        _remember(memo, "deleted", body)
    for owner in body.metadata.get("ownerReferences") or []:
        if owner.get("apiVersion") != f"{GROUP}/{VERSION}":
            continue
        if owner.get("kind") == KIND:
            controller.enqueue(namespace, owner["name"])
        elif owner.get("kind") == BACKUP_KIND:
            # A backup Job changed (it finished): its backup records the result now.
            await _follow(memo, BACKUP_PLURAL, namespace, owner["name"])
        elif owner.get("kind") == RESTORE_KIND:
            await _follow(memo, RESTORE_PLURAL, namespace, owner["name"])


# -- TaskManagerBackups: each is followed from Pending to its result by the acting replica, on
# its own events and its Job's, with a timer behind them; its data is deleted with it.


def _needs_work(body: Mapping[str, Any], **_: Any) -> bool:
    """Not finished, or (a completed backup) asked to be verified."""
    phase = (body.get("status") or {}).get("phase")
    return phase not in TERMINAL or verification_pending(body) is not None


async def _follow(memo: Any, plural: str, namespace: str, name: str) -> None:
    """One pass at a time per backup or restore, on the object as it is now: the event that
    woke us may be older than what the last pass wrote (a second pass on it would fail a backup
    twice). A restore moves a step per pass: passes follow each other while there is one."""
    controller: Controller = memo["controller"]
    if not controller.leading.is_set():
        return
    backups: BackupLifecycle = memo["backups"]
    lifecycle: BackupLifecycle | RestoreLifecycle = (
        backups if plural == BACKUP_PLURAL else memo["restores"]
    )
    locks: dict[tuple[str, str, str], asyncio.Lock] = memo["backup_locks"]
    key = (plural, namespace, name)
    async with locks.setdefault(key, asyncio.Lock()):
        for _ in range(MAX_STEPS_PER_PASS):
            body = await asyncio.to_thread(backups.kube.get_ours, plural, namespace, name)
            if body is None or body["metadata"].get("deletionTimestamp"):
                locks.pop(key, None)
                return
            again = await asyncio.to_thread(lifecycle.reconcile, body)
            if again != 0.0:
                return
            # Its TaskManager acts on a restore's new step (holds or frees the API) now.
            controller.enqueue(namespace, body["spec"]["taskManager"])


# A restore's quick steps follow each other in one pass; a step that waits ends it.
MAX_STEPS_PER_PASS = 8


def _follow_records(plural: str) -> None:
    """Backups and restores alike: each event (and a timer behind them) moves the object on,
    and its TaskManager is reconciled too (status.backup follows the backups; a restore holds
    or frees the API)."""

    async def on_event(
        event: kopf.RawEvent,
        body: kopf.Body,
        name: str,
        namespace: str | None,
        memo: Any,
        **_: Any,
    ) -> None:
        if namespace is None:
            return
        controller: Controller = memo["controller"]
        if taskmanager := (body.get("spec") or {}).get("taskManager"):
            controller.enqueue(namespace, taskmanager)
        if event["type"] != "DELETED" and _needs_work(body):
            await _follow(memo, plural, namespace, name)

    async def resync(name: str, namespace: str | None, memo: Any, **_: Any) -> None:
        if namespace is not None:
            await _follow(memo, plural, namespace, name)

    kopf.on.event(GROUP, VERSION, plural, id=f"{plural}-event")(on_event)
    kopf.timer(
        GROUP, VERSION, plural, interval=POLL_SECONDS, when=_needs_work, id=f"{plural}-resync"
    )(resync)


for _plural in (BACKUP_PLURAL, RESTORE_PLURAL):
    _follow_records(_plural)


@kopf.on.delete(GROUP, VERSION, BACKUP_PLURAL)
async def backup_deleted(body: kopf.Body, memo: Any, **_: Any) -> None:
    """The backup's data goes with it: its finalizer holds until the deletion Job is done."""
    backups: BackupLifecycle = memo["backups"]
    waiting = await asyncio.to_thread(backups.delete_data, body)
    if waiting is not None:
        raise kopf.TemporaryError(f"waiting for {waiting}", delay=3)


@kopf.index(GROUP, VERSION, PLURAL)
async def taskmanager_keys(
    namespace: str | None, name: str, **_: Any
) -> dict[None, tuple[str, str]]:
    """Every TaskManager kopf has seen, for the reconciles a cluster-wide change calls for."""
    return {None: (namespace or "", name)}


# The API groups of the children that only some clusters serve (prometheus-operator's, ...).
OPTIONAL_GROUPS = frozenset(child.group for child in CHILDREN if child.crd_of is not None)


@kopf.on.event("apiextensions.k8s.io", "v1", "customresourcedefinitions")
async def crd_event(body: kopf.Body, memo: Any, **kwargs: Any) -> None:
    """A CRD of an optional child installed, established or removed: every TaskManager gets or
    drops those children now, not at its next resync, and without a restart."""
    if (body.get("spec") or {}).get("group") not in OPTIONAL_GROUPS:
        return
    controller: Controller = memo["controller"]
    # Off the event loop: it re-reads the API server's discovery.
    await asyncio.to_thread(controller.reconciler.kube.rediscover)
    known: kopf.Index[None, tuple[str, str]] = kwargs["taskmanager_keys"]
    for namespace, name in known.get(None, []):
        controller.enqueue(namespace, name)


# Every kind of child in the registry: a change to any of them (a manual edit, a deletion, a
# status update) reconciles its owner, so drift is put back without waiting for a resync.
for _child in CHILDREN:
    kopf.index(
        _child.group, _child.version, _child.plural, labels=OWNED, id=f"listed-{_child.plural}"
    )(_child_listed)
    kopf.on.event(
        _child.group, _child.version, _child.plural, labels=OWNED, id=f"child-{_child.plural}"
    )(_child_event)
