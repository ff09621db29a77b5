"""The cache of children the watches fill: it proves a child unchanged only when we applied the
same manifest last and no one has taken a field of ours since; anything else asks again."""

from __future__ import annotations

import gc
import tracemalloc
from typing import Any

from taskmanager_operator.settings import FIELD_MANAGER
from taskmanager_operator.watch_cache import WatchCache, object_key
from tests.support.watched_bodies import bodies

MANIFEST: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "demo-config", "namespace": "team-a"},
    "data": {"LOG_LEVEL": "info"},
}


def entry(manager: str, fields: dict[str, Any], time: str = "2026-12-06T00:00:00Z") -> Any:
    operation = "Apply" if manager == FIELD_MANAGER else "Update"
    return {
        "manager": manager,
        "operation": operation,
        "apiVersion": "v1",
        "time": time,
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
    }


OURS: dict[str, Any] = {"f:data": {"f:LOG_LEVEL": {}}}


def stored(resource_version: str, *entries: Any, data: str = "info") -> dict[str, Any]:
    """The object as the API server returns it or a watch event carries it."""
    metadata = MANIFEST["metadata"] | {
        "resourceVersion": resource_version,
        "uid": "u-1",
        "managedFields": list(entries),
    }
    return MANIFEST | {"metadata": metadata, "data": {"LOG_LEVEL": data}}


def test_the_manifest_applied_last_with_our_fields_untouched_needs_no_apply() -> None:
    cache = WatchCache()
    cache.applied(MANIFEST, stored("10", entry(FIELD_MANAGER, OURS)))
    # The watch event of that apply, and a later one that only moved our entry's time.
    cache.observe(stored("10", entry(FIELD_MANAGER, OURS)))
    assert cache.unchanged(MANIFEST) is not None
    cache.observe(stored("11", entry(FIELD_MANAGER, OURS, time="2026-12-06T01:00:00Z")))
    found = cache.unchanged(MANIFEST)
    assert found is not None
    assert found["metadata"]["resourceVersion"] == "11"


def test_another_managers_fields_elsewhere_change_nothing() -> None:
    cache = WatchCache()
    cache.applied(MANIFEST, stored("10", entry(FIELD_MANAGER, OURS)))
    label: dict[str, Any] = {"f:metadata": {"f:labels": {"f:team": {}}}}
    cache.observe(stored("12", entry(FIELD_MANAGER, OURS), entry("kubectl-label", label)))
    assert cache.unchanged(MANIFEST) is not None


def test_a_field_of_ours_taken_by_an_edit_calls_for_an_apply() -> None:
    cache = WatchCache()
    cache.applied(MANIFEST, stored("10", entry(FIELD_MANAGER, OURS)))
    # `kubectl edit` changed LOG_LEVEL: the field is the editor's now, no longer ours.
    edited = stored("13", entry(FIELD_MANAGER, {}), entry("kubectl-edit", OURS), data="debug")
    cache.observe(edited)
    assert cache.unchanged(MANIFEST) is None


def test_a_different_manifest_calls_for_an_apply() -> None:
    cache = WatchCache()
    cache.applied(MANIFEST, stored("10", entry(FIELD_MANAGER, OURS)))
    assert cache.unchanged(MANIFEST | {"data": {"LOG_LEVEL": "debug"}}) is None


def test_a_deleted_child_or_one_never_applied_is_asked_for() -> None:
    cache = WatchCache()
    cache.observe(stored("10", entry(FIELD_MANAGER, OURS)))
    assert cache.unchanged(MANIFEST) is None  # seen, but not applied by this process
    cache.forget(stored("10", entry(FIELD_MANAGER, OURS)))
    cache.applied(MANIFEST, stored("11", entry(FIELD_MANAGER, OURS)))
    assert cache.unchanged(MANIFEST) is None  # applied, but its watch event is still to come
    cache.observe(stored("11", entry(FIELD_MANAGER, OURS)))
    cache.applied(MANIFEST, stored("10", entry(FIELD_MANAGER, OURS)))
    cache.forget(stored("14", entry(FIELD_MANAGER, OURS)))
    assert cache.unchanged(MANIFEST) is None
    assert cache.get(("v1", "ConfigMap", "team-a", "demo-config")) is None


def test_only_a_listed_kind_never_seen_nor_applied_is_proven_absent() -> None:
    key = object_key(MANIFEST)
    # Without the listing (a one-off command, or a kind kopf does not index): never proven.
    assert not WatchCache().never_seen(key)
    assert not WatchCache(listed_kinds=frozenset({("v1", "Secret")})).never_seen(key)
    cache = WatchCache(listed_kinds=frozenset({("v1", "ConfigMap")}))
    assert cache.never_seen(key)
    # Applied by us, its watch event still to come: it exists.
    cache.applied(MANIFEST, stored("10", entry(FIELD_MANAGER, OURS)))
    assert not cache.never_seen(key)
    cache.observe(stored("10", entry(FIELD_MANAGER, OURS)))
    assert not cache.never_seen(key)
    # Deleted: absent again, so the next apply creates it without a read.
    cache.forget(stored("11", entry(FIELD_MANAGER, OURS)))
    assert cache.never_seen(key)
    # Made by someone else: its watch event shows it.
    cache.observe(stored("12", entry("kubectl-create", OURS)))
    assert not cache.never_seen(key)


def test_bodies_are_kept_without_other_managers_entries() -> None:
    cache = WatchCache()
    status: dict[str, Any] = {"f:status": {"f:readyReplicas": {}}}
    cache.observe(
        stored("15", entry(FIELD_MANAGER, OURS), entry("kube-controller-manager", status))
    )
    kept = cache.get(("v1", "ConfigMap", "team-a", "demo-config"))
    assert kept is not None
    assert [e["manager"] for e in kept["metadata"]["managedFields"]] == [FIELD_MANAGER]
    assert kept["data"] == {"LOG_LEVEL": "info"}
    assert len(cache) == 1


def test_reads_give_what_the_watch_showed_and_are_the_readers_own() -> None:
    cache = WatchCache()
    shown = bodies("team-a", "demo")
    for body in shown:
        cache.observe(body)
    for body in shown:
        found = cache.get(object_key(body))
        # All of it, but the other managers' managedFields entries.
        entries = body["metadata"].pop("managedFields")
        assert found is not None
        assert found["metadata"].pop("managedFields") == [
            e for e in entries if e["manager"] == FIELD_MANAGER
        ]
        assert found == body
    # A reader changing what it got changes nothing for the next one (reconciles run in threads).
    key = ("apps/v1", "Deployment", "team-a", "demo-api")
    first = cache.get(key)
    assert first is not None
    first["spec"]["replicas"] = 99
    again = cache.get(key)
    assert again is not None
    assert again["spec"]["replicas"] != 99


# What the cache may hold per TaskManager (with its 17 children, as a watch shows them on a
# cluster: tests/support/watched_bodies.py). Measured with tracemalloc on Python 3.11: about
# 350 KiB when bodies were kept as parsed dicts, 31 KiB kept packed; the bound leaves half as
# much again for other Python versions. The target for the whole operator is 100 KiB.
MAX_BYTES_PER_TASKMANAGER = 48 * 1024


def test_a_taskmanager_and_its_children_cost_the_cache_a_few_dozen_kib() -> None:
    taskmanagers = 30
    bodies("warm-up", "tm")  # the builders' and the json module's one-off allocations
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        cache = WatchCache()
        for index in range(taskmanagers):
            for body in bodies("bench", f"tm-{index:04d}"):
                cache.observe(body)
                if body["kind"] != "TaskManager":
                    # What the reconcile applied, and the server's answer: kept as digests.
                    cache.applied({k: v for k, v in body.items() if k != "status"}, body)
            del body
        gc.collect()
        per_taskmanager = (tracemalloc.get_traced_memory()[0] - before) / taskmanagers
    finally:
        tracemalloc.stop()
    assert len(cache) == taskmanagers * 18
    assert per_taskmanager < MAX_BYTES_PER_TASKMANAGER, f"{per_taskmanager / 1024:.1f} KiB"
