"""The fix for kopf's missed namespaces, on kopf's own code: a namespace that appears only in a
watch stream's listing is served. The cluster test (tests/cluster/test_operator_startup.py) shows
the race end to end; this one fails at once if kopf's internals move."""

from __future__ import annotations

from typing import Any

from kopf._cogs.structs.references import Insights
from kopf._core.reactor import observation

import taskmanager_operator.handlers  # noqa: F401 - installs the fix, as the operator does
from taskmanager_operator.kopf_namespaces import serve_namespaces_seen_in_listings


def namespace_event(name: str, type_: str | None, **metadata: Any) -> Any:
    return {"type": type_, "object": {"metadata": {"name": name, **metadata}}}


async def process(event: Any, insights: Insights) -> None:
    await observation.process_discovered_namespace_event(
        raw_event=event, namespaces=["team-*"], insights=insights
    )


def test_the_operator_installs_the_fix_when_its_handlers_load() -> None:
    assert observation.process_discovered_namespace_event.__module__ == (
        "taskmanager_operator.kopf_namespaces"
    )


async def test_a_namespace_seen_only_in_a_listing_is_served() -> None:
    serve_namespaces_seen_in_listings()
    insights = Insights()
    await process(namespace_event("team-a", None), insights)
    await process(namespace_event("other", None), insights)
    assert insights.namespaces == {"team-a"}


async def test_watch_events_are_handled_as_kopf_does() -> None:
    serve_namespaces_seen_in_listings()
    insights = Insights()
    await process(namespace_event("team-b", "ADDED"), insights)
    assert insights.namespaces == {"team-b"}
    await process(namespace_event("team-b", "DELETED"), insights)
    assert insights.namespaces == set()
